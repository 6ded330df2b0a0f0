package deadletter

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// MaxRecordBytes is the largest record a scan fetches and a replay may
// produce; the broker still enforces its own max.message.bytes.
const MaxRecordBytes = 64 << 20

// Letter is one dead letter read from a dead-letter topic.
type Letter struct {
	Record *kgo.Record
	// Info is what the textpulse.* headers of Record say.
	Info Info
	// Err is the error of parsing the headers, wrapping ErrBadHeader; Info
	// then holds the fields read before it.
	Err error
}

// Scan reads topic from its start offsets to the end offsets it has when
// the scan starts, calling fn for each record in offset order per
// partition; fn returning false stops the scan. Before the first record it
// passes the number of records in the range to total.
func Scan(ctx context.Context, connOpts []kgo.Opt, topic string, total func(int64), fn func(Letter) bool) error {
	from, left, n, err := listRange(ctx, connOpts, topic)
	if err != nil {
		return err
	}
	total(n)
	if len(from) == 0 {
		return nil
	}
	rd, err := kgo.NewClient(append(slices.Clone(connOpts),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchMaxBytes(MaxRecordBytes), kgo.FetchMaxPartitionBytes(MaxRecordBytes))...)
	if err != nil {
		return fmt.Errorf("create kafka client: %w", err)
	}
	defer rd.Close()
	for len(left) > 0 {
		stop, err := scanFetches(ctx, rd, topic, left, fn)
		if err != nil || stop {
			return err
		}
	}
	return nil
}

// listRange lists the start and end offsets of topic. It returns the start
// offset of each partition that holds records, the end offset of each, and
// the number of records between them.
func listRange(ctx context.Context, connOpts []kgo.Opt, topic string) (map[int32]kgo.Offset, map[int32]int64, int64, error) {
	cl, err := kgo.NewClient(connOpts...)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("create kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, nil, 0, fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, nil, 0, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	from := make(map[int32]kgo.Offset)
	left := make(map[int32]int64)
	var n int64
	starts.Each(func(o kadm.ListedOffset) {
		end, _ := ends.Lookup(topic, o.Partition)
		if end.Offset > o.Offset {
			from[o.Partition] = kgo.NewOffset().At(o.Offset)
			left[o.Partition] = end.Offset
			n += end.Offset - o.Offset
		}
	})
	return from, left, n, nil
}

// scanFetches polls one set of fetches from rd and passes their records
// below the end offsets in left to fn, deleting a partition from left once
// its last record was passed. It reports whether fn asked to stop.
func scanFetches(ctx context.Context, rd *kgo.Client, topic string, left map[int32]int64, fn func(Letter) bool) (bool, error) {
	fs := rd.PollFetches(ctx)
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("read %s: %w", topic, err)
	}
	var fetchErr error
	fs.EachError(func(t string, p int32, err error) {
		fetchErr = fmt.Errorf("read %s partition %d: %w", t, p, err)
	})
	if fetchErr != nil {
		return false, fetchErr
	}
	stop := false
	fs.EachRecord(func(r *kgo.Record) {
		end, ok := left[r.Partition]
		if stop || !ok || r.Offset >= end {
			return
		}
		if r.Offset+1 >= end {
			delete(left, r.Partition)
		}
		info, perr := ParseDeadLetterHeaders(r.Headers)
		if !fn(Letter{Record: r, Info: info, Err: perr}) {
			stop = true
		}
	})
	return stop, nil
}

package processor

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// OffsetRange is an inclusive range of source offsets.
type OffsetRange struct {
	First, Last int64
}

// StoredReader tells which records of a partition the sink already holds.
//
// StoredOffsets returns the offsets at or after from of topic/partition that
// are stored, as sorted, disjoint, inclusive ranges. It may block on the sink
// until ctx is done; an error means the answer is unknown, and the pipeline
// asks again. The caller owns the returned slice.
type StoredReader interface {
	StoredOffsets(ctx context.Context, topic string, partition int32, from int64) ([]OffsetRange, error)
}

// resumeRetryMax caps the backoff between stored-offset reads that failed.
const resumeRetryMax = 5 * time.Second

// stored is the answer of one StoredOffsets read for a partition that the
// pipeline took over: when the read is done, ranges holds the offsets at or
// after from that were stored at the time.
type stored struct {
	from   int64
	done   chan struct{}
	cancel context.CancelFunc
	ranges []OffsetRange
}

// contains reports whether offset is in one of the ranges; only valid after
// done is closed.
func (s *stored) contains(offset int64) bool {
	i := sort.Search(len(s.ranges), func(i int) bool { return s.ranges[i].Last >= offset })
	return i < len(s.ranges) && s.ranges[i].First <= offset
}

// resumer keeps, per partition taken over, the offsets the sink already held
// when the pipeline started consuming it. The owner of a partition before
// this one (a crashed process, a member that left, this process before it
// rewound) may have stored rows whose offsets it never committed; the
// batches that consume those offsets again drop the stored records instead
// of writing them twice. The read happens once per takeover, after the
// previous owner stopped writing: a rebalance proceeds only when its batches
// finished or were abandoned and waited for.
type resumer struct {
	r   StoredReader
	log *slog.Logger
	m   *metrics

	mu    sync.Mutex
	parts map[TopicPartition]*stored
}

func newResumer(r StoredReader, log *slog.Logger, m *metrics) *resumer {
	return &resumer{r: r, log: log, m: m, parts: make(map[TopicPartition]*stored)}
}

// forget drops what is known of the partitions, so that the next record of
// each starts a new read: called when partitions are assigned, revoked, lost
// or rewound.
func (rs *resumer) forget(m map[string][]int32) {
	if rs == nil {
		return
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for t, ps := range m {
		for _, p := range ps {
			tp := TopicPartition{Topic: t, Partition: p}
			if s, ok := rs.parts[tp]; ok {
				s.cancel()
				delete(rs.parts, tp)
			}
		}
	}
}

// at returns the read for the partition of a record at offset, starting it
// in the background (under ctx) when the partition has none: the first
// record consumed after a takeover is the position the read starts from.
func (rs *resumer) at(ctx context.Context, tp TopicPartition, offset int64) *stored {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if s, ok := rs.parts[tp]; ok {
		return s
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &stored{from: offset, done: make(chan struct{}), cancel: cancel}
	rs.parts[tp] = s
	go rs.read(ctx, tp, s)
	return s
}

// read fills s, retrying with backoff until the sink answers or ctx ends.
func (rs *resumer) read(ctx context.Context, tp TopicPartition, s *stored) {
	bo := backoff.NewExponentialBackOff()
	bo.MaxInterval = resumeRetryMax
	start := time.Now()
	ranges, err := backoff.Retry(ctx, func() ([]OffsetRange, error) {
		r, err := rs.r.StoredOffsets(ctx, tp.Topic, tp.Partition, s.from)
		if err != nil && ctx.Err() == nil {
			rs.m.resumeReads.WithLabelValues("error").Inc()
			rs.log.Warn("read stored offsets, will retry", "topic", tp.Topic, "partition", tp.Partition, "from", s.from, "err", err)
		}
		return r, err
	}, backoff.WithBackOff(bo), backoff.WithMaxElapsedTime(0))
	if err != nil {
		return // ctx ended: the batches waiting for s end with it.
	}
	s.ranges = ranges
	close(s.done)
	rs.m.resumeReads.WithLabelValues("ok").Inc()
	n := int64(0)
	for _, r := range ranges {
		n += r.Last - r.First + 1
	}
	if n > 0 {
		rs.log.Info("partition resumes past stored rows", "topic", tp.Topic, "partition", tp.Partition,
			"from", s.from, "stored", n, "seconds", time.Since(start).Seconds())
	}
}

// dropStored removes from b the records that the reads of its partitions
// found stored, and returns how many it removed. It waits for the reads
// that are still under way, until ctx is done.
func dropStored(ctx context.Context, b *Batch, reads map[TopicPartition]*stored) (int, error) {
	for tp, s := range reads {
		select {
		case <-s.done:
		case <-ctx.Done():
			return 0, fmt.Errorf("read stored offsets of %s/%d: %w", tp.Topic, tp.Partition, context.Cause(ctx))
		}
	}
	kept := b.Records[:0]
	dropped := 0
	for i := range b.Records {
		r := &b.Records[i]
		if s, ok := reads[TopicPartition{Topic: r.Topic, Partition: r.Partition}]; ok && s.contains(r.Offset) {
			dropped++
			continue
		}
		kept = append(kept, *r)
	}
	clear(b.Records[len(kept):])
	b.Records = kept
	b.stored += dropped
	return dropped, nil
}

// Ranges compresses sorted offsets into inclusive ranges.
func Ranges(offsets []int64) []OffsetRange {
	var out []OffsetRange
	for _, o := range offsets {
		if n := len(out); n > 0 && (o == out[n-1].Last || o == out[n-1].Last+1) {
			out[n-1].Last = o
			continue
		}
		out = append(out, OffsetRange{First: o, Last: o})
	}
	return out
}

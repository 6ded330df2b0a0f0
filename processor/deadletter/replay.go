package deadletter

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// replayChunk is how many dead letters one synchronous produce sends.
const replayChunk = 500

// producer produces records and waits for their acknowledgement; a
// *kgo.Client is one.
type producer interface {
	ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults
}

// Replayer re-publishes the dead letters of a dead-letter topic to their
// source topics (or to ToTopic).
type Replayer struct {
	// Topic is the dead-letter topic to read.
	Topic string
	// ToTopic, when set, is the topic every dead letter is sent to instead
	// of the source topic in its headers.
	ToTopic string
	// DryRun reports what would be sent and sends nothing.
	DryRun bool
	// Max, when positive, stops the replay after that many matched dead
	// letters.
	Max int
	// Match selects the dead letters to replay; nil selects all.
	Match func(*kgo.Record, *Info) bool
	// Progress, when set, is called after each scanned dead letter with
	// the report so far and the number of records in the scanned range,
	// and once more with final set when the replay is over.
	Progress func(rep *ReplayReport, total int64, final bool)
}

// ReplayReport is what a replay did.
type ReplayReport struct {
	Topic   string `json:"topic"`
	DryRun  bool   `json:"dry_run"`
	Scanned int    `json:"scanned"`
	Matched int    `json:"matched"`
	Sent    int    `json:"sent"`
	// ByTarget counts sent (or, in a dry run, to-be-sent) records per
	// target topic.
	ByTarget map[string]int `json:"by_target"`
	Skipped  []ReplaySkip   `json:"skipped"`
	Failed   []ReplaySkip   `json:"failed"`
	// LastSentOffset is the dead-letter offset of the last record sent per
	// dead-letter partition.
	LastSentOffset map[string]int64 `json:"last_sent_dlq_offset"`
	// ResumeFrom is, after a failure, the first dead-letter offset per
	// partition that was not attempted: a later replay from there, plus
	// one of each failed dead letter, sends everything exactly once.
	ResumeFrom map[string]int64 `json:"resume_from_dlq_offset,omitempty"`
}

// ReplaySkip is a dead letter that was not replayed, and why.
type ReplaySkip struct {
	Partition int32  `json:"dlq_partition"`
	Offset    int64  `json:"dlq_offset"`
	Reason    string `json:"reason"`
}

// Run scans the dead-letter topic through a client made of connOpts and
// produces the matching dead letters through prod, synchronously in chunks
// of 500, so that each record is acknowledged (or has failed) before the
// next chunk is read; prod is not used in a dry run and may be nil then.
// After a chunk with a failure it stops and leaves the rest unattempted.
//
// The report is always returned. The error wraps the scan's error, or is
// ErrReplayIncomplete when some dead letters failed.
func (rp *Replayer) Run(ctx context.Context, connOpts []kgo.Opt, prod producer) (*ReplayReport, error) {
	return rp.run(ctx, prod, func(total func(int64), fn func(Letter) bool) error {
		return Scan(ctx, connOpts, rp.Topic, total, fn)
	})
}

// scanFunc reads dead letters the way Scan does.
type scanFunc func(total func(int64), fn func(Letter) bool) error

func (rp *Replayer) run(ctx context.Context, prod producer, scan scanFunc) (*ReplayReport, error) {
	s := &replayState{rp: rp, prod: prod, rep: &ReplayReport{Topic: rp.Topic, DryRun: rp.DryRun,
		ByTarget: map[string]int{}, LastSentOffset: map[string]int64{}}}
	err := scan(func(n int64) { s.total = n }, func(l Letter) bool {
		defer s.progress(false)
		return s.letter(ctx, l)
	})
	rep := s.rep
	if err == nil && len(rep.Failed) == 0 {
		s.flush(ctx)
	}
	s.progress(true)
	slices.SortFunc(rep.Failed, func(a, b ReplaySkip) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	if err != nil {
		return rep, fmt.Errorf("replay %s after sending %d: %w", rp.Topic, rep.Sent, err)
	}
	if len(rep.Failed) > 0 {
		return rep, fmt.Errorf("%w: %d sent, %d failed", ErrReplayIncomplete, rep.Sent, len(rep.Failed))
	}
	return rep, nil
}

// replayState is one replay in progress.
type replayState struct {
	rp   *Replayer
	prod producer
	rep  *ReplayReport
	// total is the number of records in the scanned range.
	total int64
	// pending are the records of the next chunk, and pendingFrom the dead
	// letters they were built from.
	pending, pendingFrom []*kgo.Record
}

func (s *replayState) progress(final bool) {
	if s.rp.Progress != nil {
		s.rp.Progress(s.rep, s.total, final)
	}
}

// letter handles one scanned dead letter and reports whether to go on.
func (s *replayState) letter(ctx context.Context, l Letter) bool {
	s.rep.Scanned++
	if s.rp.Match != nil && !s.rp.Match(l.Record, &l.Info) {
		return true
	}
	s.rep.Matched++
	target, reason := s.rp.target(&l)
	if reason != "" {
		s.rep.Skipped = append(s.rep.Skipped, ReplaySkip{Partition: l.Record.Partition, Offset: l.Record.Offset, Reason: reason})
		return true
	}
	s.pending = append(s.pending, ReplayRecord(target, l.Record, l.Info.Attempts))
	s.pendingFrom = append(s.pendingFrom, l.Record)
	if len(s.pending) >= replayChunk && !s.flush(ctx) {
		return false
	}
	return s.rp.Max == 0 || s.rep.Matched < s.rp.Max
}

// target returns the topic to replay l to, or why l is skipped.
func (rp *Replayer) target(l *Letter) (topic, skipReason string) {
	switch {
	case l.Err != nil:
		return "", l.Err.Error()
	case l.Info.ValueBytes > 0:
		return "", fmt.Sprintf("value cut from %d bytes; the original is at %s/%d/%d", l.Info.ValueBytes,
			l.Info.Topic, l.Info.Partition, l.Info.Offset)
	case rp.ToTopic != "":
		return rp.ToTopic, ""
	case !l.Info.HasSource:
		return "", "no source topic in the headers; use --to-topic"
	}
	return l.Info.Topic, ""
}

// flush sends the pending chunk and reports whether all of it was sent.
func (s *replayState) flush(ctx context.Context) bool {
	if len(s.pending) == 0 {
		return true
	}
	defer func() { s.pending, s.pendingFrom = s.pending[:0], s.pendingFrom[:0] }()
	rep := s.rep
	if s.rp.DryRun {
		for i, r := range s.pending {
			rep.ByTarget[r.Topic]++
			rep.LastSentOffset[strconv.Itoa(int(s.pendingFrom[i].Partition))] = s.pendingFrom[i].Offset
		}
		return true
	}
	// Synchronous: each record is acknowledged by every in-sync replica
	// (or has failed) before the next chunk is read.
	results := s.prod.ProduceSync(ctx, s.pending...)
	// Results come in completion order, not in the order of pending.
	from := make(map[*kgo.Record]*kgo.Record, len(s.pending))
	for i, r := range s.pending {
		from[r] = s.pendingFrom[i]
	}
	ok := results.FirstErr() == nil
	if !ok {
		rep.ResumeFrom = map[string]int64{}
		for _, src := range s.pendingFrom {
			k := strconv.Itoa(int(src.Partition))
			rep.ResumeFrom[k] = max(rep.ResumeFrom[k], src.Offset+1)
		}
	}
	for _, res := range results {
		src := from[res.Record]
		if res.Err != nil {
			rep.Failed = append(rep.Failed, ReplaySkip{Partition: src.Partition, Offset: src.Offset, Reason: res.Err.Error()})
			continue
		}
		rep.Sent++
		rep.ByTarget[res.Record.Topic]++
		k := strconv.Itoa(int(src.Partition))
		if cur, seen := rep.LastSentOffset[k]; !seen || src.Offset > cur {
			rep.LastSentOffset[k] = src.Offset
		}
	}
	return ok
}

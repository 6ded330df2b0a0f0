package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// commitTimeout bounds one synchronous offset commit.
const commitTimeout = 15 * time.Second

// Deps are the collaborators of a Pipeline.
type Deps struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Stages enrich each batch; none means raw ingest.
	Stages []Stage
	// Writer stores the rows; required.
	Writer Writer
	// DeadLetters stores rejected inputs; nil counts and drops them.
	DeadLetters DeadLetterSink
	// Stored tells which offsets of a partition taken over are already
	// stored, so that they are not written twice; nil writes every record
	// consumed (at least once).
	Stored StoredReader
	// AfterStore, when set, is called after a batch's rows and dead letters
	// are stored and before its offsets are committed (a test hook for
	// crashes in that window).
	AfterStore func(b *Batch)
}

// Pipeline is the consume loop: poll, decode, cut batches, enrich, write,
// commit. It commits a batch's offsets only after its rows and dead letters
// are stored, strictly in poll order, and never across a rebalance: it uses
// kgo's BlockRebalanceOnPoll and lets a rebalance proceed only when nothing
// polled is left uncommitted, or after abandoning what is left (which is then
// consumed again).
type Pipeline struct {
	cfg    BatchConfig
	dec    DecodeConfig
	stages []Stage
	w      Writer
	dlq    DeadLetterSink
	// takeover drops the records that a partition's previous owner stored
	// without committing them; nil when Deps.Stored is nil.
	takeover   *resumer
	afterStore func(b *Batch)
	log        *slog.Logger
	m          *metrics
	// resultBytes is what the stages add to a record, by their
	// ResultSizer estimates.
	resultBytes int

	rebalance chan struct{}
	assigned  atomic.Int64
	polling   atomic.Bool
	seq       uint64

	// owned is the current assignment, kept by the partition callbacks.
	ownedMu sync.Mutex
	owned   map[string]map[int32]struct{}
}

// New returns a pipeline for validated configurations.
func New(batch BatchConfig, dec DecodeConfig, deps Deps) (*Pipeline, error) {
	if err := batch.Validate(); err != nil {
		return nil, err
	}
	if err := dec.Validate(); err != nil {
		return nil, err
	}
	if deps.Writer == nil {
		return nil, errors.New("new pipeline: a writer is required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	resultBytes := 0
	for _, s := range deps.Stages {
		if rs, ok := s.(ResultSizer); ok {
			resultBytes += rs.ResultBytes()
		}
	}
	m := newMetrics(deps.Registerer)
	var takeover *resumer
	if deps.Stored != nil {
		takeover = newResumer(deps.Stored, deps.Logger, m)
	}
	return &Pipeline{
		takeover:    takeover,
		afterStore:  deps.AfterStore,
		resultBytes: resultBytes,
		cfg:         batch,
		dec:         dec,
		stages:      deps.Stages,
		w:           deps.Writer,
		dlq:         deps.DeadLetters,
		log:         deps.Logger,
		m:           m,
		rebalance:   make(chan struct{}, 1),
		owned:       make(map[string]map[int32]struct{}),
	}, nil
}

// ClientOpts returns the kgo options the pipeline relies on; add them to
// the options of the client passed to Run.
func (p *Pipeline) ClientOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) {
			select {
			case p.rebalance <- struct{}{}:
			default:
			}
		}),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			p.assigned.Add(int64(countPartitions(m)))
			p.own(m, true)
			p.takeover.forget(m)
			p.m.rebalances.WithLabelValues("assigned").Inc()
			p.log.Info("partitions assigned", "partitions", formatAssignment(m))
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			p.assigned.Add(-int64(countPartitions(m)))
			p.own(m, false)
			p.takeover.forget(m)
			p.m.rebalances.WithLabelValues("revoked").Inc()
			p.log.Info("partitions revoked", "partitions", formatAssignment(m))
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			p.assigned.Add(-int64(countPartitions(m)))
			p.own(m, false)
			p.takeover.forget(m)
			p.m.rebalances.WithLabelValues("lost").Inc()
			p.log.Warn("partitions lost", "partitions", formatAssignment(m))
		}),
	}
}

// Ready reports whether the pipeline is polling with at least one assigned
// partition.
func (p *Pipeline) Ready() bool { return p.polling.Load() && p.assigned.Load() > 0 }

// flight is a batch being enriched and written.
type flight struct {
	b      *Batch
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	start  time.Time
}

func (f *flight) finished() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// loop is the state of one Run.
type loop struct {
	cl    *kgo.Client
	queue []*flight
	batch *batcher
	dec   *Decoder
	// paused are the partitions this loop paused fetching of.
	paused map[string][]int32
	// eager is set until the first batch is cut: it is cut at the first
	// poll that returns records, rather than when full or due, so that
	// the first rows are stored as soon as they can be.
	eager bool
}

// Run consumes until ctx is done or a failure that it cannot recover from
// without losing records, which it returns. On return, every batch it
// committed is stored; batches still in flight after DrainTimeout are
// abandoned uncommitted. The caller closes cl afterwards, which leaves the
// group.
func (p *Pipeline) Run(ctx context.Context, cl *kgo.Client) error {
	// Batches in flight outlive ctx by up to DrainTimeout.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	l := &loop{cl: cl, dec: NewDecoder(p.dec), batch: newBatcher(p.cfg, &p.seq, nil), eager: true}
	p.polling.Store(true)
	defer p.polling.Store(false)
	// Whatever path returns, nothing polled is held any more: let the
	// client leave the group or rebalance.
	defer cl.AllowRebalance()
	defer p.resume(l)

	for {
		if err := p.retire(ctx, l); err != nil {
			p.abandon(l, false)
			return err
		}
		rebalancing := false
		select {
		case <-p.rebalance:
			rebalancing = true
		default:
		}
		if stopping := ctx.Err() != nil; stopping || rebalancing {
			p.dispatch(workCtx, l)
			err := p.drain(ctx, l, !stopping)
			cl.AllowRebalance()
			if err != nil || stopping {
				return err
			}
			continue
		}
		if len(l.queue) >= p.cfg.MaxInFlight {
			p.pause(l)
			p.waitOldest(ctx, l)
			continue
		}
		p.resume(l)
		fetches, err := p.poll(ctx, l)
		if err != nil {
			p.abandon(l, false)
			return err
		}
		p.addFetches(workCtx, l, fetches)
		if l.batch.ready() || (l.eager && l.batch.pending() != nil) {
			l.eager = false
			p.dispatch(workCtx, l)
		}
		if len(l.queue) == 0 && l.batch.pending() == nil {
			cl.AllowRebalance()
		}
	}
}

// poll fetches records for the accumulating batch, waiting at most until
// the batch is due.
func (p *Pipeline) poll(ctx context.Context, l *loop) (kgo.Fetches, error) {
	wait := l.batch.wait()
	if wait <= 0 {
		return nil, nil
	}
	pollCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	fetches := l.cl.PollRecords(pollCtx, l.batch.room())
	if fetches.IsClientClosed() {
		return nil, fmt.Errorf("poll: %w", kgo.ErrClientClosed)
	}
	fetches.EachError(func(topic string, partition int32, err error) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return
		}
		p.m.fetchErrors.Inc()
		p.log.Warn("fetch error", "topic", topic, "partition", partition, "err", err)
	})
	return fetches, nil
}

// addFetches adds the records of one poll to the accumulating batch; ctx is
// the context of the work the batches outlive the run with.
func (p *Pipeline) addFetches(ctx context.Context, l *loop, fetches kgo.Fetches) {
	if n := fetches.NumRecords(); n > 0 {
		l.batch.start()
		// Records the client holds already will join the batch too.
		buffered := int(l.cl.BufferedFetchRecords())
		l.batch.grow(n+buffered, l.batch.fitting(firstValueBytes(fetches)+p.resultBytes))
	}
	fetches.EachRecord(func(r *kgo.Record) {
		p.add(ctx, l, r)
	})
}

// firstValueBytes is the size of the first record value of fetches, an
// estimate of the size of the others.
func firstValueBytes(fetches kgo.Fetches) int {
	for _, f := range fetches {
		for _, t := range f.Topics {
			for _, p := range t.Partitions {
				if len(p.Records) > 0 {
					return len(p.Records[0].Value)
				}
			}
		}
	}
	return 0
}

// addAll adds records as one poll would.
func (p *Pipeline) addAll(ctx context.Context, l *loop, recs []*kgo.Record) {
	for i, r := range recs {
		if i == 0 || l.batch.pending() == nil {
			l.batch.start()
			l.batch.grow(len(recs)-i, l.batch.fitting(len(r.Value)+p.resultBytes))
		}
		p.add(ctx, l, r)
	}
}

// add decodes r into the accumulating batch, starting one if needed. A batch
// whose values and expected stage results reach the byte limit is cut and
// dispatched right away.
func (p *Pipeline) add(ctx context.Context, l *loop, r *kgo.Record) {
	b := l.batch.start()
	b.cover(r.Topic, r.Partition, r.Offset, r.LeaderEpoch)
	b.Bytes += len(r.Value)
	b.held += len(r.Value) + p.resultBytes
	p.m.consumed.Inc()
	if p.takeover != nil {
		tp := TopicPartition{Topic: r.Topic, Partition: r.Partition}
		if _, ok := b.reads[tp]; !ok {
			if b.reads == nil {
				b.reads = make(map[TopicPartition]*stored)
			}
			b.reads[tp] = p.takeover.at(ctx, tp, r.Offset)
		}
	}
	b.Records = append(b.Records, Record{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp,
		source: recordSource{key: r.Key, value: r.Value, headers: r.Headers, epoch: r.LeaderEpoch},
	})
	rec := &b.Records[len(b.Records)-1]
	if err := l.dec.Decode(r.Key, r.Value, r.Timestamp, &rec.Event); err != nil {
		var de *DecodeError
		class := ClassInvalidJSON
		if errors.As(err, &de) {
			class = de.Class
		}
		b.Records = b.Records[:len(b.Records)-1]
		b.DeadLetters = append(b.DeadLetters, DeadLetter{
			Record: r, Stage: "decode", Class: class, Reason: err.Error(), Attempts: 1, Time: time.Now(),
		})
		p.log.Debug("event rejected", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "class", class, "err", err)
	}
	if l.batch.bytesReached() {
		p.dispatch(ctx, l)
	}
}

// dispatch starts processing the accumulating batch, if any, under ctx.
func (p *Pipeline) dispatch(ctx context.Context, l *loop) {
	b := l.batch.take()
	if b == nil {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	f := &flight{b: b, cancel: cancel, done: make(chan struct{}), start: time.Now()}
	l.queue = append(l.queue, f)
	p.m.batchRecords.Observe(float64(b.Len()))
	p.m.batchBytes.Observe(float64(b.Bytes))
	p.m.inflightBatches.Inc()
	p.m.inflightRecords.Add(float64(b.Len()))
	p.m.inflightBytes.Add(float64(b.Bytes))
	go func() {
		defer close(f.done)
		f.err = p.process(ctx, b)
	}()
}

// process enriches and stores one batch: rows to the writer, rejected inputs
// to the dead-letter sink.
func (p *Pipeline) process(ctx context.Context, b *Batch) error {
	if len(b.reads) > 0 {
		n, err := dropStored(ctx, b, b.reads)
		if err != nil {
			return fmt.Errorf("resume batch %s: %w", b.ID, err)
		}
		if n > 0 {
			p.m.alreadyStored.Add(float64(n))
			p.log.Info("records already stored, not written again", "batch", b.ID, "records", n)
		}
	}
	if len(b.Records) > 0 {
		if err := runStages(ctx, p.stages, b, p.m.observeStage); err != nil {
			return fmt.Errorf("enrich batch %s: %w", b.ID, err)
		}
		b.applyRejects()
	}
	var sinkRejects []DeadLetter
	if err := p.write(ctx, b, &sinkRejects); err != nil {
		return err
	}
	b.DeadLetters = append(b.DeadLetters, sinkRejects...)
	if err := p.sendDeadLetters(ctx, b); err != nil {
		return err
	}
	if p.afterStore != nil {
		p.afterStore(b)
	}
	return nil
}

// sendDeadLetters stores the dead letters of b, or counts them as dropped
// when there is no dead-letter sink.
func (p *Pipeline) sendDeadLetters(ctx context.Context, b *Batch) error {
	if len(b.DeadLetters) == 0 {
		return nil
	}
	if p.dlq == nil {
		for _, dl := range b.DeadLetters {
			p.m.deadLetters.WithLabelValues(dl.Stage, string(dl.Class), "dropped").Inc()
		}
		p.log.Warn("dead letters dropped: no dead-letter topic configured", "batch", b.ID, "count", len(b.DeadLetters))
		return nil
	}
	if err := p.dlq.Send(ctx, b.DeadLetters); err != nil {
		return fmt.Errorf("dead-letter batch %s: %w", b.ID, err)
	}
	for _, dl := range b.DeadLetters {
		p.m.deadLetters.WithLabelValues(dl.Stage, string(dl.Class), "produced").Inc()
	}
	return nil
}

// write stores the rows of b. When the writer refuses rows for their
// content, it splits the batch in halves until the refused rows are
// isolated, and moves those to rejects.
func (p *Pipeline) write(ctx context.Context, b *Batch, rejects *[]DeadLetter) error {
	if len(b.Records) == 0 {
		return nil
	}
	start := time.Now()
	err := p.w.Write(ctx, b)
	if err == nil {
		p.m.written.Add(float64(len(b.Records)))
		p.m.writeDuration.Observe(time.Since(start).Seconds())
		now := time.Now()
		for i := range b.Records {
			p.m.endToEnd.Observe(now.Sub(b.Records[i].Timestamp).Seconds())
		}
		return nil
	}
	if !IsPermanent(err) {
		return fmt.Errorf("write batch %s: %w", b.ID, err)
	}
	if len(b.Records) == 1 {
		r := &b.Records[0]
		p.log.Warn("row refused by sink", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
		*rejects = append(*rejects, DeadLetter{
			Record: r.consumed(), Stage: "sink", Class: ClassSinkRejected, Reason: err.Error(), Attempts: 1, Time: time.Now(),
		})
		return nil
	}
	p.log.Warn("batch refused by sink, splitting", "batch", b.ID, "rows", len(b.Records), "err", err)
	half := len(b.Records) / 2
	for i, part := range [][]Record{b.Records[:half], b.Records[half:]} {
		sub := NewBatch(b.ID + "." + strconv.Itoa(i))
		sub.Records = part
		for j := range part {
			sub.cover(part[j].Topic, part[j].Partition, part[j].Offset, -1)
		}
		if err := p.write(ctx, sub, rejects); err != nil {
			return err
		}
	}
	return nil
}

// retire commits finished batches at the head of the queue, in order. It
// returns an error when a batch failed for a reason other than abandonment.
func (p *Pipeline) retire(ctx context.Context, l *loop) error {
	for len(l.queue) > 0 && l.queue[0].finished() {
		f := l.queue[0]
		if f.err != nil {
			return fmt.Errorf("%w: %w", ErrPipelineStopped, f.err)
		}
		p.commit(ctx, l.cl, f)
		l.batch.recycle(f.b.Records)
		l.queue = l.queue[1:]
	}
	return nil
}

// commit commits the offsets after a stored batch. A failed commit loses
// nothing: the records are consumed again and their rows collapse in the
// sink, so it is logged and counted.
func (p *Pipeline) commit(ctx context.Context, cl *kgo.Client, f *flight) {
	defer p.finish(f)
	offsets := make(map[string]map[int32]kgo.EpochOffset)
	for tp, s := range f.b.Spans() {
		if offsets[tp.Topic] == nil {
			offsets[tp.Topic] = make(map[int32]kgo.EpochOffset)
		}
		offsets[tp.Topic][tp.Partition] = kgo.EpochOffset{Epoch: s.LastEpoch, Offset: s.Last + 1}
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	start := time.Now()
	var commitErr error
	cl.CommitOffsetsSync(cctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			commitErr = err
			return
		}
		for _, t := range resp.Topics {
			for _, pt := range t.Partitions {
				if err := kerr.ErrorForCode(pt.ErrorCode); err != nil && commitErr == nil {
					commitErr = fmt.Errorf("partition %s/%d: %w", t.Topic, pt.Partition, err)
				}
			}
		}
	})
	p.m.commitDuration.Observe(time.Since(start).Seconds())
	if commitErr != nil {
		p.m.commitErrors.Inc()
		p.log.Warn("commit offsets", "batch", f.b.ID, "err", commitErr)
		return
	}
	p.log.Debug("batch committed", "batch", f.b.ID, "records", len(f.b.Records), "dead_letters", len(f.b.DeadLetters),
		"seconds", time.Since(f.start).Seconds())
}

// finish updates the gauges for a batch leaving the queue.
func (p *Pipeline) finish(f *flight) {
	f.cancel()
	p.m.inflightBatches.Dec()
	p.m.inflightRecords.Sub(float64(f.b.Len()))
	p.m.inflightBytes.Sub(float64(f.b.Bytes))
}

// own adds the partitions of m to, or removes them from, the current
// assignment.
func (p *Pipeline) own(m map[string][]int32, add bool) {
	p.ownedMu.Lock()
	defer p.ownedMu.Unlock()
	for t, ps := range m {
		for _, part := range ps {
			switch {
			case add && p.owned[t] == nil:
				p.owned[t] = map[int32]struct{}{part: {}}
			case add:
				p.owned[t][part] = struct{}{}
			default:
				delete(p.owned[t], part)
			}
		}
		if len(p.owned[t]) == 0 {
			delete(p.owned, t)
		}
	}
}

// pause stops fetching every assigned partition while the batches in
// flight are at their limit, so that the client does not keep buffering
// records that cannot be processed yet: what is held stays bounded by the
// batches in flight plus one fetch. Partitions assigned since the last call
// are paused too.
func (p *Pipeline) pause(l *loop) {
	p.ownedMu.Lock()
	var add map[string][]int32
	for t, ps := range p.owned {
		for part := range ps {
			if slices.Contains(l.paused[t], part) {
				continue
			}
			if add == nil {
				add = make(map[string][]int32)
			}
			add[t] = append(add[t], part)
		}
	}
	p.ownedMu.Unlock()
	if len(add) == 0 {
		return
	}
	if l.paused == nil {
		l.paused = make(map[string][]int32)
	}
	for t, ps := range add {
		l.paused[t] = append(l.paused[t], ps...)
	}
	l.cl.PauseFetchPartitions(add)
	n := countPartitions(l.paused)
	p.m.pausedParts.Set(float64(n))
	p.log.Debug("fetching paused", "partitions", n, "batches_in_flight", len(l.queue))
}

// resume resumes fetching the partitions that pause stopped.
func (p *Pipeline) resume(l *loop) {
	if len(l.paused) == 0 {
		return
	}
	l.cl.ResumeFetchPartitions(l.paused)
	p.log.Debug("fetching resumed", "partitions", countPartitions(l.paused))
	l.paused = nil
	p.m.pausedParts.Set(0)
}

// waitOldest blocks until the oldest batch finishes, a rebalance is asked
// for, or ctx is done.
func (p *Pipeline) waitOldest(ctx context.Context, l *loop) {
	select {
	case <-l.queue[0].done:
	case <-p.rebalance:
		// Put the signal back for the main loop to see.
		select {
		case p.rebalance <- struct{}{}:
		default:
		}
	case <-ctx.Done():
	}
}

// drain waits up to DrainTimeout for the batches in flight and commits them
// in order; whatever is left is abandoned. When keepConsuming is set, the
// fetch positions of abandoned partitions are rewound so that their records
// are consumed again.
func (p *Pipeline) drain(ctx context.Context, l *loop, keepConsuming bool) error {
	if len(l.queue) == 0 {
		return nil
	}
	p.log.Info("draining batches in flight", "batches", len(l.queue), "timeout", p.cfg.DrainTimeout.String())
	timer := time.NewTimer(p.cfg.DrainTimeout)
	defer timer.Stop()
	for len(l.queue) > 0 {
		select {
		case <-l.queue[0].done:
			if err := p.retire(ctx, l); err != nil {
				p.abandon(l, keepConsuming)
				return err
			}
		case <-timer.C:
			p.abandon(l, keepConsuming)
			return nil
		}
	}
	return nil
}

// abandon cancels every batch in flight and drops it uncommitted.
func (p *Pipeline) abandon(l *loop, rewind bool) {
	if len(l.queue) == 0 {
		return
	}
	rewindTo := make(map[string]map[int32]kgo.EpochOffset)
	for _, f := range l.queue {
		f.cancel()
		<-f.done
		for tp, s := range f.b.Spans() {
			if rewindTo[tp.Topic] == nil {
				rewindTo[tp.Topic] = make(map[int32]kgo.EpochOffset)
			}
			if cur, ok := rewindTo[tp.Topic][tp.Partition]; !ok || s.First < cur.Offset {
				rewindTo[tp.Topic][tp.Partition] = kgo.EpochOffset{Epoch: -1, Offset: s.First}
			}
		}
		p.m.abandoned.Inc()
		p.log.Warn("batch abandoned uncommitted", "batch", f.b.ID, "records", f.b.Len(), "err", f.err)
		p.finish(f)
	}
	l.queue = nil
	if rewind {
		// The abandoned batches may have stored rows before they were
		// cancelled: read the stored offsets again from the rewound
		// positions.
		forget := make(map[string][]int32, len(rewindTo))
		for t, ps := range rewindTo {
			for part := range ps {
				forget[t] = append(forget[t], part)
			}
		}
		p.takeover.forget(forget)
		l.cl.SetOffsets(rewindTo)
	}
}

func countPartitions(m map[string][]int32) int {
	n := 0
	for _, ps := range m {
		n += len(ps)
	}
	return n
}

func formatAssignment(m map[string][]int32) string {
	s := ""
	for t, ps := range m {
		if s != "" {
			s += " "
		}
		s += t + ":" + fmt.Sprint(ps)
	}
	return s
}

package gpu

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	ort "github.com/yalue/onnxruntime_go"
)

// encoding is one tokenized text, unpadded.
type encoding struct {
	ids, typeIDs []int64
}

// item is one text of a request on its way through the batcher.
type item struct {
	enc encoding
	req *request
	idx int
	out []float32 // set by the run function
}

// request is one Classify/Embed call. Only the worker goroutine writes its
// fields after submission; done is closed when every item has a result or
// the request failed.
type request struct {
	ctx       context.Context
	items     []item
	out       [][]float32
	remaining int
	err       error
	enqueued  time.Time
	done      chan struct{}
}

// runFunc runs one padded batch and sets out of every item; it is only
// called from the batcher's worker goroutine.
type runFunc func(items []*item) error

// batcher merges the texts of concurrent calls into inference batches of at
// most maxBatch texts. Once it has a text it waits up to maxWait for more;
// then it sorts what it gathered by token length (bucketing), cuts it into
// batches of maxBatch, pads each batch to its own longest text, runs them
// and routes each row back to its caller.
type batcher struct {
	maxBatch int
	maxWait  time.Duration
	bucket   bool
	run      runFunc
	metrics  *metrics

	reqs     chan *request
	quit     chan struct{}
	stopped  chan struct{}
	stopOnce sync.Once

	// Token counts of every run, for the padding ratio.
	realTokens, paddedTokens atomic.Int64
}

func newBatcher(maxBatch int, maxWait time.Duration, bucket bool, run runFunc, m *metrics) *batcher {
	b := &batcher{
		maxBatch: maxBatch,
		maxWait:  maxWait,
		bucket:   bucket,
		run:      run,
		metrics:  m,
		reqs:     make(chan *request, 64),
		quit:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	go b.loop()
	return b
}

// submit queues encs and waits for their outputs, ctx's end or stop.
func (b *batcher) submit(ctx context.Context, encs []encoding) ([][]float32, error) {
	if len(encs) == 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := &request{
		ctx:       ctx,
		items:     make([]item, len(encs)),
		out:       make([][]float32, len(encs)),
		remaining: len(encs),
		enqueued:  time.Now(),
		done:      make(chan struct{}),
	}
	for i, e := range encs {
		r.items[i] = item{enc: e, req: r, idx: i}
	}
	select {
	case b.reqs <- r:
	case <-b.quit:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-b.stopped:
		select {
		case <-r.done:
		default:
			return nil, ErrClosed
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return r.out, nil
}

// stop ends the worker after its current batch; queued requests fail with
// ErrClosed. It reports whether this call stopped it. ro, when not nil, is
// terminated to cut a long run short.
func (b *batcher) stop(ro *ort.RunOptions) bool {
	first := false
	b.stopOnce.Do(func() {
		first = true
		close(b.quit)
		if ro != nil {
			_ = ro.Terminate()
		}
		<-b.stopped
	})
	return first
}

func (b *batcher) loop() {
	defer close(b.stopped)
	var pending []*item
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case r := <-b.reqs:
			pending = appendItems(pending, r)
		case <-b.quit:
			b.failQueued(pending)
			return
		}
		if len(pending) < b.maxBatch {
			timer.Reset(b.maxWait)
		gather:
			for len(pending) < b.maxBatch {
				select {
				case r := <-b.reqs:
					pending = appendItems(pending, r)
				case <-timer.C:
					break gather
				case <-b.quit:
					timer.Stop()
					b.failQueued(pending)
					return
				}
			}
			timer.Stop()
		}
		pending = b.process(pending)
	}
}

func appendItems(pending []*item, r *request) []*item {
	for i := range r.items {
		pending = append(pending, &r.items[i])
	}
	return pending
}

// process runs the gathered items and returns pending emptied for reuse.
func (b *batcher) process(pending []*item) []*item {
	live := pending[:0]
	for _, it := range pending {
		if it.req.err == nil && it.req.ctx.Err() == nil {
			live = append(live, it)
		}
	}
	if b.bucket {
		slices.SortStableFunc(live, func(x, y *item) int { return len(x.enc.ids) - len(y.enc.ids) })
	}
	for start := 0; start < len(live); start += b.maxBatch {
		select {
		case <-b.quit:
			b.failQueued(live[start:])
			clear(pending)
			return pending[:0]
		default:
		}
		batch := live[start:min(start+b.maxBatch, len(live))]
		b.runBatch(batch)
	}
	clear(pending)
	return pending[:0]
}

func (b *batcher) runBatch(batch []*item) {
	now := time.Now()
	longest, tokens := 0, 0
	for _, it := range batch {
		b.metrics.queueWait.Observe(now.Sub(it.req.enqueued).Seconds())
		longest = max(longest, len(it.enc.ids))
		tokens += len(it.enc.ids)
	}
	all := max(longest, 1) * len(batch)
	b.realTokens.Add(int64(tokens))
	b.paddedTokens.Add(int64(all - tokens))
	b.metrics.batchSize.Observe(float64(len(batch)))
	b.metrics.padding.Observe(float64(all-tokens) / float64(all))
	err := b.run(batch)
	if err == nil {
		b.metrics.texts.Add(float64(len(batch)))
	}
	for _, it := range batch {
		r := it.req
		if err != nil && r.err == nil {
			r.err = err
		}
		if err == nil {
			r.out[it.idx] = it.out
		}
		it.out = nil
		r.remaining--
		if r.remaining == 0 || err != nil {
			b.finish(r)
		}
	}
}

// finish closes r.done once.
func (b *batcher) finish(r *request) {
	select {
	case <-r.done:
	default:
		close(r.done)
	}
}

// failQueued fails the given items and everything still queued with
// ErrClosed.
func (b *batcher) failQueued(pending []*item) {
	for _, it := range pending {
		if it.req.err == nil {
			it.req.err = ErrClosed
		}
		b.finish(it.req)
	}
	for {
		select {
		case r := <-b.reqs:
			r.err = ErrClosed
			b.finish(r)
		default:
			return
		}
	}
}

package llm

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/textpulse/textpulse/processor/enrich"
)

// Health states of an endpoint.
const (
	healthUnknown int32 = iota
	healthUp
	healthDown
)

// health tracks whether the endpoint of a stage serves requests. It logs
// and exports each change once: the first success, a failure that holds for
// every request, and the recovery. It is safe for concurrent use.
type health struct {
	stage string
	state atomic.Int32
	m     *metrics
	log   *slog.Logger
}

// newHealth returns the health of a stage's endpoint, exported as up until
// a request shows otherwise.
func newHealth(stage string, m *metrics, log *slog.Logger) *health {
	m.up.Set(1)
	return &health{stage: stage, m: m, log: log}
}

// known reports whether the last request succeeded.
func (h *health) known() bool { return h.state.Load() == healthUp }

// ok records a successful request.
func (h *health) ok() {
	if prev := h.state.Swap(healthUp); prev != healthUp {
		h.m.up.Set(1)
		if prev == healthDown {
			h.log.Info("llm endpoint serves requests again", "stage", h.stage)
		}
	}
}

// down records a failure that holds for every request to the endpoint.
func (h *health) down(re *RequestError) {
	cause := classifyWide(re)
	h.m.wide.WithLabelValues(cause).Inc()
	if prev := h.state.Swap(healthDown); prev != healthDown {
		h.m.up.Set(0)
		h.log.Error("llm endpoint refuses every request", "stage", h.stage, "cause", cause,
			"status", re.Status, "err", re)
	}
}

// classifyWide names the cause of an endpoint-wide failure for metrics.
func classifyWide(re *RequestError) string {
	switch {
	case re.Unsupported != "":
		return "unsupported_" + re.Unsupported
	case re.Status == 429:
		return causeQuota
	case re.Status == 401:
		return "unauthorized"
	case re.Status == 403:
		return "forbidden"
	case re.Status == 404:
		return "not_found"
	}
	return "other"
}

// run is the state of one batch over all its requests: the first
// endpoint-wide failure ends it, so that the other requests are not sent.
type run struct {
	mu  sync.Mutex
	err error
}

// stop records err as the end of the run, once.
func (r *run) stop(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = err
	}
}

// stopped returns the error that ended the run, or nil.
func (r *run) stopped() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// probe is the state of one top-level request and the requests it is split
// into: whether any of them succeeded, and whether the answers stay
// unusable, so that the rest is not sent.
type probe struct {
	succeeded atomic.Bool
	stuck     atomic.Bool
}

// sendFunc sends items with one request; invalidAttempts is how many times
// it is sent while the answer is invalid (at most MaxAttempts). It returns
// the attempts and nil or a *RequestError.
type sendFunc[R any] func(ctx context.Context, items []*enrich.Item[R], invalidAttempts int) (int, error)

// dispatch sends the requests of one batch. While the endpoint is not known
// to work, the first request goes alone, so that a failure that holds for
// every request costs that request only; the others are sent concurrently.
func (e *api[R]) dispatch(ctx context.Context, reqs [][]*enrich.Item[R], send sendFunc[R]) {
	rn := &run{}
	if len(reqs) > 1 && !e.health.known() {
		e.drive(ctx, rn, &probe{}, reqs[0], send, true, true)
		reqs = reqs[1:]
	}
	var wg sync.WaitGroup
	for _, req := range reqs {
		wg.Go(func() { e.drive(ctx, rn, &probe{}, req, send, true, true) })
	}
	wg.Wait()
}

// drive sends items and, when the answer is unusable, splits them, bounded
// as follows. An endpoint-wide failure ends the run at once. An unusable
// answer (invalid, refused, cut) splits the request in halves, sent one
// after the other: the first half is solved the same way, and while nothing
// of the top-level request has succeeded, the second half is sent once
// unsplit; when that fails too the answers stay unusable and the rest is
// not sent. A request of n items whose answers stay unusable thus costs at
// most floor(log2 n) + 2 requests. A request the endpoint refuses for its
// content (a 4xx) is split in halves concurrently, down to single texts.
func (e *api[R]) drive(ctx context.Context, rn *run, pr *probe, items []*enrich.Item[R], send sendFunc[R], split, top bool) {
	if err := rn.stopped(); err != nil {
		settle(items, 0, err)
		return
	}
	// A single text is sent again on an invalid answer: up to MaxAttempts
	// once something of its request succeeded, twice when it is the whole
	// request, and once while it is the probe of a failing request.
	invalidAttempts := 1
	switch {
	case len(items) == 1 && pr.succeeded.Load():
		invalidAttempts = e.cfg.MaxAttempts
	case len(items) == 1 && top:
		invalidAttempts = 2
	}
	attempts, err := send(ctx, items, invalidAttempts)
	if err == nil {
		pr.succeeded.Store(true)
		e.health.ok()
		return
	}
	var re *RequestError
	isRE := errors.As(err, &re)
	switch {
	case isRE && re.EndpointWide():
		rn.stop(err)
		e.health.down(re)
	case isRE && unusableAnswer(re):
		if len(items) < 2 || !split {
			break
		}
		e.m.retries.WithLabelValues(classify(err, nil).cause).Inc()
		mid := len(items) / 2
		e.drive(ctx, rn, pr, items[:mid], send, true, false)
		switch {
		case pr.stuck.Load():
			settle(items[mid:], 0, err)
		case !pr.succeeded.Load():
			e.drive(ctx, rn, pr, items[mid:], send, false, false)
			if !pr.succeeded.Load() {
				pr.stuck.Store(true)
			}
		default:
			e.drive(ctx, rn, pr, items[mid:], send, true, false)
		}
		return
	case splittable(len(items), err):
		halves(items, func(h []*enrich.Item[R]) { e.drive(ctx, rn, pr, h, send, true, false) })
		return
	}
	settle(items, attempts, err)
}

// unusableAnswer reports whether the endpoint answered but the answer
// cannot be used: invalid, refused or cut at the length limit.
func unusableAnswer(re *RequestError) bool {
	return errors.Is(re.Kind, ErrInvalidAnswer) || errors.Is(re.Kind, ErrRefused) || errors.Is(re.Kind, ErrCutAnswer)
}

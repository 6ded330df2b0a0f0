package llm

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/textpulse/textpulse/processor"
	"github.com/textpulse/textpulse/processor/enrich"
)

// FailurePolicy is the failure policy of a stage; see
// processor.FailurePolicy.
type FailurePolicy = processor.FailurePolicy

// Failure policies, as in package processor.
const (
	PolicyRetry      = processor.PolicyRetry
	PolicySkip       = processor.PolicySkip
	PolicyDeadLetter = processor.PolicyDeadLetter
)

// api is the provider of an API stage (see enrich.Provider): each attempt
// sends the texts still to resolve in requests to the stage's endpoint
// (solve), tracking the endpoint's health.
type api[R any] struct {
	name   string
	cfg    EndpointConfig
	m      *metrics
	health *health
	// truncate returns the text to send for a record's text.
	truncate func(text string) string
	// solve resolves items, setting Result and Done or Err and Attempts of
	// each; it returns when all are settled or ctx is done.
	solve func(ctx context.Context, items []*enrich.Item[R])
	// set stores a result in a record.
	set func(r *processor.Record, v R)
}

// Prepare implements enrich.Provider: the text truncated to the stage's
// input token budget, and its estimated tokens.
func (a *api[R]) Prepare(text string) (string, int) {
	t := a.truncate(text)
	return t, EstimateTokens(t)
}

// Resolve implements enrich.Provider.
func (a *api[R]) Resolve(ctx context.Context, items []*enrich.Item[R]) { a.solve(ctx, items) }

// Set implements enrich.Provider.
func (a *api[R]) Set(r *processor.Record, v R) { a.set(r, v) }

// Option changes how an API stage is built; see WithDefer.
type Option func(*options)

// options are what the Options of a stage set.
type options struct {
	deferFn func() bool
}

// WithDefer makes the stage defer a batch while f returns true: it sends
// no request for it and marks the records it has no cached result for
// failed for the stage (see enrich.Config.Defer). f must be safe for
// concurrent use and must not block.
func WithDefer(f func() bool) Option {
	return func(o *options) { o.deferFn = f }
}

// newEngine returns the engine of an API stage over a, configured by opts. The client retries
// each request itself (MaxAttempts, with backoff), so the engine makes one
// attempt before the policy applies; under the retry policy it tries the
// failed texts again with the same backoff, and while the endpoint refuses
// every request it probes it once per retry_max_interval.
func newEngine[R any](a *api[R], policy FailurePolicy, cacheSize int, cacheBytes int64, cacheScope string,
	log *slog.Logger, reg prometheus.Registerer, opts []Option,
) (*enrich.Engine[R], error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return enrich.New(enrich.Config{
		Stage:           a.name,
		Provider:        "api",
		Policy:          policy,
		MaxAttempts:     1,
		InitialInterval: a.cfg.RetryInitialInterval,
		MaxInterval:     a.cfg.RetryMaxInterval,
		CacheSize:       cacheSize,
		CacheBytes:      cacheBytes,
		CacheScope:      cacheScope,
		Defer:           o.deferFn,
	}, enrich.Provider[R](a), log, reg)
}

// settle records the failure of one request for its items.
func settle[R any](items []*enrich.Item[R], attempts int, err error) {
	for _, it := range items {
		it.Err, it.Attempts = err, attempts
	}
}

// splittable reports whether a failed request of n items is worth splitting
// in halves concurrently: the endpoint refused it for its content (unusable
// answers are split by engine.drive, one half after the other).
func splittable(n int, err error) bool {
	if n < 2 {
		return false
	}
	var re *RequestError
	if !errors.As(err, &re) {
		return false
	}
	return errors.Is(re.Kind, ErrRejected) && !re.EndpointWide()
}

// halves runs f on both halves of items concurrently and waits.
func halves[R any](items []*enrich.Item[R], f func([]*enrich.Item[R])) {
	mid := len(items) / 2
	var wg sync.WaitGroup
	wg.Go(func() { f(items[:mid]) })
	f(items[mid:])
	wg.Wait()
}

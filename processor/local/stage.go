package local

import (
	"context"
	"fmt"
	"hash/maphash"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v5"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/textpulse/textpulse/gpu"
	"github.com/textpulse/textpulse/processor"
)

// engine is what the local stages share: deduplication, the cache, retries
// and the failure policy. R is the model's result for one text.
type engine[R any] struct {
	name        string
	policy      processor.FailurePolicy
	maxAttempts uint
	seed        maphash.Seed
	cache       *lru.Cache[uint64, R]
	m           *metrics
	log         *slog.Logger
	// infer runs the model on texts and returns one result per text, in
	// order, or an error and no results.
	infer func(ctx context.Context, texts []string) ([]R, error)
	// set stores a result in a record.
	set func(r *processor.Record, v R)
}

// newEngine returns an engine for cfg; infer and set are filled in by the
// caller.
func newEngine[R any](name string, cfg Config, log *slog.Logger, m *metrics) (*engine[R], error) {
	e := &engine[R]{
		name:        name,
		policy:      cfg.OnFailure,
		maxAttempts: uint(cfg.MaxAttempts),
		seed:        maphash.MakeSeed(),
		m:           m,
		log:         log,
	}
	if cfg.CacheSize > 0 {
		c, err := lru.New[uint64, R](cfg.CacheSize)
		if err != nil {
			return nil, fmt.Errorf("create %s cache: %w", name, err)
		}
		e.cache = c
	}
	return e, nil
}

// enrich runs the stage on b; see processor.Stage. Results may be shared
// between records with the same text and with the cache; they must not be
// modified.
func (e *engine[R]) enrich(ctx context.Context, b *processor.Batch) error {
	// byText maps each distinct uncached text to its position in texts;
	// owners lists the records of each.
	byText := make(map[string]int, len(b.Records))
	var texts []string
	var owners [][]int
	var keys []uint64
	for i := range b.Records {
		r := &b.Records[i]
		if j, ok := byText[r.Text]; ok {
			owners[j] = append(owners[j], i)
			continue
		}
		k := maphash.String(e.seed, r.Text)
		if e.cache != nil {
			e.m.cacheLooks.Inc()
			if v, ok := e.cache.Get(k); ok {
				e.m.cacheHits.Inc()
				e.set(r, v)
				continue
			}
		}
		byText[r.Text] = len(texts)
		texts = append(texts, r.Text)
		owners = append(owners, []int{i})
		keys = append(keys, k)
	}
	if len(texts) == 0 {
		return nil
	}
	results, attempts, err := e.call(ctx, texts)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("enrich batch %s with %s: %w", b.ID, e.name, ctx.Err())
		}
		e.fail(b, owners, attempts, err)
		return nil
	}
	for j, v := range results {
		if e.cache != nil {
			e.cache.Add(keys[j], v)
		}
		for _, i := range owners[j] {
			e.set(&b.Records[i], v)
		}
	}
	return nil
}

// call runs the model on texts with retries: up to maxAttempts tries, or
// until ctx is done under the retry policy. A permanent error is not
// retried, except under the retry policy; only inference failures
// (gpu.Retryable) are transient. It returns the number of tries.
func (e *engine[R]) call(ctx context.Context, texts []string) ([]R, int, error) {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 100 * time.Millisecond
	bo.MaxInterval = 10 * time.Second
	opts := []backoff.RetryOption{backoff.WithBackOff(bo), backoff.WithMaxElapsedTime(0)}
	if e.policy != processor.PolicyRetry {
		opts = append(opts, backoff.WithMaxTries(e.maxAttempts))
	}
	attempts := 0
	res, err := backoff.Retry(ctx, func() ([]R, error) {
		attempts++
		res, err := e.infer(ctx, texts)
		if err == nil && len(res) != len(texts) {
			err = fmt.Errorf("model returned %d results for %d texts", len(res), len(texts))
		}
		if err != nil {
			e.m.attempts.WithLabelValues("error").Inc()
			if ctx.Err() == nil {
				e.log.Warn("local model call failed", "stage", e.name, "texts", len(texts), "err", err)
			}
			if (processor.IsPermanent(err) || !gpu.Retryable(err)) && e.policy != processor.PolicyRetry {
				return nil, backoff.Permanent(err)
			}
			return nil, err
		}
		e.m.attempts.WithLabelValues("ok").Inc()
		return res, nil
	}, opts...)
	return res, attempts, err
}

// fail applies the failure policy to every record in owners.
func (e *engine[R]) fail(b *processor.Batch, owners [][]int, attempts int, err error) {
	n := 0
	for _, recs := range owners {
		for _, i := range recs {
			n++
			if e.policy == processor.PolicyDeadLetter {
				b.Reject(i, e.name, processor.ClassStageFailed, err, attempts)
			} else {
				b.MarkFailed(i, e.name)
			}
		}
	}
	e.m.failures.WithLabelValues(string(e.policy)).Add(float64(n))
	e.log.Error("local model stage gave up", "stage", e.name, "batch", b.ID,
		"records", n, "policy", e.policy, "err", err)
}

package llm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/cenkalti/backoff/v5"

	"github.com/textpulse/textpulse/processor"
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

// item is one distinct text of a batch and what became of it. Only the
// goroutine that owns a request writes the items of that request.
type item[R any] struct {
	key      cacheKey
	text     string
	tokens   int
	records  []int
	result   R
	done     bool
	err      error
	attempts int
}

// engine is what the stages share: deduplication, cache, failure policy
// and logging.
type engine[R any] struct {
	name   string
	policy FailurePolicy
	cfg    EndpointConfig
	cache  *cache[R]
	m      *metrics
	log    *slog.Logger
	health *health
	// prepare returns the text to send for a record's text.
	prepare func(text string) string
	// key returns the cache key of a record's text.
	key func(text string) cacheKey
	// solve resolves items, setting result and done or err and attempts of
	// each; it returns when all are settled or ctx is done.
	solve func(ctx context.Context, items []*item[R])
	// set stores a result in a record.
	set func(r *processor.Record, v R)
}

// enrich runs the stage on b; see processor.Stage.
func (e *engine[R]) enrich(ctx context.Context, b *processor.Batch) error {
	byKey := make(map[cacheKey]*item[R], len(b.Records))
	items := make([]*item[R], 0, len(b.Records))
	var pending []*item[R]
	for i := range b.Records {
		text := b.Records[i].Text
		k := e.key(text)
		if it, ok := byKey[k]; ok {
			it.records = append(it.records, i)
			continue
		}
		it := &item[R]{key: k, records: []int{i}}
		byKey[k] = it
		items = append(items, it)
		if v, ok := e.cache.get(k); ok {
			it.result, it.done = v, true
			continue
		}
		it.text = e.prepare(text)
		it.tokens = EstimateTokens(it.text)
		pending = append(pending, it)
	}

	bo := &backoff.ExponentialBackOff{
		InitialInterval:     e.cfg.RetryInitialInterval,
		RandomizationFactor: backoff.DefaultRandomizationFactor,
		Multiplier:          backoff.DefaultMultiplier,
		MaxInterval:         e.cfg.RetryMaxInterval,
	}
	bo.Reset()
	logged := false
	for len(pending) > 0 {
		e.solve(ctx, pending)
		var failed []*item[R]
		for _, it := range pending {
			if it.done {
				e.cache.add(it.key, it.result)
			} else {
				failed = append(failed, it)
			}
		}
		if len(failed) == 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("enrich batch %s with %s: %w", b.ID, e.name, err)
		}
		if !logged {
			e.logFailures(b.ID, failed)
			logged = true
		}
		if e.policy != PolicyRetry {
			e.fail(b, failed)
			break
		}
		wait := bo.NextBackOff()
		if !e.health.known() && e.health.state.Load() == healthDown {
			// Nothing will change before someone fixes the key, quota or
			// model: probe with one request per retry_max_interval.
			wait = e.cfg.RetryMaxInterval
		}
		for _, it := range failed {
			it.err = nil
		}
		pending = failed
		if err := sleep(ctx, wait); err != nil {
			return fmt.Errorf("enrich batch %s with %s: %w", b.ID, e.name, err)
		}
	}
	for _, it := range items {
		if it.done {
			for _, i := range it.records {
				e.set(&b.Records[i], it.result)
			}
		}
	}
	return nil
}

// fail applies the failure policy to the records of failed items.
func (e *engine[R]) fail(b *processor.Batch, failed []*item[R]) {
	for _, it := range failed {
		for _, i := range it.records {
			e.m.failures.WithLabelValues(string(e.policy)).Inc()
			if e.policy == PolicyDeadLetter {
				b.Reject(i, e.name, processor.ClassStageFailed, it.err, it.attempts)
			} else {
				b.MarkFailed(i, e.name)
			}
		}
	}
}

// logFailures logs the failures of a batch once: at error
// level when the endpoint refused everything (a bad key, an unknown model),
// at warning level otherwise.
func (e *engine[R]) logFailures(batch string, failed []*item[R]) {
	records := 0
	var first error
	endpointWide := false
	for _, it := range failed {
		records += len(it.records)
		if first == nil {
			first = it.err
		}
		var re *RequestError
		if errors.As(it.err, &re) && re.EndpointWide() {
			endpointWide = true
			first = it.err
		}
	}
	if endpointWide {
		// The change of health was logged once at error level.
		e.log.Debug("llm endpoint refused requests", "stage", e.name, "batch", batch,
			"records", records, "policy", e.policy, "err", first)
		return
	}
	e.log.Warn("llm enrichment failed", "stage", e.name, "batch", batch,
		"records", records, "policy", e.policy, "err", first)
}

// settle records the failure of one request for its items.
func settle[R any](items []*item[R], attempts int, err error) {
	for _, it := range items {
		it.err, it.attempts = err, attempts
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
func halves[R any](items []*item[R], f func([]*item[R])) {
	mid := len(items) / 2
	var wg sync.WaitGroup
	wg.Go(func() { f(items[:mid]) })
	f(items[mid:])
	wg.Wait()
}

package enrich

import (
	"cmp"
	"context"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/textpulse/textpulse/processor"
)

// Item is one distinct text of a batch and what became of it in the
// current attempt. Records with the same text share one item.
type Item[R any] struct {
	// Text is what the provider works on: the record's text as
	// Provider.Prepare returned it.
	Text string
	// Tokens is the estimate Prepare returned (0 where not counted).
	Tokens int
	// Result and Done are set by the provider when it has the result.
	Result R
	Done   bool
	// Err and Attempts are set by the provider when it has none: the last
	// error and how many times it tried in this attempt.
	Err      error
	Attempts int

	key      uint64
	records  []int
	attempts int
}

// Provider computes the results of one stage.
//
// Resolve settles every item it is given: it sets Result and Done, or Err
// and Attempts. Only the goroutine that works on an item writes it; Resolve
// returns when all items are settled or ctx is done (an item left unsettled
// counts as failed with ctx's error). It may block on the network or an
// accelerator, and retries within one attempt as it sees fit (an API client
// retries 429s and 5xx; the engine's own attempts come on top). Prepare and
// Set are called from one goroutine per batch and must not block.
type Provider[R any] interface {
	// Prepare returns the text to send for a record's text (for example
	// truncated to a token budget) and its estimated tokens.
	Prepare(text string) (string, int)
	// Resolve settles items; see the Provider contract.
	Resolve(ctx context.Context, items []*Item[R])
	// Set stores a result in a record. Results may be shared between
	// records with the same text and with the cache; Set must not modify
	// them.
	Set(r *processor.Record, v R)
}

// resultOverhead is the estimated memory of one cache entry beside its
// result's own data: the key, the list element and the map slot.
const resultOverhead = 96

// resultSize estimates the bytes one result holds in the cache: a
// []float32 (an embedding) 4 bytes per element, any other result (a label
// and a score, a few emotion scores) nothing beside resultOverhead.
func resultSize[R any](v R) int64 {
	if f, ok := any(v).([]float32); ok {
		return resultOverhead + 4*int64(len(f))
	}
	return resultOverhead
}

// Config configures an engine.
type Config struct {
	// Stage is the stage's name, in metrics, logs and failed_stages.
	Stage string
	// Provider names what computes the results ("api", "local"), in
	// metrics and logs.
	Provider string
	// Policy is what happens to a record whose text failed for good.
	Policy processor.FailurePolicy
	// MaxAttempts is how many attempts a text with a retryable failure
	// gets before Policy applies; under PolicyRetry every failure is tried
	// again until the batch's context ends. At least 1.
	MaxAttempts int
	// InitialInterval and MaxInterval bound the backoff between attempts.
	// While the failures are endpoint-wide the engine waits MaxInterval,
	// so that a broken endpoint is probed rather than hammered.
	InitialInterval, MaxInterval time.Duration
	// CacheSize is how many results the cache keeps; 0 disables it.
	CacheSize int
	// CacheBytes bounds the estimated bytes the cache holds (see resultSize);
	// 0 bounds the entries only.
	CacheBytes int64
	// CacheScope is what determines a result besides the text (the model,
	// the dimensions); it is part of the cache key.
	CacheScope string
	// Defer, when set, is asked at the start of every batch whether to
	// defer the stage: while it returns true the provider is not called,
	// the texts the cache holds are still answered from it, and every
	// other record is marked failed for the stage whatever the policy
	// (written with status partial and the stage in failed_stages, to be
	// enriched later). Nil never defers. It must be safe for concurrent
	// use and must not block.
	Defer func() bool
}

// Engine runs one stage; it implements processor.Stage. It is safe for
// concurrent use by several batches.
type Engine[R any] struct {
	cfg   Config
	p     Provider[R]
	seed  maphash.Seed
	cache *lru.Cache[uint64, R]
	// bytes is the estimated size of the cache's results.
	bytes atomic.Int64
	m     *metrics
	log   *slog.Logger
	// deferring is whether the last batch was deferred, so that the start
	// and the end of a deferral are logged once.
	deferring atomic.Bool
}

// New returns an engine over p; its metrics are registered on reg (nil
// registers nothing).
func New[R any](cfg Config, p Provider[R], log *slog.Logger, reg prometheus.Registerer) (*Engine[R], error) {
	if cfg.MaxAttempts < 1 {
		return nil, fmt.Errorf("create %s engine: max attempts %d: %w", cfg.Stage, cfg.MaxAttempts, ErrInvalidConfig)
	}
	if err := cfg.Policy.Validate(); err != nil {
		return nil, fmt.Errorf("create %s engine: %w: %w", cfg.Stage, ErrInvalidConfig, err)
	}
	if cfg.CacheBytes < 0 {
		return nil, fmt.Errorf("create %s engine: cache bytes %d: %w", cfg.Stage, cfg.CacheBytes, ErrInvalidConfig)
	}
	e := &Engine[R]{cfg: cfg, p: p, seed: maphash.MakeSeed(), log: log}
	if cfg.CacheSize > 0 {
		c, err := lru.NewWithEvict[uint64, R](cfg.CacheSize, func(_ uint64, v R) { e.bytes.Add(-resultSize(v)) })
		if err != nil {
			return nil, fmt.Errorf("create %s cache: %w", cfg.Stage, err)
		}
		e.cache = c
	}
	e.m = newMetrics(cfg, e.cacheLen, func() float64 { return float64(e.bytes.Load()) }, reg)
	return e, nil
}

// Name implements processor.Stage.
func (e *Engine[R]) Name() string { return e.cfg.Stage }

// Enrich implements processor.Stage: it sets the results of b's records,
// or applies the failure policy to those it has none for. It returns an
// error only when ctx ends first. While Config.Defer says so, it sets only
// the cached results and marks the other records failed for the stage.
func (e *Engine[R]) Enrich(ctx context.Context, b *processor.Batch) error {
	b.PrepareResults()
	deferred := e.deferred()
	items, pending := e.collect(b)
	if deferred {
		e.postpone(b, pending)
	} else if err := e.resolve(ctx, b, pending); err != nil {
		return fmt.Errorf("enrich batch %s with %s: %w", b.ID, e.cfg.Stage, err)
	}
	for _, it := range items {
		if it.Done {
			for _, i := range it.records {
				e.p.Set(&b.Records[i], it.Result)
			}
		}
	}
	return nil
}

// collect groups the records of b by text and answers what it can from the
// cache; it returns every item and those still to resolve.
func (e *Engine[R]) collect(b *processor.Batch) (items, pending []*Item[R]) {
	byKey := make(map[uint64]*Item[R], len(b.Records))
	items = make([]*Item[R], 0, len(b.Records))
	for i := range b.Records {
		k := e.key(b.Records[i].Text)
		if it, ok := byKey[k]; ok {
			it.records = append(it.records, i)
			continue
		}
		it := &Item[R]{key: k, records: []int{i}}
		byKey[k] = it
		items = append(items, it)
		if v, ok := e.cached(k); ok {
			it.Result, it.Done = v, true
			continue
		}
		it.Text, it.Tokens = e.p.Prepare(b.Records[i].Text)
		pending = append(pending, it)
	}
	return items, pending
}

// deferred asks Config.Defer whether to defer the current batch, and logs
// when a deferral starts or ends.
func (e *Engine[R]) deferred() bool {
	if e.cfg.Defer == nil {
		return false
	}
	d := e.cfg.Defer()
	if e.deferring.CompareAndSwap(!d, d) {
		if d {
			e.log.Info("enrichment deferred", "stage", e.cfg.Stage, "provider", e.cfg.Provider)
		} else {
			e.log.Info("enrichment resumed", "stage", e.cfg.Stage, "provider", e.cfg.Provider)
		}
	}
	return d
}

// postpone marks the records of pending failed for the stage, without
// asking the provider, so that they are enriched later.
func (e *Engine[R]) postpone(b *processor.Batch, pending []*Item[R]) {
	n := 0
	for _, it := range pending {
		for _, i := range it.records {
			b.MarkFailed(i, e.cfg.Stage)
		}
		n += len(it.records)
	}
	e.m.deferred.Add(float64(n))
}

// resolve runs attempts on pending until every item is done or has failed
// for good, applying the failure policy to the latter. It returns ctx's
// error when ctx ends first.
func (e *Engine[R]) resolve(ctx context.Context, b *processor.Batch, pending []*Item[R]) error {
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     e.cfg.InitialInterval,
		RandomizationFactor: backoff.DefaultRandomizationFactor,
		Multiplier:          backoff.DefaultMultiplier,
		MaxInterval:         e.cfg.MaxInterval,
	}
	bo.Reset()
	for attempt := 1; len(pending) > 0; attempt++ {
		e.p.Resolve(ctx, pending)
		failed := e.settle(ctx, pending)
		if len(failed) == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if attempt == 1 {
			e.logFailures(b.ID, failed)
		}
		pending = e.again(b, failed, attempt)
		if len(pending) == 0 {
			return nil
		}
		e.m.retries.Add(float64(len(pending)))
		wait := bo.NextBackOff()
		if wide(pending) {
			wait = e.cfg.MaxInterval
		}
		for _, it := range pending {
			it.Err, it.Attempts = nil, 0
		}
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
	return nil
}

// settle caches the results of one attempt and returns the failed items.
func (e *Engine[R]) settle(ctx context.Context, items []*Item[R]) []*Item[R] {
	var failed []*Item[R]
	for _, it := range items {
		if it.Done {
			e.remember(it.key, it.Result)
			continue
		}
		if it.Err == nil {
			it.Err = cmp.Or(ctx.Err(), ErrUnsettled)
		}
		it.attempts += max(it.Attempts, 1)
		failed = append(failed, it)
	}
	return failed
}

// again applies the failure policy to the failed items that get no more
// attempts and returns the others.
func (e *Engine[R]) again(b *processor.Batch, failed []*Item[R], attempt int) []*Item[R] {
	var retry []*Item[R]
	for _, it := range failed {
		if e.cfg.Policy == processor.PolicyRetry || (attempt < e.cfg.MaxAttempts && processor.IsRetryable(it.Err)) {
			retry = append(retry, it)
			continue
		}
		for _, i := range it.records {
			if e.cfg.Policy == processor.PolicyDeadLetter {
				b.Reject(i, e.cfg.Stage, processor.ClassStageFailed, it.Err, it.attempts)
			} else {
				b.MarkFailed(i, e.cfg.Stage)
			}
		}
		e.m.failures.WithLabelValues(string(e.cfg.Policy)).Add(float64(len(it.records)))
	}
	return retry
}

// logFailures logs the first failed attempt of a batch: at debug level when
// the failure is endpoint-wide (the provider logs the change of its
// endpoint's health once), at warning level otherwise.
func (e *Engine[R]) logFailures(batch string, failed []*Item[R]) {
	records := 0
	first := failed[0].Err
	for _, it := range failed {
		records += len(it.records)
	}
	if wide(failed) {
		e.log.Debug("enrichment endpoint refused requests", "stage", e.cfg.Stage, "provider", e.cfg.Provider,
			"batch", batch, "records", records, "policy", e.cfg.Policy, "err", first)
		return
	}
	e.log.Warn("enrichment failed", "stage", e.cfg.Stage, "provider", e.cfg.Provider,
		"batch", batch, "records", records, "policy", e.cfg.Policy, "err", first)
}

// key returns the cache key of a text: a hash of the scope and the text,
// so that texts are never kept as keys.
func (e *Engine[R]) key(text string) uint64 {
	var h maphash.Hash
	h.SetSeed(e.seed)
	_, _ = h.WriteString(e.cfg.CacheScope)
	_ = h.WriteByte(0)
	_, _ = h.WriteString(text)
	return h.Sum64()
}

// cached looks k up in the cache.
func (e *Engine[R]) cached(k uint64) (R, bool) {
	if e.cache == nil {
		var zero R
		return zero, false
	}
	e.m.lookups.Inc()
	v, ok := e.cache.Get(k)
	if ok {
		e.m.hits.Inc()
	}
	return v, ok
}

// remember adds a result to the cache and evicts the least recently used
// ones while the cache holds more than CacheBytes.
func (e *Engine[R]) remember(k uint64, v R) {
	if e.cache == nil {
		return
	}
	if old, ok := e.cache.Peek(k); ok {
		e.bytes.Add(-resultSize(old))
	}
	e.bytes.Add(resultSize(v))
	e.cache.Add(k, v)
	for e.cfg.CacheBytes > 0 && e.bytes.Load() > e.cfg.CacheBytes && e.cache.Len() > 1 {
		e.cache.RemoveOldest()
	}
}

// cacheLen is the number of results in the cache.
func (e *Engine[R]) cacheLen() float64 {
	if e.cache == nil {
		return 0
	}
	return float64(e.cache.Len())
}

// wide reports whether any of items failed endpoint-wide.
func wide[R any](items []*Item[R]) bool {
	for _, it := range items {
		if processor.IsEndpointWide(it.Err) {
			return true
		}
	}
	return false
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

package local

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/textpulse/textpulse/processor"
	"github.com/textpulse/textpulse/processor/enrich"
)

// Backoff between attempts of a failed model call.
const (
	retryInitialInterval = 100 * time.Millisecond
	retryMaxInterval     = 10 * time.Second
)

// model is the provider of a local stage: each attempt is one call of the
// model with every text still to resolve (the model's dynamic batcher cuts
// it into inference batches). R is the model's result for one text.
type model[R any] struct {
	stage string
	// infer runs the model on texts and returns one result per text, in
	// order, or an error and no results.
	infer func(ctx context.Context, texts []string) ([]R, error)
	// set stores a result in a record.
	set   func(r *processor.Record, v R)
	calls *prometheus.CounterVec
	log   *slog.Logger
}

// newStage returns the engine of a local stage over infer and set; its
// metrics are registered on reg. Only inference failures
// (gpu.ErrInference) are retried, up to cfg.MaxAttempts attempts, except
// under the retry policy, which tries every failure again.
func newStage[R any](name string, cfg Config, log *slog.Logger, reg prometheus.Registerer,
	infer func(ctx context.Context, texts []string) ([]R, error), set func(r *processor.Record, v R),
) (*enrich.Engine[R], error) {
	p := &model[R]{stage: name, infer: infer, set: set, calls: newMetrics(name, reg).calls, log: log}
	return enrich.New(enrich.Config{
		Stage:           name,
		Provider:        "local",
		Policy:          cfg.OnFailure,
		MaxAttempts:     cfg.MaxAttempts,
		InitialInterval: retryInitialInterval,
		MaxInterval:     retryMaxInterval,
		CacheSize:       cfg.CacheSize,
		CacheBytes:      cfg.CacheMaxBytes,
	}, enrich.Provider[R](p), log, reg)
}

// Prepare implements enrich.Provider: the model gets the text as it is
// (its tokenizer truncates).
func (m *model[R]) Prepare(text string) (string, int) { return text, 0 }

// Set implements enrich.Provider.
func (m *model[R]) Set(r *processor.Record, v R) { m.set(r, v) }

// Resolve implements enrich.Provider with one model call for all items.
func (m *model[R]) Resolve(ctx context.Context, items []*enrich.Item[R]) {
	texts := make([]string, len(items))
	for i, it := range items {
		texts[i] = it.Text
	}
	res, err := m.infer(ctx, texts)
	if err == nil && len(res) != len(texts) {
		err = fmt.Errorf("model returned %d results for %d texts", len(res), len(texts))
	}
	if err != nil {
		m.calls.WithLabelValues("error").Inc()
		if ctx.Err() == nil {
			m.log.Warn("local model call failed", "stage", m.stage, "texts", len(texts), "err", err)
		}
		for _, it := range items {
			it.Err, it.Attempts = err, 1
		}
		return
	}
	m.calls.WithLabelValues("ok").Inc()
	for i, it := range items {
		it.Result, it.Done = res[i], true
	}
}

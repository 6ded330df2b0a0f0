package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/textpulse/textpulse/gpu"
	"github.com/textpulse/textpulse/processor"
	"github.com/textpulse/textpulse/processor/llm"
	"github.com/textpulse/textpulse/processor/local"
)

// Stage providers: an OpenAI-compatible API or a model run in-process.
const (
	providerAPI   = "api"
	providerLocal = "local"
)

// StagesConfig selects and configures the enrichment stages. With none
// enabled, events are ingested raw.
type StagesConfig struct {
	Embedding EmbeddingStageConfig `koanf:"embedding"`
	Sentiment SentimentStageConfig `koanf:"sentiment"`
	Emotion   EmotionStageConfig   `koanf:"emotion"`
	// BatchAPI configures the API stages on the Batch API, which
	// consumer enrich --via batch uses.
	BatchAPI llm.BatchConfig `koanf:"batch_api"`
}

// EmbeddingStageConfig is the embedding stage: through an
// OpenAI-compatible embeddings API (provider api, the keys at this level),
// or with a feature-extraction model run by ONNX Runtime (provider local,
// the keys under local).
type EmbeddingStageConfig struct {
	Enabled  bool   `koanf:"enabled"`
	Provider string `koanf:"provider"`
	// DeferAboveLag (records; 0 never) makes the API stage send nothing
	// while the consumer lag measured by the lag monitor
	// (kafka.lag_interval) is above it, until the lag falls below 80% of
	// it: the records the stage's cache cannot answer are written with
	// status partial and the stage in failed_stages, to be enriched later
	// by the enrich command. It is refused for provider local, whose cost
	// does not grow with the backlog as an API's quota and bill do, and
	// without a lag monitor.
	DeferAboveLag       int64 `koanf:"defer_above_lag"`
	llm.EmbeddingConfig `koanf:",squash"`
	Local               local.Config `koanf:"local"`
}

// SentimentStageConfig is the sentiment stage: through an OpenAI-compatible
// chat completions API (provider api, the keys at this level), or with a
// negative/neutral/positive classifier run by ONNX Runtime (provider local,
// the keys under local).
type SentimentStageConfig struct {
	Enabled  bool   `koanf:"enabled"`
	Provider string `koanf:"provider"`
	// DeferAboveLag is as in EmbeddingStageConfig.
	DeferAboveLag       int64 `koanf:"defer_above_lag"`
	llm.SentimentConfig `koanf:",squash"`
	Local               local.Config `koanf:"local"`
}

// EmotionStageConfig is the emotion stage: a sequence classifier run by ONNX
// Runtime, on a CUDA GPU when the library and a device allow it.
type EmotionStageConfig struct {
	Enabled      bool `koanf:"enabled"`
	local.Config `koanf:",squash"`
}

// ORTConfig locates ONNX Runtime for the local stages.
type ORTConfig struct {
	// Lib is the path of the ONNX Runtime shared library
	// (libonnxruntime.so.1.x); a CUDA build of it lets device auto or
	// cuda run on the GPU. Empty looks for libonnxruntime.so in the
	// dynamic linker's search path.
	Lib string `koanf:"lib"`
}

// defaultStagesConfig returns the stage defaults; every stage is disabled.
func defaultStagesConfig() StagesConfig {
	c := StagesConfig{
		Embedding: EmbeddingStageConfig{Provider: providerAPI, EmbeddingConfig: llm.DefaultEmbeddingConfig(), Local: sharedCacheLocal()},
		Sentiment: SentimentStageConfig{Provider: providerAPI, SentimentConfig: llm.DefaultSentimentConfig(), Local: sharedCacheLocal()},
		Emotion:   EmotionStageConfig{Config: sharedCacheLocal()},
		BatchAPI:  llm.DefaultBatchConfig(),
	}
	// The caches take their share of memory.limit unless bounded here.
	c.Embedding.CacheMaxBytes = 0
	c.Sentiment.CacheMaxBytes = 0
	return c
}

// sharedCacheLocal is local.DefaultConfig with the cache bounded by its
// share of memory.limit.
func sharedCacheLocal() local.Config {
	c := local.DefaultConfig()
	c.CacheMaxBytes = 0
	return c
}

// deferResumeShare is the share of defer_above_lag below which the lag
// must fall for a deferring stage to resume.
const deferResumeShare = 0.8

// stageEntry is one enrichment stage as the consumer wires it: its name
// (the config key under stages, the stage's name in metrics and
// failed_stages), whether it is enabled, the provider chosen, the lag
// above which it defers (0 never), and per provider how its config is
// validated and how the stage is built. The list in entries is the one
// place that names the stages.
type stageEntry struct {
	name          string
	enabled       bool
	provider      string
	deferAboveLag int64
	validate      map[string]func() error
	build         map[string]buildFunc
}

// buildFunc builds one stage with b's runtime, logger, registry and lag.
type buildFunc func(ctx context.Context, b *stageBuilder) (processor.Stage, error)

// entries lists the stages in the order they are built.
func (c StagesConfig) entries() []stageEntry {
	return []stageEntry{
		{
			name: "embedding", enabled: c.Embedding.Enabled, provider: c.Embedding.Provider, deferAboveLag: c.Embedding.DeferAboveLag,
			validate: map[string]func() error{providerAPI: c.Embedding.Validate, providerLocal: c.Embedding.Local.Validate},
			build: map[string]buildFunc{providerAPI: apiEmbedding(c.Embedding.EmbeddingConfig, c.BatchAPI, c.Embedding.DeferAboveLag),
				providerLocal: localEmbedding(c.Embedding.Local)},
		},
		{
			name: "sentiment", enabled: c.Sentiment.Enabled, provider: c.Sentiment.Provider, deferAboveLag: c.Sentiment.DeferAboveLag,
			validate: map[string]func() error{providerAPI: c.Sentiment.Validate, providerLocal: c.Sentiment.Local.Validate},
			build: map[string]buildFunc{providerAPI: apiSentiment(c.Sentiment.SentimentConfig, c.BatchAPI, c.Sentiment.DeferAboveLag),
				providerLocal: localSentiment(c.Sentiment.Local)},
		},
		{
			name: "emotion", enabled: c.Emotion.Enabled, provider: providerLocal,
			validate: map[string]func() error{providerLocal: c.Emotion.Validate},
			build:    map[string]buildFunc{providerLocal: localEmotion(c.Emotion.Config)},
		},
	}
}

// validate checks the enabled stages; lagInterval is how often the
// consumer lag is measured (0 never), which defer_above_lag needs.
func (c StagesConfig) validate(lagInterval time.Duration) error {
	var errs []error
	if err := c.BatchAPI.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("stages.batch_api: %w", err))
	}
	for _, e := range c.entries() {
		if !e.enabled {
			continue
		}
		v, ok := e.validate[e.provider]
		if !ok {
			errs = append(errs, fmt.Errorf("stages.%s: provider %q: want %s", e.name, e.provider, providerNames(e)))
			continue
		}
		if err := v(); err != nil {
			errs = append(errs, fmt.Errorf("stages.%s: %w", e.name, err))
		}
		if err := e.validateDefer(lagInterval); err != nil {
			errs = append(errs, fmt.Errorf("stages.%s: %w", e.name, err))
		}
	}
	return errors.Join(errs...)
}

// validateDefer checks defer_above_lag; see EmbeddingStageConfig.
func (e stageEntry) validateDefer(lagInterval time.Duration) error {
	switch {
	case e.deferAboveLag < 0:
		return fmt.Errorf("defer_above_lag %d: want 0 (never defer) or more records", e.deferAboveLag)
	case e.deferAboveLag == 0:
		return nil
	case e.provider != providerAPI:
		return fmt.Errorf("defer_above_lag %d: only provider api defers, set it to 0 for provider %s", e.deferAboveLag, e.provider)
	case lagInterval <= 0:
		return fmt.Errorf("defer_above_lag %d needs the lag monitor: set kafka.lag_interval above 0", e.deferAboveLag)
	}
	return nil
}

// providerNames lists the providers of e, "api or local".
func providerNames(e stageEntry) string {
	names := slices.Sorted(maps.Keys(e.validate))
	return strings.Join(names, " or ")
}

// usesORT reports whether an enabled stage runs a model in-process.
func (c StagesConfig) usesORT() bool { return runsLocal(c.entries()) }

// runsLocal reports whether an enabled entry of es runs a model in-process.
func runsLocal(es []stageEntry) bool {
	for _, e := range es {
		if e.enabled && e.provider == providerLocal {
			return true
		}
	}
	return false
}

// stageSet is the enabled stages and what they hold open.
type stageSet struct {
	stages  []processor.Stage
	closers []func() error
	// models describes each loaded local model, for the check command.
	models []string
	// viaBatch builds the API stages on the Batch API.
	viaBatch bool
	// only, when set, names the stages to build among the enabled ones.
	only []string
	// modelOf is the model of each built stage, as its rows name it in
	// their <stage>_model column.
	modelOf map[string]string
}

// Close releases the models and ONNX Runtime, last opened first.
func (s *stageSet) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// buildStages creates the enabled enrichment stages, loading their models;
// the caller closes the set when the pipeline has stopped. lag reads the
// consumer lag for defer_above_lag; nil never defers.
func buildStages(ctx context.Context, cfg Config, lag func() int64, log *slog.Logger, reg prometheus.Registerer) (*stageSet, error) {
	return buildStageSet(ctx, cfg, &stageSet{}, lag, log, reg)
}

// buildStageSet builds into set the enabled stages it selects (see
// stageSet.only and viaBatch, which consumer enrich sets).
func buildStageSet(ctx context.Context, cfg Config, set *stageSet, lag func() int64, log *slog.Logger, reg prometheus.Registerer) (*stageSet, error) {
	cfg.Stages = cfg.Stages.cacheShares(cfg.Memory.heapLimit(cfg.Stages.nativeMemory()))
	if err := set.build(ctx, cfg, lag, log, reg); err != nil {
		return nil, errors.Join(err, set.Close())
	}
	return set, nil
}

// stageBuilder is what building a stage needs: the ONNX Runtime (nil when
// no stage runs a model in-process), the logger, the registry, what reads
// the consumer lag (nil never defers), and the set that collects what the
// stages hold open.
type stageBuilder struct {
	rt  *gpu.Runtime
	log *slog.Logger
	reg prometheus.Registerer
	lag func() int64
	set *stageSet
}

func (s *stageSet) build(ctx context.Context, cfg Config, lag func() int64, log *slog.Logger, reg prometheus.Registerer) error {
	b := &stageBuilder{log: log, reg: reg, lag: lag, set: s}
	s.modelOf = map[string]string{}
	var entries []stageEntry
	for _, e := range cfg.Stages.entries() {
		if e.enabled && (len(s.only) == 0 || slices.Contains(s.only, e.name)) {
			entries = append(entries, e)
		}
	}
	if runsLocal(entries) {
		rt, err := gpu.NewRuntime(cfg.ORT.Lib, log)
		if err != nil {
			return fmt.Errorf("start onnx runtime: %w", err)
		}
		s.closers = append(s.closers, rt.Close)
		b.rt = rt
	}
	for _, e := range entries {
		st, err := e.build[e.provider](ctx, b)
		if err != nil {
			return err
		}
		s.stages = append(s.stages, st)
	}
	return nil
}

// classifier loads the sequence classifier of stage name.
func (b *stageBuilder) classifier(ctx context.Context, name string, c local.Config) (*gpu.Classifier, error) {
	m, err := b.rt.LoadClassifier(ctx, name, c.Config, b.log.With("stage", name), b.reg)
	if err != nil {
		return nil, fmt.Errorf("load %s model from %s: %w", name, c.ModelDir, err)
	}
	b.set.closers = append(b.set.closers, m.Close)
	b.set.models = append(b.set.models, fmt.Sprintf("%s model %s on %s: %d labels", name, m.Model(), m.Device(), len(m.Labels())))
	b.log.Info("stage enabled", "stage", name, "provider", providerLocal, "model", m.Model(), "labels", len(m.Labels()))
	b.set.modelOf[name] = m.Model()
	return m, nil
}

// deferOpts returns the options that make an API stage defer while the lag
// is above threshold (none when threshold is 0 or nothing reads the lag).
func (b *stageBuilder) deferOpts(threshold int64) []llm.Option {
	if threshold <= 0 || b.lag == nil {
		return nil
	}
	return []llm.Option{llm.WithDefer(newLagGate(b.lag, threshold).deferring)}
}

// lagGate decides whether a stage defers: from when the lag rises above
// above until it falls below resume (deferResumeShare of above), so that a
// lag hovering at the threshold does not switch the stage on and off.
type lagGate struct {
	lag    func() int64
	above  int64
	resume int64
	on     atomic.Bool
}

func newLagGate(lag func() int64, above int64) *lagGate {
	// Rounded up, so that a threshold of 1 resumes at 0.
	return &lagGate{lag: lag, above: above, resume: int64(math.Ceil(float64(above) * deferResumeShare))}
}

// deferring reports whether the stage defers now. A lag not measured yet
// (negative) never starts a deferral.
func (g *lagGate) deferring() bool {
	l := g.lag()
	if g.on.Load() {
		if l < g.resume {
			g.on.Store(false)
		}
	} else if l > g.above {
		g.on.Store(true)
	}
	return g.on.Load()
}

func apiEmbedding(c llm.EmbeddingConfig, bc llm.BatchConfig, deferAboveLag int64) buildFunc {
	return func(_ context.Context, b *stageBuilder) (processor.Stage, error) {
		var st *llm.EmbeddingStage
		var err error
		if b.set.viaBatch {
			st, err = llm.NewEmbeddingBatchStage(c, bc, b.log.With("stage", "embedding"), b.reg)
		} else {
			st, err = llm.NewEmbeddingStage(c, b.log.With("stage", "embedding"), b.reg, b.deferOpts(deferAboveLag)...)
		}
		if err != nil {
			return nil, fmt.Errorf("build embedding stage: %w", err)
		}
		b.log.Info("stage enabled", "stage", "embedding", "provider", providerAPI, "model", c.Model, "base_url", c.BaseURL,
			"defer_above_lag", deferAboveLag, "batch_api", b.set.viaBatch)
		b.set.modelOf["embedding"] = c.Model
		return st, nil
	}
}

func localEmbedding(c local.Config) buildFunc {
	return func(ctx context.Context, b *stageBuilder) (processor.Stage, error) {
		m, err := b.rt.LoadEmbedder(ctx, "embedding", c.Config, b.log.With("stage", "embedding"), b.reg)
		if err != nil {
			return nil, fmt.Errorf("load embedding model from %s: %w", c.ModelDir, err)
		}
		b.set.closers = append(b.set.closers, m.Close)
		b.set.models = append(b.set.models, fmt.Sprintf("embedding model %s on %s: %d dimensions", m.Model(), m.Device(), m.Dim()))
		st, err := local.NewEmbeddingStage(m, c, b.log.With("stage", "embedding"), b.reg)
		if err != nil {
			return nil, err
		}
		b.log.Info("stage enabled", "stage", "embedding", "provider", providerLocal, "model", m.Model(), "dimensions", m.Dim())
		b.set.modelOf["embedding"] = m.Model()
		return st, nil
	}
}

func apiSentiment(c llm.SentimentConfig, bc llm.BatchConfig, deferAboveLag int64) buildFunc {
	return func(_ context.Context, b *stageBuilder) (processor.Stage, error) {
		var st *llm.SentimentStage
		var err error
		if b.set.viaBatch {
			st, err = llm.NewSentimentBatchStage(c, bc, b.log.With("stage", "sentiment"), b.reg)
		} else {
			st, err = llm.NewSentimentStage(c, b.log.With("stage", "sentiment"), b.reg, b.deferOpts(deferAboveLag)...)
		}
		if err != nil {
			return nil, fmt.Errorf("build sentiment stage: %w", err)
		}
		b.log.Info("stage enabled", "stage", "sentiment", "provider", providerAPI, "model", c.Model, "base_url", c.BaseURL,
			"defer_above_lag", deferAboveLag, "batch_api", b.set.viaBatch)
		b.set.modelOf["sentiment"] = c.Model
		return st, nil
	}
}

func localSentiment(c local.Config) buildFunc {
	return func(ctx context.Context, b *stageBuilder) (processor.Stage, error) {
		m, err := b.classifier(ctx, "sentiment", c)
		if err != nil {
			return nil, err
		}
		return local.NewSentimentStage(m, c, b.log.With("stage", "sentiment"), b.reg)
	}
}

func localEmotion(c local.Config) buildFunc {
	return func(ctx context.Context, b *stageBuilder) (processor.Stage, error) {
		m, err := b.classifier(ctx, "emotion", c)
		if err != nil {
			return nil, err
		}
		return local.NewEmotionStage(m, c, b.log.With("stage", "emotion"), b.reg)
	}
}

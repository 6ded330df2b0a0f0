package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

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
}

// EmbeddingStageConfig is the embedding stage: through an
// OpenAI-compatible embeddings API (provider api, the keys at this level),
// or with a feature-extraction model run by ONNX Runtime (provider local,
// the keys under local).
type EmbeddingStageConfig struct {
	Enabled             bool   `koanf:"enabled"`
	Provider            string `koanf:"provider"`
	llm.EmbeddingConfig `koanf:",squash"`
	Local               local.Config `koanf:"local"`
}

// SentimentStageConfig is the sentiment stage: through an OpenAI-compatible
// chat completions API (provider api, the keys at this level), or with a
// negative/neutral/positive classifier run by ONNX Runtime (provider local,
// the keys under local).
type SentimentStageConfig struct {
	Enabled             bool   `koanf:"enabled"`
	Provider            string `koanf:"provider"`
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
	return StagesConfig{
		Embedding: EmbeddingStageConfig{Provider: providerAPI, EmbeddingConfig: llm.DefaultEmbeddingConfig(), Local: local.DefaultConfig()},
		Sentiment: SentimentStageConfig{Provider: providerAPI, SentimentConfig: llm.DefaultSentimentConfig(), Local: local.DefaultConfig()},
		Emotion:   EmotionStageConfig{Config: local.DefaultConfig()},
	}
}

// stageEntry is one enrichment stage as the consumer wires it: its name
// (the config key under stages, the stage's name in metrics and
// failed_stages), whether it is enabled, the provider chosen, and per
// provider how its config is validated and how the stage is built. The
// list in entries is the one place that names the stages.
type stageEntry struct {
	name     string
	enabled  bool
	provider string
	validate map[string]func() error
	build    map[string]buildFunc
}

// buildFunc builds one stage with b's runtime, logger and registry.
type buildFunc func(ctx context.Context, b *stageBuilder) (processor.Stage, error)

// entries lists the stages in the order they are built.
func (c StagesConfig) entries() []stageEntry {
	return []stageEntry{
		{
			name: "embedding", enabled: c.Embedding.Enabled, provider: c.Embedding.Provider,
			validate: map[string]func() error{providerAPI: c.Embedding.Validate, providerLocal: c.Embedding.Local.Validate},
			build:    map[string]buildFunc{providerAPI: apiEmbedding(c.Embedding.EmbeddingConfig), providerLocal: localEmbedding(c.Embedding.Local)},
		},
		{
			name: "sentiment", enabled: c.Sentiment.Enabled, provider: c.Sentiment.Provider,
			validate: map[string]func() error{providerAPI: c.Sentiment.Validate, providerLocal: c.Sentiment.Local.Validate},
			build:    map[string]buildFunc{providerAPI: apiSentiment(c.Sentiment.SentimentConfig), providerLocal: localSentiment(c.Sentiment.Local)},
		},
		{
			name: "emotion", enabled: c.Emotion.Enabled, provider: providerLocal,
			validate: map[string]func() error{providerLocal: c.Emotion.Validate},
			build:    map[string]buildFunc{providerLocal: localEmotion(c.Emotion.Config)},
		},
	}
}

// validate checks the enabled stages.
func (c StagesConfig) validate() error {
	var errs []error
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
	}
	return errors.Join(errs...)
}

// providerNames lists the providers of e, "api or local".
func providerNames(e stageEntry) string {
	names := slices.Sorted(maps.Keys(e.validate))
	return strings.Join(names, " or ")
}

// usesORT reports whether an enabled stage runs a model in-process.
func (c StagesConfig) usesORT() bool {
	for _, e := range c.entries() {
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
// the caller closes the set when the pipeline has stopped.
func buildStages(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*stageSet, error) {
	return buildStagesVia(ctx, cfg, false, log, reg)
}

// buildStagesVia is buildStages with the API stages on the Batch API when
// viaBatch is set (consumer enrich --via batch).
func buildStagesVia(ctx context.Context, cfg Config, viaBatch bool, log *slog.Logger, reg prometheus.Registerer) (*stageSet, error) {
	set := &stageSet{viaBatch: viaBatch}
	if err := set.build(ctx, cfg, log, reg); err != nil {
		return nil, errors.Join(err, set.Close())
	}
	return set, nil
}

// stageBuilder is what building a stage needs: the ONNX Runtime (nil when
// no stage runs a model in-process), the logger, the registry, and the set
// that collects what the stages hold open.
type stageBuilder struct {
	rt  *gpu.Runtime
	log *slog.Logger
	reg prometheus.Registerer
	set *stageSet
}

func (s *stageSet) build(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) error {
	b := &stageBuilder{log: log, reg: reg, set: s}
	s.modelOf = map[string]string{}
	if cfg.Stages.usesORT() {
		rt, err := gpu.NewRuntime(cfg.ORT.Lib, log)
		if err != nil {
			return fmt.Errorf("start onnx runtime: %w", err)
		}
		s.closers = append(s.closers, rt.Close)
		b.rt = rt
	}
	for _, e := range cfg.Stages.entries() {
		if !e.enabled {
			continue
		}
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

func apiEmbedding(c llm.EmbeddingConfig) buildFunc {
	return func(_ context.Context, b *stageBuilder) (processor.Stage, error) {
		st, err := llm.NewEmbeddingStage(c, b.log.With("stage", "embedding"), b.reg)
		if err != nil {
			return nil, fmt.Errorf("build embedding stage: %w", err)
		}
		b.log.Info("stage enabled", "stage", "embedding", "provider", providerAPI, "model", c.Model, "base_url", c.BaseURL)
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

func apiSentiment(c llm.SentimentConfig) buildFunc {
	return func(_ context.Context, b *stageBuilder) (processor.Stage, error) {
		st, err := llm.NewSentimentStage(c, b.log.With("stage", "sentiment"), b.reg)
		if err != nil {
			return nil, fmt.Errorf("build sentiment stage: %w", err)
		}
		b.log.Info("stage enabled", "stage", "sentiment", "provider", providerAPI, "model", c.Model, "base_url", c.BaseURL)
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

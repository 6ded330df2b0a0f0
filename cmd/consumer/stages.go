package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

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

// validate checks the enabled stages.
func (c StagesConfig) validate() error {
	var errs []error
	check := func(name string, enabled bool, provider string, api, loc func() error) {
		if !enabled {
			return
		}
		var err error
		switch provider {
		case providerAPI:
			err = api()
		case providerLocal:
			err = loc()
		default:
			err = fmt.Errorf("provider %q: want %s or %s", provider, providerAPI, providerLocal)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("stages.%s: %w", name, err))
		}
	}
	check("embedding", c.Embedding.Enabled, c.Embedding.Provider, c.Embedding.Validate, c.Embedding.Local.Validate)
	check("sentiment", c.Sentiment.Enabled, c.Sentiment.Provider, c.Sentiment.Validate, c.Sentiment.Local.Validate)
	check("emotion", c.Emotion.Enabled, providerLocal, nil, c.Emotion.Validate)
	return errors.Join(errs...)
}

// usesORT reports whether an enabled stage runs a model in-process.
func (c StagesConfig) usesORT() bool {
	return c.Emotion.Enabled ||
		(c.Embedding.Enabled && c.Embedding.Provider == providerLocal) ||
		(c.Sentiment.Enabled && c.Sentiment.Provider == providerLocal)
}

// stageSet is the enabled stages and what they hold open.
type stageSet struct {
	stages  []processor.Stage
	closers []func() error
	// models describes each loaded local model, for the check command.
	models []string
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
	set := &stageSet{}
	if err := set.build(ctx, cfg, log, reg); err != nil {
		return nil, errors.Join(err, set.Close())
	}
	return set, nil
}

func (s *stageSet) build(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) error {
	sc := cfg.Stages
	var rt *gpu.Runtime
	if sc.usesORT() {
		var err error
		if rt, err = gpu.NewRuntime(cfg.ORT.Lib, log); err != nil {
			return fmt.Errorf("start onnx runtime: %w", err)
		}
		s.closers = append(s.closers, rt.Close)
	}
	classifier := func(name string, c local.Config) (*gpu.Classifier, error) {
		m, err := rt.LoadClassifier(ctx, name, c.Config, log.With("stage", name), reg)
		if err != nil {
			return nil, fmt.Errorf("load %s model from %s: %w", name, c.ModelDir, err)
		}
		s.closers = append(s.closers, m.Close)
		s.models = append(s.models, fmt.Sprintf("%s model %s on %s: %d labels", name, m.Model(), m.Device(), len(m.Labels())))
		log.Info("stage enabled", "stage", name, "provider", providerLocal, "model", m.Model(), "labels", len(m.Labels()))
		return m, nil
	}

	if sc.Embedding.Enabled {
		switch sc.Embedding.Provider {
		case providerLocal:
			m, err := rt.LoadEmbedder(ctx, "embedding", sc.Embedding.Local.Config, log.With("stage", "embedding"), reg)
			if err != nil {
				return fmt.Errorf("load embedding model from %s: %w", sc.Embedding.Local.ModelDir, err)
			}
			s.closers = append(s.closers, m.Close)
			s.models = append(s.models, fmt.Sprintf("embedding model %s on %s: %d dimensions", m.Model(), m.Device(), m.Dim()))
			st, err := local.NewEmbeddingStage(m, sc.Embedding.Local, log.With("stage", "embedding"), reg)
			if err != nil {
				return err
			}
			s.stages = append(s.stages, st)
			log.Info("stage enabled", "stage", "embedding", "provider", providerLocal, "model", m.Model(), "dimensions", m.Dim())
		default:
			st, err := llm.NewEmbeddingStage(sc.Embedding.EmbeddingConfig, log.With("stage", "embedding"), reg)
			if err != nil {
				return fmt.Errorf("build embedding stage: %w", err)
			}
			s.stages = append(s.stages, st)
			log.Info("stage enabled", "stage", "embedding", "provider", providerAPI, "model", sc.Embedding.Model, "base_url", sc.Embedding.BaseURL)
		}
	}
	if sc.Sentiment.Enabled {
		switch sc.Sentiment.Provider {
		case providerLocal:
			m, err := classifier("sentiment", sc.Sentiment.Local)
			if err != nil {
				return err
			}
			st, err := local.NewSentimentStage(m, sc.Sentiment.Local, log.With("stage", "sentiment"), reg)
			if err != nil {
				return err
			}
			s.stages = append(s.stages, st)
		default:
			st, err := llm.NewSentimentStage(sc.Sentiment.SentimentConfig, log.With("stage", "sentiment"), reg)
			if err != nil {
				return fmt.Errorf("build sentiment stage: %w", err)
			}
			s.stages = append(s.stages, st)
			log.Info("stage enabled", "stage", "sentiment", "provider", providerAPI, "model", sc.Sentiment.Model, "base_url", sc.Sentiment.BaseURL)
		}
	}
	if sc.Emotion.Enabled {
		m, err := classifier("emotion", sc.Emotion.Config)
		if err != nil {
			return err
		}
		st, err := local.NewEmotionStage(m, sc.Emotion.Config, log.With("stage", "emotion"), reg)
		if err != nil {
			return err
		}
		s.stages = append(s.stages, st)
	}
	return nil
}

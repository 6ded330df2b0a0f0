package gpu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// BenchmarkTexts loads the model in cfg.ModelDir (as a classifier when it
// has a logits output, else as an embedder), runs texts through it in one
// call and closes it again. The batcher sorts the texts by token length
// into batches of cfg.MaxBatch unless cfg.DisableBucketing is set. It
// returns the throughput of that call (tokenization included, loading and
// warm-up excluded) and the padding ratio of its inference calls: padding
// tokens divided by all tokens fed to the model.
func BenchmarkTexts(ctx context.Context, rt *Runtime, cfg Config, texts []string) (textsPerSec, paddingRatio float64, err error) {
	if len(texts) == 0 {
		return 0, 0, fmt.Errorf("benchmark %s: %w: no texts", cfg.ModelDir, ErrInvalidConfig)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := rt.loadModel(ctx, kindClassifier, "benchmark", cfg, quiet, nil)
	if errors.Is(err, ErrModelOutputs) {
		m, err = rt.loadModel(ctx, kindEmbedder, "benchmark", cfg, quiet, nil)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("benchmark %s: %w", cfg.ModelDir, err)
	}
	defer func() { _ = m.Close() }()
	start := time.Now()
	if _, err := m.run(ctx, texts); err != nil {
		return 0, 0, fmt.Errorf("benchmark %s: %w", cfg.ModelDir, err)
	}
	elapsed := time.Since(start)
	real, padded := m.batcher.realTokens.Load(), m.batcher.paddedTokens.Load()
	return float64(len(texts)) / elapsed.Seconds(), float64(padded) / float64(max(real+padded, 1)), nil
}

package local

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/textpulse/textpulse/processor"
)

// Embedder returns sentence embeddings of texts.
//
// Embed returns one vector of Dim values per text, in the order of texts,
// or an error and no vectors; it may block until the model has capacity or
// ctx is done. An error for which processor.IsPermanent is true will recur
// for the same texts. Model and Dim do not change.
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
	Model() string
	Dim() int
}

// EmbeddingStage stores a local model's embedding of each record's text in
// Record.Embedding, with the model in Record.EmbeddingModel.
type EmbeddingStage struct {
	e   *engine[[]float32]
	dim int
}

// NewEmbeddingStage returns an embedding stage over m; its metrics are
// registered on reg.
func NewEmbeddingStage(m Embedder, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*EmbeddingStage, error) {
	const name = "embedding"
	e, err := newEngine[[]float32](name, cfg, log, newMetrics(name, reg))
	if err != nil {
		return nil, fmt.Errorf("create embedding stage: %w", err)
	}
	model := m.Model()
	e.infer = m.Embed
	e.set = func(r *processor.Record, v []float32) {
		r.Embedding, r.EmbeddingModel = v, model
	}
	return &EmbeddingStage{e: e, dim: m.Dim()}, nil
}

// Name implements processor.Stage.
func (s *EmbeddingStage) Name() string { return s.e.name }

// ResultBytes implements processor.ResultSizer: the size of one vector.
func (s *EmbeddingStage) ResultBytes() int { return 4 * s.dim }

// Enrich implements processor.Stage.
func (s *EmbeddingStage) Enrich(ctx context.Context, b *processor.Batch) error {
	return s.e.enrich(ctx, b)
}

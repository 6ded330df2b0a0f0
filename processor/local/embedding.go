package local

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/textpulse/textpulse/processor"
	"github.com/textpulse/textpulse/processor/enrich"
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
	*enrich.Engine[[]float32]
	dim int
}

// NewEmbeddingStage returns an embedding stage over m; its metrics are
// registered on reg.
func NewEmbeddingStage(m Embedder, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*EmbeddingStage, error) {
	const name = "embedding"
	model := m.Model()
	e, err := newStage(name, cfg, log, reg, m.Embed, func(r *processor.Record, v []float32) {
		r.Embedding, r.EmbeddingModel = v, model
	})
	if err != nil {
		return nil, fmt.Errorf("create embedding stage: %w", err)
	}
	return &EmbeddingStage{Engine: e, dim: m.Dim()}, nil
}

// ResultBytes implements processor.ResultSizer: the size of one vector.
func (s *EmbeddingStage) ResultBytes() int { return 4 * s.dim }

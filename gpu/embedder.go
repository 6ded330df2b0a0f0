package gpu

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// Embedder is a feature-extraction model (output last_hidden_state) that
// returns sentence embeddings: the mean of the token vectors over the
// attention mask, scaled to unit length. It is safe for concurrent use;
// concurrent calls share inference batches.
type Embedder struct {
	m *model
}

// LoadEmbedder loads the feature-extraction model in cfg.ModelDir. name is
// the value of the model label of its metrics, for example "embedding".
func (rt *Runtime) LoadEmbedder(ctx context.Context, name string, cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Embedder, error) {
	m, err := rt.loadModel(ctx, kindEmbedder, name, cfg, logger, reg)
	if err != nil {
		return nil, err
	}
	return &Embedder{m: m}, nil
}

// Embed returns one unit-length embedding of Dim() values per text, in
// order.
func (e *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	rows, err := e.m.run(ctx, texts)
	if err != nil {
		return nil, fmt.Errorf("embed %d texts with %s: %w", len(texts), e.m.id, err)
	}
	return rows, nil
}

// Dim is the embedding size (the model's hidden size).
func (e *Embedder) Dim() int { return e.m.width }

// Model is "<name>@<version>": the config's _name_or_path (or the directory
// name) and the first 12 hex digits of the sha256 of model.onnx.
func (e *Embedder) Model() string { return e.m.id }

// Device is where the model runs: "cuda" or "cpu".
func (e *Embedder) Device() string { return e.m.device }

// MaxLength is the effective truncation length in tokens.
func (e *Embedder) MaxLength() int { return e.m.maxLen }

// Close fails pending and later calls with ErrClosed and releases the
// model. It is safe to call more than once.
func (e *Embedder) Close() error { return e.m.Close() }

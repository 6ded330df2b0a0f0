package gpu

import (
	"context"
	"fmt"
	"log/slog"
	"math"

	"github.com/prometheus/client_golang/prometheus"
)

// Classification is the result for one text.
type Classification struct {
	// Label is the label with the highest score.
	Label string
	// Score is the probability of Label.
	Score float32
	// Scores are the probabilities of every label, aligned with Labels():
	// softmax of the logits for single-label models (they sum to 1),
	// sigmoid of each logit for multi-label models.
	Scores []float32
}

// Classifier is a sequence-classification model (output logits). It is safe
// for concurrent use; concurrent calls share inference batches.
type Classifier struct {
	m *model
}

// LoadClassifier loads the classification model in cfg.ModelDir. name is
// the value of the model label of its metrics, for example "emotion".
func (rt *Runtime) LoadClassifier(ctx context.Context, name string, cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Classifier, error) {
	m, err := rt.loadModel(ctx, kindClassifier, name, cfg, logger, reg)
	if err != nil {
		return nil, err
	}
	return &Classifier{m: m}, nil
}

// Classify returns one classification per text, in order.
func (c *Classifier) Classify(ctx context.Context, texts []string) ([]Classification, error) {
	rows, err := c.m.run(ctx, texts)
	if err != nil {
		return nil, fmt.Errorf("classify %d texts with %s: %w", len(texts), c.m.id, err)
	}
	out := make([]Classification, len(rows))
	for i, logits := range rows {
		scores := probabilities(logits, c.m.sigmoid)
		best := 0
		for j, s := range scores {
			if s > scores[best] {
				best = j
			}
		}
		out[i] = Classification{Label: c.m.labels[best], Score: scores[best], Scores: scores}
	}
	return out, nil
}

// probabilities turns logits into softmax (or per-label sigmoid)
// probabilities, in place.
func probabilities(logits []float32, sigmoid bool) []float32 {
	if sigmoid {
		for i, v := range logits {
			logits[i] = float32(1 / (1 + math.Exp(-float64(v))))
		}
		return logits
	}
	hi := math.Inf(-1)
	for _, v := range logits {
		hi = math.Max(hi, float64(v))
	}
	var sum float64
	exps := make([]float64, len(logits))
	for i, v := range logits {
		exps[i] = math.Exp(float64(v) - hi)
		sum += exps[i]
	}
	for i := range logits {
		logits[i] = float32(exps[i] / sum)
	}
	return logits
}

// Labels are the model's labels in id order.
func (c *Classifier) Labels() []string { return append([]string(nil), c.m.labels...) }

// Model is "<name>@<version>": the config's _name_or_path (or the directory
// name) and the first 12 hex digits of the sha256 of model.onnx.
func (c *Classifier) Model() string { return c.m.id }

// Device is where the model runs: "cuda" or "cpu".
func (c *Classifier) Device() string { return c.m.device }

// MaxLength is the effective truncation length in tokens.
func (c *Classifier) MaxLength() int { return c.m.maxLen }

// Close fails pending and later calls with ErrClosed and releases the
// model. It is safe to call more than once.
func (c *Classifier) Close() error { return c.m.Close() }

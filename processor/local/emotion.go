package local

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/textpulse/textpulse/gpu"
	"github.com/textpulse/textpulse/processor"
	"github.com/textpulse/textpulse/processor/enrich"
)

// Classifier scores the labels of a sequence classifier for texts.
//
// Classify returns one result per text, in the order of texts, with Scores
// aligned with Labels, or an error and no results; it may block until the
// model has capacity or ctx is done. An error for which
// processor.IsPermanent is true will recur for the same texts. Labels and
// Model do not change and must not be modified.
type Classifier interface {
	Classify(ctx context.Context, texts []string) ([]gpu.Classification, error)
	Labels() []string
	Model() string
}

// EmotionStage stores the emotion scores of a classifier for each record's
// text: the top label in Record.EmotionLabel, every label with its score in
// EmotionLabels and EmotionScores, and the model in EmotionModel.
type EmotionStage struct {
	*enrich.Engine[gpu.Classification]
}

// NewEmotionStage returns an emotion stage over c; its metrics are
// registered on reg.
func NewEmotionStage(c Classifier, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*EmotionStage, error) {
	const name = "emotion"
	labels, model := c.Labels(), c.Model()
	e, err := newStage(name, cfg, log, reg, c.Classify, func(r *processor.Record, v gpu.Classification) {
		r.EmotionLabel, r.EmotionLabels, r.EmotionScores, r.EmotionModel = v.Label, labels, v.Scores, model
	})
	if err != nil {
		return nil, fmt.Errorf("create emotion stage: %w", err)
	}
	return &EmotionStage{Engine: e}, nil
}

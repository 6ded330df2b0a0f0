package local

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/textpulse/textpulse/processor"
	"github.com/textpulse/textpulse/processor/enrich"
)

// Sentiment labels, as the API sentiment stage writes them.
const (
	labelNegative = "negative"
	labelNeutral  = "neutral"
	labelPositive = "positive"
)

// sentiment is one text's sentiment.
type sentiment struct {
	label string
	score float32
}

// SentimentStage stores the sentiment of a negative/neutral/positive
// classifier for each record's text, in the same form as the API sentiment
// stage: Record.SentimentLabel is the top label, SentimentScore is
// P(positive) − P(negative) in [-1, 1], SentimentModel is the model.
type SentimentStage struct {
	*enrich.Engine[sentiment]
}

// NewSentimentStage returns a sentiment stage over c, whose labels must be
// negative and positive and optionally neutral (in any case, in any order);
// its metrics are registered on reg.
func NewSentimentStage(c Classifier, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*SentimentStage, error) {
	const name = "sentiment"
	labels := c.Labels()
	neg, pos := -1, -1
	names := make([]string, len(labels))
	for i, l := range labels {
		switch names[i] = strings.ToLower(l); names[i] {
		case labelNegative:
			neg = i
		case labelPositive:
			pos = i
		case labelNeutral:
		default:
			return nil, fmt.Errorf("create sentiment stage: label %q of %s: %w", l, c.Model(), ErrLabels)
		}
	}
	if neg < 0 || pos < 0 {
		return nil, fmt.Errorf("create sentiment stage: labels %q of %s lack negative or positive: %w", labels, c.Model(), ErrLabels)
	}
	infer := func(ctx context.Context, texts []string) ([]sentiment, error) {
		cls, err := c.Classify(ctx, texts)
		if err != nil {
			return nil, err
		}
		out := make([]sentiment, len(cls))
		for i, cl := range cls {
			if len(cl.Scores) != len(labels) {
				return nil, processor.Permanent(fmt.Errorf("classify: %d scores for %d labels", len(cl.Scores), len(labels)))
			}
			top := 0
			for j, s := range cl.Scores {
				if s > cl.Scores[top] {
					top = j
				}
			}
			out[i] = sentiment{label: names[top], score: cl.Scores[pos] - cl.Scores[neg]}
		}
		return out, nil
	}
	model := c.Model()
	e, err := newStage(name, cfg, log, reg, infer, func(r *processor.Record, v sentiment) {
		r.SentimentLabel, r.SentimentScore, r.SentimentModel = v.label, v.score, model
	})
	if err != nil {
		return nil, fmt.Errorf("create sentiment stage: %w", err)
	}
	return &SentimentStage{Engine: e}, nil
}

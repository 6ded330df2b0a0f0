package main

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/textpulse/textpulse/processor/llm"
)

// checkAPIStages probes each enabled API stage with one tiny request per
// option and reports what its endpoint supports.
func checkAPIStages(ctx context.Context, cfg Config, log *slog.Logger, report func(ok bool, format string, args ...any)) {
	sc := cfg.Stages
	if sc.Embedding.Enabled && sc.Embedding.Provider == providerAPI {
		st, err := llm.NewEmbeddingStage(sc.Embedding.EmbeddingConfig, log, prometheus.NewRegistry())
		if err != nil {
			report(false, "embedding api: %v", err)
		} else {
			p := st.Probe(ctx)
			report(p.Err == nil, "embedding api %s model %s: %s", sc.Embedding.BaseURL, sc.Embedding.Model, p.String())
		}
	}
	if sc.Sentiment.Enabled && sc.Sentiment.Provider == providerAPI {
		st, err := llm.NewSentimentStage(sc.Sentiment.SentimentConfig, log, prometheus.NewRegistry())
		if err != nil {
			report(false, "sentiment api: %v", err)
		} else {
			p := st.Probe(ctx)
			report(p.Err == nil, "sentiment api %s model %s: %s", sc.Sentiment.BaseURL, sc.Sentiment.Model, p.String())
		}
	}
}

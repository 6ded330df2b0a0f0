package llm

import (
	"context"
	"fmt"
	"testing"

	"github.com/textpulse/textpulse/internal/textgen"
	"github.com/textpulse/textpulse/processor"
	"github.com/textpulse/textpulse/processor/enrich"
)

// benchTexts returns n realistic texts.
func benchTexts(b *testing.B, n int) []string {
	b.Helper()
	g, err := textgen.New(textgen.Options{Seed: 5})
	if err != nil {
		b.Fatal(err)
	}
	out, err := g.Texts(n)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// BenchmarkPack measures cutting a 100,000-text batch into embeddings
// requests of at most 2048 inputs and 250,000 estimated tokens.
func BenchmarkPack(b *testing.B) {
	texts := benchTexts(b, 100_000)
	items := make([]*enrich.Item[[]float32], len(texts))
	for i, t := range texts {
		items[i] = &enrich.Item[[]float32]{Text: t, Tokens: EstimateTokens(t)}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var reqs int
	for b.Loop() {
		reqs = len(pack(items, 2048, 250_000))
	}
	b.ReportMetric(float64(len(items))*float64(b.N)/b.Elapsed().Seconds(), "texts/s")
	b.ReportMetric(float64(reqs), "requests/batch")
}

// BenchmarkEmbeddingEnrich measures the embedding stage on batches of
// realistic texts against an in-process server answering at once with
// base64 vectors: deduplication, packing, request encoding, answer
// decoding and matching, per text.
func BenchmarkEmbeddingEnrich(b *testing.B) {
	for _, dims := range []int{64, 1536} {
		b.Run(fmt.Sprintf("dims=%d", dims), func(b *testing.B) {
			srv := newEmbeddingServer(b, nil)
			cfg := DefaultEmbeddingConfig()
			cfg.EndpointConfig = testEndpoint(srv.URL)
			cfg.Dimensions = dims
			cfg.CacheSize = 0
			s, err := NewEmbeddingStage(cfg, quietLog(), nil)
			if err != nil {
				b.Fatal(err)
			}
			texts := benchTexts(b, 4096)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				batch := processor.NewBatch("bench")
				for i, t := range texts {
					batch.Append(processor.Record{Topic: "in", Offset: int64(i), Event: processor.Event{Text: t}})
				}
				if err := s.Enrich(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(texts))*float64(b.N)/b.Elapsed().Seconds(), "texts/s")
		})
	}
}

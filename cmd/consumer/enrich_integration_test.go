package main

import (
	"context"
	"fmt"
	"math"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/textpulse/textpulse/internal/openaisim"
	"github.com/textpulse/textpulse/internal/testenv"
	"github.com/textpulse/textpulse/internal/textgen"
)

// TestEnrichmentThroughAPIs runs the embedding and sentiment stages against
// the OpenAI-compatible simulator with about 20% injected faults and 429
// storms on both endpoints, through the real broker and server. Every row
// must carry the exact embedding and sentiment the simulator computes for
// its text: no event lost, none written with a wrong or missing result.
func TestEnrichmentThroughAPIs(t *testing.T) {
	testenv.EachClickHouse(t, testEnrichmentThroughAPIs)
}

// testEnrichmentThroughAPIs is TestEnrichmentThroughAPIs on one server.
func testEnrichmentThroughAPIs(t *testing.T, srv testenv.ClickHouseServer) {
	s := newScenario(t, srv, 3)
	cfg := openaisim.DefaultConfig()
	faults := openaisim.Faults{ServerError: 0.05, Timeout: 0.02, Truncated: 0.03, InvalidJSON: 0.03,
		WrongCount: 0.03, BadValues: 0.03, Storm: 0.01}
	cfg.Embeddings.Faults, cfg.Chat.Faults = faults, faults
	cfg.Embeddings.Latency = openaisim.Latency{Median: 20 * time.Millisecond, P99: 80 * time.Millisecond}
	cfg.Chat.Latency = openaisim.Latency{Median: 40 * time.Millisecond, P99: 150 * time.Millisecond}
	cfg.StormDuration = 500 * time.Millisecond
	cfg.MaxHang = 10 * time.Second
	cfg.Seed = 7
	sim, err := openaisim.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	apiSrv := httptest.NewServer(sim.Handler())
	t.Cleanup(apiSrv.Close)

	const n = 2000
	g, err := textgen.New(textgen.Options{Seed: 3, RepeatShare: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	values := make([][]byte, n)
	for i := range values {
		values[i], _ = g.Next(nil)
	}
	s.kafka.Produce(t, s.topic, s.partitions, values)

	var args []string
	for _, stage := range []string{"embedding", "sentiment"} {
		p := "--stages." + stage + "."
		args = append(args, p+"enabled", p+"base_url", apiSrv.URL+"/v1", p+"api_key", "test-key",
			p+"on_failure", "retry", p+"timeout", "2s", p+"retry_initial_interval", "20ms",
			p+"retry_max_interval", "300ms", p+"max_attempts", "20")
	}
	args = append(args, "--stages.embedding.dimensions", "64", "--stages.sentiment.items_per_request", "16",
		"--batch.max_records", "500")
	c := startInProcess(t, s.args(args...))
	s.waitRows(n, 150*time.Second)
	if err := c.stop(t); err != nil {
		t.Fatalf("consumer: %v\n%s", err, c.log.String())
	}

	ctx := context.Background()
	rows, err := s.ch.Conn.Query(ctx, fmt.Sprintf(`SELECT text, embedding, embedding_model, sentiment_label, sentiment_score,
		sentiment_model, status FROM %s.events FINAL`, s.db))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	checked := 0
	for rows.Next() {
		var text, embModel, label, sentModel, status string
		var emb []float32
		var score float32
		if err := rows.Scan(&text, &emb, &embModel, &label, &score, &sentModel, &status); err != nil {
			t.Fatal(err)
		}
		if status != "ok" || embModel != "text-embedding-3-small" || sentModel != "gpt-4o-mini" {
			t.Fatalf("row %q: status %s, models %q %q", text, status, embModel, sentModel)
		}
		want := openaisim.Embedding(text, 1536, 64)
		if len(emb) != len(want) {
			t.Fatalf("row %q: embedding of %d dimensions, want %d", text, len(emb), len(want))
		}
		for i := range want {
			if emb[i] != want[i] {
				t.Fatalf("row %q: embedding[%d] = %v, want %v", text, i, emb[i], want[i])
			}
		}
		wantLabel, wantScore := openaisim.Sentiment(text)
		if label != wantLabel || math.Abs(float64(score)-wantScore) > 1e-6 {
			t.Fatalf("row %q: sentiment %s %v, want %s %v", text, label, score, wantLabel, wantScore)
		}
		checked++
	}
	if checked != n {
		t.Fatalf("checked %d rows, want %d", checked, n)
	}
	st := sim.Stats()
	var faultsSeen int64
	for _, v := range st.Embeddings.Faults {
		faultsSeen += v
	}
	for _, v := range st.Chat.Faults {
		faultsSeen += v
	}
	if faultsSeen == 0 {
		t.Fatal("no fault was injected")
	}
	t.Logf("%d events: %d embedding requests, %d chat requests, %d faults injected, %d answered 429",
		n, st.Embeddings.Requests, st.Chat.Requests, faultsSeen, st.Embeddings.TooManyRequests+st.Chat.TooManyRequests)
}

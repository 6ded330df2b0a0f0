package clickhouse_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/textpulse/textpulse/internal/testenv"
	"github.com/textpulse/textpulse/processor"
	"github.com/textpulse/textpulse/sink/clickhouse"
)

// openTestSink opens a sink on srv with a database of its own, dropped
// when t ends.
func openTestSink(t *testing.T, srv testenv.ClickHouseServer, opts ...func(*clickhouse.Config)) (*clickhouse.Sink, clickhouse.Config) {
	t.Helper()
	cfg := clickhouse.DefaultConfig()
	cfg.Addr = []string{srv.Addr}
	cfg.Database = testenv.Name("sinktest")
	cfg.RetryInitial = 10 * time.Millisecond
	cfg.RetryMax = 50 * time.Millisecond
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	s, err := connect(ctx, cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS "+cfg.Database)
		_ = s.Close()
	})
	return s, cfg
}

func TestMigrateIsIdempotent(t *testing.T) {
	testenv.EachClickHouse(t, testMigrateIsIdempotent)
}

// testMigrateIsIdempotent is TestMigrateIsIdempotent on one server.
func testMigrateIsIdempotent(t *testing.T, srv testenv.ClickHouseServer) {
	s, _ := openTestSink(t, srv)
	ctx := t.Context()
	applied, err := s.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) == 0 {
		t.Fatal("first migrate applied nothing")
	}
	again, err := s.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 0 {
		t.Fatalf("second migrate applied %v, want nothing", again)
	}
	got, latest, err := s.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got != latest {
		t.Fatalf("schema version %d, want %d", got, latest)
	}
}

func testBatch(topic string, n int, offset int64) *processor.Batch {
	b := processor.NewBatch(fmt.Sprintf("t%d", offset))
	for i := range n {
		r := processor.Record{
			Topic: topic, Partition: int32(i % 3), Offset: offset + int64(i),
			Timestamp:  time.Date(2026, 11, 25, 12, 0, i%60, 0, time.UTC),
			Enrichment: &processor.Enrichment{},
		}
		r.ID = fmt.Sprintf("id-%d", offset+int64(i))
		r.Text = fmt.Sprintf("text number %d — ünïcödé 🙂", i)
		r.Source = "test"
		r.Lang = "en"
		r.CreatedAt = r.Timestamp
		r.Metadata = `{"k":1}`
		if i%2 == 0 {
			r.Embedding = []float32{0.6, 0.8}
			r.EmbeddingModel = "m"
			r.SentimentLabel = "positive"
			r.SentimentScore = 0.5
			r.EmotionLabel = "joy"
			r.EmotionLabels = []string{"joy", "anger"}
			r.EmotionScores = []float32{0.9, 0.1}
		} else {
			r.FailedStages = []string{"sentiment"}
		}
		b.Append(r)
	}
	return b
}

func TestWriteRoundTrip(t *testing.T) {
	testenv.EachClickHouse(t, testWriteRoundTrip)
}

// testWriteRoundTrip is TestWriteRoundTrip on one server.
func testWriteRoundTrip(t *testing.T, srv testenv.ClickHouseServer) {
	s, cfg := openTestSink(t, srv)
	ctx := t.Context()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	b := testBatch("topic-a", 1000, 0)
	if err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	// A retried write of the same batch collapses under FINAL; a modern
	// server drops it at once (the insert deduplication token).
	if err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	if srv.Modern {
		var raw uint64
		if err := s.Conn().QueryRow(ctx, "SELECT count() FROM "+cfg.Database+".events").Scan(&raw); err != nil {
			t.Fatal(err)
		}
		if raw != 1000 {
			t.Fatalf("count() without FINAL = %d after a retried write, want 1000 (retry deduplicated)", raw)
		}
	}
	var total, distinct, partial uint64
	q := fmt.Sprintf("SELECT count(), uniqExact(kafka_topic, kafka_partition, kafka_offset), countIf(status = 'partial') FROM %s.events FINAL", cfg.Database)
	if err := s.Conn().QueryRow(ctx, q).Scan(&total, &distinct, &partial); err != nil {
		t.Fatal(err)
	}
	if total != 1000 || distinct != 1000 || partial != 500 {
		t.Fatalf("FINAL: count=%d distinct=%d partial=%d, want 1000 1000 500", total, distinct, partial)
	}
	var text, label string
	var emb []float32
	var failed []string
	q = fmt.Sprintf("SELECT text, sentiment_label, embedding, failed_stages FROM %s.events FINAL WHERE kafka_offset = 1", cfg.Database)
	if err := s.Conn().QueryRow(ctx, q).Scan(&text, &label, &emb, &failed); err != nil {
		t.Fatal(err)
	}
	if text != "text number 1 — ünïcödé 🙂" || label != "" || len(emb) != 0 || len(failed) != 1 || failed[0] != "sentiment" {
		t.Fatalf("row 1 = %q %q %v %v", text, label, emb, failed)
	}
}

func TestWriteWithoutTablesKeepsRetrying(t *testing.T) {
	testenv.EachClickHouse(t, testWriteWithoutTablesKeepsRetrying)
}

// testWriteWithoutTablesKeepsRetrying is TestWriteWithoutTablesKeepsRetrying on one server.
func testWriteWithoutTablesKeepsRetrying(t *testing.T, srv testenv.ClickHouseServer) {
	s, _ := openTestSink(t, srv)
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	err := s.Write(ctx, testBatch("topic-a", 10, 0))
	if err == nil {
		t.Fatal("write to a missing table succeeded")
	}
	if processor.IsPermanent(err) {
		t.Fatalf("missing table reported as permanent (rows would be dead-lettered): %v", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		t.Fatalf("write returned before ctx ended: %v", err)
	}
}

// connect returns a sink for cfg, connected.
func connect(ctx context.Context, cfg clickhouse.Config, log *slog.Logger, reg prometheus.Registerer) (*clickhouse.Sink, error) {
	s := clickhouse.New(cfg, log, reg)
	if err := s.Connect(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

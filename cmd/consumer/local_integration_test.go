package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/textpulse/textpulse/gpu"
	"github.com/textpulse/textpulse/internal/harness"
	"github.com/textpulse/textpulse/internal/testenv"
	"github.com/textpulse/textpulse/internal/textgen"
)

// TestLocalModelStages runs all three stages on models run by ONNX Runtime
// on the CPU (emotion from a RoBERTa-family classifier, sentiment from a
// BERT-family classifier, embeddings from the real all-MiniLM-L6-v2),
// through the real broker and server. Every row must carry each stage's
// result, equal to what the same model computes for the row's text.
func TestLocalModelStages(t *testing.T) {
	testenv.EachClickHouse(t, testLocalModelStages)
}

// testLocalModelStages is TestLocalModelStages on one server.
func testLocalModelStages(t *testing.T, srv testenv.ClickHouseServer) {
	lib := testenv.Lookup(t, "TEXTPULSE_ORT_LIB")
	models := testenv.Lookup(t, "TEXTPULSE_TEST_MODELS")
	s := newScenario(t, srv, 3)

	const n = 600
	g, err := textgen.New(textgen.Options{Seed: 11, RepeatShare: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	values := make([][]byte, n)
	for i := range values {
		values[i], _ = g.Next(nil)
	}
	s.kafka.Produce(t, s.topic, s.partitions, values)

	emotionDir := filepath.Join(models, "tiny-emotion")
	sentimentDir := filepath.Join(models, "tiny-sentiment")
	embeddingDir := filepath.Join(models, "minilm")
	c := startInProcess(t, s.args(
		"--ort.lib", lib,
		"--stages.emotion.enabled", "--stages.emotion.model_dir", emotionDir, "--stages.emotion.device", "auto",
		"--stages.sentiment.enabled", "--stages.sentiment.provider", "local", "--stages.sentiment.local.model_dir", sentimentDir,
		"--stages.embedding.enabled", "--stages.embedding.provider", "local", "--stages.embedding.local.model_dir", embeddingDir,
		"--batch.max_records", "200",
	))
	s.waitRows(n, 3*time.Minute)
	if err := c.stop(t); err != nil {
		t.Fatalf("consumer: %v\n%s", err, c.log.String())
	}

	// The reference: the same models loaded here, one text at a time.
	ctx := context.Background()
	rt, err := gpu.NewRuntime(lib, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	cfg := gpu.DefaultConfig()
	cfg.Device = "cpu"
	load := func(dir string) *gpu.Classifier {
		c := cfg
		c.ModelDir = dir
		m, err := rt.LoadClassifier(ctx, filepath.Base(dir), c, quietLogger(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Close() })
		return m
	}
	emo, sent := load(emotionDir), load(sentimentDir)
	ec := cfg
	ec.ModelDir = embeddingDir
	emb, err := rt.LoadEmbedder(ctx, "embedding", ec, quietLogger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emb.Close() })

	rows, err := s.ch.Conn.Query(ctx, fmt.Sprintf(`SELECT text, status, emotion_label, emotion_labels, emotion_scores,
		emotion_model, sentiment_label, sentiment_score, sentiment_model, embedding, embedding_model FROM %s.events FINAL`, s.db))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	checked := 0
	for rows.Next() {
		var text, status, emoLabel, emoModel, sentLabel, sentModel, embModel string
		var emoLabels []string
		var emoScores, vec []float32
		var sentScore float32
		if err := rows.Scan(&text, &status, &emoLabel, &emoLabels, &emoScores, &emoModel, &sentLabel, &sentScore,
			&sentModel, &vec, &embModel); err != nil {
			t.Fatal(err)
		}
		if status != "ok" || emoModel != emo.Model() || sentModel != sent.Model() || embModel != emb.Model() {
			t.Fatalf("row %q: status %s, models %q %q %q", text, status, emoModel, sentModel, embModel)
		}
		want, err := emo.Classify(ctx, []string{text})
		if err != nil {
			t.Fatal(err)
		}
		if emoLabel != want[0].Label || !slices.Equal(emoLabels, emo.Labels()) || !close32(emoScores, want[0].Scores, 1e-4) {
			t.Fatalf("row %q: emotion %s %v %v, want %s %v %v", text, emoLabel, emoLabels, emoScores, want[0].Label, emo.Labels(), want[0].Scores)
		}
		if sum := sum32(emoScores); math.Abs(sum-1) > 1e-3 {
			t.Fatalf("row %q: emotion scores sum to %v", text, sum)
		}
		if sentLabel != "negative" && sentLabel != "neutral" && sentLabel != "positive" || sentScore < -1 || sentScore > 1 {
			t.Fatalf("row %q: sentiment %q %v", text, sentLabel, sentScore)
		}
		wantVec, err := emb.Embed(ctx, []string{text})
		if err != nil {
			t.Fatal(err)
		}
		if len(vec) != emb.Dim() || !close32(vec, wantVec[0], 1e-4) {
			t.Fatalf("row %q: embedding of %d dimensions differs from the model's %d", text, len(vec), emb.Dim())
		}
		checked++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if checked != n {
		t.Fatalf("checked %d rows, want %d", checked, n)
	}
}

func close32(a, b []float32, tol float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i])-float64(b[i])) > tol {
			return false
		}
	}
	return true
}

func sum32(v []float32) float64 {
	s := 0.0
	for _, x := range v {
		s += float64(x)
	}
	return s
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestCheckLoadsLocalModels runs the check command with local stages: it
// loads and warms up each model and reports it, or fails on a model
// directory that does not hold a model.
func TestCheckLoadsLocalModels(t *testing.T) {
	testenv.EachClickHouse(t, testCheckLoadsLocalModels)
}

// testCheckLoadsLocalModels is TestCheckLoadsLocalModels on one server.
func testCheckLoadsLocalModels(t *testing.T, srv testenv.ClickHouseServer) {
	lib := testenv.Lookup(t, "TEXTPULSE_ORT_LIB")
	models := testenv.Lookup(t, "TEXTPULSE_TEST_MODELS")
	s := newScenario(t, srv, 1)
	base := []string{"check",
		"--kafka.brokers", strings.Join(s.kafka.Brokers, ","), "--kafka.topics", s.topic,
		"--kafka.dead_letter_topic", s.dlq, "--clickhouse.addr", s.chAddr, "--clickhouse.database", s.db,
		"--log.level", "error", "--ort.lib", lib,
	}
	runCmd := func(args ...string) (string, error) {
		var out harness.Buffer
		err := run(context.Background(), args, func(string) string { return "" }, &out, &out)
		return out.String(), err
	}
	tests := []struct {
		name  string
		args  []string
		wants []string
	}{
		{
			name: "models load",
			args: []string{"--stages.emotion.enabled", "--stages.emotion.model_dir", filepath.Join(models, "tiny-emotion"),
				"--stages.embedding.enabled", "--stages.embedding.provider", "local",
				"--stages.embedding.local.model_dir", filepath.Join(models, "minilm")},
			wants: []string{"ok   emotion model textpulse/tiny-emotion@", "on cpu: 7 labels", "ok   embedding model ", "384 dimensions"},
		},
		{
			name:  "not a model directory",
			args:  []string{"--stages.emotion.enabled", "--stages.emotion.model_dir", t.TempDir()},
			wants: []string{"FAIL local models: load emotion model from "},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _ := runCmd(append(slices.Clone(base), tt.args...)...)
			for _, want := range tt.wants {
				if !strings.Contains(out, want) {
					t.Errorf("check output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/textpulse/textpulse/internal/modeleval"
	"github.com/textpulse/textpulse/internal/testenv"
)

// TestBundledClassifiersThroughPipeline runs the consumer with the bundled
// MiniLM emotion and sentiment classifiers, as `make demo` does, on the
// hand-written sentences of testdata/posts/emotion-plain.jsonl, and checks
// that the rows carry sensible labels: most emotions right, and the
// sentiment that each emotion implies (surprise implies none).
func TestBundledClassifiersThroughPipeline(t *testing.T) {
	testenv.EachClickHouse(t, testBundledClassifiersThroughPipeline)
}

// testBundledClassifiersThroughPipeline is TestBundledClassifiersThroughPipeline on one server.
func testBundledClassifiersThroughPipeline(t *testing.T, srv testenv.ClickHouseServer) {
	lib := testenv.Lookup(t, "TEXTPULSE_ORT_LIB")
	models := testenv.Lookup(t, "TEXTPULSE_TEST_MODELS")
	examples, err := modeleval.ReadFile("../../testdata/posts/emotion-plain.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	s := newScenario(t, srv, 2)
	want := map[string]string{}
	values := make([][]byte, len(examples))
	for i, ex := range examples {
		want[ex.Text] = ex.Label
		if values[i], err = json.Marshal(map[string]string{"id": fmt.Sprint(i), "text": ex.Text, "lang": "en"}); err != nil {
			t.Fatal(err)
		}
	}
	s.kafka.Produce(t, s.topic, s.partitions, values)
	c := startInProcess(t, s.args(
		"--ort.lib", lib,
		"--stages.emotion.enabled", "--stages.emotion.model_dir", filepath.Join(models, "minilm-emotion"), "--stages.emotion.device", "cpu",
		"--stages.sentiment.enabled", "--stages.sentiment.provider", "local",
		"--stages.sentiment.local.model_dir", filepath.Join(models, "minilm-sentiment"), "--stages.sentiment.local.device", "cpu",
	))
	s.waitRows(len(examples), 3*time.Minute)
	if err := c.stop(t); err != nil {
		t.Fatalf("consumer: %v\n%s", err, c.log.String())
	}

	rows, err := s.ch.Conn.Query(context.Background(), fmt.Sprintf(
		`SELECT text, emotion_label, emotion_model, sentiment_label, sentiment_model FROM %s.events FINAL`, s.db))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	implied := map[string]string{"anger": "negative", "disgust": "negative", "fear": "negative", "sadness": "negative", "joy": "positive", "neutral": "neutral"}
	var n, emoRight, sentN, sentRight int
	for rows.Next() {
		var text, emo, emoModel, sent, sentModel string
		if err := rows.Scan(&text, &emo, &emoModel, &sent, &sentModel); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(emoModel, "textpulse/minilm-emotion@") || !strings.HasPrefix(sentModel, "textpulse/minilm-sentiment@") {
			t.Fatalf("row %q: models %q, %q", text, emoModel, sentModel)
		}
		n++
		if emo == want[text] {
			emoRight++
		}
		if s, ok := implied[want[text]]; ok {
			sentN++
			if sent == s {
				sentRight++
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("emotion right for %d of %d rows, sentiment for %d of %d", emoRight, n, sentRight, sentN)
	if n != len(examples) || float64(emoRight) < 0.75*float64(n) || float64(sentRight) < 0.75*float64(sentN) {
		t.Fatalf("%d rows (want %d); emotion right for %d, sentiment for %d of %d: want at least 75%% each", n, len(examples), emoRight, sentRight, sentN)
	}
}

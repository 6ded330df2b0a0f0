package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/textpulse/textpulse/gpu"
	"github.com/textpulse/textpulse/internal/promtest"
	"github.com/textpulse/textpulse/processor"
)

// fakeClassifier scores a text by its length: label i gets weight 1 when
// len(text)%len(labels) == i. It counts the texts it was asked for and fails
// the first failures calls with err.
type fakeClassifier struct {
	labels   []string
	mu       sync.Mutex
	seen     []string
	calls    int
	failures int
	err      error
}

func (f *fakeClassifier) Classify(_ context.Context, texts []string) ([]gpu.Classification, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls <= f.failures {
		return nil, f.err
	}
	f.seen = append(f.seen, texts...)
	out := make([]gpu.Classification, len(texts))
	for i, t := range texts {
		top := len(t) % len(f.labels)
		scores := make([]float32, len(f.labels))
		for j := range scores {
			scores[j] = 0.1 / float32(len(f.labels)-1)
		}
		scores[top] = 0.9
		out[i] = gpu.Classification{Label: f.labels[top], Score: 0.9, Scores: scores}
	}
	return out, nil
}

func (f *fakeClassifier) Labels() []string { return f.labels }
func (f *fakeClassifier) Model() string    { return "fake@0123456789ab" }

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newTestBatch(texts ...string) *processor.Batch {
	b := processor.NewBatch("test")
	for i, t := range texts {
		b.Append(processor.Record{Topic: "in", Offset: int64(i), Event: processor.Event{ID: t, Text: t}})
	}
	return b
}

func testConfig(policy processor.FailurePolicy) Config {
	c := DefaultConfig()
	c.OnFailure = policy
	c.MaxAttempts = 2
	return c
}

var emotions = []string{"anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"}

func TestEmotionStageSetsEveryRecordAndDeduplicates(t *testing.T) {
	c := &fakeClassifier{labels: emotions}
	reg := prometheus.NewRegistry()
	s, err := NewEmotionStage(c, testConfig(processor.PolicySkip), quietLog(), reg)
	if err != nil {
		t.Fatal(err)
	}
	b := newTestBatch("a", "bb", "a", "ccc", "bb", "dddd")
	if err := s.Enrich(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if got, want := c.seen, []string{"a", "bb", "ccc", "dddd"}; !slices.Equal(got, want) {
		t.Fatalf("model saw %q, want distinct texts %q", got, want)
	}
	for i, r := range b.Records {
		top := len(r.Text) % len(emotions)
		if r.EmotionLabel != emotions[top] || !slices.Equal(r.EmotionLabels, emotions) ||
			len(r.EmotionScores) != len(emotions) || r.EmotionScores[top] != 0.9 || r.EmotionModel != "fake@0123456789ab" {
			t.Errorf("record %d (%q): label %q labels %q scores %v model %q", i, r.Text, r.EmotionLabel, r.EmotionLabels, r.EmotionScores, r.EmotionModel)
		}
		if len(r.FailedStages) != 0 {
			t.Errorf("record %d: failed stages %q", i, r.FailedStages)
		}
	}
	// A second batch is answered from the cache for the texts seen before.
	b2 := newTestBatch("a", "eeeee")
	if err := s.Enrich(context.Background(), b2); err != nil {
		t.Fatal(err)
	}
	if got := c.seen[4:]; !slices.Equal(got, []string{"eeeee"}) {
		t.Fatalf("second batch: model saw %q, want only the new text", got)
	}
	if b2.Records[0].EmotionLabel != emotions[1] {
		t.Fatalf("cached record: label %q", b2.Records[0].EmotionLabel)
	}
	if hits := promtest.Sum(t, reg, "textpulse_stage_cache_hits_total", nil); hits != 1 {
		t.Fatalf("cache hits %v, want 1", hits)
	}
}

func TestFailurePolicies(t *testing.T) {
	boom := fmt.Errorf("%w: cuda out of memory", gpu.ErrInference)
	tests := []struct {
		name       string
		policy     processor.FailurePolicy
		failures   int
		err        error
		wantErr    bool
		wantFailed bool
		wantDead   int
		wantCalls  int
	}{
		{name: "transient failure recovers within attempts", policy: processor.PolicySkip, failures: 1, err: boom, wantCalls: 2},
		{name: "skip marks rows failed", policy: processor.PolicySkip, failures: 5, err: boom, wantFailed: true, wantCalls: 2},
		{name: "dead letter rejects rows", policy: processor.PolicyDeadLetter, failures: 5, err: boom, wantDead: 2, wantCalls: 2},
		{name: "permanent error is not retried", policy: processor.PolicySkip, failures: 5, err: processor.Permanent(boom), wantFailed: true, wantCalls: 1},
		{name: "model error is not retried", policy: processor.PolicySkip, failures: 5, err: gpu.ErrClosed, wantFailed: true, wantCalls: 1},
		{name: "retry keeps trying", policy: processor.PolicyRetry, failures: 4, err: boom, wantCalls: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &fakeClassifier{labels: emotions, failures: tt.failures, err: tt.err}
			s, err := NewEmotionStage(c, testConfig(tt.policy), quietLog(), nil)
			if err != nil {
				t.Fatal(err)
			}
			b := newTestBatch("x", "yy")
			err = s.Enrich(context.Background(), b)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Enrich error %v, want error %v", err, tt.wantErr)
			}
			if c.calls != tt.wantCalls {
				t.Errorf("model calls %d, want %d", c.calls, tt.wantCalls)
			}
			rej := b.Rejected()
			if len(rej) != tt.wantDead {
				t.Errorf("dead letters %d, want %d", len(rej), tt.wantDead)
			}
			for _, dl := range rej {
				if dl.Stage != "emotion" || dl.Class != processor.ClassStageFailed || dl.Attempts != 2 {
					t.Errorf("dead letter stage %q class %q attempts %d", dl.Stage, dl.Class, dl.Attempts)
				}
			}
			for i, r := range b.Records {
				failed := slices.Contains(r.FailedStages, "emotion")
				if failed != tt.wantFailed {
					t.Errorf("record %d failed stages %q, want failed %v", i, r.FailedStages, tt.wantFailed)
				}
				if !failed && tt.wantDead == 0 && r.EmotionLabel == "" {
					t.Errorf("record %d has no emotion", i)
				}
			}
		})
	}
}

func TestRetryPolicyStopsWithContext(t *testing.T) {
	c := &fakeClassifier{labels: emotions, failures: 1 << 30, err: gpu.ErrInference}
	s, err := NewEmotionStage(c, testConfig(processor.PolicyRetry), quietLog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			c.mu.Lock()
			n := c.calls
			c.mu.Unlock()
			if n >= 2 {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	err = s.Enrich(ctx, newTestBatch("x"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Enrich error %v, want context.Canceled", err)
	}
}

func TestSentimentStage(t *testing.T) {
	t.Run("labels map to the API stage's form", func(t *testing.T) {
		c := &fakeClassifier{labels: []string{"NEGATIVE", "Neutral", "positive"}}
		s, err := NewSentimentStage(c, testConfig(processor.PolicySkip), quietLog(), nil)
		if err != nil {
			t.Fatal(err)
		}
		b := newTestBatch("abc", "a", "ab") // len%3: 0 negative, 1 neutral, 2 positive
		if err := s.Enrich(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		want := []struct {
			label string
			score float32
		}{{"negative", 0.05 - 0.9}, {"neutral", 0}, {"positive", 0.9 - 0.05}}
		for i, r := range b.Records {
			if r.SentimentLabel != want[i].label || abs(r.SentimentScore-want[i].score) > 1e-6 || r.SentimentModel != "fake@0123456789ab" {
				t.Errorf("record %d: %q %v %q, want %q %v", i, r.SentimentLabel, r.SentimentScore, r.SentimentModel, want[i].label, want[i].score)
			}
		}
	})
	for _, labels := range [][]string{{"negative", "neutral"}, {"anger", "joy"}, {"negative", "positive", "mixed"}} {
		t.Run("rejects labels "+strings.Join(labels, ","), func(t *testing.T) {
			_, err := NewSentimentStage(&fakeClassifier{labels: labels}, testConfig(processor.PolicySkip), quietLog(), nil)
			if !errors.Is(err, ErrLabels) {
				t.Fatalf("error %v, want ErrLabels", err)
			}
		})
	}
}

type fakeEmbedder struct{ calls int }

func (f *fakeEmbedder) Embed(_ context.Context, texts []string) ([][]float32, error) {
	f.calls++
	out := make([][]float32, len(texts))
	for i, t := range texts {
		out[i] = []float32{float32(len(t)), 1}
	}
	return out, nil
}

func (f *fakeEmbedder) Model() string { return "minilm@abc" }

func (f *fakeEmbedder) Dim() int { return 2 }

func TestEmbeddingStage(t *testing.T) {
	m := &fakeEmbedder{}
	s, err := NewEmbeddingStage(m, testConfig(processor.PolicySkip), quietLog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	b := newTestBatch("a", "bbb", "a")
	if err := s.Enrich(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	for i, r := range b.Records {
		if len(r.Embedding) != 2 || r.Embedding[0] != float32(len(r.Text)) || r.EmbeddingModel != "minilm@abc" {
			t.Errorf("record %d: %v %q", i, r.Embedding, r.EmbeddingModel)
		}
	}
	if m.calls != 1 {
		t.Fatalf("model calls %d, want 1 per batch", m.calls)
	}
	if got := s.ResultBytes(); got != 8 {
		t.Fatalf("ResultBytes %d, want 8 for 2 float32 values", got)
	}
}

func abs(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}

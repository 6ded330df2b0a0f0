package modeleval

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/textpulse/textpulse/gpu"
	"github.com/textpulse/textpulse/internal/testenv"
)

const postsDir = "../../testdata/posts"

// Held-out floors of the trained models (accuracy and macro-F1): far above
// chance (1/7 and 1/3), below what they reach (docs/models.md), so that a
// broken head, tokenizer or label map fails here. The plain sets are small
// (35 and 21 sentences), so their floors leave more room.
var floors = map[string]float64{
	"minilm-emotion/emotion-test.jsonl":      0.8,
	"minilm-emotion/emotion-plain.jsonl":     0.75,
	"minilm-sentiment/sentiment-test.jsonl":  0.85,
	"minilm-sentiment/sentiment-plain.jsonl": 0.7,
}

// TestBundledHeldOut runs the bundled classifiers through package gpu on
// the held-out posts, as the emotion and sentiment stages run them.
func TestBundledHeldOut(t *testing.T) {
	lib := testenv.Lookup(t, "TEXTPULSE_ORT_LIB")
	models := testenv.Lookup(t, "TEXTPULSE_TEST_MODELS")
	rt, err := gpu.NewRuntime(lib, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("NewRuntime: %v", err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	for _, c := range Bundled() {
		floor, trained := floors[c.Model+"/"+c.Data]
		if !trained {
			continue
		}
		t.Run(c.Model+"/"+c.Data, func(t *testing.T) {
			dir := filepath.Join(models, c.Model)
			if _, err := os.Stat(filepath.Join(dir, "model.onnx")); err != nil {
				t.Fatalf("%s: %v (scripts/tools.sh install builds it)", c.Model, err)
			}
			cfg := gpu.DefaultConfig()
			cfg.Device = gpu.DeviceCPU
			rep, err := EvaluateDir(t.Context(), rt, dir, filepath.Join(postsDir, c.Data), cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s on %s: accuracy %.3f, macro-F1 %.3f (%d posts)", c.Model, c.Data, rep.Accuracy, rep.MacroF1, rep.Examples)
			if rep.Accuracy < floor || rep.MacroF1 < floor {
				t.Fatalf("accuracy %.3f, macro-F1 %.3f: want both >= %.2f", rep.Accuracy, rep.MacroF1, floor)
			}
			for _, l := range rep.Labels {
				if l.Support >= 20 && l.Recall < 0.5 {
					t.Errorf("label %s: recall %.3f < 0.5", l.Label, l.Recall)
				}
			}
		})
	}
}

// TestPostsSplits checks what makes the held-out scores honest and the
// macro-F1 meaningful: no held-out text (generated or plain) occurs in
// training, and each file is balanced over the labels the models use.
func TestPostsSplits(t *testing.T) {
	tasks := map[string][]string{
		"emotion":   {"anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"},
		"sentiment": {"negative", "neutral", "positive"},
	}
	for task, labels := range tasks {
		t.Run(task, func(t *testing.T) {
			splits := map[string][]Example{}
			for _, name := range []string{"train", "test", "plain"} {
				ex, err := ReadFile(filepath.Join(postsDir, task+"-"+name+".jsonl"))
				if err != nil {
					t.Fatal(err)
				}
				splits[name] = ex
			}
			seen := map[string]bool{}
			for _, ex := range splits["train"] {
				seen[ex.Text] = true
			}
			for _, name := range []string{"test", "plain"} {
				for _, ex := range splits[name] {
					if seen[ex.Text] {
						t.Errorf("%s text also in training: %q", name, ex.Text)
					}
				}
			}
			for name, split := range splits {
				count := map[string]int{}
				for _, ex := range split {
					count[ex.Label]++
				}
				for _, l := range labels {
					if count[l] != len(split)/len(labels) {
						t.Errorf("%s: %d %s texts of %d, want %d", name, count[l], l, len(split), len(split)/len(labels))
					}
				}
				if len(count) != len(labels) {
					t.Errorf("%s: labels %v, want %v", name, count, labels)
				}
			}
		})
	}
}

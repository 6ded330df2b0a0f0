package gpu

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// brokenModel copies (links) the model files of src into a temporary
// directory and lets edit change its config.json (as a map) or files.
func brokenModel(t *testing.T, src string, edit func(dir string, cfg map[string]any)) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{fileModel, fileTokenizer} {
		abs, err := filepath.Abs(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(abs, filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(src, fileConfig))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	write := func() {
		b, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fileConfig), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write()
	edit(dir, cfg)
	if _, err := os.Stat(filepath.Join(dir, fileConfig)); err == nil && !rawConfig(t, dir) {
		write()
	}
	return dir
}

// rawConfig reports whether config.json is no longer valid JSON (an edit
// wrote it directly).
func rawConfig(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, fileConfig))
	if err != nil {
		t.Fatal(err)
	}
	return !json.Valid(b)
}

func TestLoadErrors(t *testing.T) {
	emotion := modelDir(t, "tiny-emotion")
	minilm := modelDir(t, "minilm")
	rt := testRuntime(t, nil)
	remove := func(f string) func(string, map[string]any) {
		return func(dir string, _ map[string]any) { _ = os.Remove(filepath.Join(dir, f)) }
	}
	tests := []struct {
		name     string
		src      string
		embedder bool
		edit     func(dir string, cfg map[string]any)
		maxLen   int
		want     error
		detail   string
	}{
		{name: "missing model.onnx", src: emotion, edit: remove(fileModel), want: ErrMissingFile, detail: "model.onnx not found"},
		{name: "missing tokenizer.json", src: emotion, edit: remove(fileTokenizer), want: ErrMissingFile, detail: "tokenizer.json not found"},
		{name: "missing config.json", src: emotion, edit: func(dir string, _ map[string]any) {
			_ = os.Remove(filepath.Join(dir, fileConfig))
		}, want: ErrMissingFile, detail: "config.json not found"},
		{name: "config.json not json", src: emotion, edit: func(dir string, _ map[string]any) {
			_ = os.WriteFile(filepath.Join(dir, fileConfig), []byte("{not json"), 0o600)
		}, want: ErrModelConfig, detail: "parse config.json"},
		{name: "no id2label", src: emotion, edit: func(_ string, cfg map[string]any) { delete(cfg, "id2label") }, want: ErrLabels, detail: "no id2label"},
		{name: "labels fewer than logits", src: emotion, edit: func(_ string, cfg map[string]any) {
			cfg["id2label"] = map[string]string{"0": "neg", "1": "neu", "2": "pos"}
		}, want: ErrLabels, detail: "3 labels in id2label but logits has width 7"},
		{name: "label ids with a gap", src: emotion, edit: func(_ string, cfg map[string]any) {
			cfg["id2label"] = map[string]string{"0": "a", "1": "b", "2": "c", "3": "d", "4": "e", "5": "f", "9": "g"}
		}, want: ErrLabels, detail: "not 0..6"},
		{name: "regression problem_type", src: emotion, edit: func(_ string, cfg map[string]any) { cfg["problem_type"] = "regression" }, want: ErrProblemType, detail: `"regression"`},
		{name: "wrong input names", src: emotion, edit: func(dir string, _ map[string]any) {
			abs, _ := filepath.Abs(filepath.Join("testdata", "bad_inputs.onnx"))
			_ = os.Remove(filepath.Join(dir, fileModel))
			_ = os.Symlink(abs, filepath.Join(dir, fileModel))
		}, want: ErrModelInputs, detail: `unknown input "ids"`},
		{name: "embedding model as classifier", src: minilm, edit: func(_ string, cfg map[string]any) {
			cfg["id2label"] = map[string]string{"0": "a"}
		}, want: ErrModelOutputs, detail: "no logits output"},
		{name: "classifier as embedder", src: emotion, embedder: true, edit: func(string, map[string]any) {}, want: ErrModelOutputs, detail: "no last_hidden_state output"},
		{name: "max_length beyond positions", src: emotion, maxLen: 600, edit: func(string, map[string]any) {}, want: ErrModelConfig, detail: "max_length 600 exceeds the 512 positions"},
		{name: "model.onnx not onnx", src: emotion, edit: func(dir string, _ map[string]any) {
			_ = os.Remove(filepath.Join(dir, fileModel))
			_ = os.WriteFile(filepath.Join(dir, fileModel), []byte("not a model"), 0o600)
		}, want: ErrModelConfig, detail: "read model.onnx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := brokenModel(t, tt.src, tt.edit)
			cfg := testConfig(dir)
			cfg.MaxLength = tt.maxLen
			var err error
			if tt.embedder {
				_, err = rt.LoadEmbedder(context.Background(), "m", cfg, discardLogger(), nil)
			} else {
				_, err = rt.LoadClassifier(context.Background(), "m", cfg, discardLogger(), nil)
			}
			if !errors.Is(err, tt.want) || !errors.Is(err, ErrInvalidModel) {
				t.Fatalf("error %v, want %v and %v", err, tt.want, ErrInvalidModel)
			}
			var me *ModelError
			if !errors.As(err, &me) || me.Dir != dir {
				t.Fatalf("error %v is not a *ModelError for %s", err, dir)
			}
			if !strings.Contains(err.Error(), tt.detail) {
				t.Errorf("error %q does not say %q", err, tt.detail)
			}
			if retryable(err) {
				t.Errorf("retryable(%v) = true, want a permanent error", err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	valid := DefaultConfig()
	valid.ModelDir = "m"
	tests := []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"default with dir", func(*Config) {}, true},
		{"no dir", func(c *Config) { c.ModelDir = "" }, false},
		{"bad device", func(c *Config) { c.Device = "tpu" }, false},
		{"zero batch", func(c *Config) { c.MaxBatch = 0 }, false},
		{"negative wait", func(c *Config) { c.MaxWait = -1 }, false},
		{"negative max length", func(c *Config) { c.MaxLength = -1 }, false},
		{"negative threads", func(c *Config) { c.IntraOpThreads = -1 }, false},
		{"negative gpu memory", func(c *Config) { c.GPUMemLimit = -1 }, false},
		{"negative cuda device", func(c *Config) { c.CUDADeviceID = -1 }, false},
		{"cuda", func(c *Config) { c.Device = DeviceCUDA }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.edit(&c)
			err := c.Validate()
			if tt.ok != (err == nil) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
		})
	}
}

// TestLoadClassifierLabelsAndMultiLabel checks the metadata a user relies
// on and the sigmoid scores of a multi-label model.
func TestLoadClassifierLabelsAndMultiLabel(t *testing.T) {
	src := modelDir(t, "tiny-emotion")
	rt := testRuntime(t, nil)
	reg := prometheus.NewRegistry()
	c, err := rt.LoadClassifier(context.Background(), "emotion", testConfig(src), discardLogger(), reg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"}
	if got := c.Labels(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Labels() = %v, want %v", got, want)
	}
	if m := c.Model(); !strings.HasPrefix(m, "textpulse/tiny-emotion@") || len(m) != len("textpulse/tiny-emotion@")+12 {
		t.Errorf("Model() = %q, want textpulse/tiny-emotion@<12 hex>", m)
	}
	res, err := c.Classify(context.Background(), []string{"I am so happy today", "this is awful"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		var sum float32
		for _, s := range r.Scores {
			sum += s
		}
		if sum < 0.999 || sum > 1.001 || r.Score != maxOf(r.Scores) || r.Label == "" {
			t.Errorf("single-label result %+v: scores sum %v", r, sum)
		}
	}
	if got := testutil.ToFloat64(c.m.metrics.texts); got != 2 {
		t.Errorf("textpulse_gpu_texts_total = %v, want 2", got)
	}
	if n, err := testutil.GatherAndCount(reg, "textpulse_gpu_info", "textpulse_gpu_batch_size", "textpulse_gpu_padding_ratio",
		"textpulse_gpu_queue_wait_seconds", "textpulse_gpu_inference_duration_seconds", "textpulse_gpu_texts_total"); err != nil || n != 6 {
		t.Errorf("gathered %d series (%v), want 6", n, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Classify(context.Background(), []string{"x"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Classify after Close: %v, want ErrClosed", err)
	}

	multi := brokenModel(t, src, func(_ string, cfg map[string]any) { cfg["problem_type"] = "multi_label_classification" })
	mc, err := rt.LoadClassifier(context.Background(), "emotion_multi", testConfig(multi), discardLogger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err = mc.Classify(context.Background(), []string{"I am so happy today"})
	if err != nil {
		t.Fatal(err)
	}
	var sum float32
	for _, s := range res[0].Scores {
		if s <= 0 || s >= 1 {
			t.Errorf("sigmoid score %v outside (0, 1)", s)
		}
		sum += s
	}
	if sum > 0.999 && sum < 1.001 {
		t.Errorf("multi-label scores sum to %v: softmax applied instead of sigmoid", sum)
	}
}

func maxOf(v []float32) float32 {
	m := v[0]
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

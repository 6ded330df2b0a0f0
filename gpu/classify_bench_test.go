package gpu

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/textpulse/textpulse/internal/testenv"
)

// benchModel measures Classify throughput of a model for several batch
// sizes: every iteration classifies the same texts in one call.
func benchModel(b *testing.B, name string, texts int, batches []int) {
	dir := modelDir(b, name)
	rt := testRuntime(b, nil)
	corpusTexts := corpus(b, texts)
	for _, mb := range batches {
		for _, bucket := range []bool{true, false} {
			b.Run(fmt.Sprintf("batch=%d/bucketing=%v", mb, bucket), func(b *testing.B) {
				cfg := testConfig(dir)
				cfg.IntraOpThreads = 2
				cfg.MaxLength = 128
				cfg.MaxBatch = mb
				cfg.MaxWait = time.Millisecond
				cfg.DisableBucketing = !bucket
				c, err := rt.LoadClassifier(context.Background(), name, cfg, discardLogger(), nil)
				if err != nil {
					b.Fatal(err)
				}
				defer func() { _ = c.Close() }()
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					if _, err := c.Classify(context.Background(), corpusTexts); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(corpusTexts)*b.N)/b.Elapsed().Seconds(), "texts/s")
				real, padded := c.m.batcher.realTokens.Load(), c.m.batcher.paddedTokens.Load()
				b.ReportMetric(float64(padded)/float64(real+padded), "padding_ratio")
			})
		}
	}
}

func BenchmarkClassifyTinyEmotion(b *testing.B) {
	benchModel(b, "tiny-emotion", 512, []int{1, 8, 32, 64})
}

func BenchmarkClassifyDistilRobertaEmotion(b *testing.B) {
	benchModel(b, "distilroberta-emotion", 64, []int{8, 32})
}

// TestCompareWithPython runs gpu.BenchmarkTexts and scripts/models/bench_ort.py
// (Python onnxruntime) on the same texts with the same batches, max length
// and intra-op threads, and logs both throughputs and their ratio. It only
// runs with TEXTPULSE_GPU_COMPARE=1 (it takes a minute on two cores) and
// asserts nothing about speed; it fails only if either side fails or the
// padding ratios differ, which would mean the batches differ.
func TestCompareWithPython(t *testing.T) {
	if os.Getenv("TEXTPULSE_GPU_COMPARE") != "1" {
		t.Skip("set TEXTPULSE_GPU_COMPARE=1 to compare throughput with Python onnxruntime")
	}
	model := os.Getenv("TEXTPULSE_GPU_COMPARE_MODEL")
	if model == "" {
		model = "distilroberta-emotion"
	}
	dir := modelDir(t, model)
	py := testenv.Lookup(t, envPython)
	rt := testRuntime(t, nil)
	texts := corpus(t, 256)
	textsFile := filepath.Join(t.TempDir(), "texts.json")
	b, err := json.Marshal(texts)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(textsFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	const maxLength, batch, threads, repeat = 128, 32, 2, 5
	for _, bucket := range []bool{true, false} {
		cfg := testConfig(dir)
		cfg.MaxLength, cfg.MaxBatch, cfg.IntraOpThreads, cfg.DisableBucketing = maxLength, batch, threads, !bucket
		args := []string{filepath.Join("..", "scripts", "models", "bench_ort.py"), "--model-dir", dir, "--texts", textsFile,
			"--max-length", fmt.Sprint(maxLength), "--batch", fmt.Sprint(batch), "--threads", fmt.Sprint(threads), "--repeat", "1"}
		if !bucket {
			args = append(args, "--no-bucketing")
		}
		// Alternate Go and Python passes and keep the best of each, so that
		// load from other processes hits both sides alike.
		var goRate, goPad, pyRate, pyPad float64
		for range repeat {
			rate, pad, err := BenchmarkTexts(context.Background(), rt, cfg, texts)
			if err != nil {
				t.Fatal(err)
			}
			goRate, goPad = max(goRate, rate), pad
			out, err := exec.CommandContext(context.Background(), py, args...).Output()
			if err != nil {
				t.Fatalf("bench_ort.py: %v", err)
			}
			var res struct {
				Rate    float64 `json:"texts_per_sec"`
				Padding float64 `json:"padding_ratio"`
			}
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatalf("bench_ort.py output %q: %v", out, err)
			}
			pyRate, pyPad = max(pyRate, res.Rate), res.Padding
		}
		pyRes := struct{ Rate, Padding float64 }{pyRate, pyPad}
		t.Logf("%s bucketing=%v texts=%d max_length=%d batch=%d threads=%d: Go %.1f texts/s, Python %.1f texts/s, ratio %.3f; padding ratio Go %.3f, Python %.3f",
			model, bucket, len(texts), maxLength, batch, threads, goRate, pyRes.Rate, goRate/pyRes.Rate, goPad, pyRes.Padding)
		if d := goPad - pyRes.Padding; d > 1e-9 || d < -1e-9 {
			t.Errorf("padding ratio Go %.4f != Python %.4f: the batches differ", goPad, pyRes.Padding)
		}
	}
}

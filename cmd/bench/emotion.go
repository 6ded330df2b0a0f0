package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/textpulse/textpulse/gpu"
	"github.com/textpulse/textpulse/gpu/tokenizer"
	"github.com/textpulse/textpulse/internal/textgen"
)

// Settings of the emotion scenario, the same on both sides.
const (
	emotionMaxLength = 128
	emotionBatch     = 32
	emotionThreads   = 2
)

// runEmotion measures the emotion model on the CPU through package gpu
// against Python onnxruntime on the same model, texts, batches, maximum
// length and intra-op threads, alternating the two so that other load hits
// both alike; with and without length bucketing; and the tokenizer alone
// against Hugging Face tokenizers.
func runEmotion(ctx context.Context, o options, stdout io.Writer) (*Result, error) {
	if o.models == "" || o.ortLib == "" || o.python == "" {
		return nil, errors.New("needs --models, --ort-lib and --python (or TEXTPULSE_TEST_MODELS, TEXTPULSE_ORT_LIB and TEXTPULSE_TEST_CHDB_PYTHON, set by scripts/env.sh)")
	}
	model := "distilroberta-emotion"
	n := 512
	if o.quick {
		model, n = "tiny-emotion", 256
	}
	dir := filepath.Join(o.models, model)
	r := newResult("emotion", "Emotion classifier on the CPU: textpulse (Go, onnxruntime_go, Go tokenizer, dynamic batcher) "+
		"against Python onnxruntime with Hugging Face tokenizers on the same model and batches; tokenizer throughput")
	r.Settings = map[string]any{
		"model": model, "texts": n, "max_length": emotionMaxLength, "batch": emotionBatch,
		"intra_op_threads": emotionThreads, "repeat": o.repeat,
		"method":      "per run: Go and Python passes alternate 3 times, best of each kept; tokenization included on both sides",
		"text_length": "realistic social posts (textgen)",
		"gpu":         "none on this machine: CPU figures only",
	}
	g, err := textgen.New(textgen.Options{Seed: 9})
	if err != nil {
		return nil, err
	}
	texts, err := g.Texts(n)
	if err != nil {
		return nil, err
	}
	textsFile := filepath.Join(o.outDir, "emotion-texts.json")
	b, err := json.Marshal(texts)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(textsFile, b, 0o600); err != nil {
		return nil, err
	}
	defer func() { _ = os.Remove(textsFile) }()
	rt, err := gpu.NewRuntime(o.ortLib, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	defer func() { _ = rt.Close() }()

	for i := range o.repeat {
		_, _ = fmt.Fprintf(stdout, "emotion run %d/%d: %s, %d texts\n", i+1, o.repeat, model, n)
		run := map[string]float64{}
		for _, bucket := range []bool{true, false} {
			goRate, goPad, pyRate, pyPad, err := emotionCompare(ctx, o, rt, dir, textsFile, texts, bucket)
			if err != nil {
				return nil, err
			}
			suffix := ""
			if !bucket {
				suffix = "_unsorted"
			}
			run["go_texts_per_s"+suffix] = goRate
			run["python_texts_per_s"+suffix] = pyRate
			run["ratio_go_to_python"+suffix] = goRate / pyRate
			run["padding_ratio"+suffix] = goPad
			if d := goPad - pyPad; d > 1e-9 || d < -1e-9 {
				return nil, fmt.Errorf("padding ratio Go %.4f != Python %.4f: the batches differ", goPad, pyPad)
			}
		}
		run["bucketing_speedup"] = run["go_texts_per_s"] / run["go_texts_per_s_unsorted"]
		goTok, pyTok, err := tokenizerRates(ctx, o, filepath.Join(dir, "tokenizer.json"), textsFile, texts)
		if err != nil {
			return nil, err
		}
		run["tokenizer_go_texts_per_s"], run["tokenizer_python_texts_per_s"] = goTok, pyTok
		_, _ = fmt.Fprintf(stdout, "  Go %.0f texts/s, Python %.0f texts/s, ratio %.2f; padding %.2f sorted vs %.2f unsorted; tokenizer Go %.0f vs Python %.0f texts/s\n",
			run["go_texts_per_s"], run["python_texts_per_s"], run["ratio_go_to_python"], run["padding_ratio"],
			run["padding_ratio_unsorted"], goTok, pyTok)
		r.Runs = append(r.Runs, run)
	}
	r.summarize()
	return r, nil
}

// emotionCompare alternates three Go and three Python passes over texts and
// returns the best rate of each with its padding ratio.
func emotionCompare(ctx context.Context, o options, rt *gpu.Runtime, dir, textsFile string, texts []string, bucket bool) (goRate, goPad, pyRate, pyPad float64, err error) {
	cfg := gpu.DefaultConfig()
	cfg.ModelDir, cfg.Device = dir, gpu.DeviceCPU
	cfg.MaxLength, cfg.MaxBatch, cfg.IntraOpThreads, cfg.DisableBucketing = emotionMaxLength, emotionBatch, emotionThreads, !bucket
	args := []string{filepath.Join("scripts", "models", "bench_ort.py"), "--model-dir", dir, "--texts", textsFile,
		"--max-length", strconv.Itoa(emotionMaxLength), "--batch", strconv.Itoa(emotionBatch),
		"--threads", strconv.Itoa(emotionThreads), "--repeat", "1"}
	if !bucket {
		args = append(args, "--no-bucketing")
	}
	for range 3 {
		rate, pad, err := gpu.BenchmarkTexts(ctx, rt, cfg, texts)
		if err != nil {
			return 0, 0, 0, 0, err
		}
		goRate, goPad = max(goRate, rate), pad
		out, err := exec.CommandContext(ctx, o.python, args...).Output() //nolint:gosec // Benchmark command.
		if err != nil {
			return 0, 0, 0, 0, fmt.Errorf("bench_ort.py: %w", err)
		}
		var res struct {
			Rate    float64 `json:"texts_per_sec"`
			Padding float64 `json:"padding_ratio"`
		}
		if err := json.Unmarshal(out, &res); err != nil {
			return 0, 0, 0, 0, fmt.Errorf("bench_ort.py output %q: %w", out, err)
		}
		pyRate, pyPad = max(pyRate, res.Rate), res.Padding
	}
	return goRate, goPad, pyRate, pyPad, nil
}

// tokenizerRates returns the single-thread encode rates of the Go tokenizer
// and of Hugging Face tokenizers (an encode loop in Python) on texts.
func tokenizerRates(ctx context.Context, o options, path, textsFile string, texts []string) (goRate, pyRate float64, err error) {
	tok, err := tokenizer.Load(path, tokenizer.Options{MaxLength: emotionMaxLength})
	if err != nil {
		return 0, 0, err
	}
	for _, t := range texts { // Warm the word cache, as Python's warm-up does.
		tok.Encode(t)
	}
	const passes = 5
	start := time.Now()
	for range passes {
		for _, t := range texts {
			tok.Encode(t)
		}
	}
	goRate = float64(passes*len(texts)) / time.Since(start).Seconds()
	out, err := exec.CommandContext(ctx, o.python, filepath.Join("gpu", "tokenizer", "testdata", "encode.py"), //nolint:gosec // Benchmark command.
		"--bench", path, textsFile, strconv.Itoa(emotionMaxLength), strconv.Itoa(passes)).Output()
	if err != nil {
		return 0, 0, fmt.Errorf("encode.py --bench: %w", err)
	}
	var res struct {
		Rate float64 `json:"encode_texts_per_s"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return 0, 0, fmt.Errorf("encode.py output %q: %w", out, err)
	}
	return goRate, res.Rate, nil
}

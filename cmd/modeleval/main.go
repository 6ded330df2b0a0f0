// Command modeleval reports the accuracy and macro-F1 of text classifiers
// on held-out labelled posts, running them through package gpu (the Go
// tokenizer, ONNX Runtime and the label map of config.json), exactly as the
// emotion and sentiment stages do.
//
//	modeleval                          the bundled models on testdata/posts
//	modeleval --model DIR --data FILE  one exported classifier on one file
//
// FILE holds one {"text": ..., "label": ...} object per line; the labels
// must be spelled as in the model's id2label.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/textpulse/textpulse/gpu"
	"github.com/textpulse/textpulse/internal/modeleval"
)

type options struct {
	models, posts, ortLib, device string
	model, data                   string
	maxLength                     int
	verbose                       bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			_, _ = fmt.Fprintln(os.Stderr, "modeleval:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("modeleval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.models, "models", os.Getenv("TEXTPULSE_TEST_MODELS"), "directory of the models built by scripts/tools.sh")
	fs.StringVar(&o.posts, "posts", "testdata/posts", "directory of the labelled posts")
	fs.StringVar(&o.ortLib, "ort-lib", os.Getenv("TEXTPULSE_ORT_LIB"), "ONNX Runtime shared library")
	fs.StringVar(&o.device, "device", gpu.DeviceAuto, "auto, cpu or cuda")
	fs.StringVar(&o.model, "model", "", "evaluate this model directory instead of the bundled models (needs --data)")
	fs.StringVar(&o.data, "data", "", "labelled JSONL file for --model")
	fs.IntVar(&o.maxLength, "max-length", 0, "truncate texts to this many tokens (0: the tokenizer's, capped by the model)")
	fs.BoolVar(&o.verbose, "v", false, "also print precision, recall and F1 per label")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.ortLib == "" {
		return errors.New("needs --ort-lib (or TEXTPULSE_ORT_LIB, set by scripts/env.sh)")
	}
	cases, err := o.cases()
	if err != nil {
		return err
	}
	rt, err := gpu.NewRuntime(o.ortLib, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	defer func() { _ = rt.Close() }()
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	_, _ = fmt.Fprintln(stdout, "| task | model | weights | held-out set | texts | accuracy | macro-F1 |")
	_, _ = fmt.Fprintln(stdout, "|---|---|---|---|---:|---:|---:|")
	var details []string
	for _, c := range cases {
		rep, err := modeleval.EvaluateDir(ctx, rt, c.dir, c.data, o.modelConfig(), logger)
		if err != nil {
			return err
		}
		_, _ = fmt.Fprintf(stdout, "| %s | %s | %s | %s | %d | %.3f | %.3f |\n", c.Task, c.Model, c.Weights, filepath.Base(c.data), rep.Examples, rep.Accuracy, rep.MacroF1)
		if o.verbose {
			details = append(details, perLabel(c.Model+" on "+filepath.Base(c.data), rep)...)
		}
	}
	for _, line := range details {
		_, _ = fmt.Fprintln(stdout, line)
	}
	return nil
}

// modelConfig is the gpu configuration of every evaluated model, without
// its directory.
func (o options) modelConfig() gpu.Config {
	cfg := gpu.DefaultConfig()
	cfg.Device = o.device
	cfg.MaxLength = o.maxLength
	return cfg
}

type runCase struct {
	modeleval.Case
	dir, data string
}

func (o options) cases() ([]runCase, error) {
	if o.model != "" {
		if o.data == "" {
			return nil, errors.New("--model needs --data")
		}
		return []runCase{{Case: modeleval.Case{Task: "given", Model: filepath.Base(o.model), Weights: "given"}, dir: o.model, data: o.data}}, nil
	}
	if o.models == "" {
		return nil, errors.New("needs --models (or TEXTPULSE_TEST_MODELS, set by scripts/env.sh)")
	}
	var out []runCase
	for _, c := range modeleval.Bundled() {
		out = append(out, runCase{Case: c, dir: filepath.Join(o.models, c.Model), data: filepath.Join(o.posts, c.Data)})
	}
	return out, nil
}

func perLabel(model string, rep modeleval.Report) []string {
	lines := []string{"", model + ":", "", "| label | support | predicted | precision | recall | F1 |", "|---|---:|---:|---:|---:|---:|"}
	for _, l := range rep.Labels {
		lines = append(lines, fmt.Sprintf("| %s | %d | %d | %.3f | %.3f | %.3f |", l.Label, l.Support, l.Predicted, l.Precision, l.Recall, l.F1))
	}
	return lines
}

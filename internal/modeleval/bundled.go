package modeleval

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/textpulse/textpulse/gpu"
)

// Case is one model evaluated on one held-out file.
type Case struct {
	Task    string // emotion or sentiment
	Model   string // directory name under the models directory
	Weights string // trained or random
	Data    string // file name under the posts directory
}

// Bundled lists the models scripts/tools.sh builds into .local/models with
// the held-out split each is evaluated on: the trained MiniLM classifiers
// beside the random-weight models of the parity tests and benchmarks.
func Bundled() []Case {
	return []Case{
		{Task: "emotion", Model: "minilm-emotion", Weights: "trained", Data: "emotion-test.jsonl"},
		{Task: "emotion", Model: "tiny-emotion", Weights: "random", Data: "emotion-test.jsonl"},
		{Task: "emotion", Model: "distilroberta-emotion", Weights: "random", Data: "emotion-test.jsonl"},
		{Task: "sentiment", Model: "minilm-sentiment", Weights: "trained", Data: "sentiment-test.jsonl"},
		{Task: "sentiment", Model: "tiny-sentiment", Weights: "random", Data: "sentiment-test.jsonl"},
	}
}

// EvaluateDir loads the classifier in modelDir through rt (on device, see
// gpu.Config.Device), evaluates it on the examples of dataPath and closes
// it. The model's metrics go to a registry of their own.
func EvaluateDir(ctx context.Context, rt *gpu.Runtime, modelDir, device, dataPath string, logger *slog.Logger) (Report, error) {
	examples, err := ReadFile(dataPath)
	if err != nil {
		return Report{}, err
	}
	cfg := gpu.DefaultConfig()
	cfg.ModelDir = modelDir
	cfg.Device = device
	c, err := rt.LoadClassifier(ctx, filepath.Base(modelDir), cfg, logger, prometheus.NewRegistry())
	if err != nil {
		return Report{}, fmt.Errorf("load %s: %w", modelDir, err)
	}
	rep, err := Evaluate(ctx, c, examples)
	if cerr := c.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", modelDir, cerr)
	}
	return rep, err
}

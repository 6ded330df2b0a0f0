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
// the held-out files each is evaluated on: the trained MiniLM classifiers
// beside the random-weight models of the parity tests and benchmarks.
// <task>-test.jsonl is the held-out split written with gen_posts.py;
// <task>-plain.jsonl holds plain sentences written by hand, outside the
// generator.
func Bundled() []Case {
	var out []Case
	for _, data := range []string{"test", "plain"} {
		out = append(out,
			Case{Task: "emotion", Model: "minilm-emotion", Weights: "trained", Data: "emotion-" + data + ".jsonl"},
			Case{Task: "emotion", Model: "tiny-emotion", Weights: "random", Data: "emotion-" + data + ".jsonl"},
			Case{Task: "emotion", Model: "distilroberta-emotion", Weights: "random", Data: "emotion-" + data + ".jsonl"},
			Case{Task: "sentiment", Model: "minilm-sentiment", Weights: "trained", Data: "sentiment-" + data + ".jsonl"},
			Case{Task: "sentiment", Model: "tiny-sentiment", Weights: "random", Data: "sentiment-" + data + ".jsonl"},
		)
	}
	return out
}

// EvaluateDir loads the classifier in modelDir through rt with cfg (whose
// ModelDir it sets), evaluates it on the examples of dataPath and closes
// it. The model's metrics go to a registry of their own.
func EvaluateDir(ctx context.Context, rt *gpu.Runtime, modelDir, dataPath string, cfg gpu.Config, logger *slog.Logger) (Report, error) {
	examples, err := ReadFile(dataPath)
	if err != nil {
		return Report{}, err
	}
	cfg.ModelDir = modelDir
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

package schemas_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/textpulse/textpulse/schemas"
)

// TestModernDDLOnChdb runs the modern DDL, the sample inserts (with a retried
// batch) and every example query in a chdb session, through the Python
// interpreter named by TEXTPULSE_TEST_CHDB_PYTHON.
func TestModernDDLOnChdb(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts schemas.Options
	}{
		{"default names", schemas.Options{Dialect: schemas.DialectModern}},
		{"custom names with ttl", schemas.Options{Database: "tp_chdb", Table: "tweets", TTLDays: 30,
			DedupWindow: 100, Dialect: schemas.DialectModern}},
		{"json metadata and vector index", schemas.Options{Dialect: schemas.DialectModern,
			MetadataType: schemas.MetadataJSON, VectorIndex: schemas.VectorIndexHNSW, EmbeddingDims: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			steps := buildPlan(t, tc.opts, time.Now())
			results := runChdbPlan(t, steps, len(steps))
			checkResults(t, schemas.DialectModern, results)
		})
	}
}

// runChdbPlan runs steps (a JSON array of {name, sql}) in one chdb session
// through testdata/chdb_check.py and the Python interpreter named by
// TEXTPULSE_TEST_CHDB_PYTHON, and returns one result per step.
func runChdbPlan(t *testing.T, steps any, n int) []stepResult {
	t.Helper()
	python := requireEnv(t, envChdbPython, "a Python interpreter that can import chdb (such as .local/venv/bin/python)")
	script, err := filepath.Abs(filepath.Join("testdata", "chdb_check.py"))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := json.Marshal(map[string]any{"steps": steps})
	if err != nil {
		t.Fatal(err)
	}
	planPath := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(planPath, plan, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, script, planPath)
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("run %s %s: %v\nstderr:\n%s", python, script, err, stderr.String())
	}
	var out struct {
		Version string       `json:"version"`
		Results []stepResult `json:"results"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("decode chdb output: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("ran %d steps on %s", len(out.Results), out.Version)
	if len(out.Results) != n {
		t.Fatalf("got %d results for %d steps", len(out.Results), n)
	}
	return out.Results
}

package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/textpulse/textpulse/internal/testenv"
)

func TestRunFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "no library", args: []string{"--ort-lib", ""}, wantErr: "needs --ort-lib"},
		{name: "model without data", args: []string{"--ort-lib", "x", "--model", "m"}, wantErr: "--model needs --data"},
		{name: "no models", args: []string{"--ort-lib", "x", "--models", ""}, wantErr: "needs --models"},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(t.Context(), tt.args, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestRunModel evaluates one bundled model on the hand-written sentences
// and checks the printed table row.
func TestRunModel(t *testing.T) {
	lib := testenv.Lookup(t, "TEXTPULSE_ORT_LIB")
	models := testenv.Lookup(t, "TEXTPULSE_TEST_MODELS")
	var out, errOut bytes.Buffer
	args := []string{"--ort-lib", lib, "--device", "cpu", "-v",
		"--model", filepath.Join(models, "minilm-sentiment"), "--data", "../../testdata/posts/sentiment-plain.jsonl"}
	if err := run(t.Context(), args, &out, &errOut); err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	lines := strings.Split(out.String(), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[2], "| given | minilm-sentiment | given | sentiment-plain.jsonl | 21 | 0.") {
		t.Fatalf("unexpected table:\n%s", out.String())
	}
	for _, label := range []string{"| negative | 7 |", "| neutral | 7 |", "| positive | 7 |"} {
		if !strings.Contains(out.String(), label) {
			t.Errorf("no per-label row %q in\n%s", label, out.String())
		}
	}
}

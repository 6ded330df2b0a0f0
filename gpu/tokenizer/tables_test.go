package tokenizer_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestTablesUpToDate regenerates tables.go from the installed Hugging Face
// tokenizers and requires it to equal the committed file, so that the
// character classes stay those of the library the parity test compares
// with. After bumping tokenizers, run testdata/gen_tables.py.
func TestTablesUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("asks tokenizers about every code point")
	}
	py := python(t)
	out := filepath.Join(t.TempDir(), "tables.go")
	cmd := exec.Command(py, "testdata/gen_tables.py", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("run gen_tables.py: %v\n%s", err, msg)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("tables.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("tables.go differs from what gen_tables.py generates with the installed tokenizers; regenerate it with testdata/gen_tables.py")
	}
}

package tokenizer_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/textpulse/textpulse/gpu/tokenizer"
	"github.com/textpulse/textpulse/internal/testenv"
)

// Environment variables of the parity tests.
const (
	envPython = "TEXTPULSE_TEST_CHDB_PYTHON" // Python with the tokenizers package.
	envModels = "TEXTPULSE_TEST_MODELS"      // Directory holding minilm/tokenizer.json.
	// Directory holding real tokenizer.json files (scripts/tools.sh).
	envTokenizers = "TEXTPULSE_TEST_TOKENIZERS"
)

// realTokenizers are the real tokenizer.json files that scripts/tools.sh
// installs under TEXTPULSE_TEST_TOKENIZERS, by family.
var realTokenizers = []struct{ name, family string }{
	{"gpt4o", "bpe_split"},
	{"llama3", "bpe_split"},
	{"llama2", "bpe_byte_fallback"},
	{"gemma3", "bpe_byte_fallback"},
	{"multilingual-e5-small", "unigram"},
}

// realPath returns the path of the real tokenizer.json named.
func realPath(name string) func(testing.TB) string {
	return func(t testing.TB) string {
		t.Helper()
		p := filepath.Join(testenv.Lookup(t, envTokenizers), name, "tokenizer.json")
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is set but lacks %s/tokenizer.json: %v", envTokenizers, name, err)
		}
		return p
	}
}

// bpePath is the generated RoBERTa-style tokenizer (testdata/gen_bpe.py).
const bpePath = "testdata/bpe/tokenizer.json"

// minilmPath returns the path of the real all-MiniLM-L6-v2 tokenizer.json.
func minilmPath(t testing.TB) string {
	t.Helper()
	p := filepath.Join(testenv.Lookup(t, envModels), "minilm", "tokenizer.json")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is set but lacks minilm/tokenizer.json: %v", envModels, err)
	}
	return p
}

// python returns the Python interpreter that has tokenizers installed.
func python(t testing.TB) string {
	t.Helper()
	py := testenv.Lookup(t, envPython)
	if err := exec.Command(py, "-c", "import tokenizers").Run(); err != nil {
		if os.Getenv(testenv.EnvRequire) == "1" {
			t.Fatalf("%s cannot import tokenizers: %v", py, err)
		}
		t.Skipf("%s cannot import tokenizers: %v", py, err)
	}
	return py
}

// hfEncode encodes texts with Hugging Face tokenizers at each max length
// and returns, per max length, the ids and type ids of each text.
func hfEncode(t *testing.T, py, path string, texts []string, lengths []int) map[int][][2][]int64 {
	t.Helper()
	corpus := filepath.Join(t.TempDir(), "texts.json")
	data, err := json.Marshal(texts)
	if err != nil {
		t.Fatalf("encode corpus: %v", err)
	}
	if err := os.WriteFile(corpus, data, 0o600); err != nil {
		t.Fatalf("write corpus: %v", err)
	}
	ls := make([]string, len(lengths))
	for i, n := range lengths {
		ls[i] = strconv.Itoa(n)
	}
	cmd := exec.Command(py, "testdata/encode.py", path, corpus, strings.Join(ls, ","))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run encode.py: %v\n%s", err, stderr.String())
	}
	var raw map[string][][2][]int64
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatalf("decode encode.py output: %v", err)
	}
	res := make(map[int][][2][]int64, len(raw))
	for k, v := range raw {
		n, err := strconv.Atoi(k)
		if err != nil {
			t.Fatalf("max length %q: %v", k, err)
		}
		if len(v) != len(texts) {
			t.Fatalf("max length %d: %d encodings for %d texts", n, len(v), len(texts))
		}
		res[n] = v
	}
	return res
}

func quote(s string) string {
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return strconv.Quote(s)
}

func firstDiff(a, b []int64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestParityWithHuggingFace encodes the parity corpus with this package and
// with Hugging Face tokenizers, for the WordPiece and the byte-level BPE
// family at several max lengths, and requires identical ids and type ids
// for every text.
func TestParityWithHuggingFace(t *testing.T) {
	py := python(t)
	texts := parityCorpus(t)
	if len(texts) < 1000 {
		t.Fatalf("corpus has %d texts, want at least 1000", len(texts))
	}
	families := []struct {
		name    string
		path    func(testing.TB) string
		lengths []int
	}{
		{"wordpiece", minilmPath, []int{0, 16, 128, 512}},
		{"bpe", func(testing.TB) string { return bpePath }, []int{0, 16, 128, 512}},
		{"bpe_variant", bpeVariant, []int{0, 64}},
		{"bpe_options_a", bpeOptions(py, "options_a.json"), []int{0, 32}},
		{"bpe_options_b", bpeOptions(py, "options_b.json"), []int{0, 32}},
	}
	for _, r := range realTokenizers {
		families = append(families, struct {
			name    string
			path    func(testing.TB) string
			lengths []int
		}{r.name, realPath(r.name), []int{16, 128, 512}})
	}
	families = append(families, struct {
		name    string
		path    func(testing.TB) string
		lengths []int
	}{"qwen2_pattern", qwen2Variant, []int{128}})
	for _, v := range componentVariants {
		families = append(families, struct {
			name    string
			path    func(testing.TB) string
			lengths []int
		}{v.name, realVariant(v.base, v.edit), []int{128}})
	}
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			path := f.path(t)
			want := hfEncode(t, py, path, texts, f.lengths)
			for _, n := range f.lengths {
				tok, err := tokenizer.Load(path, tokenizer.Options{MaxLength: n})
				if err != nil {
					t.Fatalf("load: %v", err)
				}
				equal := 0
				var report []string
				for i, text := range texts {
					got := tok.Encode(text)
					w := want[n][i]
					if slices.Equal(got.IDs, w[0]) && slices.Equal(got.TypeIDs, w[1]) {
						equal++
						continue
					}
					if len(report) < 10 {
						d := firstDiff(got.IDs, w[0])
						report = append(report, fmt.Sprintf("text %d %s:\n  first difference at token %d\n  got  %d ids %v\n  want %d ids %v\n  got type ids %v\n  want type ids %v",
							i, quote(text), d, len(got.IDs), window(got.IDs, d), len(w[0]), window(w[0], d), window(got.TypeIDs, d), window(w[1], d)))
					}
				}
				t.Logf("max length %d (effective %d): %d/%d texts equal (%.2f%%)", n, tok.MaxLength(), equal, len(texts), 100*float64(equal)/float64(len(texts)))
				if equal != len(texts) {
					t.Errorf("max length %d: %d of %d texts differ from Hugging Face tokenizers:\n%s", n, len(texts)-equal, len(texts), strings.Join(report, "\n"))
				}
			}
		})
	}
}

// bpeVariant writes a variant of the BPE tokenizer that exercises the
// other options: a prefix space, normalized added tokens and the
// rstrip and single_word rules, and a left truncation direction.
func bpeVariant(t testing.TB) string {
	t.Helper()
	data, err := os.ReadFile(bpePath)
	if err != nil {
		t.Fatalf("read %s: %v", bpePath, err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("decode %s: %v", bpePath, err)
	}
	cfg["pre_tokenizer"].(map[string]any)["add_prefix_space"] = true
	cfg["truncation"] = map[string]any{"max_length": 40, "strategy": "LongestFirst", "stride": 0, "direction": "Left"}
	for _, a := range cfg["added_tokens"].([]any) {
		tok := a.(map[string]any)
		switch tok["content"] {
		case "<s>", "</s>":
			tok["normalized"] = true
		case "<pad>":
			tok["rstrip"] = true
		case "<unk>":
			tok["single_word"] = true
		}
	}
	out, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("encode variant: %v", err)
	}
	p := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatalf("write variant: %v", err)
	}
	return p
}

// componentVariants change one component of a real tokenizer.json to
// cover the options that no real file uses: every Split behavior with and
// without invert, and the other Metaspace prepend schemes.
var componentVariants = []struct {
	name string
	base string
	edit func(cfg map[string]any)
}{
	{"split_removed", "llama3", splitOptions("Removed", false)},
	{"split_merged_previous", "llama3", splitOptions("MergedWithPrevious", false)},
	{"split_merged_next_invert", "llama3", splitOptions("MergedWithNext", true)},
	{"split_contiguous", "llama3", splitOptions("Contiguous", false)},
	{"split_contiguous_invert", "gpt4o", splitOptions("Contiguous", true)},
	{"split_isolated_invert", "gpt4o", splitOptions("Isolated", true)},
	{"split_string_merged_next", "llama3", func(cfg map[string]any) {
		split := cfg["pre_tokenizer"].(map[string]any)["pretokenizers"].([]any)[0].(map[string]any)
		split["pattern"] = map[string]any{"String": "e"}
		split["behavior"] = "MergedWithNext"
	}},
	{"metaspace_first", "multilingual-e5-small", metaspaceOptions("first", true)},
	{"metaspace_never_unsplit", "multilingual-e5-small", metaspaceOptions("never", false)},
}

// splitOptions sets the behavior and invert of the Split that starts a
// Sequence pre-tokenizer.
func splitOptions(behavior string, invert bool) func(map[string]any) {
	return func(cfg map[string]any) {
		split := cfg["pre_tokenizer"].(map[string]any)["pretokenizers"].([]any)[0].(map[string]any)
		split["behavior"] = behavior
		split["invert"] = invert
	}
}

// metaspaceOptions sets the prepend scheme and split of a Metaspace
// pre-tokenizer.
func metaspaceOptions(scheme string, split bool) func(map[string]any) {
	return func(cfg map[string]any) {
		m := cfg["pre_tokenizer"].(map[string]any)
		delete(m, "add_prefix_space")
		m["prepend_scheme"] = scheme
		m["split"] = split
	}
}

// realVariant writes the real tokenizer.json named, changed by edit.
func realVariant(name string, edit func(map[string]any)) func(testing.TB) string {
	return func(t testing.TB) string {
		t.Helper()
		data, err := os.ReadFile(realPath(name)(t))
		if err != nil {
			t.Fatal(err)
		}
		var cfg map[string]any
		if err := json.Unmarshal(data, &cfg); err != nil {
			t.Fatalf("decode %s: %v", name, err)
		}
		edit(cfg)
		out, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "tokenizer.json")
		if err := os.WriteFile(p, out, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
}

// qwen2Variant writes the llama3 tokenizer with the Split regex of Qwen2
// (single digits).
func qwen2Variant(t testing.TB) string {
	t.Helper()
	data, err := os.ReadFile(realPath("llama3")(t))
	if err != nil {
		t.Fatal(err)
	}
	const llama3, qwen2 = `\\p{N}{1,3}`, `\\p{N}`
	if !bytes.Contains(data, []byte(llama3)) {
		t.Fatalf("llama3 tokenizer.json lacks %s", llama3)
	}
	p := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := os.WriteFile(p, bytes.Replace(data, []byte(llama3), []byte(qwen2), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// bpeOptions returns a function that writes the tokenizers of
// testdata/gen_bpe_options.py and returns the path of the one named.
func bpeOptions(py, name string) func(testing.TB) string {
	return func(t testing.TB) string {
		t.Helper()
		dir := t.TempDir()
		cmd := exec.Command(py, "testdata/gen_bpe_options.py", dir)
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("run gen_bpe_options.py: %v\n%s", err, msg)
		}
		return filepath.Join(dir, name)
	}
}

// window returns the ids around position d.
func window(ids []int64, d int) []int64 {
	lo, hi := max(0, d-3), min(len(ids), d+5)
	if lo > hi {
		return nil
	}
	return ids[lo:hi]
}

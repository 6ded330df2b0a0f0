package tokenizer_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/textpulse/textpulse/gpu/tokenizer"
)

// benchNames are the tokenizers benchmarked, in order: the generated BPE
// one, MiniLM's WordPiece and the real files of realTokenizers.
func benchNames() []string {
	names := []string{"wordpiece", "bpe"}
	for _, r := range realTokenizers {
		names = append(names, r.name)
	}
	return names
}

// benchFamilies returns the paths of the tokenizers to benchmark; those
// whose files are not installed are missing.
func benchFamilies(b *testing.B) map[string]string {
	b.Helper()
	fams := map[string]string{"bpe": bpePath}
	if dir := os.Getenv(envModels); dir != "" {
		fams["wordpiece"] = filepath.Join(dir, "minilm", "tokenizer.json")
	}
	if dir := os.Getenv(envTokenizers); dir != "" {
		for _, r := range realTokenizers {
			fams[r.name] = filepath.Join(dir, r.name, "tokenizer.json")
		}
	}
	return fams
}

// BenchmarkEncode encodes realistic social media texts one at a time,
// truncated at 128 tokens as the models use them. The BPE cache is warm,
// as in a long-running consumer.
func BenchmarkEncode(b *testing.B) {
	texts := textgenTexts(b, 11, 4096)
	for _, name := range benchNames() {
		path, ok := benchFamilies(b)[name]
		b.Run(name, func(b *testing.B) {
			if !ok {
				b.Skipf("%s is not installed", name)
			}
			tok := mustLoad(b, path, tokenizer.Options{MaxLength: 128})
			for _, s := range texts {
				tok.Encode(s)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				tok.Encode(texts[i%len(texts)])
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "texts/s")
		})
	}
}

// BenchmarkEncodeParallel encodes from GOMAXPROCS goroutines at once.
func BenchmarkEncodeParallel(b *testing.B) {
	texts := textgenTexts(b, 11, 4096)
	for _, name := range benchNames() {
		path, ok := benchFamilies(b)[name]
		b.Run(name, func(b *testing.B) {
			if !ok {
				b.Skipf("%s is not installed", name)
			}
			tok := mustLoad(b, path, tokenizer.Options{MaxLength: 128})
			for _, s := range texts {
				tok.Encode(s)
			}
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					tok.Encode(texts[next.Add(1)%int64(len(texts))])
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "texts/s")
		})
	}
}

// BenchmarkLoad measures reading and preparing a tokenizer.json.
func BenchmarkLoad(b *testing.B) {
	for _, name := range benchNames() {
		path, ok := benchFamilies(b)[name]
		b.Run(name, func(b *testing.B) {
			if !ok {
				b.Skipf("%s is not installed", name)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tokenizer.Load(path, tokenizer.Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestWriteBenchCorpus writes the benchmark texts as a JSON array to the
// file named by TEXTPULSE_TOKENIZER_BENCH_CORPUS, so that
// testdata/encode.py --bench measures Hugging Face tokenizers on the same
// texts. It does nothing when the variable is unset.
func TestWriteBenchCorpus(t *testing.T) {
	out := os.Getenv("TEXTPULSE_TOKENIZER_BENCH_CORPUS")
	if out == "" {
		t.Skip("TEXTPULSE_TOKENIZER_BENCH_CORPUS is not set")
	}
	data, err := json.Marshal(textgenTexts(t, 11, 4096))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

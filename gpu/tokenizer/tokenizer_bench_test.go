package tokenizer_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/textpulse/textpulse/gpu/tokenizer"
)

// benchFamilies returns the tokenizers to benchmark; the WordPiece one is
// skipped when the MiniLM tokenizer is not installed.
func benchFamilies(b *testing.B) map[string]string {
	b.Helper()
	fams := map[string]string{"bpe": bpePath}
	if dir := os.Getenv(envModels); dir != "" {
		fams["wordpiece"] = filepath.Join(dir, "minilm", "tokenizer.json")
	}
	return fams
}

// BenchmarkEncode encodes realistic social media texts one at a time,
// truncated at 128 tokens as the models use them. The BPE cache is warm,
// as in a long-running consumer.
func BenchmarkEncode(b *testing.B) {
	texts := textgenTexts(b, 11, 4096)
	for _, name := range []string{"wordpiece", "bpe"} {
		path, ok := benchFamilies(b)[name]
		b.Run(name, func(b *testing.B) {
			if !ok {
				b.Skipf("%s is not set", envModels)
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
	for _, name := range []string{"wordpiece", "bpe"} {
		path, ok := benchFamilies(b)[name]
		b.Run(name, func(b *testing.B) {
			if !ok {
				b.Skipf("%s is not set", envModels)
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
	for _, name := range []string{"wordpiece", "bpe"} {
		path, ok := benchFamilies(b)[name]
		b.Run(name, func(b *testing.B) {
			if !ok {
				b.Skipf("%s is not set", envModels)
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

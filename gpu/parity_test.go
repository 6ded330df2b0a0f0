package gpu

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/textpulse/textpulse/internal/testenv"
)

// parityTolerance is the largest accepted |Go - Python| of any output value
// for the same model and the same token ids.
const parityTolerance = 1e-4

type parityItem struct {
	IDs       []int64   `json:"ids"`
	TypeIDs   []int64   `json:"type_ids"`
	Logits    []float64 `json:"logits"`
	Probs     []float64 `json:"probs"`
	Embedding []float64 `json:"embedding"`
}

// pythonReference runs testdata/parity.py (Python onnxruntime and
// tokenizers, one text per run, no padding) on texts.
func pythonReference(t *testing.T, dir, kind string, maxLength int, texts []string) ([]parityItem, []float32) {
	t.Helper()
	py := testenv.Lookup(t, envPython)
	tmp := t.TempDir()
	req, err := json.Marshal(map[string]any{"model_dir": dir, "kind": kind, "max_length": maxLength, "texts": texts})
	if err != nil {
		t.Fatal(err)
	}
	reqPath := filepath.Join(tmp, "request.json")
	if err := os.WriteFile(reqPath, req, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, filepath.Join("testdata", "parity.py"), reqPath, tmp).CombinedOutput()
	if err != nil {
		t.Fatalf("parity.py: %v\n%s", err, out)
	}
	var res struct {
		ORT   string       `json:"onnxruntime"`
		Items []parityItem `json:"items"`
	}
	b, err := os.ReadFile(filepath.Join(tmp, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Items) != len(texts) {
		t.Fatalf("parity.py returned %d items for %d texts", len(res.Items), len(texts))
	}
	t.Logf("reference: python onnxruntime %s, %d texts", res.ORT, len(texts))
	var hidden []float32
	if kind == "embed" {
		raw, err := os.ReadFile(filepath.Join(tmp, "hidden.f32"))
		if err != nil {
			t.Fatal(err)
		}
		hidden = make([]float32, len(raw)/4)
		for i := range hidden {
			hidden[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	}
	return res.Items, hidden
}

func pythonEncodings(items []parityItem) []encoding {
	encs := make([]encoding, len(items))
	for i, it := range items {
		encs[i] = encoding{ids: it.IDs, typeIDs: it.TypeIDs}
	}
	return encs
}

type maxDelta struct{ v float64 }

func (d *maxDelta) add(got float32, want float64) {
	d.v = max(d.v, math.Abs(float64(got)-want))
}

// TestParityMiniLM compares the Go embeddings and raw last_hidden_state of
// all-MiniLM-L6-v2 with Python onnxruntime on the same token ids, and the
// Go tokenizer's ids with Hugging Face tokenizers.
func TestParityMiniLM(t *testing.T) {
	dir := modelDir(t, "minilm")
	rt := testRuntime(t, nil)
	cfg := testConfig(dir)
	cfg.MaxBatch = 16
	e, err := rt.LoadEmbedder(context.Background(), "embedding", cfg, discardLogger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Close() }()
	texts := corpus(t, 300)
	items, hidden := pythonReference(t, dir, "embed", e.MaxLength(), texts)
	encs := pythonEncodings(items)

	t.Run("embeddings", func(t *testing.T) {
		rows, err := e.m.batcher.submit(context.Background(), encs)
		if err != nil {
			t.Fatal(err)
		}
		var d maxDelta
		for i, row := range rows {
			if len(row) != len(items[i].Embedding) {
				t.Fatalf("text %d: dim %d, want %d", i, len(row), len(items[i].Embedding))
			}
			for j, v := range row {
				d.add(v, items[i].Embedding[j])
			}
		}
		t.Logf("embeddings: max |Go - Python| = %.3g over %d texts", d.v, len(rows))
		if d.v > parityTolerance {
			t.Errorf("embeddings differ from Python onnxruntime by %.3g > %g", d.v, parityTolerance)
		}
	})

	t.Run("last_hidden_state", func(t *testing.T) {
		// Padded batches of 16 in arrival order, so padding is exercised;
		// the batcher's worker is idle, so calling infer directly is safe.
		var d maxDelta
		offset := 0
		for start := 0; start < len(encs); start += 16 {
			batch := make([]*item, 0, 16)
			for i := start; i < min(start+16, len(encs)); i++ {
				batch = append(batch, &item{enc: encs[i]})
			}
			if err := e.m.infer(batch); err != nil {
				t.Fatal(err)
			}
			width := 0
			for _, it := range batch {
				width = max(width, len(it.enc.ids))
			}
			h := e.m.width
			for i, it := range batch {
				n := len(it.enc.ids)
				got := e.m.out[i*width*h : i*width*h+n*h]
				want := hidden[offset : offset+n*h]
				for j := range got {
					d.add(got[j], float64(want[j]))
				}
				offset += n * h
			}
		}
		if offset != len(hidden) {
			t.Fatalf("compared %d hidden values, python wrote %d", offset, len(hidden))
		}
		t.Logf("last_hidden_state: max |Go - Python| = %.3g over %d values", d.v, offset)
		if d.v > parityTolerance {
			t.Errorf("last_hidden_state differs from Python onnxruntime by %.3g > %g", d.v, parityTolerance)
		}
	})

	t.Run("tokenizer_end_to_end", func(t *testing.T) {
		checkTokenIDs(t, e.m, texts, items)
		got, err := e.Embed(context.Background(), texts)
		if err != nil {
			t.Fatal(err)
		}
		var d maxDelta
		for i, row := range got {
			for j, v := range row {
				d.add(v, items[i].Embedding[j])
			}
		}
		t.Logf("Embed (Go tokenizer): max |Go - Python| = %.3g", d.v)
		if d.v > parityTolerance {
			t.Errorf("Embed differs from Python by %.3g > %g", d.v, parityTolerance)
		}
	})
}

// TestParityTinyEmotion compares logits and probabilities of the RoBERTa
// family classifier with Python onnxruntime on the same token ids.
func TestParityTinyEmotion(t *testing.T) {
	for _, name := range []string{"tiny-emotion", "tiny-sentiment"} {
		t.Run(name, func(t *testing.T) {
			dir := modelDir(t, name)
			rt := testRuntime(t, nil)
			cfg := testConfig(dir)
			cfg.MaxLength = 64
			c, err := rt.LoadClassifier(context.Background(), "emotion", cfg, discardLogger(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = c.Close() }()
			texts := corpus(t, 300)
			items, _ := pythonReference(t, dir, "classify", c.MaxLength(), texts)
			rows, err := c.m.batcher.submit(context.Background(), pythonEncodings(items))
			if err != nil {
				t.Fatal(err)
			}
			var dl, dp maxDelta
			labels := map[string]int{}
			for i, row := range rows {
				for j, v := range row {
					dl.add(v, items[i].Logits[j])
				}
				for j, v := range probabilities(row, c.m.sigmoid) {
					dp.add(v, items[i].Probs[j])
				}
				labels[c.m.labels[argmax(items[i].Probs)]]++
			}
			t.Logf("logits: max |Go - Python| = %.3g, probabilities: %.3g, over %d texts; python labels %v", dl.v, dp.v, len(rows), labels)
			if dl.v > parityTolerance || dp.v > parityTolerance {
				t.Errorf("differs from Python onnxruntime: logits %.3g, probabilities %.3g > %g", dl.v, dp.v, parityTolerance)
			}
			if len(labels) < 2 {
				t.Errorf("every text got the same label %v: outputs do not depend on the text", labels)
			}

			checkTokenIDs(t, c.m, texts, items)
			got, err := c.Classify(context.Background(), texts)
			if err != nil {
				t.Fatal(err)
			}
			dp = maxDelta{}
			for i, r := range got {
				for j, v := range r.Scores {
					dp.add(v, items[i].Probs[j])
				}
				if want := c.m.labels[argmax(items[i].Probs)]; r.Label != want && math.Abs(float64(r.Score)-slices.Max(items[i].Probs)) > parityTolerance {
					t.Errorf("text %d: label %s, python %s", i, r.Label, want)
				}
			}
			t.Logf("Classify (Go tokenizer): probabilities max |Go - Python| = %.3g", dp.v)
			if dp.v > parityTolerance {
				t.Errorf("Classify differs from Python by %.3g > %g", dp.v, parityTolerance)
			}
		})
	}
}

func argmax(v []float64) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// checkTokenIDs asserts that the Go tokenizer gives the ids and type ids of
// Hugging Face tokenizers.
func checkTokenIDs(t *testing.T, m *model, texts []string, items []parityItem) {
	t.Helper()
	bad := 0
	for i, text := range texts {
		enc := m.tok.Encode(text)
		if !slices.Equal(enc.IDs, items[i].IDs) || (m.typeIDs && !slices.Equal(enc.TypeIDs, items[i].TypeIDs)) {
			if bad++; bad <= 3 {
				t.Errorf("text %d %.60q: Go ids %v, Python %v", i, text, enc.IDs, items[i].IDs)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d texts tokenized differently from Hugging Face tokenizers", bad, len(texts))
	}
}

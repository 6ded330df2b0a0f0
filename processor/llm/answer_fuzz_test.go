package llm

import (
	"testing"
)

// FuzzDecodeAnswers feeds arbitrary response bodies to the decoders of
// embeddings and chat answers, which both the synchronous and the Batch
// API paths use: they must not panic, and an answer they accept has one
// valid result per input.
func FuzzDecodeAnswers(f *testing.F) {
	f.Add([]byte(`{"data":[{"index":0,"embedding":[0.6,0.8]}],"usage":{"prompt_tokens":3}}`), uint8(1), uint8(2))
	f.Add([]byte(`{"data":[{"index":0,"embedding":"AACAPwAAAAA="}]}`), uint8(1), uint8(0))
	f.Add([]byte(`{"choices":[{"message":{"content":"{\"results\":[{\"id\":0,\"label\":\"positive\",\"score\":0.5}]}"},"finish_reason":"stop"}]}`), uint8(1), uint8(0))
	f.Add([]byte("```json\n{\"results\":[]}\n```"), uint8(0), uint8(0))
	f.Add([]byte(`{"choices":[]}`), uint8(3), uint8(0))
	f.Fuzz(func(t *testing.T, body []byte, n, dims uint8) {
		if vecs, _, err := decodeEmbeddings(body, int(n), int(dims)); err == nil {
			if len(vecs) != int(n) {
				t.Fatalf("%d vectors accepted for %d inputs", len(vecs), n)
			}
			for i, v := range vecs {
				if v == nil || (dims > 0 && len(v) != int(dims)) {
					t.Fatalf("vector %d has %d values, want %d", i, len(v), dims)
				}
			}
		}
		res, _, err := decodeSentiments(body, int(n))
		if err != nil {
			return
		}
		if len(res) != int(n) {
			t.Fatalf("%d sentiments accepted for %d texts", len(res), n)
		}
		for i, s := range res {
			switch {
			case s.Label != LabelNegative && s.Label != LabelNeutral && s.Label != LabelPositive:
				t.Fatalf("sentiment %d has label %q", i, s.Label)
			case s.Score < -1 || s.Score > 1:
				t.Fatalf("sentiment %d has score %v", i, s.Score)
			}
		}
	})
}

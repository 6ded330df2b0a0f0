package llm

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/textpulse/textpulse/processor"
)

// testEndpoint returns an endpoint configuration for a test server with
// short backoffs.
func testEndpoint(url string) EndpointConfig {
	c := defaultEndpointConfig("test-model", 8, 0)
	c.BaseURL = url
	c.APIKey = "test-key"
	c.Timeout = 5 * time.Second
	c.MaxAttempts = 3
	c.RetryInitialInterval = time.Millisecond
	c.RetryMaxInterval = 5 * time.Millisecond
	return c
}

// quietLog discards log output.
func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newTestBatch returns a batch of records with the given texts.
func newTestBatch(texts ...string) *processor.Batch {
	b := processor.NewBatch("test")
	for i, t := range texts {
		b.Append(processor.Record{Topic: "in", Offset: int64(i), Event: processor.Event{ID: t, Text: t}})
	}
	return b
}

// rejected returns the attempts by record index of the records rejected in
// b.
func rejected(b *processor.Batch) map[int]int {
	out := map[int]int{}
	for i, dl := range b.Rejected() {
		out[i] = dl.Attempts
	}
	return out
}

// failedStages returns the indexes of the records that list stage as failed.
func failedStages(b *processor.Batch, stage string) []int {
	var out []int
	for i, r := range b.Records {
		for _, s := range r.FailedStages {
			if s == stage {
				out = append(out, i)
			}
		}
	}
	return out
}

// embeddingRequest is what the test server receives.
type embeddingRequest struct {
	Input          []string `json:"input"`
	Model          string   `json:"model"`
	EncodingFormat string   `json:"encoding_format"`
	Dimensions     int      `json:"dimensions"`
}

// fakeVector is the vector the test server returns for a text.
func fakeVector(text string, dims int) []float32 {
	if dims == 0 {
		dims = 3
	}
	v := make([]float32, dims)
	v[0] = float32(len(text))
	if dims > 1 && text != "" {
		v[1] = float32(text[0])
	}
	if dims > 2 {
		v[2] = 0.5
	}
	return v
}

// embeddingServer is a test embeddings endpoint. fail, when set, may answer
// a request itself and return true.
type embeddingServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []embeddingRequest
	fail     func(w http.ResponseWriter, n int, req embeddingRequest) bool
}

func newEmbeddingServer(t testing.TB, fail func(w http.ResponseWriter, n int, req embeddingRequest) bool) *embeddingServer {
	t.Helper()
	s := &embeddingServer{fail: fail}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req embeddingRequest
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &req); err != nil || r.URL.Path != "/embeddings" {
			http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.requests = append(s.requests, req)
		n := len(s.requests)
		s.mu.Unlock()
		if s.fail != nil && s.fail(w, n, req) {
			return
		}
		data := make([]map[string]any, len(req.Input))
		for i, text := range req.Input {
			v := fakeVector(text, req.Dimensions)
			var emb any = v
			if req.EncodingFormat == EncodingBase64 {
				buf := make([]byte, 4*len(v))
				for j, f := range v {
					binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(f))
				}
				emb = base64.StdEncoding.EncodeToString(buf)
			}
			// Answer in reverse order to exercise matching by index.
			data[len(req.Input)-1-i] = map[string]any{"object": "embedding", "index": i, "embedding": emb}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"object": "list", "model": req.Model, "data": data,
			"usage": map[string]int{"prompt_tokens": len(req.Input), "total_tokens": len(req.Input)},
		})
	}))
	t.Cleanup(s.Close)
	return s
}

// count returns the number of requests received.
func (s *embeddingServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

// apiError writes an OpenAI error response.
func apiError(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"error":{"message":"test error","type":"test"}}`))
}

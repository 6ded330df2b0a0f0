package llm

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestEndpointRequests(t *testing.T) {
	tests := []struct {
		name     string
		apiType  string
		wantPath string
		wantAuth func(h http.Header) bool
	}{
		{"openai", APITypeOpenAI, "/embeddings", func(h http.Header) bool {
			return h.Get("Authorization") == "Bearer test-key" && h.Get("OpenAI-Organization") == "org-1"
		}},
		{"azure", APITypeAzure, "/openai/deployments/my-deployment/embeddings", func(h http.Header) bool {
			return h.Get("api-key") == "test-key"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var got *http.Request
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				got = r.Clone(r.Context())
				mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(map[string]any{
					"data": []map[string]any{{"index": 0, "embedding": []float32{1, 2}}},
				})
			}))
			defer srv.Close()
			cfg := DefaultEmbeddingConfig()
			cfg.EndpointConfig = testEndpoint(srv.URL)
			cfg.APIType = tt.apiType
			cfg.APIVersion = "2024-10-21"
			cfg.Model = "my-deployment"
			cfg.Organization = "org-1"
			cfg.EncodingFormat = EncodingFloat
			cfg.Headers = map[string]string{"X-Test": "yes"}
			s, err := NewEmbeddingStage(cfg, quietLog(), prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			b := newTestBatch("a")
			if err := s.Enrich(t.Context(), b); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if got.URL.Path != tt.wantPath {
				t.Errorf("path = %s, want %s", got.URL.Path, tt.wantPath)
			}
			if tt.apiType == APITypeAzure && got.URL.Query().Get("api-version") != "2024-10-21" {
				t.Errorf("api-version = %q", got.URL.Query().Get("api-version"))
			}
			if !tt.wantAuth(got.Header) || got.Header.Get("X-Test") != "yes" {
				t.Errorf("headers = %v", got.Header)
			}
			if len(b.Records[0].Embedding) != 2 {
				t.Errorf("embedding = %v", b.Records[0].Embedding)
			}
		})
	}
}

func TestAttemptTimeout(t *testing.T) {
	srv := newEmbeddingServer(t, func(_ http.ResponseWriter, n int, _ embeddingRequest) bool {
		if n == 1 {
			time.Sleep(300 * time.Millisecond)
		}
		return false
	})
	cfg := DefaultEmbeddingConfig()
	cfg.EndpointConfig = testEndpoint(srv.URL)
	cfg.Timeout = 50 * time.Millisecond
	s, err := NewEmbeddingStage(cfg, quietLog(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	b := newTestBatch("a")
	if err := s.Enrich(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if b.Records[0].Embedding == nil {
		t.Error("no embedding after a retried timeout")
	}
	if got := testutil.ToFloat64(s.c.m.retries.WithLabelValues(causeTimeout)); got != 1 {
		t.Errorf("retries{cause=timeout} = %v, want 1", got)
	}
}

package llm

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/textpulse/textpulse/processor"
)

func TestWithDefer(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		http.Error(w, "unexpected request", http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	tests := []struct {
		name  string
		stage func(opt Option) (processor.Stage, error)
	}{
		{name: "embedding", stage: func(opt Option) (processor.Stage, error) {
			cfg := DefaultEmbeddingConfig()
			cfg.EndpointConfig = testEndpoint(srv.URL)
			return NewEmbeddingStage(cfg, quietLog(), prometheus.NewRegistry(), opt)
		}},
		{name: "sentiment", stage: func(opt Option) (processor.Stage, error) {
			cfg := DefaultSentimentConfig()
			cfg.EndpointConfig = testEndpoint(srv.URL)
			return NewSentimentStage(cfg, quietLog(), prometheus.NewRegistry(), opt)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.stage(WithDefer(func() bool { return true }))
			if err != nil {
				t.Fatal(err)
			}
			b := newTestBatch("a", "b")
			if err := s.Enrich(t.Context(), b); err != nil {
				t.Fatal(err)
			}
			if got := failedStages(b, tt.name); !slices.Equal(got, []int{0, 1}) {
				t.Errorf("records failed for %s: %v, want both", tt.name, got)
			}
			if n := requests.Load(); n != 0 {
				t.Errorf("%d requests sent while deferred", n)
			}
		})
	}
}

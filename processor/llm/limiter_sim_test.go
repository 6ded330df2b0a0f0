package llm

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/textpulse/textpulse/internal/openaisim"
)

// capacityServer is the simulator behind a gate that answers 429 to every
// request above capacity in flight, as a server with a concurrency limit
// does.
type capacityServer struct {
	url      string
	inFlight atomic.Int64
	rejected atomic.Int64
}

func newCapacityServer(t *testing.T, capacity int64, latency time.Duration) *capacityServer {
	t.Helper()
	cfg := openaisim.DefaultConfig()
	cfg.Chat.Latency.Median = latency
	sim, err := openaisim.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs := &capacityServer{}
	h := sim.Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer cs.inFlight.Add(-1)
		if cs.inFlight.Add(1) > capacity {
			cs.rejected.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"error":{"message":"too many concurrent requests","type":"requests","code":"rate_limit_exceeded"}}`))
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	cs.url = hs.URL + "/v1"
	return cs
}

// capacityRun is what one run against a capacityServer measured.
type capacityRun struct {
	perSecond float64
	rejected  int64
	limit     int
	failed    int
}

// runAgainstCapacity classifies n texts, one a request, with up to 128
// requests in flight, adaptive or fixed.
func runAgainstCapacity(t *testing.T, adaptive bool, n int) capacityRun {
	t.Helper()
	srv := newCapacityServer(t, 16, 40*time.Millisecond)
	cfg := DefaultSentimentConfig()
	cfg.EndpointConfig = testEndpoint(srv.url)
	cfg.Model = "gpt-4o-mini"
	cfg.CacheSize = 0
	cfg.ItemsPerRequest = 1
	cfg.Concurrency, cfg.ConcurrencyInitial, cfg.AdaptiveConcurrency = 128, 32, adaptive
	cfg.MaxAttempts = 20
	cfg.RetryInitialInterval, cfg.RetryMaxInterval = 20*time.Millisecond, 500*time.Millisecond
	s, err := NewSentimentStage(cfg, quietLog(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	texts := make([]string, n)
	for i := range texts {
		texts[i] = fmt.Sprintf("text %d is fine", i)
	}
	b := newTestBatch(texts...)
	start := time.Now()
	if err := s.Enrich(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	return capacityRun{
		perSecond: float64(n) / time.Since(start).Seconds(),
		rejected:  srv.rejected.Load(),
		limit:     s.c.lim.Limit(),
		failed:    len(failedStages(b, s.Name())),
	}
}

func TestAdaptiveConcurrencyFindsServerCapacity(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for seconds")
	}
	const n = 1000
	fixed := runAgainstCapacity(t, false, n)
	adaptive := runAgainstCapacity(t, true, n)
	t.Logf("fixed 128: %.0f requests/s, %d answered 429, %d failed", fixed.perSecond, fixed.rejected, fixed.failed)
	t.Logf("adaptive: %.0f requests/s, %d answered 429, %d failed, limit %d", adaptive.perSecond, adaptive.rejected, adaptive.failed, adaptive.limit)
	if adaptive.failed != 0 {
		t.Errorf("%d records failed with adaptive concurrency, want 0", adaptive.failed)
	}
	if adaptive.limit < 8 || adaptive.limit > 32 {
		t.Errorf("adaptive limit settled at %d, want near the capacity of 16", adaptive.limit)
	}
	if adaptive.rejected*2 > fixed.rejected {
		t.Errorf("adaptive concurrency drew %d 429 answers, fixed %d: want under half", adaptive.rejected, fixed.rejected)
	}
	// The gate keeps the server busy either way; allow for scheduling
	// noise on a loaded machine.
	if adaptive.perSecond < 0.8*fixed.perSecond {
		t.Errorf("adaptive throughput %.0f/s, want at least 80%% of fixed %.0f/s", adaptive.perSecond, fixed.perSecond)
	}
}

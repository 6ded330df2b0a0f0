package llm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/textpulse/textpulse/internal/promtest"
	"github.com/textpulse/textpulse/processor/enrich"
)

func TestTruncate(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"fits", "abcdefgh", 8, "abcdefgh"},
		{"ascii cut", "abcdefghij", 8, "abcdefgh"},
		{"disabled", "abcdefghij", 0, "abcdefghij"},
		// "é" is two bytes at 7-8: the cut at 8 moves back to 7.
		{"rune boundary", "abcdefgéxyz", 8, "abcdefg"},
		// "日" is three bytes at 3-5: the cut at 4 moves back to 3.
		{"cjk", "abc日本語", 4, "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Truncate(tt.in, tt.max); got != tt.want {
				t.Errorf("Truncate(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
		})
	}
}

func TestPack(t *testing.T) {
	mk := func(tokens ...int) []*enrich.Item[[]float32] {
		out := make([]*enrich.Item[[]float32], len(tokens))
		for i, n := range tokens {
			out[i] = &enrich.Item[[]float32]{Tokens: n}
		}
		return out
	}
	tests := []struct {
		name      string
		tokens    []int
		maxInputs int
		maxTokens int
		want      []int // sizes of the requests
	}{
		{"one request", []int{1, 1, 1}, 10, 100, []int{3}},
		{"input limit", []int{1, 1, 1, 1, 1, 1, 1}, 3, 100, []int{3, 3, 1}},
		{"token limit", []int{40, 40, 40, 10, 10}, 10, 100, []int{2, 3}},
		{"exact token fit", []int{50, 50, 50}, 10, 100, []int{2, 1}},
		{"oversized alone", []int{10, 200, 10}, 10, 100, []int{1, 1, 1}},
		{"empty", nil, 10, 100, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int
			for _, r := range pack(mk(tt.tokens...), tt.maxInputs, tt.maxTokens) {
				got = append(got, len(r))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("pack sizes = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEmbeddingStage(t *testing.T) {
	long, long2 := strings.Repeat("x", 100), strings.Repeat("y", 100)
	tests := []struct {
		name         string
		format       string
		dims         int
		maxInputs    int
		maxReqTokens int
		texts        []string
		wantRequests int
	}{
		{"float", EncodingFloat, 0, 2048, 250000, []string{"a", "bb", "ccc"}, 1},
		{"base64", EncodingBase64, 0, 2048, 250000, []string{"a", "bb", "ccc"}, 1},
		{"base64 dimensions", EncodingBase64, 5, 2048, 250000, []string{"a", "bb"}, 1},
		{"input limit", EncodingFloat, 0, 2, 250000, []string{"a", "b", "c", "d", "e"}, 3},
		{"token limit and truncation", EncodingBase64, 0, 2048, 20, []string{long, "a", long2, "b"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newEmbeddingServer(t, nil)
			cfg := DefaultEmbeddingConfig()
			cfg.EndpointConfig = testEndpoint(srv.URL)
			cfg.EncodingFormat = tt.format
			cfg.Dimensions = tt.dims
			cfg.MaxInputs = tt.maxInputs
			cfg.MaxRequestTokens = tt.maxReqTokens
			cfg.MaxInputTokens = min(10, tt.maxReqTokens)
			s, err := NewEmbeddingStage(cfg, quietLog(), prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			b := newTestBatch(tt.texts...)
			if err := s.Enrich(t.Context(), b); err != nil {
				t.Fatal(err)
			}
			if got := srv.count(); got != tt.wantRequests {
				t.Errorf("requests = %d, want %d", got, tt.wantRequests)
			}
			for _, req := range srv.requests {
				if req.EncodingFormat != tt.format || req.Dimensions != tt.dims || req.Model != "test-model" {
					t.Errorf("request = %+v", req)
				}
				for _, in := range req.Input {
					if n := tokenCount(t, in); n > 10 {
						t.Errorf("input of %d tokens not truncated to 10", n)
					}
				}
			}
			tr, err := newTruncator()
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range b.Records {
				want := fakeVector(tr.truncate(tt.texts[i], 10), tt.dims)
				if !slices.Equal(r.Embedding, want) || r.EmbeddingModel != "test-model" {
					t.Errorf("record %d: embedding %v model %q, want %v", i, r.Embedding, r.EmbeddingModel, want)
				}
			}
		})
	}
}

func TestEmbeddingCache(t *testing.T) {
	srv := newEmbeddingServer(t, nil)
	cfg := DefaultEmbeddingConfig()
	cfg.EndpointConfig = testEndpoint(srv.URL)
	reg := prometheus.NewRegistry()
	s, err := NewEmbeddingStage(cfg, quietLog(), reg)
	if err != nil {
		t.Fatal(err)
	}
	b1 := newTestBatch("a", "b", "a")
	if err := s.Enrich(t.Context(), b1); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.requests[0].Input); n != 2 {
		t.Errorf("first request has %d inputs, want 2 distinct texts", n)
	}
	b2 := newTestBatch("b", "a")
	if err := s.Enrich(t.Context(), b2); err != nil {
		t.Fatal(err)
	}
	if got := srv.count(); got != 1 {
		t.Errorf("requests = %d, want 1: the second batch is cached", got)
	}
	for i, r := range b2.Records {
		if !slices.Equal(r.Embedding, fakeVector(r.Text, 0)) {
			t.Errorf("record %d: embedding %v", i, r.Embedding)
		}
	}
	if h, l := promtest.Sum(t, reg, "textpulse_stage_cache_hits_total", nil), promtest.Sum(t, reg, "textpulse_stage_cache_lookups_total", nil); h != 2 || l != 4 {
		t.Errorf("cache hits/lookups = %v/%v, want 2/4", h, l)
	}

	cfg.CacheSize = 0
	srv2 := newEmbeddingServer(t, nil)
	cfg.BaseURL = srv2.URL
	s2, err := NewEmbeddingStage(cfg, quietLog(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s2.Enrich(t.Context(), newTestBatch("a")); err != nil {
			t.Fatal(err)
		}
	}
	if got := srv2.count(); got != 2 {
		t.Errorf("requests without cache = %d, want 2", got)
	}
}

func TestEmbeddingRetries(t *testing.T) {
	tests := []struct {
		name         string
		fail         func(w http.ResponseWriter, n int, req embeddingRequest) bool
		texts        []string
		wantRequests int
		minElapsed   time.Duration
		wantRetries  map[string]float64
		wantFailed   []int
		wantLimited  float64
	}{
		{
			name: "retry-after-ms",
			fail: func(w http.ResponseWriter, n int, _ embeddingRequest) bool {
				if n == 1 {
					w.Header().Set("retry-after-ms", "50")
					apiError(w, http.StatusTooManyRequests)
					return true
				}
				return false
			},
			texts: []string{"a", "b"}, wantRequests: 2, minElapsed: 50 * time.Millisecond,
			wantRetries: map[string]float64{causeRateLimited: 1}, wantLimited: 1,
		},
		{
			name: "x-ratelimit-reset",
			fail: func(w http.ResponseWriter, n int, _ embeddingRequest) bool {
				if n == 1 {
					w.Header().Set("x-ratelimit-remaining-requests", "5")
					w.Header().Set("x-ratelimit-reset-requests", "1ms")
					w.Header().Set("x-ratelimit-remaining-tokens", "0")
					w.Header().Set("x-ratelimit-reset-tokens", "60ms")
					apiError(w, http.StatusTooManyRequests)
					return true
				}
				return false
			},
			texts: []string{"a"}, wantRequests: 2, minElapsed: 60 * time.Millisecond,
			wantRetries: map[string]float64{causeRateLimited: 1}, wantLimited: 1,
		},
		{
			name: "5xx backoff",
			fail: func(w http.ResponseWriter, n int, _ embeddingRequest) bool {
				if n <= 2 {
					apiError(w, http.StatusBadGateway)
					return true
				}
				return false
			},
			texts: []string{"a"}, wantRequests: 3,
			wantRetries: map[string]float64{causeServerError: 2},
		},
		{
			name: "truncated body",
			fail: func(w http.ResponseWriter, n int, _ embeddingRequest) bool {
				if n == 1 {
					w.Header().Set("Content-Type", "application/json")
					_, _ = w.Write([]byte(`{"object":"list","data":[{"index":0,"embe`))
					return true
				}
				return false
			},
			texts: []string{"a"}, wantRequests: 2,
			wantRetries: map[string]float64{causeNetwork: 1},
		},
		{
			name: "5xx exhausted",
			fail: func(w http.ResponseWriter, _ int, _ embeddingRequest) bool {
				apiError(w, http.StatusInternalServerError)
				return true
			},
			texts: []string{"a", "b"}, wantRequests: 3,
			wantRetries: map[string]float64{causeServerError: 2}, wantFailed: []int{0, 1},
		},
		{
			name: "no retry on 400",
			fail: func(w http.ResponseWriter, _ int, _ embeddingRequest) bool {
				apiError(w, http.StatusBadRequest)
				return true
			},
			texts: []string{"a"}, wantRequests: 1, wantFailed: []int{0},
		},
		{
			name: "400 for one input is isolated by splitting",
			fail: func(w http.ResponseWriter, _ int, req embeddingRequest) bool {
				if slices.Contains(req.Input, "poison") {
					apiError(w, http.StatusBadRequest)
					return true
				}
				return false
			},
			// 4 inputs: [a b poison d] -> [a b] ok, [poison d] -> [poison] 400, [d] ok.
			texts: []string{"a", "b", "poison", "d"}, wantRequests: 5, wantFailed: []int{2},
		},
		{
			name: "401 is not split",
			fail: func(w http.ResponseWriter, _ int, _ embeddingRequest) bool {
				apiError(w, http.StatusUnauthorized)
				return true
			},
			texts: []string{"a", "b", "c"}, wantRequests: 1, wantFailed: []int{0, 1, 2},
		},
		{
			name: "wrong vector count is retried",
			fail: func(w http.ResponseWriter, n int, _ embeddingRequest) bool {
				if n == 1 {
					w.Header().Set("Content-Type", "application/json")
					_, _ = w.Write([]byte(`{"object":"list","data":[]}`))
					return true
				}
				return false
			},
			texts: []string{"a"}, wantRequests: 2,
			wantRetries: map[string]float64{causeInvalidAnswer: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newEmbeddingServer(t, tt.fail)
			cfg := DefaultEmbeddingConfig()
			cfg.EndpointConfig = testEndpoint(srv.URL)
			s, err := NewEmbeddingStage(cfg, quietLog(), prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			b := newTestBatch(tt.texts...)
			start := time.Now()
			if err := s.Enrich(t.Context(), b); err != nil {
				t.Fatal(err)
			}
			if el := time.Since(start); el < tt.minElapsed {
				t.Errorf("elapsed %s, want at least %s", el, tt.minElapsed)
			}
			if got := srv.count(); got != tt.wantRequests {
				t.Errorf("requests = %d, want %d", got, tt.wantRequests)
			}
			for _, cause := range []string{causeRateLimited, causeServerError, causeTimeout, causeInvalidAnswer, causeNetwork} {
				if got := testutil.ToFloat64(s.c.m.retries.WithLabelValues(cause)); got != tt.wantRetries[cause] {
					t.Errorf("retries{cause=%s} = %v, want %v", cause, got, tt.wantRetries[cause])
				}
			}
			if got := testutil.ToFloat64(s.c.m.rateLimited); got != tt.wantLimited {
				t.Errorf("rate_limited = %v, want %v", got, tt.wantLimited)
			}
			if got := failedStages(b, "embedding"); !slices.Equal(got, tt.wantFailed) {
				t.Errorf("failed records = %v, want %v", got, tt.wantFailed)
			}
			for i, r := range b.Records {
				if ok := !slices.Contains(tt.wantFailed, i); ok != (r.Embedding != nil) {
					t.Errorf("record %d: embedding %v", i, r.Embedding)
				}
			}
		})
	}
}

func TestFailurePolicies(t *testing.T) {
	tests := []struct {
		policy      FailurePolicy
		wantErr     bool
		wantFailed  []int
		wantRejects map[int]int
	}{
		{PolicySkip, false, []int{0, 1}, map[int]int{}},
		{PolicyDeadLetter, false, nil, map[int]int{0: 3, 1: 3}},
		{PolicyRetry, true, nil, map[int]int{}},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy), func(t *testing.T) {
			srv := newEmbeddingServer(t, func(w http.ResponseWriter, _ int, _ embeddingRequest) bool {
				apiError(w, http.StatusServiceUnavailable)
				return true
			})
			cfg := DefaultEmbeddingConfig()
			cfg.EndpointConfig = testEndpoint(srv.URL)
			cfg.OnFailure = tt.policy
			reg := prometheus.NewRegistry()
			s, err := NewEmbeddingStage(cfg, quietLog(), reg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			b := newTestBatch("a", "b")
			err = s.Enrich(ctx, b)
			if tt.wantErr {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Enrich error = %v, want deadline exceeded", err)
				}
				if n := srv.count(); n <= cfg.MaxAttempts {
					t.Errorf("requests = %d, want retries beyond max_attempts %d", n, cfg.MaxAttempts)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got := failedStages(b, "embedding"); !slices.Equal(got, tt.wantFailed) {
				t.Errorf("failed records = %v, want %v", got, tt.wantFailed)
			}
			if got := rejected(b); len(got) != len(tt.wantRejects) || !mapsEqual(got, tt.wantRejects) {
				t.Errorf("rejected = %v, want %v", got, tt.wantRejects)
			}
			want := float64(len(tt.wantFailed) + len(tt.wantRejects))
			if got := promtest.Sum(t, reg, "textpulse_stage_failures_total", map[string]string{"policy": string(tt.policy)}); got != want {
				t.Errorf("failures = %v, want %v", got, want)
			}
		})
	}
}

func mapsEqual(a, b map[int]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return len(a) == len(b)
}

func TestRequestBudget(t *testing.T) {
	srv := newEmbeddingServer(t, nil)
	cfg := DefaultEmbeddingConfig()
	cfg.EndpointConfig = testEndpoint(srv.URL)
	cfg.MaxInputs = 1
	// 600 requests a minute is 10 a second with a burst of 60: 66 requests
	// need at least 0.6 s.
	cfg.RequestsPerMinute = 600
	cfg.Concurrency = 16
	s, err := NewEmbeddingStage(cfg, quietLog(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	texts := make([]string, 66)
	for i := range texts {
		texts[i] = strings.Repeat("t", i+1)
	}
	start := time.Now()
	if err := s.Enrich(t.Context(), newTestBatch(texts...)); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 550*time.Millisecond {
		t.Errorf("66 requests took %s, want at least 0.55 s under 600 per minute", el)
	}
	if got := srv.count(); got != 66 {
		t.Errorf("requests = %d, want 66", got)
	}
}

func TestTokenBudget(t *testing.T) {
	// 6000 tokens a minute is 100 a second with a burst of 600; four
	// requests of 200 estimated tokens need at least 2 s... too slow for a
	// unit test, so check the limiter takes the request's estimate.
	cl := &client{tokens: newPerMinuteLimiter(6000), lim: newLimiter(1, 1, false, time.Now, nil, nil)}
	start := time.Now()
	for range 2 {
		if err := cl.acquire(t.Context(), 350); err != nil {
			t.Fatal(err)
		}
		cl.lim.release(slotIgnored, 0)
	}
	// 700 tokens against a burst of 600 at 100/s: 1 s.
	if el := time.Since(start); el < 950*time.Millisecond {
		t.Errorf("700 tokens took %s, want at least 0.95 s", el)
	}
	// A request over the burst waits for a full burst, not forever.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cl.tokens = newPerMinuteLimiter(600000)
	if err := cl.acquire(ctx, 1<<20); err != nil {
		t.Fatalf("acquire over burst: %v", err)
	}
}

func TestEmbeddingResultBytes(t *testing.T) {
	tests := []struct {
		model string
		dims  int
		want  int
	}{
		{model: "text-embedding-3-small", dims: 0, want: 1536 * 4},
		{model: "text-embedding-3-large", dims: 0, want: 3072 * 4},
		{model: "text-embedding-3-large", dims: 256, want: 256 * 4},
		{model: "nomic-embed-text", dims: 768, want: 768 * 4},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.model, tt.dims), func(t *testing.T) {
			cfg := DefaultEmbeddingConfig()
			cfg.EndpointConfig = testEndpoint("http://127.0.0.1:1")
			cfg.Model, cfg.Dimensions = tt.model, tt.dims
			s, err := NewEmbeddingStage(cfg, quietLog(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.ResultBytes(); got != tt.want {
				t.Fatalf("ResultBytes %d, want %d", got, tt.want)
			}
		})
	}
}

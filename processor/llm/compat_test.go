package llm

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/textpulse/textpulse/internal/openaisim"
	"github.com/textpulse/textpulse/processor"
)

// simServer is the simulator with a profile, served over HTTP.
type simServer struct {
	*openaisim.Server
	url string
}

// newSim starts the simulator imitating profile; mod, when set, changes its
// configuration.
func newSim(t *testing.T, profile string, mod func(*openaisim.Config)) *simServer {
	t.Helper()
	cfg := openaisim.DefaultConfig()
	q, err := openaisim.ProfileQuirks(profile)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Quirks = q
	if mod != nil {
		mod(&cfg)
	}
	sim, err := openaisim.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(sim.Handler())
	t.Cleanup(hs.Close)
	url := hs.URL + "/v1"
	if q.AzureRoutes {
		url = hs.URL
	}
	return &simServer{Server: sim, url: url}
}

// simEndpoint is the endpoint configuration of a stage against sim.
func simEndpoint(sim *simServer, model string) EndpointConfig {
	c := testEndpoint(sim.url)
	c.Model = model
	c.MaxAttempts = 5
	return c
}

// texts returns n distinct short texts, each with suffix.
func texts(n int, suffix string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("text %d is great %s", i, suffix)
	}
	return out
}

func newSimEmbedding(t *testing.T, sim *simServer, mod func(*EmbeddingConfig)) (*EmbeddingStage, *prometheus.Registry) {
	t.Helper()
	cfg := DefaultEmbeddingConfig()
	cfg.EndpointConfig = simEndpoint(sim, "text-embedding-3-small")
	cfg.CacheSize = 0
	if mod != nil {
		mod(&cfg)
	}
	reg := prometheus.NewRegistry()
	s, err := NewEmbeddingStage(cfg, quietLog(), reg)
	if err != nil {
		t.Fatal(err)
	}
	return s, reg
}

func newSimSentiment(t *testing.T, sim *simServer, mod func(*SentimentConfig)) *SentimentStage {
	t.Helper()
	cfg := DefaultSentimentConfig()
	cfg.EndpointConfig = simEndpoint(sim, "gpt-4o-mini")
	cfg.CacheSize = 0
	cfg.ItemsPerRequest = 8
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewSentimentStage(cfg, quietLog(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkVectors checks that every record holds the simulator's vector.
func checkVectors(t *testing.T, texts []string, got [][]float32, dims int) {
	t.Helper()
	for i, text := range texts {
		want := openaisim.Embedding(text, 1536, dims)
		if !slices.Equal(got[i], want) {
			t.Errorf("record %d: vector of %d dims differs from the simulator's %d", i, len(got[i]), len(want))
		}
	}
}

func TestCompatEmbeddings(t *testing.T) {
	tests := []struct {
		name         string
		profile      string
		format       string
		dims         int
		wantRequests int64
		wantFloats   bool
	}{
		{"openai base64", openaisim.ProfileOpenAI, EncodingBase64, 0, 1, false},
		{"llamacpp floats for base64", openaisim.ProfileLlamaCpp, EncodingBase64, 0, 1, true},
		{"ollama floats for base64", openaisim.ProfileOllama, EncodingBase64, 0, 1, true},
		{"litellm base64 with dimensions", openaisim.ProfileLiteLLM, EncodingBase64, 256, 1, false},
		{"vllm float", openaisim.ProfileVLLM, EncodingFloat, 0, 1, false},
		{"azure base64", openaisim.ProfileAzure, EncodingBase64, 0, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := newSim(t, tt.profile, nil)
			s, _ := newSimEmbedding(t, sim, func(c *EmbeddingConfig) {
				c.EncodingFormat, c.Dimensions = tt.format, tt.dims
				if tt.profile == openaisim.ProfileAzure {
					c.APIType, c.APIVersion = APITypeAzure, "2024-10-21"
				}
			})
			in := texts(8, "")
			b := newTestBatch(in...)
			if err := s.Enrich(t.Context(), b); err != nil {
				t.Fatal(err)
			}
			got := make([][]float32, len(in))
			for i, r := range b.Records {
				got[i] = r.Embedding
			}
			dims := tt.dims
			if dims == 0 {
				dims = 1536
			}
			checkVectors(t, in, got, dims)
			if n := sim.Stats().Embeddings.Requests; n != tt.wantRequests {
				t.Errorf("requests = %d, want %d", n, tt.wantRequests)
			}
			if conv := testutil.ToFloat64(s.c.m.converted); (conv > 0) != tt.wantFloats {
				t.Errorf("converted answers = %v, want converted %v", conv, tt.wantFloats)
			}
		})
	}
}

func TestCompatSentimentFormats(t *testing.T) {
	tests := []struct {
		name      string
		profile   string
		quirks    func(*openaisim.Quirks)
		version   string
		mode      string
		wantMode  string
		wantFirst int64 // requests of the first batch
	}{
		{"openai json_schema", openaisim.ProfileOpenAI, nil, "", FormatAuto, FormatJSONSchema, 1},
		{"llamacpp 500 on json_schema", openaisim.ProfileLlamaCpp, nil, "", FormatAuto, FormatJSONObject, 2},
		{"model without structured outputs", openaisim.ProfileOpenAI, func(q *openaisim.Quirks) {
			q.JSONSchema, q.JSONSchemaStatus = openaisim.Refuse, http.StatusBadRequest
		}, "", FormatAuto, FormatJSONObject, 2},
		{"neither json_schema nor json_object", openaisim.ProfileOpenAI, func(q *openaisim.Quirks) {
			q.JSONSchema, q.JSONSchemaStatus, q.JSONObject = openaisim.Refuse, http.StatusBadRequest, openaisim.Refuse
		}, "", FormatAuto, FormatText, 3},
		{"azure old api-version", openaisim.ProfileAzure, nil, "2024-06-01", FormatAuto, FormatJSONObject, 2},
		{"azure new api-version", openaisim.ProfileAzure, nil, "2024-10-21", FormatAuto, FormatJSONSchema, 1},
		{"text mode fixed", openaisim.ProfileLlamaCpp, nil, "", FormatText, FormatText, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := newSim(t, tt.profile, func(c *openaisim.Config) {
				if tt.quirks != nil {
					tt.quirks(&c.Quirks)
				}
			})
			s := newSimSentiment(t, sim, func(c *SentimentConfig) {
				c.ResponseFormat = tt.mode
				if tt.version != "" {
					c.APIType, c.APIVersion = APITypeAzure, tt.version
				}
			})
			// Three batches of two requests each: the first finds the mode,
			// the others use it.
			for batch := range 3 {
				in := texts(16, fmt.Sprint("batch ", batch))
				b := newTestBatch(in...)
				if err := s.Enrich(t.Context(), b); err != nil {
					t.Fatal(err)
				}
				checkLabels(t, in, b)
			}
			if got := s.format.current(); got != tt.wantMode {
				t.Errorf("mode = %s, want %s", got, tt.wantMode)
			}
			if g := testutil.ToFloat64(s.c.m.format.WithLabelValues(tt.wantMode)); g != 1 {
				t.Errorf("response_format gauge of %s = %v, want 1", tt.wantMode, g)
			}
			want := tt.wantFirst + 1 + 2*2
			if n := sim.Stats().Chat.Requests; n != want {
				t.Errorf("requests = %d, want %d", n, want)
			}
		})
	}
}

// checkLabels checks that every record holds the simulator's sentiment.
func checkLabels(t *testing.T, in []string, b *processor.Batch) {
	t.Helper()
	for i, text := range in {
		label, score := openaisim.Sentiment(text)
		r := b.Records[i]
		if r.SentimentLabel != label || math.Abs(float64(r.SentimentScore)-score) > 1e-6 {
			t.Errorf("record %d: %s %v, want %s %v (failed %v)", i, r.SentimentLabel, r.SentimentScore, label, score, r.FailedStages)
		}
	}
}

// TestCompatUnusableAnswers covers answers that will never become valid,
// answers to clean and answers declined by the model.
func TestCompatUnusableAnswers(t *testing.T) {
	tests := []struct {
		name        string
		items       int
		bad         []int  // indexes of the texts with the marker
		mark        string // marker of the bad texts
		maxRequests int64
		reason      string // unusable_answers_total reason counted, if any
	}{
		{"all invalid, 8 texts", 8, seq(8), openaisim.MarkGarbage, 3 + 2, "invalid"},
		{"all invalid, 24 texts", 24, seq(24), openaisim.MarkGarbage, 5 + 2, "invalid"},
		{"all invalid, 1 text", 1, seq(1), openaisim.MarkGarbage, 0 + 2, "invalid"},
		{"one invalid of 8", 8, []int{0}, openaisim.MarkGarbage, 8, "invalid"},
		{"one invalid of 8 at the end", 8, []int{7}, openaisim.MarkGarbage, 12, "invalid"},
		{"one refusal of 8", 8, []int{3}, openaisim.MarkRefusal, 8, "refusal"},
		{"one content_filter of 8", 8, []int{5}, openaisim.MarkContentFilter, 8, "content_filter"},
		{"one length of 8", 8, []int{2}, openaisim.MarkLength, 8, "length"},
		{"all refused, 8 texts", 8, seq(8), openaisim.MarkRefusal, 3 + 2, "refusal"},
		{"code fences", 8, seq(8), openaisim.MarkFence, 1, ""},
		{"reasoning block", 8, seq(8), openaisim.MarkThink, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := newSim(t, openaisim.ProfileOpenAI, nil)
			s := newSimSentiment(t, sim, func(c *SentimentConfig) { c.ItemsPerRequest = tt.items })
			in := texts(tt.items, "")
			for _, i := range tt.bad {
				in[i] += " " + tt.mark
			}
			b := newTestBatch(in...)
			if err := s.Enrich(t.Context(), b); err != nil {
				t.Fatal(err)
			}
			n := sim.Stats().Chat.Requests
			if n > tt.maxRequests {
				t.Errorf("requests = %d, want at most %d", n, tt.maxRequests)
			}
			failed := failedStages(b, "sentiment")
			cleaned := tt.mark == openaisim.MarkFence || tt.mark == openaisim.MarkThink
			switch {
			case cleaned && len(failed) > 0:
				t.Errorf("failed records %v, want none", failed)
			case !cleaned && !slices.Equal(failed, tt.bad):
				t.Errorf("failed records %v, want %v", failed, tt.bad)
			}
			for i, r := range b.Records {
				if !slices.Contains(failed, i) {
					if label, _ := openaisim.Sentiment(in[i]); r.SentimentLabel != label {
						t.Errorf("record %d: label %q, want %q", i, r.SentimentLabel, label)
					}
				}
			}
			if tt.reason != "" && testutil.ToFloat64(s.c.m.unusable.WithLabelValues(tt.reason)) == 0 {
				t.Errorf("no %s answers counted", tt.reason)
			}
			t.Logf("%d texts, %d marked %s: %d requests, %d failed", tt.items, len(tt.bad), tt.mark, n, len(failed))
		})
	}
}

// seq returns 0..n-1.
func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// TestCompatEndpointWide covers failures that hold for every request: each
// batch costs one request, the stage is marked down, and with the retry
// policy the batch waits without looping fast.
func TestCompatEndpointWide(t *testing.T) {
	tests := []struct {
		name    string
		profile string
		quota   bool
		dims    int
		inputs  int
		cause   string
	}{
		{"dimensions refused, 8 texts 2 a request", openaisim.ProfileVLLM, false, 256, 2, "unsupported_dimensions"},
		{"dimensions refused, 2048 texts in one request", openaisim.ProfileVLLM, false, 256, 2048, "unsupported_dimensions"},
		{"insufficient quota", openaisim.ProfileOpenAI, true, 0, 2, causeQuota},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := newSim(t, tt.profile, func(c *openaisim.Config) { c.QuotaExhausted = tt.quota })
			s, _ := newSimEmbedding(t, sim, func(c *EmbeddingConfig) {
				c.Dimensions, c.MaxInputs = tt.dims, tt.inputs
			})
			n := 8
			if tt.inputs > 8 {
				n = tt.inputs
			}
			for batch := range 2 {
				b := newTestBatch(texts(n, fmt.Sprint(batch))...)
				if err := s.Enrich(t.Context(), b); err != nil {
					t.Fatal(err)
				}
				if f := failedStages(b, "embedding"); len(f) != n {
					t.Errorf("batch %d: %d failed records, want %d", batch, len(f), n)
				}
				if got := sim.Stats().Embeddings.Requests; got != int64(batch+1) {
					t.Errorf("after batch %d: requests = %d, want %d", batch, got, batch+1)
				}
			}
			if up := testutil.ToFloat64(s.c.m.up); up != 0 {
				t.Errorf("endpoint_up = %v, want 0", up)
			}
			if c := testutil.ToFloat64(s.c.m.wide.WithLabelValues(tt.cause)); c != 2 {
				t.Errorf("endpoint_failures_total{cause=%s} = %v, want 2", tt.cause, c)
			}
		})
	}
	t.Run("insufficient quota with retry policy", func(t *testing.T) {
		sim := newSim(t, openaisim.ProfileOpenAI, func(c *openaisim.Config) { c.QuotaExhausted = true })
		s, _ := newSimEmbedding(t, sim, func(c *EmbeddingConfig) {
			c.OnFailure = PolicyRetry
			c.MaxInputs = 2
			c.RetryInitialInterval, c.RetryMaxInterval = 10*time.Millisecond, 100*time.Millisecond
		})
		ctx, cancel := context.WithTimeout(t.Context(), 550*time.Millisecond)
		defer cancel()
		err := s.Enrich(ctx, newTestBatch(texts(8, "")...))
		if err == nil {
			t.Fatal("Enrich returned nil while the quota is exhausted")
		}
		// One request, then one per retry_max_interval (100 ms) until
		// the batch is abandoned: not 4 per round nor a tight loop.
		if got := sim.Stats().Embeddings.Requests; got < 2 || got > 7 {
			t.Errorf("requests in 550 ms = %d, want 2 to 7", got)
		}
	})
	t.Run("unauthorized", func(t *testing.T) {
		srv := newEmbeddingServer(t, func(w http.ResponseWriter, _ int, _ embeddingRequest) bool {
			apiError(w, http.StatusUnauthorized)
			return true
		})
		cfg := DefaultEmbeddingConfig()
		cfg.EndpointConfig = testEndpoint(srv.URL)
		cfg.MaxInputs = 1
		s, err := NewEmbeddingStage(cfg, quietLog(), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Enrich(t.Context(), newTestBatch(texts(8, "")...)); err != nil {
			t.Fatal(err)
		}
		if got := srv.count(); got != 1 {
			t.Errorf("requests = %d, want 1", got)
		}
	})
}

func TestCompatRetryHeaders(t *testing.T) {
	tests := []struct {
		name    string
		profile string
	}{
		{"openai", openaisim.ProfileOpenAI},
		{"litellm prefixed", openaisim.ProfileLiteLLM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := newSim(t, tt.profile, func(c *openaisim.Config) {
				c.Embeddings.RPM = 40 // one request every 1.5 s
				c.Embeddings.Burst = time.Nanosecond
			})
			body := `{"model":"text-embedding-3-small","input":["a"]}`
			var resp *http.Response
			for range 2 {
				req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, sim.url+"/embeddings", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				if resp, err = http.DefaultClient.Do(req); err != nil {
					t.Fatal(err)
				}
				_ = resp.Body.Close()
			}
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("status %d, want 429", resp.StatusCode)
			}
			rec := &responseRecord{header: resp.Header}
			if h := rec.hint(); h < time.Second || h > 2*time.Second {
				t.Errorf("hint = %v, want about 1.5 s (headers %v)", h, resp.Header)
			}
		})
	}
}

func TestCompatTruncationJapanese(t *testing.T) {
	sim := newSim(t, openaisim.ProfileOpenAI, nil)
	s, _ := newSimEmbedding(t, sim, nil)
	long := string([]rune(strings.Repeat(scriptSamples["japanese"], 200))[:12800])
	b := newTestBatch(long)
	if err := s.Enrich(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if len(b.Records[0].Embedding) != 1536 {
		t.Errorf("no vector for a long Japanese text (failed %v)", b.Records[0].FailedStages)
	}
	if got := sim.Stats().Embeddings.Requests; got != 1 {
		t.Errorf("requests = %d, want 1", got)
	}
}

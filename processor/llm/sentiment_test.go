package llm

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// chatServer is a test chat completions endpoint implementing the sentiment
// protocol. bad, when set, returns the content to answer instead of the
// correct one, or "" to answer correctly.
type chatServer struct {
	*httptest.Server
	mu    sync.Mutex
	sizes []int
}

// answerFor returns the correct result of a text: "pos..." is positive,
// "neg..." negative, anything else neutral.
func answerFor(id int, text string) map[string]any {
	switch {
	case strings.HasPrefix(text, "pos"):
		return map[string]any{"id": id, "label": "positive", "score": 0.75}
	case strings.HasPrefix(text, "neg"):
		return map[string]any{"id": id, "label": "negative", "score": -0.5}
	}
	return map[string]any{"id": id, "label": "neutral", "score": 0}
}

func newChatServer(t *testing.T, bad func(items []sentimentItem, results []map[string]any) string) *chatServer {
	t.Helper()
	s := &chatServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model          string `json:"model"`
			ResponseFormat struct {
				Type       string `json:"type"`
				JSONSchema struct {
					Strict bool `json:"strict"`
				} `json:"json_schema"`
			} `json:"response_format"`
			Messages []struct {
				Role    string `json:"role"`
				Content string `json:"content"`
			} `json:"messages"`
		}
		body, _ := io.ReadAll(r.Body)
		var in struct {
			Items []sentimentItem `json:"items"`
		}
		if json.Unmarshal(body, &req) != nil || r.URL.Path != "/chat/completions" ||
			req.ResponseFormat.Type != "json_schema" || !req.ResponseFormat.JSONSchema.Strict ||
			len(req.Messages) != 2 || req.Messages[0].Role != "system" ||
			json.Unmarshal([]byte(req.Messages[1].Content), &in) != nil {
			apiError(w, http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.sizes = append(s.sizes, len(in.Items))
		s.mu.Unlock()
		results := make([]map[string]any, len(in.Items))
		for i, it := range in.Items {
			results[len(in.Items)-1-i] = answerFor(it.ID, it.Text)
		}
		content := ""
		if bad != nil {
			content = bad(in.Items, results)
		}
		if content == "" {
			b, _ := json.Marshal(map[string]any{"results": results})
			content = string(b)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": "x", "object": "chat.completion", "model": req.Model,
			"choices": []map[string]any{{"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": content}}},
			"usage": map[string]int{"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
		})
	}))
	t.Cleanup(s.Close)
	return s
}

// requestSizes returns the item counts of the requests received, sorted.
func (s *chatServer) requestSizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.sizes)
	slices.Sort(out)
	return out
}

// poisoned reports whether a request holds the text "bad".
func poisoned(items []sentimentItem) bool {
	return slices.ContainsFunc(items, func(it sentimentItem) bool { return it.Text == "bad" })
}

func TestSentimentStage(t *testing.T) {
	texts := []string{"pos a", "neg b", "c", "bad"}
	tests := []struct {
		name string
		// bad misbehaves on requests of several items holding "bad",
		// unless always is set.
		bad        func(results []map[string]any) string
		always     bool
		wantSizes  []int
		wantFailed []int
	}{
		{name: "valid", wantSizes: []int{4}},
		{
			name: "missing item",
			bad: func(r []map[string]any) string {
				b, _ := json.Marshal(map[string]any{"results": r[1:]})
				return string(b)
			},
			// [4] -> [2] ok + [2] bad -> [1] [1].
			wantSizes: []int{1, 1, 2, 2, 4},
		},
		{
			name: "bad label",
			bad: func(r []map[string]any) string {
				r[0]["label"] = "mixed"
				b, _ := json.Marshal(map[string]any{"results": r})
				return string(b)
			},
			wantSizes: []int{1, 1, 2, 2, 4},
		},
		{
			name: "score out of range",
			bad: func(r []map[string]any) string {
				r[0]["score"] = 1.5
				b, _ := json.Marshal(map[string]any{"results": r})
				return string(b)
			},
			wantSizes: []int{1, 1, 2, 2, 4},
		},
		{
			name: "duplicate id",
			bad: func(r []map[string]any) string {
				r[1]["id"] = r[0]["id"]
				b, _ := json.Marshal(map[string]any{"results": r})
				return string(b)
			},
			wantSizes: []int{1, 1, 2, 2, 4},
		},
		{
			name: "unknown id",
			bad: func(r []map[string]any) string {
				r[0]["id"] = 99
				b, _ := json.Marshal(map[string]any{"results": r})
				return string(b)
			},
			wantSizes: []int{1, 1, 2, 2, 4},
		},
		{
			name:      "invalid json",
			bad:       func([]map[string]any) string { return `{"results":[{"id":0,` },
			wantSizes: []int{1, 1, 2, 2, 4},
		},
		{
			name:   "single still invalid after max attempts",
			bad:    func([]map[string]any) string { return "not json" },
			always: true,
			// The single "bad" is sent max_attempts (3) times.
			wantSizes:  []int{1, 1, 1, 1, 2, 2, 4},
			wantFailed: []int{3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newChatServer(t, func(items []sentimentItem, r []map[string]any) string {
				if tt.bad == nil || !poisoned(items) || (len(items) == 1 && !tt.always) {
					return ""
				}
				return tt.bad(r)
			})
			cfg := DefaultSentimentConfig()
			cfg.EndpointConfig = testEndpoint(srv.URL)
			s, err := NewSentimentStage(cfg, quietLog(), prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			b := newTestBatch(texts...)
			if err := s.Enrich(t.Context(), b); err != nil {
				t.Fatal(err)
			}
			if got := srv.requestSizes(); !slices.Equal(got, tt.wantSizes) {
				t.Errorf("request sizes = %v, want %v", got, tt.wantSizes)
			}
			if got := failedStages(b, "sentiment"); !slices.Equal(got, tt.wantFailed) {
				t.Errorf("failed records = %v, want %v", got, tt.wantFailed)
			}
			for i, r := range b.Records {
				if slices.Contains(tt.wantFailed, i) {
					if r.SentimentLabel != "" || r.SentimentModel != "" {
						t.Errorf("record %d: failed but has %q", i, r.SentimentLabel)
					}
					continue
				}
				want := answerFor(0, r.Text)
				if r.SentimentLabel != want["label"] || float64(r.SentimentScore) != toFloat(want["score"]) || r.SentimentModel != "test-model" {
					t.Errorf("record %d (%q): %q %v %q, want %v", i, r.Text, r.SentimentLabel, r.SentimentScore, r.SentimentModel, want)
				}
			}
			if tt.bad != nil {
				if got := testutil.ToFloat64(s.c.m.retries.WithLabelValues(causeInvalidAnswer)); got == 0 {
					t.Error("no invalid_answer retries counted")
				}
			}
		})
	}
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int:
		return float64(x)
	}
	panic(fmt.Sprintf("unexpected %T", v))
}

func TestSentimentPacking(t *testing.T) {
	srv := newChatServer(t, nil)
	cfg := DefaultSentimentConfig()
	cfg.EndpointConfig = testEndpoint(srv.URL)
	cfg.ItemsPerRequest = 3
	s, err := NewSentimentStage(cfg, quietLog(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"a", "b", "c", "d", "e", "f", "g", "a"}
	if err := s.Enrich(t.Context(), newTestBatch(texts...)); err != nil {
		t.Fatal(err)
	}
	// 7 distinct texts in requests of 3.
	if got := srv.requestSizes(); !slices.Equal(got, []int{1, 3, 3}) {
		t.Errorf("request sizes = %v, want [1 3 3]", got)
	}
	b := newTestBatch("pos x", "a", "g")
	if err := s.Enrich(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if got := srv.requestSizes(); !slices.Equal(got, []int{1, 1, 3, 3}) {
		t.Errorf("request sizes = %v, want one more request of the one new text", got)
	}
	if b.Records[0].SentimentLabel != LabelPositive || b.Records[1].SentimentLabel != LabelNeutral {
		t.Errorf("labels %q %q", b.Records[0].SentimentLabel, b.Records[1].SentimentLabel)
	}
}

func TestHint(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		want    time.Duration
	}{
		{"none", nil, 0},
		{"retry-after-ms", map[string]string{"retry-after-ms": "50", "Retry-After": "3"}, 50 * time.Millisecond},
		{"retry-after seconds", map[string]string{"Retry-After": "2"}, 2 * time.Second},
		{"reset requests", map[string]string{"x-ratelimit-reset-requests": "1.5s"}, 1500 * time.Millisecond},
		{"reset exhausted tokens", map[string]string{
			"x-ratelimit-reset-requests": "6s", "x-ratelimit-remaining-requests": "10",
			"x-ratelimit-reset-tokens": "20ms", "x-ratelimit-remaining-tokens": "0",
		}, 20 * time.Millisecond},
		{"reset longest", map[string]string{"x-ratelimit-reset-requests": "20ms", "x-ratelimit-reset-tokens": "1s"}, time.Second},
		{"capped", map[string]string{"x-ratelimit-reset-tokens": "6m0s"}, maxHintWait},
		{"garbage", map[string]string{"retry-after-ms": "soon", "x-ratelimit-reset-tokens": "later"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			if got := (&responseRecord{header: h}).hint(); got != tt.want {
				t.Errorf("hint = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(e *EmbeddingConfig, s *SentimentConfig)
		wantErr string
	}{
		{"defaults", func(*EmbeddingConfig, *SentimentConfig) {}, ""},
		{"policy", func(e *EmbeddingConfig, s *SentimentConfig) { e.OnFailure, s.OnFailure = "drop", "drop" }, "on_failure"},
		{"azure without version", func(e *EmbeddingConfig, s *SentimentConfig) { e.APIType, s.APIType = APITypeAzure, APITypeAzure }, "api_version"},
		{"api type", func(e *EmbeddingConfig, s *SentimentConfig) { e.APIType, s.APIType = "other", "other" }, "api_type"},
		{"attempts", func(e *EmbeddingConfig, s *SentimentConfig) { e.MaxAttempts, s.MaxAttempts = 0, 0 }, "max_attempts"},
		{"key twice", func(e *EmbeddingConfig, s *SentimentConfig) { e.APIKeyFile, s.APIKeyFile = "f", "f" }, "api_key_file"},
		{"encoding and items", func(e *EmbeddingConfig, s *SentimentConfig) { e.EncodingFormat, s.ItemsPerRequest = "hex", 0 }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, s := DefaultEmbeddingConfig(), DefaultSentimentConfig()
			e.APIKey, s.APIKey = "k", "k"
			tt.mutate(&e, &s)
			ee, se := e.Validate(), s.Validate()
			switch {
			case tt.name == "encoding and items":
				if ee == nil || !strings.Contains(ee.Error(), "encoding_format") || se == nil || !strings.Contains(se.Error(), "items_per_request") {
					t.Errorf("errors = %v / %v", ee, se)
				}
			case tt.wantErr == "":
				if ee != nil || se != nil {
					t.Errorf("errors = %v / %v", ee, se)
				}
			default:
				if ee == nil || !strings.Contains(ee.Error(), tt.wantErr) || se == nil || !strings.Contains(se.Error(), tt.wantErr) {
					t.Errorf("errors = %v / %v, want %q", ee, se, tt.wantErr)
				}
			}
		})
	}
}

func TestStagesShareRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	e, s := DefaultEmbeddingConfig(), DefaultSentimentConfig()
	if _, err := NewEmbeddingStage(e, quietLog(), reg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewSentimentStage(s, quietLog(), reg); err != nil {
		t.Fatal(err)
	}
}

// TestSentimentSchemaStructuredOutputs checks the rules of OpenAI's
// Structured Outputs on the schema: every object closes its properties and
// requires all of them, and only supported keywords are used.
func TestSentimentSchemaStructuredOutputs(t *testing.T) {
	supported := map[string]bool{"type": true, "properties": true, "required": true, "additionalProperties": true,
		"items": true, "enum": true, "minItems": true, "maxItems": true, "minimum": true, "maximum": true}
	var walk func(path string, v map[string]any)
	walk = func(path string, v map[string]any) {
		for k := range v {
			if !supported[k] {
				t.Errorf("%s: keyword %q not supported by Structured Outputs", path, k)
			}
		}
		if v["type"] == "object" {
			props, _ := v["properties"].(map[string]any)
			req, _ := v["required"].([]any)
			if v["additionalProperties"] != false || len(req) != len(props) {
				t.Errorf("%s: object must set additionalProperties false and require all %d properties", path, len(props))
			}
			for name, p := range props {
				walk(path+"."+name, p.(map[string]any))
			}
		}
		if items, ok := v["items"].(map[string]any); ok {
			walk(path+"[]", items)
		}
	}
	for _, n := range []int{1, 24} {
		var schema map[string]any
		if err := json.Unmarshal(sentimentSchema(n), &schema); err != nil {
			t.Fatal(err)
		}
		walk("$", schema)
		results := schema["properties"].(map[string]any)["results"].(map[string]any)
		if results["minItems"] != float64(n) || results["maxItems"] != float64(n) {
			t.Errorf("n=%d: results must hold exactly n items: %v", n, results)
		}
	}
}

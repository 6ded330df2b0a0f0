package openaisim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

func sentimentBody(n int) map[string]any {
	items := SentimentRequest{}
	for i := range n {
		items.Items = append(items.Items, SentimentItem{ID: int64(i * 3), Text: "good day"})
	}
	b, _ := json.Marshal(items)
	return map[string]any{"model": "gpt-4o-mini", "messages": []map[string]string{{"role": "user", "content": string(b)}}}
}

func TestFaults(t *testing.T) {
	embBody := map[string]any{"model": "text-embedding-3-small", "input": []string{"a", "b", "c"}, "dimensions": 8}
	type check func(t *testing.T, status int, h http.Header, body []byte)
	validJSON200 := func(bad bool) check {
		return func(t *testing.T, status int, _ http.Header, body []byte) {
			if status != 200 || json.Valid(body) == bad {
				t.Errorf("status %d valid %v, want 200 and valid %v: %.80s", status, json.Valid(body), !bad, body)
			}
		}
	}
	embCount := func(want, dims int) check {
		return func(t *testing.T, status int, _ http.Header, body []byte) {
			var r embResp
			if status != 200 || json.Unmarshal(body, &r) != nil {
				t.Fatalf("status %d %s", status, body)
			}
			if len(r.Data) != want {
				t.Errorf("items %d, want %d", len(r.Data), want)
			}
			var v []float32
			if err := json.Unmarshal(r.Data[0].Embedding, &v); err != nil || len(v) != dims {
				t.Errorf("dims %d, want %d (%v)", len(v), dims, err)
			}
		}
	}
	chatResults := func(valid func(SentimentResponse) bool) check {
		return func(t *testing.T, status int, _ http.Header, body []byte) {
			var cr openai.ChatCompletionResponse
			if status != 200 || json.Unmarshal(body, &cr) != nil {
				t.Fatalf("status %d %s", status, body)
			}
			var sr SentimentResponse
			if err := json.Unmarshal([]byte(cr.Choices[0].Message.Content), &sr); err != nil {
				t.Fatal(err)
			}
			if !valid(sr) {
				t.Errorf("results %+v", sr.Results)
			}
		}
	}
	tests := []struct {
		name   string
		chat   bool
		faults Faults
		kind   string
		check  check
	}{
		{"5xx embeddings", false, Faults{ServerError: 1}, FaultServerError, func(t *testing.T, status int, _ http.Header, body []byte) {
			var eb errorBody
			if status < 500 || json.Unmarshal(body, &eb) != nil || eb.Error.Type != "server_error" {
				t.Errorf("status %d body %s", status, body)
			}
		}},
		{"truncated embeddings", false, Faults{Truncated: 1}, FaultTruncated, validJSON200(true)},
		{"truncated chat", true, Faults{Truncated: 1}, FaultTruncated, validJSON200(true)},
		{"invalid json chat", true, Faults{InvalidJSON: 1}, FaultInvalidJSON, validJSON200(true)},
		{"wrong count embeddings", false, Faults{WrongCount: 1}, FaultWrongCount, embCount(2, 8)},
		{"bad values embeddings", false, Faults{BadValues: 1}, FaultBadValues, embCount(3, 7)},
		{"wrong count chat", true, Faults{WrongCount: 1}, FaultWrongCount, chatResults(func(r SentimentResponse) bool { return len(r.Results) != 3 })},
		{"bad values chat", true, Faults{BadValues: 1}, FaultBadValues, chatResults(func(r SentimentResponse) bool {
			for _, x := range r.Results {
				if x.Score < -1 || x.Score > 1 || (x.Label != "positive" && x.Label != "neutral" && x.Label != "negative") {
					return true
				}
			}
			return false
		})},
		{"storm chat", true, Faults{Storm: 1}, FaultStorm, func(t *testing.T, status int, h http.Header, _ []byte) {
			if status != http.StatusTooManyRequests || h.Get("Retry-After") != "10" {
				t.Errorf("status %d Retry-After %q", status, h.Get("Retry-After"))
			}
		}},
		{"none", false, Faults{}, "", validJSON200(false)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			path, body := "/v1/embeddings", embBody
			ep := &cfg.Embeddings
			if tc.chat {
				path, body, ep = "/v1/chat/completions", sentimentBody(3), &cfg.Chat
			}
			ep.Faults = tc.faults
			s, ts := newTestServer(t, cfg)
			resp, b := post(t, ts.URL+path, body)
			tc.check(t, resp.StatusCode, resp.Header, b)
			st := s.Stats().Embeddings
			if tc.chat {
				st = s.Stats().Chat
			}
			for kind, n := range st.Faults {
				want := int64(0)
				if kind == tc.kind {
					want = 1
				}
				if n != want {
					t.Errorf("faults[%s] = %d, want %d", kind, n, want)
				}
			}
		})
	}
}

func TestFaultsWithGoOpenAI(t *testing.T) {
	tests := []struct {
		name   string
		faults Faults
		check  func(t *testing.T, err error)
	}{
		{"5xx", Faults{ServerError: 1}, func(t *testing.T, err error) {
			var apiErr *openai.APIError
			if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode < 500 {
				t.Errorf("err %v", err)
			}
		}},
		{"storm", Faults{Storm: 1}, func(t *testing.T, err error) {
			var apiErr *openai.APIError
			if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != http.StatusTooManyRequests {
				t.Errorf("err %v", err)
			}
		}},
		{"timeout", Faults{Timeout: 1}, func(t *testing.T, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err %v", err)
			}
		}},
		{"truncated", Faults{Truncated: 1}, func(t *testing.T, err error) {
			if err == nil {
				t.Error("no error")
			}
		}},
		{"invalid json", Faults{InvalidJSON: 1}, func(t *testing.T, err error) {
			if err == nil {
				t.Error("no error")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Embeddings.Faults = tc.faults
			s, ts := newTestServer(t, cfg)
			ocfg := openai.DefaultConfig("key")
			ocfg.BaseURL = ts.URL + "/v1"
			client := openai.NewClientWithConfig(ocfg)
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			_, err := client.CreateEmbeddings(ctx, openai.EmbeddingRequestStrings{Input: []string{"x"}, Model: openai.SmallEmbedding3})
			tc.check(t, err)
			if tc.name == "timeout" {
				eventually(t, func() bool { return s.Stats().InFlight == 0 })
			}
		})
	}
}

// eventually polls cond for up to two seconds.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	for range 200 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met")
}

func TestTimeoutMaxHang(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Chat.Faults.Timeout = 1
	cfg.MaxHang = 20 * time.Millisecond
	_, ts := newTestServer(t, cfg)
	resp, b := post(t, ts.URL+"/v1/chat/completions", sentimentBody(1))
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d %s", resp.StatusCode, b)
	}
}

func TestFaultsDeterministicBySeed(t *testing.T) {
	run := func(seed uint64) string {
		cfg := DefaultConfig()
		cfg.Seed = seed
		cfg.Embeddings.Faults = Faults{ServerError: 0.3, WrongCount: 0.3}
		_, ts := newTestServer(t, cfg)
		var b strings.Builder
		for range 20 {
			resp, body := post(t, ts.URL+"/v1/embeddings", map[string]any{"model": "m", "input": "x", "dimensions": 4})
			var r embResp
			_ = json.Unmarshal(body, &r)
			b.WriteString(http.StatusText(resp.StatusCode)[:1])
			b.WriteByte(byte('0' + len(r.Data)))
		}
		return b.String()
	}
	a, b, c := run(1), run(1), run(2)
	if a != b {
		t.Errorf("seed 1 gave %s then %s", a, b)
	}
	if a == c {
		t.Errorf("seeds 1 and 2 both gave %s", a)
	}
}

func TestLatency(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Embeddings.Latency = Latency{Median: 30 * time.Millisecond, P99: 60 * time.Millisecond}
	cfg.Chat.Latency = Latency{Median: 10 * time.Second}
	s, ts := newTestServer(t, cfg)
	start := time.Now()
	if resp, b := post(t, ts.URL+"/v1/embeddings", map[string]any{"model": "m", "input": "x"}); resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, b)
	}
	if el := time.Since(start); el < 5*time.Millisecond {
		t.Errorf("took %v", el)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	b, _ := json.Marshal(sentimentBody(1))
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/v1/chat/completions", strings.NewReader(string(b)))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		_ = resp.Body.Close()
		t.Fatal("no error")
	}
	eventually(t, func() bool { return s.Stats().Chat.Canceled == 1 })
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"default", func(*Config) {}, true},
		{"fault above 1", func(c *Config) { c.Chat.Faults.ServerError = 1.5 }, false},
		{"faults sum above 1", func(c *Config) { c.Chat.Faults.ServerError, c.Chat.Faults.Timeout = 0.6, 0.6 }, false},
		{"negative rpm", func(c *Config) { c.Embeddings.RPM = -1 }, false},
		{"negative latency", func(c *Config) { c.Embeddings.Latency.Median = -1 }, false},
		{"zero dims", func(c *Config) { c.EmbeddingModels["x"] = 0 }, false},
		{"storm without duration", func(c *Config) { c.Chat.Faults.Storm = 0.1; c.StormDuration = 0 }, false},
		{"no body", func(c *Config) { c.MaxBodyBytes = 0 }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			if err := c.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v", err)
			}
		})
	}
}

func TestStatsEndpointAndDistinct(t *testing.T) {
	cfg := DefaultConfig()
	cfg.TrackDistinct = true
	_, ts := newTestServer(t, cfg)
	post(t, ts.URL+"/v1/embeddings", map[string]any{"model": "m", "input": []string{"a", "b", "a"}})
	for _, p := range []string{"/healthz", "/v1/models"} {
		resp, err := http.Get(ts.URL + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v", p, err)
		}
		_ = resp.Body.Close()
	}
	resp, err := http.Get(ts.URL + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var st Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Embeddings.Inputs != 3 || st.Embeddings.DistinctInputs != 2 || st.Health != 1 || st.Models != 1 || st.StatsRequests != 1 || st.MaxConcurrent != 1 {
		t.Errorf("stats %+v", st)
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`{"model":"text-embedding-3-small","input":"hello"}`))
	f.Add([]byte(`{"model":"m","input":["a","b"],"dimensions":3,"encoding_format":"base64"}`))
	f.Add([]byte(`{"model":"m","input":[[1,2],[3]]}`))
	f.Add([]byte(`{"model":"m","input":[1,2,3]}`))
	f.Add([]byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"{\"items\":[{\"id\":1,\"text\":\"good\"}]}"}]}`))
	f.Add([]byte(`{"model":"m","input":[[]]}`))
	s, err := New(DefaultConfig(), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		job, rerr := s.parseEmbeddingRequest(data)
		if rerr == nil {
			if len(job.texts) == 0 || len(job.texts) > MaxEmbeddingInputs || job.tokens > MaxTokensPerRequest || job.dims < 1 || job.dims > job.native {
				t.Fatalf("accepted invalid request %q: %+v", data, job)
			}
		} else if rerr.status != 400 && rerr.status != 404 {
			t.Fatalf("status %d", rerr.status)
		}
		cj, cerr := s.parseChatRequest(data)
		if cerr == nil && (cj.model == "" || cj.promptTokens < 7) {
			t.Fatalf("accepted invalid chat request %q: %+v", data, cj)
		}
	})
}

package openaisim

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestServer(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts
}

// reply is the status and headers of an answer whose body was read.
type reply struct {
	StatusCode int
	Header     http.Header
}

func post(t *testing.T, url string, body any) (reply, []byte) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("post %s: %v", url, err)
	}
	out, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return reply{StatusCode: resp.StatusCode, Header: resp.Header}, out
}

type errorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func TestEmbeddingsValidation(t *testing.T) {
	_, ts := newTestServer(t, DefaultConfig())
	long := strings.Repeat("word ", MaxTokensPerInput+10)
	many := make([]string, MaxEmbeddingInputs+1)
	for i := range many {
		many[i] = "x"
	}
	// 40 inputs of ~8000 tokens exceed the per-request total.
	big := make([]string, 40)
	for i := range big {
		big[i] = strings.Repeat("word ", 8000)
	}
	tests := []struct {
		name   string
		body   map[string]any
		status int
		param  string
	}{
		{"missing model", map[string]any{"input": "hi"}, 400, "model"},
		{"missing input", map[string]any{"model": "text-embedding-3-small"}, 400, "input"},
		{"empty string", map[string]any{"model": "text-embedding-3-small", "input": ""}, 400, "input"},
		{"empty array", map[string]any{"model": "text-embedding-3-small", "input": []string{}}, 400, "input"},
		{"empty item", map[string]any{"model": "text-embedding-3-small", "input": []string{"a", ""}}, 400, "input"},
		{"number input", map[string]any{"model": "text-embedding-3-small", "input": 5}, 400, "input"},
		{"too many inputs", map[string]any{"model": "text-embedding-3-small", "input": many}, 400, "input"},
		{"input too long", map[string]any{"model": "text-embedding-3-small", "input": long}, 400, "input"},
		{"token array too long", map[string]any{"model": "text-embedding-3-small", "input": make([]int, MaxTokensPerInput+1)}, 400, "input"},
		{"too many tokens", map[string]any{"model": "text-embedding-3-small", "input": big}, 400, "input"},
		{"negative token", map[string]any{"model": "text-embedding-3-small", "input": [][]int{{1, -2}}}, 400, "input"},
		{"dimensions zero", map[string]any{"model": "text-embedding-3-small", "input": "a", "dimensions": 0}, 400, "dimensions"},
		{"dimensions above native", map[string]any{"model": "text-embedding-3-small", "input": "a", "dimensions": 1537}, 400, "dimensions"},
		{"dimensions on ada", map[string]any{"model": "text-embedding-ada-002", "input": "a", "dimensions": 8}, 400, "dimensions"},
		{"bad encoding", map[string]any{"model": "text-embedding-3-small", "input": "a", "encoding_format": "hex"}, 400, "encoding_format"},
		{"large model dimensions", map[string]any{"model": "text-embedding-3-large", "input": "a", "dimensions": 3072}, 200, ""},
		{"token arrays", map[string]any{"model": "text-embedding-3-small", "input": [][]int{{9906, 1917}, {15339}}}, 200, ""},
		{"single token array", map[string]any{"model": "text-embedding-3-small", "input": []int{9906, 1917}}, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, ts.URL+"/v1/embeddings", tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.status == 200 {
				return
			}
			var eb errorBody
			if err := json.Unmarshal(body, &eb); err != nil {
				t.Fatalf("decode error body %s: %v", body, err)
			}
			if eb.Error.Type != "invalid_request_error" || eb.Error.Message == "" {
				t.Errorf("error body %s", body)
			}
			if eb.Error.Param == nil || *eb.Error.Param != tc.param {
				t.Errorf("param %v, want %q", eb.Error.Param, tc.param)
			}
		})
	}
}

func TestEmbeddingsStrictModels(t *testing.T) {
	cfg := DefaultConfig()
	cfg.StrictModels = true
	_, ts := newTestServer(t, cfg)
	resp, body := post(t, ts.URL+"/v1/embeddings", map[string]any{"model": "nope", "input": "a"})
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "model_not_found") {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
}

type embResp struct {
	Data []struct {
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	} `json:"data"`
	Usage struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

func TestEmbeddingsDeterministicUnitNorm(t *testing.T) {
	_, ts := newTestServer(t, DefaultConfig())
	inputs := []string{"hello world", "I love this product", "hello world"}
	get := func(format string, dims int) embResp {
		body := map[string]any{"model": "text-embedding-3-small", "input": inputs, "encoding_format": format}
		if dims > 0 {
			body["dimensions"] = dims
		}
		resp, b := post(t, ts.URL+"/v1/embeddings", body)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		var er embResp
		if err := json.Unmarshal(b, &er); err != nil {
			t.Fatal(err)
		}
		return er
	}
	for _, dims := range []int{0, 256} {
		floats := get("float", dims)
		b64 := get("base64", dims)
		want := 1536
		if dims > 0 {
			want = dims
		}
		if len(floats.Data) != len(inputs) || floats.Usage.PromptTokens != 8 || floats.Usage.TotalTokens != 8 {
			t.Fatalf("dims %d: %d items, usage %+v", dims, len(floats.Data), floats.Usage)
		}
		vecs := make([][]float32, len(inputs))
		for i, d := range floats.Data {
			if d.Index != i {
				t.Errorf("index %d at %d", d.Index, i)
			}
			if err := json.Unmarshal(d.Embedding, &vecs[i]); err != nil {
				t.Fatal(err)
			}
			if len(vecs[i]) != want {
				t.Fatalf("len %d, want %d", len(vecs[i]), want)
			}
			var sum float64
			for _, x := range vecs[i] {
				sum += float64(x) * float64(x)
			}
			if math.Abs(sum-1) > 1e-5 {
				t.Errorf("norm² %v", sum)
			}
			var s string
			if err := json.Unmarshal(b64.Data[i].Embedding, &s); err != nil {
				t.Fatal(err)
			}
			raw, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				t.Fatal(err)
			}
			if len(raw) != 4*want {
				t.Fatalf("base64 bytes %d", len(raw))
			}
			for j := range vecs[i] {
				if got := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:])); got != vecs[i][j] {
					t.Fatalf("base64[%d][%d] = %v, float %v", i, j, got, vecs[i][j])
				}
			}
		}
		if !equal(vecs[0], vecs[2]) || equal(vecs[0], vecs[1]) {
			t.Errorf("dims %d: same text must give the same vector and different texts different ones", dims)
		}
		if !equal(vecs[0], Embedding("hello world", 1536, want)) {
			t.Errorf("dims %d: served vector differs from Embedding", dims)
		}
	}
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestGoOpenAIClient(t *testing.T) {
	s, ts := newTestServer(t, DefaultConfig())
	cfg := openai.DefaultConfig("key")
	cfg.BaseURL = ts.URL + "/v1"
	client := openai.NewClientWithConfig(cfg)
	ctx := context.Background()

	for _, format := range []openai.EmbeddingEncodingFormat{openai.EmbeddingEncodingFormatFloat, openai.EmbeddingEncodingFormatBase64} {
		resp, err := client.CreateEmbeddings(ctx, openai.EmbeddingRequestStrings{
			Input:          []string{"great stuff", "awful stuff"},
			Model:          openai.SmallEmbedding3,
			EncodingFormat: format,
			Dimensions:     64,
		})
		if err != nil {
			t.Fatalf("embeddings %s: %v", format, err)
		}
		if len(resp.Data) != 2 || len(resp.Data[0].Embedding) != 64 {
			t.Fatalf("embeddings %s: %+v", format, resp.Data)
		}
		if !equal(resp.Data[1].Embedding, Embedding("awful stuff", 1536, 64)) {
			t.Errorf("embeddings %s: vector differs", format)
		}
	}

	items := SentimentRequest{Items: []SentimentItem{
		{ID: 7, Text: "I love it, great work"},
		{ID: 2, Text: "This is terrible and broken"},
		{ID: 40, Text: "The meeting is at noon"},
		{ID: 41, Text: "not good at all"},
	}}
	user, _ := json.Marshal(items)
	chat, err := client.CreateChatCompletion(ctx, openai.ChatCompletionRequest{
		Model: openai.GPT4oMini,
		Messages: []openai.ChatCompletionMessage{
			{Role: openai.ChatMessageRoleSystem, Content: "Classify sentiment."},
			{Role: openai.ChatMessageRoleUser, Content: string(user)},
		},
		ResponseFormat: &openai.ChatCompletionResponseFormat{
			Type: openai.ChatCompletionResponseFormatTypeJSONSchema,
			JSONSchema: &openai.ChatCompletionResponseFormatJSONSchema{
				Name:   "sentiment",
				Schema: json.RawMessage(`{"type":"object"}`),
				Strict: true,
			},
		},
	})
	if err != nil {
		t.Fatalf("chat: %v", err)
	}
	if len(chat.Choices) != 1 || chat.Choices[0].FinishReason != openai.FinishReasonStop {
		t.Fatalf("choices %+v", chat.Choices)
	}
	if chat.Usage.PromptTokens == 0 || chat.Usage.CompletionTokens == 0 || chat.Usage.TotalTokens != chat.Usage.PromptTokens+chat.Usage.CompletionTokens {
		t.Errorf("usage %+v", chat.Usage)
	}
	var got SentimentResponse
	if err := json.Unmarshal([]byte(chat.Choices[0].Message.Content), &got); err != nil {
		t.Fatalf("content %q: %v", chat.Choices[0].Message.Content, err)
	}
	want := map[int64]string{7: "positive", 2: "negative", 40: "neutral", 41: "negative"}
	if len(got.Results) != len(want) {
		t.Fatalf("results %+v", got.Results)
	}
	for i, r := range got.Results {
		if r.ID != items.Items[i].ID || r.Label != want[r.ID] || r.Score < -1 || r.Score > 1 {
			t.Errorf("result %d: %+v, want id %d label %s", i, r, items.Items[i].ID, want[items.Items[i].ID])
		}
	}

	models, err := client.ListModels(ctx)
	if err != nil || len(models.Models) == 0 {
		t.Fatalf("models: %v %+v", err, models)
	}
	st := s.Stats()
	if st.Embeddings.Requests != 2 || st.Embeddings.Inputs != 4 || st.Chat.Requests != 1 || st.Chat.Inputs != 4 || st.Models != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestChatProtocol(t *testing.T) {
	_, ts := newTestServer(t, DefaultConfig())
	tests := []struct {
		name    string
		body    map[string]any
		status  int
		results map[int64]string
		plain   bool
	}{
		{"missing model", map[string]any{"messages": []map[string]string{{"role": "user", "content": "hi"}}}, 400, nil, false},
		{"empty messages", map[string]any{"model": "gpt-4o-mini", "messages": []any{}}, 400, nil, false},
		{"bad role", map[string]any{"model": "gpt-4o-mini", "messages": []map[string]string{{"role": "robot", "content": "hi"}}}, 400, nil, false},
		{"bad response format", map[string]any{"model": "gpt-4o-mini", "messages": []map[string]string{{"role": "user", "content": "hi"}}, "response_format": map[string]string{"type": "yaml"}}, 400, nil, false},
		{"schema missing", map[string]any{"model": "gpt-4o-mini", "messages": []map[string]string{{"role": "user", "content": "hi"}}, "response_format": map[string]string{"type": "json_schema"}}, 400, nil, false},
		{"plain text", map[string]any{"model": "gpt-4o-mini", "messages": []map[string]string{{"role": "user", "content": "hello there"}}}, 200, nil, true},
		{"json object", map[string]any{
			"model":           "gpt-4o-mini",
			"response_format": map[string]string{"type": "json_object"},
			"messages": []map[string]string{
				{"role": "user", "content": `{"items":[{"id":1,"text":"old"}]}`},
				{"role": "assistant", "content": "ok"},
				{"role": "user", "content": `{"items":[{"id":3,"text":"best day, so happy"},{"id":-5,"text":"worst service, I hate waiting"},{"id":9,"text":"ok"}]}`},
			},
		}, 200, map[int64]string{3: "positive", -5: "negative", 9: "neutral"}, false},
		{"content parts", map[string]any{
			"model": "gpt-4o-mini",
			"messages": []map[string]any{{"role": "user", "content": []map[string]string{
				{"type": "text", "text": `{"items":[{"id":0,`},
				{"type": "text", "text": `"text":"nice"}]}`},
			}}},
		}, 200, map[int64]string{0: "positive"}, false},
		{"empty items", map[string]any{"model": "gpt-4o-mini", "messages": []map[string]string{{"role": "user", "content": `{"items":[]}`}}}, 200, map[int64]string{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, ts.URL+"/v1/chat/completions", tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.status != 200 {
				var eb errorBody
				if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Type != "invalid_request_error" {
					t.Fatalf("error body %s: %v", body, err)
				}
				return
			}
			var cr openai.ChatCompletionResponse
			if err := json.Unmarshal(body, &cr); err != nil {
				t.Fatal(err)
			}
			content := cr.Choices[0].Message.Content
			if tc.plain {
				if !strings.HasPrefix(content, "This is a simulated answer") {
					t.Errorf("content %q", content)
				}
				return
			}
			var sr SentimentResponse
			if err := json.Unmarshal([]byte(content), &sr); err != nil {
				t.Fatalf("content %q: %v", content, err)
			}
			if len(sr.Results) != len(tc.results) {
				t.Fatalf("results %+v", sr.Results)
			}
			for _, r := range sr.Results {
				if tc.results[r.ID] != r.Label {
					t.Errorf("id %d: label %s, want %s", r.ID, r.Label, tc.results[r.ID])
				}
			}
		})
	}
}

func TestSentiment(t *testing.T) {
	tests := []struct {
		text  string
		label string
		score float64
	}{
		{"I love it", "positive", 1},
		{"I hate it", "negative", -1},
		{"Love the design, hate the price, great battery", "positive", 0.33},
		{"It isn't good", "negative", -1},
		{"Not bad", "positive", 1},
		{"the cat sat on the mat", "neutral", 0},
		{"good bad", "neutral", 0},
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			label, score := Sentiment(tc.text)
			if label != tc.label || score != tc.score {
				t.Errorf("got %s %v, want %s %v", label, score, tc.label, tc.score)
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	tests := []struct {
		name  string
		rpm   int
		tpm   int
		input string
		kind  string
	}{
		{"requests", 2, 0, "hello", "requests"},
		{"tokens", 0, 10, "one two three four five", "tokens"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
			cfg := DefaultConfig()
			cfg.Now = clock.Now
			cfg.Embeddings.RPM = tc.rpm
			cfg.Embeddings.TPM = tc.tpm
			s, ts := newTestServer(t, cfg)
			body := map[string]any{"model": "text-embedding-3-small", "input": tc.input}
			for i := range 2 {
				resp, b := post(t, ts.URL+"/v1/embeddings", body)
				if resp.StatusCode != 200 {
					t.Fatalf("request %d: status %d %s", i, resp.StatusCode, b)
				}
				if tc.rpm > 0 && resp.Header.Get("x-ratelimit-limit-requests") != "2" {
					t.Errorf("headers %v", resp.Header)
				}
				if tc.tpm > 0 && resp.Header.Get("x-ratelimit-limit-tokens") != "10" {
					t.Errorf("headers %v", resp.Header)
				}
			}
			resp, b := post(t, ts.URL+"/v1/embeddings", body)
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("status %d %s", resp.StatusCode, b)
			}
			if resp.Header.Get("Retry-After") == "" || resp.Header.Get("retry-after-ms") == "" {
				t.Errorf("no Retry-After: %v", resp.Header)
			}
			var eb errorBody
			if err := json.Unmarshal(b, &eb); err != nil || eb.Error.Type != tc.kind || eb.Error.Code == nil || *eb.Error.Code != "rate_limit_exceeded" {
				t.Errorf("body %s", b)
			}
			if tc.rpm > 0 {
				if got := resp.Header.Get("x-ratelimit-remaining-requests"); got != "0" {
					t.Errorf("remaining %q", got)
				}
				if got := resp.Header.Get("x-ratelimit-reset-requests"); got != "1m0s" {
					t.Errorf("reset %q", got)
				}
				if got := resp.Header.Get("Retry-After"); got != "30" {
					t.Errorf("Retry-After %q", got)
				}
			}
			clock.Advance(time.Minute)
			if resp, b := post(t, ts.URL+"/v1/embeddings", body); resp.StatusCode != 200 {
				t.Fatalf("after window: status %d %s", resp.StatusCode, b)
			}
			if st := s.Stats(); st.Embeddings.RateLimited != 1 || st.TooManyRequests != 1 {
				t.Errorf("stats %+v", st.Embeddings)
			}
		})
	}
}

func TestRequestTooLargeForTPM(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Chat.TPM = 5
	_, ts := newTestServer(t, cfg)
	resp, b := post(t, ts.URL+"/v1/chat/completions", map[string]any{"model": "gpt-4o-mini", "messages": []map[string]string{{"role": "user", "content": "a b c d e f g h"}}})
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(b), "Request too large") {
		t.Fatalf("status %d %s", resp.StatusCode, b)
	}
}

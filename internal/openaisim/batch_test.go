package openaisim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

func newBatchServer(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return s, ts
}

func upload(t *testing.T, base, purpose string, data []byte) (int, fileObject) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField("purpose", purpose); err != nil {
		t.Fatal(err)
	}
	fw, err := mw.CreateFormFile("file", "input.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write(data)
	_ = mw.Close()
	resp, err := http.Post(base+"/v1/files", mw.FormDataContentType(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var f fileObject
	_ = json.NewDecoder(resp.Body).Decode(&f)
	return resp.StatusCode, f
}

func getBody(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// embeddingLines returns n embeddings requests with custom ids c0, c1, ...
func embeddingLines(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"custom_id":"c%d","method":"POST","url":"/v1/embeddings","body":{"model":"text-embedding-3-small","input":["text %d"]}}`+"\n", i, i)
	}
	return b.Bytes()
}

func chatLines(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"custom_id":"c%d","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"I love item %d"}]}}`+"\n", i, i)
	}
	return b.Bytes()
}

// runBatchHTTP uploads input, creates a batch for endpoint and polls it until
// it ends.
func runBatchHTTP(t *testing.T, base, endpoint string, input []byte, advance func()) batchObject {
	t.Helper()
	code, f := upload(t, base, PurposeBatch, input)
	if code != http.StatusOK {
		t.Fatalf("upload status %d", code)
	}
	r, body := post(t, base+"/v1/batches", map[string]any{"input_file_id": f.ID, "endpoint": endpoint, "completion_window": "24h", "metadata": map[string]string{"k": "v"}})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("create status %d: %s", r.StatusCode, body)
	}
	var b batchObject
	if err := json.Unmarshal(body, &b); err != nil || b.Status != BatchValidating || b.Metadata["k"] != "v" {
		t.Fatalf("created %+v: %v", b, err)
	}
	return pollBatch(t, base, b.ID, advance)
}

func pollBatch(t *testing.T, base, id string, advance func()) batchObject {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, body := getBody(t, base+"/v1/batches/"+id)
		var b batchObject
		if err := json.Unmarshal(body, &b); err != nil {
			t.Fatalf("decode batch %s: %v", body, err)
		}
		switch b.Status {
		case BatchCompleted, BatchFailed, BatchExpired, BatchCancelled:
			return b
		}
		if advance != nil {
			advance()
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("batch %s did not end", id)
	return batchObject{}
}

// resultLines downloads a result file and returns its lines by custom_id.
func resultLines(t *testing.T, base string, id *string) map[string]batchResultIn {
	t.Helper()
	out := map[string]batchResultIn{}
	if id == nil {
		return out
	}
	code, body := getBody(t, base+"/v1/files/"+*id+"/content")
	if code != http.StatusOK {
		t.Fatalf("content status %d", code)
	}
	for line := range strings.SplitSeq(strings.TrimSpace(string(body)), "\n") {
		var r batchResultIn
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("decode line %s: %v", line, err)
		}
		if _, dup := out[r.CustomID]; dup {
			t.Fatalf("custom_id %s twice", r.CustomID)
		}
		out[r.CustomID] = r
	}
	return out
}

type batchResultIn struct {
	ID       string `json:"id"`
	CustomID string `json:"custom_id"`
	Response *struct {
		StatusCode int             `json:"status_code"`
		RequestID  string          `json:"request_id"`
		Body       json.RawMessage `json:"body"`
	} `json:"response"`
	Error *batchLineErr `json:"error"`
}

func TestBatchCompletes(t *testing.T) {
	tests := []struct {
		name     string
		endpoint string
		input    []byte
		check    func(t *testing.T, body json.RawMessage, i int)
	}{
		{"embeddings", "/v1/embeddings", embeddingLines(30), func(t *testing.T, body json.RawMessage, i int) {
			var r embeddingResponse
			var vec struct {
				Data []struct {
					Embedding []float32 `json:"embedding"`
				} `json:"data"`
			}
			if json.Unmarshal(body, &r) != nil || json.Unmarshal(body, &vec) != nil || len(vec.Data) != 1 {
				t.Fatalf("body %s", body)
			}
			want := Embedding(fmt.Sprintf("text %d", i), 1536, 1536)
			if vec.Data[0].Embedding[0] != want[0] || len(vec.Data[0].Embedding) != 1536 {
				t.Errorf("c%d: vector differs from the synchronous answer", i)
			}
		}},
		{"chat", "/v1/chat/completions", chatLines(30), func(t *testing.T, body json.RawMessage, i int) {
			var r chatResponse
			if err := json.Unmarshal(body, &r); err != nil || len(r.Choices) != 1 || r.Usage.CompletionTokens == 0 {
				t.Fatalf("body %s: %v", body, err)
			}
			if want := plainAnswer(fmt.Sprintf("I love item %d", i)); r.Choices[0].Message.Content != want {
				t.Errorf("c%d: content %q, want %q", i, r.Choices[0].Message.Content, want)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Batch.CompletionDelay = 0
			s, ts := newBatchServer(t, cfg)
			b := runBatchHTTP(t, ts.URL, tc.endpoint, tc.input, nil)
			if b.Status != BatchCompleted || b.RequestCounts != (requestCounts{Total: 30, Completed: 30}) || b.ErrorFileID != nil ||
				b.InProgressAt == nil || b.FinalizingAt == nil || b.CompletedAt == nil {
				t.Fatalf("batch %+v", b)
			}
			got := resultLines(t, ts.URL, b.OutputFileID)
			for i := range 30 {
				r, ok := got[fmt.Sprintf("c%d", i)]
				if !ok || r.Response == nil || r.Response.StatusCode != 200 || !strings.HasPrefix(r.ID, "batch_req_") || r.Error != nil {
					t.Fatalf("c%d: %+v", i, r)
				}
				tc.check(t, r.Response.Body, i)
			}
			_, raw := getBody(t, ts.URL+"/v1/files/"+*b.OutputFileID+"/content")
			inOrder := true
			for i, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
				inOrder = inOrder && strings.Contains(line, fmt.Sprintf(`"custom_id":"c%d"`, i))
			}
			if inOrder {
				t.Error("output kept the input order")
			}
			st := s.Stats()
			if st.Batches != 1 || st.BatchRequests != 30 || st.BatchTokens == 0 || st.Embeddings.Requests != 0 || st.Chat.Requests != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestBatchErrorFile(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		input  []byte
		status int
	}{
		{"injected failures", func(c *Config) { c.Batch.FailureRate = 0.5 }, embeddingLines(40), http.StatusInternalServerError},
		{"unknown model", func(c *Config) { c.StrictModels = true },
			[]byte(strings.ReplaceAll(string(embeddingLines(40)), "text-embedding-3-small", "nope")), http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Batch.CompletionDelay = 0
			tc.mutate(&cfg)
			s, ts := newBatchServer(t, cfg)
			b := runBatchHTTP(t, ts.URL, "/v1/embeddings", tc.input, nil)
			rc := b.RequestCounts
			if b.Status != BatchCompleted || rc.Total != 40 || rc.Failed == 0 || rc.Completed+rc.Failed != 40 {
				t.Fatalf("batch %+v", b)
			}
			ok, bad := resultLines(t, ts.URL, b.OutputFileID), resultLines(t, ts.URL, b.ErrorFileID)
			if len(ok) != rc.Completed || len(bad) != rc.Failed {
				t.Fatalf("%d output and %d error lines for %+v", len(ok), len(bad), rc)
			}
			for id, r := range bad {
				var eb errorBody
				if _, dup := ok[id]; dup || r.Response == nil || r.Response.StatusCode != tc.status || json.Unmarshal(r.Response.Body, &eb) != nil || eb.Error.Message == "" {
					t.Fatalf("error line %+v", r)
				}
			}
			if st := s.Stats(); st.BatchFailed != int64(rc.Failed) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestBatchValidation(t *testing.T) {
	good := string(embeddingLines(3))
	tests := []struct {
		name  string
		input string
		max   int
		code  string
		line  int
	}{
		{"url not the endpoint", good + `{"custom_id":"x","method":"POST","url":"/v1/chat/completions","body":{}}` + "\n", 0, "invalid_url", 4},
		{"duplicate custom_id", good + `{"custom_id":"c1","method":"POST","url":"/v1/embeddings","body":{}}` + "\n", 0, "duplicate_custom_id", 4},
		{"invalid json", `{"custom_id":` + "\n" + good, 0, "invalid_json_line", 1},
		{"missing custom_id", `{"method":"POST","url":"/v1/embeddings","body":{}}` + "\n", 0, "missing_required_parameter", 1},
		{"wrong method", `{"custom_id":"a","method":"GET","url":"/v1/embeddings","body":{}}` + "\n", 0, "invalid_method", 1},
		{"too many requests", string(embeddingLines(4)), 3, "too_many_requests", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Batch.CompletionDelay = 0
			cfg.Batch.MaxRequestsPerFile = tc.max
			s, ts := newBatchServer(t, cfg)
			b := runBatchHTTP(t, ts.URL, "/v1/embeddings", []byte(tc.input), nil)
			if b.Status != BatchFailed || b.FailedAt == nil || b.Errors == nil || len(b.Errors.Data) == 0 || b.OutputFileID != nil {
				t.Fatalf("batch %+v", b)
			}
			e := b.Errors.Data[0]
			if e.Code != tc.code || (tc.line > 0 && (e.Line == nil || *e.Line != tc.line)) {
				t.Errorf("error %+v (line %v), want %s at line %d", e, e.Line, tc.code, tc.line)
			}
			if st := s.Stats(); st.BatchRequests != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestBatchCreateRefused(t *testing.T) {
	cfg := DefaultConfig()
	_, ts := newBatchServer(t, cfg)
	_, f := upload(t, ts.URL, PurposeBatch, embeddingLines(1))
	tests := []struct {
		name string
		req  map[string]any
		code int
	}{
		{"unknown endpoint", map[string]any{"input_file_id": f.ID, "endpoint": "/v1/completions", "completion_window": "24h"}, http.StatusBadRequest},
		{"window", map[string]any{"input_file_id": f.ID, "endpoint": "/v1/embeddings", "completion_window": "1h"}, http.StatusBadRequest},
		{"no file", map[string]any{"input_file_id": "file-nope", "endpoint": "/v1/embeddings", "completion_window": "24h"}, http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if r, body := post(t, ts.URL+"/v1/batches", tc.req); r.StatusCode != tc.code {
				t.Errorf("status %d, want %d: %s", r.StatusCode, tc.code, body)
			}
		})
	}
}

func TestBatchCancel(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	cfg := DefaultConfig()
	cfg.Batch.CompletionDelay = time.Hour
	cfg.Now = clock.Now
	_, ts := newBatchServer(t, cfg)
	_, f := upload(t, ts.URL, PurposeBatch, embeddingLines(5))
	_, body := post(t, ts.URL+"/v1/batches", map[string]any{"input_file_id": f.ID, "endpoint": "/v1/embeddings", "completion_window": "24h"})
	var b batchObject
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		id   string
		code int
	}{
		{"in progress", b.ID, http.StatusOK},
		{"unknown batch", "batch_nope", http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, body := post(t, ts.URL+"/v1/batches/"+tc.id+"/cancel", nil)
			if r.StatusCode != tc.code {
				t.Fatalf("status %d: %s", r.StatusCode, body)
			}
			var got batchObject
			if tc.code == http.StatusOK && (json.Unmarshal(body, &got) != nil || got.Status != BatchCancelling || got.CancellingAt == nil) {
				t.Fatalf("cancelled %s", body)
			}
		})
	}
	done := pollBatch(t, ts.URL, b.ID, nil)
	if done.Status != BatchCancelled || done.CancelledAt == nil || done.CompletedAt != nil {
		t.Fatalf("batch %+v", done)
	}
	if len(resultLines(t, ts.URL, done.OutputFileID)) != done.RequestCounts.Completed {
		t.Errorf("output lines differ from counts %+v", done.RequestCounts)
	}
	if r, _ := post(t, ts.URL+"/v1/batches/"+b.ID+"/cancel", nil); r.StatusCode != http.StatusConflict {
		t.Errorf("cancel of a cancelled batch: status %d", r.StatusCode)
	}
}

func TestBatchDelayAndExpire(t *testing.T) {
	tests := []struct {
		name     string
		expire   float64
		status   string
		ok, gone int
	}{
		{"completes after the delay", 0, BatchCompleted, 10, 0},
		{"expires", 0.5, BatchExpired, 5, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
			cfg := DefaultConfig()
			cfg.Now = clock.Now
			cfg.Batch.CompletionDelay = 10 * time.Minute
			cfg.Batch.ExpireFraction = tc.expire
			_, ts := newBatchServer(t, cfg)
			polls := 0
			b := runBatchHTTP(t, ts.URL, "/v1/embeddings", embeddingLines(10), func() {
				polls++
				if polls > 20 {
					clock.Advance(time.Minute)
				}
			})
			if b.Status != tc.status || int64(*b.ExpiresAt-b.CreatedAt) != int64(24*time.Hour/time.Second) {
				t.Fatalf("batch %+v", b)
			}
			end := b.CompletedAt
			if tc.status == BatchExpired {
				end = b.ExpiredAt
			}
			if end == nil || *end-b.CreatedAt < 600 {
				t.Errorf("ended %v after creation at %d, before the delay", end, b.CreatedAt)
			}
			ok, bad := resultLines(t, ts.URL, b.OutputFileID), resultLines(t, ts.URL, b.ErrorFileID)
			if len(ok) != tc.ok || len(bad) != tc.gone || b.RequestCounts.Completed != tc.ok || b.RequestCounts.Failed != tc.gone {
				t.Fatalf("%d output, %d error lines, counts %+v", len(ok), len(bad), b.RequestCounts)
			}
			for _, r := range bad {
				if r.Error == nil || r.Error.Code != "batch_expired" || r.Response != nil {
					t.Errorf("error line %+v", r)
				}
			}
		})
	}
}

func TestBatchList(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Batch.CompletionDelay = 0
	_, ts := newBatchServer(t, cfg)
	_, f := upload(t, ts.URL, PurposeBatch, embeddingLines(1))
	var created []string
	for range 5 {
		_, body := post(t, ts.URL+"/v1/batches", map[string]any{"input_file_id": f.ID, "endpoint": "/v1/embeddings", "completion_window": "24h"})
		var b batchObject
		if err := json.Unmarshal(body, &b); err != nil {
			t.Fatal(err)
		}
		created = append([]string{b.ID}, created...)
	}
	type page struct {
		Data    []batchObject `json:"data"`
		HasMore bool          `json:"has_more"`
		FirstID *string       `json:"first_id"`
		LastID  *string       `json:"last_id"`
	}
	var seen []string
	after := ""
	for range 3 {
		q := "?limit=2"
		if after != "" {
			q += "&after=" + after
		}
		_, body := getBody(t, ts.URL+"/v1/batches"+q)
		var p page
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		for _, b := range p.Data {
			seen = append(seen, b.ID)
		}
		if !p.HasMore {
			break
		}
		after = *p.LastID
	}
	if strings.Join(seen, ",") != strings.Join(created, ",") {
		t.Errorf("listed %v, want newest first %v", seen, created)
	}
	tests := []struct {
		name, query string
		code        int
	}{
		{"limit zero", "?limit=0", http.StatusBadRequest},
		{"limit too big", "?limit=101", http.StatusBadRequest},
		{"default limit", "", http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := getBody(t, ts.URL+"/v1/batches"+tc.query); code != tc.code {
				t.Errorf("status %d: %s", code, body)
			}
		})
	}
}

func TestFiles(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Batch.MaxFileBytes = 1000
	_, ts := newBatchServer(t, cfg)
	tests := []struct {
		name    string
		purpose string
		data    []byte
		code    int
	}{
		{"batch input", PurposeBatch, embeddingLines(2), http.StatusOK},
		{"wrong purpose", "fine-tune", embeddingLines(2), http.StatusBadRequest},
		{"output purpose", PurposeBatchOutput, embeddingLines(2), http.StatusBadRequest},
		{"too large", PurposeBatch, embeddingLines(20), http.StatusRequestEntityTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, f := upload(t, ts.URL, tc.purpose, tc.data)
			if code != tc.code {
				t.Fatalf("status %d, want %d", code, tc.code)
			}
			if code != http.StatusOK {
				return
			}
			if !strings.HasPrefix(f.ID, "file-") || f.Object != "file" || f.Bytes != len(tc.data) || f.Status != "processed" || f.Filename != "input.jsonl" {
				t.Fatalf("file %+v", f)
			}
			if code, body := getBody(t, ts.URL+"/v1/files/"+f.ID+"/content"); code != 200 || !bytes.Equal(body, tc.data) {
				t.Errorf("content %d %q", code, body)
			}
			if code, body := getBody(t, ts.URL+"/v1/files"); code != 200 || !strings.Contains(string(body), f.ID) {
				t.Errorf("list %d %s", code, body)
			}
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodDelete, ts.URL+"/v1/files/"+f.ID, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("delete: %v %v", resp, err)
			}
			_ = resp.Body.Close()
			if code, _ := getBody(t, ts.URL+"/v1/files/"+f.ID); code != http.StatusNotFound {
				t.Errorf("get after delete: %d", code)
			}
		})
	}
}

// TestBatchGoOpenAI runs a batch with the go-openai client.
func TestBatchGoOpenAI(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Batch.CompletionDelay = 0
	cfg.Batch.FailureRate = 0.2
	s, ts := newBatchServer(t, cfg)
	ocfg := openai.DefaultConfig("key")
	ocfg.BaseURL = ts.URL + "/v1"
	client := openai.NewClientWithConfig(ocfg)
	ctx := context.Background()

	var req openai.UploadBatchFileRequest
	for i := range 20 {
		req.AddChatCompletion(fmt.Sprintf("req-%d", i), openai.ChatCompletionRequest{Model: "gpt-4o-mini",
			Messages: []openai.ChatCompletionMessage{{Role: "user", Content: fmt.Sprintf(`{"items":[{"id":%d,"text":"great stuff"}]}`, i)}}})
	}
	f, err := client.CreateFileBytes(ctx, openai.FileBytesRequest{Name: "in.jsonl", Bytes: req.MarshalJSONL(), Purpose: openai.PurposeBatch})
	if err != nil {
		t.Fatalf("CreateFileBytes: %v", err)
	}
	b, err := client.CreateBatch(ctx, openai.CreateBatchRequest{InputFileID: f.ID, Endpoint: openai.BatchEndpointChatCompletions})
	if err != nil {
		t.Fatalf("CreateBatch: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); b.Status != BatchCompleted; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("batch %+v did not complete", b.Batch)
		}
		if b, err = client.RetrieveBatch(ctx, b.ID); err != nil {
			t.Fatalf("RetrieveBatch: %v", err)
		}
	}
	limit := 1
	if list, err := client.ListBatch(ctx, nil, &limit); err != nil || len(list.Data) != 1 || list.Data[0].ID != b.ID || list.HasMore {
		t.Fatalf("ListBatch %+v: %v", list, err)
	}
	got := map[string]int{}
	for _, id := range []*string{b.OutputFileID, b.ErrorFileID} {
		if id == nil {
			continue
		}
		raw, err := client.GetFileContent(ctx, *id)
		if err != nil {
			t.Fatalf("GetFileContent: %v", err)
		}
		data, _ := io.ReadAll(raw)
		_ = raw.Close()
		for line := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
			var r struct {
				CustomID string `json:"custom_id"`
				Response struct {
					StatusCode int                           `json:"status_code"`
					Body       openai.ChatCompletionResponse `json:"body"`
				} `json:"response"`
			}
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("decode %s: %v", line, err)
			}
			got[r.CustomID] = r.Response.StatusCode
			if r.Response.StatusCode == 200 && !strings.Contains(r.Response.Body.Choices[0].Message.Content, `"label":"positive"`) {
				t.Errorf("%s: content %q", r.CustomID, r.Response.Body.Choices[0].Message.Content)
			}
		}
	}
	if len(got) != 20 || b.RequestCounts.Total != 20 || b.RequestCounts.Completed+b.RequestCounts.Failed != 20 {
		t.Fatalf("mapped %d custom ids, counts %+v", len(got), b.RequestCounts)
	}
	if st := s.Stats(); st.BatchRequests != 20 || st.BatchCompletionTokens == 0 || st.Chat.Requests != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestCloseStopsBatches(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Batch.CompletionDelay = time.Hour
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	_, f := upload(t, ts.URL, PurposeBatch, embeddingLines(200))
	post(t, ts.URL+"/v1/batches", map[string]any{"input_file_id": f.ID, "endpoint": "/v1/embeddings", "completion_window": "24h"})
	ts.Close()
	done := make(chan struct{})
	go func() {
		s.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
}

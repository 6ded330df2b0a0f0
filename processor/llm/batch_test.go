package llm

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	openai "github.com/sashabaranov/go-openai"

	"github.com/textpulse/textpulse/internal/openaisim"
	"github.com/textpulse/textpulse/internal/promtest"
	"github.com/textpulse/textpulse/processor"
	"github.com/textpulse/textpulse/processor/enrich"
)

// newBatchSim starts the simulator with batches that end as soon as they
// are answered; mod, when set, changes its batch settings.
func newBatchSim(t *testing.T, mod func(*openaisim.Batch)) *simServer {
	t.Helper()
	sim := newSim(t, openaisim.ProfileOpenAI, func(c *openaisim.Config) {
		c.Batch.CompletionDelay = 0
		if mod != nil {
			mod(&c.Batch)
		}
	})
	t.Cleanup(sim.Close)
	return sim
}

// testBatchConfig returns batch settings that poll every few milliseconds.
func testBatchConfig() BatchConfig {
	bc := DefaultBatchConfig()
	bc.PollInitialInterval = time.Millisecond
	bc.PollMaxInterval = 5 * time.Millisecond
	bc.MaxWait = 30 * time.Second
	return bc
}

func newBatchEmbedding(t *testing.T, sim *simServer, mod func(*EmbeddingConfig, *BatchConfig)) (*EmbeddingStage, *prometheus.Registry) {
	t.Helper()
	cfg := DefaultEmbeddingConfig()
	cfg.EndpointConfig = simEndpoint(sim, "text-embedding-3-small")
	cfg.CacheSize = 0
	bc := testBatchConfig()
	if mod != nil {
		mod(&cfg, &bc)
	}
	reg := prometheus.NewRegistry()
	s, err := NewEmbeddingBatchStage(cfg, bc, quietLog(), reg)
	if err != nil {
		t.Fatal(err)
	}
	return s, reg
}

func newBatchSentiment(t *testing.T, sim *simServer, mod func(*SentimentConfig, *BatchConfig)) *SentimentStage {
	t.Helper()
	cfg := DefaultSentimentConfig()
	cfg.EndpointConfig = simEndpoint(sim, "gpt-4o-mini")
	cfg.CacheSize = 0
	cfg.ItemsPerRequest = 8
	bc := testBatchConfig()
	if mod != nil {
		mod(&cfg, &bc)
	}
	s, err := NewSentimentBatchStage(cfg, bc, quietLog(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBatchEmbeddingMatchesSync(t *testing.T) {
	tests := []struct {
		name      string
		format    string
		dims      int
		maxInputs int
		seed      uint64
	}{
		{"base64", EncodingBase64, 0, 4, 0},
		{"float", EncodingFloat, 0, 4, 1},
		{"dimensions", EncodingBase64, 256, 7, 2},
		{"one request", EncodingBase64, 0, 2048, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := newSim(t, openaisim.ProfileOpenAI, func(c *openaisim.Config) { c.Batch.CompletionDelay, c.Seed = 0, tt.seed })
			t.Cleanup(sim.Close)
			in := texts(37, "")
			bs, reg := newBatchEmbedding(t, sim, func(c *EmbeddingConfig, _ *BatchConfig) {
				c.EncodingFormat, c.Dimensions, c.MaxInputs = tt.format, tt.dims, tt.maxInputs
			})
			got := newTestBatch(in...)
			if err := bs.Enrich(t.Context(), got); err != nil {
				t.Fatal(err)
			}
			st := sim.Stats()
			requests := (len(in) + tt.maxInputs - 1) / tt.maxInputs
			if st.Batches != 1 || st.BatchRequests != int64(requests) || st.Embeddings.Requests != 0 {
				t.Fatalf("batches %d, batch requests %d (want %d), sync requests %d", st.Batches, st.BatchRequests, requests, st.Embeddings.Requests)
			}
			ss, _ := newSimEmbedding(t, sim, func(c *EmbeddingConfig) { c.EncodingFormat, c.Dimensions = tt.format, tt.dims })
			want := newTestBatch(in...)
			if err := ss.Enrich(t.Context(), want); err != nil {
				t.Fatal(err)
			}
			for i := range in {
				g, w := got.Records[i], want.Records[i]
				if len(g.Embedding) == 0 || !slices.Equal(g.Embedding, w.Embedding) || g.EmbeddingModel != w.EmbeddingModel {
					t.Errorf("record %d: batch vector (%d dims, %q) differs from the synchronous one (%d dims, %q)",
						i, len(g.Embedding), g.EmbeddingModel, len(w.Embedding), w.EmbeddingModel)
				}
			}
			var files openai.FilesList
			if simGet(t, sim, "/files", &files); len(files.Files) != 0 {
				t.Errorf("%d files left, want the batch's deleted", len(files.Files))
			}
			if n := promtest.Sum(t, reg, "textpulse_llm_batch_requests_total", map[string]string{"outcome": "ok"}); n != float64(requests) {
				t.Errorf("batch requests ok %v, want %d", n, requests)
			}
			if n := promtest.Sum(t, reg, "textpulse_llm_batches_total", map[string]string{"status": "completed"}); n != 1 {
				t.Errorf("completed batches %v, want 1", n)
			}
			if n := promtest.Sum(t, reg, "textpulse_llm_tokens_total", map[string]string{"kind": "prompt"}); n <= 0 {
				t.Errorf("prompt tokens %v, want some", n)
			}
		})
	}
}

func TestBatchSentimentMatchesSync(t *testing.T) {
	tests := []struct {
		name   string
		format string
		items  int
	}{
		{"auto", FormatAuto, 8},
		{"json_object", FormatJSONObject, 5},
		{"text", FormatText, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := newBatchSim(t, nil)
			in := append(texts(12, ""), "this is terrible and awful", "an ordinary day", "I love it, wonderful")
			bs := newBatchSentiment(t, sim, func(c *SentimentConfig, _ *BatchConfig) {
				c.ResponseFormat, c.ItemsPerRequest = tt.format, tt.items
			})
			got := newTestBatch(in...)
			if err := bs.Enrich(t.Context(), got); err != nil {
				t.Fatal(err)
			}
			if st := sim.Stats(); st.Batches != 1 || st.Chat.Requests != 0 || st.BatchFailed != 0 {
				t.Fatalf("batches %d, batch failed %d, sync requests %d", st.Batches, st.BatchFailed, st.Chat.Requests)
			}
			ss := newSimSentiment(t, sim, func(c *SentimentConfig) { c.ResponseFormat, c.ItemsPerRequest = tt.format, tt.items })
			want := newTestBatch(in...)
			if err := ss.Enrich(t.Context(), want); err != nil {
				t.Fatal(err)
			}
			for i := range in {
				g, w := got.Records[i], want.Records[i]
				if g.SentimentLabel == "" || g.SentimentLabel != w.SentimentLabel ||
					math.Abs(float64(g.SentimentScore-w.SentimentScore)) > 1e-6 || g.SentimentModel != w.SentimentModel {
					t.Errorf("record %d: batch %q %v %q, synchronous %q %v %q", i,
						g.SentimentLabel, g.SentimentScore, g.SentimentModel, w.SentimentLabel, w.SentimentScore, w.SentimentModel)
				}
			}
		})
	}
}

// done counts the records of b with a vector.
func done(b *processor.Batch) int {
	n := 0
	for _, r := range b.Records {
		if len(r.Embedding) > 0 {
			n++
		}
	}
	return n
}

// outcomeTexts is the number of texts of TestBatchEmbeddingOutcomes.
const outcomeTexts = 40

// outcomeCase is a case of TestBatchEmbeddingOutcomes: settings of the
// simulator and the stage, and a check of the outcome.
type outcomeCase struct {
	name  string
	sim   func(*openaisim.Batch)
	stage func(*EmbeddingConfig, *BatchConfig)
	check func(t *testing.T, st openaisim.Stats, b *processor.Batch)
}

// outcomeCases returns the cases of TestBatchEmbeddingOutcomes.
func outcomeCases() []outcomeCase {
	const n = outcomeTexts
	return []outcomeCase{
		{
			name: "failures fail their texts only",
			sim:  func(b *openaisim.Batch) { b.FailureRate = 0.3 },
			stage: func(c *EmbeddingConfig, _ *BatchConfig) {
				c.MaxInputs, c.MaxAttempts, c.OnFailure = 1, 1, PolicySkip
			},
			check: func(t *testing.T, st openaisim.Stats, b *processor.Batch) {
				failed := len(failedStages(b, "embedding"))
				if st.BatchFailed == 0 || int64(failed) != st.BatchFailed || done(b) != n-failed {
					t.Errorf("failed records %d, simulator failures %d, done %d", failed, st.BatchFailed, done(b))
				}
			},
		},
		{
			name: "retry resubmits the failed texts only",
			sim:  func(b *openaisim.Batch) { b.FailureRate = 0.3 },
			stage: func(c *EmbeddingConfig, _ *BatchConfig) {
				c.MaxInputs, c.OnFailure = 1, PolicyRetry
			},
			check: func(t *testing.T, st openaisim.Stats, b *processor.Batch) {
				if done(b) != n || st.Batches < 2 || st.BatchRequests-st.BatchFailed != n {
					t.Errorf("done %d, batches %d, batch requests %d, failed %d", done(b), st.Batches, st.BatchRequests, st.BatchFailed)
				}
			},
		},
		{
			name: "expired batch keeps its answers",
			sim:  func(b *openaisim.Batch) { b.ExpireFraction = 0.25 },
			stage: func(c *EmbeddingConfig, _ *BatchConfig) {
				c.MaxInputs, c.MaxAttempts, c.OnFailure = 1, 1, PolicySkip
			},
			check: func(t *testing.T, st openaisim.Stats, b *processor.Batch) {
				if done(b) != n/4 || len(failedStages(b, "embedding")) != n-n/4 {
					t.Errorf("done %d, failed %d, want %d and %d", done(b), len(failedStages(b, "embedding")), n/4, n-n/4)
				}
			},
		},
		{
			name: "expired requests are retryable",
			sim:  func(b *openaisim.Batch) { b.ExpireFraction = 0.5 },
			stage: func(c *EmbeddingConfig, _ *BatchConfig) {
				c.MaxInputs, c.MaxAttempts, c.OnFailure = 1, 8, PolicySkip
			},
			check: func(t *testing.T, st openaisim.Stats, b *processor.Batch) {
				// Each attempt submits what the last left: 40, 20, 10, 5, 3,
				// 2, 1, 1; half of one request (floor) is none, so the last
				// text fails after the 8 attempts.
				if done(b) != n-1 || st.Batches != 8 || len(failedStages(b, "embedding")) != 1 {
					t.Errorf("done %d, batches %d", done(b), st.Batches)
				}
			},
		},
		{
			name:  "split by requests per file",
			stage: func(c *EmbeddingConfig, bc *BatchConfig) { c.MaxInputs, bc.MaxRequestsPerFile = 4, 3 },
			check: func(t *testing.T, st openaisim.Stats, b *processor.Batch) {
				if done(b) != n || st.Batches != 4 || st.BatchRequests != 10 {
					t.Errorf("done %d, batches %d, batch requests %d, want 4 batches of 10 requests", done(b), st.Batches, st.BatchRequests)
				}
			},
		},
		{
			name:  "split by file bytes",
			stage: func(c *EmbeddingConfig, bc *BatchConfig) { c.MaxInputs, bc.MaxFileBytes = 1, 1000 },
			check: func(t *testing.T, st openaisim.Stats, b *processor.Batch) {
				if done(b) != n || st.Batches < 4 || st.BatchRequests != n {
					t.Errorf("done %d, batches %d, batch requests %d", done(b), st.Batches, st.BatchRequests)
				}
			},
		},
	}
}

func TestBatchEmbeddingOutcomes(t *testing.T) {
	for _, tt := range outcomeCases() {
		t.Run(tt.name, func(t *testing.T) {
			sim := newBatchSim(t, tt.sim)
			s, _ := newBatchEmbedding(t, sim, tt.stage)
			b := newTestBatch(texts(outcomeTexts, "")...)
			if err := s.Enrich(t.Context(), b); err != nil {
				t.Fatal(err)
			}
			tt.check(t, sim.Stats(), b)
		})
	}
}

func TestBatchValidationFailure(t *testing.T) {
	// The simulator takes fewer requests per file than the stage writes,
	// so that the batch fails validation with too_many_requests.
	sim := newBatchSim(t, func(b *openaisim.Batch) { b.MaxRequestsPerFile = 2 })
	s := newBatchSentiment(t, sim, func(c *SentimentConfig, _ *BatchConfig) {
		c.ItemsPerRequest, c.MaxAttempts, c.OnFailure = 2, 3, PolicyDeadLetter
	})
	in := texts(10, "")
	b := newTestBatch(in...)
	if err := s.Enrich(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	rej := b.Rejected()
	if len(rej) != len(in) {
		t.Fatalf("%d records rejected, want %d", len(rej), len(in))
	}
	for i, dl := range rej {
		if dl.Attempts != 1 || !strings.Contains(dl.Reason, "too_many_requests") {
			t.Errorf("record %d: attempts %d, reason %q", i, dl.Attempts, dl.Reason)
		}
	}
	if st := sim.Stats(); st.Batches != 1 {
		t.Errorf("batches %d, want 1: a failed validation is not retried", st.Batches)
	}
}

func TestBatchLineError(t *testing.T) {
	tests := []struct {
		name      string
		line      string
		status    int
		retryable bool
		kind      error
	}{
		{"server error", `{"custom_id":"a","response":{"status_code":500,"body":{"error":{"message":"boom"}}}}`, 500, true, ErrUnavailable},
		{"rate limited", `{"custom_id":"a","response":{"status_code":429,"body":{"error":{"message":"slow"}}}}`, 429, true, ErrUnavailable},
		{"timeout", `{"custom_id":"a","response":{"status_code":408,"body":{}}}`, 408, true, ErrUnavailable},
		{"bad request", `{"custom_id":"a","response":{"status_code":400,"body":{"error":{"message":"bad","code":"invalid_value"}}}}`, 400, false, ErrRejected},
		{"expired", `{"custom_id":"a","response":null,"error":{"code":"batch_expired","message":"late"}}`, 0, true, ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l batchOutputLine
			if err := json.Unmarshal([]byte(tt.line), &l); err != nil {
				t.Fatal(err)
			}
			if l.ok() {
				t.Fatal("line reads as an answer")
			}
			re := lineError(l)
			if re.Status != tt.status || processor.IsRetryable(re) != tt.retryable || !errors.Is(re, tt.kind) {
				t.Errorf("status %d, retryable %v, kind %v: %v", re.Status, processor.IsRetryable(re), re.Kind, re)
			}
		})
	}
}

func TestBatchUnusableAnswer(t *testing.T) {
	p := &batchAPI[Sentiment]{name: "sentiment", m: newMetrics("sentiment", nil), log: quietLog(), decode: decodeSentiments}
	tests := []struct {
		name string
		body string
	}{
		{"not json", `"oops"`},
		{"answer not json", `{"choices":[{"message":{"role":"assistant","content":"no json here"},"finish_reason":"stop"}]}`},
		{"missing result", `{"choices":[{"message":{"role":"assistant","content":"{\"results\":[{\"id\":0,\"label\":\"neutral\",\"score\":0}]}"},"finish_reason":"stop"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l batchOutputLine
			if err := json.Unmarshal([]byte(`{"custom_id":"a","response":{"status_code":200,"body":`+tt.body+`}}`), &l); err != nil {
				t.Fatal(err)
			}
			items := []*enrich.Item[Sentiment]{{Text: "a"}, {Text: "b"}}
			p.answer(items, l, FormatJSONSchema)
			for i, it := range items {
				if it.Done || !errors.Is(it.Err, ErrInvalidAnswer) || processor.IsRetryable(it.Err) {
					t.Errorf("item %d: done %v, err %v", i, it.Done, it.Err)
				}
			}
		})
	}
}

func TestBatchConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*BatchConfig)
		want string
	}{
		{"defaults", func(*BatchConfig) {}, ""},
		{"no poll interval", func(c *BatchConfig) { c.PollInitialInterval = 0 }, "poll_initial_interval"},
		{"max under initial", func(c *BatchConfig) { c.PollMaxInterval = time.Second }, "poll_max_interval"},
		{"window", func(c *BatchConfig) { c.CompletionWindow = "1h" }, "completion_window"},
		{"requests", func(c *BatchConfig) { c.MaxRequestsPerFile = MaxBatchRequestsPerFile + 1 }, "max_requests_per_file"},
		{"bytes", func(c *BatchConfig) { c.MaxFileBytes = 0 }, "max_file_bytes"},
		{"wait", func(c *BatchConfig) { c.MaxWait = 0 }, "max_wait"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultBatchConfig()
			tt.mod(&c)
			err := c.Validate()
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

// simBatches returns the batches of sim, newest first.
func simBatches(t *testing.T, sim *simServer) []openai.Batch {
	t.Helper()
	var list openai.ListBatchResponse
	simGet(t, sim, "/batches?limit=100", &list)
	return list.Data
}

// simGet decodes the JSON answer of sim to GET path into v, or returns
// the raw body when v is nil.
func simGet(t *testing.T, sim *simServer, path string, v any) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, sim.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer test-key")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("get %s: status %d: %v", path, resp.StatusCode, err)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatal(err)
		}
	}
	return body
}

func TestBatchOutputOrder(t *testing.T) {
	// The simulator shuffles output lines; the stage maps them back by
	// custom_id, which TestBatchEmbeddingMatchesSync checks value by value.
	sim := newBatchSim(t, nil)
	s, _ := newBatchEmbedding(t, sim, func(c *EmbeddingConfig, bc *BatchConfig) { c.MaxInputs, bc.KeepFiles = 1, true })
	in := texts(20, "")
	b := newTestBatch(in...)
	if err := s.Enrich(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	checkVectors(t, in, vectors(b), 1536)
	batches := simBatches(t, sim)
	if len(batches) != 1 || batches[0].OutputFileID == nil {
		t.Fatalf("batches %+v, want one with an output file", batches)
	}
	var ids []string
	for line := range strings.SplitSeq(strings.TrimSpace(string(simGet(t, sim, "/files/"+*batches[0].OutputFileID+"/content", nil))), "\n") {
		var l batchOutputLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, l.CustomID)
	}
	if len(ids) != len(in) || slices.IsSortedFunc(ids, func(a, b string) int { return requestIndex(a) - requestIndex(b) }) {
		t.Errorf("output custom_ids %v: want all %d, out of order", ids, len(in))
	}
}

// requestIndex returns the index in a custom_id "request-<i>".
func requestIndex(cid string) int {
	i, _ := strconv.Atoi(strings.TrimPrefix(cid, "request-"))
	return i
}

// vectors returns the vectors of the records of b.
func vectors(b *processor.Batch) [][]float32 {
	out := make([][]float32, len(b.Records))
	for i, r := range b.Records {
		out[i] = r.Embedding
	}
	return out
}

func TestBatchGivenUp(t *testing.T) {
	tests := []struct {
		name    string
		maxWait time.Duration
		ctxWait time.Duration
	}{
		{"max wait", 50 * time.Millisecond, 0},
		{"context ends", time.Hour, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := newBatchSim(t, func(b *openaisim.Batch) { b.CompletionDelay = time.Hour })
			s, _ := newBatchEmbedding(t, sim, func(c *EmbeddingConfig, bc *BatchConfig) {
				c.MaxAttempts, c.OnFailure, bc.MaxWait = 1, PolicyDeadLetter, tt.maxWait
			})
			ctx := t.Context()
			if tt.ctxWait > 0 {
				var cancel func()
				ctx, cancel = context.WithTimeout(ctx, tt.ctxWait)
				defer cancel()
			}
			b := newTestBatch(texts(5, "")...)
			err := s.Enrich(ctx, b)
			if tt.ctxWait > 0 {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Enrich() = %v, want the context's error", err)
				}
			} else {
				for i, dl := range b.Rejected() {
					if !strings.Contains(dl.Reason, "max_wait") {
						t.Errorf("record %d: reason %q", i, dl.Reason)
					}
				}
				if err != nil || len(b.Rejected()) != 5 {
					t.Errorf("Enrich() = %v, %d rejected, want 5", err, len(b.Rejected()))
				}
			}
			batches := simBatches(t, sim)
			if len(batches) != 1 || (batches[0].Status != "cancelling" && batches[0].Status != "cancelled") {
				t.Errorf("batches %+v, want one cancelled", batches)
			}
		})
	}
}

func TestBatchModeFallback(t *testing.T) {
	tests := []struct {
		name        string
		format      string
		wantDone    bool
		wantBatches int64
	}{
		{"auto falls back to json_object", FormatAuto, true, 2},
		{"fixed json_schema fails", FormatJSONSchema, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := newSim(t, openaisim.ProfileOpenAI, func(c *openaisim.Config) {
				c.Batch.CompletionDelay, c.Quirks.JSONSchema = 0, openaisim.Refuse
			})
			t.Cleanup(sim.Close)
			s := newBatchSentiment(t, sim, func(c *SentimentConfig, _ *BatchConfig) {
				c.ResponseFormat, c.MaxAttempts, c.OnFailure = tt.format, 3, PolicySkip
			})
			in := texts(20, "")
			b := newTestBatch(in...)
			if err := s.Enrich(t.Context(), b); err != nil {
				t.Fatal(err)
			}
			failed := len(failedStages(b, "sentiment"))
			if (failed == 0) != tt.wantDone || (!tt.wantDone && failed != len(in)) {
				t.Errorf("%d of %d records failed", failed, len(in))
			}
			if st := sim.Stats(); st.Batches != tt.wantBatches {
				t.Errorf("batches %d, want %d", st.Batches, tt.wantBatches)
			}
			if tt.wantDone && s.format.current() != FormatJSONObject {
				t.Errorf("mode %s, want json_object", s.format.current())
			}
		})
	}
}

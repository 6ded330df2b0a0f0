package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/textpulse/textpulse/internal/harness"
	"github.com/textpulse/textpulse/internal/itest"
	"github.com/textpulse/textpulse/internal/openaisim"
	"github.com/textpulse/textpulse/internal/testenv"
)

// The compatibility suite runs the consumer against real third-party
// OpenAI-compatible servers that scripts/compat.sh installs: LiteLLM's
// proxy in front of the simulator, and llama.cpp's llama-server with a
// 270M GGUF model. The paths come from `scripts/compat.sh paths`; without
// them the tests skip, unless TEXTPULSE_TEST_REQUIRE_COMPAT=1.

// compatPath returns the path in the environment variable key, or skips.
func compatPath(t *testing.T, key string) string {
	t.Helper()
	p := os.Getenv(key)
	if p == "" {
		if os.Getenv("TEXTPULSE_TEST_REQUIRE_COMPAT") == "1" {
			t.Fatalf("%s is not set (run scripts/compat.sh install and export its paths)", key)
		}
		t.Skipf("%s is not set; see scripts/compat.sh", key)
	}
	return p
}

// freePort returns a TCP port free on 127.0.0.1 at the time of the call.
func freePort(t *testing.T) int {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port
}

// startServer starts a server process and waits until ready answers 200;
// it is killed at the end of the test.
func startServer(t *testing.T, ready string, timeout time.Duration, name string, args ...string) {
	t.Helper()
	out := &harness.Buffer{}
	cmd := exec.Command(name, args...) //nolint:gosec // The test starts the servers that scripts/compat.sh installed.
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), "NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), tail(out.String(), 4000))
		}
	})
	start := time.Now()
	itest.Eventually(t, timeout, func() (bool, string) {
		select {
		case <-exited:
			t.Fatalf("%s exited before it was ready:\n%s", filepath.Base(name), tail(out.String(), 4000))
		default:
		}
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, ready, nil)
		if err != nil {
			return false, err.Error()
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	t.Logf("%s ready after %v", filepath.Base(name), time.Since(start).Round(100*time.Millisecond))
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// countingProxy forwards to target and counts requests by path.
type countingProxy struct {
	*httptest.Server
	mu     sync.Mutex
	counts map[string]int
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{counts: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.counts[r.URL.Path]++
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *countingProxy) count(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[path]
}

// compatEvents returns n events with distinct texts.
func compatEvents(n int) ([][]byte, []string) {
	moods := []string{"I love this phone, the camera is excellent", "The delivery was late and the box was damaged",
		"The meeting is at ten tomorrow", "Great support, they fixed my problem fast", "This update is terrible, everything crashes"}
	values, texts := make([][]byte, n), make([]string, n)
	for i := range n {
		texts[i] = fmt.Sprintf("%s (review %d)", moods[i%len(moods)], i)
		values[i] = fmt.Appendf(nil, `{"id":"compat-%d","text":%q,"source":"compat","lang":"en","created_at":"2026-11-25T10:00:00Z"}`, i, texts[i])
	}
	return values, texts
}

// compatRow is one stored row of the compatibility suite.
type compatRow struct {
	text, embModel, label, status string
	emb                           []float32
	score                         float32
}

func (s *scenario) compatRows(t *testing.T) map[string]compatRow {
	t.Helper()
	rows, err := s.ch.Conn.Query(context.Background(), fmt.Sprintf(
		`SELECT text, embedding, embedding_model, sentiment_label, sentiment_score, status FROM %s.events FINAL`, s.db))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	out := map[string]compatRow{}
	for rows.Next() {
		var r compatRow
		if err := rows.Scan(&r.text, &r.emb, &r.embModel, &r.label, &r.score, &r.status); err != nil {
			t.Fatal(err)
		}
		out[r.text] = r
	}
	return out
}

// TestCompatLiteLLM runs both API stages through LiteLLM's proxy in front
// of the simulator, with the defaults (base64 vectors, response_format
// auto): every row must hold the simulator's exact vector and sentiment.
func TestCompatLiteLLM(t *testing.T) {
	litellm := compatPath(t, "TEXTPULSE_COMPAT_LITELLM")
	s := newScenario(t, modernServer(t), 2)
	simCfg := openaisim.DefaultConfig()
	// Limits high enough never to bite, so that rate-limit headers flow.
	simCfg.Embeddings.RPM, simCfg.Chat.RPM = 100000, 100000
	sim, err := openaisim.New(simCfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(sim.Handler())
	t.Cleanup(up.Close)

	key := "sk-" + rand.Text()
	cfg := filepath.Join(t.TempDir(), "litellm.yaml")
	yaml := fmt.Sprintf(`model_list:
  - model_name: text-embedding-3-small
    litellm_params: {model: openai/text-embedding-3-small, api_base: "%[1]s/v1", api_key: sim-key}
  - model_name: gpt-4o-mini
    litellm_params: {model: openai/gpt-4o-mini, api_base: "%[1]s/v1", api_key: sim-key}
litellm_settings:
  telemetry: false
general_settings:
  master_key: %[2]s
`, up.URL, key)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	startServer(t, base+"/health/liveliness", 3*time.Minute, litellm,
		"--config", cfg, "--host", "127.0.0.1", "--port", fmt.Sprint(port), "--num_workers", "1")

	const n = 60
	values, texts := compatEvents(n)
	s.kafka.Produce(t, s.topic, s.partitions, values)
	var args []string
	for _, stage := range []string{"embedding", "sentiment"} {
		p := "--stages." + stage + "."
		args = append(args, p+"enabled", p+"base_url", base+"/v1", p+"api_key", key,
			p+"on_failure", "skip", p+"timeout", "30s")
	}
	args = append(args, "--stages.sentiment.items_per_request", "8", "--batch.max_records", "30")
	c := startInProcess(t, s.args(args...))
	s.waitRows(n, 3*time.Minute)
	if err := c.stop(t); err != nil {
		t.Fatalf("consumer: %v\n%s", err, c.log.String())
	}
	rows := s.compatRows(t)
	for _, text := range texts {
		r, ok := rows[text]
		if !ok {
			t.Fatalf("no row for %q", text)
		}
		want := openaisim.Embedding(text, 1536, 1536)
		if r.status != "ok" || len(r.emb) != len(want) {
			t.Fatalf("row %q: status %s, %d dimensions", text, r.status, len(r.emb))
		}
		for i := range want {
			if math.Abs(float64(r.emb[i]-want[i])) > 1e-7 {
				t.Fatalf("row %q: embedding[%d] = %v, want %v", text, i, r.emb[i], want[i])
			}
		}
		label, score := openaisim.Sentiment(text)
		if r.label != label || math.Abs(float64(r.score)-score) > 1e-6 {
			t.Fatalf("row %q: sentiment %s %v, want %s %v", text, r.label, r.score, label, score)
		}
	}
	st := sim.Stats()
	t.Logf("%d events through LiteLLM: %d embedding and %d chat requests upstream", n, st.Embeddings.Requests, st.Chat.Requests)
	if st.Chat.Requests > int64(2*((n+7)/8)) || st.Embeddings.Requests > 2*(n/30+1) {
		t.Errorf("unbounded requests: %d embedding, %d chat", st.Embeddings.Requests, st.Chat.Requests)
	}
	checkOut := &bytes.Buffer{}
	if err := run(context.Background(), append([]string{"check"}, s.args(args...)[1:]...),
		func(string) string { return "" }, checkOut, checkOut); err != nil {
		t.Errorf("check: %v\n%s", err, checkOut)
	}
	for _, line := range strings.Split(checkOut.String(), "\n") {
		if strings.Contains(line, " api ") {
			t.Logf("check: %s", line)
		}
	}
	// LiteLLM passes the upstream's rate-limit headers on with its
	// llm_provider- prefix, which the client reads.
	if !strings.Contains(checkOut.String(), "llm_provider-x-ratelimit-remaining-requests") {
		t.Errorf("check did not see LiteLLM's prefixed rate-limit headers:\n%s", checkOut)
	}
}

// TestCompatLlamaServer runs both API stages against llama-server with a
// 270M base model, which serves embeddings and schema-constrained chat.
// The labels of such a model mean little: the test asserts the protocol
// (valid labels and scores, vectors of the model's size and unit norm that
// match the server's own, a bounded number of requests), not the quality.
func TestCompatLlamaServer(t *testing.T) {
	bin := compatPath(t, "TEXTPULSE_COMPAT_LLAMA_SERVER")
	model := compatPath(t, "TEXTPULSE_COMPAT_GGUF")
	s := newScenario(t, modernServer(t), 1)
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	startServer(t, base+"/health", 3*time.Minute, bin, "-m", model, "--host", "127.0.0.1", "--port", fmt.Sprint(port),
		"--embeddings", "--pooling", "mean", "-c", "4096", "-np", "2", "-t", "2", "--no-webui")
	proxy := newCountingProxy(t, base)

	const n, perRequest = 8, 2
	values, texts := compatEvents(n)
	s.kafka.Produce(t, s.topic, s.partitions, values)
	var args []string
	for _, stage := range []string{"embedding", "sentiment"} {
		p := "--stages." + stage + "."
		args = append(args, p+"enabled", p+"base_url", proxy.URL+"/v1", p+"model", "gemma-3-270m",
			p+"on_failure", "skip", p+"timeout", "240s", p+"concurrency", "2")
	}
	args = append(args, "--stages.sentiment.items_per_request", fmt.Sprint(perRequest), "--batch.max_records", fmt.Sprint(n),
		"--batch.max_wait", "2s")
	c := startInProcess(t, s.args(args...))
	s.waitRows(n, 9*time.Minute)
	if err := c.stop(t); err != nil {
		t.Fatalf("consumer: %v\n%s", err, c.log.String())
	}
	rows := s.compatRows(t)
	// llama-server's vectors for a text differ a little between a request
	// of one input and one of several (cosine 0.75 to 1 measured), so each
	// stored vector must be nearest to its own text's vector.
	refs := make([][]float32, len(texts))
	for i, text := range texts {
		refs[i] = llamaEmbedding(t, base, text)
	}
	labelled := 0
	for i, text := range texts {
		r, ok := rows[text]
		if !ok {
			t.Fatalf("no row for %q", text)
		}
		if len(r.emb) != len(refs[i]) || len(refs[i]) == 0 {
			t.Fatalf("row %q: %d dimensions, the server's own vector has %d (status %s)", text, len(r.emb), len(refs[i]), r.status)
		}
		norm, best, bestCos := 0.0, -1, -2.0
		for _, v := range r.emb {
			norm += float64(v) * float64(v)
		}
		for j, ref := range refs {
			dot := 0.0
			for k := range ref {
				dot += float64(r.emb[k]) * float64(ref[k])
			}
			if dot > bestCos {
				best, bestCos = j, dot
			}
		}
		if math.Abs(math.Sqrt(norm)-1) > 1e-3 || best != i {
			t.Errorf("row %q: norm %.4f, nearest to the vector of text %d (cosine %.4f)", text, math.Sqrt(norm), best, bestCos)
		}
		switch r.label {
		case "negative", "neutral", "positive":
			labelled++
			if r.score < -1 || r.score > 1 {
				t.Errorf("row %q: score %v out of [-1, 1]", text, r.score)
			}
		case "":
		default:
			t.Errorf("row %q: label %q", text, r.label)
		}
	}
	chat, emb := proxy.count("/v1/chat/completions"), proxy.count("/v1/embeddings")
	t.Logf("%d events through llama-server: %d labelled, %d embedding and %d chat requests", n, labelled, emb, chat)
	if labelled < n/2 {
		t.Errorf("%d of %d rows labelled, want at least half", labelled, n)
	}
	// Unusable answers are split at most log2(perRequest)+2 deep per request.
	if maxChat := (n / perRequest) * (1 + 2 + 1); chat > maxChat {
		t.Errorf("chat requests = %d, want at most %d", chat, maxChat)
	}
}

// llamaEmbedding asks llama-server directly for the float vector of text.
func llamaEmbedding(t *testing.T, base, text string) []float32 {
	t.Helper()
	body, err := json.Marshal(map[string]any{"model": "gemma-3-270m", "input": []string{text}, "encoding_format": "float"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/embeddings", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var out struct {
		Data []struct {
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Data) != 1 {
		t.Fatalf("llama-server embedding: %v (%d vectors)", err, len(out.Data))
	}
	return out.Data[0].Embedding
}

// TestCompatDefaultsOnLimitedServer points the consumer, with the default
// stage settings, at a server that supports neither base64 vectors (it
// answers floats) nor json_schema (it answers 500, like
// llama-cpp-python's server): every row must be complete and exact.
func TestCompatDefaultsOnLimitedServer(t *testing.T) {
	s := newScenario(t, modernServer(t), 2)
	cfg := openaisim.DefaultConfig()
	q, err := openaisim.ProfileQuirks(openaisim.ProfileLlamaCpp)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Quirks = q
	sim, err := openaisim.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)

	const n = 200
	values, texts := compatEvents(n)
	s.kafka.Produce(t, s.topic, s.partitions, values)
	var args []string
	for _, stage := range []string{"embedding", "sentiment"} {
		p := "--stages." + stage + "."
		args = append(args, p+"enabled", p+"base_url", srv.URL+"/v1", p+"api_key", "test-key")
	}
	c := startInProcess(t, s.args(args...))
	s.waitRows(n, 2*time.Minute)
	if err := c.stop(t); err != nil {
		t.Fatalf("consumer: %v\n%s", err, c.log.String())
	}
	rows := s.compatRows(t)
	for _, text := range texts {
		r := rows[text]
		want := openaisim.Embedding(text, 1536, 1536)
		label, score := openaisim.Sentiment(text)
		switch {
		case r.status != "ok":
			t.Fatalf("row %q: status %q", text, r.status)
		case len(r.emb) != len(want) || r.emb[0] != want[0] || r.emb[len(want)-1] != want[len(want)-1]:
			t.Fatalf("row %q: embedding differs from the server's", text)
		case r.label != label || math.Abs(float64(r.score)-score) > 1e-6:
			t.Fatalf("row %q: sentiment %s %v, want %s %v", text, r.label, r.score, label, score)
		}
	}
	st := sim.Stats()
	t.Logf("%d events: %d embedding requests, %d chat requests (%d refused json_schema)", n,
		st.Embeddings.Requests, st.Chat.Requests, st.Chat.Invalid)
	if st.Chat.Invalid != 1 {
		t.Errorf("json_schema was refused %d times, want once: the fallback is remembered", st.Chat.Invalid)
	}
}

// modernServer is the ClickHouse the compatibility tests store into: they
// exercise the API servers, so one ClickHouse, the modern one users run,
// is enough.
func modernServer(t *testing.T) testenv.ClickHouseServer {
	t.Helper()
	for _, srv := range testenv.ClickHouseServers(t) {
		if srv.Modern {
			return srv
		}
	}
	t.Fatal("no modern ClickHouse server configured")
	return testenv.ClickHouseServer{}
}

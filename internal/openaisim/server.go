package openaisim

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Server is an OpenAI-compatible HTTP server. Create it with New, serve
// Handler and Close it when done; it is safe for concurrent use.
type Server struct {
	cfg    Config
	log    *slog.Logger
	tok    *tokenCounter
	now    func() time.Time
	mux    *http.ServeMux
	emb    *endpoint
	chat   *endpoint
	models atomic.Int64
	health atomic.Int64
	stats  atomic.Int64
	status struct {
		tooMany atomic.Int64
	}
	inFlight      atomic.Int64
	maxConcurrent atomic.Int64

	store      *store
	batchStats batchCounters
	// workers counts the batch workers; Close stops and waits for them.
	workers sync.WaitGroup
}

// endpoint holds the runtime state of one simulated API endpoint.
type endpoint struct {
	name     string
	salt     uint64
	cfg      Endpoint
	limits   *limiter
	seq      atomic.Uint64
	counters endpointCounters

	stormMu    sync.Mutex
	stormUntil time.Time

	distinctMu sync.Mutex
	distinct   map[uint64]struct{}
}

// New returns a Server for cfg, which must pass Validate. A nil logger
// discards log output.
func New(cfg Config, logger *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("create server: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	tok, err := newTokenCounter()
	if err != nil {
		return nil, fmt.Errorf("create server: %w", err)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	s := &Server{cfg: cfg, log: logger, tok: tok, now: now, store: newStore()}
	start := now()
	s.emb = newEndpoint("embeddings", 0x656d62, cfg.Embeddings, cfg.TrackDistinct, start)
	s.chat = newEndpoint("chat", 0x63686174, cfg.Chat, cfg.TrackDistinct, start)

	mux := http.NewServeMux()
	if cfg.Quirks.AzureRoutes {
		s.azureRoutes(mux)
	} else {
		mux.HandleFunc("POST /v1/embeddings", s.track(s.handleEmbeddings))
		mux.HandleFunc("POST /v1/chat/completions", s.track(s.handleChat))
	}
	s.batchRoutes(mux)
	mux.HandleFunc("GET /v1/models", s.handleModels)
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.HandleFunc("GET /stats", s.handleStats)
	mux.HandleFunc("/", s.handleNotFound)
	s.mux = mux
	return s, nil
}

func newEndpoint(name string, salt uint64, cfg Endpoint, distinct bool, now time.Time) *endpoint {
	e := &endpoint{name: name, salt: salt, cfg: cfg, limits: newLimiter(cfg.RPM, cfg.TPM, cfg.Burst, now)}
	e.counters.faults = make([]atomic.Int64, len(Faults{}.list()))
	if distinct {
		e.distinct = make(map[uint64]struct{})
	}
	return e
}

// batchRoutes registers the Files and Batch APIs on mux.
func (s *Server) batchRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/files", s.handleUploadFile)
	mux.HandleFunc("GET /v1/files", s.handleListFiles)
	mux.HandleFunc("GET /v1/files/{id}", s.handleGetFile)
	mux.HandleFunc("GET /v1/files/{id}/content", s.handleFileContent)
	mux.HandleFunc("DELETE /v1/files/{id}", s.handleDeleteFile)
	mux.HandleFunc("POST /v1/batches", s.handleCreateBatch)
	mux.HandleFunc("GET /v1/batches", s.handleListBatches)
	mux.HandleFunc("GET /v1/batches/{id}", s.handleGetBatch)
	mux.HandleFunc("POST /v1/batches/{id}/cancel", s.handleCancelBatch)
}

// Handler returns the HTTP handler that serves the API.
func (s *Server) Handler() http.Handler { return s.mux }

// track counts requests in flight around h.
func (s *Server) track(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n := s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		raiseMax(&s.maxConcurrent, n)
		h(w, r)
	}
}

func raiseMax(m *atomic.Int64, n int64) {
	for {
		cur := m.Load()
		if n <= cur || m.CompareAndSwap(cur, n) {
			return
		}
	}
}

// draws holds the per-request random draws, reproducible for a seed.
type draws struct {
	rng *rand.Rand
}

func (e *endpoint) draws(seed uint64) draws {
	n := e.seq.Add(1)
	return draws{rng: rand.New(rand.NewPCG(seed^e.salt, n))} //nolint:gosec // Draws must be reproducible for a seed, not secret.
}

// storm reports whether a 429 storm is under way and how long it lasts.
func (e *endpoint) storm(now time.Time) (time.Duration, bool) {
	e.stormMu.Lock()
	defer e.stormMu.Unlock()
	if now.Before(e.stormUntil) {
		return e.stormUntil.Sub(now), true
	}
	return 0, false
}

func (e *endpoint) startStorm(now time.Time, d time.Duration) {
	e.stormMu.Lock()
	defer e.stormMu.Unlock()
	e.stormUntil = now.Add(d)
}

func (e *endpoint) countDistinct(texts []string) {
	if e.distinct == nil {
		return
	}
	e.distinctMu.Lock()
	defer e.distinctMu.Unlock()
	for _, t := range texts {
		e.distinct[hashText(t)] = struct{}{}
	}
	e.counters.distinct.Store(int64(len(e.distinct)))
}

// admit runs the checks every API request passes on arrival: storms, rate
// limits and the fault draw. It writes the response and returns false when
// the request must stop here; otherwise it returns the injected fault kind
// ("" for none) and the rate-limit headers to send.
func (s *Server) admit(w http.ResponseWriter, e *endpoint, d draws, model string, tokens int) (string, map[string]string, bool) {
	now := s.now()
	if s.cfg.QuotaExhausted {
		e.counters.rateLimited.Add(1)
		s.status.tooMany.Add(1)
		e.counters.tooMany.Add(1)
		writeError(w, http.StatusTooManyRequests, "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.", "insufficient_quota", "", "insufficient_quota")
		return "", nil, false
	}
	if wait, ok := e.storm(now); ok {
		e.counters.faults[faultIndex(FaultStorm)].Add(1)
		s.tooMany(w, e, wait, "requests", fmt.Sprintf("Rate limit reached for %s on requests per min (RPM): the service is shedding load. Please try again in %s.", model, formatReset(wait)), nil)
		return "", nil, false
	}
	lim := e.limits.take(now, tokens)
	if !lim.allowed {
		e.counters.rateLimited.Add(1)
		var msg string
		switch {
		case lim.tooLarge:
			msg = fmt.Sprintf("Request too large for %s on tokens per min (TPM): Limit %d, Requested %d. The input or output tokens must be reduced in order to run successfully.", model, e.limits.tpm, tokens)
		case lim.kind == "tokens":
			msg = fmt.Sprintf("Rate limit reached for %s on tokens per min (TPM): Limit %d, Requested %d. Please try again in %s.", model, e.limits.tpm, tokens, formatReset(lim.retryAfter))
		default:
			msg = fmt.Sprintf("Rate limit reached for %s on requests per min (RPM): Limit %d, Requested 1. Please try again in %s.", model, e.limits.rpm, formatReset(lim.retryAfter))
		}
		s.tooMany(w, e, lim.retryAfter, lim.kind, msg, lim.headers)
		return "", nil, false
	}
	fault := e.cfg.Faults.pick(d.rng.Float64())
	if fault == FaultStorm {
		e.startStorm(now, s.cfg.StormDuration)
		e.counters.faults[faultIndex(FaultStorm)].Add(1)
		s.log.Debug("starting 429 storm", "endpoint", e.name, "duration", s.cfg.StormDuration)
		s.tooMany(w, e, s.cfg.StormDuration, "requests", fmt.Sprintf("Rate limit reached for %s on requests per min (RPM): the service is shedding load. Please try again in %s.", model, formatReset(s.cfg.StormDuration)), lim.headers)
		return "", nil, false
	}
	return fault, s.prefixed(lim.headers), true
}

func (s *Server) tooMany(w http.ResponseWriter, e *endpoint, wait time.Duration, kind, msg string, headers map[string]string) {
	s.status.tooMany.Add(1)
	e.counters.tooMany.Add(1)
	h := http.Header{}
	setRetryAfter(h, wait)
	kv := make(map[string]string, len(headers)+2)
	for k, v := range headers {
		kv[k] = v
	}
	for k := range h {
		kv[k] = h.Get(k)
	}
	if s.cfg.Quirks.HeaderPrefix != "" {
		kv = s.prefixed(kv)
	}
	setHeaders(w.Header(), kv)
	writeError(w, http.StatusTooManyRequests, msg, kind, "", "rate_limit_exceeded")
}

// delay sleeps for the sampled latency plus the per-token part. It returns
// false when the client went away first.
func (s *Server) delay(ctx context.Context, e *endpoint, d draws, tokens int) bool {
	l := e.cfg.Latency
	var wait time.Duration
	if l.Median > 0 {
		wait = l.Median
		if l.P99 > l.Median {
			sigma := (math.Log(float64(l.P99)) - math.Log(float64(l.Median))) / z99
			wait = time.Duration(float64(l.Median) * math.Exp(sigma*d.rng.NormFloat64()))
		}
	}
	wait += time.Duration(tokens) * l.PerToken
	return sleep(ctx, wait)
}

// z99 is the standard normal quantile at 0.99.
const z99 = 2.3263478740408408

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// preFault applies the faults that replace the response entirely: server
// errors and hangs. It returns true when it answered the request.
func (s *Server) preFault(w http.ResponseWriter, r *http.Request, e *endpoint, d draws, fault string) bool {
	switch fault {
	case FaultServerError:
		e.counters.faults[faultIndex(FaultServerError)].Add(1)
		codes := []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}
		code := codes[d.rng.IntN(len(codes))]
		msg := "The server had an error while processing your request. Sorry about that!"
		if code == http.StatusServiceUnavailable {
			msg = "The engine is currently overloaded, please try again later."
		}
		writeError(w, code, msg, "server_error", "", "")
		return true
	case FaultTimeout:
		e.counters.faults[faultIndex(FaultTimeout)].Add(1)
		if sleep(r.Context(), s.cfg.MaxHang) {
			writeError(w, http.StatusGatewayTimeout, "The server timed out while processing your request.", "server_error", "", "timeout")
		}
		return true
	}
	return false
}

// writeBody writes a successful JSON body, applying the faults that damage
// it: truncation and invalid JSON.
func (s *Server) writeBody(w http.ResponseWriter, e *endpoint, fault string, headers map[string]string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		s.log.Error("encoding response", "endpoint", e.name, "err", err)
		writeError(w, http.StatusInternalServerError, "encode response", "server_error", "", "")
		return
	}
	switch fault {
	case FaultTruncated:
		e.counters.faults[faultIndex(FaultTruncated)].Add(1)
		body = body[:len(body)/2]
	case FaultInvalidJSON:
		e.counters.faults[faultIndex(FaultInvalidJSON)].Add(1)
		body = []byte("<html><body>502 upstream hiccup {\"object\": oops")
	}
	e.counters.succeeded.Add(1)
	h := w.Header()
	setHeaders(h, headers)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(body); err != nil {
		s.log.Debug("writing response", "endpoint", e.name, "err", err)
	}
}

func setHeaders(h http.Header, kv map[string]string) {
	for k, v := range kv {
		h.Set(k, v)
	}
}

// hashText returns the 64-bit FNV-1a hash of s.
func hashText(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64()
}

func (s *Server) handleModels(w http.ResponseWriter, _ *http.Request) {
	s.models.Add(1)
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	var names []string
	for name := range s.cfg.EmbeddingModels {
		names = append(names, name)
	}
	names = append(names, s.cfg.ChatModels...)
	slices.Sort(names)
	names = slices.Compact(names)
	data := make([]model, 0, len(names))
	for _, n := range names {
		data = append(data, model{ID: n, Object: "model", Created: 1700000000, OwnedBy: "openaisim"})
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	s.health.Add(1)
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleStats(w http.ResponseWriter, _ *http.Request) {
	s.stats.Add(1)
	writeJSON(w, http.StatusOK, s.Stats())
}

func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path), "invalid_request_error", "", "")
}

// lookupEmbeddingModel returns the native dimensions of model.
func (s *Server) lookupEmbeddingModel(model string) (int, bool) {
	if dims, ok := s.cfg.EmbeddingModels[model]; ok {
		return dims, true
	}
	if s.cfg.StrictModels {
		return 0, false
	}
	return DefaultDimensions, true
}

func (s *Server) knownChatModel(model string) bool {
	return !s.cfg.StrictModels || slices.Contains(s.cfg.ChatModels, model)
}

func requestID(d draws) string {
	return fmt.Sprintf("req_%016x", d.rng.Uint64())
}

// readJob reads a request body and parses it with parse. When either fails
// it counts an invalid request and answers 400 (or the parse error's
// status) with an OpenAI error body, and returns false.
func readJob[J any](s *Server, w http.ResponseWriter, r *http.Request, e *endpoint, parse func([]byte) (J, *requestError)) (J, bool) {
	var zero J
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		e.counters.invalid.Add(1)
		writeError(w, http.StatusBadRequest, fmt.Sprintf("read request body: %v", err), "invalid_request_error", "", "")
		return zero, false
	}
	job, rerr := parse(body)
	if rerr != nil {
		e.counters.invalid.Add(1)
		writeError(w, rerr.status, rerr.msg, "invalid_request_error", rerr.param, rerr.code)
		return zero, false
	}
	return job, true
}

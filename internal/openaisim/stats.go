package openaisim

import (
	"encoding/json"
	"net/http"
	"sync/atomic"
)

// Stats is a snapshot of the server counters, served as JSON by GET /stats.
type Stats struct {
	// Embeddings counts POST /v1/embeddings.
	Embeddings EndpointStats `json:"embeddings"`
	// Chat counts POST /v1/chat/completions.
	Chat EndpointStats `json:"chat"`
	// Models counts GET /v1/models.
	Models int64 `json:"models_requests"`
	// Health counts GET /healthz.
	Health int64 `json:"health_requests"`
	// StatsRequests counts GET /stats.
	StatsRequests int64 `json:"stats_requests"`
	// TooManyRequests counts every 429 answer, from limits and storms.
	TooManyRequests int64 `json:"too_many_requests"`
	// InFlight is the number of API requests being served now.
	InFlight int64 `json:"in_flight"`
	// MaxConcurrent is the highest number of API requests served at once.
	MaxConcurrent int64 `json:"max_concurrent"`
	// Batches counts POST /v1/batches that created a batch.
	Batches int64 `json:"batches"`
	// BatchRequests counts the requests of batches answered, apart from
	// the synchronous endpoints above.
	BatchRequests int64 `json:"batch_requests"`
	// BatchFailed counts the batch requests that landed in an error file.
	BatchFailed int64 `json:"batch_failed"`
	// BatchPromptTokens counts prompt tokens of answered batch requests.
	BatchPromptTokens int64 `json:"batch_prompt_tokens"`
	// BatchCompletionTokens counts completion tokens of batch chat answers.
	BatchCompletionTokens int64 `json:"batch_completion_tokens"`
	// BatchTokens is BatchPromptTokens plus BatchCompletionTokens.
	BatchTokens int64 `json:"batch_tokens"`
}

// EndpointStats holds the counters of one API endpoint.
type EndpointStats struct {
	// Requests counts every arrival, valid or not.
	Requests int64 `json:"requests"`
	// Succeeded counts 200 answers, including those with damaged bodies.
	Succeeded int64 `json:"succeeded"`
	// Invalid counts 400 and 404 answers to bad requests.
	Invalid int64 `json:"invalid"`
	// Inputs counts embeddings inputs, or chat sentiment items, of every
	// valid request, including those then refused by a limit, a storm or
	// a fault, so that retries of a text count again.
	Inputs int64 `json:"inputs"`
	// DistinctInputs counts distinct input texts when
	// Config.TrackDistinct is set.
	DistinctInputs int64 `json:"distinct_inputs"`
	// PromptTokens counts prompt tokens of every valid request, like
	// Inputs.
	PromptTokens int64 `json:"prompt_tokens"`
	// CompletionTokens counts completion tokens of chat answers.
	CompletionTokens int64 `json:"completion_tokens"`
	// RateLimited counts 429 answers from the RPM and TPM limits.
	RateLimited int64 `json:"rate_limited"`
	// TooManyRequests counts every 429 answer, from limits and storms.
	TooManyRequests int64 `json:"too_many_requests"`
	// Canceled counts requests whose client went away during the delay.
	Canceled int64 `json:"canceled"`
	// Faults counts injected faults by kind; for FaultStorm it counts
	// every request answered 429 because of a storm.
	Faults map[string]int64 `json:"faults"`
	// MaxConcurrent is the highest number of requests served at once.
	MaxConcurrent int64 `json:"max_concurrent"`
}

type endpointCounters struct {
	requests, succeeded, invalid, inputs, distinct atomic.Int64
	promptTokens, completionTokens                 atomic.Int64
	rateLimited, tooMany, canceled                 atomic.Int64
	inFlight, maxConcurrent                        atomic.Int64
	faults                                         []atomic.Int64
}

func faultIndex(kind string) int {
	for i, p := range (Faults{}).list() {
		if p.kind == kind {
			return i
		}
	}
	panic("openaisim: unknown fault kind " + kind)
}

func (c *endpointCounters) snapshot() EndpointStats {
	st := EndpointStats{
		Requests:         c.requests.Load(),
		Succeeded:        c.succeeded.Load(),
		Invalid:          c.invalid.Load(),
		Inputs:           c.inputs.Load(),
		DistinctInputs:   c.distinct.Load(),
		PromptTokens:     c.promptTokens.Load(),
		CompletionTokens: c.completionTokens.Load(),
		RateLimited:      c.rateLimited.Load(),
		TooManyRequests:  c.tooMany.Load(),
		Canceled:         c.canceled.Load(),
		MaxConcurrent:    c.maxConcurrent.Load(),
		Faults:           make(map[string]int64, len(c.faults)),
	}
	for i, p := range (Faults{}).list() {
		st.Faults[p.kind] = c.faults[i].Load()
	}
	return st
}

// begin counts an arrival and returns the function that ends it.
func (c *endpointCounters) begin() func() {
	c.requests.Add(1)
	raiseMax(&c.maxConcurrent, c.inFlight.Add(1))
	return func() { c.inFlight.Add(-1) }
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Embeddings:      s.emb.counters.snapshot(),
		Chat:            s.chat.counters.snapshot(),
		Models:          s.models.Load(),
		Health:          s.health.Load(),
		StatsRequests:   s.stats.Load(),
		TooManyRequests: s.status.tooMany.Load(),
		InFlight:        s.inFlight.Load(),
		MaxConcurrent:   s.maxConcurrent.Load(),

		Batches:               s.batchStats.batches.Load(),
		BatchRequests:         s.batchStats.requests.Load(),
		BatchFailed:           s.batchStats.failed.Load(),
		BatchPromptTokens:     s.batchStats.promptTokens.Load(),
		BatchCompletionTokens: s.batchStats.completionTokens.Load(),
		BatchTokens:           s.batchStats.promptTokens.Load() + s.batchStats.completionTokens.Load(),
	}
}

// apiError is the error object of the OpenAI error JSON shape.
type apiError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// writeError writes {"error":{...}} with status code; empty param and
// errCode become null.
func writeError(w http.ResponseWriter, code int, msg, typ, param, errCode string) {
	writeJSON(w, code, map[string]apiError{"error": {Message: msg, Type: typ, Param: optional(param), Code: optional(errCode)}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		body = []byte(`{"error":{"message":"encode response","type":"server_error","param":null,"code":null}}`)
		code = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

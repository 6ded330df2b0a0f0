// Package openaisim implements an OpenAI-compatible HTTP server for tests and
// benchmarks. It answers POST /v1/embeddings with deterministic unit-norm
// vectors derived from a hash of each input, POST /v1/chat/completions with
// deterministic sentiment results for a JSON batch protocol, GET /v1/models,
// GET /healthz and GET /stats. It can add lognormal latency, enforce
// per-minute request and token limits like the real API, and inject faults
// (server errors, hangs, truncated or invalid bodies, wrong result counts,
// bad values and storms of 429 responses) with probabilities that are
// reproducible for a given seed.
//
// It also serves the Files and Batch APIs the way the real API does:
// POST /v1/files (multipart, purpose "batch", at most 200 MB), GET
// /v1/files, GET /v1/files/{id}, GET /v1/files/{id}/content, DELETE
// /v1/files/{id}, POST /v1/batches (endpoint "/v1/embeddings" or
// "/v1/chat/completions", completion_window "24h"), GET /v1/batches (limit
// and after), GET /v1/batches/{id} and POST /v1/batches/{id}/cancel. A
// batch input file holds at most 50,000 JSONL requests with unique
// custom_ids; a line that is not JSON, lacks a custom_id, repeats one, is
// not POST or names another url fails the batch with errors.data. Each
// request is answered by the same code as the synchronous endpoint, without
// its latency, limits and faults; answers land in a batch_output file, in
// an order shuffled by Config.Seed, and failed requests (Batch.FailureRate,
// invalid bodies, Batch.ExpireFraction) in the error file. A batch goes
// validating, in_progress, finalizing and completed once
// Batch.CompletionDelay has passed by the clock of Config.Now, which Stats
// counts apart from synchronous requests (BatchRequests, BatchTokens).
// Close stops the batch workers.
package openaisim

import (
	"errors"
	"fmt"
	"time"
)

// Limits of the real embeddings API that the server enforces.
const (
	// MaxEmbeddingInputs is the largest number of inputs in one embeddings
	// request.
	MaxEmbeddingInputs = 2048
	// MaxTokensPerInput is the largest number of tokens in one embeddings
	// input.
	MaxTokensPerInput = 8192
	// MaxTokensPerRequest is the largest total number of tokens in one
	// embeddings request.
	MaxTokensPerRequest = 300_000
	// DefaultDimensions is the native vector size of an embeddings model
	// that the configuration does not name.
	DefaultDimensions = 1536
)

// Config holds every option of a Server. Start from DefaultConfig.
type Config struct {
	// EmbeddingModels maps each embeddings model name to its native number
	// of dimensions.
	EmbeddingModels map[string]int
	// ChatModels lists the chat model names.
	ChatModels []string
	// StrictModels makes requests for models that are not configured fail
	// with 404 model_not_found; otherwise unknown embeddings models get
	// DefaultDimensions and unknown chat models are accepted.
	StrictModels bool
	// Embeddings configures POST /v1/embeddings.
	Embeddings Endpoint
	// Chat configures POST /v1/chat/completions.
	Chat Endpoint
	// Seed makes latency samples and fault decisions reproducible: the n-th
	// request to an endpoint gets the same draws for the same seed.
	Seed uint64
	// StormDuration is how long a 429 storm lasts once it starts.
	StormDuration time.Duration
	// MaxHang bounds how long an injected timeout holds a request when the
	// client does not give up first.
	MaxHang time.Duration
	// MaxBodyBytes bounds the size of a request body.
	MaxBodyBytes int64
	// TrackDistinct counts distinct input texts in Stats, at a cost of
	// about 8 bytes of memory per distinct text.
	TrackDistinct bool
	// Quirks are the departures from the OpenAI API of the server
	// imitated; see ProfileQuirks. The zero value is the OpenAI API.
	Quirks Quirks
	// QuotaExhausted answers every API request 429 insufficient_quota, as
	// an account without credit does.
	QuotaExhausted bool
	// Batch configures the Files and Batch APIs.
	Batch Batch
	// Now returns the current time for rate limits, storms and batches;
	// nil means time.Now. Tests inject a fake clock here.
	Now func() time.Time
}

// Limits of the real Files and Batch APIs that the server enforces.
const (
	// MaxBatchFileBytes is the largest batch input file.
	MaxBatchFileBytes = 200 << 20
	// MaxBatchRequests is the largest number of requests in one batch
	// input file.
	MaxBatchRequests = 50_000
)

// Batch configures POST /v1/files and /v1/batches.
type Batch struct {
	// CompletionDelay is the time from creating a batch to its end (by the
	// clock of Config.Now); 0 ends it as soon as its requests are answered.
	CompletionDelay time.Duration
	// FailureRate is the probability that a request of a batch fails with
	// a 500 answer in the error file.
	FailureRate float64
	// ExpireFraction, when positive, makes every batch expire after that
	// fraction of its requests is answered: the rest land in the error
	// file with code batch_expired.
	ExpireFraction float64
	// MaxRequestsPerFile bounds the requests of a batch input file; 0
	// means MaxBatchRequests.
	MaxRequestsPerFile int
	// MaxFileBytes bounds the size of an uploaded file; 0 means
	// MaxBatchFileBytes.
	MaxFileBytes int64
}

// DefaultBatch returns the batch settings of DefaultConfig: batches end
// two seconds after they are created, without failures.
func DefaultBatch() Batch {
	return Batch{CompletionDelay: 2 * time.Second, MaxRequestsPerFile: MaxBatchRequests, MaxFileBytes: MaxBatchFileBytes}
}

func (b Batch) validate() error {
	switch {
	case b.CompletionDelay < 0:
		return fmt.Errorf("completion delay %v is negative", b.CompletionDelay)
	case !(b.FailureRate >= 0 && b.FailureRate <= 1):
		return fmt.Errorf("failure rate %v outside [0,1]", b.FailureRate)
	case !(b.ExpireFraction >= 0 && b.ExpireFraction < 1):
		return fmt.Errorf("expire fraction %v outside [0,1)", b.ExpireFraction)
	case b.MaxRequestsPerFile < 0 || b.MaxRequestsPerFile > MaxBatchRequests:
		return fmt.Errorf("max requests per file %d outside [0,%d]", b.MaxRequestsPerFile, MaxBatchRequests)
	case b.MaxFileBytes < 0 || b.MaxFileBytes > MaxBatchFileBytes:
		return fmt.Errorf("max file bytes %d outside [0,%d]", b.MaxFileBytes, MaxBatchFileBytes)
	}
	return nil
}

func (b Batch) maxRequests() int {
	if b.MaxRequestsPerFile == 0 {
		return MaxBatchRequests
	}
	return b.MaxRequestsPerFile
}

func (b Batch) maxBytes() int64 {
	if b.MaxFileBytes == 0 {
		return MaxBatchFileBytes
	}
	return b.MaxFileBytes
}

// Endpoint configures latency, rate limits and faults of one endpoint.
type Endpoint struct {
	// Latency is the added response delay.
	Latency Latency
	// RPM is the request limit per minute; 0 means unlimited.
	RPM int
	// TPM is the token limit per minute; 0 means unlimited.
	TPM int
	// Burst is how much of a minute's budget the limits let through at
	// once; 0 means a full minute, as the real API does.
	Burst time.Duration
	// Faults holds the probabilities of injected faults.
	Faults Faults
}

// Latency describes a lognormal delay distribution plus a per-token part.
type Latency struct {
	// Median is the median delay; 0 disables the lognormal part.
	Median time.Duration
	// P99 is the 99th percentile of the delay; 0 or a value not above
	// Median makes the delay constant at Median.
	P99 time.Duration
	// PerToken is added once per token of the request (prompt and
	// completion tokens for chat).
	PerToken time.Duration
}

// Faults holds the probabilities, each in [0,1] and together at most 1, of
// the faults injected into a request. At most one fault hits a request.
type Faults struct {
	// ServerError answers 500, 502 or 503 with an error body.
	ServerError float64
	// Timeout holds the request until the client gives up or MaxHang
	// passes.
	Timeout float64
	// Truncated answers 200 with the first half of the body.
	Truncated float64
	// InvalidJSON answers 200 with a body that is not JSON.
	InvalidJSON float64
	// WrongCount drops one embedding, or drops or adds one chat result.
	WrongCount float64
	// BadValues returns vectors of the wrong dimension, or a chat score
	// outside [-1,1] or an unknown label.
	BadValues float64
	// Storm starts a 429 storm: for Config.StormDuration every request to
	// the endpoint gets 429 with Retry-After.
	Storm float64
}

// DefaultConfig returns a configuration with the usual models, no latency,
// no limits and no faults.
func DefaultConfig() Config {
	return Config{
		EmbeddingModels: map[string]int{
			"text-embedding-3-small": 1536,
			"text-embedding-3-large": 3072,
			"text-embedding-ada-002": 1536,
		},
		ChatModels:    []string{"gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1-nano"},
		StormDuration: 10 * time.Second,
		MaxHang:       60 * time.Second,
		MaxBodyBytes:  64 << 20,
		Batch:         DefaultBatch(),
	}
}

// Validate reports the first invalid option.
func (c Config) Validate() error {
	for name, dims := range c.EmbeddingModels {
		if name == "" {
			return errors.New("validate embedding models: empty model name")
		}
		if dims < 1 {
			return fmt.Errorf("validate embedding model %q: dimensions %d below 1", name, dims)
		}
	}
	for _, name := range c.ChatModels {
		if name == "" {
			return errors.New("validate chat models: empty model name")
		}
	}
	if err := c.Embeddings.validate(); err != nil {
		return fmt.Errorf("validate embeddings endpoint: %w", err)
	}
	if err := c.Chat.validate(); err != nil {
		return fmt.Errorf("validate chat endpoint: %w", err)
	}
	if c.StormDuration < 0 {
		return fmt.Errorf("validate storm duration: %v is negative", c.StormDuration)
	}
	if (c.Embeddings.Faults.Storm > 0 || c.Chat.Faults.Storm > 0) && c.StormDuration == 0 {
		return errors.New("validate storm duration: storms need a positive duration")
	}
	if c.MaxHang < 0 {
		return fmt.Errorf("validate max hang: %v is negative", c.MaxHang)
	}
	if c.MaxBodyBytes < 1 {
		return fmt.Errorf("validate max body bytes: %d below 1", c.MaxBodyBytes)
	}
	if err := c.Batch.validate(); err != nil {
		return fmt.Errorf("validate batch: %w", err)
	}
	return nil
}

func (e Endpoint) validate() error {
	l := e.Latency
	if l.Median < 0 || l.P99 < 0 || l.PerToken < 0 {
		return errors.New("latency durations must not be negative")
	}
	if e.RPM < 0 || e.TPM < 0 {
		return errors.New("rate limits must not be negative")
	}
	sum := 0.0
	for _, p := range e.Faults.list() {
		if p.prob < 0 || p.prob > 1 || p.prob != p.prob {
			return fmt.Errorf("fault %s probability %v outside [0,1]", p.kind, p.prob)
		}
		sum += p.prob
	}
	if sum > 1+1e-9 {
		return fmt.Errorf("fault probabilities add up to %v, above 1", sum)
	}
	return nil
}

// Fault kinds as they appear in Stats.
const (
	FaultServerError = "5xx"
	FaultTimeout     = "timeout"
	FaultTruncated   = "truncated"
	FaultInvalidJSON = "invalid_json"
	FaultWrongCount  = "wrong_count"
	FaultBadValues   = "bad_values"
	FaultStorm       = "429_storm"
)

type faultProb struct {
	kind string
	prob float64
}

func (f Faults) list() []faultProb {
	return []faultProb{
		{FaultServerError, f.ServerError},
		{FaultTimeout, f.Timeout},
		{FaultTruncated, f.Truncated},
		{FaultInvalidJSON, f.InvalidJSON},
		{FaultWrongCount, f.WrongCount},
		{FaultBadValues, f.BadValues},
		{FaultStorm, f.Storm},
	}
}

// pick maps a uniform draw u in [0,1) to a fault kind, or "" for none.
func (f Faults) pick(u float64) string {
	acc := 0.0
	for _, p := range f.list() {
		acc += p.prob
		if p.prob > 0 && u < acc {
			return p.kind
		}
	}
	return ""
}

package llm

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	openai "github.com/sashabaranov/go-openai"

	"github.com/textpulse/textpulse/processor"
	"github.com/textpulse/textpulse/processor/enrich"
)

// Encoding formats of EmbeddingConfig.EncodingFormat.
const (
	// EncodingFloat asks for vectors as JSON arrays of numbers.
	EncodingFloat = "float"
	// EncodingBase64 asks for vectors as base64 of little-endian float32,
	// about a quarter of the response size of EncodingFloat.
	EncodingBase64 = "base64"
)

// EmbeddingConfig configures the embedding stage.
type EmbeddingConfig struct {
	EndpointConfig `koanf:",squash"`
	// MaxInputs is the most texts in one request; the API allows 2048.
	MaxInputs int `koanf:"max_inputs"`
	// MaxRequestTokens is the most estimated tokens in one request; the
	// API allows 300000 summed over the inputs.
	MaxRequestTokens int `koanf:"max_request_tokens"`
	// MaxInputTokens is the most estimated tokens of one text; longer
	// texts are cut by Truncate, keeping their beginning.
	MaxInputTokens int `koanf:"max_input_tokens"`
	// Dimensions asks the model for shorter vectors; 0 is the model's
	// default.
	Dimensions int `koanf:"dimensions"`
	// EncodingFormat is "float" or "base64".
	EncodingFormat string `koanf:"encoding_format"`
	// CacheSize is how many vectors the content-hash cache keeps; 0
	// disables it. A vector of 1536 dimensions takes about 6 KiB.
	CacheSize int `koanf:"cache_size"`
	// CacheMaxBytes bounds the memory of the cache's vectors (estimated);
	// the least recently used ones go first. 0 bounds the entries only.
	CacheMaxBytes int64 `koanf:"cache_max_bytes"`
	// OnFailure is the failure policy; see FailurePolicy.
	OnFailure FailurePolicy `koanf:"on_failure"`
}

// DefaultEmbeddingConfig returns the embedding defaults: text-embedding-3-small
// on the OpenAI API, base64 vectors, and the "skip" policy, so that a flaky
// provider does not stall ingestion (rows without a vector are flagged in
// status and failed_stages and can be re-enriched later; use "retry" when
// completeness matters more than freshness).
func DefaultEmbeddingConfig() EmbeddingConfig {
	return EmbeddingConfig{
		EndpointConfig:   defaultEndpointConfig(string(openai.SmallEmbedding3), 16, 4),
		MaxInputs:        2048,
		MaxRequestTokens: 250000,
		MaxInputTokens:   8191,
		EncodingFormat:   EncodingBase64,
		CacheSize:        100000,
		CacheMaxBytes:    128 << 20,
		OnFailure:        PolicySkip,
	}
}

// Validate checks the embedding configuration.
func (c EmbeddingConfig) Validate() error {
	errs := []error{c.EndpointConfig.Validate()}
	if c.MaxInputs < 1 || c.MaxInputs > 2048 {
		errs = append(errs, fmt.Errorf("max_inputs %d: must be in [1, 2048]", c.MaxInputs))
	}
	if c.MaxRequestTokens < 1 || c.MaxRequestTokens > 300000 {
		errs = append(errs, fmt.Errorf("max_request_tokens %d: must be in [1, 300000]", c.MaxRequestTokens))
	}
	if c.MaxInputTokens < 1 || c.MaxInputTokens > c.MaxRequestTokens {
		errs = append(errs, fmt.Errorf("max_input_tokens %d: must be in [1, max_request_tokens]", c.MaxInputTokens))
	}
	if c.Dimensions < 0 {
		errs = append(errs, fmt.Errorf("dimensions %d: must not be negative", c.Dimensions))
	}
	if c.EncodingFormat != EncodingFloat && c.EncodingFormat != EncodingBase64 {
		errs = append(errs, fmt.Errorf("encoding_format %q: must be float or base64", c.EncodingFormat))
	}
	if c.CacheMaxBytes < 0 {
		errs = append(errs, fmt.Errorf("cache_max_bytes %d: must not be negative", c.CacheMaxBytes))
	}
	if c.CacheSize < 0 {
		errs = append(errs, fmt.Errorf("cache_size %d: must not be negative", c.CacheSize))
	}
	errs = append(errs, c.OnFailure.Validate())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("embedding config: %w", err)
	}
	return nil
}

// EmbeddingStage stores an embedding vector of each record's text in
// Record.Embedding, with the model name in Record.EmbeddingModel.
//
// It packs the distinct texts of a batch that are not cached into requests
// of at most MaxInputs texts and MaxRequestTokens estimated tokens, sent
// concurrently up to Concurrency requests at once over all batches. A
// request the endpoint refuses for its content (a 4xx other than 401, 403,
// 404, 408 and 429) is split in halves down to single texts, so that only
// the offending texts fail. Vectors are accepted as floats or base64
// whatever EncodingFormat asked, and an endpoint that refuses base64 gets
// floats from then on. A failure that holds for every request (a bad key,
// an unknown model, unsupported dimensions, an exhausted quota) ends the
// attempt for the whole batch. NewEmbeddingBatchStage returns one that goes
// through the Batch API instead. It is safe for concurrent use.
type EmbeddingStage struct {
	cfg    EmbeddingConfig
	c      *client
	e      *enrich.Engine[[]float32]
	a      *api[[]float32]
	format *modes
}

// NewEmbeddingStage returns an embedding stage; its metrics are registered
// on reg.
func NewEmbeddingStage(cfg EmbeddingConfig, log *slog.Logger, reg prometheus.Registerer, opts ...Option) (*EmbeddingStage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	const name = "embedding"
	m, c, tr, err := newStageParts(name, cfg.EndpointConfig, log, reg)
	if err != nil {
		return nil, fmt.Errorf("create embedding stage: %w", err)
	}
	s := &EmbeddingStage{cfg: cfg, c: c, format: embeddingModes(cfg, m, log)}
	s.a = &api[[]float32]{
		name:     name,
		cfg:      cfg.EndpointConfig,
		m:        m,
		health:   newHealth(name, m, log),
		truncate: func(text string) string { return tr.truncate(text, cfg.MaxInputTokens) },
		solve:    s.solve,
		set:      embeddingSetter(cfg.Model),
	}
	if s.e, err = newEngine(s.a, cfg.OnFailure, cfg.CacheSize, cfg.CacheMaxBytes, embeddingScope(cfg), log, reg, opts); err != nil {
		return nil, fmt.Errorf("create embedding stage: %w", err)
	}
	return s, nil
}

// NewEmbeddingBatchStage returns an embedding stage that goes through the
// Batch API of cfg's endpoint (provider "batch" in the stage metrics),
// with the same name, results, cache scope and request packing as
// NewEmbeddingStage: each attempt packs the texts by MaxInputs and
// MaxRequestTokens into requests written to JSONL input files within bc's
// limits, one batch per file, and waits for the batches to end (see
// BatchConfig), so that Enrich may take up to bc.MaxWait. Vectors are
// checked as the synchronous stage checks them, floats or base64. A
// batch request refused for its encoding_format moves to floats for good,
// as the synchronous stage does, and its texts are submitted again. A
// request the batch answers with an error, or not at all (an expired or
// cancelled batch), fails its texts with a *RequestError: retryable for
// 5xx, 408, 429 and no answer, not for other 4xx; a batch whose input
// fails validation fails all its texts for good. Texts with a retryable
// failure are submitted again in a new batch by the engine, up to
// MaxAttempts attempts (any number under the retry policy). Its metrics
// are registered on reg.
func NewEmbeddingBatchStage(cfg EmbeddingConfig, bc BatchConfig, log *slog.Logger, reg prometheus.Registerer) (*EmbeddingStage, error) {
	if err := errors.Join(cfg.Validate(), bc.Validate()); err != nil {
		return nil, err
	}
	const name = "embedding"
	m, c, tr, err := newStageParts(name, cfg.EndpointConfig, log, reg)
	if err != nil {
		return nil, fmt.Errorf("create embedding batch stage: %w", err)
	}
	s := &EmbeddingStage{cfg: cfg, c: c, format: embeddingModes(cfg, m, log)}
	p := &batchAPI[[]float32]{
		name: name, cfg: bc, c: c, m: m, log: log, endpoint: openai.BatchEndpointEmbeddings,
		modes: s.format, modeParam: "encoding_format",
		truncate: func(text string) string { return tr.truncate(text, cfg.MaxInputTokens) },
		group: func(items []*enrich.Item[[]float32]) [][]*enrich.Item[[]float32] {
			return pack(items, cfg.MaxInputs, cfg.MaxRequestTokens)
		},
		body: func(items []*enrich.Item[[]float32], format string) (any, error) {
			req, _ := newEmbeddingRequest(cfg, items, format)
			return req, nil
		},
		decode: func(body []byte, n int) ([][]float32, openai.Usage, error) {
			return decodeEmbeddings(body, n, cfg.Dimensions)
		},
		set: embeddingSetter(cfg.Model),
	}
	if s.e, err = newBatchEngine(p, cfg.EndpointConfig, cfg.OnFailure, cfg.CacheSize, cfg.CacheMaxBytes, embeddingScope(cfg), log, reg); err != nil {
		return nil, fmt.Errorf("create embedding batch stage: %w", err)
	}
	return s, nil
}

// embeddingScope is the cache scope of the embedding stage: what
// determines a vector besides the text.
func embeddingScope(cfg EmbeddingConfig) string {
	return fmt.Sprintf("%s\x00%d", cfg.Model, cfg.Dimensions)
}

// embeddingModes returns the encodings of the embedding stage: the one
// configured, then floats for an endpoint that refuses it.
func embeddingModes(cfg EmbeddingConfig, m *metrics, log *slog.Logger) *modes {
	return newModes("embedding", "encoding", []string{cfg.EncodingFormat, EncodingFloat}, true, m, log)
}

// embeddingSetter returns the Set of the embedding stage for model.
func embeddingSetter(model string) func(r *processor.Record, v []float32) {
	return func(r *processor.Record, v []float32) { r.Embedding, r.EmbeddingModel = v, model }
}

// newStageParts returns the metrics, client and truncator of an API stage.
func newStageParts(name string, ep EndpointConfig, log *slog.Logger, reg prometheus.Registerer) (*metrics, *client, *truncator, error) {
	m := newMetrics(name, reg)
	c, err := newClient(name, ep, m, log)
	if err != nil {
		return nil, nil, nil, err
	}
	tr, err := newTruncator()
	if err != nil {
		return nil, nil, nil, err
	}
	return m, c, tr, nil
}

// Name implements processor.Stage.
func (s *EmbeddingStage) Name() string { return s.e.Name() }

// ResultBytes implements processor.ResultSizer: the size of one vector,
// from Dimensions or, when that is 0, the model's native size
// (text-embedding-3-large 3072, otherwise 1536).
func (s *EmbeddingStage) ResultBytes() int {
	dims := s.cfg.Dimensions
	if dims == 0 {
		dims = 1536
		if strings.Contains(s.cfg.Model, "3-large") {
			dims = 3072
		}
	}
	return 4 * dims
}

// Enrich implements processor.Stage. Vectors may be shared between records
// with the same text and with the cache; they must not be modified.
func (s *EmbeddingStage) Enrich(ctx context.Context, b *processor.Batch) error {
	return s.e.Enrich(ctx, b)
}

// solve packs items into requests and sends them; see api.dispatch.
func (s *EmbeddingStage) solve(ctx context.Context, items []*enrich.Item[[]float32]) {
	s.a.dispatch(ctx, pack(items, s.cfg.MaxInputs, s.cfg.MaxRequestTokens), s.send)
}

// pack cuts items, in order, into requests of at most maxInputs items and
// maxTokens estimated tokens; an item over maxTokens gets a request alone.
func pack[R any](items []*enrich.Item[R], maxInputs, maxTokens int) [][]*enrich.Item[R] {
	var out [][]*enrich.Item[R]
	start, tokens := 0, 0
	for i, it := range items {
		if i > start && (i-start >= maxInputs || tokens+it.Tokens > maxTokens) {
			out = append(out, items[start:i:i])
			start, tokens = i, 0
		}
		tokens += it.Tokens
	}
	if start < len(items) {
		out = append(out, items[start:])
	}
	return out
}

// send embeds items with one request. When the endpoint refuses base64
// (a capability 400 naming encoding_format), the stage switches to floats
// for good and sends again.
func (s *EmbeddingStage) send(ctx context.Context, items []*enrich.Item[[]float32], invalidAttempts int) (int, error) {
	total := 0
	for {
		format := s.format.current()
		req, tokens := newEmbeddingRequest(s.cfg, items, format)
		attempts, err := s.c.do(ctx, call{
			op:              "create embeddings",
			inputs:          len(items),
			tokens:          tokens,
			invalidAttempts: invalidAttempts,
			embedFormat:     format,
			send: func(ctx context.Context) (openai.Usage, error) {
				resp, err := s.c.api.CreateEmbeddings(ctx, req)
				if err != nil {
					return resp.Usage, err
				}
				vecs, err := checkEmbeddings(resp, len(items), s.cfg.Dimensions)
				if err != nil {
					return resp.Usage, err
				}
				for i, it := range items {
					it.Result, it.Done = vecs[i], true
				}
				return resp.Usage, nil
			},
		})
		total += attempts
		var re *RequestError
		if errors.As(err, &re) && re.Unsupported == "encoding_format" && s.format.fallBack(format) {
			continue
		}
		return total, err
	}
}

// newEmbeddingRequest builds the embeddings request of the texts of items in
// the encoding format, as both the synchronous and the batch path send it,
// and returns it with the estimated tokens of its inputs.
func newEmbeddingRequest(cfg EmbeddingConfig, items []*enrich.Item[[]float32], format string) (openai.EmbeddingRequestStrings, int) {
	input := make([]string, len(items))
	tokens := 0
	for i, it := range items {
		input[i] = it.Text
		tokens += it.Tokens
	}
	return openai.EmbeddingRequestStrings{
		Input:          input,
		Model:          openai.EmbeddingModel(cfg.Model),
		EncodingFormat: openai.EmbeddingEncodingFormat(format),
		Dimensions:     cfg.Dimensions,
	}, tokens
}

// decodeEmbeddings parses the body of an embeddings answer to n inputs,
// with vectors as floats or base64 whatever was asked, and checks it as
// checkEmbeddings does. It returns the vectors in input order and the
// usage the body reports.
func decodeEmbeddings(body []byte, n, dims int) ([][]float32, openai.Usage, error) {
	floats, _, err := convertEmbeddings(body, EncodingFloat)
	if err != nil {
		return nil, openai.Usage{}, fmt.Errorf("%w: %w", ErrInvalidAnswer, err)
	}
	var resp openai.EmbeddingResponse
	if err := json.Unmarshal(floats, &resp); err != nil {
		return nil, openai.Usage{}, fmt.Errorf("%w: decode embeddings response: %w", ErrInvalidAnswer, err)
	}
	vecs, err := checkEmbeddings(resp, n, dims)
	return vecs, resp.Usage, err
}

// checkEmbeddings matches the vectors of resp to the n inputs by index;
// with dims positive every vector must have that many dimensions.
func checkEmbeddings(resp openai.EmbeddingResponse, n, dims int) ([][]float32, error) {
	if len(resp.Data) != n {
		return nil, fmt.Errorf("%w: %d embeddings for %d inputs", ErrInvalidAnswer, len(resp.Data), n)
	}
	vecs := make([][]float32, n)
	for _, d := range resp.Data {
		switch {
		case d.Index < 0 || d.Index >= n:
			return nil, fmt.Errorf("%w: embedding index %d out of range", ErrInvalidAnswer, d.Index)
		case vecs[d.Index] != nil:
			return nil, fmt.Errorf("%w: embedding index %d repeated", ErrInvalidAnswer, d.Index)
		case len(d.Embedding) == 0:
			return nil, fmt.Errorf("%w: embedding %d is empty", ErrInvalidAnswer, d.Index)
		case dims > 0 && len(d.Embedding) != dims:
			return nil, fmt.Errorf("%w: embedding %d has %d dimensions, want %d",
				ErrInvalidAnswer, d.Index, len(d.Embedding), dims)
		}
		vecs[d.Index] = d.Embedding
	}
	return vecs, nil
}

// convertEmbeddings rewrites an embeddings response body whose vectors are
// not in want ("float" or "base64") into want, so that an answer in either
// encoding is accepted whatever was asked: servers such as
// llama-cpp-python's and older Ollama ignore encoding_format and answer
// floats. It reports whether it changed body; a body it cannot read is
// left to the decoder to report.
func convertEmbeddings(body []byte, want string) ([]byte, bool, error) {
	got, ok := firstEmbeddingKind(body)
	if !ok || (got == '[') == (want == EncodingFloat) {
		return body, false, nil
	}
	var resp map[string]json.RawMessage
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, false, fmt.Errorf("decode embeddings response: %w", err)
	}
	var data []map[string]json.RawMessage
	if err := json.Unmarshal(resp["data"], &data); err != nil {
		return nil, false, fmt.Errorf("decode embeddings data: %w", err)
	}
	for i, d := range data {
		raw, err := recodeEmbedding(d["embedding"], want)
		if err != nil {
			return nil, false, fmt.Errorf("embedding %d: %w", i, err)
		}
		d["embedding"] = raw
	}
	var err error
	if resp["data"], err = json.Marshal(data); err != nil {
		return nil, false, fmt.Errorf("encode embeddings data: %w", err)
	}
	out, err := json.Marshal(resp)
	if err != nil {
		return nil, false, fmt.Errorf("encode embeddings response: %w", err)
	}
	return out, true, nil
}

// firstEmbeddingKind returns the first byte of the value of the first
// "embedding" key of body: '[' for floats, '"' for base64.
func firstEmbeddingKind(body []byte) (byte, bool) {
	key := []byte(`"embedding"`)
	for rest := body; ; {
		i := bytes.Index(rest, key)
		if i < 0 {
			return 0, false
		}
		rest = bytes.TrimLeft(rest[i+len(key):], " \t\r\n")
		if len(rest) > 0 && rest[0] == ':' {
			rest = bytes.TrimLeft(rest[1:], " \t\r\n")
			if len(rest) == 0 {
				return 0, false
			}
			return rest[0], true
		}
	}
}

// recodeEmbedding turns one vector, a JSON array of numbers or a base64
// string of little-endian float32, into want.
func recodeEmbedding(raw json.RawMessage, want string) (json.RawMessage, error) {
	var vec []float32
	if err := json.Unmarshal(raw, &vec); err != nil {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("%w: neither floats nor a base64 string", ErrInvalidAnswer)
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b)%4 != 0 {
			return nil, fmt.Errorf("%w: bad base64 vector", ErrInvalidAnswer)
		}
		vec = make([]float32, len(b)/4)
		for i := range vec {
			vec[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	}
	if want == EncodingFloat {
		return json.Marshal(vec)
	}
	b := make([]byte, 4*len(vec))
	for i, f := range vec {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return json.Marshal(base64.StdEncoding.EncodeToString(b))
}

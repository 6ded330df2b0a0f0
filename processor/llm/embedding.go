package llm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	openai "github.com/sashabaranov/go-openai"

	"github.com/textpulse/textpulse/processor"
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
		EndpointConfig:   defaultEndpointConfig(string(openai.SmallEmbedding3), 4),
		MaxInputs:        2048,
		MaxRequestTokens: 250000,
		MaxInputTokens:   8191,
		EncodingFormat:   EncodingBase64,
		CacheSize:        100000,
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
// the offending texts fail. It is safe for concurrent use.
type EmbeddingStage struct {
	cfg EmbeddingConfig
	c   *client
	e   *engine[[]float32]
}

// NewEmbeddingStage returns an embedding stage; its metrics are registered
// on reg.
func NewEmbeddingStage(cfg EmbeddingConfig, log *slog.Logger, reg prometheus.Registerer) (*EmbeddingStage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	const name = "embedding"
	m := newMetrics(name, reg)
	c, err := newClient(name, cfg.EndpointConfig, m, log)
	if err != nil {
		return nil, fmt.Errorf("create embedding stage: %w", err)
	}
	ch, err := newCache[[]float32](cfg.CacheSize, m)
	if err != nil {
		return nil, fmt.Errorf("create embedding cache: %w", err)
	}
	s := &EmbeddingStage{cfg: cfg, c: c}
	s.e = &engine[[]float32]{
		name:    name,
		policy:  cfg.OnFailure,
		cfg:     cfg.EndpointConfig,
		cache:   ch,
		m:       m,
		log:     log,
		prepare: func(text string) string { return Truncate(text, cfg.MaxInputTokens) },
		key:     func(text string) cacheKey { return newCacheKey(cfg.Model, cfg.Dimensions, text) },
		solve:   s.solve,
		set: func(r *processor.Record, v []float32) {
			r.Embedding, r.EmbeddingModel = v, cfg.Model
		},
	}
	return s, nil
}

// Name implements processor.Stage.
func (s *EmbeddingStage) Name() string { return s.e.name }

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
	return s.e.enrich(ctx, b)
}

// solve packs items into requests and sends them concurrently.
func (s *EmbeddingStage) solve(ctx context.Context, items []*item[[]float32]) {
	var wg sync.WaitGroup
	for _, req := range pack(items, s.cfg.MaxInputs, s.cfg.MaxRequestTokens) {
		wg.Go(func() { s.request(ctx, req) })
	}
	wg.Wait()
}

// pack cuts items, in order, into requests of at most maxInputs items and
// maxTokens estimated tokens; an item over maxTokens gets a request alone.
func pack[R any](items []*item[R], maxInputs, maxTokens int) [][]*item[R] {
	var out [][]*item[R]
	start, tokens := 0, 0
	for i, it := range items {
		if i > start && (i-start >= maxInputs || tokens+it.tokens > maxTokens) {
			out = append(out, items[start:i:i])
			start, tokens = i, 0
		}
		tokens += it.tokens
	}
	if start < len(items) {
		out = append(out, items[start:])
	}
	return out
}

// request embeds items with one request, split in halves when the endpoint
// refuses it for its content.
func (s *EmbeddingStage) request(ctx context.Context, items []*item[[]float32]) {
	input := make([]string, len(items))
	tokens := 0
	for i, it := range items {
		input[i] = it.text
		tokens += it.tokens
	}
	attempts, err := s.c.do(ctx, call{
		op:           "create embeddings",
		inputs:       len(items),
		tokens:       tokens,
		retryInvalid: true,
		send: func(ctx context.Context) (openai.Usage, error) {
			resp, err := s.c.api.CreateEmbeddings(ctx, openai.EmbeddingRequestStrings{
				Input:          input,
				Model:          openai.EmbeddingModel(s.cfg.Model),
				EncodingFormat: openai.EmbeddingEncodingFormat(s.cfg.EncodingFormat),
				Dimensions:     s.cfg.Dimensions,
			})
			if err != nil {
				return resp.Usage, err
			}
			vecs, err := s.check(resp, len(items))
			if err != nil {
				return resp.Usage, err
			}
			for i, it := range items {
				it.result, it.done = vecs[i], true
			}
			return resp.Usage, nil
		},
	})
	switch {
	case err == nil:
	case splittable(len(items), err):
		halves(items, func(h []*item[[]float32]) { s.request(ctx, h) })
	default:
		settle(items, attempts, err)
	}
}

// check matches the vectors of resp to the n inputs by index.
func (s *EmbeddingStage) check(resp openai.EmbeddingResponse, n int) ([][]float32, error) {
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
		case s.cfg.Dimensions > 0 && len(d.Embedding) != s.cfg.Dimensions:
			return nil, fmt.Errorf("%w: embedding %d has %d dimensions, want %d",
				ErrInvalidAnswer, d.Index, len(d.Embedding), s.cfg.Dimensions)
		}
		vecs[d.Index] = d.Embedding
	}
	return vecs, nil
}

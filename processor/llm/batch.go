package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	openai "github.com/sashabaranov/go-openai"

	"github.com/textpulse/textpulse/processor"
	"github.com/textpulse/textpulse/processor/enrich"
)

// Limits of the OpenAI Batch API.
const (
	// MaxBatchRequestsPerFile is the most requests in one batch input file.
	MaxBatchRequestsPerFile = 50_000
	// MaxBatchFileBytes is the largest batch input file.
	MaxBatchFileBytes = 200 << 20
	// BatchCompletionWindow is the only completion window the API takes.
	BatchCompletionWindow = "24h"
)

// Terminal statuses of a batch.
const (
	batchCompleted = "completed"
	batchFailed    = "failed"
	batchExpired   = "expired"
	batchCancelled = "cancelled"
)

// BatchConfig configures the Batch API provider of a stage (see
// NewEmbeddingBatchStage and NewSentimentBatchStage).
type BatchConfig struct {
	// PollInitialInterval is the first wait between two polls of a batch;
	// later waits grow by 1.5 with 50% jitter.
	PollInitialInterval time.Duration `koanf:"poll_initial_interval"`
	// PollMaxInterval caps the wait between two polls.
	PollMaxInterval time.Duration `koanf:"poll_max_interval"`
	// CompletionWindow is the completion window asked for; the API takes
	// "24h" only.
	CompletionWindow string `koanf:"completion_window"`
	// MaxRequestsPerFile is the most requests in one input file; more
	// requests are split into several files, each its own batch.
	MaxRequestsPerFile int `koanf:"max_requests_per_file"`
	// MaxFileBytes is the largest input file; larger ones are split too.
	MaxFileBytes int64 `koanf:"max_file_bytes"`
	// MaxWait is how long a batch is waited for before it is cancelled and
	// its texts fail with a retryable error.
	MaxWait time.Duration `koanf:"max_wait"`
	// KeepFiles keeps the input, output and error files of ended batches;
	// by default they are deleted once the answers are read, so that
	// the texts do not stay in the account's storage.
	KeepFiles bool `koanf:"keep_files"`
}

// DefaultBatchConfig returns the batch defaults: polls from 10 seconds up
// to 5 minutes apart, the 24h window, the API's file limits, and 25 hours
// of waiting (the window and a margin for finalizing).
func DefaultBatchConfig() BatchConfig {
	return BatchConfig{
		PollInitialInterval: 10 * time.Second,
		PollMaxInterval:     5 * time.Minute,
		CompletionWindow:    BatchCompletionWindow,
		MaxRequestsPerFile:  MaxBatchRequestsPerFile,
		MaxFileBytes:        MaxBatchFileBytes,
		MaxWait:             25 * time.Hour,
	}
}

// Validate checks the batch configuration.
func (c BatchConfig) Validate() error {
	var errs []error
	if c.PollInitialInterval <= 0 {
		errs = append(errs, fmt.Errorf("poll_initial_interval %s: must be positive", c.PollInitialInterval))
	}
	if c.PollMaxInterval < c.PollInitialInterval {
		errs = append(errs, fmt.Errorf("poll_max_interval %s: must be at least poll_initial_interval", c.PollMaxInterval))
	}
	if c.CompletionWindow != BatchCompletionWindow {
		errs = append(errs, fmt.Errorf("completion_window %q: must be %s", c.CompletionWindow, BatchCompletionWindow))
	}
	if c.MaxRequestsPerFile < 1 || c.MaxRequestsPerFile > MaxBatchRequestsPerFile {
		errs = append(errs, fmt.Errorf("max_requests_per_file %d: must be in [1, %d]", c.MaxRequestsPerFile, MaxBatchRequestsPerFile))
	}
	if c.MaxFileBytes < 1 || c.MaxFileBytes > MaxBatchFileBytes {
		errs = append(errs, fmt.Errorf("max_file_bytes %d: must be in [1, %d]", c.MaxFileBytes, MaxBatchFileBytes))
	}
	if c.MaxWait <= 0 {
		errs = append(errs, fmt.Errorf("max_wait %s: must be positive", c.MaxWait))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("batch config: %w", err)
	}
	return nil
}

// batchAPI is the provider of an API stage over the Batch API (see
// enrich.Provider): each attempt cuts the texts still to resolve into the
// requests the synchronous path would send, writes them as JSONL input
// files within the file limits, and runs one batch per file, concurrently.
// The Files and Batch API calls are retried by the client like any
// request; the requests of a batch are not: a failed one fails its texts,
// for the engine to try again.
type batchAPI[R any] struct {
	name     string
	cfg      BatchConfig
	c        *client
	m        *metrics
	log      *slog.Logger
	endpoint openai.BatchEndpoint
	// truncate returns the text to send for a record's text.
	truncate func(text string) string
	// group cuts items into requests, as the synchronous path does.
	group func(items []*enrich.Item[R]) [][]*enrich.Item[R]
	// body returns the request body for items in a mode of modes, as the
	// synchronous path sends it.
	body func(items []*enrich.Item[R], mode string) (any, error)
	// modes are the ways to ask (encodings, response formats), and
	// modeParam the request parameter that picks one: when a request is
	// refused for that parameter, auto modes fall back to the next one for
	// good, and the texts of the refused requests fail with a retryable
	// error, for the engine to submit again in the new mode.
	modes     *modes
	modeParam string
	// decode parses and checks the answer body to a request of n items, as
	// the synchronous path does, and returns the results in item order.
	decode func(body []byte, n int) ([]R, openai.Usage, error)
	// set stores a result in a record.
	set func(r *processor.Record, v R)
}

// Prepare implements enrich.Provider: the text truncated to the stage's
// input token budget, and its estimated tokens.
func (p *batchAPI[R]) Prepare(text string) (string, int) {
	t := p.truncate(text)
	return t, EstimateTokens(t)
}

// Set implements enrich.Provider.
func (p *batchAPI[R]) Set(r *processor.Record, v R) { p.set(r, v) }

// Resolve implements enrich.Provider. It returns when every batch of the
// attempt ended, or ctx is done; on ctx's end the batches still running
// are cancelled.
func (p *batchAPI[R]) Resolve(ctx context.Context, items []*enrich.Item[R]) {
	var wg sync.WaitGroup
	for _, f := range p.files(p.group(items), p.modes.current()) {
		wg.Go(func() { p.run(ctx, f) })
	}
	wg.Wait()
}

// newBatchEngine returns the engine of an API stage over the Batch API.
// Requests of a batch are not retried within it, so the engine makes up to
// the endpoint's MaxAttempts attempts for texts with a retryable failure
// (under the retry policy as many as it takes), each submitting only the
// texts that failed, with the endpoint's retry backoff between them.
func newBatchEngine[R any](p *batchAPI[R], ep EndpointConfig, policy FailurePolicy, cacheSize int, cacheBytes int64, cacheScope string,
	log *slog.Logger, reg prometheus.Registerer,
) (*enrich.Engine[R], error) {
	return enrich.New(enrich.Config{
		Stage:           p.name,
		Provider:        "batch",
		Policy:          policy,
		MaxAttempts:     ep.MaxAttempts,
		InitialInterval: ep.RetryInitialInterval,
		MaxInterval:     ep.RetryMaxInterval,
		CacheSize:       cacheSize,
		CacheBytes:      cacheBytes,
		CacheScope:      cacheScope,
	}, enrich.Provider[R](p), log, reg)
}

// batchFile is one input file: its JSONL lines, the items of each request
// by custom_id, and the mode of the requests.
type batchFile[R any] struct {
	data []byte
	reqs map[string][]*enrich.Item[R]
	mode string
}

// batchInputLine is one request of an input file.
type batchInputLine struct {
	CustomID string               `json:"custom_id"`
	Method   string               `json:"method"`
	URL      openai.BatchEndpoint `json:"url"`
	Body     any                  `json:"body"`
}

// files writes reqs in mode as JSONL lines into input files of at most
// MaxRequestsPerFile lines and MaxFileBytes bytes. A request that cannot be
// encoded, or whose line alone is over MaxFileBytes, fails its items.
func (p *batchAPI[R]) files(reqs [][]*enrich.Item[R], mode string) []*batchFile[R] {
	var out []*batchFile[R]
	var cur *batchFile[R]
	for i, req := range reqs {
		cid := "request-" + strconv.Itoa(i)
		line, err := p.line(cid, req, mode)
		if err != nil {
			settle(req, 0, err)
			continue
		}
		if cur == nil || len(cur.reqs) >= p.cfg.MaxRequestsPerFile || int64(len(cur.data)+len(line)) > p.cfg.MaxFileBytes {
			cur = &batchFile[R]{reqs: make(map[string][]*enrich.Item[R]), mode: mode}
			out = append(out, cur)
		}
		cur.data = append(cur.data, line...)
		cur.reqs[cid] = req
	}
	return out
}

// line returns the JSONL line, newline included, of the request of items
// in mode.
func (p *batchAPI[R]) line(cid string, items []*enrich.Item[R], mode string) ([]byte, error) {
	body, err := p.body(items, mode)
	if err != nil {
		return nil, fmt.Errorf("encode batch request: %w", err)
	}
	line, err := json.Marshal(batchInputLine{CustomID: cid, Method: http.MethodPost, URL: p.endpoint, Body: body})
	if err != nil {
		return nil, fmt.Errorf("encode batch request: %w", err)
	}
	line = append(line, '\n')
	if int64(len(line)) > p.cfg.MaxFileBytes {
		return nil, &RequestError{Op: "encode batch request", Kind: ErrRejected,
			Err: fmt.Errorf("request of %d bytes over max_file_bytes %d", len(line), p.cfg.MaxFileBytes)}
	}
	return line, nil
}

// run submits f as one batch, waits for its end and settles its items.
func (p *batchAPI[R]) run(ctx context.Context, f *batchFile[R]) {
	b, err := p.submit(ctx, f)
	if err == nil {
		b, err = p.wait(ctx, b)
	}
	if err != nil {
		for _, req := range f.reqs {
			settle(req, 1, err)
		}
		return
	}
	p.collect(ctx, b, f)
	if !p.cfg.KeepFiles {
		p.deleteFiles(ctx, b)
	}
}

// deleteFiles deletes the input, output and error files of the ended
// batch b, logging those it cannot; it uses a context of its own, bounded
// by the endpoint's timeout, so that the files go even when ctx ended.
func (p *batchAPI[R]) deleteFiles(ctx context.Context, b openai.Batch) {
	for _, id := range []*string{&b.InputFileID, b.OutputFileID, b.ErrorFileID} {
		if id == nil || *id == "" {
			continue
		}
		dctx, stop := context.WithTimeout(context.WithoutCancel(ctx), p.c.cfg.Timeout)
		err := p.c.api.DeleteFile(dctx, *id)
		stop()
		if err != nil {
			p.log.Warn("llm batch file not deleted", "stage", p.name, "batch", b.ID, "file", *id, "err", err)
		}
	}
}

// submit uploads f and creates its batch.
func (p *batchAPI[R]) submit(ctx context.Context, f *batchFile[R]) (openai.Batch, error) {
	var file openai.File
	_, err := p.c.do(ctx, call{op: "upload batch file", send: func(ctx context.Context) (openai.Usage, error) {
		var err error
		file, err = p.c.api.CreateFileBytes(ctx, openai.FileBytesRequest{
			Name: p.name + "_batch_input.jsonl", Bytes: f.data, Purpose: openai.PurposeBatch,
		})
		return openai.Usage{}, err
	}})
	if err != nil {
		return openai.Batch{}, err
	}
	var resp openai.BatchResponse
	_, err = p.c.do(ctx, call{op: "create batch", send: func(ctx context.Context) (openai.Usage, error) {
		var err error
		resp, err = p.c.api.CreateBatch(ctx, openai.CreateBatchRequest{
			InputFileID: file.ID, Endpoint: p.endpoint, CompletionWindow: p.cfg.CompletionWindow,
			Metadata: map[string]any{"stage": p.name},
		})
		return openai.Usage{}, err
	}})
	if err != nil {
		return openai.Batch{}, err
	}
	p.log.Info("llm batch created", "stage", p.name, "batch", resp.ID, "input_file", file.ID,
		"requests", len(f.reqs), "bytes", len(f.data))
	return resp.Batch, nil
}

// wait polls b, with backoff between polls, until its status is terminal.
// Past MaxWait, or when polling fails for good or ctx ends, it cancels b
// and returns a retryable *RequestError, the polling error or ctx's error.
func (p *batchAPI[R]) wait(ctx context.Context, b openai.Batch) (openai.Batch, error) {
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     p.cfg.PollInitialInterval,
		RandomizationFactor: backoff.DefaultRandomizationFactor,
		Multiplier:          backoff.DefaultMultiplier,
		MaxInterval:         p.cfg.PollMaxInterval,
	}
	bo.Reset()
	deadline := time.Now().Add(p.cfg.MaxWait)
	for !batchEnded(b.Status) {
		left := time.Until(deadline)
		if left <= 0 {
			p.cancel(ctx, b.ID)
			return b, &RequestError{Op: "wait for batch", Attempts: 1, Kind: ErrUnavailable,
				Err: fmt.Errorf("batch %s still %s after max_wait %s", b.ID, b.Status, p.cfg.MaxWait)}
		}
		if err := sleep(ctx, min(bo.NextBackOff(), left)); err != nil {
			p.cancel(ctx, b.ID)
			return b, err
		}
		id := b.ID
		_, err := p.c.do(ctx, call{op: "retrieve batch", send: func(ctx context.Context) (openai.Usage, error) {
			resp, err := p.c.api.RetrieveBatch(ctx, id)
			if err == nil {
				b = resp.Batch
			}
			return openai.Usage{}, err
		}})
		if err != nil {
			p.cancel(ctx, id)
			return b, err
		}
	}
	return b, nil
}

// cancel asks the API to cancel batch id, so that a batch given up on is
// not billed further; it is called when ctx may have ended, so it uses a
// context of its own bounded by the endpoint's timeout.
func (p *batchAPI[R]) cancel(ctx context.Context, id string) {
	cctx, stop := context.WithTimeout(context.WithoutCancel(ctx), p.c.cfg.Timeout)
	defer stop()
	if _, err := p.c.api.CancelBatch(cctx, id); err != nil {
		p.log.Warn("llm batch not cancelled", "stage", p.name, "batch", id, "err", err)
		return
	}
	p.log.Info("llm batch cancelled", "stage", p.name, "batch", id)
}

// batchEnded reports whether status is terminal.
func batchEnded(status string) bool {
	switch status {
	case batchCompleted, batchFailed, batchExpired, batchCancelled:
		return true
	}
	return false
}

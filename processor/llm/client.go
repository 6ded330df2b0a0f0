package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	openai "github.com/sashabaranov/go-openai"
	"golang.org/x/time/rate"

	"github.com/textpulse/textpulse/internal/secret"
)

// API types of EndpointConfig.APIType.
const (
	// APITypeOpenAI is the OpenAI API and compatible servers.
	APITypeOpenAI = "openai"
	// APITypeAzure is Azure OpenAI: Model names the deployment, and
	// APIVersion is sent as the api-version query parameter.
	APITypeAzure = "azure"
)

// maxHintWait caps how long a server hint can make a request wait.
const maxHintWait = 2 * time.Minute

// EndpointConfig is how to reach one OpenAI-compatible endpoint and how hard
// to use it.
type EndpointConfig struct {
	// BaseURL is the API root, for example https://api.openai.com/v1, or
	// the Azure resource URL for APITypeAzure.
	BaseURL string `koanf:"base_url"`
	// APIKey is the key sent as a bearer token (or api-key for Azure).
	APIKey secret.Secret `koanf:"api_key"`
	// APIKeyFile is a file holding the key, instead of APIKey.
	APIKeyFile string `koanf:"api_key_file"`
	// Organization is sent as the OpenAI-Organization header when set.
	Organization string `koanf:"organization"`
	// Model is the model name, or the deployment name for Azure.
	Model string `koanf:"model"`
	// Headers are extra HTTP headers sent with every request.
	Headers map[string]string `koanf:"headers"`
	// APIType is "openai" or "azure".
	APIType string `koanf:"api_type"`
	// APIVersion is the Azure api-version; required for "azure".
	APIVersion string `koanf:"api_version"`
	// Timeout bounds one attempt of one request.
	Timeout time.Duration `koanf:"timeout"`
	// RequestsPerMinute is the client-side request budget; 0 is unlimited.
	RequestsPerMinute int `koanf:"requests_per_minute"`
	// TokensPerMinute is the client-side budget of estimated prompt and
	// completion tokens; 0 is unlimited.
	TokensPerMinute int `koanf:"tokens_per_minute"`
	// MaxAttempts is how many times one request is sent before its
	// records are handed to the failure policy.
	MaxAttempts int `koanf:"max_attempts"`
	// Concurrency is how many requests of the stage may be in flight at
	// once, over all batches: the ceiling of the adaptive limit, or the
	// fixed number when AdaptiveConcurrency is off.
	Concurrency int `koanf:"concurrency"`
	// AdaptiveConcurrency adapts the number of requests in flight to the
	// endpoint: it grows by one a round trip while the latency stays near
	// its recent low and nothing pushes back, and falls by a tenth on a
	// 429, a 503, a timeout or a rising latency, between 1 and Concurrency.
	AdaptiveConcurrency bool `koanf:"adaptive_concurrency"`
	// ConcurrencyInitial is where the adaptive limit starts, capped at
	// Concurrency; 0 means min(32, Concurrency).
	ConcurrencyInitial int `koanf:"concurrency_initial"`
	// RetryInitialInterval is the first backoff after a retryable failure
	// without a server hint; later backoffs grow by 1.5 with 50% jitter.
	RetryInitialInterval time.Duration `koanf:"retry_initial_interval"`
	// RetryMaxInterval caps the backoff.
	RetryMaxInterval time.Duration `koanf:"retry_max_interval"`
}

// defaultEndpointConfig returns the endpoint defaults shared by the stages.
func defaultEndpointConfig(model string, concurrency, initial int) EndpointConfig {
	return EndpointConfig{
		BaseURL:              "https://api.openai.com/v1",
		Model:                model,
		APIType:              APITypeOpenAI,
		Timeout:              60 * time.Second,
		MaxAttempts:          5,
		Concurrency:          concurrency,
		AdaptiveConcurrency:  true,
		ConcurrencyInitial:   initial,
		RetryInitialInterval: 500 * time.Millisecond,
		RetryMaxInterval:     30 * time.Second,
	}
}

// Validate checks the endpoint configuration.
func (c EndpointConfig) Validate() error {
	var errs []error
	if c.BaseURL == "" {
		errs = append(errs, errors.New("base_url: must be set"))
	}
	if c.APIKey != "" && c.APIKeyFile != "" {
		errs = append(errs, errors.New("api_key and api_key_file: set at most one"))
	}
	if c.Model == "" {
		errs = append(errs, errors.New("model: must be set"))
	}
	switch c.APIType {
	case APITypeOpenAI:
	case APITypeAzure:
		if c.APIVersion == "" {
			errs = append(errs, errors.New("api_version: must be set for api_type azure"))
		}
	default:
		errs = append(errs, fmt.Errorf("api_type %q: must be openai or azure", c.APIType))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout %s: must be positive", c.Timeout))
	}
	if c.RequestsPerMinute < 0 {
		errs = append(errs, fmt.Errorf("requests_per_minute %d: must not be negative", c.RequestsPerMinute))
	}
	if c.TokensPerMinute < 0 {
		errs = append(errs, fmt.Errorf("tokens_per_minute %d: must not be negative", c.TokensPerMinute))
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("max_attempts %d: must be at least 1", c.MaxAttempts))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("concurrency %d: must be at least 1", c.Concurrency))
	}
	if c.ConcurrencyInitial < 0 {
		errs = append(errs, fmt.Errorf("concurrency_initial %d: must not be negative", c.ConcurrencyInitial))
	}
	if c.RetryInitialInterval <= 0 {
		errs = append(errs, fmt.Errorf("retry_initial_interval %s: must be positive", c.RetryInitialInterval))
	}
	if c.RetryMaxInterval < c.RetryInitialInterval {
		errs = append(errs, fmt.Errorf("retry_max_interval %s: must be at least retry_initial_interval", c.RetryMaxInterval))
	}
	return errors.Join(errs...)
}

// client sends requests to one endpoint for one stage, within its budgets,
// and retries transient failures.
type client struct {
	stage    string
	cfg      EndpointConfig
	api      *openai.Client
	requests *rate.Limiter // nil when unlimited
	tokens   *rate.Limiter // nil when unlimited
	lim      *limiter
	m        *metrics
	log      *slog.Logger
}

// newClient builds the client of a stage from a validated configuration.
func newClient(stage string, cfg EndpointConfig, m *metrics, log *slog.Logger) (*client, error) {
	key, err := secret.Resolve(cfg.APIKey, cfg.APIKeyFile)
	if err != nil {
		return nil, fmt.Errorf("resolve api key: %w", err)
	}
	var oc openai.ClientConfig
	if cfg.APIType == APITypeAzure {
		oc = openai.DefaultAzureConfig(key.Reveal(), cfg.BaseURL)
		oc.APIVersion = cfg.APIVersion
		// Model is the deployment name as configured.
		oc.AzureModelMapperFunc = func(model string) string { return model }
	} else {
		oc = openai.DefaultConfig(key.Reveal())
		oc.BaseURL = cfg.BaseURL
	}
	oc.OrgID = cfg.Organization
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = cfg.Concurrency
	oc.HTTPClient = &http.Client{Transport: &recordingTransport{base: base, headers: cfg.Headers}}
	return &client{
		stage:    stage,
		cfg:      cfg,
		api:      openai.NewClientWithConfig(oc),
		requests: newPerMinuteLimiter(cfg.RequestsPerMinute),
		tokens:   newPerMinuteLimiter(cfg.TokensPerMinute),
		lim:      newConcurrencyLimiter(cfg, m),
		m:        m,
		log:      log,
	}, nil
}

// defaultInitialConcurrency is where the adaptive limit starts when
// concurrency_initial is 0.
const defaultInitialConcurrency = 32

// newConcurrencyLimiter returns the limiter of requests in flight that cfg
// asks for.
func newConcurrencyLimiter(cfg EndpointConfig, m *metrics) *limiter {
	initial := cfg.ConcurrencyInitial
	if initial == 0 {
		initial = defaultInitialConcurrency
	}
	return newLimiter(cfg.Concurrency, initial, cfg.AdaptiveConcurrency, time.Now, m.concurrencyLimit, m.inFlight)
}

// newPerMinuteLimiter returns a limiter refilling perMinute units a minute
// with a burst of a tenth of that (at least 1), or nil for 0.
func newPerMinuteLimiter(perMinute int) *rate.Limiter {
	if perMinute <= 0 {
		return nil
	}
	burst := max(1, perMinute/10)
	return rate.NewLimiter(rate.Limit(float64(perMinute)/60), burst)
}

// call is one logical request: its size for budgets and metrics, and the
// function that sends it once.
type call struct {
	op string
	// inputs is the number of texts, observed in the inputs histogram
	// when positive (the Files and Batch API calls have none).
	inputs int
	tokens int
	// invalidAttempts is how many times the request is sent while its
	// answer is invalid; then it ends so that the caller can split it.
	invalidAttempts int
	// embedFormat, for embeddings, is the encoding go-openai decodes
	// ("float" or "base64"); answers in the other one are converted.
	embedFormat string
	send        func(ctx context.Context) (openai.Usage, error)
}

// do sends c until it succeeds, fails permanently, runs out of attempts or
// ctx is done. It returns the number of attempts and nil, a *RequestError,
// or ctx's error.
func (cl *client) do(ctx context.Context, c call) (int, error) {
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     cl.cfg.RetryInitialInterval,
		RandomizationFactor: backoff.DefaultRandomizationFactor,
		Multiplier:          backoff.DefaultMultiplier,
		MaxInterval:         cl.cfg.RetryMaxInterval,
	}
	bo.Reset()
	for attempt := 1; ; attempt++ {
		if err := cl.acquire(ctx, c.tokens); err != nil {
			return attempt - 1, err
		}
		rec := &responseRecord{embedFormat: c.embedFormat}
		actx, cancel := context.WithTimeout(context.WithValue(ctx, recordKey{}, rec), cl.cfg.Timeout)
		start := time.Now()
		usage, err := c.send(actx)
		cancel()
		took := time.Since(start)
		cl.lim.release(limiterOutcome(ctx, err, rec), took)
		cl.m.duration.Observe(took.Seconds())
		if c.inputs > 0 {
			cl.m.inputs.Observe(float64(c.inputs))
		}
		cl.m.tokens.WithLabelValues("prompt").Add(float64(usage.PromptTokens))
		cl.m.tokens.WithLabelValues("completion").Add(float64(usage.CompletionTokens))
		if rec.converted {
			cl.m.converted.Inc()
		}
		if err == nil {
			cl.m.requests.WithLabelValues("ok").Inc()
			return attempt, nil
		}
		if ctx.Err() != nil {
			cl.m.requests.WithLabelValues("canceled").Inc()
			return attempt, ctx.Err()
		}
		f := classify(err, rec)
		cl.m.requests.WithLabelValues(f.cause).Inc()
		switch f.cause {
		case causeInvalidAnswer, causeRefused, causeCutAnswer:
			reason := "invalid"
			var ae *AnswerError
			if errors.As(err, &ae) {
				reason = ae.Reason
			}
			cl.m.unusable.WithLabelValues(reason).Inc()
		}
		if f.status == http.StatusTooManyRequests {
			cl.m.rateLimited.Inc()
		}
		if !f.retryable || attempt >= cl.cfg.MaxAttempts || (f.cause == causeInvalidAnswer && attempt >= c.invalidAttempts) {
			return attempt, &RequestError{Op: c.op, Status: f.status, Attempts: attempt, Kind: f.kind, Err: err,
				Wide: f.wide, Unsupported: f.unsupported}
		}
		cl.m.retries.WithLabelValues(f.cause).Inc()
		wait := jitter(f.hint)
		if wait <= 0 {
			wait = bo.NextBackOff()
		}
		cl.log.Debug("llm request retry", "stage", cl.stage, "op", c.op, "cause", f.cause,
			"status", f.status, "attempt", attempt, "wait", wait, "err", err)
		if err := sleep(ctx, wait); err != nil {
			return attempt, err
		}
	}
}

// acquire waits for the client-side budgets and a concurrency slot.
func (cl *client) acquire(ctx context.Context, tokens int) error {
	if cl.requests != nil {
		if err := cl.requests.Wait(ctx); err != nil {
			return waitError(ctx, err)
		}
	}
	if cl.tokens != nil && tokens > 0 {
		if err := cl.tokens.WaitN(ctx, min(tokens, cl.tokens.Burst())); err != nil {
			return waitError(ctx, err)
		}
	}
	return cl.lim.acquire(ctx)
}

// limiterOutcome is what an attempt tells the concurrency limiter: back
// pressure for a 429 (other than an exhausted quota), a 503 or a timeout,
// a latency sample for a success, nothing for the rest.
func limiterOutcome(ctx context.Context, err error, rec *responseRecord) slotOutcome {
	if err == nil {
		return slotOK
	}
	if ctx.Err() != nil {
		return slotIgnored
	}
	f := classify(err, rec)
	switch {
	case f.cause == causeRateLimited, f.cause == causeTimeout, f.status == http.StatusServiceUnavailable:
		return slotBackPressure
	}
	return slotIgnored
}

// waitError turns a limiter error into ctx's error: the limiter refuses
// early when ctx's deadline comes before the budget, and the request could
// not be sent anyway.
func waitError(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		if _, ok := ctx.Deadline(); !ok {
			return fmt.Errorf("wait for rate budget: %w", err)
		}
		<-ctx.Done()
	}
	return ctx.Err()
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Retry causes, the values of the cause label.
const (
	causeRateLimited   = "rate_limited"
	causeServerError   = "server_error"
	causeTimeout       = "timeout"
	causeInvalidAnswer = "invalid_answer"
	causeNetwork       = "network"
	causeRejected      = "rejected"
	causeUnsupported   = "unsupported"
	causeQuota         = "insufficient_quota"
	causeRefused       = "refused"
	causeCutAnswer     = "cut_answer"
	causeEndpointDown  = "endpoint_down"
)

// failure is the classification of one failed attempt.
type failure struct {
	cause     string
	retryable bool
	status    int
	kind      error
	hint      time.Duration
	// wide marks a failure that holds for every request to the endpoint.
	wide bool
	// unsupported is the request parameter the endpoint refused, if any.
	unsupported string
}

// classify decides whether err is worth retrying, and how long the server
// asked to wait.
func classify(err error, rec *responseRecord) failure {
	status := 0
	var apiErr *openai.APIError
	var reqErr *openai.RequestError
	switch {
	case errors.As(err, &apiErr):
		status = apiErr.HTTPStatusCode
	case errors.As(err, &reqErr):
		status = reqErr.HTTPStatusCode
	}
	text := errorText(apiErr, reqErr)
	if param := unsupportedParam(status, text); param != "" {
		return failure{cause: causeUnsupported, status: status, kind: ErrRejected, wide: true, unsupported: param}
	}
	retryable := failure{retryable: true, status: status, kind: ErrUnavailable}
	switch {
	case status == http.StatusTooManyRequests && strings.Contains(text, "insufficient_quota"):
		return failure{cause: causeQuota, status: status, kind: ErrRejected, wide: true}
	case status == http.StatusTooManyRequests:
		retryable.cause = causeRateLimited
		retryable.hint = rec.hint()
		return retryable
	case status == http.StatusRequestTimeout:
		retryable.cause = causeTimeout
		return retryable
	case status >= 500:
		retryable.cause = causeServerError
		retryable.hint = rec.hint()
		return retryable
	case status >= 400:
		return failure{cause: causeRejected, status: status, kind: ErrRejected}
	case errors.Is(err, ErrRefused):
		return failure{cause: causeRefused, status: status, kind: ErrRefused}
	case errors.Is(err, ErrCutAnswer):
		return failure{cause: causeCutAnswer, status: status, kind: ErrCutAnswer}
	case errors.Is(err, ErrInvalidAnswer):
		return failure{cause: causeInvalidAnswer, retryable: true, status: status, kind: ErrInvalidAnswer}
	}
	var netErr net.Error
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		retryable.cause = causeTimeout
	case errors.As(err, &syntaxErr), errors.As(err, &typeErr):
		// A 2xx with a body that is not the JSON of the API.
		retryable.cause = causeServerError
	default:
		// Connection resets and refusals, truncated bodies and the like.
		retryable.cause = causeNetwork
	}
	return retryable
}

// errorText is the lowercased message, code, type and parameter of an error
// response, or its body when it is not the error JSON of the API.
func errorText(apiErr *openai.APIError, reqErr *openai.RequestError) string {
	switch {
	case apiErr != nil:
		param := ""
		if apiErr.Param != nil {
			param = *apiErr.Param
		}
		return strings.ToLower(fmt.Sprintf("%s %v %s %s", apiErr.Message, apiErr.Code, apiErr.Type, param))
	case reqErr != nil:
		return strings.ToLower(string(reqErr.Body))
	}
	return ""
}

// unsupportedParam returns the parameter an error response says the
// endpoint does not support ("response_format" for json_schema and
// json_object, "dimensions", "encoding_format"), or "". Servers say it with
// a 400 or 422 ("'response_format' of type 'json_schema' is not supported
// with this model", "This model does not support specifying dimensions"),
// and llama-cpp-python's server with a 500 validation error ("Input should
// be 'text' or 'json_object'").
func unsupportedParam(status int, text string) string {
	if status != http.StatusBadRequest && status != http.StatusUnprocessableEntity && status != http.StatusInternalServerError {
		return ""
	}
	if strings.Contains(text, "input should be 'text' or 'json_object'") {
		return "response_format"
	}
	refusal := false
	for _, w := range []string{"not supported", "unsupported", "does not support", "not support",
		"extra inputs are not permitted", "not allowed", "unknown field", "unrecognized", "enabled only", "only supported"} {
		if strings.Contains(text, w) {
			refusal = true
			break
		}
	}
	if !refusal {
		return ""
	}
	// The request parameters whose refusal is a property of the endpoint
	// and model rather than of the inputs.
	for _, p := range []string{"response_format", "json_schema", "dimensions", "encoding_format"} {
		if strings.Contains(text, p) {
			if p == "json_schema" {
				return "response_format"
			}
			return p
		}
	}
	return ""
}

// recordKey is the context key of the *responseRecord of an attempt.
type recordKey struct{}

// responseRecord holds the headers of the response of one attempt; the
// transport fills it in through the request context, since go-openai's
// errors do not carry headers. For embeddings, embedFormat is the encoding
// go-openai decodes, and converted says the answer came in the other one
// and was converted.
type responseRecord struct {
	header      http.Header
	status      int
	embedFormat string
	converted   bool
}

// hint returns how long the recorded response asked the client to wait, or
// 0 when it did not say. It reads, in order of precedence, retry-after-ms
// (milliseconds), Retry-After (seconds or an HTTP date), and the
// x-ratelimit-reset-requests and x-ratelimit-reset-tokens durations (such as
// "1.5s" or "6m0s"), of which it takes the one whose remaining count is 0,
// or the longer one. The same headers with LiteLLM's llm_provider- prefix
// (the upstream's hints, passed on by the proxy) are read too, and the
// longer of both waits is taken. The result is capped at two minutes.
func (r *responseRecord) hint() time.Duration {
	if r == nil || r.header == nil {
		return 0
	}
	h := r.header
	direct := headerHint(h.Get)
	proxied := headerHint(func(k string) string { return h.Get(litellmPrefix + k) })
	return min(max(direct, proxied, 0), maxHintWait)
}

// litellmPrefix is the prefix LiteLLM's proxy puts before the headers of
// the upstream provider's response.
const litellmPrefix = "llm_provider-"

// headerHint reads the wait that the headers returned by get ask for.
func headerHint(get func(string) string) time.Duration {
	d := time.Duration(0)
	if v := get("retry-after-ms"); v != "" {
		if ms, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && ms > 0 && !math.IsInf(ms, 0) {
			d = time.Duration(ms * float64(time.Millisecond))
		}
	}
	if d == 0 {
		if v := strings.TrimSpace(get("Retry-After")); v != "" {
			if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 && !math.IsInf(s, 0) {
				d = time.Duration(s * float64(time.Second))
			} else if t, err := http.ParseTime(v); err == nil {
				d = time.Until(t)
			}
		}
	}
	if d == 0 {
		d = resetHint(get)
	}
	return d
}

// resetHint reads the x-ratelimit-reset-* headers.
func resetHint(get func(string) string) time.Duration {
	var longest, exhausted time.Duration
	for _, kind := range []string{"requests", "tokens"} {
		d, err := time.ParseDuration(strings.TrimSpace(get("x-ratelimit-reset-" + kind)))
		if err != nil || d <= 0 {
			continue
		}
		longest = max(longest, d)
		if strings.TrimSpace(get("x-ratelimit-remaining-"+kind)) == "0" {
			exhausted = max(exhausted, d)
		}
	}
	if exhausted > 0 {
		return exhausted
	}
	return longest
}

// recordingTransport adds the configured headers to every request and
// records the headers of failed responses in the attempt's responseRecord.
type recordingTransport struct {
	base    http.RoundTripper
	headers map[string]string
}

// RoundTrip implements http.RoundTripper.
func (t *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if len(t.headers) > 0 {
		req = req.Clone(req.Context())
		for k, v := range t.headers {
			req.Header.Set(k, v)
		}
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	rec, ok := req.Context().Value(recordKey{}).(*responseRecord)
	if !ok {
		return resp, nil
	}
	rec.header, rec.status = resp.Header.Clone(), resp.StatusCode
	if rec.embedFormat == "" || resp.StatusCode != http.StatusOK {
		return resp, nil
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read embeddings response: %w", err)
	}
	if out, changed, cerr := convertEmbeddings(body, rec.embedFormat); cerr == nil && changed {
		body, rec.converted = out, true
		resp.Header.Del("Content-Length")
		resp.ContentLength = int64(len(body))
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// jitter returns d plus up to 10% at random, so that requests told to wait
// the same time do not all come back at once.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d + time.Duration(rand.Int64N(int64(d)/10+1)) //nolint:gosec // Jitter needs no cryptographic randomness.
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/textpulse/textpulse/internal/openaisim"
)

// options holds the parsed command line.
type options struct {
	listen   string
	logLevel slog.Level
	grace    time.Duration
	sim      openaisim.Config
}

// endpointFlags registers the flags of one endpoint under prefix.
func endpointFlags(fs *pflag.FlagSet, prefix string, e *openaisim.Endpoint, latency, p99 time.Duration) {
	fs.DurationVar(&e.Latency.Median, prefix+"-latency", latency, "median added latency (0: none)")
	fs.DurationVar(&e.Latency.P99, prefix+"-latency-p99", p99, "99th percentile of the added latency; lognormal between median and p99 (0: constant median)")
	fs.DurationVar(&e.Latency.PerToken, prefix+"-latency-per-token", 0, "latency added per token")
	fs.IntVar(&e.RPM, prefix+"-rpm", 0, "requests per minute limit (0: unlimited)")
	fs.IntVar(&e.TPM, prefix+"-tpm", 0, "tokens per minute limit (0: unlimited)")
}

// faultFlags registers the fault flags under prefix ("" for the global ones)
// and returns their targets by kind.
func faultFlags(fs *pflag.FlagSet, prefix string, f *openaisim.Faults) map[string]*float64 {
	targets := map[string]*float64{
		"5xx":          &f.ServerError,
		"timeout":      &f.Timeout,
		"truncated":    &f.Truncated,
		"invalid-json": &f.InvalidJSON,
		"wrong-count":  &f.WrongCount,
		"bad-values":   &f.BadValues,
		"429-storm":    &f.Storm,
	}
	help := map[string]string{
		"5xx":          "probability of a 500, 502 or 503 answer",
		"timeout":      "probability of a hang until the client gives up or --max-hang passes",
		"truncated":    "probability of a 200 answer whose body is cut in half",
		"invalid-json": "probability of a 200 answer whose body is not JSON",
		"wrong-count":  "probability of one result too few (embeddings) or one too few or too many (chat)",
		"bad-values":   "probability of vectors of the wrong dimension or a chat score or label out of range",
		"429-storm":    "probability that a request starts a storm of 429 answers lasting --storm-duration",
	}
	for _, kind := range []string{"5xx", "timeout", "truncated", "invalid-json", "wrong-count", "bad-values", "429-storm"} {
		name := "fault-" + kind
		if prefix != "" {
			name = prefix + "-" + name
		}
		fs.Float64Var(targets[kind], name, 0, help[kind])
	}
	return targets
}

// batchFlags registers the flags of the Files and Batch APIs.
func batchFlags(fs *pflag.FlagSet, b *openaisim.Batch, def openaisim.Batch) {
	fs.DurationVar(&b.CompletionDelay, "batch-completion-delay", def.CompletionDelay, "time from creating a batch to its end (0: as soon as its requests are answered)")
	fs.Float64Var(&b.FailureRate, "batch-failure-rate", def.FailureRate, "probability that a batch request fails with a 500 line in the error file")
	fs.Float64Var(&b.ExpireFraction, "batch-expire-fraction", def.ExpireFraction, "make batches expire after this fraction of their requests, the rest failing with batch_expired (0: never)")
	fs.IntVar(&b.MaxRequestsPerFile, "batch-max-requests", def.MaxRequestsPerFile, "most requests in a batch input file (at most 50000)")
	fs.Int64Var(&b.MaxFileBytes, "batch-max-file-bytes", def.MaxFileBytes, "largest uploaded file (at most 200 MB)")
}

// parseFlags parses args. It returns pflag.ErrHelp after printing the usage
// when args ask for help.
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := pflag.NewFlagSet("openaisim", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	fs.Usage = func() {
		_, _ = fmt.Fprintf(stderr, "Usage: openaisim [flags]\n\nServes an OpenAI-compatible API with deterministic answers, latency, limits and faults.\n\n")
		fs.PrintDefaults()
	}
	def := openaisim.DefaultConfig()
	o := &options{sim: def}
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8089", "address to listen on")
	fs.StringToIntVar(&o.sim.EmbeddingModels, "embedding-models", def.EmbeddingModels, "embeddings models and their native dimensions (name=dims, comma-separated)")
	fs.StringSliceVar(&o.sim.ChatModels, "chat-models", def.ChatModels, "chat model names")
	fs.BoolVar(&o.sim.StrictModels, "strict-models", false, "answer 404 model_not_found for models not configured")
	profile := fs.String("profile", openaisim.ProfileOpenAI, "server imitated: "+strings.Join(openaisim.Profiles(), ", ")+
		" (fields ignored or refused, header names, routes; see internal/openaisim/profile.go)")
	fs.BoolVar(&o.sim.QuotaExhausted, "quota-exhausted", false, "answer every API request 429 insufficient_quota")
	fs.Uint64Var(&o.sim.Seed, "seed", 1, "seed of latency samples and fault decisions")
	endpointFlags(fs, "embeddings", &o.sim.Embeddings, 0, 0)
	endpointFlags(fs, "chat", &o.sim.Chat, 0, 0)
	var global openaisim.Faults
	globalFaults := faultFlags(fs, "", &global)
	embFaults := faultFlags(fs, "embeddings", &o.sim.Embeddings.Faults)
	chatFaults := faultFlags(fs, "chat", &o.sim.Chat.Faults)
	fs.DurationVar(&o.sim.StormDuration, "storm-duration", def.StormDuration, "how long a 429 storm lasts")
	fs.DurationVar(&o.sim.MaxHang, "max-hang", def.MaxHang, "longest hang of an injected timeout")
	fs.Int64Var(&o.sim.MaxBodyBytes, "max-body-bytes", def.MaxBodyBytes, "largest request body")
	batchFlags(fs, &o.sim.Batch, def.Batch)
	fs.BoolVar(&o.sim.TrackDistinct, "track-distinct", false, "count distinct input texts in /stats (8 bytes of memory per text)")
	fs.DurationVar(&o.grace, "shutdown-grace", 5*time.Second, "how long to wait for requests in flight at shutdown")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")

	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if err := o.logLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		errs = append(errs, fmt.Errorf("--log-level: %w", err))
	}
	if q, err := openaisim.ProfileQuirks(*profile); err != nil {
		errs = append(errs, fmt.Errorf("--profile: %w", err))
	} else {
		o.sim.Quirks = q
	}
	for kind, v := range globalFaults {
		if !fs.Changed("embeddings-fault-" + kind) {
			*embFaults[kind] = *v
		}
		if !fs.Changed("chat-fault-" + kind) {
			*chatFaults[kind] = *v
		}
	}
	if err := o.sim.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("invalid flags: %w", err)
	}
	return o, nil
}

// run serves until ctx ends. It prints "listening on http://ADDR" on
// stdout once the listener is open.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, pflag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: o.logLevel}))
	sim, err := openaisim.New(o.sim, logger)
	if err != nil {
		return err
	}
	defer sim.Close()
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	srv := &http.Server{
		Handler:           sim.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	if _, err := fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr()); err != nil {
		_ = ln.Close()
		return fmt.Errorf("write address: %w", err)
	}
	logger.Info("serving", "addr", ln.Addr().String())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), o.grace)
	defer cancel()
	err = srv.Shutdown(shutCtx)
	if errors.Is(err, context.DeadlineExceeded) {
		cancelBase()
		err = srv.Close()
	}
	if serr := <-served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		logger.Warn("serving ended", "err", serr)
	}
	if err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	st := sim.Stats()
	logger.Info("stopped", "embeddings_requests", st.Embeddings.Requests, "chat_requests", st.Chat.Requests,
		"batch_requests", st.BatchRequests, "too_many_requests", st.TooManyRequests)
	return nil
}

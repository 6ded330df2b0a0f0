package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/textpulse/textpulse/internal/kafka"
	"github.com/textpulse/textpulse/processor"
	"github.com/textpulse/textpulse/processor/deadletter"
	"github.com/textpulse/textpulse/sink/clickhouse"
)

// shutdownGrace bounds closing the Kafka client and the HTTP server after
// the pipeline returned.
const shutdownGrace = 10 * time.Second

func newLogger(c LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	ver, rev := buildVersion()
	promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
		Name: "textpulse_build_info",
		Help: "Build information; always 1.",
	}, []string{"version", "revision", "goversion"}).WithLabelValues(ver, rev, runtime.Version()).Set(1)
	return reg
}

// openSink connects to ClickHouse, retrying until it answers or ctx is done,
// so that the consumer can start before the server.
func openSink(ctx context.Context, cfg clickhouse.Config, log *slog.Logger, reg prometheus.Registerer) (*clickhouse.Sink, error) {
	snk := clickhouse.New(cfg, log, reg)
	bo := backoff.NewExponentialBackOff()
	bo.MaxInterval = 10 * time.Second
	attempt := 0
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		attempt++
		err := snk.Connect(ctx)
		if errors.Is(err, clickhouse.ErrAuthentication) {
			// Refused credentials stay refused: fail instead of retrying.
			return struct{}{}, backoff.Permanent(err)
		}
		if err != nil {
			log.Warn("connect to clickhouse, will retry", "addr", strings.Join(cfg.Addr, ","), "attempt", attempt, "err", err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(bo), backoff.WithMaxElapsedTime(0))
	if err != nil {
		return nil, err
	}
	return snk, nil
}

// runConsumer is the run command: connect, migrate if asked, consume until
// ctx is done, drain, leave the group.
func runConsumer(ctx context.Context, cfg Config, log *slog.Logger) error {
	reg := newRegistry()
	ver, rev := buildVersion()
	log.Info("starting", "version", ver, "revision", rev, "topics", strings.Join(cfg.Kafka.Topics, ","),
		"group", cfg.Kafka.Group, "clickhouse", strings.Join(cfg.ClickHouse.Addr, ","))

	health := &healthState{}
	srv, err := startHTTP(ctx, cfg.HTTP, reg, health, log)
	if err != nil {
		return err
	}
	defer shutdownHTTP(srv, log)

	snk, err := openSink(ctx, cfg.ClickHouse, log, reg)
	if err != nil {
		return fmt.Errorf("open sink: %w", err)
	}
	defer func() { _ = snk.Close() }()
	log.Info("clickhouse connected", "server_version", snk.Version().String(), "dialect", snk.Dialect().String())
	if cfg.MigrateOnStart {
		if err := migrateOnStart(ctx, snk); err != nil {
			return err
		}
	}

	deps := processor.Deps{Logger: log, Registerer: reg, Writer: snk, Stored: snk, AfterStore: killAfterStoreHook(log)}
	lag := &lagSource{}
	stages, err := buildStages(ctx, cfg, lag.lag, log, reg)
	if err != nil {
		return err
	}
	defer func() {
		if err := stages.Close(); err != nil {
			log.Warn("close stages", "err", err)
		}
	}()
	deps.Stages = stages.stages
	dls, closeDLQ, err := deadLetters(ctx, cfg.Kafka, log, reg)
	if err != nil {
		return err
	}
	defer closeDLQ()
	deps.DeadLetters = dls
	p, err := processor.New(cfg.Batch, cfg.Decode, deps)
	if err != nil {
		return fmt.Errorf("build pipeline: %w", err)
	}
	opts, err := cfg.Kafka.ConsumerOpts(log, reg)
	if err != nil {
		return err
	}
	opts = append(opts, p.ClientOpts()...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("create kafka client: %w", err)
	}
	defer closeClient(cl, log)
	if err := checkKafkaAuth(ctx, cl); err != nil {
		return err
	}
	health.set(p, snk)

	lagCtx, stopLag := context.WithCancel(ctx)
	defer stopLag()
	lag.start(lagCtx, cl, cfg.Kafka, log, reg)

	err = p.Run(ctx, cl)
	log.Info("pipeline stopped", "err", err)
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("run pipeline: %w", err)
	}
	return nil
}

// lagSource reads the consumer lag for the stages, which are built before
// the Kafka client and its lag monitor exist.
type lagSource struct {
	m atomic.Pointer[kafka.LagMonitor]
}

// start runs the lag monitor of cfg on cl until ctx is done, when
// cfg.LagInterval is above 0.
func (s *lagSource) start(ctx context.Context, cl *kgo.Client, cfg kafka.Config, log *slog.Logger, reg prometheus.Registerer) {
	if cfg.LagInterval <= 0 {
		return
	}
	lm := kafka.NewLagMonitor(cl, cfg.Group, log, reg)
	s.m.Store(lm)
	go lm.Run(ctx, cfg.LagInterval)
}

// lag returns the last measured lag, -1 while none was measured.
func (s *lagSource) lag() int64 {
	if lm := s.m.Load(); lm != nil {
		return lm.Lag()
	}
	return -1
}

func closeClient(cl *kgo.Client, log *slog.Logger) {
	done := make(chan struct{})
	go func() {
		// Close leaves the group, so that the partitions move to other
		// members without waiting for the session timeout.
		cl.Close()
		close(done)
	}()
	select {
	case <-done:
		log.Info("left the consumer group")
	case <-time.After(shutdownGrace):
		log.Warn("leaving the consumer group timed out")
	}
}

// pinger checks that a dependency answers; Ping may block until ctx is
// done, and an error means it does not answer now.
type pinger interface {
	Ping(ctx context.Context) error
}

// migrateOnStart applies the pending migrations before consuming.
func migrateOnStart(ctx context.Context, m migrator) error {
	if _, err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate on start: %w", err)
	}
	return nil
}

// deadLetters returns the dead-letter producer of cfg, creating its topic
// when asked, and a function that closes it; with no dead-letter topic it
// returns nil (dead letters are counted and dropped).
func deadLetters(ctx context.Context, cfg kafka.Config, log *slog.Logger, reg prometheus.Registerer) (processor.DeadLetterSink, func(), error) {
	if cfg.DeadLetterTopic == "" {
		return nil, func() {}, nil
	}
	pl, err := cfg.ProducerOpts()
	if err != nil {
		return nil, nil, err
	}
	dlqClient, err := kgo.NewClient(pl...)
	if err != nil {
		return nil, nil, fmt.Errorf("create dead-letter producer: %w", err)
	}
	if cfg.CreateDeadLetterTopic {
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		created, err := kafka.EnsureTopic(tctx, dlqClient, cfg.DeadLetterTopic, 1)
		cancel()
		if err != nil {
			dlqClient.Close()
			return nil, nil, err
		}
		if created {
			log.Info("dead-letter topic created", "topic", cfg.DeadLetterTopic)
		}
	}
	return deadletter.NewProducer(dlqClient, cfg.DeadLetterTopic, log, reg), dlqClient.Close, nil
}

// healthState answers /readyz once the pipeline and sink exist.
type healthState struct {
	mu   sync.Mutex
	p    *processor.Pipeline
	sink pinger
}

func (h *healthState) set(p *processor.Pipeline, s pinger) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.p, h.sink = p, s
}

func (h *healthState) ready(ctx context.Context) error {
	h.mu.Lock()
	p, s := h.p, h.sink
	h.mu.Unlock()
	if p == nil || s == nil {
		return errors.New("starting")
	}
	if !p.Ready() {
		return errors.New("no partitions assigned")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.Ping(ctx); err != nil {
		return err
	}
	return nil
}

func startHTTP(ctx context.Context, cfg HTTPConfig, reg *prometheus.Registry, h *healthState, log *slog.Logger) (*http.Server, error) {
	addr := cfg.Listen
	if addr == "" {
		return nil, nil
	}
	mux := http.NewServeMux()
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := h.ready(r.Context()); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Info("http listening", "addr", ln.Addr().String())
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	return srv, nil
}

func shutdownHTTP(srv *http.Server, log *slog.Logger) {
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
}

// envKillAfterStore names the crash test hook: when it holds N > 0, the
// process SIGKILLs itself right after the Nth batch's rows are stored and
// before its offsets are committed, the window in which a crash leaves rows
// stored but not committed.
const envKillAfterStore = "TEXTPULSE_TEST_KILL_AFTER_STORE"

// killAfterStoreHook returns the AfterStore hook of envKillAfterStore, or
// nil when it is unset.
func killAfterStoreHook(log *slog.Logger) func(*processor.Batch) {
	n, err := strconv.Atoi(os.Getenv(envKillAfterStore))
	if err != nil || n <= 0 {
		return nil
	}
	var stored atomic.Int64
	return func(b *processor.Batch) {
		if stored.Add(1) == int64(n) {
			log.Warn("test hook: killing the process after a stored, uncommitted batch", "batch", b.ID)
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // The signal ends the process.
		}
	}
}

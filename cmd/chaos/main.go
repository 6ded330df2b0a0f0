// Command chaos proves that the consumer loses nothing under faults. It
// produces a known set of events (valid ones and a known share of malformed
// ones) to a fresh topic while consumer processes (the built binary) ingest
// them through the embedding and sentiment stages of the OpenAI-compatible
// simulator, and injects, in one run: repeated SIGKILLs of consumers, group
// members added and removed under load, a broker restart, ClickHouse down
// for a while, and API faults (5xx, 429 storms, timeouts, invalid answers).
// A watcher checks all along that no committed offset is ahead of the rows
// stored. At the end it checks in ClickHouse that every valid event is
// stored and in the dead-letter topic that every malformed one is there,
// prints a summary table and exits non-zero on any loss.
//
// It restarts the shared Kafka broker and ClickHouse server through
// scripts/services.sh, so it must run alone; stopped services are always
// started again before it exits.
//
// On a modern server (the default) it also requires every row to be stored
// exactly once: count() without FINAL equal to the distinct coordinates, and
// the per-minute rollup's total equal to the valid events. On a legacy
// server it reports the duplicates before FINAL and the rollup's error.
//
//	chaos --consumer bin/consumer --mode short
//	chaos --consumer bin/consumer --mode long --server legacy
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		if !errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "chaos:", err)
		}
		os.Exit(1)
	}
}

// options are the command-line settings of one run.
type options struct {
	mode           string
	consumer       string
	script         string
	brokers        string
	clickhouse     string
	server         string
	chService      string
	hookKills      int
	events         int
	rate           int
	partitions     int32
	malformedShare float64
	clickhouseDown time.Duration
	kills          int
	settle         time.Duration
	keepLogs       bool
	serviceFaults  bool
}

func parseOptions(args []string) (options, error) {
	fs := pflag.NewFlagSet("chaos", pflag.ContinueOnError)
	o := options{}
	fs.StringVar(&o.mode, "mode", "short", "short (about 2 minutes, run by make test) or long (minutes, make chaos)")
	fs.StringVar(&o.consumer, "consumer", "bin/consumer", "consumer binary")
	fs.StringVar(&o.script, "services", "scripts/services.sh", "script that stops, starts and restarts kafka and clickhouse")
	fs.StringVar(&o.brokers, "kafka", "127.0.0.1:9092", "Kafka broker")
	fs.StringVar(&o.server, "server", "modern", "ClickHouse server to run on: modern (26.9, 127.0.0.1:19000, service clickhouse-modern) or legacy (18.16, 127.0.0.1:9000, service clickhouse)")
	fs.StringVar(&o.clickhouse, "clickhouse", "", "ClickHouse native address (default by --server)")
	fs.IntVar(&o.events, "events", 0, "events to produce (default by mode)")
	fs.IntVar(&o.rate, "rate", 0, "events produced per second (default by mode)")
	fs.Int32Var(&o.partitions, "partitions", 6, "partitions of the topic")
	fs.Float64Var(&o.malformedShare, "malformed-share", 0.05, "share of malformed events")
	fs.DurationVar(&o.clickhouseDown, "clickhouse-down", 0, "how long ClickHouse is stopped (default by mode)")
	fs.IntVar(&o.kills, "kills", 0, "SIGKILLs of consumers (default by mode)")
	fs.IntVar(&o.hookKills, "hook-kills", 0, "members that SIGKILL themselves right after a batch is stored and before its commit (default by mode)")
	fs.DurationVar(&o.settle, "settle", 0, "how long the run may take to store everything after the last fault (default by mode)")
	fs.BoolVar(&o.keepLogs, "keep-logs", false, "keep the consumer logs even when nothing was lost")
	fs.BoolVar(&o.serviceFaults, "service-faults", true, "restart the broker and stop ClickHouse (false: only consumer and API faults, leaving the shared services alone)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	def := func(v *int, short, long int) {
		if *v == 0 {
			*v = map[bool]int{true: short, false: long}[o.mode == "short"]
		}
	}
	switch o.mode {
	case "short", "long":
	default:
		return o, fmt.Errorf("--mode %q: want short or long", o.mode)
	}
	def(&o.events, 12000, 90000)
	def(&o.rate, 200, 500)
	def(&o.kills, 3, 8)
	def(&o.hookKills, 2, 4)
	switch o.server {
	case "modern":
		o.chService = "clickhouse-modern"
		if o.clickhouse == "" {
			o.clickhouse = "127.0.0.1:19000"
		}
	case "legacy":
		o.chService = "clickhouse"
		if o.clickhouse == "" {
			o.clickhouse = "127.0.0.1:9000"
		}
	default:
		return o, fmt.Errorf("--server %q: want modern or legacy", o.server)
	}
	if o.clickhouseDown == 0 {
		o.clickhouseDown = map[bool]time.Duration{true: 10 * time.Second, false: time.Minute}[o.mode == "short"]
	}
	if o.settle == 0 {
		o.settle = map[bool]time.Duration{true: 90 * time.Second, false: 4 * time.Minute}[o.mode == "short"]
	}
	if o.malformedShare < 0 || o.malformedShare >= 1 || o.partitions < 1 || o.events < 1 || o.rate < 1 {
		return o, errors.New("--malformed-share must be in [0,1); --partitions, --events and --rate positive")
	}
	return o, nil
}

func run(ctx context.Context, args []string) error {
	o, err := parseOptions(args)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	h, err := newHarness(ctx, o, log)
	if err != nil {
		return err
	}
	defer h.close()
	res, err := h.run(ctx)
	if res != nil {
		res.print(os.Stdout)
	}
	if err != nil {
		h.keepLogs = true
		return err
	}
	if problems := res.problems(); len(problems) > 0 {
		h.keepLogs = true
		return fmt.Errorf("%d problem(s): %v", len(problems), problems)
	}
	return nil
}

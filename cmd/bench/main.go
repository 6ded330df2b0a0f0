// Command bench runs the benchmark scenarios against the local services and
// writes bench/results/*.json and BENCHMARKS.md.
//
//	bench [--quick] [--repeat N] [--scenarios ingest,peers]
//
// Each scenario states its settings in its result; repeated runs report the
// median and the spread, and timing-sensitive figures are ratios measured in
// the same run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the command-line settings shared by the scenarios.
type options struct {
	quick      bool
	repeat     int
	scenarios  []string
	outDir     string
	report     string
	consumer   string
	brokers    string
	chAddr     string
	chClient   string
	events     int
	partitions int
	batch      int
	extraArgs  string
	// models is the directory of the models that install built
	// (scripts/tools.sh); emotionModel is the one the e2e and emotion
	// scenarios run.
	models       string
	emotionModel string
	ortLib       string
	python       string
	// sinkerBin is a clickhouse_sinker binary for the peers scenario
	// (optional); chPidFile is the ClickHouse server's pid file, for its
	// CPU time and memory there.
	sinkerBin string
	chPidFile string
	// soakDuration and soakRate are the soak scenario's stream (0
	// duration: 30m, quick 2m).
	soakDuration time.Duration
	soakRate     float64
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.outDir, 0o750); err != nil {
		return fmt.Errorf("create %s: %w", o.outDir, err)
	}
	for _, s := range o.scenarios {
		var r *Result
		var err error
		switch s {
		case "ingest":
			r, err = runIngest(ctx, o, stdout)
		case "peers":
			r, err = runPeers(ctx, o, stdout)
		case "api":
			r, err = runAPI(ctx, o, stdout)
		case "vectors":
			r, err = runVectors(ctx, o, stdout)
		case "emotion":
			r, err = runEmotion(ctx, o, stdout)
		case "e2e":
			r, err = runE2E(ctx, o, stdout)
		case "soak":
			r, err = runSoak(ctx, o, stdout)
		default:
			return fmt.Errorf("unknown scenario %q", s)
		}
		if err != nil {
			return fmt.Errorf("scenario %s: %w", s, err)
		}
		if err := r.save(o.outDir); err != nil {
			return err
		}
	}
	// The report covers the latest result of every scenario in outDir, so
	// running one scenario again updates its section only.
	results, err := loadResults(o.outDir)
	if err != nil {
		return err
	}
	return writeReport(o, results)
}

// parseOptions reads the command line into options, with the defaults
// that depend on --quick filled in.
func parseOptions(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var scen string
	fs.BoolVar(&o.quick, "quick", false, "run each scenario briefly (smoke check)")
	fs.IntVar(&o.repeat, "repeat", 3, "runs per scenario (quick: 1)")
	fs.StringVar(&scen, "scenarios", "ingest,peers,vectors,api,emotion,e2e", "comma-separated scenarios to run: ingest, peers, vectors, api, emotion, e2e, soak (empty: only rewrite the report)")
	fs.StringVar(&o.outDir, "out", "bench/results", "directory for JSON results and profiles")
	fs.StringVar(&o.report, "report", "BENCHMARKS.md", "markdown report to write")
	fs.StringVar(&o.consumer, "consumer", "bin/consumer", "consumer binary")
	fs.StringVar(&o.brokers, "brokers", "127.0.0.1:9092", "Kafka brokers")
	fs.StringVar(&o.chAddr, "clickhouse", "127.0.0.1:9000", "ClickHouse native address")
	fs.StringVar(&o.chClient, "clickhouse-client", "clickhouse-client", "clickhouse-client binary for the baseline")
	fs.IntVar(&o.events, "events", 0, "events per ingest run (default 1000000, quick 200000)")
	fs.IntVar(&o.partitions, "partitions", 4, "partitions of the benchmark topic")
	fs.StringVar(&o.extraArgs, "consumer-args", "", "extra consumer flags for the ingest, vectors and e2e scenarios, space-separated")
	fs.IntVar(&o.batch, "batch-records", 0, "consumer batch.max_records in the ingest scenario (0: the consumer's default)")
	fs.StringVar(&o.models, "models", os.Getenv("TEXTPULSE_TEST_MODELS"), "directory of the models built by scripts/tools.sh")
	fs.StringVar(&o.emotionModel, "emotion-model", "tiny-emotion", "model under --models for the e2e scenario's emotion stage")
	fs.StringVar(&o.ortLib, "ort-lib", os.Getenv("TEXTPULSE_ORT_LIB"), "ONNX Runtime shared library")
	fs.StringVar(&o.python, "python", os.Getenv("TEXTPULSE_TEST_CHDB_PYTHON"), "Python with onnxruntime, for the emotion baseline")
	fs.StringVar(&o.sinkerBin, "sinker-bin", "", "clickhouse_sinker binary for the peers scenario (empty: not run)")
	fs.StringVar(&o.chPidFile, "clickhouse-pid-file", ".local/clickhouse/clickhouse.pid", "pid file of the ClickHouse server at --clickhouse, for the peers scenario's server CPU and memory")
	fs.DurationVar(&o.soakDuration, "soak-duration", 0, "length of the soak scenario's stream (default 30m, quick 2m)")
	fs.Float64Var(&o.soakRate, "soak-rate", 425, "events per second of the soak scenario's stream")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if scen != "" {
		o.scenarios = strings.Split(scen, ",")
	}
	if o.quick {
		o.repeat = 1
	}
	if o.events == 0 {
		o.events = 1_000_000
		if o.quick {
			o.events = 200_000
		}
	}
	if o.repeat < 1 {
		return o, errors.New("--repeat must be at least 1")
	}
	return o, nil
}

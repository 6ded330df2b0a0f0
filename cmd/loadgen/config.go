package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/textpulse/textpulse/internal/textgen"
)

// config is the parsed and validated command line.
type config struct {
	// What to generate.
	gen   textgen.Options
	count int64
	rate  float64
	dur   time.Duration

	// Where to send it: a file when file is set, Kafka otherwise.
	file            string
	brokers         []string
	topic           string
	clientID        string
	createTopic     bool
	partitions      int32
	replication     int16
	compression     kgo.CompressionCodec
	compressionName string
	linger          time.Duration
	batchMaxBytes   int32
	maxBuffered     int
	acks            kgo.Acks
	acksAll         bool
	key             string
	connectTimeout  time.Duration
	deliveryTimeout time.Duration
	flushTimeout    time.Duration

	// How to report.
	progress    time.Duration
	jsonSummary bool
	logLevel    slog.Level
}

// Key modes for --key.
const (
	keyNone   = "none"
	keyID     = "id"
	keyAuthor = "author"
)

// parseFlags parses and validates args. It returns pflag.ErrHelp after
// printing the usage to stderr when args ask for help.
func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := pflag.NewFlagSet("loadgen", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	fs.Usage = func() {
		_, _ = fmt.Fprintf(stderr, "Usage: loadgen [flags]\n\n"+
			"Produces synthetic social media events to Kafka (or to a JSONEachRow file with --file).\n"+
			"Stops after --count events, after --duration, or at an interrupt, whichever comes first.\n\n")
		fs.PrintDefaults()
	}

	cfg := &config{}
	fs.Int64Var(&cfg.count, "count", 0, "number of events to produce (0: no limit; then set --duration or --rate)")
	fs.Float64Var(&cfg.rate, "rate", 0, "events per second (0: as fast as possible)")
	fs.DurationVar(&cfg.dur, "duration", 0, "how long to produce (0: no limit)")

	fs.Uint64Var(&cfg.gen.Seed, "seed", 1, "generator seed; equal seeds and --start give equal events")
	fs.Float64Var(&cfg.gen.RepeatShare, "repeat-share", textgen.DefaultRepeatShare, "share of valid events whose text repeats an earlier text exactly")
	fs.Float64Var(&cfg.gen.MalformedShare, "malformed-share", 0, "share of malformed events (invalid JSON, missing text, wrong type, invalid UTF-8)")
	fs.IntVar(&cfg.gen.FixedSize, "fixed-size", 0, fmt.Sprintf("make every valid event exactly this many bytes (0: natural lengths; else %d to %d)", textgen.MinFixedSize, textgen.MaxFixedSize))
	start := fs.String("start", "now", `created_at of the first event: "now" or an RFC 3339 time`)

	fs.StringVar(&cfg.file, "file", "", "write JSONEachRow lines to this file instead of producing to Kafka")
	fs.StringSliceVar(&cfg.brokers, "brokers", []string{"127.0.0.1:9092"}, "seed brokers (host:port, comma-separated)")
	fs.StringVar(&cfg.topic, "topic", "textpulse.events", "topic to produce to")
	fs.StringVar(&cfg.clientID, "client-id", "textpulse-loadgen", "Kafka client id")
	fs.BoolVar(&cfg.createTopic, "create-topic", true, "create the topic when it does not exist")
	fs.Int32Var(&cfg.partitions, "partitions", 6, "partitions of a created topic")
	fs.Int16Var(&cfg.replication, "replication-factor", -1, "replication factor of a created topic (-1: broker default)")
	compression := fs.String("compression", "lz4", "batch compression: none, lz4, zstd, snappy or gzip")
	fs.DurationVar(&cfg.linger, "linger", 5*time.Millisecond, "how long a partition batch waits for more records")
	fs.Int32Var(&cfg.batchMaxBytes, "batch-max-bytes", 1000012, "largest uncompressed record batch")
	fs.IntVar(&cfg.maxBuffered, "max-buffered", 100000, "most records produced but not yet acknowledged")
	acks := fs.String("acks", "all", "acknowledgements to wait for: all (idempotent), leader or none")
	fs.StringVar(&cfg.key, "key", keyNone, "record key: none, id (event id) or author")
	fs.DurationVar(&cfg.connectTimeout, "connect-timeout", 10*time.Second, "how long to wait for the brokers and the topic at start")
	fs.DurationVar(&cfg.deliveryTimeout, "delivery-timeout", time.Minute, "how long a record may take to be acknowledged")
	fs.DurationVar(&cfg.flushTimeout, "flush-timeout", time.Minute, "how long to wait for buffered records at the end")

	fs.DurationVar(&cfg.progress, "progress", time.Second, "progress report interval on stderr (0: none)")
	fs.BoolVar(&cfg.jsonSummary, "json-summary", false, "print the summary as a JSON object on stdout")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")

	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	errs = append(errs, cfg.parseValues(*start, *logLevel, *compression, *acks)...)
	errs = append(errs, cfg.validate()...)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("invalid flags: %w", err)
	}
	return cfg, nil
}

// parseValues sets the fields that are read from the string flags --start,
// --log-level, --compression and --acks.
func (c *config) parseValues(start, logLevel, compression, acks string) []error {
	var errs []error
	if start == "now" {
		c.gen.Start = time.Now()
	} else if t, err := time.Parse(time.RFC3339Nano, start); err == nil {
		c.gen.Start = t
	} else {
		errs = append(errs, fmt.Errorf("--start %q is neither now nor an RFC 3339 time", start))
	}
	if err := c.logLevel.UnmarshalText([]byte(logLevel)); err != nil {
		errs = append(errs, fmt.Errorf("--log-level: %w", err))
	}
	var ok bool
	if c.compression, ok = compressionCodec(compression); !ok {
		errs = append(errs, fmt.Errorf("--compression %q is not none, lz4, zstd, snappy or gzip", compression))
	}
	c.compressionName = compression
	switch acks {
	case "all":
		c.acks, c.acksAll = kgo.AllISRAcks(), true
	case "leader":
		c.acks = kgo.LeaderAck()
	case "none":
		c.acks = kgo.NoAck()
	default:
		errs = append(errs, fmt.Errorf("--acks %q is not all, leader or none", acks))
	}
	return errs
}

// validate checks the ranges of the parsed values.
func (c *config) validate() []error {
	var errs []error
	if c.count < 0 {
		errs = append(errs, fmt.Errorf("--count %d is negative", c.count))
	}
	if !(c.rate >= 0) || math.IsInf(c.rate, 0) {
		errs = append(errs, fmt.Errorf("--rate %v is negative or not a finite number", c.rate))
	}
	if c.dur < 0 {
		errs = append(errs, fmt.Errorf("--duration %v is negative", c.dur))
	}
	if c.count == 0 && c.dur == 0 && c.rate == 0 {
		errs = append(errs, errors.New("set --count, --duration or --rate: without one loadgen would produce as fast as it can forever"))
	}
	if _, err := textgen.New(c.gen); err != nil {
		errs = append(errs, err)
	}
	if c.file != "" {
		return errs
	}
	if len(c.brokers) == 0 || slicesContainsEmpty(c.brokers) {
		errs = append(errs, errors.New("--brokers is empty"))
	}
	if c.topic == "" {
		errs = append(errs, errors.New("--topic is empty"))
	}
	if c.partitions < 1 {
		errs = append(errs, fmt.Errorf("--partitions %d is below 1", c.partitions))
	}
	if c.replication == 0 || c.replication < -1 {
		errs = append(errs, fmt.Errorf("--replication-factor %d is neither -1 nor positive", c.replication))
	}
	if c.linger < 0 {
		errs = append(errs, fmt.Errorf("--linger %v is negative", c.linger))
	}
	if c.batchMaxBytes < 1024 {
		errs = append(errs, fmt.Errorf("--batch-max-bytes %d is below 1024", c.batchMaxBytes))
	}
	if c.maxBuffered < 2 {
		errs = append(errs, fmt.Errorf("--max-buffered %d is below 2", c.maxBuffered))
	}
	if c.key != keyNone && c.key != keyID && c.key != keyAuthor {
		errs = append(errs, fmt.Errorf("--key %q is not none, id or author", c.key))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--connect-timeout", c.connectTimeout}, {"--delivery-timeout", c.deliveryTimeout}, {"--flush-timeout", c.flushTimeout}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s %v is not positive", d.name, d.v))
		}
	}
	if c.progress < 0 {
		errs = append(errs, fmt.Errorf("--progress %v is negative", c.progress))
	}
	return errs
}

// slicesContainsEmpty reports whether any of ss is blank.
func slicesContainsEmpty(ss []string) bool {
	for _, s := range ss {
		if strings.TrimSpace(s) == "" {
			return true
		}
	}
	return false
}

// compressionCodec returns the codec named name.
func compressionCodec(name string) (kgo.CompressionCodec, bool) {
	switch name {
	case "none":
		return kgo.NoCompression(), true
	case "lz4":
		return kgo.Lz4Compression(), true
	case "zstd":
		return kgo.ZstdCompression(), true
	case "snappy":
		return kgo.SnappyCompression(), true
	case "gzip":
		return kgo.GzipCompression(), true
	}
	return kgo.CompressionCodec{}, false
}

package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/textpulse/textpulse/processor/deadletter"
)

// dlqFilter selects dead letters.
type dlqFilter struct {
	stages, classes, sourceTopics []string
	partitions                    []int32
	offsets                       offsetRange
	dlqOffsets                    offsetRange
	since, until                  time.Time
	max                           int
}

// offsetRange is an inclusive range of offsets; -1 leaves an end open.
type offsetRange struct{ from, to int64 }

func (r offsetRange) contains(o int64) bool {
	return (r.from < 0 || o >= r.from) && (r.to < 0 || o <= r.to)
}

// parseOffsetRange reads "FROM-TO", "FROM-" or "-TO" (inclusive); "" is
// every offset.
func parseOffsetRange(s string) (offsetRange, error) {
	r := offsetRange{from: -1, to: -1}
	if s == "" {
		return r, nil
	}
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		return r, fmt.Errorf("offset range %q: want FROM-TO, FROM- or -TO", s)
	}
	var err error
	if lo != "" {
		if r.from, err = strconv.ParseInt(lo, 10, 64); err != nil || r.from < 0 {
			return r, fmt.Errorf("offset range %q: bad start", s)
		}
	}
	if hi != "" {
		if r.to, err = strconv.ParseInt(hi, 10, 64); err != nil || r.to < 0 {
			return r, fmt.Errorf("offset range %q: bad end", s)
		}
	}
	if r.from >= 0 && r.to >= 0 && r.from > r.to {
		return r, fmt.Errorf("offset range %q: start after end", s)
	}
	return r, nil
}

// parseTimeFlag reads an RFC 3339 time, or a duration meaning that long
// before now; "" is the zero time.
func parseTimeFlag(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: want RFC 3339 or a duration before now", s)
	}
	return t, nil
}

func (f *dlqFilter) match(r *kgo.Record, info *deadletter.Info) bool {
	switch {
	case !f.dlqOffsets.contains(r.Offset):
		return false
	case len(f.stages) > 0 && !slices.Contains(f.stages, info.Stage):
		return false
	case len(f.classes) > 0 && !slices.Contains(f.classes, string(info.Class)):
		return false
	case len(f.sourceTopics) > 0 && !slices.Contains(f.sourceTopics, info.Topic):
		return false
	case len(f.partitions) > 0 && (!info.HasSource || !slices.Contains(f.partitions, info.Partition)):
		return false
	case (f.offsets.from >= 0 || f.offsets.to >= 0) && (!info.HasSource || !f.offsets.contains(info.Offset)):
		return false
	case !f.since.IsZero() && info.Time.Before(f.since):
		return false
	case !f.until.IsZero() && info.Time.After(f.until):
		return false
	}
	return true
}

// dlqOptions are the flags of the dlq commands.
type dlqOptions struct {
	topic    string
	toTopic  string
	dryRun   bool
	json     bool
	top      int
	progress time.Duration
	filter   dlqFilter
}

// dlqFlags adds the dlq flags to fs and returns a function that reads them
// once fs is parsed.
func dlqFlags(fs *pflag.FlagSet) func(now time.Time) (dlqOptions, error) {
	topic := fs.String("topic", "", "dead-letter topic to read (default kafka.dead_letter_topic)")
	toTopic := fs.String("to-topic", "", "replay: publish to this topic instead of the source topic in the headers")
	dryRun := fs.Bool("dry-run", false, "replay: report what would be sent, send nothing")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	top := fs.Int("top", 10, "inspect: how many of the most frequent error messages to show")
	progress := fs.Duration("progress", 2*time.Second, "replay: interval of progress lines on stderr (0 disables)")
	stages := fs.StringSlice("stage", nil, "only dead letters from these stages (decode, embedding, sentiment, sink, ...)")
	classes := fs.StringSlice("class", nil, "only these error classes (invalid_json, stage_failed, ...)")
	srcTopics := fs.StringSlice("source-topic", nil, "only dead letters from these source topics")
	parts := fs.Int32Slice("source-partition", nil, "only dead letters from these source partitions")
	offsets := fs.String("source-offsets", "", "only source offsets in FROM-TO (inclusive; FROM- or -TO leave an end open)")
	dlqOffsets := fs.String("dlq-offsets", "", "only dead-letter topic offsets in FROM-TO, for resuming a replay")
	since := fs.String("since", "", "only dead letters dead-lettered at or after this time (RFC 3339, or a duration ago)")
	until := fs.String("until", "", "only dead letters dead-lettered at or before this time (RFC 3339, or a duration ago)")
	maxN := fs.Int("max", 0, "at most this many dead letters (0: all)")
	return func(now time.Time) (dlqOptions, error) {
		o := dlqOptions{topic: *topic, toTopic: *toTopic, dryRun: *dryRun, json: *asJSON, top: *top, progress: *progress}
		o.filter = dlqFilter{stages: *stages, classes: *classes, sourceTopics: *srcTopics, partitions: *parts, max: *maxN}
		var errs []error
		var err error
		if o.filter.offsets, err = parseOffsetRange(*offsets); err != nil {
			errs = append(errs, fmt.Errorf("--source-offsets: %w", err))
		}
		if o.filter.dlqOffsets, err = parseOffsetRange(*dlqOffsets); err != nil {
			errs = append(errs, fmt.Errorf("--dlq-offsets: %w", err))
		}
		if o.filter.since, err = parseTimeFlag(*since, now); err != nil {
			errs = append(errs, fmt.Errorf("--since: %w", err))
		}
		if o.filter.until, err = parseTimeFlag(*until, now); err != nil {
			errs = append(errs, fmt.Errorf("--until: %w", err))
		}
		if *maxN < 0 || *top < 0 {
			errs = append(errs, errors.New("--max and --top must not be negative"))
		}
		return o, errors.Join(errs...)
	}
}

// runDLQ is the dlq command: inspect or replay a dead-letter topic.
func runDLQ(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "inspect" && args[0] != "replay") {
		return &usageError{errors.New("dlq: want a subcommand: inspect or replay")}
	}
	sub, args := args[0], args[1:]
	all := flagSet("consumer dlq "+sub, DefaultConfig())
	all.SetOutput(stderr)
	readOpts := dlqFlags(all)
	cfg, err := loadCommandConfig(all, "consumer dlq "+sub, args, getenv)
	if err != nil {
		return err
	}
	if err := cfg.Kafka.Validate(); err != nil {
		return &usageError{fmt.Errorf("invalid configuration:\n%w", err)}
	}
	opts, err := readOpts(time.Now())
	if err != nil {
		return &usageError{err}
	}
	if opts.topic == "" {
		opts.topic = cfg.Kafka.DeadLetterTopic
	}
	if opts.topic == "" {
		return &usageError{errors.New("dlq: no dead-letter topic: set --topic or kafka.dead_letter_topic")}
	}
	connOpts, err := cfg.Kafka.ConnOpts()
	if err != nil {
		return err
	}
	if sub == "inspect" {
		return inspectDLQ(ctx, connOpts, opts, stdout)
	}
	prodOpts, err := cfg.Kafka.ProducerOpts()
	if err != nil {
		return err
	}
	return replayDLQ(ctx, connOpts, append(prodOpts, kgo.ProducerBatchMaxBytes(deadletter.MaxRecordBytes)), opts, stdout, stderr)
}

// dlqSummary is what inspect reports.
type dlqSummary struct {
	Topic        string           `json:"topic"`
	Records      int64            `json:"records"`
	Matched      int              `json:"matched"`
	ByStage      map[string]int   `json:"by_stage"`
	ByClass      map[string]int   `json:"by_error_class"`
	BySource     map[string]int   `json:"by_source_partition"`
	ByAttempts   map[string]int   `json:"by_attempts"`
	First        *time.Time       `json:"first,omitempty"`
	Last         *time.Time       `json:"last,omitempty"`
	Truncated    int              `json:"truncated_values"`
	BadHeaders   int              `json:"bad_headers"`
	TopErrors    []errorFrequency `json:"top_errors"`
	errorsByText map[string]int
}

// errorFrequency is one error message and how many dead letters carry it.
type errorFrequency struct {
	Error string `json:"error"`
	Count int    `json:"count"`
}

func newSummary(topic string) *dlqSummary {
	return &dlqSummary{Topic: topic, ByStage: map[string]int{}, ByClass: map[string]int{}, BySource: map[string]int{},
		ByAttempts: map[string]int{}, errorsByText: map[string]int{}}
}

func (s *dlqSummary) add(l *deadletter.Letter) {
	s.Matched++
	s.ByStage[orNone(l.Info.Stage)]++
	s.ByClass[orNone(string(l.Info.Class))]++
	src := "(none)"
	if l.Info.HasSource {
		src = l.Info.Topic + "/" + strconv.Itoa(int(l.Info.Partition))
	}
	s.BySource[src]++
	s.ByAttempts[strconv.Itoa(l.Info.Attempts)]++
	if t := l.Info.Time; !t.IsZero() {
		if s.First == nil || t.Before(*s.First) {
			s.First = &t
		}
		if s.Last == nil || t.After(*s.Last) {
			t2 := t
			s.Last = &t2
		}
	}
	if l.Info.ValueBytes > 0 {
		s.Truncated++
	}
	if l.Err != nil {
		s.BadHeaders++
	}
	s.errorsByText[l.Info.Error]++
}

func (s *dlqSummary) finish(top int) {
	for msg, n := range s.errorsByText {
		s.TopErrors = append(s.TopErrors, errorFrequency{Error: msg, Count: n})
	}
	slices.SortFunc(s.TopErrors, func(a, b errorFrequency) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Error, b.Error))
	})
	s.TopErrors = s.TopErrors[:min(top, len(s.TopErrors))]
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func inspectDLQ(ctx context.Context, connOpts []kgo.Opt, o dlqOptions, stdout io.Writer) error {
	s := newSummary(o.topic)
	err := deadletter.Scan(ctx, connOpts, o.topic, func(n int64) { s.Records = n }, func(l deadletter.Letter) bool {
		if !o.filter.match(l.Record, &l.Info) {
			return true
		}
		s.add(&l)
		return o.filter.max == 0 || s.Matched < o.filter.max
	})
	if err != nil {
		return err
	}
	s.finish(o.top)
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	return writeSummary(stdout, s)
}

func writeSummary(w io.Writer, s *dlqSummary) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, args ...any) { _, _ = fmt.Fprintf(tw, format, args...) }
	p("dead-letter topic\t%s\n", s.Topic)
	p("records\t%d\n", s.Records)
	p("matched\t%d\n", s.Matched)
	if s.First != nil {
		p("first\t%s\n", s.First.Format(time.RFC3339))
		p("last\t%s\n", s.Last.Format(time.RFC3339))
	}
	if s.Truncated > 0 {
		p("values cut\t%d (originals stay in the source topic)\n", s.Truncated)
	}
	if s.BadHeaders > 0 {
		p("bad headers\t%d\n", s.BadHeaders)
	}
	for _, sec := range []struct {
		name string
		m    map[string]int
	}{{"by stage", s.ByStage}, {"by error class", s.ByClass}, {"by source partition", s.BySource}, {"by attempts", s.ByAttempts}} {
		p("\n%s\n", sec.name)
		keys := slices.Sorted(maps.Keys(sec.m))
		slices.SortStableFunc(keys, func(a, b string) int { return cmp.Compare(sec.m[b], sec.m[a]) })
		for _, k := range keys {
			p("  %s\t%d\n", k, sec.m[k])
		}
	}
	if len(s.TopErrors) > 0 {
		p("\ntop errors\n")
		for _, e := range s.TopErrors {
			msg := e.Error
			if len(msg) > 160 {
				msg = msg[:160] + "..."
			}
			p("  %d\t%s\n", e.Count, strconv.Quote(msg))
		}
	}
	return tw.Flush()
}

// replayDLQ replays the dead letters o selects and prints the report; a
// report that cannot be written fails the command.
func replayDLQ(ctx context.Context, connOpts, prodOpts []kgo.Opt, o dlqOptions, stdout, stderr io.Writer) error {
	var prod *kgo.Client
	if !o.dryRun {
		var err error
		if prod, err = kgo.NewClient(prodOpts...); err != nil {
			return fmt.Errorf("create kafka producer: %w", err)
		}
		defer prod.Close()
	}
	rp := &deadletter.Replayer{Topic: o.topic, ToTopic: o.toTopic, DryRun: o.dryRun, Max: o.filter.max,
		Match: o.filter.match, Progress: replayProgress(o, stderr)}
	rep, err := rp.Run(ctx, connOpts, prod)
	if werr := writeReplayReport(stdout, rep, o.json); werr != nil && (err == nil || errors.Is(err, deadletter.ErrReplayIncomplete)) {
		err = fmt.Errorf("replay %s after sending %d: %w", o.topic, rep.Sent, werr)
	}
	return err
}

// replayProgress returns the progress callback of a replay: a line on
// stderr every o.progress, and one at the end; none when o.progress is not
// positive.
func replayProgress(o dlqOptions, stderr io.Writer) func(*deadletter.ReplayReport, int64, bool) {
	lastProgress := time.Now()
	return func(rep *deadletter.ReplayReport, total int64, final bool) {
		if o.progress <= 0 || (!final && time.Since(lastProgress) < o.progress) {
			return
		}
		lastProgress = time.Now()
		_, _ = fmt.Fprintf(stderr, "replay %s: scanned %d of %d, matched %d, sent %d, skipped %d, failed %d\n",
			o.topic, rep.Scanned, total, rep.Matched, rep.Sent, len(rep.Skipped), len(rep.Failed))
	}
}

func writeReplayReport(w io.Writer, rep *deadletter.ReplayReport, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	verb := "sent"
	sent := rep.Sent
	if rep.DryRun {
		verb = "would send"
		for _, n := range rep.ByTarget {
			sent += n
		}
	}
	_, err := fmt.Fprintf(w, "dead-letter topic %s: scanned %d, matched %d, %s %d, skipped %d, failed %d\n",
		rep.Topic, rep.Scanned, rep.Matched, verb, sent, len(rep.Skipped), len(rep.Failed))
	if err != nil {
		return err
	}
	for _, t := range slices.Sorted(maps.Keys(rep.ByTarget)) {
		_, _ = fmt.Fprintf(w, "  to %s: %d\n", t, rep.ByTarget[t])
	}
	for _, p := range slices.Sorted(maps.Keys(rep.LastSentOffset)) {
		_, _ = fmt.Fprintf(w, "  last %s dead-letter offset: partition %s offset %d\n", verb, p, rep.LastSentOffset[p])
	}
	for _, s := range rep.Skipped {
		_, _ = fmt.Fprintf(w, "  skipped %d/%d: %s\n", s.Partition, s.Offset, s.Reason)
	}
	for _, s := range rep.Failed {
		_, _ = fmt.Fprintf(w, "  FAILED %d/%d: %s\n", s.Partition, s.Offset, s.Reason)
	}
	for _, p := range slices.Sorted(maps.Keys(rep.ResumeFrom)) {
		_, _ = fmt.Fprintf(w, "  not attempted: partition %s from offset %d (--dlq-offsets %d-)\n", p, rep.ResumeFrom[p], rep.ResumeFrom[p])
	}
	if len(rep.Failed) > 0 {
		_, _ = fmt.Fprintln(w, "  the failed dead letters were not sent; replay each with --dlq-offsets N-N")
	}
	return nil
}

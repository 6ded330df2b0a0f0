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
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/textpulse/textpulse/processor/deadletter"
)

// replayChunk is how many dead letters one synchronous produce sends.
const replayChunk = 500

// errReplayIncomplete is returned by replay when some dead letters were not
// sent.
var errReplayIncomplete = errors.New("replay incomplete")

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
	// One flag set parses both the configuration keys and the dlq flags;
	// the configuration keys that were given are then loaded the usual
	// way, with the environment and --config.
	all := flagSet("consumer dlq "+sub, DefaultConfig())
	all.SetOutput(stderr)
	readOpts := dlqFlags(all)
	if err := all.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return &usageError{err}
	}
	cfgFlags := flagSet("consumer dlq "+sub, DefaultConfig())
	var cfgArgs []string
	all.Visit(func(f *pflag.Flag) {
		if cfgFlags.Lookup(f.Name) == nil {
			return
		}
		v := f.Value.String()
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			v = strings.Join(sv.GetSlice(), ",")
		}
		cfgArgs = append(cfgArgs, "--"+f.Name+"="+v)
	})
	cfg, _, err := loadConfig(cfgFlags, cfgArgs, getenv)
	if err != nil {
		return &usageError{err}
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
	return replayDLQ(ctx, connOpts, append(prodOpts, kgo.ProducerBatchMaxBytes(replayMaxBytes)), opts, stdout, stderr)
}

// replayMaxBytes lets a replay produce records as large as the broker's
// topic accepts; the broker still enforces its own max.message.bytes.
const replayMaxBytes = 64 << 20

// dlqLetter is one dead letter read from the topic.
type dlqLetter struct {
	rec  *kgo.Record
	info deadletter.Info
	err  error
}

// scanDLQ reads topic from its start offsets to the end offsets it has when
// the scan starts, calling fn for each record in offset order per
// partition; fn returning false stops the scan. Before the first record it
// passes the number of records in the range to total.
func scanDLQ(ctx context.Context, connOpts []kgo.Opt, topic string, total func(int64), fn func(dlqLetter) bool) error {
	cl, err := kgo.NewClient(connOpts...)
	if err != nil {
		return fmt.Errorf("create kafka client: %w", err)
	}
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		cl.Close()
		return fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	cl.Close()
	if err != nil {
		return fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	from := make(map[int32]kgo.Offset)
	left := make(map[int32]int64)
	var n int64
	starts.Each(func(o kadm.ListedOffset) {
		end, _ := ends.Lookup(topic, o.Partition)
		if end.Offset > o.Offset {
			from[o.Partition] = kgo.NewOffset().At(o.Offset)
			left[o.Partition] = end.Offset
			n += end.Offset - o.Offset
		}
	})
	total(n)
	if len(from) == 0 {
		return nil
	}
	rd, err := kgo.NewClient(append(slices.Clone(connOpts),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchMaxBytes(replayMaxBytes), kgo.FetchMaxPartitionBytes(replayMaxBytes))...)
	if err != nil {
		return fmt.Errorf("create kafka client: %w", err)
	}
	defer rd.Close()
	for len(left) > 0 {
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read %s: %w", topic, err)
		}
		var fetchErr error
		fs.EachError(func(t string, p int32, err error) {
			fetchErr = fmt.Errorf("read %s partition %d: %w", t, p, err)
		})
		if fetchErr != nil {
			return fetchErr
		}
		stop := false
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := left[r.Partition]
			if stop || !ok || r.Offset >= end {
				return
			}
			if r.Offset+1 >= end {
				delete(left, r.Partition)
			}
			info, perr := deadletter.ParseDeadLetterHeaders(r.Headers)
			if !fn(dlqLetter{rec: r, info: info, err: perr}) {
				stop = true
			}
		})
		if stop {
			return nil
		}
	}
	return nil
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

func (s *dlqSummary) add(l *dlqLetter) {
	s.Matched++
	s.ByStage[orNone(l.info.Stage)]++
	s.ByClass[orNone(string(l.info.Class))]++
	src := "(none)"
	if l.info.HasSource {
		src = l.info.Topic + "/" + strconv.Itoa(int(l.info.Partition))
	}
	s.BySource[src]++
	s.ByAttempts[strconv.Itoa(l.info.Attempts)]++
	if t := l.info.Time; !t.IsZero() {
		if s.First == nil || t.Before(*s.First) {
			s.First = &t
		}
		if s.Last == nil || t.After(*s.Last) {
			t2 := t
			s.Last = &t2
		}
	}
	if l.info.ValueBytes > 0 {
		s.Truncated++
	}
	if l.err != nil {
		s.BadHeaders++
	}
	s.errorsByText[l.info.Error]++
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
	err := scanDLQ(ctx, connOpts, o.topic, func(n int64) { s.Records = n }, func(l dlqLetter) bool {
		if !o.filter.match(l.rec, &l.info) {
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

// replayReport is what replay reports.
type replayReport struct {
	Topic   string `json:"topic"`
	DryRun  bool   `json:"dry_run"`
	Scanned int    `json:"scanned"`
	Matched int    `json:"matched"`
	Sent    int    `json:"sent"`
	// ByTarget counts sent (or, in a dry run, to-be-sent) records per
	// target topic.
	ByTarget map[string]int  `json:"by_target"`
	Skipped  []replaySkipped `json:"skipped"`
	Failed   []replaySkipped `json:"failed"`
	// LastSentOffset is the dead-letter offset of the last record sent per
	// dead-letter partition.
	LastSentOffset map[string]int64 `json:"last_sent_dlq_offset"`
	// ResumeFrom is, after a failure, the first dead-letter offset per
	// partition that was not attempted: a later replay from there, plus
	// one of each failed dead letter, sends everything exactly once.
	ResumeFrom map[string]int64 `json:"resume_from_dlq_offset,omitempty"`
}

// replaySkipped is a dead letter that was not replayed, and why.
type replaySkipped struct {
	Partition int32  `json:"dlq_partition"`
	Offset    int64  `json:"dlq_offset"`
	Reason    string `json:"reason"`
}

func replayDLQ(ctx context.Context, connOpts, prodOpts []kgo.Opt, o dlqOptions, stdout, stderr io.Writer) error {
	rep := &replayReport{Topic: o.topic, DryRun: o.dryRun, ByTarget: map[string]int{}, LastSentOffset: map[string]int64{}}
	var prod *kgo.Client
	if !o.dryRun {
		var err error
		if prod, err = kgo.NewClient(prodOpts...); err != nil {
			return fmt.Errorf("create kafka producer: %w", err)
		}
		defer prod.Close()
	}
	var total int64
	lastProgress := time.Now()
	progress := func(force bool) {
		if o.progress <= 0 || (!force && time.Since(lastProgress) < o.progress) {
			return
		}
		lastProgress = time.Now()
		_, _ = fmt.Fprintf(stderr, "replay %s: scanned %d of %d, matched %d, sent %d, skipped %d, failed %d\n",
			o.topic, rep.Scanned, total, rep.Matched, rep.Sent, len(rep.Skipped), len(rep.Failed))
	}
	var pending []*kgo.Record
	var pendingFrom []*kgo.Record
	flush := func() bool {
		if len(pending) == 0 {
			return true
		}
		defer func() { pending, pendingFrom = pending[:0], pendingFrom[:0] }()
		if o.dryRun {
			for i, r := range pending {
				rep.ByTarget[r.Topic]++
				rep.LastSentOffset[strconv.Itoa(int(pendingFrom[i].Partition))] = pendingFrom[i].Offset
			}
			return true
		}
		// Synchronous: each record is acknowledged by every in-sync
		// replica (or has failed) before the next chunk is read.
		results := prod.ProduceSync(ctx, pending...)
		// Results come in completion order, not in the order of pending.
		from := make(map[*kgo.Record]*kgo.Record, len(pending))
		for i, r := range pending {
			from[r] = pendingFrom[i]
		}
		ok := results.FirstErr() == nil
		if !ok {
			rep.ResumeFrom = map[string]int64{}
			for _, src := range pendingFrom {
				k := strconv.Itoa(int(src.Partition))
				rep.ResumeFrom[k] = max(rep.ResumeFrom[k], src.Offset+1)
			}
		}
		for _, res := range results {
			src := from[res.Record]
			if res.Err != nil {
				rep.Failed = append(rep.Failed, replaySkipped{Partition: src.Partition, Offset: src.Offset, Reason: res.Err.Error()})
				continue
			}
			rep.Sent++
			rep.ByTarget[res.Record.Topic]++
			k := strconv.Itoa(int(src.Partition))
			if cur, seen := rep.LastSentOffset[k]; !seen || src.Offset > cur {
				rep.LastSentOffset[k] = src.Offset
			}
		}
		return ok
	}
	err := scanDLQ(ctx, connOpts, o.topic, func(n int64) { total = n }, func(l dlqLetter) bool {
		rep.Scanned++
		defer progress(false)
		if !o.filter.match(l.rec, &l.info) {
			return true
		}
		rep.Matched++
		skip := func(reason string) bool {
			rep.Skipped = append(rep.Skipped, replaySkipped{Partition: l.rec.Partition, Offset: l.rec.Offset, Reason: reason})
			return true
		}
		target := o.toTopic
		switch {
		case l.err != nil:
			return skip(l.err.Error())
		case l.info.ValueBytes > 0:
			return skip(fmt.Sprintf("value cut from %d bytes; the original is at %s/%d/%d", l.info.ValueBytes,
				l.info.Topic, l.info.Partition, l.info.Offset))
		case target == "" && !l.info.HasSource:
			return skip("no source topic in the headers; use --to-topic")
		case target == "":
			target = l.info.Topic
		}
		pending = append(pending, deadletter.ReplayRecord(target, l.rec, l.info.Attempts))
		pendingFrom = append(pendingFrom, l.rec)
		if len(pending) >= replayChunk && !flush() {
			return false
		}
		return o.filter.max == 0 || rep.Matched < o.filter.max
	})
	if err == nil && len(rep.Failed) == 0 {
		flush()
	}
	progress(true)
	slices.SortFunc(rep.Failed, func(a, b replaySkipped) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	if werr := writeReplayReport(stdout, rep, o.json); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("replay %s after sending %d: %w", o.topic, rep.Sent, err)
	}
	if len(rep.Failed) > 0 {
		return fmt.Errorf("%w: %d sent, %d failed", errReplayIncomplete, rep.Sent, len(rep.Failed))
	}
	return nil
}

func writeReplayReport(w io.Writer, rep *replayReport, asJSON bool) error {
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

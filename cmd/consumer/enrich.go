package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/textpulse/textpulse/internal/harness"
	"github.com/textpulse/textpulse/processor"
	"github.com/textpulse/textpulse/processor/reenrich"
	"github.com/textpulse/textpulse/sink/clickhouse"
)

// envKillAfterPage names the test hook that SIGKILLs consumer enrich right
// after the write of that page, before its checkpoint.
const envKillAfterPage = "TEXTPULSE_TEST_KILL_AFTER_PAGE"

// enrichOptions are the flags of consumer enrich beside the configuration.
type enrichOptions struct {
	filter     reenrich.Filter
	staleModel bool
	stages     []string
	rerun      []string
	pageSize   int
	checkpoint string
	dryRun     bool
	showRows   int
	via        string
	progress   string
	interval   time.Duration
	json       bool
}

// enrichFlags adds the flags of consumer enrich to fs and returns a function
// that reads them once fs is parsed.
func enrichFlags(fs *pflag.FlagSet) func(now time.Time) (enrichOptions, error) {
	var o enrichOptions
	var since, until string
	var parts []int32
	fs.BoolVar(&o.filter.Partial, "partial", false, "select rows with status partial (any stage failed or deferred)")
	fs.StringSliceVar(&o.filter.FailedStages, "failed-stage", nil, "select rows that list this stage in failed_stages (repeatable)")
	fs.BoolVar(&o.staleModel, "stale-model", false, "select rows whose model of a stage to run is not the configured one")
	fs.StringVar(&since, "since", "", "only rows created at or after this time (RFC 3339, or a duration before now such as 24h)")
	fs.StringVar(&until, "until", "", "only rows created before this time (RFC 3339, or a duration before now)")
	fs.StringVar(&o.filter.Topic, "topic", "", "only rows of this Kafka topic")
	fs.Int32SliceVar(&parts, "partition", nil, "only rows of these Kafka partitions")
	fs.StringVar(&o.filter.Where, "where", "", "only rows matching this SQL condition over the table's columns")
	fs.StringSliceVar(&o.stages, "stages", nil, "stages that may run (default: every enabled stage)")
	fs.StringSliceVar(&o.rerun, "rerun", nil, "stages to run on every selected row, whatever it holds")
	fs.IntVar(&o.pageSize, "page-size", 0, "rows read, enriched and written at a time (bounds memory; default 1000, 50000 with --via batch, as each page waits for its batches)")
	fs.StringVar(&o.checkpoint, "checkpoint", "textpulse-enrich.checkpoint.json", "file that lets a killed run resume; removed when the run ends")
	fs.BoolVar(&o.dryRun, "dry-run", false, "print the rows, requests, tokens and estimated cost, and change nothing")
	fs.IntVar(&o.showRows, "show-rows", 10, "with --dry-run, how many of the selected rows to print")
	fs.StringVar(&o.via, "via", "sync", "how API stages run: sync (the endpoints' synchronous APIs) or batch (the Batch API, half the price, results within 24 h)")
	fs.StringVar(&o.progress, "progress", "auto", "progress display: auto (a bar on a terminal, lines otherwise), bar, lines or none")
	fs.DurationVar(&o.interval, "progress-interval", 10*time.Second, "how often progress lines are printed")
	fs.BoolVar(&o.json, "json", false, "print the final report as JSON")
	return func(now time.Time) (enrichOptions, error) {
		var err error
		if o.filter.Since, err = parseTimeFlag(since, now); err != nil {
			return o, fmt.Errorf("--since: %w", err)
		}
		if o.filter.Until, err = parseTimeFlag(until, now); err != nil {
			return o, fmt.Errorf("--until: %w", err)
		}
		o.filter.Partitions = parts
		if o.pageSize == 0 {
			o.pageSize = 1000
			if o.via == "batch" {
				o.pageSize = 50000
			}
		}
		switch {
		case o.pageSize < 1:
			return o, errors.New("--page-size must be at least 1")
		case o.via != "sync" && o.via != "batch":
			return o, fmt.Errorf("--via %q: want sync or batch", o.via)
		case !slices.Contains([]string{"auto", "bar", "lines", "none"}, o.progress):
			return o, fmt.Errorf("--progress %q: want auto, bar, lines or none", o.progress)
		}
		return o, nil
	}
}

// runEnrich is the enrich command: re-enrich stored rows.
func runEnrich(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	own := pflag.NewFlagSet("consumer enrich", pflag.ContinueOnError)
	own.SortFlags = false
	readOpts := enrichFlags(own)
	all := flagSet("consumer enrich", DefaultConfig())
	all.SetOutput(stderr)
	all.AddFlagSet(own)
	all.Usage = func() {
		_, _ = fmt.Fprint(stderr, enrichUsage, own.FlagUsages(),
			"\nConfiguration keys (also TEXTPULSE_* variables and YAML keys; see consumer run --help):\n",
			flagSet("", DefaultConfig()).FlagUsages())
	}
	cfg, err := loadCommandConfig(all, "consumer enrich", args, getenv)
	if err != nil {
		return err
	}
	o, err := readOpts(time.Now())
	if err != nil {
		return &usageError{err}
	}
	if err := cfg.Validate(); err != nil {
		return &usageError{fmt.Errorf("invalid configuration:\n%w", err)}
	}
	log := newLogger(cfg.Log, stderr)
	restore, err := applyMemoryLimit(cfg, getenv, log)
	if err != nil {
		return err
	}
	defer restore()
	reg := prometheus.NewRegistry()
	snk := clickhouse.New(cfg.ClickHouse, log, reg)
	if err := snk.Connect(ctx); err != nil {
		return err
	}
	defer func() { _ = snk.Close() }()
	set, err := buildEnrichStages(ctx, cfg, o, log, reg)
	if err != nil {
		return err
	}
	defer func() { _ = set.Close() }()
	job := o.job(snk, set, log)
	if o.dryRun {
		return printPlan(ctx, job, cfg, o, stdout)
	}
	return runJob(ctx, job, cfg, o, reg, stdout, stderr)
}

// job returns the re-enrichment job of the options over the store and the
// stages built.
func (o enrichOptions) job(store reenrich.Store, set *stageSet, log *slog.Logger) *reenrich.Job {
	f := o.filter
	if o.staleModel {
		f.StaleModels = map[string]string{}
		for _, st := range set.stages {
			f.StaleModels[st.Name()] = set.modelOf[st.Name()]
		}
	}
	j := &reenrich.Job{Store: store, Filter: f, Stages: set.stages, Force: o.rerun, PageSize: o.pageSize,
		Checkpoint: o.checkpoint, Log: log}
	if n, err := strconv.Atoi(os.Getenv(envKillAfterPage)); err == nil && n > 0 {
		j.AfterWrite = func(page int) error {
			if page == n {
				log.Warn("test hook: killing the process after a written page, before its checkpoint", "page", page)
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {} // The signal ends the process.
			}
			return nil
		}
	}
	return j
}

// buildEnrichStages builds the enabled stages, with the API stages on the
// Batch API under --via batch.
func buildEnrichStages(ctx context.Context, cfg Config, o enrichOptions, log *slog.Logger, reg prometheus.Registerer) (*stageSet, error) {
	set, err := buildStageSet(ctx, cfg, &stageSet{viaBatch: o.via == "batch", only: o.stages}, nil, log, reg)
	if err != nil {
		return nil, err
	}
	if len(set.stages) == 0 {
		_ = set.Close()
		return nil, &usageError{errors.New("no stage enabled: enable the stages to run (stages.<name>.enabled) or name them with --stages")}
	}
	return set, nil
}

// runJob runs the job with a progress display and prints the report.
func runJob(ctx context.Context, job *reenrich.Job, cfg Config, o enrichOptions, reg *prometheus.Registry, stdout, stderr io.Writer) error {
	pr := newProgress(o.progress, o.interval, stderr)
	job.Progress = pr.update
	rep, err := job.Run(ctx)
	pr.finish()
	if err != nil {
		return fmt.Errorf("enrich: %w (the checkpoint %s lets the same command resume)", err, o.checkpoint)
	}
	u := gatherUsage(reg, job.Stages)
	for st, x := range u {
		model, _ := cfg.apiModel(st)
		if c, ok := listCost(model, x.PromptTokens, x.CompletionTokens); ok {
			if o.via == "batch" {
				c /= 2
			}
			x.CostUSD = &c
		}
	}
	return writeEnrichReport(stdout, rep, u, o.json)
}

// enrichUsage heads consumer enrich --help.
const enrichUsage = `Usage: consumer enrich [selection] [flags]

Re-enriches stored rows: fills in what a failing or deferred stage skipped
(--partial, --failed-stage), moves rows to the configured model
(--stale-model, --rerun), within bounds (--since, --until, --topic,
--partition, --where). It reads the rows page by page in key order, runs the
stages each row needs with the configured providers and rate limits, and
writes every changed row as a new version with the same key (the newest
version wins; the per-minute rollup moves its count). A killed run resumes
from --checkpoint without enriching a row twice. --via batch sends the API
stages' requests through the OpenAI Batch API at half the price.

Examples:
  consumer enrich --config textpulse.yaml --partial
  consumer enrich --config textpulse.yaml --failed-stage sentiment --via batch
  consumer enrich --config textpulse.yaml --stale-model --stages emotion --since 720h
  consumer enrich --config textpulse.yaml --partial --dry-run

Flags:
`

// usage is what the API stages' endpoints billed during the run.
type usage struct {
	// Requests counts the HTTP requests to the endpoint (with --via batch,
	// the file uploads, batch creations and polls).
	Requests float64 `json:"requests"`
	// BatchRequests counts the requests answered inside batches.
	BatchRequests    float64 `json:"batch_requests"`
	PromptTokens     float64 `json:"prompt_tokens"`
	CompletionTokens float64 `json:"completion_tokens"`
	// CostUSD is the cost at list prices, for a model with a known price.
	CostUSD *float64 `json:"cost_usd,omitempty"`
}

// gatherUsage reads the requests and tokens of the API stages among
// stages from reg; a stage without API metrics (a local model) is left out.
func gatherUsage(reg prometheus.Gatherer, stages []processor.Stage) map[string]*usage {
	out := map[string]*usage{}
	m, err := harness.Gather(reg)
	if err != nil {
		return out
	}
	for _, st := range stages {
		of := func(k, v string) map[string]string { return map[string]string{"stage": st.Name(), k: v} }
		all, sync := m.Value("textpulse_llm_requests_total", of("stage", st.Name()))
		canceled, _ := m.Value("textpulse_llm_requests_total", of("outcome", "canceled"))
		batch, inBatch := m.Value("textpulse_llm_batch_requests_total", of("stage", st.Name()))
		prompt, _ := m.Value("textpulse_llm_tokens_total", of("kind", "prompt"))
		completion, _ := m.Value("textpulse_llm_tokens_total", of("kind", "completion"))
		if sync || inBatch {
			out[st.Name()] = &usage{Requests: all - canceled, BatchRequests: batch, PromptTokens: prompt, CompletionTokens: completion}
		}
	}
	return out
}

// enrichReport is the final report as JSON prints it.
type enrichReport struct {
	*reenrich.Report
	Usage map[string]*usage `json:"usage"`
}

// writeEnrichReport prints what the run did.
func writeEnrichReport(w io.Writer, rep *reenrich.Report, u map[string]*usage, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(enrichReport{Report: rep, Usage: u})
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintf(tw, "rows selected\t%d\t\n", rep.Total)
	_, _ = fmt.Fprintf(tw, "rows read\t%d\t\n", rep.Read)
	_, _ = fmt.Fprintf(tw, "rows updated\t%d\t\n", rep.Updated)
	for _, st := range sortedKeys(rep.Enriched, rep.Failed) {
		_, _ = fmt.Fprintf(tw, "%s\t%d enriched, %d failed again\t\n", st, rep.Enriched[st], rep.Failed[st])
	}
	for _, st := range sortedKeys(u) {
		cost := "cost unknown"
		if u[st].CostUSD != nil {
			cost = fmt.Sprintf("$%.4f at list price", *u[st].CostUSD)
		}
		reqs := fmt.Sprintf("%.0f requests", u[st].Requests)
		if u[st].BatchRequests > 0 {
			reqs = fmt.Sprintf("%.0f batch requests (%.0f API calls)", u[st].BatchRequests, u[st].Requests)
		}
		_, _ = fmt.Fprintf(tw, "%s api\t%s, %.0f prompt + %.0f completion tokens, %s\t\n", st, reqs,
			u[st].PromptTokens, u[st].CompletionTokens, cost)
	}
	rate := 0.0
	if rep.Elapsed > 0 {
		rate = float64(rep.Read) / rep.Elapsed.Seconds()
	}
	_, _ = fmt.Fprintf(tw, "elapsed\t%s (%.1f rows/s)\t\n", rep.Elapsed.Round(time.Millisecond), rate)
	return tw.Flush()
}

// sortedKeys returns the keys of the maps, sorted and without repeats.
func sortedKeys[V any](ms ...map[string]V) []string {
	var out []string
	for _, m := range ms {
		for k := range m {
			if k != "" && !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return out
}

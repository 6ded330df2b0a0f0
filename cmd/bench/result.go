package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"
)

// Stat summarises one figure over repeated runs.
type Stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// Result is one scenario's outcome, saved as bench/results/<scenario>.json.
type Result struct {
	Scenario    string               `json:"scenario"`
	Description string               `json:"description"`
	Time        time.Time            `json:"time"`
	Machine     map[string]any       `json:"machine"`
	Settings    map[string]any       `json:"settings"`
	Runs        []map[string]float64 `json:"runs"`
	Summary     map[string]Stat      `json:"summary"`
	Notes       []string             `json:"notes,omitempty"`
	Profile     string               `json:"cpu_profile_top,omitempty"`
	// Series holds time series of the first run, such as memory over time.
	Series map[string][][2]float64 `json:"series,omitempty"`
}

func newResult(name, desc string) *Result {
	return &Result{
		Scenario: name, Description: desc, Time: time.Now().UTC(),
		Machine: map[string]any{"cpus": runtime.NumCPU(), "go": runtime.Version(), "os": runtime.GOOS + "/" + runtime.GOARCH},
	}
}

func (r *Result) summarize() {
	r.Summary = make(map[string]Stat)
	for k := range r.Runs[0] {
		vals := make([]float64, 0, len(r.Runs))
		for _, run := range r.Runs {
			vals = append(vals, run[k])
		}
		slices.Sort(vals)
		med := vals[len(vals)/2]
		if len(vals)%2 == 0 {
			med = (vals[len(vals)/2-1] + vals[len(vals)/2]) / 2
		}
		r.Summary[k] = Stat{Median: med, Min: vals[0], Max: vals[len(vals)-1]}
	}
}

func (r *Result) save(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, r.Scenario+".json")
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil { //nolint:gosec // The results directory is the operator's --out.
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// loadResults reads every scenario result in dir, in a fixed order.
func loadResults(dir string) ([]*Result, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	order := map[string]int{"ingest": 0, "peers": 1, "vectors": 2, "api": 3, "emotion": 4, "e2e": 5, "soak": 6}
	var out []*Result
	for _, p := range paths {
		b, err := os.ReadFile(p) //nolint:gosec // Files under the results directory.
		if err != nil {
			return nil, err
		}
		var r Result
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		out = append(out, &r)
	}
	sort.Slice(out, func(i, j int) bool { return order[out[i].Scenario] < order[out[j].Scenario] })
	return out, nil
}

// writeReport renders BENCHMARKS.md from the results of this run.
func writeReport(o options, results []*Result) error {
	var b strings.Builder
	b.WriteString("# Benchmarks\n\n")
	b.WriteString("Produced by `make bench` (`make bench-quick` for a short smoke run) on the local services. Every figure\n")
	b.WriteString("is measured on the machine named in its section; ratios compare tools in the same run. Medians over\n")
	b.WriteString("the runs, with min and max.\n\n")
	b.WriteString(goalsTable(results))
	for _, r := range results {
		fmt.Fprintf(&b, "## %s\n\n%s.\n\n", r.Scenario, r.Description)
		fmt.Fprintf(&b, "Measured %s on %v CPUs (%v, %v), %d run(s).\n\n", r.Time.Format("2006-01-02 15:04 MST"),
			r.Machine["cpus"], r.Machine["os"], r.Machine["go"], len(r.Runs))
		b.WriteString("Settings: ")
		keys := make([]string, 0, len(r.Settings))
		for k := range r.Settings {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s = %v", k, r.Settings[k])
		}
		b.WriteString(".\n\n| figure | median | min | max |\n|---|---:|---:|---:|\n")
		keys = keys[:0]
		for k := range r.Summary {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			s := r.Summary[k]
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", k, num(s.Median), num(s.Min), num(s.Max))
		}
		if r.Scenario == "peers" {
			b.WriteString(peersTable(r))
		}
		if r.Scenario == "soak" {
			b.WriteString(soakReport(r))
		}
		for _, img := range plotsFor(o, r) {
			fmt.Fprintf(&b, "\n![%s](%s)\n", img[0], img[1])
		}
		if r.Profile != "" {
			b.WriteString("\nWhere the consumer's CPU time goes (first run, `go tool pprof -top`):\n\n```\n")
			b.WriteString(r.Profile)
			b.WriteString("```\n")
		}
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "\nNote: %s\n", n)
		}
		b.WriteString("\n")
	}
	if err := os.WriteFile(o.report, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", o.report, err)
	}
	return nil
}

func num(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v != 0 && v < 0.01:
		return fmt.Sprintf("%.5f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

// plotsFor draws the plots of a scenario and returns (caption, path) pairs
// with paths relative to the report. A plot that cannot be drawn is left
// out; the tables carry the same figures.
func plotsFor(o options, r *Result) [][2]string {
	var out [][2]string
	add := func(caption, path string, err error) {
		if err != nil || path == "" {
			return
		}
		rel, relErr := filepath.Rel(filepath.Dir(o.report), path)
		if relErr != nil {
			rel = path
		}
		out = append(out, [2]string{caption, filepath.ToSlash(rel)})
	}
	switch r.Scenario {
	case "ingest":
		p, err := plotSeries(o.outDir, r, "consumer_rss_mib_over_seconds",
			"Consumer RSS while a 1M-event backlog drains (first run)", "RSS (MiB)")
		add("consumer RSS over time", p, err)
		if s, ok := r.Summary["consumer_events_per_s"]; ok {
			p, err := plotBars(o.outDir, "ingest_rates.png", "Raw ingest, median of the runs", "rows per second",
				[]string{"textpulse consumer", "clickhouse-client"},
				[]float64{s.Median, r.Summary["client_rows_per_s"].Median})
			add("ingest rates", p, err)
		}
	case "peers":
		p, err := peersPlot(o.outDir, r)
		add("peers rates", p, err)
	case "vectors":
		if s, ok := r.Summary["rows_per_s"]; ok {
			p, err := plotBars(o.outDir, "vectors_rates.png", "Ingest with 1536-dimension vectors, median of the runs", "MB per second",
				[]string{"all columns", "embedding column"},
				[]float64{r.Summary["column_mb_per_s"].Median, r.Summary["vector_mb_per_s"].Median})
			add(fmt.Sprintf("vector ingest: %.0f rows/s", s.Median), p, err)
		}
	case "emotion":
		if s, ok := r.Summary["go_texts_per_s"]; ok {
			p, err := plotBars(o.outDir, "emotion_rates.png", "Emotion model on the CPU, median of the runs", "texts per second",
				[]string{"textpulse sorted", "Python sorted", "textpulse unsorted", "Python unsorted"},
				[]float64{s.Median, r.Summary["python_texts_per_s"].Median, r.Summary["go_texts_per_s_unsorted"].Median, r.Summary["python_texts_per_s_unsorted"].Median})
			add("emotion model rates", p, err)
		}
	case "e2e":
		if s, ok := r.Summary["texts_per_s"]; ok {
			p, err := plotBars(o.outDir, "e2e_rates.png", "End to end, three stages, median of the runs", "texts per second",
				[]string{"textpulse", "Python prototype"}, []float64{s.Median, prototypeTextsPerSec})
			add(fmt.Sprintf("end-to-end rate: %.0f times the prototype's %.2f texts/s", s.Median/prototypeTextsPerSec, prototypeTextsPerSec), p, err)
		}
	case "api":
		if s, ok := r.Summary["texts_per_s"]; ok {
			p, err := plotBars(o.outDir, "api_rates.png", "API-bound enrichment, median of the runs", "texts per second",
				[]string{"cap-implied max", "textpulse", "one text per request", "prototype"},
				[]float64{r.Summary["cap_implied_max_texts_per_s"].Median, s.Median, r.Summary["baseline_texts_per_s"].Median, 0.44})
			add("API-bound rates", p, err)
		}
	case "soak":
		for _, s := range soakPlots() {
			p, err := plotSeries(o.outDir, r, s[0], s[1], s[2])
			add(s[1], p, err)
		}
	}
	return out
}

package main

import (
	"fmt"
	"strings"
)

// goal is one target of the benchmarks: a figure of a scenario's summary
// (its median over the runs) against a bound.
type goal struct {
	scenario, figure string
	// atMost is true for an upper bound, false for a lower one.
	atMost bool
	bound  float64
	what   string
}

// benchGoals are the targets the report checks, in the order shown.
func benchGoals() []goal {
	return []goal{
		{"ingest", "consumer_max_rss_mib", true, 384, "peak RSS (MiB) while a 1M backlog drains, defaults"},
		{"vectors", "consumer_max_rss_mib", true, 512, "peak RSS (MiB) with 1536-dimension embeddings"},
		{"ingest", "consumer_cpu_seconds_per_million", true, 2.0, "consumer CPU-s per 1M events, process start to last row"},
		{"peers", "server_cpu_seconds_per_million_textpulse", true, 2.03, "server CPU-s per 1M events of textpulse's inserts (2.03 before)"},
		{"ingest", "ratio_wall", false, 0.7, "events/s from process start ÷ clickhouse-client rows/s, same run"},
		{"peers", "kafka_engine_x_textpulse", true, 1, "ClickHouse Kafka engine events/s ÷ textpulse's, same round (ahead of every peer run)"},
		{"ingest", "consumer_first_row_seconds", true, 0.5, "seconds from process start to the first stored row"},
		{"e2e", "texts_per_s", false, 2000, "end-to-end texts/s, three stages at their defaults"},
	}
}

// goalsTable is the report's table of the goals met or missed by the
// results; goals whose scenario or figure is missing are left out.
func goalsTable(results []*Result) string {
	by := map[string]*Result{}
	for _, r := range results {
		by[r.Scenario] = r
	}
	var b strings.Builder
	for _, g := range benchGoals() {
		r, ok := by[g.scenario]
		if !ok {
			continue
		}
		s, ok := r.Summary[g.figure]
		if !ok {
			continue
		}
		op, met := "≥", s.Median >= g.bound
		if g.atMost {
			op, met = "≤", s.Median <= g.bound
		}
		fmt.Fprintf(&b, "| %s | %s `%s` | %s %s | %s (%s–%s) | %s |\n", g.what, g.scenario, g.figure, op, num(g.bound),
			num(s.Median), num(s.Min), num(s.Max), passFail(met))
	}
	if soak, ok := by["soak"]; ok {
		for _, c := range soakChecks(soak) {
			fmt.Fprintf(&b, "| %s | soak | | | %s |\n", c.goal, passFail(c.pass))
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return "## Goals\n\nMedians of the runs (min–max) against the targets; every figure below comes from its section.\n\n" +
		"| goal | figure | target | measured | |\n|---|---|---|---:|---|\n" + b.String() + "\n"
}

package main

import (
	"strings"
	"testing"
)

func TestGoalsTable(t *testing.T) {
	res := func(name string, fig map[string]float64) *Result {
		r := &Result{Scenario: name, Runs: []map[string]float64{fig}}
		r.summarize()
		return r
	}
	tests := []struct {
		name    string
		results []*Result
		want    []string
		absent  []string
	}{
		{"met and missed", []*Result{res("ingest", map[string]float64{"consumer_max_rss_mib": 377, "consumer_cpu_seconds_per_million": 3.6})},
			[]string{"| 377.0 (377.0–377.0) | pass |", "| 3.600 (3.600–3.600) | FAIL |"}, []string{"e2e"}},
		{"lower bound", []*Result{res("e2e", map[string]float64{"texts_per_s": 2100})}, []string{"≥ 2000", "| pass |"}, []string{"FAIL"}},
		{"nothing measured", nil, nil, []string{"## Goals"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := goalsTable(tt.results)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("table lacks %q:\n%s", w, got)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(got, a) {
					t.Errorf("table has %q:\n%s", a, got)
				}
			}
		})
	}
}

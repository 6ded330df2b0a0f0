package main

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/textpulse/textpulse/internal/harness"
)

func TestSoakDuration(t *testing.T) {
	tests := []struct {
		name       string
		o          options
		want, warm time.Duration
	}{
		{"default", options{}, 30 * time.Minute, 10 * time.Minute},
		{"quick", options{quick: true}, 2 * time.Minute, time.Minute},
		{"flag wins over quick", options{quick: true, soakDuration: 3 * time.Minute}, 3 * time.Minute, time.Minute},
		{"long", options{soakDuration: 6 * time.Hour}, 6 * time.Hour, 2 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := soakDuration(tt.o)
			if d != tt.want {
				t.Errorf("soakDuration = %s, want %s", d, tt.want)
			}
			if w := soakWarmup(d); w != tt.warm {
				t.Errorf("soakWarmup(%s) = %s, want %s", d, w, tt.warm)
			}
		})
	}
}

func TestSetFlag(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		flag, value string
		want        []string
	}{
		{"replaces", []string{"run", "--a", "0", "--b", "x"}, "--a", "5s", []string{"run", "--a", "5s", "--b", "x"}},
		{"appends", []string{"run", "--b", "x"}, "--a", "5s", []string{"run", "--b", "x", "--a", "5s"}},
		{"replaces the last", []string{"--a", "1", "--a", "2"}, "--a", "3", []string{"--a", "1", "--a", "3"}},
		{"ignores a trailing name without value", []string{"--b", "--a"}, "--a", "3", []string{"--b", "--a", "--a", "3"}},
		{"empty", nil, "--a", "3", []string{"--a", "3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := slices.Clone(tt.args)
			got := setFlag(tt.args, tt.flag, tt.value)
			if !slices.Equal(got, tt.want) {
				t.Errorf("setFlag = %q, want %q", got, tt.want)
			}
			if !slices.Equal(tt.args, before) {
				t.Errorf("setFlag changed its input to %q", tt.args)
			}
		})
	}
}

func TestSlopePerMinute(t *testing.T) {
	tests := []struct {
		name string
		pts  [][2]float64
		want float64
	}{
		{"none", nil, 0},
		{"one", [][2]float64{{1, 5}}, 0},
		{"flat", [][2]float64{{1, 5}, {2, 5}, {3, 5}}, 0},
		{"line", [][2]float64{{0, 10}, {1, 12}, {2, 14}, {3, 16}}, 2},
		{"falling", [][2]float64{{0, 10}, {2, 9}}, -0.5},
		{"noisy", [][2]float64{{0, 0}, {1, 2}, {2, 1}, {3, 3}}, 0.8},
		{"single abscissa", [][2]float64{{1, 1}, {1, 3}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := slopePerMinute(tt.pts); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("slopePerMinute = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSampleMetrics(t *testing.T) {
	const base = "# TYPE go_goroutines gauge\ngo_goroutines 42\n# TYPE process_open_fds gauge\nprocess_open_fds 17\n"
	tests := []struct {
		name    string
		text    string
		want    soakSample
		wantErr string
	}{
		{"all", base + "# TYPE go_memstats_heap_inuse_bytes gauge\ngo_memstats_heap_inuse_bytes 4194304\n" +
			"# TYPE textpulse_consumer_lag_records gauge\n" +
			"textpulse_consumer_lag_records{topic=\"t\",partition=\"0\"} 3\ntextpulse_consumer_lag_records{topic=\"t\",partition=\"1\"} 4\n" +
			"# TYPE textpulse_stage_cache_bytes gauge\n" +
			"textpulse_stage_cache_bytes{stage=\"embedding\",provider=\"p\"} 100\ntextpulse_stage_cache_bytes{stage=\"emotion\",provider=\"q\"} 50\n" +
			"# TYPE textpulse_stage_cache_entries gauge\ntextpulse_stage_cache_entries{stage=\"embedding\",provider=\"p\"} 9\n",
			soakSample{goroutines: 42, fds: 17, heapMiB: 4, lag: 7, cacheBytes: 150, cacheEntries: 9}, ""},
		{"alloc when heap in use is missing", base + "# TYPE go_memstats_alloc_bytes gauge\ngo_memstats_alloc_bytes 1048576\n",
			soakSample{goroutines: 42, fds: 17, heapMiB: 1}, ""},
		{"no heap", base, soakSample{}, "go_memstats_alloc_bytes missing"},
		{"no fds", "# TYPE go_goroutines gauge\ngo_goroutines 42\n", soakSample{}, "process_open_fds missing"},
		{"no goroutines", "", soakSample{}, "go_goroutines missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := harness.Parse(strings.NewReader(tt.text))
			if err != nil {
				t.Fatal(err)
			}
			got, err := sampleMetrics(m)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("sampleMetrics = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// soakRamp is a sample every half minute for 6 minutes while producing,
// RSS growing by grow MiB a minute after the first two, then a drained
// sample.
func soakRamp(grow float64) []soakSample {
	var out []soakSample
	for i := range 13 {
		m := float64(i) / 2
		rss := 100 + grow*max(0, m-2)
		if m < 2 {
			rss = 50 + 25*m // Warm-up growth, left out of the slope.
		}
		out = append(out, soakSample{minutes: m, rssMiB: rss, heapMiB: 20, goroutines: 80, fds: 30, lag: float64(i % 4 * 100),
			cacheBytes: float64(i * 10), producing: true})
	}
	return append(out, soakSample{minutes: 6.5, rssMiB: 90, heapMiB: 20, goroutines: 60, fds: 25, cacheBytes: 999})
}

func TestSoakFigures(t *testing.T) {
	tests := []struct {
		name    string
		samples []soakSample
		warm    float64
		want    map[string]float64
	}{
		{"flat after warm-up", soakRamp(0), 2, map[string]float64{
			"rss_slope_mib_per_min": 0, "heap_slope_mib_per_min": 0, "goroutines_slope_per_min": 0, "fds_slope_per_min": 0,
			"rss_max_mib": 100, "rss_final_mib": 90, "lag_max": 300, "lag_final": 0, "cache_bytes_final": 999}},
		{"growing", soakRamp(3), 2, map[string]float64{
			"rss_slope_mib_per_min": 3, "heap_slope_mib_per_min": 0, "goroutines_slope_per_min": 0, "fds_slope_per_min": 0,
			"rss_max_mib": 112, "rss_final_mib": 90, "lag_max": 300, "lag_final": 0, "cache_bytes_final": 999}},
		{"no samples", nil, 1, map[string]float64{
			"rss_slope_mib_per_min": 0, "heap_slope_mib_per_min": 0, "goroutines_slope_per_min": 0, "fds_slope_per_min": 0,
			"rss_max_mib": 0, "rss_final_mib": 0, "lag_max": 0, "lag_final": 0, "cache_bytes_final": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := soakFigures(tt.samples, tt.warm)
			if len(got) != len(tt.want) {
				t.Errorf("soakFigures has %d figures, want %d: %v", len(got), len(tt.want), got)
			}
			for k, w := range tt.want {
				if math.Abs(got[k]-w) > 1e-9 {
					t.Errorf("%s = %v, want %v", k, got[k], w)
				}
			}
		})
	}
}

func TestSoakSeries(t *testing.T) {
	s := soakSeries(soakRamp(0))
	for _, name := range []string{"rss_mib_over_minutes", "heap_mib_over_minutes", "goroutines_over_minutes", "lag_over_minutes"} {
		t.Run(name, func(t *testing.T) {
			if len(s[name]) != 14 {
				t.Fatalf("%d points, want 14", len(s[name]))
			}
			if last := s[name][13][0]; last != 6.5 {
				t.Errorf("last point at %v minutes, want 6.5", last)
			}
		})
	}
	for _, p := range soakPlots() {
		if _, ok := s[p[0]]; !ok {
			t.Errorf("plot of series %s that soakSeries does not make", p[0])
		}
	}
}

func TestSoakNotes(t *testing.T) {
	filling := soakRamp(0)
	for i := range filling {
		filling[i].cacheBytes = float64(i) * (1 << 20)
	}
	tests := []struct {
		name    string
		samples []soakSample
		want    int
	}{
		{"caches bounded", soakRamp(0), 0},
		{"caches filling", filling, 1},
		{"no samples", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := soakNotes(tt.samples, 2)
			if len(got) != tt.want {
				t.Errorf("soakNotes = %q, want %d note(s)", got, tt.want)
			}
			if tt.want > 0 && !strings.Contains(got[0], "2.0 MiB/min") {
				t.Errorf("note %q does not state the growth of 2.0 MiB/min", got[0])
			}
		})
	}
}

func TestFlat(t *testing.T) {
	tests := []struct {
		name                 string
		slope, window, level float64
		want                 bool
	}{
		{"zero", 0, 20, 80, true},
		{"small drift", 0.1, 20, 0, true},
		{"drift of 2", -0.25, 8, 0, true},
		{"drift past 2", 0.11, 20, 0, false},
		{"within 5% of a high level", 1, 10, 400, true},
		{"past 5% of a high level", 3, 10, 400, false},
		{"falling", -3, 10, 80, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := flat(tt.slope, tt.window, tt.level); got != tt.want {
				t.Errorf("flat(%v, %v, %v) = %v, want %v", tt.slope, tt.window, tt.level, got, tt.want)
			}
		})
	}
}

func TestSoakChecks(t *testing.T) {
	result := func(fig map[string]float64, goroutines float64) *Result {
		r := &Result{Scenario: "soak", Settings: map[string]any{"rate": 425.0, "duration": "30m0s"},
			Runs:   []map[string]float64{fig},
			Series: map[string][][2]float64{"goroutines_over_minutes": {{0, 0}, {20, goroutines}}}}
		r.summarize()
		return r
	}
	good := map[string]float64{"rss_slope_mib_per_min": 0.2, "goroutines_slope_per_min": 0.05, "fds_slope_per_min": 0,
		"lag_max": 5000, "lag_final": 800}
	with := func(k string, v float64) map[string]float64 {
		m := make(map[string]float64, len(good))
		for kk, vv := range good {
			m[kk] = vv
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name       string
		r          *Result
		wantPasses []bool
	}{
		{"all pass", result(good, 80), []bool{true, true, true, true}},
		{"rss grows", result(with("rss_slope_mib_per_min", 1.5), 80), []bool{false, true, true, true}},
		{"goroutines leak", result(with("goroutines_slope_per_min", 1), 80), []bool{true, false, true, true}},
		{"goroutines drift within 5% of many", result(with("goroutines_slope_per_min", 1), 1000), []bool{true, true, true, true}},
		{"goroutines fall", result(with("goroutines_slope_per_min", -5), 80), []bool{true, true, true, true}},
		{"fds leak", result(with("fds_slope_per_min", 0.5), 80), []bool{true, true, false, true}},
		{"lag past a minute of events", result(with("lag_max", 425*60+1), 80), []bool{true, true, true, false}},
		{"final lag past a minute of events", result(with("lag_final", 425*60), 80), []bool{true, true, true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checks := soakChecks(tt.r)
			got := make([]bool, len(checks))
			for i, c := range checks {
				got[i] = c.pass
			}
			if !slices.Equal(got, tt.wantPasses) {
				t.Errorf("passes = %v, want %v (%+v)", got, tt.wantPasses, checks)
			}
			rep := soakReport(tt.r)
			if !strings.Contains(rep, "make soak") || strings.Count(rep, "\n- ") != len(checks) {
				t.Errorf("soakReport = %q", rep)
			}
		})
	}
}

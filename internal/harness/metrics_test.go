package harness

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

const exposition = `# HELP textpulse_records_written_total Rows stored in the sink.
# TYPE textpulse_records_written_total counter
textpulse_records_written_total 1500
# HELP textpulse_dead_letters_total Inputs not written as rows.
# TYPE textpulse_dead_letters_total counter
textpulse_dead_letters_total{class="invalid_json",outcome="produced",stage="decode"} 3
textpulse_dead_letters_total{class="empty_text",outcome="produced",stage="decode"} 2
textpulse_dead_letters_total{class="timeout",outcome="dropped",stage="embedding"} 1
# HELP textpulse_in_flight Batches in flight.
# TYPE textpulse_in_flight gauge
textpulse_in_flight 2
# HELP textpulse_end_to_end_latency_seconds Record time to stored row.
# TYPE textpulse_end_to_end_latency_seconds histogram
textpulse_end_to_end_latency_seconds_bucket{le="0.1"} 10
textpulse_end_to_end_latency_seconds_bucket{le="1"} 60
textpulse_end_to_end_latency_seconds_bucket{le="10"} 100
textpulse_end_to_end_latency_seconds_bucket{le="+Inf"} 100
textpulse_end_to_end_latency_seconds_sum 123.4
textpulse_end_to_end_latency_seconds_count 100
# HELP textpulse_stage_duration_seconds Stage time.
# TYPE textpulse_stage_duration_seconds histogram
textpulse_stage_duration_seconds_bucket{stage="embedding",le="1"} 4
textpulse_stage_duration_seconds_bucket{stage="embedding",le="+Inf"} 5
textpulse_stage_duration_seconds_sum{stage="embedding"} 3
textpulse_stage_duration_seconds_count{stage="embedding"} 5
textpulse_stage_duration_seconds_bucket{stage="sentiment",le="1"} 1
textpulse_stage_duration_seconds_bucket{stage="sentiment",le="+Inf"} 3
textpulse_stage_duration_seconds_sum{stage="sentiment"} 6
textpulse_stage_duration_seconds_count{stage="sentiment"} 3
`

func scrapeFixed(t *testing.T, body string) (Metrics, error) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return Scrape(context.Background(), srv.URL+"/metrics")
}

func TestScrapeValue(t *testing.T) {
	m, err := scrapeFixed(t, exposition)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
		wantOK bool
	}{
		{"unlabelled counter", "textpulse_records_written_total", nil, 1500, true},
		{"gauge", "textpulse_in_flight", nil, 2, true},
		{"all series summed", "textpulse_dead_letters_total", nil, 6, true},
		{"label subset summed", "textpulse_dead_letters_total", map[string]string{"stage": "decode"}, 5, true},
		{"every label", "textpulse_dead_letters_total", map[string]string{"stage": "decode", "class": "empty_text", "outcome": "produced"}, 2, true},
		{"no series matches", "textpulse_dead_letters_total", map[string]string{"stage": "sink"}, 0, false},
		{"unknown label", "textpulse_records_written_total", map[string]string{"stage": "decode"}, 0, false},
		{"missing family", "textpulse_nothing_total", nil, 0, false},
		{"histogram is no value", "textpulse_end_to_end_latency_seconds", nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := m.Value(tt.metric, tt.labels)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Value(%s, %v) = %v, %v; want %v, %v", tt.metric, tt.labels, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestScrapeHistogram(t *testing.T) {
	m, err := scrapeFixed(t, exposition)
	if err != nil {
		t.Fatal(err)
	}
	inf := math.Inf(1)
	tests := []struct {
		name       string
		metric     string
		labels     map[string]string
		wantBounds []float64
		wantCounts []float64
		wantOK     bool
	}{
		{"unlabelled", "textpulse_end_to_end_latency_seconds", nil, []float64{0.1, 1, 10, inf}, []float64{10, 60, 100, 100}, true},
		{"one series", "textpulse_stage_duration_seconds", map[string]string{"stage": "sentiment"}, []float64{1, inf}, []float64{1, 3}, true},
		{"series summed", "textpulse_stage_duration_seconds", nil, []float64{1, inf}, []float64{5, 8}, true},
		{"no series matches", "textpulse_stage_duration_seconds", map[string]string{"stage": "emotion"}, nil, nil, false},
		{"counter is no histogram", "textpulse_records_written_total", nil, nil, nil, false},
		{"missing family", "textpulse_nothing_seconds", nil, nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, ok := m.Histogram(tt.metric, tt.labels)
			if ok != tt.wantOK || !slices.Equal(h.Bounds, tt.wantBounds) || !slices.Equal(h.Counts, tt.wantCounts) {
				t.Errorf("Histogram(%s, %v) = %v, %v; want %v %v, %v", tt.metric, tt.labels, h, ok, tt.wantBounds, tt.wantCounts, tt.wantOK)
			}
		})
	}
}

func TestScrapeErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		url  string
	}{
		{"malformed text", "textpulse_x{le=\"1\" 3\n", "/metrics"},
		{"not found", exposition, "/other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/metrics" {
					http.NotFound(w, r)
					return
				}
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			if _, err := Scrape(context.Background(), srv.URL+tt.url); err == nil || !strings.Contains(err.Error(), srv.URL) && !strings.Contains(err.Error(), "parse metrics") {
				t.Fatalf("Scrape() = %v, want an error", err)
			}
		})
	}
}

func TestHistogramQuantile(t *testing.T) {
	inf := math.Inf(1)
	before := Histogram{Bounds: []float64{1, 2, 4, inf}, Counts: []float64{10, 10, 10, 10}}
	after := Histogram{Bounds: []float64{1, 2, 4, inf}, Counts: []float64{10, 60, 110, 110}}
	lat := after.Sub(before)
	if want := []float64{0, 50, 100, 100}; !slices.Equal(lat.Counts, want) {
		t.Fatalf("Sub counts = %v, want %v", lat.Counts, want)
	}
	tests := []struct {
		name string
		h    Histogram
		q    float64
		want float64
	}{
		{"median in the second bucket", lat, 0.5, 2},
		{"p25 interpolated", lat, 0.25, 1.5},
		{"p99 interpolated", lat, 0.99, 2 + 2*0.98},
		{"in the +Inf bucket", Histogram{Bounds: []float64{1, inf}, Counts: []float64{1, 10}}, 0.9, 1},
		{"no observations", Histogram{Bounds: []float64{1, 2, inf}, Counts: []float64{0, 0, 0}}, 0.5, math.NaN()},
		{"no buckets", Histogram{}, 0.5, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.h.Quantile(tt.q)
			if math.IsNaN(tt.want) != math.IsNaN(got) || !math.IsNaN(got) && math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("Quantile(%v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

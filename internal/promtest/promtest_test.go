package promtest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

func TestSum(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := promauto.With(reg)
	c := f.NewCounterVec(prometheus.CounterOpts{Name: "c_total", Help: "c"}, []string{"stage", "policy"})
	c.WithLabelValues("a", "skip").Add(2)
	c.WithLabelValues("a", "retry").Add(3)
	c.WithLabelValues("b", "skip").Add(5)
	f.NewGauge(prometheus.GaugeOpts{Name: "g", Help: "g"}).Set(7)
	tests := []struct {
		name   string
		family string
		labels map[string]string
		want   float64
	}{
		{"every series", "c_total", nil, 10},
		{"one label", "c_total", map[string]string{"stage": "a"}, 5},
		{"two labels", "c_total", map[string]string{"stage": "b", "policy": "skip"}, 5},
		{"no match", "c_total", map[string]string{"stage": "z"}, 0},
		{"gauge", "g", nil, 7},
		{"absent family", "nope", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sum(t, reg, tt.family, tt.labels); got != tt.want {
				t.Errorf("Sum(%s, %v) = %v, want %v", tt.family, tt.labels, got, tt.want)
			}
		})
	}
}

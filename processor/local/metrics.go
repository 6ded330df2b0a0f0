package local

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are the Prometheus metrics of one local model; the engine's own
// (cache, retries, failures) are the textpulse_stage_* families of package
// enrich. Every series carries a constant stage label, so that all stages
// can register on one registry.
type metrics struct {
	calls *prometheus.CounterVec
}

// newMetrics registers the metrics of stage on reg; a nil reg registers
// nothing.
func newMetrics(stage string, reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	cl := prometheus.Labels{"stage": stage}
	return &metrics{
		calls: f.NewCounterVec(prometheus.CounterOpts{
			Name:        "textpulse_local_model_calls_total",
			Help:        "Calls of a local model stage into its model, by outcome (ok or error).",
			ConstLabels: cl,
		}, []string{"outcome"}),
	}
}

package local

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are the Prometheus metrics of one local stage. Every series
// carries a constant stage label, so that all stages can register on one
// registry.
type metrics struct {
	cacheHits  prometheus.Counter
	cacheLooks prometheus.Counter
	attempts   *prometheus.CounterVec
	failures   *prometheus.CounterVec
}

// newMetrics registers the metrics of stage on reg; a nil reg registers
// nothing.
func newMetrics(stage string, reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	cl := prometheus.Labels{"stage": stage}
	return &metrics{
		cacheHits: f.NewCounter(prometheus.CounterOpts{
			Name:        "textpulse_local_cache_hits_total",
			Help:        "Cache lookups of a local model stage that found a result.",
			ConstLabels: cl,
		}),
		cacheLooks: f.NewCounter(prometheus.CounterOpts{
			Name:        "textpulse_local_cache_lookups_total",
			Help:        "Cache lookups of texts by a local model stage.",
			ConstLabels: cl,
		}),
		attempts: f.NewCounterVec(prometheus.CounterOpts{
			Name:        "textpulse_local_model_calls_total",
			Help:        "Calls of a local model stage into its model, by outcome (ok or error).",
			ConstLabels: cl,
		}, []string{"outcome"}),
		failures: f.NewCounterVec(prometheus.CounterOpts{
			Name:        "textpulse_local_failures_total",
			Help:        "Records a local model stage handed to its failure policy, by policy.",
			ConstLabels: cl,
		}, []string{"policy"}),
	}
}

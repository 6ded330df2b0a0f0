package enrich

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are the textpulse_stage_* metrics of one engine. Every series
// carries constant stage and provider labels, so that all stages register
// on one registry.
type metrics struct {
	lookups  prometheus.Counter
	hits     prometheus.Counter
	retries  prometheus.Counter
	failures *prometheus.CounterVec
	deferred prometheus.Counter
}

// newMetrics registers the metrics of the engine of cfg on reg; entries
// and bytes report the size of its cache.
func newMetrics(cfg Config, entries, bytes func() float64, reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	cl := prometheus.Labels{"stage": cfg.Stage, "provider": cfg.Provider}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "textpulse_stage_cache_entries",
		Help:        "Results held by a stage's text-hash cache.",
		ConstLabels: cl,
	}, entries)
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "textpulse_stage_cache_bytes",
		Help:        "Estimated bytes of the results held by a stage's text-hash cache.",
		ConstLabels: cl,
	}, bytes)
	return &metrics{
		lookups: f.NewCounter(prometheus.CounterOpts{
			Name:        "textpulse_stage_cache_lookups_total",
			Help:        "Cache lookups of distinct texts by a stage.",
			ConstLabels: cl,
		}),
		hits: f.NewCounter(prometheus.CounterOpts{
			Name:        "textpulse_stage_cache_hits_total",
			Help:        "Cache lookups that found a result; divide by textpulse_stage_cache_lookups_total for the hit ratio.",
			ConstLabels: cl,
		}),
		retries: f.NewCounter(prometheus.CounterOpts{
			Name:        "textpulse_stage_retries_total",
			Help:        "Distinct texts given another attempt after a failed one.",
			ConstLabels: cl,
		}),
		failures: f.NewCounterVec(prometheus.CounterOpts{
			Name:        "textpulse_stage_failures_total",
			Help:        "Records handed to a stage's failure policy, by policy.",
			ConstLabels: cl,
		}, []string{"policy"}),
		deferred: f.NewCounter(prometheus.CounterOpts{
			Name:        "textpulse_stage_deferred_total",
			Help:        "Records a stage deferred instead of sending them to its provider, marked failed for the stage to be enriched later.",
			ConstLabels: cl,
		}),
	}
}

package clickhouse

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	inserts        *prometheus.CounterVec
	insertDuration prometheus.Histogram
	rows           prometheus.Counter
	retries        prometheus.Counter
	up             prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		inserts: f.NewCounterVec(prometheus.CounterOpts{
			Name: "textpulse_sink_inserts_total",
			Help: "INSERT attempts by outcome: ok, or the error class (transient, schema, data).",
		}, []string{"outcome"}),
		insertDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "textpulse_sink_insert_duration_seconds",
			Help:    "Time of one INSERT attempt.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
		}),
		rows: f.NewCounter(prometheus.CounterOpts{
			Name: "textpulse_sink_rows_inserted_total",
			Help: "Rows in successful INSERTs.",
		}),
		retries: f.NewCounter(prometheus.CounterOpts{
			Name: "textpulse_sink_insert_retries_total",
			Help: "INSERT attempts that failed and will be retried.",
		}),
		up: f.NewGauge(prometheus.GaugeOpts{
			Name: "textpulse_sink_up",
			Help: "1 when the last request to ClickHouse (an INSERT, or the read of a taken-over partition's stored offsets) succeeded, 0 while they are failing.",
		}),
	}
	m.up.Set(1)
	return m
}

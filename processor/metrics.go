package processor

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	consumed        prometheus.Counter
	written         prometheus.Counter
	deadLetters     *prometheus.CounterVec
	fetchErrors     prometheus.Counter
	batchRecords    prometheus.Histogram
	batchBytes      prometheus.Histogram
	stageDuration   *prometheus.HistogramVec
	writeDuration   prometheus.Histogram
	commitDuration  prometheus.Histogram
	commitErrors    prometheus.Counter
	endToEnd        prometheus.Histogram
	inflightBatches prometheus.Gauge
	inflightRecords prometheus.Gauge
	inflightBytes   prometheus.Gauge
	pausedParts     prometheus.Gauge
	abandoned       prometheus.Counter
	rebalances      *prometheus.CounterVec
	alreadyStored   prometheus.Counter
	resumeReads     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		consumed: f.NewCounter(prometheus.CounterOpts{
			Name: "textpulse_records_consumed_total",
			Help: "Records polled from Kafka.",
		}),
		written: f.NewCounter(prometheus.CounterOpts{
			Name: "textpulse_records_written_total",
			Help: "Rows stored in the sink (a retried batch counts again).",
		}),
		deadLetters: f.NewCounterVec(prometheus.CounterOpts{
			Name: "textpulse_dead_letters_total",
			Help: "Inputs not written as rows, by stage, error class and outcome (produced to the dead-letter topic, or dropped when none is configured).",
		}, []string{"stage", "class", "outcome"}),
		fetchErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "textpulse_fetch_errors_total",
			Help: "Errors returned by Kafka fetches.",
		}),
	}
	m.addHistograms(f)
	m.addGauges(f)
	return m
}

// addHistograms registers the families of batch sizes and of stage, write,
// commit and end-to-end times, with the commit error counter.
func (m *metrics) addHistograms(f promauto.Factory) {
	m.batchRecords = f.NewHistogram(prometheus.HistogramOpts{
		Name:    "textpulse_batch_records",
		Help:    "Inputs per micro-batch.",
		Buckets: prometheus.ExponentialBuckets(1, 4, 10),
	})
	m.batchBytes = f.NewHistogram(prometheus.HistogramOpts{
		Name:    "textpulse_batch_bytes",
		Help:    "Bytes of record values per micro-batch.",
		Buckets: prometheus.ExponentialBuckets(1024, 4, 10),
	})
	m.stageDuration = f.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "textpulse_stage_duration_seconds",
		Help:    "Time a stage took to enrich one batch.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
	}, []string{"stage"})
	m.writeDuration = f.NewHistogram(prometheus.HistogramOpts{
		Name:    "textpulse_batch_write_duration_seconds",
		Help:    "Time to store the rows of one batch, retries included.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
	})
	m.commitDuration = f.NewHistogram(prometheus.HistogramOpts{
		Name:    "textpulse_commit_duration_seconds",
		Help:    "Time to commit the offsets of one batch.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
	})
	m.commitErrors = f.NewCounter(prometheus.CounterOpts{
		Name: "textpulse_commit_errors_total",
		Help: "Offset commits that failed; their records are consumed again and collapse in the sink.",
	})
	m.endToEnd = f.NewHistogram(prometheus.HistogramOpts{
		Name:    "textpulse_end_to_end_latency_seconds",
		Help:    "Time from the Kafka record timestamp to its row being stored.",
		Buckets: prometheus.ExponentialBuckets(0.01, 1.5, 24),
	})
}

// addGauges registers the pipeline's gauges and the counters of takeovers
// and rebalances.
func (m *metrics) addGauges(f promauto.Factory) {
	m.inflightBatches = f.NewGauge(prometheus.GaugeOpts{
		Name: "textpulse_inflight_batches",
		Help: "Batches polled but not yet committed.",
	})
	m.inflightRecords = f.NewGauge(prometheus.GaugeOpts{
		Name: "textpulse_inflight_records",
		Help: "Inputs polled but not yet committed.",
	})
	m.inflightBytes = f.NewGauge(prometheus.GaugeOpts{
		Name: "textpulse_inflight_bytes",
		Help: "Bytes of record values polled but not yet committed.",
	})
	m.pausedParts = f.NewGauge(prometheus.GaugeOpts{
		Name: "textpulse_fetch_paused_partitions",
		Help: "Partitions whose fetching is paused because the batches in flight are at their limit.",
	})
	m.abandoned = f.NewCounter(prometheus.CounterOpts{
		Name: "textpulse_batches_abandoned_total",
		Help: "Batches dropped uncommitted on shutdown or rebalance after the drain timeout; their records are consumed again.",
	})
	m.alreadyStored = f.NewCounter(prometheus.CounterOpts{
		Name: "textpulse_records_already_stored_total",
		Help: "Records consumed again after a takeover (crash, rebalance, rewind) whose rows the table already held; they were committed without being written twice.",
	})
	m.resumeReads = f.NewCounterVec(prometheus.CounterOpts{
		Name: "textpulse_resume_reads_total",
		Help: "Reads of the offsets a partition taken over already has stored, by result (ok, error).",
	}, []string{"result"})
	m.rebalances = f.NewCounterVec(prometheus.CounterOpts{
		Name: "textpulse_rebalance_events_total",
		Help: "Partition assignment changes seen by this member, by kind.",
	}, []string{"kind"})
}

func (m *metrics) observeStage(stage string, seconds float64) {
	m.stageDuration.WithLabelValues(stage).Observe(seconds)
}

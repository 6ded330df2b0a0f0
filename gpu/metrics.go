package gpu

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are the Prometheus metrics of one model. Every series carries a
// constant model label, so that several models can share one registry.
type metrics struct {
	batchSize prometheus.Histogram
	duration  prometheus.Histogram
	padding   prometheus.Histogram
	queueWait prometheus.Histogram
	texts     prometheus.Counter
	info      *prometheus.GaugeVec
}

// newMetrics registers the metrics of the model called name on reg; a nil
// reg registers nothing.
func newMetrics(name string, reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	cl := prometheus.Labels{"model": name}
	return &metrics{
		batchSize: f.NewHistogram(prometheus.HistogramOpts{
			Name:        "textpulse_gpu_batch_size",
			Help:        "Texts per inference call.",
			ConstLabels: cl,
			Buckets:     prometheus.ExponentialBuckets(1, 2, 10),
		}),
		duration: f.NewHistogram(prometheus.HistogramOpts{
			Name:        "textpulse_gpu_inference_duration_seconds",
			Help:        "Duration of one inference call, tensors in and out included.",
			ConstLabels: cl,
			Buckets:     prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		padding: f.NewHistogram(prometheus.HistogramOpts{
			Name:        "textpulse_gpu_padding_ratio",
			Help:        "Padding tokens divided by all tokens of one inference call.",
			ConstLabels: cl,
			Buckets:     prometheus.LinearBuckets(0, 0.1, 10),
		}),
		queueWait: f.NewHistogram(prometheus.HistogramOpts{
			Name:        "textpulse_gpu_queue_wait_seconds",
			Help:        "Time a text waited in the batcher before its inference call started.",
			ConstLabels: cl,
			Buckets:     prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		texts: f.NewCounter(prometheus.CounterOpts{
			Name:        "textpulse_gpu_texts_total",
			Help:        "Texts run through the model.",
			ConstLabels: cl,
		}),
		info: f.NewGaugeVec(prometheus.GaugeOpts{
			Name:        "textpulse_gpu_info",
			Help:        "Always 1; the device label says where the model runs (cuda or cpu).",
			ConstLabels: cl,
		}, []string{"device"}),
	}
}

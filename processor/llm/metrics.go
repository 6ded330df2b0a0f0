package llm

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are the Prometheus metrics of one stage's endpoint; the engine's
// own (cache, retries, failures) are the textpulse_stage_* families of
// package enrich. Every series carries a constant stage label, so that both
// stages can register on one registry.
type metrics struct {
	requests    *prometheus.CounterVec
	inputs      prometheus.Histogram
	tokens      *prometheus.CounterVec
	duration    prometheus.Histogram
	retries     *prometheus.CounterVec
	rateLimited prometheus.Counter
	converted   prometheus.Counter
	unusable    *prometheus.CounterVec
	up          prometheus.Gauge
	wide        *prometheus.CounterVec
	format      *prometheus.GaugeVec
	// batches and batchRequests count the Batch API's batches, by
	// terminal status, and their requests, by outcome (ok, error).
	batches       *prometheus.CounterVec
	batchRequests *prometheus.CounterVec
	// concurrencyLimit and inFlight are the limit on requests in flight
	// and the requests in flight.
	concurrencyLimit prometheus.Gauge
	inFlight         prometheus.Gauge
}

// newMetrics registers the metrics of stage on reg; a nil reg registers
// nothing.
func newMetrics(stage string, reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	cl := prometheus.Labels{"stage": stage}
	m := &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name:        "textpulse_llm_requests_total",
			Help:        "Requests sent to the model endpoint, by outcome.",
			ConstLabels: cl,
		}, []string{"outcome"}),
		inputs: f.NewHistogram(prometheus.HistogramOpts{
			Name:        "textpulse_llm_request_inputs",
			Help:        "Texts per request sent to the model endpoint.",
			ConstLabels: cl,
			Buckets:     prometheus.ExponentialBuckets(1, 2, 12),
		}),
		tokens: f.NewCounterVec(prometheus.CounterOpts{
			Name:        "textpulse_llm_tokens_total",
			Help:        "Tokens billed by the model endpoint, by kind (prompt or completion).",
			ConstLabels: cl,
		}, []string{"kind"}),
		duration: f.NewHistogram(prometheus.HistogramOpts{
			Name:        "textpulse_llm_request_duration_seconds",
			Help:        "Duration of one attempt of a request to the model endpoint.",
			ConstLabels: cl,
			Buckets:     prometheus.ExponentialBuckets(0.05, 2, 12),
		}),
		retries: f.NewCounterVec(prometheus.CounterOpts{
			Name:        "textpulse_llm_retries_total",
			Help:        "Requests retried or split, by cause.",
			ConstLabels: cl,
		}, []string{"cause"}),
		rateLimited: f.NewCounter(prometheus.CounterOpts{
			Name:        "textpulse_llm_rate_limited_total",
			Help:        "Responses with status 429 from the model endpoint.",
			ConstLabels: cl,
		}),
		converted: f.NewCounter(prometheus.CounterOpts{
			Name:        "textpulse_llm_embedding_answers_converted_total",
			Help:        "Embedding answers in another encoding than asked (floats for base64), converted.",
			ConstLabels: cl,
		}),
		unusable: f.NewCounterVec(prometheus.CounterOpts{
			Name:        "textpulse_llm_unusable_answers_total",
			Help:        "Answers that could not be used, by reason (invalid, refusal, content_filter, length).",
			ConstLabels: cl,
		}, []string{"reason"}),
		up: f.NewGauge(prometheus.GaugeOpts{
			Name:        "textpulse_llm_endpoint_up",
			Help:        "1 while the model endpoint serves requests, 0 after a failure that holds for every request (bad key, unknown model, unsupported parameter, exhausted quota) until a request succeeds again.",
			ConstLabels: cl,
		}),
		wide: f.NewCounterVec(prometheus.CounterOpts{
			Name:        "textpulse_llm_endpoint_failures_total",
			Help:        "Failures that hold for every request to the model endpoint, by cause; each ends the attempt for its whole batch.",
			ConstLabels: cl,
		}, []string{"cause"}),
		format: f.NewGaugeVec(prometheus.GaugeOpts{
			Name:        "textpulse_llm_response_format",
			Help:        "1 for the response_format mode (json_schema, json_object, text) or embedding encoding (float, base64) the stage uses with its endpoint and model.",
			ConstLabels: cl,
		}, []string{"mode"}),
	}
	m.addBatchAndLimit(f, cl)
	return m
}

// addBatchAndLimit registers the families of the Batch API and of the
// in-flight limit.
func (m *metrics) addBatchAndLimit(f promauto.Factory, cl prometheus.Labels) {
	m.batches = f.NewCounterVec(prometheus.CounterOpts{
		Name:        "textpulse_llm_batches_total",
		Help:        "Batches of the Batch API that ended, by terminal status (completed, failed, expired, cancelled).",
		ConstLabels: cl,
	}, []string{"status"})
	m.batchRequests = f.NewCounterVec(prometheus.CounterOpts{
		Name:        "textpulse_llm_batch_requests_total",
		Help:        "Requests of ended batches of the Batch API, by outcome (ok, error).",
		ConstLabels: cl,
	}, []string{"outcome"})
	m.concurrencyLimit = f.NewGauge(prometheus.GaugeOpts{
		Name:        "textpulse_llm_concurrency_limit",
		Help:        "Requests to the model endpoint allowed in flight at once: the adaptive limit, or the fixed concurrency.",
		ConstLabels: cl,
	})
	m.inFlight = f.NewGauge(prometheus.GaugeOpts{
		Name:        "textpulse_llm_requests_in_flight",
		Help:        "Requests to the model endpoint in flight.",
		ConstLabels: cl,
	})
}

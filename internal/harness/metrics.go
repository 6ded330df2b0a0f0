package harness

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one scrape of a Prometheus endpoint, by family name.
type Metrics map[string]*dto.MetricFamily

// Scrape fetches url (a /metrics endpoint) and parses the text exposition
// format. A status other than 200 is an error.
func Scrape(ctx context.Context, url string) (Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("scrape %s: HTTP %d", url, resp.StatusCode)
	}
	return Parse(resp.Body)
}

// Parse reads metrics in the text exposition format.
func Parse(r io.Reader) (Metrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	return Metrics(fams), nil
}

// Gather collects the metrics of g, a registry of this process, in the
// form Scrape returns for another process.
func Gather(g prometheus.Gatherer) (Metrics, error) {
	fams, err := g.Gather()
	if err != nil {
		return nil, fmt.Errorf("gather metrics: %w", err)
	}
	m := make(Metrics, len(fams))
	for _, f := range fams {
		m[f.GetName()] = f
	}
	return m, nil
}

// Value returns the sum over the series of family name whose labels
// include every pair in labels (nil or empty labels match every series),
// for counters, gauges and untyped metrics. ok is false when the family
// is missing, has another type or no series matches.
func (m Metrics) Value(name string, labels map[string]string) (v float64, ok bool) {
	fam := m[name]
	if fam == nil {
		return 0, false
	}
	for _, s := range fam.GetMetric() {
		if !matches(s, labels) {
			continue
		}
		switch fam.GetType() {
		case dto.MetricType_COUNTER:
			v += s.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			v += s.GetGauge().GetValue()
		case dto.MetricType_UNTYPED:
			v += s.GetUntyped().GetValue()
		default:
			return 0, false
		}
		ok = true
	}
	return v, ok
}

// Histogram returns the cumulative buckets of histogram family name, with
// the same matching of labels as Value: the counts of matching series are
// added bound by bound. The last bucket is +Inf, counting every
// observation. ok is false when the family is missing, is no histogram or
// no series matches.
func (m Metrics) Histogram(name string, labels map[string]string) (h Histogram, ok bool) {
	fam := m[name]
	if fam == nil || fam.GetType() != dto.MetricType_HISTOGRAM {
		return Histogram{}, false
	}
	counts := map[float64]float64{}
	for _, s := range fam.GetMetric() {
		if !matches(s, labels) {
			continue
		}
		ok = true
		addBuckets(counts, s.GetHistogram())
	}
	if !ok {
		return Histogram{}, false
	}
	for le := range counts {
		h.Bounds = append(h.Bounds, le)
	}
	sort.Float64s(h.Bounds)
	for _, le := range h.Bounds {
		h.Counts = append(h.Counts, counts[le])
	}
	return h, true
}

// addBuckets adds the cumulative counts of hs to counts by upper bound;
// without a +Inf bucket, the sample count is the +Inf bucket.
func addBuckets(counts map[float64]float64, hs *dto.Histogram) {
	inf := false
	for _, b := range hs.GetBucket() {
		c := b.GetCumulativeCountFloat()
		if c == 0 {
			c = float64(b.GetCumulativeCount())
		}
		counts[b.GetUpperBound()] += c
		inf = inf || math.IsInf(b.GetUpperBound(), 1)
	}
	if !inf {
		n := hs.GetSampleCountFloat()
		if n == 0 {
			n = float64(hs.GetSampleCount())
		}
		counts[math.Inf(1)] += n
	}
}

func matches(s *dto.Metric, labels map[string]string) bool {
	found := 0
	for _, lp := range s.GetLabel() {
		if want, ok := labels[lp.GetName()]; ok {
			if want != lp.GetValue() {
				return false
			}
			found++
		}
	}
	return found == len(labels)
}

// Histogram is a Prometheus histogram at one scrape: cumulative counts by
// ascending upper bound, the last bound +Inf.
type Histogram struct {
	Bounds []float64
	Counts []float64
}

// Sub returns the observations of h that were not in before, an earlier
// scrape of the same series.
func (h Histogram) Sub(before Histogram) Histogram {
	out := Histogram{Bounds: h.Bounds, Counts: make([]float64, len(h.Counts))}
	for i := range h.Counts {
		out.Counts[i] = h.Counts[i]
		if i < len(before.Counts) {
			out.Counts[i] -= before.Counts[i]
		}
	}
	return out
}

// Quantile estimates the q-quantile by linear interpolation within the
// bucket that holds it, as PromQL's histogram_quantile does. It is NaN
// for a histogram without observations.
func (h Histogram) Quantile(q float64) float64 {
	if len(h.Counts) == 0 {
		return math.NaN()
	}
	total := h.Counts[len(h.Counts)-1]
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for i, c := range h.Counts {
		if c >= rank {
			upper := h.Bounds[i]
			if math.IsInf(upper, 1) {
				return lower
			}
			if c == below {
				return upper
			}
			return lower + (upper-lower)*(rank-below)/(c-below)
		}
		lower, below = h.Bounds[i], c
	}
	return lower
}

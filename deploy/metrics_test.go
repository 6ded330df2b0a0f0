package deploy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/textpulse/textpulse/internal/kafka"
	"github.com/textpulse/textpulse/processor"
	"github.com/textpulse/textpulse/processor/deadletter"
	"github.com/textpulse/textpulse/processor/llm"
	"github.com/textpulse/textpulse/sink/clickhouse"
)

// metricInfo is what a query may select of one exported metric family.
type metricInfo struct {
	// series are the names of its series: the family name, or for a
	// histogram the _bucket, _sum and _count series.
	series []string
	labels map[string]bool
}

// consumerFamilies are the metric families of the consumer (name, help and
// type), built by the same constructors the consumer calls.
type consumerFamilies struct {
	series   exportedMetrics
	families []*dto.MetricFamily
}

// exportedMetrics maps every series name the consumer can export to the
// label names of its family (target labels job and instance included).
type exportedMetrics map[string]*metricInfo

func (e exportedMetrics) add(name string, kind dto.MetricType, labels []string) {
	mi := &metricInfo{labels: map[string]bool{"job": true, "instance": true}}
	for _, l := range labels {
		mi.labels[l] = true
	}
	switch kind {
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		mi.series = []string{name + "_bucket", name + "_sum", name + "_count"}
		mi.labels["le"] = true
	case dto.MetricType_SUMMARY:
		mi.series = []string{name, name + "_sum", name + "_count"}
		mi.labels["quantile"] = true
	default:
		mi.series = []string{name}
	}
	for _, s := range mi.series {
		if old, ok := e[s]; ok {
			for l := range old.labels {
				mi.labels[l] = true
			}
		}
		e[s] = mi
	}
}

// recorder is a prometheus.Registerer that records the descriptors of every
// collector registered through it before registering it on a real registry,
// so that vectors without children are known too.
type recorder struct {
	reg *prometheus.Registry

	mu    sync.Mutex
	descs []recordedDesc
}

type recordedDesc struct {
	desc *prometheus.Desc
	kind dto.MetricType
}

// Register implements prometheus.Registerer.
func (r *recorder) Register(c prometheus.Collector) error {
	if err := r.reg.Register(c); err != nil {
		return err
	}
	kind := dto.MetricType_UNTYPED
	switch c.(type) {
	case *prometheus.HistogramVec, prometheus.Histogram:
		kind = dto.MetricType_HISTOGRAM
	case *prometheus.GaugeVec, prometheus.Gauge:
		kind = dto.MetricType_GAUGE
	case *prometheus.CounterVec, prometheus.Counter:
		kind = dto.MetricType_COUNTER
	}
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	r.mu.Lock()
	defer r.mu.Unlock()
	for d := range ch {
		r.descs = append(r.descs, recordedDesc{desc: d, kind: kind})
	}
	return nil
}

// MustRegister implements prometheus.Registerer.
func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// Unregister implements prometheus.Registerer.
func (r *recorder) Unregister(c prometheus.Collector) bool { return r.reg.Unregister(c) }

// descRE reads the name and labels out of a Desc's String form, the only
// public view of them.
var descRE = regexp.MustCompile(`fqName: "([^"]+)", help: "((?:[^"\\]|\\.)*)",.*?constLabels: \{([^}]*)\}, variableLabels: \{([^}]*)\}`)

func labelNames(s string) []string {
	var out []string
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		name, _, _ := strings.Cut(kv, "=")
		out = append(out, strings.TrimSpace(name))
	}
	return out
}

// consumerMetrics returns the metrics of the consumer, built by the same
// constructors the consumer calls, registered on a recording registry:
// the pipeline, dead letters, the API stages, the Kafka client (kprom) and
// lag monitor, the ClickHouse sink (built, not connected: its metrics
// exist from construction, no server needed) and the Go and process
// collectors. The GPU and local-model
// stages need a model runtime to be built, so their metric names are read
// from the Prometheus option literals of their source (gpu/, processor/local/).
func consumerMetrics(t *testing.T) consumerFamilies {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rec := &recorder{reg: prometheus.NewRegistry()}
	rec.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	snk := clickhouse.New(clickhouse.DefaultConfig(), log, rec)

	emb, err := llm.NewEmbeddingStage(llm.DefaultEmbeddingConfig(), log, rec)
	if err != nil {
		t.Fatalf("embedding stage: %v", err)
	}
	sen, err := llm.NewSentimentStage(llm.DefaultSentimentConfig(), log, rec)
	if err != nil {
		t.Fatalf("sentiment stage: %v", err)
	}
	kcfg := kafka.DefaultConfig()
	kcfg.Brokers = []string{"127.0.0.1:1"}
	dlqOpts, err := kcfg.ProducerOpts()
	if err != nil {
		t.Fatal(err)
	}
	dlqClient, err := kgo.NewClient(dlqOpts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dlqClient.Close)
	deps := processor.Deps{Logger: log, Registerer: rec, Writer: snk,
		Stages:      []processor.Stage{emb, sen},
		DeadLetters: deadletter.NewProducer(dlqClient, "dlq", log, rec)}
	p, err := processor.New(processor.DefaultBatchConfig(), processor.DefaultDecodeConfig(), deps)
	if err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	opts, err := kcfg.ConsumerOpts(log, rec)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, p.ClientOpts()...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	kafka.NewLagMonitor(cl, kcfg.Group, log, rec)

	m := exportedMetrics{}
	var fams []*dto.MetricFamily
	linted := map[string]bool{}
	for _, d := range rec.descs {
		sm := descRE.FindStringSubmatch(d.desc.String())
		if sm == nil || d.kind == dto.MetricType_UNTYPED || linted[sm[1]] {
			// The Go and process collectors and function gauges are read
			// from their gathered families below.
			continue
		}
		linted[sm[1]] = true
		m.add(sm[1], d.kind, append(labelNames(sm[3]), labelNames(sm[4])...))
		help, err := strconv.Unquote(`"` + sm[2] + `"`)
		if err != nil {
			help = sm[2]
		}
		fams = append(fams, &dto.MetricFamily{Name: &sm[1], Help: &help, Type: d.kind.Enum()})
	}
	families, err := rec.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		var labels []string
		for _, mt := range f.GetMetric() {
			for _, lp := range mt.GetLabel() {
				labels = append(labels, lp.GetName())
			}
		}
		m.add(f.GetName(), f.GetType(), labels)
		if !linted[f.GetName()] {
			linted[f.GetName()] = true
			fams = append(fams, &dto.MetricFamily{Name: f.Name, Help: f.Help, Type: f.Type})
		}
	}
	for _, dir := range []string{"../gpu", "../processor/local"} {
		fams = append(fams, sourceMetrics(t, dir, m)...)
	}
	return consumerFamilies{series: m, families: fams}
}

// optsKinds maps the Prometheus option types to the kind of metric built
// from them.
var optsKinds = map[string]dto.MetricType{
	"CounterOpts":   dto.MetricType_COUNTER,
	"GaugeOpts":     dto.MetricType_GAUGE,
	"HistogramOpts": dto.MetricType_HISTOGRAM,
	"SummaryOpts":   dto.MetricType_SUMMARY,
}

// sourceMetrics adds the metrics declared by prometheus.*Opts literals in
// the non-test Go files of dir: their Name, the keys of a ConstLabels map
// literal (or the "stage"/"model" label built in a variable) and the label
// list passed to a New*Vec call. A missing dir adds nothing.
func sourceMetrics(t *testing.T, dir string, m exportedMetrics) []*dto.MetricFamily {
	t.Helper()
	var fams []*dto.MetricFamily
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatalf("parse %s: %v", path, err)
		}
		// constLabelVars are variables assigned a prometheus.Labels literal.
		constLabelVars := map[string][]string{}
		ast.Inspect(f, func(n ast.Node) bool {
			if as, ok := n.(*ast.AssignStmt); ok && len(as.Lhs) == 1 && len(as.Rhs) == 1 {
				if id, ok := as.Lhs[0].(*ast.Ident); ok {
					if keys, ok := labelsLiteral(as.Rhs[0]); ok {
						constLabelVars[id.Name] = keys
					}
				}
			}
			return true
		})
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			lit, ok := call.Args[0].(*ast.CompositeLit)
			if !ok {
				return true
			}
			sel, ok := lit.Type.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			kind, ok := optsKinds[sel.Sel.Name]
			if !ok {
				return true
			}
			var name, help string
			var labels []string
			for _, el := range lit.Elts {
				kv, ok := el.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				switch kv.Key.(*ast.Ident).Name {
				case "Name":
					if bl, ok := kv.Value.(*ast.BasicLit); ok {
						name, _ = strconv.Unquote(bl.Value)
					}
				case "Help":
					if bl, ok := kv.Value.(*ast.BasicLit); ok {
						help, _ = strconv.Unquote(bl.Value)
					}
				case "ConstLabels":
					if keys, ok := labelsLiteral(kv.Value); ok {
						labels = append(labels, keys...)
					} else if id, ok := kv.Value.(*ast.Ident); ok {
						labels = append(labels, constLabelVars[id.Name]...)
					}
				}
			}
			if len(call.Args) > 1 {
				if sl, ok := call.Args[1].(*ast.CompositeLit); ok {
					for _, el := range sl.Elts {
						if bl, ok := el.(*ast.BasicLit); ok {
							s, _ := strconv.Unquote(bl.Value)
							labels = append(labels, s)
						}
					}
				}
			}
			if name != "" {
				m.add(name, kind, labels)
				fams = append(fams, &dto.MetricFamily{Name: &name, Help: &help, Type: kind.Enum()})
			}
			return true
		})
	}
	return fams
}

// labelsLiteral returns the keys of a prometheus.Labels{...} literal.
func labelsLiteral(e ast.Expr) ([]string, bool) {
	lit, ok := e.(*ast.CompositeLit)
	if !ok {
		return nil, false
	}
	sel, ok := lit.Type.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "Labels" {
		return nil, false
	}
	var keys []string
	for _, el := range lit.Elts {
		if kv, ok := el.(*ast.KeyValueExpr); ok {
			if bl, ok := kv.Key.(*ast.BasicLit); ok {
				s, _ := strconv.Unquote(bl.Value)
				keys = append(keys, s)
			}
		}
	}
	return keys, true
}

// TestConsumerMetricNames checks the metric names against the Prometheus
// conventions with client_golang's promlint (units in names, _total on
// counters only, base units, no camelCase, help text), and that the
// metrics the dashboards and alerts rely on exist. The franz-go client
// metrics (textpulse_kafka_*) and the Go and process collectors are named by
// their libraries; their findings are logged, not failed. No server is
// needed: every package registers its metrics at construction.
func TestConsumerMetricNames(t *testing.T) {
	checkConsumerMetricNames(t)
}

// checkConsumerMetricNames is TestConsumerMetricNames; it returns the
// sorted series names.
func checkConsumerMetricNames(t *testing.T) []string {
	t.Helper()
	cf := consumerMetrics(t)
	m := cf.series
	problems, err := promlint.NewWithMetricFamilies(cf.families).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if !strings.HasPrefix(p.Metric, "textpulse_") || strings.HasPrefix(p.Metric, "textpulse_kafka_") {
			t.Logf("library metric: %s: %s", p.Metric, p.Text)
			continue
		}
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	prefixed := 0
	for _, f := range cf.families {
		name := f.GetName()
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			continue
		}
		if !strings.HasPrefix(name, "textpulse_") {
			t.Errorf("metric %s lacks the textpulse_ prefix", name)
		}
		prefixed++
	}
	t.Logf("%d textpulse metric families, %d series names in all", prefixed, len(m))
	for _, want := range []string{
		"textpulse_records_consumed_total", "textpulse_records_written_total", "textpulse_dead_letters_total",
		"textpulse_consumer_lag_records", "textpulse_end_to_end_latency_seconds_bucket",
		"textpulse_stage_duration_seconds_bucket", "textpulse_sink_inserts_total", "textpulse_llm_rate_limited_total",
		"textpulse_stage_cache_hits_total", "textpulse_stage_cache_entries", "textpulse_kafka_fetch_records_total", "go_goroutines",
		"process_resident_memory_bytes",
	} {
		if m[want] == nil {
			t.Errorf("exported metrics lack %s", want)
		}
	}
	if _, err := os.Stat("../gpu"); err == nil && m["textpulse_gpu_batch_size_bucket"] == nil {
		t.Errorf("package gpu exists but declares no textpulse_gpu_batch_size")
	}
	return slices.Sorted(maps.Keys(m))
}

package enrich

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/textpulse/textpulse/internal/promtest"
	"github.com/textpulse/textpulse/processor"
)

// retryableErr is a failure that says it may pass when repeated.
type retryableErr struct{ retry bool }

func (e retryableErr) Error() string   { return fmt.Sprintf("retryable %v", e.retry) }
func (e retryableErr) Retryable() bool { return e.retry }

// wideErr is a failure of every request to the endpoint.
type wideErr struct{}

func (wideErr) Error() string      { return "bad key" }
func (wideErr) EndpointWide() bool { return true }

// fakeProvider upper-cases texts. It fails the texts in fail with err for
// their first failures attempts, and counts what it was asked.
type fakeProvider struct {
	mu       sync.Mutex
	fail     map[string]bool
	failures int
	err      error
	unsettle bool
	calls    int
	seen     []string
	tries    map[string]int
}

func (f *fakeProvider) Prepare(text string) (string, int) { return "<" + text + ">", len(text) }

func (f *fakeProvider) Resolve(_ context.Context, items []*Item[string]) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	for _, it := range items {
		f.seen = append(f.seen, it.Text)
		f.tries[it.Text]++
		switch {
		case f.unsettle:
		case f.fail[it.Text] && f.tries[it.Text] <= f.failures:
			it.Err, it.Attempts = f.err, 2
		default:
			it.Result, it.Done = fmt.Sprintf("%s/%d", it.Text, it.Tokens), true
		}
	}
}

func (f *fakeProvider) Set(r *processor.Record, v string) { r.SentimentLabel = v }

func newBatch(texts ...string) *processor.Batch {
	b := processor.NewBatch("b1")
	for i, t := range texts {
		b.Append(processor.Record{Topic: "in", Offset: int64(i), Event: processor.Event{ID: t, Text: t}})
	}
	return b
}

func testConfig(policy processor.FailurePolicy, attempts int) Config {
	return Config{Stage: "sentiment", Provider: "fake", Policy: policy, MaxAttempts: attempts,
		InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond, CacheSize: 100, CacheScope: "m1"}
}

func TestEngineDeduplicatesAndCaches(t *testing.T) {
	p := &fakeProvider{tries: map[string]int{}}
	reg := prometheus.NewRegistry()
	e, err := New[string](testConfig(processor.PolicySkip, 3), p, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	b := newBatch("a", "bb", "a", "ccc", "bb")
	if err := e.Enrich(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if want := []string{"<a>", "<bb>", "<ccc>"}; !slices.Equal(p.seen, want) {
		t.Fatalf("provider saw %q, want the distinct prepared texts %q", p.seen, want)
	}
	for i, r := range b.Records {
		if want := fmt.Sprintf("<%s>/%d", r.Text, len(r.Text)); r.SentimentLabel != want {
			t.Errorf("record %d: %q, want %q", i, r.SentimentLabel, want)
		}
	}
	b2 := newBatch("bb", "dddd")
	if err := e.Enrich(t.Context(), b2); err != nil {
		t.Fatal(err)
	}
	if got := p.seen[3:]; !slices.Equal(got, []string{"<dddd>"}) {
		t.Fatalf("second batch: provider saw %q, want only the new text", got)
	}
	if b2.Records[0].SentimentLabel != "<bb>/2" {
		t.Fatalf("cached record: %q", b2.Records[0].SentimentLabel)
	}
	labels := map[string]string{"stage": "sentiment", "provider": "fake"}
	for name, want := range map[string]float64{
		"textpulse_stage_cache_lookups_total": 5,
		"textpulse_stage_cache_hits_total":    1,
		"textpulse_stage_cache_entries":       4,
	} {
		if got := promtest.Sum(t, reg, name, labels); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

func TestEngineFailures(t *testing.T) {
	transient := retryableErr{retry: true}
	tests := []struct {
		name         string
		policy       processor.FailurePolicy
		attempts     int
		failures     int
		err          error
		wantCalls    int
		wantFailed   bool
		wantDead     bool
		wantAttempts int
	}{
		{name: "retryable failure recovers within attempts", policy: processor.PolicySkip, attempts: 3, failures: 2, err: transient, wantCalls: 3},
		{name: "skip after the last attempt", policy: processor.PolicySkip, attempts: 2, failures: 9, err: transient, wantCalls: 2, wantFailed: true},
		{name: "dead letter counts every try", policy: processor.PolicyDeadLetter, attempts: 2, failures: 9, err: transient, wantCalls: 2, wantDead: true, wantAttempts: 4},
		{name: "unmarked error is not retried", policy: processor.PolicySkip, attempts: 3, failures: 9, err: errors.New("boom"), wantCalls: 1, wantFailed: true},
		{name: "non-retryable error is not retried", policy: processor.PolicySkip, attempts: 3, failures: 9, err: retryableErr{}, wantCalls: 1, wantFailed: true},
		{name: "permanent error is not retried", policy: processor.PolicyDeadLetter, attempts: 3, failures: 9, err: processor.Permanent(transient), wantCalls: 1, wantDead: true, wantAttempts: 2},
		{name: "endpoint-wide error is not retried", policy: processor.PolicySkip, attempts: 3, failures: 9, err: wideErr{}, wantCalls: 1, wantFailed: true},
		{name: "retry policy tries every failure again", policy: processor.PolicyRetry, attempts: 1, failures: 4, err: errors.New("boom"), wantCalls: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &fakeProvider{tries: map[string]int{}, fail: map[string]bool{"<x>": true}, failures: tt.failures, err: tt.err}
			reg := prometheus.NewRegistry()
			e, err := New[string](testConfig(tt.policy, tt.attempts), p, slog.New(slog.DiscardHandler), reg)
			if err != nil {
				t.Fatal(err)
			}
			b := newBatch("x", "y", "x")
			if err := e.Enrich(t.Context(), b); err != nil {
				t.Fatal(err)
			}
			if p.calls != tt.wantCalls {
				t.Errorf("attempts %d, want %d", p.calls, tt.wantCalls)
			}
			if p.tries["<y>"] != 1 {
				t.Errorf("the good text was sent %d times, want once", p.tries["<y>"])
			}
			rej := b.Rejected()
			for _, i := range []int{0, 2} {
				r := b.Records[i]
				failed := slices.Contains(r.FailedStages, "sentiment")
				dl, dead := rej[i]
				switch {
				case failed != tt.wantFailed || dead != tt.wantDead:
					t.Errorf("record %d: failed %v dead %v, want %v %v", i, failed, dead, tt.wantFailed, tt.wantDead)
				case dead && (dl.Stage != "sentiment" || dl.Class != processor.ClassStageFailed || dl.Attempts != tt.wantAttempts):
					t.Errorf("record %d: dead letter %+v, want stage sentiment, stage_failed, %d attempts", i, dl, tt.wantAttempts)
				case !failed && !dead && r.SentimentLabel != "<x>/1":
					t.Errorf("record %d: result %q", i, r.SentimentLabel)
				}
			}
			wantPolicy := 0.0
			if tt.wantFailed || tt.wantDead {
				wantPolicy = 2
			}
			if got := promtest.Sum(t, reg, "textpulse_stage_failures_total", map[string]string{"policy": string(tt.policy)}); got != wantPolicy {
				t.Errorf("failures_total = %v, want %v", got, wantPolicy)
			}
		})
	}
}

func TestEngineStopsWithContext(t *testing.T) {
	p := &fakeProvider{tries: map[string]int{}, fail: map[string]bool{"<x>": true}, failures: 1 << 30, err: wideErr{}}
	e, err := New[string](testConfig(processor.PolicyRetry, 1), p, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	b := newBatch("x")
	if err := e.Enrich(ctx, b); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Enrich error %v, want the context's deadline", err)
	}
	if len(b.Records[0].FailedStages) != 0 || len(b.Rejected()) != 0 {
		t.Fatal("an abandoned batch got a failure policy applied")
	}
}

func TestEngineReportsUnsettledItems(t *testing.T) {
	p := &fakeProvider{tries: map[string]int{}, unsettle: true}
	e, err := New[string](testConfig(processor.PolicyDeadLetter, 3), p, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	b := newBatch("x")
	if err := e.Enrich(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if dl, ok := b.Rejected()[0]; !ok || dl.Reason != ErrUnsettled.Error() {
		t.Fatalf("dead letter %+v, want ErrUnsettled", dl)
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no attempts", testConfig(processor.PolicySkip, 0)},
		{"unknown policy", testConfig("drop", 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New[string](tt.cfg, &fakeProvider{}, slog.New(slog.DiscardHandler), nil); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v, want ErrInvalidConfig", err)
			}
		})
	}
}

// logCounter counts the messages logged, by message.
type logCounter struct {
	mu   sync.Mutex
	msgs map[string]int
}

func (l *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logCounter) WithGroup(string) slog.Handler            { return l }
func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs[r.Message]++
	return nil
}

func TestEngineDefers(t *testing.T) {
	tests := []struct {
		name   string
		policy processor.FailurePolicy
		// warm is enriched before deferral, so that its texts are cached.
		warm       []string
		texts      []string
		wantCalls  int
		wantFailed []bool
	}{
		{name: "nothing cached", policy: processor.PolicySkip, texts: []string{"a", "b", "a"},
			wantFailed: []bool{true, true, true}},
		{name: "cached texts are answered", policy: processor.PolicySkip, warm: []string{"a"}, texts: []string{"a", "b", "a"},
			wantCalls: 1, wantFailed: []bool{false, true, false}},
		{name: "dead-letter policy still marks failed", policy: processor.PolicyDeadLetter, texts: []string{"a", "b"},
			wantFailed: []bool{true, true}},
		{name: "retry policy still marks failed", policy: processor.PolicyRetry, texts: []string{"a"},
			wantFailed: []bool{true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &fakeProvider{tries: map[string]int{}}
			reg := prometheus.NewRegistry()
			var deferring atomic.Bool
			cfg := testConfig(tt.policy, 3)
			cfg.Defer = deferring.Load
			e, err := New[string](cfg, p, slog.New(slog.DiscardHandler), reg)
			if err != nil {
				t.Fatal(err)
			}
			if len(tt.warm) > 0 {
				if err := e.Enrich(t.Context(), newBatch(tt.warm...)); err != nil {
					t.Fatal(err)
				}
			}
			deferring.Store(true)
			b := newBatch(tt.texts...)
			if err := e.Enrich(t.Context(), b); err != nil {
				t.Fatal(err)
			}
			if p.calls != tt.wantCalls {
				t.Errorf("provider called %d times, want %d (only to warm the cache)", p.calls, tt.wantCalls)
			}
			if len(b.Rejected()) != 0 {
				t.Errorf("deferred records dead-lettered: %v", b.Rejected())
			}
			deferred := 0
			for i, r := range b.Records {
				failed := slices.Contains(r.FailedStages, "sentiment")
				if failed != tt.wantFailed[i] {
					t.Errorf("record %d: failed %v, want %v", i, failed, tt.wantFailed[i])
				}
				if failed {
					deferred++
				} else if want := "<" + r.Text + ">/1"; r.SentimentLabel != want {
					t.Errorf("record %d: cached result %q, want %q", i, r.SentimentLabel, want)
				}
			}
			labels := map[string]string{"stage": "sentiment", "provider": "fake"}
			if got := promtest.Sum(t, reg, "textpulse_stage_deferred_total", labels); got != float64(deferred) {
				t.Errorf("deferred_total = %v, want %d", got, deferred)
			}
			if got := promtest.Sum(t, reg, "textpulse_stage_failures_total", labels); got != 0 {
				t.Errorf("failures_total = %v, want 0: deferral is no failure", got)
			}
		})
	}
}

func TestEngineLogsDeferralChanges(t *testing.T) {
	p := &fakeProvider{tries: map[string]int{}}
	logs := &logCounter{msgs: map[string]int{}}
	var deferring atomic.Bool
	cfg := testConfig(processor.PolicySkip, 1)
	cfg.Defer, cfg.CacheSize = deferring.Load, 0
	e, err := New[string](cfg, p, slog.New(logs), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []bool{false, true, true, true, false, false, true, false} {
		deferring.Store(d)
		if err := e.Enrich(t.Context(), newBatch("x")); err != nil {
			t.Fatal(err)
		}
	}
	if p.calls != 4 {
		t.Errorf("provider called %d times, want 4 (once per batch not deferred)", p.calls)
	}
	for msg, want := range map[string]int{"enrichment deferred": 2, "enrichment resumed": 2} {
		if got := logs.msgs[msg]; got != want {
			t.Errorf("%q logged %d times, want %d", msg, got, want)
		}
	}
}

// vectors answers each text with a vector of len(text) floats.
type vectors struct{}

func (vectors) Prepare(text string) (string, int) { return text, 0 }

func (vectors) Resolve(_ context.Context, items []*Item[[]float32]) {
	for _, it := range items {
		it.Result, it.Done = make([]float32, len(it.Text)), true
	}
}

func (vectors) Set(r *processor.Record, v []float32) { r.Embedding = v }

func TestEngineCacheBoundedByBytes(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := testConfig(processor.PolicySkip, 1)
	cfg.CacheBytes = 3 * (resultOverhead + 4*100)
	e, err := New[[]float32](cfg, vectors{}, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	long := func(c byte) string { return strings.Repeat(string(c), 100) }
	for _, c := range []byte("abcde") {
		if err := e.Enrich(t.Context(), newBatch(long(c))); err != nil {
			t.Fatal(err)
		}
	}
	labels := map[string]string{"stage": "sentiment"}
	entries := promtest.Sum(t, reg, "textpulse_stage_cache_entries", labels)
	bytes := promtest.Sum(t, reg, "textpulse_stage_cache_bytes", labels)
	if entries != 3 || bytes != float64(cfg.CacheBytes) {
		t.Fatalf("cache holds %v entries, %v bytes; want the 3 newest, %d bytes", entries, bytes, cfg.CacheBytes)
	}
	b := newBatch(long('e'), long('a'))
	if err := e.Enrich(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if hits := promtest.Sum(t, reg, "textpulse_stage_cache_hits_total", labels); hits != 1 {
		t.Fatalf("%v cache hits, want 1: the newest text stays, the oldest was evicted", hits)
	}
}

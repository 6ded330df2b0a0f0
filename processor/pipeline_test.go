package processor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// memWriter stores rows in memory. refuse marks rows the "sink" refuses for
// their content; block makes Write wait until released.
type memWriter struct {
	mu     sync.Mutex
	rows   map[string]Record
	writes int
	refuse func(r *Record) bool
	block  chan struct{}
}

func newMemWriter() *memWriter { return &memWriter{rows: make(map[string]Record)} }

func (w *memWriter) Write(ctx context.Context, b *Batch) error {
	if w.block != nil {
		select {
		case <-w.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if w.refuse != nil {
		for i := range b.Records {
			if w.refuse(&b.Records[i]) {
				return Permanent(fmt.Errorf("row %d refused", b.Records[i].Offset))
			}
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	for _, r := range b.Records {
		w.rows[fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)] = r
	}
	return nil
}

func (w *memWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.rows)
}

type memDLQ struct {
	mu  sync.Mutex
	dls []DeadLetter
}

func (d *memDLQ) Send(_ context.Context, dls []DeadLetter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dls = append(d.dls, dls...)
	return nil
}

func (d *memDLQ) all() []DeadLetter {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]DeadLetter(nil), d.dls...)
}

// fixture is a fake cluster with a topic, and a client to produce and
// inspect it.
type fixture struct {
	t      *testing.T
	addrs  []string
	admin  *kadm.Client
	client *kgo.Client
	topic  string
	group  string
}

func newFixture(t *testing.T, partitions int32) *fixture {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, "in"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &fixture{t: t, addrs: c.ListenAddrs(), admin: kadm.NewClient(cl), client: cl, topic: "in", group: "g"}
}

func (f *fixture) produce(partitions int32, values ...string) {
	f.t.Helper()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: f.topic, Partition: int32(i) % partitions, Value: []byte(v)}
	}
	if err := f.client.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) committed() int64 {
	f.t.Helper()
	resp, err := f.admin.FetchOffsets(context.Background(), f.group)
	if err != nil {
		f.t.Fatal(err)
	}
	var n int64
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && o.At > 0 {
			n += o.At
		}
	})
	return n
}

// start runs a pipeline over the fixture until the returned stop is called.
func (f *fixture) start(cfg BatchConfig, deps Deps) (stop func() error) {
	f.t.Helper()
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	p, err := New(cfg, DefaultDecodeConfig(), deps)
	if err != nil {
		f.t.Fatal(err)
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(f.addrs...), kgo.ConsumerGroup(f.group), kgo.ConsumeTopics(f.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, p.ClientOpts()...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, cl) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				runErr = errors.New("pipeline did not stop")
			}
			cl.Close()
		})
		return runErr
	}
	f.t.Cleanup(func() { _ = stop() })
	return stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func event(i int, text string) string {
	return fmt.Sprintf(`{"id":"e%d","text":%q}`, i, text)
}

func smallBatches() BatchConfig {
	c := DefaultBatchConfig()
	c.MaxRecords = 50
	c.MaxWait = 20 * time.Millisecond
	c.DrainTimeout = 2 * time.Second
	return c
}

func TestPipelineWritesThenCommits(t *testing.T) {
	f := newFixture(t, 3)
	var values []string
	for i := range 600 {
		if i%20 == 0 {
			values = append(values, `{"broken`)
			continue
		}
		values = append(values, event(i, "text"))
	}
	f.produce(3, values...)
	w, dlq := newMemWriter(), &memDLQ{}
	stop := f.start(smallBatches(), Deps{Writer: w, DeadLetters: dlq})
	waitFor(t, "all rows and dead letters", func() bool { return w.count() == 570 && len(dlq.all()) == 30 })
	waitFor(t, "commits", func() bool { return f.committed() == 600 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, dl := range dlq.all() {
		if dl.Stage != "decode" || dl.Class != ClassInvalidJSON || string(dl.Record.Value) != `{"broken` {
			t.Fatalf("dead letter %+v", dl)
		}
	}
}

func TestPipelineDoesNotCommitUnwrittenRows(t *testing.T) {
	f := newFixture(t, 2)
	f.produce(2, event(1, "a"), event(2, "b"), event(3, "c"), event(4, "d"))
	w := newMemWriter()
	w.block = make(chan struct{})
	stop := f.start(smallBatches(), Deps{Writer: w, DeadLetters: &memDLQ{}})
	time.Sleep(500 * time.Millisecond)
	if n := f.committed(); n != 0 {
		t.Fatalf("committed %d offsets while the writer was blocked", n)
	}
	close(w.block)
	waitFor(t, "commits after the writer recovers", func() bool { return f.committed() == 4 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestPipelineAbandonsOnShutdownWithoutCommitting(t *testing.T) {
	f := newFixture(t, 1)
	f.produce(1, event(1, "a"), event(2, "b"))
	w := newMemWriter()
	w.block = make(chan struct{}) // never released
	cfg := smallBatches()
	cfg.DrainTimeout = 300 * time.Millisecond
	stop := f.start(cfg, Deps{Writer: w, DeadLetters: &memDLQ{}})
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown took %s with a drain timeout of %s", d, cfg.DrainTimeout)
	}
	if n := f.committed(); n != 0 {
		t.Fatalf("committed %d offsets of abandoned batches", n)
	}
}

func TestPipelineIsolatesRefusedRows(t *testing.T) {
	f := newFixture(t, 1)
	var values []string
	for i := range 200 {
		text := "fine"
		if i == 17 || i == 133 {
			text = "POISON"
		}
		values = append(values, event(i, text))
	}
	f.produce(1, values...)
	w, dlq := newMemWriter(), &memDLQ{}
	w.refuse = func(r *Record) bool { return r.Text == "POISON" }
	cfg := smallBatches()
	cfg.MaxRecords = 200
	stop := f.start(cfg, Deps{Writer: w, DeadLetters: dlq})
	waitFor(t, "rows", func() bool { return w.count() == 198 && len(dlq.all()) == 2 })
	waitFor(t, "commits", func() bool { return f.committed() == 200 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, dl := range dlq.all() {
		if dl.Stage != "sink" || dl.Class != ClassSinkRejected || (dl.Record.Offset != 17 && dl.Record.Offset != 133) {
			t.Fatalf("dead letter %+v", dl)
		}
	}
}

// policyStage exercises the per-record outcomes a stage may choose.
type policyStage struct{}

func (policyStage) Name() string { return "policy" }

func (policyStage) Enrich(_ context.Context, b *Batch) error {
	for i := range b.Records {
		switch {
		case strings.HasPrefix(b.Records[i].Text, "fail"):
			b.MarkFailed(i, "policy")
		case strings.HasPrefix(b.Records[i].Text, "reject"):
			b.Reject(i, "policy", ClassStageFailed, errors.New("rejected by policy"), 3)
		default:
			b.Records[i].SentimentLabel = "neutral"
		}
	}
	return nil
}

// labelStage writes its own field concurrently with policyStage.
type labelStage struct{}

func (labelStage) Name() string { return "label" }

func (labelStage) Enrich(_ context.Context, b *Batch) error {
	for i := range b.Records {
		b.Records[i].EmotionLabel = "joy"
		if strings.HasPrefix(b.Records[i].Text, "fail") {
			b.MarkFailed(i, "label")
		}
	}
	return nil
}

func TestPipelineStageOutcomes(t *testing.T) {
	f := newFixture(t, 1)
	f.produce(1, event(0, "ok"), event(1, "fail me"), event(2, "reject me"), event(3, "ok"))
	w, dlq := newMemWriter(), &memDLQ{}
	stop := f.start(smallBatches(), Deps{Writer: w, DeadLetters: dlq, Stages: []Stage{policyStage{}, labelStage{}}})
	waitFor(t, "rows", func() bool { return w.count() == 3 && len(dlq.all()) == 1 })
	waitFor(t, "commits", func() bool { return f.committed() == 4 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	ok := w.rows["in/0/0"]
	if ok.Status() != "ok" || ok.SentimentLabel != "neutral" || ok.EmotionLabel != "joy" {
		t.Fatalf("ok row %+v", ok)
	}
	failed := w.rows["in/0/1"]
	if failed.Status() != "partial" || len(failed.FailedStages) != 2 || failed.SentimentLabel != "" {
		t.Fatalf("failed row %+v", failed)
	}
	if _, ok := w.rows["in/0/2"]; ok {
		t.Fatal("rejected row was written")
	}
	dl := dlq.all()[0]
	if dl.Stage != "policy" || dl.Class != ClassStageFailed || dl.Attempts != 3 || dl.Record.Offset != 2 {
		t.Fatalf("dead letter %+v", dl)
	}
}

// errStage fails every batch, as a stage whose policy is to stop.
type errStage struct{}

func (errStage) Name() string { return "err" }

func (errStage) Enrich(context.Context, *Batch) error { return errors.New("model unavailable") }

func TestPipelineStopsOnStageError(t *testing.T) {
	f := newFixture(t, 1)
	f.produce(1, event(0, "a"))
	w := newMemWriter()
	p, err := New(smallBatches(), DefaultDecodeConfig(), Deps{Writer: w, Stages: []Stage{errStage{}}})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(f.addrs...), kgo.ConsumerGroup(f.group),
		kgo.ConsumeTopics(f.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, p.ClientOpts()...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = p.Run(ctx, cl)
	if !errors.Is(err, ErrPipelineStopped) || !strings.Contains(err.Error(), "model unavailable") {
		t.Fatalf("Run returned %v", err)
	}
	if w.count() != 0 || f.committed() != 0 {
		t.Fatalf("wrote %d rows and committed %d offsets after a stage error", w.count(), f.committed())
	}
}

func TestBatchDedupTokenIsDeterministic(t *testing.T) {
	mk := func(order []int) string {
		b := NewBatch("x")
		for _, p := range order {
			b.cover("t", int32(p), int64(10*p), -1)
			b.cover("t", int32(p), int64(10*p+5), -1)
		}
		return b.DedupToken()
	}
	a, b := mk([]int{0, 1, 2}), mk([]int{2, 0, 1})
	if a != b || a != "t:0:0-5,t:1:10-15,t:2:20-25" {
		t.Fatalf("tokens %q and %q", a, b)
	}
}

// sizedStage records the size of every batch it sees and declares that it
// adds perRecord bytes to each record, as an embedding stage does.
type sizedStage struct {
	perRecord int
	mu        sync.Mutex
	sizes     []int
}

func (*sizedStage) Name() string { return "sized" }

func (s *sizedStage) ResultBytes() int { return s.perRecord }

func (s *sizedStage) Enrich(_ context.Context, b *Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sizes = append(s.sizes, len(b.Records))
	return nil
}

func TestPipelineCountsStageResultsTowardMaxBytes(t *testing.T) {
	tests := []struct {
		name      string
		perRecord int
		maxBatch  int
	}{
		// 200 events of about 40 bytes fit one 10,000-byte batch ...
		{name: "raw", perRecord: 0, maxBatch: 200},
		// ... but with 1,000 bytes of results each, a batch holds at most 10.
		{name: "with results", perRecord: 1000, maxBatch: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 1)
			var values []string
			for i := range 200 {
				values = append(values, event(i, "text"))
			}
			f.produce(1, values...)
			c := smallBatches()
			c.MaxRecords, c.MaxBytes, c.MaxWait = 1000, 10_000, 300*time.Millisecond
			st := &sizedStage{perRecord: tt.perRecord}
			w := newMemWriter()
			stop := f.start(c, Deps{Writer: w, DeadLetters: &memDLQ{}, Stages: []Stage{st}})
			waitFor(t, "rows", func() bool { return w.count() == 200 })
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			st.mu.Lock()
			defer st.mu.Unlock()
			largest := 0
			for _, n := range st.sizes {
				largest = max(largest, n)
			}
			if largest > tt.maxBatch {
				t.Fatalf("largest batch %d records, want at most %d (batches %v)", largest, tt.maxBatch, st.sizes)
			}
			if tt.perRecord == 0 && len(st.sizes) > 2 {
				t.Fatalf("raw events were cut into %d batches (%v), want them together", len(st.sizes), st.sizes)
			}
		})
	}
}

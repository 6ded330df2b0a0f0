package processor

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestPipelinePausesFetchingWhenFull blocks the writer with one batch in
// flight and checks that fetching of every assigned partition is paused and
// the client's buffer does not grow while it is, and that fetching resumes
// and every record is written and committed once the writer recovers.
func TestPipelinePausesFetchingWhenFull(t *testing.T) {
	const n, parts = 4000, 2
	f := newFixture(t, parts)
	values := make([]string, n)
	for i := range values {
		values[i] = event(i, "some text to make the record a little longer than a few bytes")
	}
	f.produce(parts, values...)

	w := newMemWriter()
	w.block = make(chan struct{})
	cfg := smallBatches()
	cfg.MaxRecords = 20
	cfg.MaxInFlight = 1
	reg := prometheus.NewRegistry()
	p, err := New(cfg, DefaultDecodeConfig(), Deps{Writer: w, DeadLetters: &memDLQ{}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	// Small fetches, so that a buffered fetch holds part of the topic.
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(f.addrs...), kgo.ConsumerGroup(f.group), kgo.ConsumeTopics(f.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(4 << 10), kgo.FetchMaxPartitionBytes(2 << 10), kgo.MaxBufferedRecords(n * 2),
	}, p.ClientOpts()...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, cl) }()
	var once sync.Once
	stop := func() error {
		var err error
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				err = errors.New("pipeline did not stop")
			}
		})
		return err
	}
	defer func() { _ = stop() }()

	waitFor(t, "every partition paused", func() bool {
		return countPartitions(cl.PauseFetchPartitions(nil)) == parts
	})
	if got := testutil.ToFloat64(p.m.pausedParts); got != parts {
		t.Fatalf("textpulse_fetch_paused_partitions = %v, want %d", got, parts)
	}
	// Let any fetch that was in flight when pausing land, then check
	// that the buffer stops growing.
	time.Sleep(300 * time.Millisecond)
	held := cl.BufferedFetchRecords()
	time.Sleep(time.Second)
	if later := cl.BufferedFetchRecords(); later > held {
		t.Fatalf("client buffered %d records, then %d, of %d while paused", held, later, n)
	}
	t.Logf("buffered %d of %d records while paused", held, n)

	close(w.block)
	waitFor(t, "every row", func() bool { return w.count() == n })
	waitFor(t, "commits", func() bool { return f.committed() == n })
	waitFor(t, "fetching resumed", func() bool { return len(cl.PauseFetchPartitions(nil)) == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/textpulse/textpulse/internal/harness"
	"github.com/textpulse/textpulse/internal/openaisim"
	"github.com/textpulse/textpulse/internal/textgen"
)

// serveSim serves an OpenAI-compatible simulator on a free loopback port and
// returns it with its /v1 base URL and a function that stops it.
func serveSim(ctx context.Context, cfg openaisim.Config) (*openaisim.Server, string, func(), error) {
	sim, err := openaisim.New(cfg, nil)
	if err != nil {
		return nil, "", nil, err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", nil, err
	}
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return sim, "http://" + ln.Addr().String() + "/v1", func() { _ = srv.Close() }, nil
}

// newProducer returns the Kafka client the scenarios produce and manage
// topics with; extra options are added to the shared ones.
func newProducer(o options, extra ...kgo.Opt) (*kgo.Client, *kadm.Client, error) {
	opts := append([]kgo.Opt{kgo.SeedBrokers(strings.Split(o.brokers, ",")...), kgo.ProducerLinger(5 * time.Millisecond)}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("create kafka client: %w", err)
	}
	return cl, kadm.NewClient(cl), nil
}

// runEnv is a fresh topic, database and group for one consumer run.
type runEnv struct {
	topic, db, group string
	port             int
	metricsURL       string
}

// newRunEnv creates a topic with the given partitions and picks a metrics
// port; cleanup deletes the topic, its dead-letter topic and the database.
func newRunEnv(ctx context.Context, o options, adm *kadm.Client, name string, partitions int32) (*runEnv, func(), error) {
	stamp := strconv.FormatInt(time.Now().UnixNano(), 36)
	e := &runEnv{topic: "bench." + name + "." + stamp, db: "bench_" + name + "_" + stamp, group: "bench-" + stamp}
	if _, err := adm.CreateTopic(ctx, partitions, 1, nil, e.topic); err != nil {
		return nil, nil, fmt.Errorf("create topic: %w", err)
	}
	cleanup := func() {
		_, _ = adm.DeleteTopics(context.WithoutCancel(ctx), e.topic, e.topic+".dlq")
		_ = chExec(o, "DROP DATABASE IF EXISTS "+e.db)
	}
	port, err := freePort(ctx)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	e.port, e.metricsURL = port, fmt.Sprintf("http://127.0.0.1:%d", port)
	return e, cleanup, nil
}

// consumerArgs are the flags every scenario's consumer gets.
func (e *runEnv) consumerArgs(o options) []string {
	return []string{"run", "--kafka.brokers", o.brokers, "--kafka.topics", e.topic, "--kafka.group", e.group,
		"--kafka.dead_letter_topic", e.topic + ".dlq", "--kafka.lag_interval", "0",
		"--clickhouse.addr", o.chAddr, "--clickhouse.database", e.db,
		"--http.listen", fmt.Sprintf("127.0.0.1:%d", e.port), "--log.level", "warn", "--log.format", "text"}
}

// produceTexts produces n realistic events with gen's options and waits for
// them.
func produceTexts(ctx context.Context, cl *kgo.Client, topic string, n int, opts textgen.Options) error {
	g, err := textgen.New(opts)
	if err != nil {
		return err
	}
	for range n {
		ev, _ := g.Next(nil)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: ev}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	return nil
}

// waitWritten polls the consumer's counters until n records are written and
// returns when the first record was consumed and when the n-th was written.
func waitWritten(ctx context.Context, metricsURL string, n float64, timeout time.Duration) (first, done time.Time, err error) {
	deadline := time.Now().Add(timeout)
	for done.IsZero() {
		if time.Now().After(deadline) {
			return first, done, fmt.Errorf("consumer did not write %.0f records within %s", n, timeout)
		}
		if err := ctx.Err(); err != nil {
			return first, done, err
		}
		time.Sleep(50 * time.Millisecond)
		c, err := scrapeCounters(ctx, metricsURL, "textpulse_records_consumed_total", "textpulse_records_written_total")
		if err != nil {
			continue
		}
		now := time.Now()
		if first.IsZero() && c[0] > 0 {
			first = now
		}
		if c[1] >= n {
			done = now
		}
	}
	return first, done, nil
}

// scrapeHistogram reads an unlabelled histogram from a /metrics endpoint.
func scrapeHistogram(ctx context.Context, base, name string) (harness.Histogram, error) {
	m, err := harness.Scrape(ctx, base+"/metrics")
	if err != nil {
		return harness.Histogram{}, err
	}
	h, ok := m.Histogram(name, nil)
	if !ok {
		return harness.Histogram{}, fmt.Errorf("metric %s: no buckets", name)
	}
	return h, nil
}

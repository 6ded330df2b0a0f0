// Package itest holds helpers for tests that run against the real Kafka
// broker and ClickHouse server: topics, producing, reading back rows,
// committed offsets and dead letters, and a TCP proxy that can cut a
// service off.
package itest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Kafka is a test's handle on the real broker.
type Kafka struct {
	Brokers []string
	Client  *kgo.Client
	Admin   *kadm.Client
}

// NewKafka connects to brokers; the client is closed when t ends.
func NewKafka(t testing.TB, brokers []string) *Kafka {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(2*time.Millisecond),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MaxBufferedRecords(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &Kafka{Brokers: brokers, Client: cl, Admin: kadm.NewClient(cl)}
}

// CreateTopic creates a topic and deletes it when t ends.
func (k *Kafka) CreateTopic(t testing.TB, name string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := k.Admin.CreateTopic(ctx, partitions, 1, nil, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", name, err, resp.Err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = k.Admin.DeleteTopics(ctx, name)
	})
}

// Produce writes values to topic, value i to partition i % partitions, and
// waits for all acknowledgements.
func (k *Kafka) Produce(t testing.TB, topic string, partitions int32, values [][]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: topic, Partition: int32(i) % partitions, Value: v}
	}
	for start := 0; start < len(recs); start += 10000 {
		end := min(start+10000, len(recs))
		if err := k.Client.ProduceSync(ctx, recs[start:end]...).FirstErr(); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
}

// Committed returns the group's committed offsets for topic.
func (k *Kafka) Committed(ctx context.Context, group, topic string) (map[int32]int64, error) {
	resp, err := k.Admin.FetchOffsets(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of %s: %w", group, err)
	}
	out := make(map[int32]int64)
	for p, o := range resp[topic] {
		if o.Err == nil && o.At >= 0 {
			out[p] = o.At
		}
	}
	return out, nil
}

// ReadAll consumes every record currently in topic.
func (k *Kafka) ReadAll(t testing.TB, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := k.Admin.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	want := int64(0)
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	if want == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for int64(len(out)) < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s: got %d of %d records: %v", topic, len(out), want, err)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// ClickHouse is a test's handle on the real server.
type ClickHouse struct {
	Conn driver.Conn
}

// NewClickHouse connects to addr; the connection is closed when t ends.
func NewClickHouse(t testing.TB, addr string) *ClickHouse {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &ClickHouse{Conn: conn}
}

// DropDatabaseAtEnd drops db when t ends.
func (c *ClickHouse) DropDatabaseAtEnd(t testing.TB, db string) {
	t.Cleanup(func() {
		_ = c.Conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
	})
}

// Counts returns the rows of db.table, the distinct source coordinates, and
// the rows under FINAL. A missing table counts as empty.
func (c *ClickHouse) Counts(ctx context.Context, db, table string) (rows, distinct, final uint64, err error) {
	q := fmt.Sprintf("SELECT count(), uniqExact(kafka_topic, kafka_partition, kafka_offset) FROM %s.%s", db, table)
	if err := c.Conn.QueryRow(ctx, q).Scan(&rows, &distinct); err != nil {
		if IsMissingTable(err) {
			return 0, 0, 0, nil
		}
		return 0, 0, 0, err
	}
	q = fmt.Sprintf("SELECT count() FROM %s.%s FINAL", db, table)
	if err := c.Conn.QueryRow(ctx, q).Scan(&final); err != nil {
		return 0, 0, 0, err
	}
	return rows, distinct, final, nil
}

// OffsetsBelow returns, per partition, how many distinct offsets below
// limit[partition] are stored for topic.
func (c *ClickHouse) OffsetsBelow(ctx context.Context, db, table, topic string, limit map[int32]int64) (map[int32]uint64, error) {
	out := make(map[int32]uint64, len(limit))
	for p, l := range limit {
		var n uint64
		q := fmt.Sprintf("SELECT uniqExact(kafka_offset) FROM %s.%s WHERE kafka_topic = ? AND kafka_partition = ? AND kafka_offset < ?", db, table)
		if err := c.Conn.QueryRow(ctx, q, topic, uint32(p), uint64(l)).Scan(&n); err != nil { //nolint:gosec // Test values are small and non-negative.
			return nil, err
		}
		out[p] = n
	}
	return out, nil
}

// Server error codes for a table or database that does not exist, the same
// on every server version (the wording differs: 18.16 says "doesn't exist",
// 26.9 "Unknown table expression identifier" or "Database X does not exist").
const (
	codeUnknownTable    = 60
	codeUnknownDatabase = 81
)

// IsMissingTable reports a server error meaning the table or its database
// does not exist.
func IsMissingTable(err error) bool {
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) {
		return false
	}
	return ex.Code == codeUnknownTable || ex.Code == codeUnknownDatabase
}

// Eventually polls cond every 200 ms until it reports done or timeout
// passes, then fails t with the last status.
func Eventually(t testing.TB, timeout time.Duration, cond func() (done bool, status string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	status := ""
	for time.Now().Before(deadline) {
		var done bool
		if done, status = cond(); done {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("not done after %s: %s", timeout, status)
}

package deadletter

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/textpulse/textpulse/processor"
)

// newFakeKafka starts an in-memory cluster with the topics dlq (two
// partitions) and in, and returns the options that connect to it.
func newFakeKafka(t *testing.T) []kgo.Opt {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "dlq", "in"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
}

// produceDeadLetters produces n dead letters of records of topic in to
// partition i%2 of dlq; every fifth carries a bad attempts header.
func produceDeadLetters(t *testing.T, connOpts []kgo.Opt, first, n int) {
	t.Helper()
	cl, err := kgo.NewClient(append(slices.Clone(connOpts), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := first; i < first+n; i++ {
		src := &kgo.Record{Topic: "in", Offset: int64(i), Value: []byte(strconv.Itoa(i))}
		r := Record("dlq", &processor.DeadLetter{Record: src, Stage: "decode", Class: processor.ClassInvalidJSON,
			Reason: "bad", Attempts: 1, Time: time.Now()})
		if i%5 == 0 {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: HeaderAttempts, Value: []byte("x")})
		}
		r.Partition = int32(i % 2)
		recs = append(recs, r)
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func TestScan(t *testing.T) {
	connOpts := newFakeKafka(t)
	ctx := context.Background()
	produceDeadLetters(t, connOpts, 0, 20)
	t.Run("all", func(t *testing.T) {
		var total int64 = -1
		next := map[int32]int64{}
		var n, bad int
		err := Scan(ctx, connOpts, "dlq", func(v int64) { total = v }, func(l Letter) bool {
			if total != 20 {
				t.Fatalf("total %d before the first record", total)
			}
			if l.Record.Offset != next[l.Record.Partition] {
				t.Fatalf("partition %d: offset %d, want %d", l.Record.Partition, l.Record.Offset, next[l.Record.Partition])
			}
			next[l.Record.Partition]++
			if v, _ := strconv.Atoi(string(l.Record.Value)); l.Info.Offset != int64(v) || !l.Info.HasSource {
				t.Fatalf("letter %s: info %+v", l.Record.Value, l.Info)
			}
			if l.Err != nil {
				if !errors.Is(l.Err, ErrBadHeader) {
					t.Fatalf("letter %s: %v", l.Record.Value, l.Err)
				}
				bad++
			}
			n++
			return true
		})
		if err != nil || n != 20 || bad != 4 {
			t.Fatalf("%d letters, %d bad: %v", n, bad, err)
		}
	})
	t.Run("stop", func(t *testing.T) {
		n := 0
		err := Scan(ctx, connOpts, "dlq", func(int64) {}, func(Letter) bool { n++; return n < 3 })
		if err != nil || n != 3 {
			t.Fatalf("%d letters: %v", n, err)
		}
	})
	t.Run("ends at the scan start", func(t *testing.T) {
		n := 0
		err := Scan(ctx, connOpts, "dlq", func(int64) {}, func(Letter) bool {
			if n == 0 {
				produceDeadLetters(t, connOpts, 20, 4)
			}
			n++
			return true
		})
		if err != nil || n != 20 {
			t.Fatalf("%d letters: %v", n, err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		var total int64 = -1
		err := Scan(ctx, connOpts, "in", func(v int64) { total = v }, func(Letter) bool {
			t.Fatal("letter from an empty topic")
			return true
		})
		if err != nil || total != 0 {
			t.Fatalf("total %d: %v", total, err)
		}
	})
}

func TestReplayerRun(t *testing.T) {
	connOpts := newFakeKafka(t)
	ctx := context.Background()
	produceDeadLetters(t, connOpts, 0, 10)
	prod, err := kgo.NewClient(connOpts...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	rp := &Replayer{Topic: "dlq"}
	rep, err := rp.Run(ctx, connOpts, prod)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Scanned != 10 || rep.Sent != 8 || len(rep.Skipped) != 2 || rep.ByTarget["in"] != 8 {
		t.Fatalf("report %+v", rep)
	}
	n := 0
	err = Scan(ctx, connOpts, "in", func(int64) {}, func(l Letter) bool {
		if l.Err != nil || l.Info.Attempts != 1 || l.Info.HasSource {
			t.Fatalf("replayed record %s: info %+v, %v", l.Record.Value, l.Info, l.Err)
		}
		n++
		return true
	})
	if err != nil || n != 8 {
		t.Fatalf("%d records in the source topic: %v", n, err)
	}
}

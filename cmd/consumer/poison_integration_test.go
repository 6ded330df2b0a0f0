package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/textpulse/textpulse/internal/itest"
	"github.com/textpulse/textpulse/internal/openaisim"
	"github.com/textpulse/textpulse/internal/testenv"
	"github.com/textpulse/textpulse/processor/deadletter"
)

// poisonStall bounds how long the valid events produced after a poison
// event may take to land: a stall detector, not a speed target.
const poisonStall = 60 * time.Second

// TestPoisonCorpusThroughPipeline pushes every poison corpus input through
// the real broker, the embedding and sentiment stages (simulator) and the
// real server, each followed by valid events. Each input must land as a row
// or as a dead letter with its specific class and message, and the valid
// events after it must land: no poison input stalls its partition.
func TestPoisonCorpusThroughPipeline(t *testing.T) {
	testenv.EachClickHouse(t, testPoisonCorpusThroughPipeline)
}

// testPoisonCorpusThroughPipeline is TestPoisonCorpusThroughPipeline on one server.
func testPoisonCorpusThroughPipeline(t *testing.T, srv testenv.ClickHouseServer) {
	s := newScenario(t, srv, 1)
	// A source topic that accepts the 10 MB values.
	s.topic = testenv.Name("poison")
	ctx := context.Background()
	resp, err := s.kafka.Admin.CreateTopic(ctx, 1, 1, map[string]*string{"max.message.bytes": new("16777216")}, s.topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v %v", err, resp.Err)
	}
	t.Cleanup(func() { _, _ = s.kafka.Admin.DeleteTopics(context.Background(), s.topic) })
	prod, err := kgo.NewClient(kgo.SeedBrokers(s.kafka.Brokers...), kgo.ProducerBatchMaxBytes(16<<20),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)

	sim, err := openaisim.New(openaisim.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	apiSrv := httptest.NewServer(sim.Handler())
	t.Cleanup(apiSrv.Close)
	var args []string
	for _, stage := range []string{"embedding", "sentiment"} {
		p := "--stages." + stage + "."
		args = append(args, p+"enabled", p+"base_url", apiSrv.URL+"/v1", p+"api_key", "k", p+"on_failure", "dead_letter",
			p+"timeout", "10s", p+"retry_initial_interval", "20ms", p+"max_attempts", "3")
	}
	args = append(args, "--stages.embedding.dimensions", "8", "--kafka.fetch_max_partition_bytes", strconv.Itoa(16<<20))
	c := startInProcess(t, s.args(args...))

	cases := loadPoisonCorpus(t)
	offsets := make([]int64, len(cases))
	valid := 0
	countIDs := func(prefix string) uint64 {
		var n uint64
		q := fmt.Sprintf("SELECT uniqExact(event_id) FROM %s.events WHERE startsWith(event_id, ?)", s.db)
		if err := s.ch.Conn.QueryRow(ctx, q, prefix).Scan(&n); err != nil && !itest.IsMissingTable(err) {
			t.Fatal(err)
		}
		return n
	}
	for i, pc := range cases {
		recs := []*kgo.Record{{Topic: s.topic, Value: pc.Value}}
		for k := range 3 {
			recs = append(recs, &kgo.Record{Topic: s.topic, Value: fmt.Appendf(nil,
				`{"id":"valid-%d-%d","text":"a valid event after the poison input %s"}`, i, k, pc.Name)})
		}
		res := prod.ProduceSync(ctx, recs...)
		if err := res.FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", pc.Name, err)
		}
		offsets[i] = res[0].Record.Offset
		valid += 3
		// Stall detector: the valid events after this input land.
		itest.Eventually(t, poisonStall, func() (bool, string) {
			n := countIDs("valid-")
			return n >= uint64(valid), fmt.Sprintf("after poison input %s: %d of %d valid events landed", pc.Name, n, valid) //nolint:gosec // Small counts.
		})
	}

	wantDLQ := 0
	for _, pc := range cases {
		if pc.Outcome == "dead_letter" {
			wantDLQ++
		}
	}
	var dlqs []*kgo.Record
	itest.Eventually(t, 30*time.Second, func() (bool, string) {
		dlqs = s.kafka.ReadAll(t, s.dlq)
		return len(dlqs) >= wantDLQ, fmt.Sprintf("%d of %d dead letters", len(dlqs), wantDLQ)
	})
	if err := c.stop(t); err != nil {
		t.Fatalf("consumer: %v\n%s", err, c.log.String())
	}
	if len(dlqs) != wantDLQ {
		t.Fatalf("%d dead letters, want %d", len(dlqs), wantDLQ)
	}
	byOffset := map[int64]*kgo.Record{}
	for _, r := range dlqs {
		info, err := deadletter.ParseDeadLetterHeaders(r.Headers)
		if err != nil || info.Topic != s.topic {
			t.Fatalf("dead letter headers %+v: %v", info, err)
		}
		byOffset[info.Offset] = r
	}
	for i, pc := range cases {
		t.Run(pc.Name, func(t *testing.T) {
			r, isDL := byOffset[offsets[i]]
			if pc.Outcome == "row" {
				if isDL {
					t.Fatalf("dead-lettered, want a row")
				}
				var n uint64
				var status string
				var emb []float32
				q := fmt.Sprintf("SELECT count(), any(status), any(embedding) FROM %s.events FINAL WHERE event_id = ? AND kafka_offset = ?", s.db)
				if err := s.ch.Conn.QueryRow(ctx, q, pc.ID, uint64(offsets[i])).Scan(&n, &status, &emb); err != nil { //nolint:gosec // Offsets are non-negative.
					t.Fatal(err)
				}
				if n != 1 || status != "ok" || len(emb) != 8 {
					t.Fatalf("%d rows with id %s, status %q, embedding of %d", n, pc.ID, status, len(emb))
				}
				return
			}
			if !isDL {
				t.Fatalf("no dead letter at offset %d", offsets[i])
			}
			info, _ := deadletter.ParseDeadLetterHeaders(r.Headers)
			if info.Stage != pc.Stage || info.Class != pc.Class || !strings.Contains(info.Error, pc.Error) || info.Attempts != 1 {
				t.Fatalf("dead letter %+v, want stage %s class %s error containing %q", info, pc.Stage, pc.Class, pc.Error)
			}
			switch {
			case pc.Cut && info.ValueBytes != len(pc.Value):
				t.Fatalf("value_bytes %d, want %d", info.ValueBytes, len(pc.Value))
			case !pc.Cut && string(r.Value) != string(pc.Value):
				t.Fatalf("dead letter value differs from the input")
			}
		})
	}
	if n := countIDs("valid-"); n != uint64(valid) { //nolint:gosec // Small counts.
		t.Fatalf("%d of %d valid events landed", n, valid)
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/textpulse/textpulse/internal/harness"
	"github.com/textpulse/textpulse/internal/itest"
	"github.com/textpulse/textpulse/internal/openaisim"
	"github.com/textpulse/textpulse/internal/testenv"
	"github.com/textpulse/textpulse/processor"
	"github.com/textpulse/textpulse/processor/deadletter"
)

// switchHandler serves whichever handler was stored last.
type switchHandler struct{ h atomic.Pointer[http.Handler] }

func (s *switchHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *switchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

func newSim(t *testing.T, faults openaisim.Faults) http.Handler {
	t.Helper()
	cfg := openaisim.DefaultConfig()
	cfg.Embeddings.Faults = faults
	sim, err := openaisim.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return sim.Handler()
}

// dlqRun runs a dlq subcommand in process and returns its output.
func dlqRun(t *testing.T, s *scenario, args ...string) (string, error) {
	t.Helper()
	var out harness.Buffer
	base := []string{"--kafka.brokers", strings.Join(s.kafka.Brokers, ","), "--kafka.dead_letter_topic", s.dlq, "--progress", "0"}
	// The subcommand first, then the defaults, then args, which win.
	err := run(context.Background(), append(append(append([]string{"dlq"}, args[0]), base...), args[1:]...), func(string) string { return "" }, &out, &out)
	return out.String(), err
}

func readDLQ(t *testing.T, s *scenario) []deadletter.Info {
	t.Helper()
	var out []deadletter.Info
	for _, r := range s.kafka.ReadAll(t, s.dlq) {
		info, err := deadletter.ParseDeadLetterHeaders(r.Headers)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, info)
	}
	return out
}

// TestDeadLetterReplay dead-letters events for two reasons (malformed JSON
// and more, and an embedding API that answers only errors under
// on_failure=dead_letter), fixes the API, replays the dead letters with the
// dlq command while the consumer runs, and checks that every event is
// accounted for exactly: the valid ones in ClickHouse, the malformed ones in
// the dead-letter topic again with two attempts.
func TestDeadLetterReplay(t *testing.T) {
	testenv.EachClickHouse(t, testDeadLetterReplay)
}

// testDeadLetterReplay is TestDeadLetterReplay on one server.
func testDeadLetterReplay(t *testing.T, srv testenv.ClickHouseServer) {
	s := newScenario(t, srv, 2)
	api := &switchHandler{}
	api.set(newSim(t, openaisim.Faults{ServerError: 1}))
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)

	const n = 300
	values, valid := makeEvents(n, 10)
	s.kafka.Produce(t, s.topic, s.partitions, values)
	malformed := n - countValid(valid)

	p := "--stages.embedding."
	c := startInProcess(t, s.args(p+"enabled", p+"base_url", apiSrv.URL+"/v1", p+"api_key", "k", p+"on_failure", "dead_letter",
		p+"max_attempts", "2", p+"retry_initial_interval", "10ms", p+"retry_max_interval", "50ms", p+"timeout", "2s",
		p+"dimensions", "8", "--batch.max_records", "100"))
	itest.Eventually(t, 60*time.Second, func() (bool, string) {
		got := len(readDLQ(t, s))
		return got >= n, fmt.Sprintf("%d of %d dead letters", got, n)
	})
	if _, distinct, _, err := s.ch.Counts(context.Background(), s.db, "events"); err != nil || distinct != 0 {
		t.Fatalf("%d rows written while the API failed (%v)", distinct, err)
	}

	// inspect summarises by stage and class.
	out, err := dlqRun(t, s, "inspect", "--json")
	if err != nil {
		t.Fatalf("inspect: %v\n%s", err, out)
	}
	var sum dlqSummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("inspect output: %v\n%s", err, out)
	}
	if sum.Matched != n || sum.ByStage["embedding"] != n-malformed || sum.ByStage["decode"] != malformed ||
		sum.ByClass["stage_failed"] != n-malformed || sum.BySource[s.topic+"/0"]+sum.BySource[s.topic+"/1"] != n ||
		sum.ByAttempts["2"] != n-malformed || len(sum.TopErrors) == 0 {
		t.Fatalf("inspect summary %+v", sum)
	}
	out, err = dlqRun(t, s, "inspect", "--class", "invalid_json")
	if err != nil || !strings.Contains(out, "matched") || !strings.Contains(out, "invalid_json") {
		t.Fatalf("inspect text: %v\n%s", err, out)
	}

	// A dry run sends nothing.
	endOf := func() int64 {
		ends, err := s.kafka.Admin.ListEndOffsets(context.Background(), s.topic)
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
		return sum
	}
	out, err = dlqRun(t, s, "replay", "--dry-run", "--stage", "embedding")
	if err != nil || !strings.Contains(out, fmt.Sprintf("would send %d", n-malformed)) || endOf() != n {
		t.Fatalf("dry run: %v, source topic end %d\n%s", err, endOf(), out)
	}

	// Fix the cause, then replay: the stage failures land, the malformed
	// events are dead-lettered again.
	api.set(newSim(t, openaisim.Faults{}))
	out, err = dlqRun(t, s, "replay", "--stage", "embedding", "--json")
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	var rep deadletter.ReplayReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Sent != n-malformed || rep.ByTarget[s.topic] != n-malformed {
		t.Fatalf("replay report %+v (%v)\n%s", rep, err, out)
	}
	out, err = dlqRun(t, s, "replay", "--stage", "decode", "--progress", "1ns")
	if err != nil || !strings.Contains(out, fmt.Sprintf("sent %d", malformed)) ||
		!strings.Contains(out, fmt.Sprintf("replay %s: scanned %d of %d, matched %d, sent %d", s.dlq, n, n, malformed, malformed)) {
		t.Fatalf("replay of malformed events: %v\n%s", err, out)
	}
	s.waitRows(n-malformed, 60*time.Second)
	itest.Eventually(t, 60*time.Second, func() (bool, string) {
		got := len(readDLQ(t, s))
		return got >= n+malformed, fmt.Sprintf("%d of %d dead letters", got, n+malformed)
	})
	if err := c.stop(t); err != nil {
		t.Fatalf("consumer: %v\n%s", err, c.log.String())
	}

	// Every valid event is in ClickHouse exactly once, with its embedding.
	var ids, rows, missing uint64
	q := fmt.Sprintf("SELECT uniqExact(event_id), count(), countIf(length(embedding) != 8) FROM %s.events FINAL", s.db)
	if err := s.ch.Conn.QueryRow(context.Background(), q).Scan(&ids, &rows, &missing); err != nil {
		t.Fatal(err)
	}
	if ids != uint64(n-malformed) || rows != ids || missing != 0 {
		t.Fatalf("%d distinct ids in %d rows (%d without embedding), want %d", ids, rows, missing, n-malformed)
	}
	// Every malformed event is in the dead-letter topic twice: first with
	// one attempt, then with two.
	recs := s.kafka.ReadAll(t, s.dlq)
	attempts := map[string][]int{}
	for _, r := range recs {
		info, err := deadletter.ParseDeadLetterHeaders(r.Headers)
		if err != nil {
			t.Fatal(err)
		}
		if info.Stage == "decode" {
			attempts[string(r.Value)] = append(attempts[string(r.Value)], info.Attempts)
		}
	}
	kinds := 0
	for i, v := range values {
		if valid[i] {
			continue
		}
		a := attempts[string(v)]
		if len(a) < 2 || len(a)%2 != 0 {
			t.Fatalf("malformed value %q dead-lettered with attempts %v", v, a)
		}
		ones, twos := 0, 0
		for _, x := range a {
			switch x {
			case 1:
				ones++
			case 2:
				twos++
			}
		}
		if ones != twos || ones+twos != len(a) {
			t.Fatalf("malformed value %q dead-lettered with attempts %v, want as many 1s as 2s", v, a)
		}
		kinds++
	}
	if total := len(recs); total != n+malformed || kinds != malformed {
		t.Fatalf("%d dead letters for %d malformed events, want %d", total, kinds, n+malformed)
	}
	t.Logf("%d events: %d dead-lettered by the failing API and replayed into %d rows; %d malformed dead-lettered twice (attempts 1 and 2)",
		n, n-malformed, ids, malformed)
}

// TestDeadLetterReplayReportsFailures replays to a topic that refuses the
// larger records: the command must fail, and its report must account for
// every dead letter exactly: what it lists as sent is in the target topic
// once, what it lists as failed is not there.
func TestDeadLetterReplayReportsFailures(t *testing.T) {
	testenv.EachClickHouse(t, testDeadLetterReplayReportsFailures)
}

// testDeadLetterReplayReportsFailures is TestDeadLetterReplayReportsFailures on one server.
func testDeadLetterReplayReportsFailures(t *testing.T, srv testenv.ClickHouseServer) {
	s := newScenario(t, srv, 1)
	ctx := context.Background()
	target := testenv.Name("replay_target")
	// Eight partitions: the records of a partition go in one batch, and
	// the partitions without a large record must succeed.
	resp, err := s.kafka.Admin.CreateTopic(ctx, 8, 1, map[string]*string{"max.message.bytes": new("1200")}, target)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v %v", err, resp.Err)
	}
	t.Cleanup(func() { _, _ = s.kafka.Admin.DeleteTopics(context.Background(), target) })
	const n = 40
	rng := rand.NewChaCha8([32]byte{7})
	recs := make([]*kgo.Record, n)
	for i := range recs {
		size := 50
		if i == 5 || i == 23 {
			size = 4000
		}
		// Random bytes: the producer compresses, and the limit must bite.
		noise := make([]byte, size)
		_, _ = rng.Read(noise)
		src := &kgo.Record{Topic: s.topic, Partition: 0, Offset: int64(i), Key: fmt.Appendf(nil, "key-%d", i),
			Value: append(fmt.Appendf(nil, "%04d", i), noise...)}
		recs[i] = deadletter.Record(s.dlq, &processor.DeadLetter{Record: src, Stage: "decode",
			Class: processor.ClassInvalidJSON, Reason: "bad", Attempts: 1, Time: time.Now()})
		recs[i].Partition = 0
	}
	if err := s.kafka.Client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	out, err := dlqRun(t, s, "replay", "--to-topic", target, "--json")
	if err == nil {
		t.Fatalf("replay to a topic refusing large records succeeded:\n%s", out)
	}
	var rep deadletter.ReplayReport
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
		t.Fatalf("report: %v\n%s", jerr, out)
	}
	if len(rep.Failed) == 0 || rep.Sent == 0 || rep.Sent+len(rep.Failed) != n || rep.Matched != n {
		t.Fatalf("report %+v: want every one of %d dead letters sent or failed", rep, n)
	}
	failed := map[int64]bool{}
	for _, f := range rep.Failed {
		failed[f.Offset] = true
	}
	got := map[string]int{}
	for _, r := range s.kafka.ReadAll(t, target) {
		got[string(r.Value[:4])]++
	}
	if len(got) != rep.Sent {
		t.Fatalf("target topic holds %d distinct records, the report says %d were sent", len(got), rep.Sent)
	}
	for i := range n {
		k := fmt.Sprintf("%04d", i)
		switch {
		case failed[int64(i)] && got[k] != 0:
			t.Fatalf("dead letter %d reported failed but is in the target topic", i)
		case !failed[int64(i)] && got[k] != 1:
			t.Fatalf("dead letter %d reported sent but is in the target topic %d times", i, got[k])
		}
	}
	t.Logf("%d sent, %d failed, as reported", rep.Sent, len(rep.Failed))
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/textpulse/textpulse/internal/harness"
	"github.com/textpulse/textpulse/internal/itest"
	"github.com/textpulse/textpulse/internal/testenv"
	"github.com/textpulse/textpulse/processor"
	"github.com/textpulse/textpulse/processor/deadletter"
)

// binPath is the consumer binary built once for tests that run it as a
// separate process.
var binPath string //nolint:gochecknoglobals // Set once in TestMain.

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "textpulse-consumer-test")
	if err != nil {
		panic(err)
	}
	binPath = filepath.Join(dir, "consumer")
	out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build consumer: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// malformedKinds are values the decoder must reject, with the class it must
// give them.
var malformedKinds = []struct { //nolint:gochecknoglobals // Test table.
	value string
	class processor.ErrorClass
}{
	{`not json at all`, processor.ClassInvalidJSON},
	{`{"id":"x","text":5}`, processor.ClassWrongType},
	{`{"id":"x"}`, processor.ClassMissingText},
	{"{\"text\":\"bad \xff\xfe bytes\"}", processor.ClassInvalidUTF8},
	{`{"text":"fine","created_at":"yesterday"}`, processor.ClassInvalidTimestamp},
	{`{"text":"fine","metadata":[1,2]}`, processor.ClassWrongType},
}

// makeEvents returns n values; every malformedEvery-th one (if > 0) is
// malformed. valid[i] says whether value i is valid.
func makeEvents(n, malformedEvery int) (values [][]byte, valid []bool) {
	values = make([][]byte, n)
	valid = make([]bool, n)
	for i := range n {
		if malformedEvery > 0 && i%malformedEvery == malformedEvery-1 {
			values[i] = []byte(malformedKinds[(i/malformedEvery)%len(malformedKinds)].value)
			continue
		}
		valid[i] = true
		values[i] = fmt.Appendf(nil,
			`{"id":"ev-%d","text":"event %d says hello to textpulse, padding the text to a realistic length of a short social post","source":"itest","author":"user%d","lang":"en","created_at":"2026-11-25T10:00:%02d.123Z","metadata":{"n":%d,"tags":["a","b"]}}`,
			i, i, i%97, i%60, i)
	}
	return values, valid
}

func countValid(valid []bool) int {
	n := 0
	for _, v := range valid {
		if v {
			n++
		}
	}
	return n
}

// scenario is one integration test's topic, group, tables and services.
type scenario struct {
	t     *testing.T
	kafka *itest.Kafka
	ch    *itest.ClickHouse
	// srv is the shared ClickHouse server the scenario writes to, chAddr
	// its native address.
	srv    testenv.ClickHouseServer
	chAddr string
	// sinkAddr is where the consumer connects to ClickHouse; chAddr unless
	// a proxy sits in between.
	sinkAddr   string
	topic      string
	dlq        string
	group      string
	db         string
	partitions int32
}

// newScenario creates the topics of a test that writes to srv, and drops
// its database when t ends.
func newScenario(t *testing.T, srv testenv.ClickHouseServer, partitions int32) *scenario {
	t.Helper()
	brokers := testenv.KafkaBrokers(t)
	chAddr := srv.Addr
	s := &scenario{
		t: t, kafka: itest.NewKafka(t, brokers), ch: itest.NewClickHouse(t, chAddr), srv: srv, chAddr: chAddr,
		topic: testenv.Name("events"), group: testenv.Name("group"), db: testenv.Name("itest"),
		partitions: partitions, sinkAddr: chAddr,
	}
	s.dlq = s.topic + ".dlq"
	s.kafka.CreateTopic(t, s.topic, partitions)
	s.kafka.CreateTopic(t, s.dlq, 1)
	s.ch.DropDatabaseAtEnd(t, s.db)
	return s
}

// args returns the consumer's command line for the scenario.
func (s *scenario) args(extra ...string) []string {
	return append([]string{
		"run",
		"--kafka.brokers", strings.Join(s.kafka.Brokers, ","),
		"--kafka.topics", s.topic,
		"--kafka.group", s.group,
		"--kafka.dead_letter_topic", s.dlq,
		"--kafka.session_timeout", "10s",
		"--kafka.lag_interval", "1s",
		"--clickhouse.addr", s.sinkAddr,
		"--clickhouse.database", s.db,
		"--clickhouse.retry_max", "1s",
		"--batch.max_records", "2000",
		"--batch.max_wait", "100ms",
		"--http.listen", "127.0.0.1:0",
		"--log.format", "text",
		"--log.level", "info",
	}, extra...)
}

// waitRows waits until the table holds want distinct source coordinates.
func (s *scenario) waitRows(want int, timeout time.Duration) {
	s.t.Helper()
	itest.Eventually(s.t, timeout, func() (bool, string) {
		_, distinct, _, err := s.ch.Counts(context.Background(), s.db, "events")
		if err != nil {
			return false, err.Error()
		}
		return distinct >= uint64(want), fmt.Sprintf("%d of %d rows", distinct, want) //nolint:gosec // Small test counts.
	})
}

// checkExact asserts that the table holds exactly the valid events, by
// source coordinates, and that duplicates collapse under FINAL.
func (s *scenario) checkExact(valid []bool) {
	s.t.Helper()
	ctx := context.Background()
	want := countValid(valid)
	stored, distinct, final, err := s.ch.Counts(ctx, s.db, "events")
	if err != nil {
		s.t.Fatal(err)
	}
	if distinct != uint64(want) || final != uint64(want) { //nolint:gosec // Small test counts.
		s.t.Fatalf("distinct coordinates %d, rows under FINAL %d, want %d", distinct, final, want)
	}
	if s.srv.Modern {
		// Rows exactly once: no copy before FINAL, and an exact rollup.
		var rollup uint64
		if err := s.ch.Conn.QueryRow(ctx, fmt.Sprintf("SELECT toUInt64(sum(events)) FROM %s.events_per_minute", s.db)).Scan(&rollup); err != nil {
			s.t.Fatal(err)
		}
		if stored != uint64(want) || rollup != uint64(want) { //nolint:gosec // Small test counts.
			s.t.Fatalf("on %s: %d rows before FINAL and %d in the per-minute rollup, want %d each", s.srv.Name, stored, rollup, want)
		}
	}
	// Value i went to partition i % partitions at offset i / partitions.
	rows, err := s.ch.Conn.Query(ctx, fmt.Sprintf("SELECT DISTINCT kafka_partition, kafka_offset, event_id FROM %s.events", s.db))
	if err != nil {
		s.t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	seen := 0
	for rows.Next() {
		var p uint32
		var o uint64
		var id string
		if err := rows.Scan(&p, &o, &id); err != nil {
			s.t.Fatal(err)
		}
		i := int(o)*int(s.partitions) + int(p)
		if i >= len(valid) || !valid[i] {
			s.t.Fatalf("row at partition %d offset %d is not a valid event", p, o)
		}
		if id != fmt.Sprintf("ev-%d", i) {
			s.t.Fatalf("row at partition %d offset %d has id %q, want ev-%d", p, o, id, i)
		}
		seen++
	}
	if seen != want {
		s.t.Fatalf("saw %d rows, want %d", seen, want)
	}
}

// checkCommittedNotAhead asserts that, for every partition, every valid
// offset below the committed offset is stored.
func (s *scenario) checkCommittedNotAhead(valid []bool) map[int32]int64 {
	s.t.Helper()
	committed, err := s.committedNotAhead(valid)
	if err != nil {
		s.t.Fatal(err)
	}
	return committed
}

// committedNotAhead reads the committed offsets, then the stored rows, and
// reports a partition whose commit is ahead of its stored rows. Rows only
// grow, so reading the commits first makes the check sound while the
// consumer runs.
func (s *scenario) committedNotAhead(valid []bool) (map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	committed, err := s.kafka.Committed(ctx, s.group, s.topic)
	if err != nil {
		return nil, err
	}
	stored, err := s.ch.OffsetsBelow(ctx, s.db, "events", s.topic, committed)
	if err != nil {
		if itest.IsMissingTable(err) {
			stored = map[int32]uint64{}
		} else {
			return nil, err
		}
	}
	for p, c := range committed {
		want := uint64(0)
		for o := int64(0); o < c; o++ {
			if i := int(o)*int(s.partitions) + int(p); i < len(valid) && valid[i] {
				want++
			}
		}
		if stored[p] != want {
			return nil, &aheadError{fmt.Sprintf("partition %d committed at %d but only %d of %d valid rows below it are stored", p, c, stored[p], want)}
		}
	}
	return committed, nil
}

// aheadError reports a commit ahead of the stored rows.
type aheadError struct{ msg string }

func (e *aheadError) Error() string { return e.msg }

// watchCommits checks committedNotAhead every 250 ms until the returned
// function is called, which reports how many checks ran and fails t on the
// first violation.
func (s *scenario) watchCommits(valid []bool) (stop func() int) {
	done := make(chan struct{})
	result := make(chan error, 1)
	checks := 0
	go func() {
		for {
			select {
			case <-done:
				result <- nil
				return
			case <-time.After(250 * time.Millisecond):
			}
			_, err := s.committedNotAhead(valid)
			var ahead *aheadError
			if errors.As(err, &ahead) {
				result <- err
				return
			}
			if err == nil {
				// Samples taken while ClickHouse is away cannot be checked.
				checks++
			}
		}
	}()
	return func() int {
		s.t.Helper()
		close(done)
		if err := <-result; err != nil {
			s.t.Fatal(err)
		}
		return checks
	}
}

// produceSlowly produces values in chunks of chunk every interval, in the
// background; the returned channel is closed when all are produced.
func (s *scenario) produceSlowly(values [][]byte, chunk int, interval time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for start := 0; start < len(values); start += chunk {
			end := min(start+chunk, len(values))
			batch := make([][]byte, 0, end-start)
			batch = append(batch, values[start:end]...)
			s.produceAt(start, batch)
			time.Sleep(interval)
		}
	}()
	return done
}

// produceAt produces values[k] as value first+k, to partition
// (first+k) % partitions, keeping the offset mapping of makeEvents.
func (s *scenario) produceAt(first int, values [][]byte) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	recs := make([]*kgo.Record, len(values))
	for k, v := range values {
		recs[k] = &kgo.Record{Topic: s.topic, Partition: int32(first+k) % s.partitions, Value: v} //nolint:gosec // Small test counts.
	}
	if err := s.kafka.Client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		s.t.Errorf("produce: %v", err)
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// inProcess is a consumer running in this test process.
type inProcess struct {
	cancel context.CancelFunc
	done   chan error
	log    *harness.Buffer
}

func startInProcess(t *testing.T, args []string) *inProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &inProcess{cancel: cancel, done: make(chan error, 1), log: &harness.Buffer{}}
	go func() {
		c.done <- run(ctx, args, func(string) string { return "" }, c.log, c.log)
	}()
	t.Cleanup(func() {
		if c.cancel != nil {
			_ = c.stop(t)
		}
	})
	return c
}

// stop cancels the consumer and waits for it to drain and leave.
func (c *inProcess) stop(t *testing.T) error {
	t.Helper()
	c.cancel()
	c.cancel = nil
	select {
	case err := <-c.done:
		return err
	case <-time.After(60 * time.Second):
		t.Fatalf("consumer did not stop; log:\n%s", c.log.String())
		return nil
	}
}

// subprocess is a consumer running as a separate process.
type subprocess struct {
	proc *harness.Process
	log  *harness.Buffer
}

func startProcess(t *testing.T, args []string) *subprocess {
	t.Helper()
	p := &subprocess{log: &harness.Buffer{}}
	proc, err := harness.Start(context.Background(), harness.Config{Path: binPath, Args: args, Log: p.log})
	if err != nil {
		t.Fatal(err)
	}
	p.proc = proc
	t.Cleanup(func() { _ = p.proc.Kill() })
	return p
}

func (p *subprocess) kill(t *testing.T) {
	t.Helper()
	if err := p.proc.Kill(); err != nil {
		t.Fatal(err)
	}
}

func TestIngestValidAndMalformed(t *testing.T) {
	testenv.EachClickHouse(t, testIngestValidAndMalformed)
}

// testIngestValidAndMalformed is TestIngestValidAndMalformed on one server.
func testIngestValidAndMalformed(t *testing.T, srv testenv.ClickHouseServer) {
	s := newScenario(t, srv, 4)
	values, valid := makeEvents(6000, 10)
	s.kafka.Produce(t, s.topic, s.partitions, values)

	c := startInProcess(t, s.args())
	s.waitRows(countValid(valid), 90*time.Second)
	malformed := len(values) - countValid(valid)
	var dls []string
	itest.Eventually(t, 30*time.Second, func() (bool, string) {
		recs := s.kafka.ReadAll(t, s.dlq)
		dls = dls[:0]
		for _, r := range recs {
			hdr := map[string]string{}
			for _, h := range r.Headers {
				hdr[h.Key] = string(h.Value)
			}
			dls = append(dls, fmt.Sprintf("%s/%s/%s/%s", hdr[deadletter.HeaderPartition], hdr[deadletter.HeaderOffset], hdr[deadletter.HeaderErrorClass], r.Value))
		}
		return len(recs) >= malformed, fmt.Sprintf("%d of %d dead letters", len(recs), malformed)
	})
	// The endpoints report what happened.
	addr := regexp.MustCompile(`msg="http listening" addr=(\S+)`).FindStringSubmatch(c.log.String())
	if addr == nil {
		t.Fatalf("no http address in the log:\n%s", c.log.String())
	}
	if code, _ := httpGet(t, "http://"+addr[1]+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz answered %d", code)
	}
	if code, _ := httpGet(t, "http://"+addr[1]+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz answered %d", code)
	}
	_, metrics := httpGet(t, "http://"+addr[1]+"/metrics")
	invalidJSON := 0
	for i := range values {
		if !valid[i] && malformedKinds[(i/10)%len(malformedKinds)].class == processor.ClassInvalidJSON {
			invalidJSON++
		}
	}
	wants := []string{
		fmt.Sprintf("textpulse_records_consumed_total %d", len(values)),
		fmt.Sprintf("textpulse_records_written_total %d", countValid(valid)),
		fmt.Sprintf(`textpulse_dead_letters_total{class="invalid_json",outcome="produced",stage="decode"} %d`, invalidJSON),
		"textpulse_sink_up 1",
	}
	for p := range s.partitions {
		wants = append(wants, fmt.Sprintf(`textpulse_consumer_lag_records{partition="%d",topic="%s"} 0`, p, s.topic))
	}
	itest.Eventually(t, 15*time.Second, func() (bool, string) {
		_, metrics = httpGet(t, "http://"+addr[1]+"/metrics")
		for _, want := range wants {
			if !strings.Contains(metrics, want) {
				return false, "/metrics lacks " + want
			}
		}
		return true, ""
	})
	if err := c.stop(t); err != nil {
		t.Fatalf("consumer: %v\n%s", err, c.log.String())
	}

	s.checkExact(valid)
	if len(dls) != malformed {
		t.Fatalf("%d dead letters, want %d", len(dls), malformed)
	}
	// Each dead letter carries its coordinates, the specific class and the
	// original value.
	for _, dl := range dls {
		parts := strings.SplitN(dl, "/", 4)
		var p, o int
		if _, err := fmt.Sscan(parts[0], &p); err != nil {
			t.Fatalf("dead letter %q: partition header: %v", dl, err)
		}
		if _, err := fmt.Sscan(parts[1], &o); err != nil {
			t.Fatalf("dead letter %q: offset header: %v", dl, err)
		}
		i := o*int(s.partitions) + p
		if valid[i] {
			t.Fatalf("dead letter %q is a valid event", dl)
		}
		kind := malformedKinds[(i/10)%len(malformedKinds)]
		if parts[2] != string(kind.class) || parts[3] != kind.value {
			t.Fatalf("dead letter %q: want class %s and the original value %q", dl, kind.class, kind.value)
		}
	}
	// Everything consumed was committed on the way out.
	committed := s.checkCommittedNotAhead(valid)
	for p := range s.partitions {
		if want := int64(len(values)) / int64(s.partitions); committed[p] != want {
			t.Fatalf("partition %d committed at %d, want %d", p, committed[p], want)
		}
	}
}

func TestCrashRestartLosesNothing(t *testing.T) {
	testenv.EachClickHouse(t, testCrashRestartLosesNothing)
}

// testCrashRestartLosesNothing is TestCrashRestartLosesNothing on one server.
func testCrashRestartLosesNothing(t *testing.T, srv testenv.ClickHouseServer) {
	s := newScenario(t, srv, 4)
	values, valid := makeEvents(24000, 0)
	produced := s.produceSlowly(values, 300, 40*time.Millisecond)
	stop := s.watchCommits(valid)
	args := s.args("--batch.max_records", "500")

	// Kill two consumers with SIGKILL mid-stream; a third finishes.
	for i, atRows := range []int{4000, 12000} {
		p := startProcess(t, args)
		s.waitRows(atRows, 90*time.Second)
		p.kill(t)
		if _, err := s.committedNotAhead(valid); err != nil {
			t.Fatalf("after kill %d: %v\nlog:\n%s", i+1, err, p.log.String())
		}
	}
	last := startProcess(t, args)
	<-produced
	s.waitRows(len(values), 120*time.Second)
	// The killed consumers may have stored everything already: signal the
	// last one only once it consumes, not while it is still starting.
	itest.Eventually(t, 60*time.Second, func() (bool, string) {
		return strings.Contains(last.log.String(), "partitions assigned"), "waiting for the last consumer's assignment"
	})
	if err := last.proc.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := last.proc.Wait(); err != nil {
		t.Fatalf("consumer exit: %v\nlog:\n%s", err, last.log.String())
	}
	checks := stop()
	s.checkExact(valid)
	s.checkCommittedNotAhead(valid)
	rows, _, _, err := s.ch.Counts(context.Background(), s.db, "events")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d events, %d rows before FINAL (duplicates from the kills), %d commit checks", len(values), rows, checks)
}

func TestMemberLeavesMidStream(t *testing.T) {
	testenv.EachClickHouse(t, testMemberLeavesMidStream)
}

// testMemberLeavesMidStream is TestMemberLeavesMidStream on one server.
func testMemberLeavesMidStream(t *testing.T, srv testenv.ClickHouseServer) {
	s := newScenario(t, srv, 6)
	values, valid := makeEvents(24000, 0)
	produced := s.produceSlowly(values, 300, 40*time.Millisecond)
	stop := s.watchCommits(valid)
	args := s.args("--batch.max_records", "500")

	a := startInProcess(t, args)
	b := startInProcess(t, args)
	s.waitRows(8000, 90*time.Second)
	// Member a leaves the group while events keep arriving; b takes over
	// its partitions.
	if err := a.stop(t); err != nil {
		t.Fatalf("member a: %v\n%s", err, a.log.String())
	}
	<-produced
	s.waitRows(len(values), 120*time.Second)
	if err := b.stop(t); err != nil {
		t.Fatalf("member b: %v\n%s", err, b.log.String())
	}
	stop()
	s.checkExact(valid)
	s.checkCommittedNotAhead(valid)
	if !strings.Contains(b.log.String(), "partitions assigned") {
		t.Fatalf("member b never logged an assignment:\n%s", b.log.String())
	}
}

// testClickHouseOutage runs a consumer while ClickHouse goes away for a
// while mid-stream: cut() makes it unavailable and restore() brings it
// back.
func testClickHouseOutage(t *testing.T, s *scenario, cut, restore func()) {
	t.Helper()
	values, valid := makeEvents(20000, 0)
	produced := s.produceSlowly(values, 200, 50*time.Millisecond)
	stop := s.watchCommits(valid)
	args := s.args("--batch.max_records", "500")
	c := startInProcess(t, args)
	s.waitRows(4000, 90*time.Second)

	before, err := s.committedNotAhead(valid)
	if err != nil {
		t.Fatal(err)
	}
	cut()
	// While the server is away, nothing new can be stored, so commits stop
	// advancing once the batches in flight have given up.
	ctx := context.Background()
	time.Sleep(3 * time.Second)
	during, err := s.kafka.Committed(ctx, s.group, s.topic)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	after, err := s.kafka.Committed(ctx, s.group, s.topic)
	if err != nil {
		t.Fatal(err)
	}
	for p, o := range after {
		if o != during[p] {
			t.Fatalf("partition %d committed %d -> %d while ClickHouse was down", p, during[p], o)
		}
	}
	var lagging bool
	if ends, err := s.kafka.Admin.ListEndOffsets(ctx, s.topic); err == nil {
		ends.Each(func(o kadm.ListedOffset) { lagging = lagging || o.Offset > after[o.Partition] })
	}
	if !lagging {
		t.Fatalf("no partition lagged during the outage (commits %v): the outage did not bite", after)
	}
	restore()
	if _, err := s.committedNotAhead(valid); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
	<-produced
	s.waitRows(len(values), 120*time.Second)
	if err := c.stop(t); err != nil {
		t.Fatalf("consumer: %v\n%s", err, c.log.String())
	}
	stop()
	s.checkExact(valid)
	s.checkCommittedNotAhead(valid)
	if !strings.Contains(c.log.String(), "insert recovered") {
		t.Fatalf("no insert was retried across the outage:\n%s", c.log.String()[:min(len(c.log.String()), 20000)])
	}
	t.Logf("committed before cut %v, during outage %v", before, during)
}

func TestClickHouseUnreachableMidStream(t *testing.T) {
	testenv.EachClickHouse(t, testClickHouseUnreachableMidStream)
}

// testClickHouseUnreachableMidStream is TestClickHouseUnreachableMidStream on one server.
func testClickHouseUnreachableMidStream(t *testing.T, srv testenv.ClickHouseServer) {
	s := newScenario(t, srv, 4)
	proxy := itest.NewProxy(t, s.chAddr)
	s.sinkAddr = proxy.Addr()
	testClickHouseOutage(t, s, proxy.Cut, proxy.Restore)
}

// TestClickHouseServerRestart stops each real server mid-stream. It runs in
// its own step of `make test` (TEXTPULSE_TEST_SERVER_RESTART=1), after the
// other tests, because it takes the shared servers away.
func TestClickHouseServerRestart(t *testing.T) {
	if os.Getenv("TEXTPULSE_TEST_SERVER_RESTART") != "1" {
		t.Skip("set TEXTPULSE_TEST_SERVER_RESTART=1 to stop and start the shared ClickHouse servers")
	}
	script := testenv.Lookup(t, testenv.EnvCHScript)
	testenv.EachClickHouse(t, func(t *testing.T, srv testenv.ClickHouseServer) {
		s := newScenario(t, srv, 4)
		svc := func(action string) func() {
			return func() {
				out, err := exec.Command(script, action, srv.Service).CombinedOutput() //nolint:gosec // Test script.
				if err != nil {
					t.Fatalf("%s %s: %v\n%s", action, srv.Service, err, out)
				}
			}
		}
		// Whatever happens, leave the shared server running.
		t.Cleanup(func() { _ = exec.Command(script, "start", srv.Service).Run() }) //nolint:gosec // Test script.
		testClickHouseOutage(t, s, svc("stop"), svc("start"))
	})
}

func TestCheckAndMigrateCommands(t *testing.T) {
	testenv.EachClickHouse(t, testCheckAndMigrateCommands)
}

// testCheckAndMigrateCommands is TestCheckAndMigrateCommands on one server.
func testCheckAndMigrateCommands(t *testing.T, srv testenv.ClickHouseServer) {
	s := newScenario(t, srv, 2)
	base := []string{
		"--kafka.brokers", strings.Join(s.kafka.Brokers, ","),
		"--kafka.topics", s.topic + ",missing-" + s.topic,
		"--kafka.dead_letter_topic", s.dlq,
		"--clickhouse.addr", s.chAddr,
		"--clickhouse.database", s.db,
		"--log.level", "error",
	}
	runCmd := func(args ...string) (string, error) {
		var out harness.Buffer
		err := run(context.Background(), args, func(string) string { return "" }, &out, &out)
		return out.String(), err
	}
	out, err := runCmd(append([]string{"check"}, base...)...)
	if err == nil {
		t.Fatalf("check passed with a missing topic and no tables:\n%s", out)
	}
	for _, want := range []string{"ok   topic " + s.topic + ": 2 partition(s)", "FAIL topic missing-" + s.topic + " does not exist",
		"ok   clickhouse " + s.chAddr + ": version ", "FAIL schema"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	out, err = runCmd(append([]string{"migrate"}, base...)...)
	if err != nil || !strings.Contains(out, "applied 1_create_tables") {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	out, err = runCmd(append([]string{"migrate"}, base...)...)
	if err != nil || !strings.Contains(out, "schema up to date") {
		t.Fatalf("second migrate: %v\n%s", err, out)
	}
	base[3] = s.topic
	out, err = runCmd(append([]string{"check"}, base...)...)
	if err != nil || strings.Contains(out, "FAIL") {
		t.Fatalf("check after migrate: %v\n%s", err, out)
	}
	// The row guarantee the server gives, and why.
	want := "ok   rows: at least once (ClickHouse 18."
	if s.srv.Modern {
		want = "ok   rows: exactly once (ClickHouse 26.9.2, dedup window 1000;"
	}
	if !strings.Contains(out, want) {
		t.Errorf("check output lacks %q:\n%s", want, out)
	}
}

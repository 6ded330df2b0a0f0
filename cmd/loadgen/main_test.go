package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/textpulse/textpulse/internal/textgen"
)

// newCluster starts an in-process fake Kafka cluster for one test.
func newCluster(t *testing.T, opts ...kfake.Opt) []string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatalf("start fake cluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// runResult is what one call of run left behind.
type runResult struct {
	err     error
	stdout  string
	stderr  string
	summary summary
}

// runLoadgen calls run with args and decodes the JSON summary when there is
// one.
func runLoadgen(ctx context.Context, t *testing.T, args ...string) runResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(ctx, args, &stdout, &stderr)
	res := runResult{err: err, stdout: stdout.String(), stderr: stderr.String()}
	if strings.TrimSpace(res.stdout) != "" {
		if err := json.Unmarshal(stdout.Bytes(), &res.summary); err != nil {
			t.Fatalf("decode summary %q: %v", res.stdout, err)
		}
	}
	return res
}

// consumeAll reads n records from topic, failing the test if they do not
// arrive in time.
func consumeAll(t *testing.T, brokers []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatalf("create consumer: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(recs), n, err)
		}
		fetches.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		recs = append(recs, fetches.Records()...)
	}
	// Nothing more than n must be there.
	short, cancelShort := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelShort()
	if extra := cl.PollFetches(short).Records(); len(extra) > 0 {
		t.Fatalf("consumed %d records beyond the %d expected", len(extra), n)
	}
	return recs
}

// classify reports whether ev is a valid event, the way a consumer would
// judge it: valid UTF-8 JSON whose fields all have the right types,
// including a string text.
func classify(ev []byte) bool {
	if !utf8.Valid(ev) {
		return false
	}
	var e textgen.Event
	if err := json.Unmarshal(ev, &e); err != nil {
		return false
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(ev, &fields); err != nil {
		return false
	}
	_, ok := fields["text"]
	return ok
}

func TestRunKafka(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		count     int
		malformed bool
		key       string
	}{
		{"defaults", nil, 3000, false, keyNone},
		{"malformed", []string{"--malformed-share", "0.2"}, 5000, true, keyNone},
		{"fixed size no compression", []string{"--fixed-size", "300", "--compression", "none"}, 4000, false, keyNone},
		{"zstd leader acks id keys", []string{"--compression", "zstd", "--acks", "leader", "--key", "id", "--malformed-share", "0.05"}, 2000, true, keyID},
		{"author keys no acks", []string{"--acks", "none", "--key", "author", "--linger", "0s"}, 2000, false, keyAuthor},
		{"one event", []string{"--partitions", "1"}, 1, false, keyNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			brokers := newCluster(t)
			topic := "events"
			before := time.Now().Truncate(time.Millisecond)
			args := append([]string{"--brokers", strings.Join(brokers, ","), "--topic", topic,
				"--count", fmt.Sprint(tt.count), "--json-summary"}, tt.args...)
			res := runLoadgen(context.Background(), t, args...)
			if res.err != nil {
				t.Fatalf("run: %v\n%s", res.err, res.stderr)
			}
			sum := res.summary
			if sum.Count != int64(tt.count) || sum.Valid+sum.Malformed != sum.Count {
				t.Fatalf("summary %+v, want count %d", sum, tt.count)
			}
			if tt.malformed != (sum.Malformed > 0) {
				t.Errorf("summary has %d malformed events, want some: %v", sum.Malformed, tt.malformed)
			}

			recs := consumeAll(t, brokers, topic, tt.count)
			var valid, bytes int64
			for _, r := range recs {
				if classify(r.Value) {
					valid++
				}
				bytes += int64(len(r.Value))
				if r.Timestamp.Before(before) || r.Timestamp.After(time.Now()) {
					t.Fatalf("record timestamp %v is not between %v and now", r.Timestamp, before)
				}
				checkKey(t, tt.key, r)
			}
			if valid != sum.Valid || bytes != sum.Bytes {
				t.Errorf("consumed %d valid events in %d bytes, summary says %d in %d", valid, bytes, sum.Valid, sum.Bytes)
			}

			if !strings.Contains(res.stderr, `msg="topic created"`) || !strings.Contains(res.stderr, "msg=summary") {
				t.Errorf("stderr lacks the topic creation or summary line:\n%s", res.stderr)
			}
		})
	}
}

// checkKey checks the key of r for the key mode.
func checkKey(t *testing.T, mode string, r *kgo.Record) {
	t.Helper()
	var e textgen.Event
	decoded := json.Unmarshal(r.Value, &e) == nil
	switch mode {
	case keyNone:
		if r.Key != nil {
			t.Fatalf("record has key %q, want none", r.Key)
		}
	case keyID:
		if len(r.Key) != 16 || decoded && e.ID != string(r.Key) {
			t.Fatalf("record key %q, event id %q", r.Key, e.ID)
		}
	case keyAuthor:
		if len(r.Key) == 0 || decoded && e.Author != string(r.Key) {
			t.Fatalf("record key %q, event author %q", r.Key, e.Author)
		}
	}
}

func TestRunCreatesTopic(t *testing.T) {
	brokers := newCluster(t)
	adm := kadm.NewClient(mustClient(t, brokers))
	ctx := context.Background()
	args := []string{"--brokers", brokers[0], "--topic", "t1", "--count", "10", "--partitions", "3", "--progress", "0"}

	res := runLoadgen(ctx, t, args...)
	if res.err != nil {
		t.Fatalf("first run: %v", res.err)
	}
	details, err := adm.ListTopics(ctx, "t1")
	if err != nil {
		t.Fatalf("list topics: %v", err)
	}
	if got := len(details["t1"].Partitions); got != 3 {
		t.Errorf("topic has %d partitions, want 3", got)
	}

	// A second run finds the topic and produces to it as it is.
	res = runLoadgen(ctx, t, append(args, "--partitions", "9")...)
	if res.err != nil {
		t.Fatalf("second run: %v", res.err)
	}
	if !strings.Contains(res.stderr, `msg="topic exists"`) {
		t.Errorf("second run did not report the existing topic:\n%s", res.stderr)
	}
	offsets, err := adm.ListEndOffsets(ctx, "t1")
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	var total int64
	offsets.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != 20 {
		t.Errorf("topic holds %d records after two runs of 10, want 20", total)
	}

	// Without --create-topic a missing topic is an error.
	res = runLoadgen(ctx, t, "--brokers", brokers[0], "--topic", "missing", "--count", "5",
		"--create-topic=false", "--delivery-timeout", "2s", "--progress", "0")
	if res.err == nil {
		t.Errorf("producing to a missing topic without --create-topic succeeded")
	}
}

// mustClient returns a client for brokers, closed when the test ends.
func mustClient(t *testing.T, brokers []string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatalf("create client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func TestRunFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name  string
		args  []string
		count int
	}{
		{"natural", nil, 5000},
		{"fixed malformed", []string{"--fixed-size", "300", "--malformed-share", "0.1"}, 3000},
		{"zero rate limit", []string{"--rate", "0"}, 10},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("events%d.jsonl", i))
			args := append([]string{"--file", path, "--count", fmt.Sprint(tt.count), "--json-summary"}, tt.args...)
			res := runLoadgen(context.Background(), t, args...)
			if res.err != nil {
				t.Fatalf("run: %v\n%s", res.err, res.stderr)
			}
			lines := readLines(t, path)
			if len(lines) != tt.count || res.summary.Count != int64(tt.count) {
				t.Fatalf("file has %d lines and summary count %d, want %d", len(lines), res.summary.Count, tt.count)
			}
			var valid, bytes int64
			for _, l := range lines {
				if classify(l) {
					valid++
				}
				bytes += int64(len(l))
			}
			if valid != res.summary.Valid || bytes != res.summary.Bytes {
				t.Errorf("file has %d valid events in %d bytes, summary says %d in %d", valid, bytes, res.summary.Valid, res.summary.Bytes)
			}
		})
	}
}

// readLines returns the lines of the file at path without their newlines.
func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer func() { _ = f.Close() }()
	var lines [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, slices.Clone(sc.Bytes()))
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return lines
}

func TestFileMatchesKafka(t *testing.T) {
	brokers := newCluster(t)
	path := filepath.Join(t.TempDir(), "events.jsonl")
	common := []string{"--count", "2000", "--seed", "42", "--start", "2025-03-01T12:00:00Z",
		"--malformed-share", "0.05", "--progress", "0"}
	if res := runLoadgen(context.Background(), t, append(common, "--file", path)...); res.err != nil {
		t.Fatalf("file run: %v", res.err)
	}
	if res := runLoadgen(context.Background(), t, append(common, "--brokers", brokers[0], "--topic", "same")...); res.err != nil {
		t.Fatalf("kafka run: %v", res.err)
	}
	var fromFile, fromKafka []string
	for _, l := range readLines(t, path) {
		fromFile = append(fromFile, string(l))
	}
	for _, r := range consumeAll(t, brokers, "same", 2000) {
		fromKafka = append(fromKafka, string(r.Value))
	}
	slices.Sort(fromFile)
	slices.Sort(fromKafka)
	if !slices.Equal(fromFile, fromKafka) {
		t.Errorf("the file and the topic hold different events for the same seed and start")
	}
}

func TestRunRate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	start := time.Now()
	res := runLoadgen(context.Background(), t, "--file", path, "--rate", "2000", "--duration", "1s", "--json-summary")
	elapsed := time.Since(start)
	if res.err != nil {
		t.Fatalf("run: %v", res.err)
	}
	if c := res.summary.Count; c < 1800 || c > 2100 {
		t.Errorf("produced %d events at 2000/s for 1s, want about 2000", c)
	}
	if elapsed < 900*time.Millisecond || elapsed > 3*time.Second {
		t.Errorf("run took %v, want about 1s", elapsed)
	}

	// A count stops a paced run before its duration.
	res = runLoadgen(context.Background(), t, "--file", path, "--rate", "1000", "--count", "200", "--duration", "1m", "--json-summary")
	if res.err != nil || res.summary.Count != 200 || res.summary.Seconds > 1 {
		t.Errorf("run with count 200 at 1000/s: %v, summary %+v", res.err, res.summary)
	}
}

func TestRunProgress(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	res := runLoadgen(context.Background(), t, "--file", path, "--rate", "1000", "--duration", "350ms", "--progress", "100ms")
	if res.err != nil {
		t.Fatalf("run: %v", res.err)
	}
	if n := strings.Count(res.stderr, "msg=progress"); n < 2 {
		t.Errorf("got %d progress lines in 350ms at 100ms intervals:\n%s", n, res.stderr)
	}
	for _, want := range []string{"sent=", "events_per_s=", "mb_per_s="} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("progress lacks %q:\n%s", want, res.stderr)
		}
	}
	if res.stdout != "" {
		t.Errorf("stdout without --json-summary = %q, want empty", res.stdout)
	}
}

func TestRunInterrupt(t *testing.T) {
	tests := []struct {
		name string
		args func(t *testing.T) []string
	}{
		{"kafka", func(t *testing.T) []string { return []string{"--brokers", newCluster(t)[0]} }},
		{"file", func(t *testing.T) []string { return []string{"--file", filepath.Join(t.TempDir(), "e.jsonl")} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(500*time.Millisecond, cancel)
			start := time.Now()
			res := runLoadgen(ctx, t, append(tt.args(t), "--count", "1000000000", "--json-summary", "--progress", "0")...)
			if res.err != nil {
				t.Fatalf("interrupted run: %v\n%s", res.err, res.stderr)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("interrupted run took %v to stop", took)
			}
			if res.summary.Count == 0 || !strings.Contains(res.stderr, "msg=interrupted") {
				t.Errorf("interrupted run delivered %d events; stderr:\n%s", res.summary.Count, res.stderr)
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	// A port that nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	closed := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatalf("close listener: %v", err)
	}

	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no limit", []string{}, "set --count, --duration or --rate"},
		{"negative count", []string{"--count", "-1"}, "--count -1 is negative"},
		{"negative rate", []string{"--count", "1", "--rate", "-5"}, "--rate -5"},
		{"bad share", []string{"--count", "1", "--malformed-share", "2"}, "malformed share 2 is outside"},
		{"bad fixed size", []string{"--count", "1", "--fixed-size", "10"}, "fixed size 10 is outside"},
		{"bad compression", []string{"--count", "1", "--compression", "brotli"}, `--compression "brotli"`},
		{"bad acks", []string{"--count", "1", "--acks", "2"}, `--acks "2"`},
		{"bad key", []string{"--count", "1", "--key", "text"}, `--key "text"`},
		{"bad start", []string{"--count", "1", "--start", "yesterday"}, `--start "yesterday"`},
		{"bad partitions", []string{"--count", "1", "--partitions", "0"}, "--partitions 0"},
		{"bad replication", []string{"--count", "1", "--replication-factor", "0"}, "--replication-factor 0"},
		{"bad log level", []string{"--count", "1", "--log-level", "loud"}, "--log-level"},
		{"empty topic", []string{"--count", "1", "--topic", ""}, "--topic is empty"},
		{"unknown flag", []string{"--count", "1", "--bogus"}, "unknown flag"},
		{"extra argument", []string{"--count", "1", "extra"}, "unexpected arguments"},
		{"several at once", []string{"--count", "-1", "--acks", "2"}, "--acks"},
		{"missing directory", []string{"--count", "1", "--file", "/nonexistent/dir/e.jsonl"}, "create output file"},
		{"unreachable broker", []string{"--count", "1", "--brokers", closed, "--connect-timeout", "500ms"}, "connect to brokers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runLoadgen(context.Background(), t, tt.args...)
			if res.err == nil || !strings.Contains(res.err.Error(), tt.wantErr) {
				t.Errorf("run error = %v, want one containing %q", res.err, tt.wantErr)
			}
		})
	}

	t.Run("help", func(t *testing.T) {
		res := runLoadgen(context.Background(), t, "--help")
		if res.err != nil || !strings.Contains(res.stderr, "--fixed-size") {
			t.Errorf("help: error %v, usage:\n%s", res.err, res.stderr)
		}
	})
}

func TestRunDeliveryError(t *testing.T) {
	// A cluster that rejects every produce request with a non-retriable
	// error makes the run fail with that error, after the summary.
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("start fake cluster: %v", err)
	}
	defer c.Close()
	c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.InvalidRecord.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	res := runLoadgen(context.Background(), t, "--brokers", c.ListenAddrs()[0], "--count", "1000", "--json-summary", "--progress", "0")
	if res.err == nil || !errors.Is(res.err, kerr.InvalidRecord) || !strings.Contains(res.err.Error(), "produce record") {
		t.Fatalf("run error = %v, want a produce error wrapping %v", res.err, kerr.InvalidRecord)
	}
	if res.summary.Count != 0 {
		t.Errorf("summary counts %d delivered events, want 0", res.summary.Count)
	}
}

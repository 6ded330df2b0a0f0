package main

import (
	"context"
	"fmt"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/textpulse/textpulse/internal/harness"
	"github.com/textpulse/textpulse/internal/openaisim"
	"github.com/textpulse/textpulse/internal/testenv"
)

// reenrichScenario is a table of rows written by the consumer with the
// sentiment stage failing, and a healthy simulator to re-enrich them with.
type reenrichScenario struct {
	*scenario
	n   int
	sim *openaisim.Server
	url string
}

// newPartialRows ingests n events with distinct texts while every chat
// request fails, so that every row is written partial with sentiment in
// failed_stages, and returns a healthy simulator for the re-enrichment.
func newPartialRows(t *testing.T, srv testenv.ClickHouseServer, n int) *reenrichScenario {
	t.Helper()
	s := newScenario(t, srv, 3)
	broken := openaisim.DefaultConfig()
	broken.Chat.Faults = openaisim.Faults{ServerError: 1}
	down := newSimServer(t, broken)
	values := make([][]byte, n)
	for i := range values {
		values[i] = fmt.Appendf(nil, `{"id":"e%d","text":"review %d: the support team was great, thanks"}`, i, i)
	}
	s.kafka.Produce(t, s.topic, s.partitions, values)
	c := startInProcess(t, s.args(sentimentArgs(down.url, "skip")...))
	s.waitRows(n, 90*time.Second)
	if err := c.stop(t); err != nil {
		t.Fatalf("consumer: %v\n%s", err, c.log.String())
	}
	var partial uint64
	if err := s.ch.Conn.QueryRow(t.Context(), fmt.Sprintf("SELECT count() FROM %s.events FINAL WHERE has(failed_stages, 'sentiment')", s.db)).Scan(&partial); err != nil {
		t.Fatal(err)
	}
	if partial != uint64(n) { //nolint:gosec // Small test counts.
		t.Fatalf("%d of %d rows partial after the outage, want all", partial, n)
	}
	healthy := newSimServer(t, openaisim.DefaultConfig())
	return &reenrichScenario{scenario: s, n: n, sim: healthy.sim, url: healthy.url}
}

type simServer struct {
	sim *openaisim.Server
	url string
}

func newSimServer(t *testing.T, cfg openaisim.Config) simServer {
	t.Helper()
	sim, err := openaisim.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return simServer{sim: sim, url: srv.URL + "/v1"}
}

// sentimentArgs enables the API sentiment stage on the endpoint url.
func sentimentArgs(url, policy string) []string {
	p := "--stages.sentiment."
	return []string{p + "enabled", p + "base_url", url, p + "api_key", "test-key", p + "on_failure", policy,
		p + "max_attempts", "1", p + "retry_initial_interval", "10ms", p + "retry_max_interval", "50ms",
		p + "items_per_request", "20"}
}

// enrichArgs is the consumer enrich command line for the scenario's table.
func (s *reenrichScenario) enrichArgs(t *testing.T, extra ...string) []string {
	return append([]string{"enrich", "--clickhouse.addr", s.sinkAddr, "--clickhouse.database", s.db,
		"--clickhouse.retry_max", "1s", "--log.format", "text", "--log.level", "warn",
		"--checkpoint", filepath.Join(t.TempDir(), "enrich.json"), "--progress", "lines", "--page-size", "50"},
		extra...)
}

// checkComplete checks that every row carries the simulator's sentiment for
// its text, that the table still holds n rows once each, and, where rows
// are stored exactly once, that the rollup counts them once with their new
// labels.
func (s *reenrichScenario) checkComplete(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	rows, err := s.ch.Conn.Query(ctx, fmt.Sprintf("SELECT text, sentiment_label, sentiment_score, status, revision FROM %s.events FINAL", s.db))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	seen := 0
	for rows.Next() {
		var text, label, status string
		var score float32
		var rev uint32
		if err := rows.Scan(&text, &label, &score, &status, &rev); err != nil {
			t.Fatal(err)
		}
		wl, ws := openaisim.Sentiment(text)
		if status != "ok" || label != wl || math.Abs(float64(score)-ws) > 1e-6 || rev != 1 {
			t.Fatalf("row %q: %s %v %s revision %d, want %s %v ok revision 1", text, label, score, status, rev, wl, ws)
		}
		seen++
	}
	if seen != s.n {
		t.Fatalf("%d rows under FINAL, want %d", seen, s.n)
	}
	var distinct uint64
	if err := s.ch.Conn.QueryRow(ctx, fmt.Sprintf("SELECT uniqExact(kafka_topic, kafka_partition, kafka_offset) FROM %s.events", s.db)).Scan(&distinct); err != nil {
		t.Fatal(err)
	}
	if distinct != uint64(s.n) { //nolint:gosec // Small test counts.
		t.Fatalf("%d distinct keys, want %d", distinct, s.n)
	}
	if !s.srv.Modern {
		return
	}
	var events, scored, partial int64
	q := fmt.Sprintf("SELECT sum(events), sum(sentiment_scored), sum(partial) FROM %s.events_per_minute", s.db)
	if err := s.ch.Conn.QueryRow(ctx, q).Scan(&events, &scored, &partial); err != nil {
		t.Fatal(err)
	}
	if events != int64(s.n) || scored != int64(s.n) || partial != 0 {
		t.Fatalf("rollup: %d events, %d scored, %d partial; want %d, %d, 0", events, scored, partial, s.n, s.n)
	}
}

func TestEnrichFillsSkippedStage(t *testing.T) {
	testenv.EachClickHouse(t, testEnrichFillsSkippedStage)
}

// testEnrichFillsSkippedStage is TestEnrichFillsSkippedStage on one server.
func testEnrichFillsSkippedStage(t *testing.T, srv testenv.ClickHouseServer) {
	s := newPartialRows(t, srv, 300)
	var dry, out, errb strings.Builder
	args := s.enrichArgs(t, append(sentimentArgs(s.url, "retry"), "--failed-stage", "sentiment")...)
	if err := run(t.Context(), append(args, "--dry-run"), noEnv, &dry, &errb); err != nil {
		t.Fatalf("dry run: %v\n%s", err, errb.String())
	}
	if !strings.Contains(dry.String(), "300 rows selected") || !strings.Contains(squash(dry.String()), "sentiment api gpt-4o-mini 300 300 15") {
		t.Fatalf("dry run printed:\n%s", dry.String())
	}
	if st := s.sim.Stats(); st.Chat.Requests != 0 {
		t.Fatalf("the dry run sent %d requests", st.Chat.Requests)
	}
	if err := run(t.Context(), args, noEnv, &out, &errb); err != nil {
		t.Fatalf("enrich: %v\n%s", err, errb.String())
	}
	t.Logf("report:\n%s\nprogress:\n%s", out.String(), errb.String())
	if !strings.Contains(squash(out.String()), "rows updated 300") || !strings.Contains(errb.String(), "300 of 300 rows read") {
		t.Fatalf("report:\n%s\nprogress:\n%s", out.String(), errb.String())
	}
	s.checkComplete(t)
	if in := s.sim.Stats().Chat.Inputs; in != int64(s.n) {
		t.Fatalf("%d texts sent for sentiment, want each of the %d once", in, s.n)
	}
	// Nothing is left to do: a second run selects no row.
	out.Reset()
	if err := run(t.Context(), args, noEnv, &out, &errb); err != nil || !strings.Contains(squash(out.String()), "rows selected 0") {
		t.Fatalf("second run: %v\n%s", err, out.String())
	}
}

func TestEnrichResumesAfterKill(t *testing.T) {
	testenv.EachClickHouse(t, testEnrichResumesAfterKill)
}

// testEnrichResumesAfterKill is TestEnrichResumesAfterKill on one server: a
// run killed right after writing its second page, before the checkpoint
// records it, resumes and leaves no row missed or enriched twice.
func testEnrichResumesAfterKill(t *testing.T, srv testenv.ClickHouseServer) {
	s := newPartialRows(t, srv, 300)
	args := s.enrichArgs(t, append(sentimentArgs(s.url, "retry"), "--failed-stage", "sentiment")...)
	killed, err := harness.Start(t.Context(), harness.Config{Path: binPath, Args: args, Log: &harness.Buffer{},
		Env: []string{envKillAfterPage + "=2"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := killed.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("the hooked run ended with %v, want SIGKILL:\n%s", err, killed.Tail(40))
	}
	if in := s.sim.Stats().Chat.Inputs; in != 100 {
		t.Fatalf("the killed run sent %d texts, want its 2 pages of 50", in)
	}
	var out, errb strings.Builder
	if err := run(t.Context(), args, noEnv, &out, &errb); err != nil {
		t.Fatalf("resume: %v\n%s", err, errb.String())
	}
	t.Logf("resumed run:\n%s", out.String())
	s.checkComplete(t)
	if in := s.sim.Stats().Chat.Inputs; in != int64(s.n) {
		t.Fatalf("%d texts sent over both runs, want each of the %d once", in, s.n)
	}
	if _, err := os.Stat(args[slicesIndex(args, "--checkpoint")+1]); !os.IsNotExist(err) {
		t.Fatalf("checkpoint left after the run: %v", err)
	}
}

// squash joins the fields of s with single spaces.
func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

// noEnv is an empty environment.
func noEnv(string) string { return "" }

func slicesIndex(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func TestEnrichUpgradesModel(t *testing.T) {
	testenv.EachClickHouse(t, testEnrichUpgradesModel)
}

// testEnrichUpgradesModel is TestEnrichUpgradesModel on one server: rows
// written with emotion model A are moved to model B by consumer enrich
// --stale-model, every row once, and a second run finds nothing to do.
func testEnrichUpgradesModel(t *testing.T, srv testenv.ClickHouseServer) {
	lib := testenv.Lookup(t, "TEXTPULSE_ORT_LIB")
	models := testenv.Lookup(t, "TEXTPULSE_TEST_MODELS")
	s := newScenario(t, srv, 2)
	const n = 200
	values := make([][]byte, n)
	for i := range values {
		values[i] = fmt.Appendf(nil, `{"id":"e%d","text":"day %d: I am so happy and a little scared of what comes next"}`, i, i)
	}
	s.kafka.Produce(t, s.topic, s.partitions, values)
	emotion := func(dir string) []string {
		return []string{"--ort.lib", lib, "--stages.emotion.enabled", "--stages.emotion.model_dir", filepath.Join(models, dir)}
	}
	c := startInProcess(t, s.args(emotion("tiny-emotion")...))
	s.waitRows(n, 2*time.Minute)
	if err := c.stop(t); err != nil {
		t.Fatalf("consumer: %v\n%s", err, c.log.String())
	}
	modelCounts := func() map[string]uint64 {
		rows, err := s.ch.Conn.Query(t.Context(), fmt.Sprintf("SELECT emotion_model, count() FROM %s.events FINAL GROUP BY emotion_model", s.db))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = rows.Close() }()
		out := map[string]uint64{}
		for rows.Next() {
			var m string
			var c uint64
			if err := rows.Scan(&m, &c); err != nil {
				t.Fatal(err)
			}
			out[m] = c
		}
		return out
	}
	before := modelCounts()
	if len(before) != 1 {
		t.Fatalf("models before the upgrade: %v, want one", before)
	}
	rs := &reenrichScenario{scenario: s, n: n}
	args := rs.enrichArgs(t, append(emotion("minilm-emotion"), "--stale-model", "--stages", "emotion", "--progress", "none")...)
	var out, errb strings.Builder
	if err := run(t.Context(), args, noEnv, &out, &errb); err != nil {
		t.Fatalf("enrich: %v\n%s", err, errb.String())
	}
	after := modelCounts()
	var upgraded string
	for m := range after {
		upgraded = m
	}
	if len(after) != 1 || after[upgraded] != n || !strings.Contains(upgraded, "minilm-emotion@") {
		t.Fatalf("models after the upgrade: %v (before %v), want all %d rows on minilm-emotion", after, before, n)
	}
	if !strings.Contains(squash(out.String()), "emotion 200 enriched, 0 failed again") {
		t.Fatalf("report:\n%s", out.String())
	}
	out.Reset()
	if err := run(t.Context(), args, noEnv, &out, &errb); err != nil || !strings.Contains(squash(out.String()), "rows selected 0") {
		t.Fatalf("second run: %v\n%s", err, out.String())
	}
}

// TestEnrichSyncAndBatch enriches the same skipped backlog twice, through
// the synchronous API and through the Batch API of the simulator: the rows
// end the same, the batch run sends no synchronous request, and both
// reports (requests, tokens, cost at list prices, wall time) are logged
// side by side.
func TestEnrichSyncAndBatch(t *testing.T) {
	srv := testenv.ClickHouseServers(t)[len(testenv.ClickHouseServers(t))-1]
	reports := map[string]string{}
	for _, via := range []string{"sync", "batch"} {
		t.Run(via, func(t *testing.T) {
			s := newPartialRows(t, srv, 300)
			cfg := openaisim.DefaultConfig()
			cfg.Batch.CompletionDelay = 300 * time.Millisecond
			sim := newSimServer(t, cfg)
			s.sim, s.url = sim.sim, sim.url
			args := s.enrichArgs(t, append(sentimentArgs(s.url, "retry"), "--failed-stage", "sentiment", "--via", via,
				"--stages.batch_api.poll_initial_interval", "50ms", "--stages.batch_api.poll_max_interval", "200ms")...)
			var out, errb strings.Builder
			if err := run(t.Context(), args, noEnv, &out, &errb); err != nil {
				t.Fatalf("enrich --via %s: %v\n%s", via, err, errb.String())
			}
			s.checkComplete(t)
			st := s.sim.Stats()
			if via == "batch" && (st.Chat.Requests != 0 || st.BatchRequests == 0) {
				t.Fatalf("--via batch: %d synchronous chat requests and %d batch requests", st.Chat.Requests, st.BatchRequests)
			}
			reports[via] = out.String()
		})
	}
	t.Logf("the same 300-row backlog on %s:\nsync:\n%s\nbatch:\n%s", srv.Name, reports["sync"], reports["batch"])
}

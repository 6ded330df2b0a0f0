package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/textpulse/textpulse/internal/itest"
	"github.com/textpulse/textpulse/internal/openaisim"
	"github.com/textpulse/textpulse/internal/testenv"
)

// TestDeferOnBacklog runs the sentiment stage against a slow simulated API
// with defer_above_lag far below the backlog: once the lag monitor sees the
// backlog, the stage stops calling the API and the rows are stored partial
// with sentiment in failed_stages; once the backlog is drained it resumes,
// and events produced afterwards are enriched.
func TestDeferOnBacklog(t *testing.T) {
	testenv.EachClickHouse(t, testDeferOnBacklog)
}

// testDeferOnBacklog is TestDeferOnBacklog on one server.
func testDeferOnBacklog(t *testing.T, srv testenv.ClickHouseServer) {
	s := newScenario(t, srv, 2)
	cfg := openaisim.DefaultConfig()
	cfg.Chat.Latency = openaisim.Latency{Median: time.Second}
	sim, err := openaisim.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	apiSrv := httptest.NewServer(sim.Handler())
	t.Cleanup(apiSrv.Close)

	const backlog, after = 4000, 40
	values, _ := makeEvents(backlog+after, 0)
	s.kafka.Produce(t, s.topic, s.partitions, values[:backlog])
	c := startInProcess(t, s.args("--stages.sentiment.enabled", "--stages.sentiment.base_url", apiSrv.URL+"/v1",
		"--stages.sentiment.api_key", "test-key", "--stages.sentiment.defer_above_lag", "500",
		"--batch.max_records", "100"))
	s.waitRows(backlog, 120*time.Second)
	itest.Eventually(t, 30*time.Second, func() (bool, string) {
		lag := s.deferLag(t, c)
		return lag == 0, fmt.Sprintf("lag %d", lag)
	})
	s.produceAt(backlog, values[backlog:])
	s.waitRows(backlog+after, 60*time.Second)

	deferred := s.deferMetric(t, c, `textpulse_stage_deferred_total{provider="api",stage="sentiment"}`)
	if err := c.stop(t); err != nil {
		t.Fatalf("consumer: %v\n%s", err, c.log.String())
	}
	log := c.log.String()
	for _, msg := range []string{`msg="enrichment deferred"`, `msg="enrichment resumed"`} {
		if !strings.Contains(log, msg) {
			t.Fatalf("log lacks %s:\n%s", msg, log)
		}
	}
	partial, late := s.deferredRows(t, backlog)
	switch {
	case partial == 0 || partial > backlog:
		t.Fatalf("%d of %d backlog rows deferred, want some", partial, backlog)
	case float64(partial) != deferred:
		t.Fatalf("%d rows partial with sentiment failed, textpulse_stage_deferred_total %v", partial, deferred)
	case late != after:
		t.Fatalf("%d of the %d events produced after the backlog enriched, want all", late, after)
	}
	t.Logf("%d of %d backlog rows deferred; %d chat requests", partial, backlog, sim.Stats().Chat.Requests)
}

// deferMetric reads one sample of c's /metrics (0 when absent).
func (s *scenario) deferMetric(t *testing.T, c *inProcess, series string) float64 {
	t.Helper()
	addr := regexp.MustCompile(`msg="http listening" addr=(\S+)`).FindStringSubmatch(c.log.String())
	if addr == nil {
		t.Fatalf("no http address in the log:\n%s", c.log.String())
	}
	_, metrics := httpGet(t, "http://"+addr[1]+"/metrics")
	for line := range strings.Lines(metrics) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return f
		}
	}
	return 0
}

// deferLag is the consumer lag c exports, summed over its partitions.
func (s *scenario) deferLag(t *testing.T, c *inProcess) int64 {
	t.Helper()
	var lag int64
	for p := range s.partitions {
		lag += int64(s.deferMetric(t, c, fmt.Sprintf(`textpulse_consumer_lag_records{partition="%d",topic="%s"}`, p, s.topic)))
	}
	return lag
}

// deferredRows counts the rows of the first backlog events stored partial
// with sentiment in failed_stages, and the later events stored enriched.
func (s *scenario) deferredRows(t *testing.T, backlog int) (partial, late int) {
	t.Helper()
	rows, err := s.ch.Conn.Query(context.Background(), fmt.Sprintf(
		`SELECT event_id, status, has(failed_stages, 'sentiment'), sentiment_label FROM %s.events FINAL`, s.db))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var id, status, label string
		var failed bool
		if err := rows.Scan(&id, &status, &failed, &label); err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(strings.TrimPrefix(id, "ev-"))
		if err != nil {
			t.Fatalf("row id %q", id)
		}
		switch {
		case failed != (status == "partial") || failed == (label != ""):
			t.Fatalf("row %s: status %s, sentiment failed %v, label %q", id, status, failed, label)
		case n < backlog && failed:
			partial++
		case n >= backlog && !failed:
			late++
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return partial, late
}

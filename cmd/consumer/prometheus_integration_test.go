package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/textpulse/textpulse/internal/harness"
	"github.com/textpulse/textpulse/internal/itest"
	"github.com/textpulse/textpulse/internal/testenv"
)

// alertRulesPath is the alert rules shipped in deploy/prometheus.
const alertRulesPath = "../../deploy/prometheus/alerts.yml"

// TestPrometheusScrapesAndAlerts runs a real Prometheus (Debian's
// prometheus package, installed by scripts/tools.sh) against a running
// consumer with the shipped alert rules, their for: durations shortened to
// a second so that the test need not wait for minutes. While ClickHouse is
// unreachable behind a proxy and events wait in Kafka, the sink, insert and
// stall alerts must fire and the consumer-down alert must not; once
// ClickHouse is back they resolve; when the consumer stops, the
// consumer-down alert fires.
func TestPrometheusScrapesAndAlerts(t *testing.T) {
	testenv.EachClickHouse(t, testPrometheusScrapesAndAlerts)
}

// testPrometheusScrapesAndAlerts is TestPrometheusScrapesAndAlerts on one server.
func testPrometheusScrapesAndAlerts(t *testing.T, srv testenv.ClickHouseServer) {
	promBin := lookPrometheus(t)
	s := newScenario(t, srv, 2)
	proxy := itest.NewProxy(t, s.chAddr)
	s.sinkAddr = proxy.Addr()
	c := startInProcess(t, s.args("--clickhouse.retry_max", "500ms"))
	addr := consumerHTTPAddr(t, c)
	itest.Eventually(t, 60*time.Second, func() (bool, string) {
		code, body := httpGet(t, "http://"+addr+"/readyz")
		return code == http.StatusOK, body
	})

	prom := startPrometheus(t, promBin, addr)
	itest.Eventually(t, 30*time.Second, func() (bool, string) {
		v, err := prom.query(`up{job="textpulse"}`)
		return err == nil && v == "1", fmt.Sprintf("up = %q (%v)", v, err)
	})

	// Nothing can be stored from now on, so the events wait in Kafka. The
	// consumer's first step, reading what its partitions already hold,
	// fails too.
	proxy.Cut()
	values, _ := makeEvents(500, 0)
	s.kafka.Produce(t, s.topic, s.partitions, values)
	itest.Eventually(t, 60*time.Second, func() (bool, string) {
		v, err := prom.query(`sum(textpulse_consumer_lag_records{job="textpulse"})`)
		return err == nil && v == "500", fmt.Sprintf("lag = %q (%v)", v, err)
	})
	firing := []string{"TextpulseClickHouseDown", "TextpulseClickHouseInsertFailures", "TextpulseConsumerStalled"}
	prom.waitAlerts(t, "during the ClickHouse outage", firing, []string{"TextpulseConsumerDown", "TextpulseConsumerAbsent"})
	if v, err := prom.query(`sum(textpulse_records_written_total{job="textpulse"})`); err != nil || v != "0" {
		t.Fatalf("rows written during the outage: %q (%v)", v, err)
	}

	// ClickHouse is back: the rows are stored, and the alerts that watch
	// the current state resolve.
	proxy.Restore()
	s.waitRows(len(values), 90*time.Second)
	prom.waitAlerts(t, "after ClickHouse came back", nil, []string{"TextpulseClickHouseDown", "TextpulseConsumerStalled", "TextpulseConsumerDown"})

	// The consumer stops: the scrape fails and the down alert fires.
	if err := c.stop(t); err != nil {
		t.Fatalf("consumer: %v\n%s", err, c.log.String())
	}
	prom.waitAlerts(t, "after the consumer stopped", []string{"TextpulseConsumerDown"}, nil)
}

func lookPrometheus(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("prometheus")
	if err == nil {
		return p
	}
	if os.Getenv(testenv.EnvRequire) == "1" {
		t.Fatalf("prometheus not found and %s=1: run scripts/tools.sh install", testenv.EnvRequire)
	}
	t.Skip("prometheus not found; run scripts/tools.sh install")
	return ""
}

// consumerHTTPAddr waits for the consumer's log line that names its HTTP
// address.
func consumerHTTPAddr(t *testing.T, c *inProcess) string {
	t.Helper()
	re := regexp.MustCompile(`msg="http listening" addr=(\S+)`)
	var addr string
	itest.Eventually(t, 60*time.Second, func() (bool, string) {
		m := re.FindStringSubmatch(c.log.String())
		if m == nil {
			return false, "no http address in the log yet"
		}
		addr = m[1]
		return true, ""
	})
	return addr
}

// promServer is a Prometheus server started by a test.
type promServer struct {
	base string
}

// startPrometheus runs promBin scraping the consumer at target every second
// and evaluating the shipped alert rules every second, with every for:
// shortened to 1s.
func startPrometheus(t *testing.T, promBin, target string) *promServer {
	t.Helper()
	dir := t.TempDir()
	rules := shortenedRules(t)
	if err := os.WriteFile(filepath.Join(dir, "alerts.yml"), rules, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files: [alerts.yml]
scrape_configs:
  - job_name: textpulse
    static_configs:
      - targets: [%q]
`, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("promtool", "check", "config", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	listen := freeAddr(t)
	log := &harness.Buffer{}
	cmd := exec.Command(promBin, //nolint:gosec // Test binary and arguments.
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+listen,
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", log.String())
		}
	})
	p := &promServer{base: "http://" + listen}
	itest.Eventually(t, 60*time.Second, func() (bool, string) {
		resp, err := http.Get(p.base + "/-/ready") //nolint:noctx // Test poll.
		if err != nil {
			return false, err.Error()
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return p
}

// shortenedRules returns the shipped alert rules with every for: set to 1s.
func shortenedRules(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(alertRulesPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Name  string           `json:"name"`
			Rules []map[string]any `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(b, &doc); err != nil {
		t.Fatalf("%s: %v", alertRulesPath, err)
	}
	n := 0
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			if _, ok := r["alert"]; ok {
				r["for"] = "1s"
				n++
			}
		}
	}
	if n == 0 {
		t.Fatalf("%s has no alerts", alertRulesPath)
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// apiGet decodes the data of a Prometheus HTTP API answer.
func (p *promServer) apiGet(path string, data any) error {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, p.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: %s", path, env.Error)
	}
	return json.Unmarshal(env.Data, data)
}

// query returns the single value of an instant query, or "" when it has no
// result.
func (p *promServer) query(q string) (string, error) {
	var data struct {
		Result []struct {
			Value [2]any `json:"value"`
		} `json:"result"`
	}
	if err := p.apiGet("/api/v1/query?query="+url.QueryEscape(q), &data); err != nil {
		return "", err
	}
	switch len(data.Result) {
	case 0:
		return "", nil
	case 1:
		s, _ := data.Result[0].Value[1].(string)
		return s, nil
	}
	return "", fmt.Errorf("%s: %d series", q, len(data.Result))
}

// alerts returns the state of each active alert by name.
func (p *promServer) alerts() (map[string]string, error) {
	var data struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	if err := p.apiGet("/api/v1/alerts", &data); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, a := range data.Alerts {
		if out[a.Labels["alertname"]] != "firing" {
			out[a.Labels["alertname"]] = a.State
		}
	}
	return out, nil
}

// waitAlerts waits until every alert in firing fires and none in quiet is
// active.
func (p *promServer) waitAlerts(t *testing.T, when string, firing, quiet []string) {
	t.Helper()
	itest.Eventually(t, 90*time.Second, func() (bool, string) {
		active, err := p.alerts()
		if err != nil {
			return false, err.Error()
		}
		var names []string
		for n, s := range active {
			names = append(names, n+"="+s)
		}
		sort.Strings(names)
		status := when + ": active alerts " + strings.Join(names, ", ")
		for _, a := range firing {
			if active[a] != "firing" {
				return false, status + "; waiting for " + a
			}
		}
		for _, a := range quiet {
			if active[a] != "" {
				return false, status + "; " + a + " should not be active"
			}
		}
		return true, ""
	})
	t.Logf("%s: %v firing, %v quiet", when, firing, quiet)
}

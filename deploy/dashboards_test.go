package deploy

import (
	"bytes"
	"context"
	"encoding/json"
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

	"sigs.k8s.io/yaml"

	"github.com/textpulse/textpulse/internal/itest"
	"github.com/textpulse/textpulse/internal/testenv"
	"github.com/textpulse/textpulse/schemas"
)

const (
	promDatasource = "prometheus"
	chDatasource   = "grafana-clickhouse-datasource"
	envRequire     = "TEXTPULSE_TEST_REQUIRE_SERVICES"
)

// dashboard is the part of a Grafana dashboard JSON model the checks read.
type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string     `json:"name"`
			Datasource datasource `json:"datasource"`
			Query      struct {
				Query string `json:"query"`
			} `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int        `json:"id"`
	Title      string     `json:"title"`
	Type       string     `json:"type"`
	Datasource datasource `json:"datasource"`
	Targets    []struct {
		RefID      string     `json:"refId"`
		Datasource datasource `json:"datasource"`
		Expr       string     `json:"expr"`
		RawSQL     string     `json:"rawSql"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

// query is one panel target.
type query struct {
	where string // dashboard, panel and refId, for messages
	ds    datasource
	text  string
}

func loadDashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	paths, err := filepath.Glob("grafana/dashboards/*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no dashboards in grafana/dashboards (%v)", err)
	}
	out := map[string]dashboard{}
	uids := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: dashboard needs a uid and a title", p)
		}
		if other, ok := uids[d.UID]; ok {
			t.Errorf("%s and %s share the uid %q", p, other, d.UID)
		}
		uids[d.UID] = p
		out[p] = d
	}
	return out
}

// queries returns every target of every panel, nested row panels included.
func (d dashboard) queries(file string) []query {
	var out []query
	var walk func([]panel)
	ids := map[int]bool{}
	walk = func(ps []panel) {
		for _, p := range ps {
			ids[p.ID] = true
			for _, tg := range p.Targets {
				ds := tg.Datasource
				if ds.Type == "" {
					ds = p.Datasource
				}
				text := tg.Expr
				if ds.Type == chDatasource {
					text = tg.RawSQL
				}
				out = append(out, query{where: fmt.Sprintf("%s: panel %q (%s)", filepath.Base(file), p.Title, tg.RefID), ds: ds, text: text})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// datasourceUIDs reads the provisioned datasources: type by uid.
func datasourceUIDs(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("grafana/provisioning/datasources/datasources.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		APIVersion  int `json:"apiVersion"`
		Datasources []struct {
			Name           string         `json:"name"`
			UID            string         `json:"uid"`
			Type           string         `json:"type"`
			Access         string         `json:"access"`
			URL            string         `json:"url"`
			IsDefault      bool           `json:"isDefault"`
			JSONData       map[string]any `json:"jsonData"`
			SecureJSONData map[string]any `json:"secureJsonData"`
		} `json:"datasources"`
	}
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		t.Fatalf("datasources.yml: %v", err)
	}
	out := map[string]string{}
	for _, d := range f.Datasources {
		out[d.UID] = d.Type
	}
	return out
}

// TestDashboardsUseProvisionedDatasources checks that every panel query
// names a datasource that the provisioning files create, with its type.
func TestDashboardsUseProvisionedDatasources(t *testing.T) {
	uids := datasourceUIDs(t)
	if uids["prometheus"] != promDatasource || uids["clickhouse"] != chDatasource {
		t.Fatalf("provisioned datasources %v: want prometheus (%s) and clickhouse (%s)", uids, promDatasource, chDatasource)
	}
	kinds := map[string]int{}
	for file, d := range loadDashboards(t) {
		qs := d.queries(file)
		if len(qs) == 0 {
			t.Errorf("%s has no queries", file)
		}
		for _, q := range qs {
			if uids[q.ds.UID] != q.ds.Type {
				t.Errorf("%s: datasource %+v is not provisioned", q.where, q.ds)
			}
			if strings.TrimSpace(q.text) == "" {
				t.Errorf("%s: empty query", q.where)
			}
			kinds[q.ds.Type]++
		}
	}
	if kinds[promDatasource] == 0 || kinds[chDatasource] == 0 {
		t.Errorf("queries by datasource type %v: want both Prometheus and ClickHouse panels", kinds)
	}
	b, err := os.ReadFile("grafana/provisioning/dashboards/dashboards.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("path: /var/lib/grafana/dashboards/textpulse")) {
		t.Errorf("dashboards.yml does not load /var/lib/grafana/dashboards/textpulse, where docker-compose.yml mounts the dashboards")
	}
}

// grafanaVars are the Grafana variables the Prometheus queries may use,
// with values that make them plain PromQL.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "5m",
	"$__interval", "1m",
	"$__range", "1h",
	"$job", ".*",
	"$instance", ".*",
)

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promSelector = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}`)
	promMatcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	promIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	// metricPrefixes are the series the consumer exports; a query naming
	// another series of these families is a mistake.
	metricPrefixes = []string{"textpulse_", "go_", "process_"}
)

// checkPromQL checks that expr names only exported series, that every label
// matcher of a selector names a label of that metric, and that every
// grouping label is a label of one of the metrics in expr. It returns the
// exported series the expression uses.
func checkPromQL(where, expr string, m exportedMetrics) (used []string, errs []string) {
	expr = grafanaVars.Replace(expr)
	// Label values are strings; blank them so that they are not read as
	// names, keeping the quotes so that matchers stay recognisable.
	bare := promString.ReplaceAllStringFunc(expr, func(s string) string { return `""` })
	labels := map[string]bool{"job": true, "instance": true, "__name__": true}
	for _, sm := range promSelector.FindAllStringSubmatch(bare, -1) {
		mi := m[sm[1]]
		if mi == nil {
			continue // Reported below.
		}
		for _, lm := range promMatcher.FindAllStringSubmatch(sm[2], -1) {
			if !mi.labels[lm[1]] {
				errs = append(errs, fmt.Sprintf("%s: %s has no label %q", where, sm[1], lm[1]))
			}
		}
	}
	// Strip the selectors' braces and the grouping clauses before looking
	// for metric names.
	noSel := regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(bare, " ")
	var groupings []string
	for _, g := range promGrouping.FindAllStringSubmatch(noSel, -1) {
		for _, l := range strings.Split(g[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				groupings = append(groupings, l)
			}
		}
	}
	noSel = promGrouping.ReplaceAllString(noSel, " ")
	noSel = regexp.MustCompile(`\[[^\]]*\]`).ReplaceAllString(noSel, " ")
	for _, id := range promIdent.FindAllString(noSel, -1) {
		exported := false
		for _, p := range metricPrefixes {
			exported = exported || strings.HasPrefix(id, p)
		}
		if !exported {
			continue
		}
		mi := m[id]
		if mi == nil {
			errs = append(errs, fmt.Sprintf("%s: the consumer exports no series %s", where, id))
			continue
		}
		used = append(used, id)
		for l := range mi.labels {
			labels[l] = true
		}
	}
	for _, l := range groupings {
		if !labels[l] {
			errs = append(errs, fmt.Sprintf("%s: grouping label %q is on none of the metrics %v", where, l, used))
		}
	}
	return used, errs
}

// TestPrometheusQueriesNameExportedMetrics checks every Prometheus query of
// the dashboards (panels and variables) and every alert and recording rule
// against the metrics the consumer exports, and has promtool parse them all.
func TestPrometheusQueriesNameExportedMetrics(t *testing.T) {
	// The exported names do not depend on the server
	// (TestConsumerMetricNames compares them); the first one serves.
	m := consumerMetrics(t).series
	type expr struct{ where, text string }
	var exprs []expr
	for file, d := range loadDashboards(t) {
		for _, q := range d.queries(file) {
			if q.ds.Type == promDatasource {
				exprs = append(exprs, expr{q.where, q.text})
			}
		}
		for _, v := range d.Templating.List {
			if v.Datasource.Type == promDatasource {
				// label_values(metric, label) is Grafana's, not PromQL.
				lv := regexp.MustCompile(`^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`).FindStringSubmatch(v.Query.Query)
				if lv == nil {
					t.Errorf("%s: variable %s: query %q is not label_values(selector, label)", file, v.Name, v.Query.Query)
					continue
				}
				exprs = append(exprs, expr{fmt.Sprintf("%s: variable %s", filepath.Base(file), v.Name), fmt.Sprintf("count by (%s) (%s)", lv[2], lv[1])})
			}
		}
	}
	var rules struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert  string `json:"alert"`
				Record string `json:"record"`
				Expr   string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	b, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, expr{"alerts.yml: " + r.Alert + r.Record, r.Expr})
		}
	}
	usedAll := map[string]bool{}
	for _, e := range exprs {
		used, errs := checkPromQL(e.where, e.text, m)
		for _, msg := range errs {
			t.Error(msg)
		}
		if len(used) == 0 && !strings.Contains(e.text, "up{") {
			t.Errorf("%s: %q uses no consumer metric", e.where, e.text)
		}
		for _, u := range used {
			usedAll[u] = true
		}
	}
	t.Logf("%d queries and rules use %d exported series", len(exprs), len(usedAll))

	// promtool parses each expression as a recording rule.
	promtool := lookBinary(t, "promtool")
	var sb strings.Builder
	sb.WriteString("groups:\n  - name: dashboards\n    rules:\n")
	for i, e := range exprs {
		fmt.Fprintf(&sb, "      - record: dashboard:query_%d\n        expr: %q\n", i, grafanaVars.Replace(e.text))
	}
	path := filepath.Join(t.TempDir(), "dashboard_rules.yml")
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput() //nolint:gosec // Test tool.
	if err != nil {
		t.Fatalf("promtool check rules on the dashboard queries: %v\n%s", err, out)
	}
}

// TestCheckPromQLFindsMistakes makes sure the query check rejects what it
// is meant to reject.
func TestCheckPromQLFindsMistakes(t *testing.T) {
	m := exportedMetrics{}
	m.add("textpulse_records_written_total", 0, nil)
	m.add("textpulse_consumer_lag_records", 0, []string{"topic", "partition"})
	for _, tc := range []struct {
		name, expr string
		ok         bool
	}{
		{"known counter", `sum(rate(textpulse_records_written_total{job=~"$job"}[$__rate_interval]))`, true},
		{"grouping by a label of the metric", `sum by (topic, partition) (textpulse_consumer_lag_records)`, true},
		{"a string that looks like a metric", `textpulse_consumer_lag_records{topic="textpulse_nope"}`, true},
		{"unknown metric", `rate(textpulse_records_stored_total[5m])`, false},
		{"unknown label in a matcher", `textpulse_consumer_lag_records{topik="a"}`, false},
		{"unknown grouping label", `sum by (stage) (textpulse_consumer_lag_records)`, false},
		{"histogram series of a counter", `textpulse_records_written_total_bucket`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := checkPromQL("test", tc.expr, m)
			if (len(errs) == 0) != tc.ok {
				t.Fatalf("checkPromQL(%q) = %v, want ok=%v", tc.expr, errs, tc.ok)
			}
		})
	}
}

// lookBinary returns the path of a tool installed by scripts/tools.sh,
// skipping the test when it is missing (failing under
// TEXTPULSE_TEST_REQUIRE_SERVICES=1).
func lookBinary(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv(envRequire) == "1" {
		t.Fatalf("%s not found and %s=1: run scripts/tools.sh install", name, envRequire)
	}
	t.Skipf("%s not found; run scripts/tools.sh install", name)
	return ""
}

// clickhouseMacros turns the Grafana ClickHouse plugin's macros into plain
// SQL over the last day.
var clickhouseMacros = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`\$__timeFilter\((\w+)\)`), "$1 >= now() - INTERVAL 1 DAY AND $1 <= now() + INTERVAL 1 HOUR"},
	{regexp.MustCompile(`\$__timeInterval\((\w+)\)`), "toStartOfInterval(toDateTime($1), INTERVAL 60 second)"},
	{regexp.MustCompile(`\$__fromTime`), "(now() - INTERVAL 1 DAY)"},
	{regexp.MustCompile(`\$__toTime`), "now()"},
	{regexp.MustCompile(`\$__interval_s`), "60"},
}

// TestClickHousePanelsRunOnTheSchema runs every ClickHouse panel query, with
// the plugin's macros expanded, on each shared server (18.16 and 26.9), on
// the DDL rendered for its dialect in a database of its own, after
// inserting a few rows through the main table (the rollup is filled by its
// materialized view). Each query must run and return rows: a misspelt
// table or column, or a function the server lacks, fails.
func TestClickHousePanelsRunOnTheSchema(t *testing.T) {
	testenv.EachClickHouse(t, testClickHousePanelsRunOnTheSchema)
}

// testClickHousePanelsRunOnTheSchema is TestClickHousePanelsRunOnTheSchema
// on one server.
func testClickHousePanelsRunOnTheSchema(t *testing.T, srv testenv.ClickHouseServer) {
	ch := itest.NewClickHouse(t, srv.Addr)
	db := testenv.Name("panels")
	ch.DropDatabaseAtEnd(t, db)
	dialect := schemas.DialectLegacy
	if srv.Modern {
		dialect = schemas.DialectModern
	}
	ddl, err := schemas.Render(schemas.Options{Database: db, Dialect: dialect})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, s := range ddl {
		if err := ch.Conn.Exec(ctx, s.SQL); err != nil {
			t.Fatalf("ddl %s: %v\nSQL:\n%s", s.Name, err, s.SQL)
		}
	}
	now := time.Now().UTC().Add(-time.Hour).Format("2006-01-02 15:04:05")
	insert := `INSERT INTO ` + db + `.events
		(kafka_topic, kafka_partition, kafka_offset, kafka_timestamp, event_id, text, source, author, lang, created_at,
		 sentiment_label, sentiment_score, emotion_label, emotion_labels, emotion_scores, status, failed_stages) VALUES
		('events', 0, 1, '` + now + `', 'a', 'I love it', 'web', 'ann', 'en', '` + now + `', 'positive', 0.9, 'joy', ['joy','anger'], [0.8,0.2], 'ok', []),
		('events', 0, 2, '` + now + `', 'b', 'I hate it', 'app', 'bob', 'de', '` + now + `', 'negative', 0.8, 'anger', ['joy','anger'], [0.1,0.9], 'ok', []),
		('events', 1, 3, '` + now + `', 'c', 'meh', 'web', 'ann', 'en', '` + now + `', '', 0, '', [], [], 'partial', ['sentiment'])`
	// Through HTTP: 18.16 does not take inline VALUES over the native
	// protocol from this driver.
	if err := postHTTP(ctx, srv.HTTPEndpoint(t), insert); err != nil {
		t.Fatalf("insert: %v", err)
	}
	// The panels read the default database; here they read the test's.
	dbRe := regexp.MustCompile(`\btextpulse\.`)
	nPanels, unsupported := 0, 0
	for file, d := range loadDashboards(t) {
		for _, q := range d.queries(file) {
			if q.ds.Type != chDatasource {
				continue
			}
			// The plugin expands $__timeInterval to toStartOfInterval,
			// which 18.16 does not have (code 46, unknown function).
			if !srv.Modern && strings.Contains(q.text, "$__timeInterval") {
				unsupported++
				continue
			}
			sql := q.text
			for _, m := range clickhouseMacros {
				sql = m.re.ReplaceAllString(sql, m.repl)
			}
			if strings.Contains(sql, "$") {
				t.Errorf("%s: unexpanded macro or variable in %q", q.where, sql)
				continue
			}
			nPanels++
			n, err := countRows(ctx, ch, dbRe.ReplaceAllString(sql, db+"."))
			switch {
			case err != nil:
				t.Errorf("%s: %v\nSQL:\n%s", q.where, err, sql)
			case n == 0:
				t.Errorf("%s: no rows over the sample data\nSQL:\n%s", q.where, sql)
			}
		}
	}
	if nPanels == 0 {
		t.Fatal("no ClickHouse panels")
	}
	t.Logf("%d ClickHouse panel queries ran on the %s DDL; %d use $__timeInterval, which needs a server newer than 18.16",
		nPanels, dialect, unsupported)
}

// postHTTP runs one statement through the HTTP interface at base.
func postHTTP(ctx context.Context, base, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base, strings.NewReader(sql))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("http %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// countRows runs a query and returns how many rows it returned.
func countRows(ctx context.Context, ch *itest.ClickHouse, sql string) (int, error) {
	rows, err := ch.Conn.Query(ctx, sql)
	if err != nil {
		return 0, err
	}
	defer func() { _ = rows.Close() }()
	n := 0
	for rows.Next() {
		n++
	}
	return n, rows.Err()
}

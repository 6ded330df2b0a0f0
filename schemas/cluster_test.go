package schemas_test

import (
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/textpulse/textpulse/internal/testenv"
	"github.com/textpulse/textpulse/schemas"
)

// clusterStatements returns every DDL statement rendered for o: bootstrap
// and migrations.
func clusterStatements(t *testing.T, o schemas.Options) []schemas.Statement {
	t.Helper()
	boot, err := schemas.Bootstrap(o)
	if err != nil {
		t.Fatal(err)
	}
	migs, err := schemas.Migrations(o)
	if err != nil {
		t.Fatal(err)
	}
	out := boot
	for _, m := range migs {
		out = append(out, m.Statements...)
	}
	return out
}

// TestClusterRendering checks what a sharded, replicated deployment relies
// on, in both dialects: every statement runs on the whole cluster, every
// table that stores rows is replicated, the sink inserts into a Distributed
// table over the local table that shards by the Kafka coordinates, and the
// view reads and writes local tables.
func TestClusterRendering(t *testing.T) {
	for _, d := range []schemas.Dialect{schemas.DialectLegacy, schemas.DialectModern} {
		t.Run(d.String(), func(t *testing.T) {
			o := schemas.Options{Database: "db", Table: "ev", Cluster: "c1", Dialect: d, DedupWindow: 77}
			stmts := clusterStatements(t, o)
			engineRe := regexp.MustCompile(`ENGINE = (\w+)\(([^\n]*)\)`)
			byName := map[string]string{}
			for _, s := range stmts {
				byName[s.Name] = s.SQL
				first := strings.SplitN(s.SQL, "\n", 2)[0]
				if !strings.HasSuffix(first, " ON CLUSTER c1") {
					t.Errorf("%s does not run ON CLUSTER c1: %q", s.Name, first)
				}
				m := engineRe.FindStringSubmatch(s.SQL)
				if m == nil {
					continue
				}
				if m[1] != "Distributed" && !strings.HasPrefix(m[1], "Replicated") {
					t.Errorf("%s uses engine %s, want a Replicated or Distributed engine", s.Name, m[1])
				}
			}
			for name, want := range map[string]string{
				"create_table": "CREATE TABLE IF NOT EXISTS db.ev_local ON CLUSTER c1\n",
				"create_distributed_table": "CREATE TABLE IF NOT EXISTS db.ev ON CLUSTER c1\nAS db.ev_local\n" +
					"ENGINE = Distributed('c1', 'db', 'ev_local', cityHash64(kafka_topic, kafka_partition, kafka_offset))",
				"create_rollup_table":             "ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/db/ev_per_minute_local', '{replica}', (events",
				"create_rollup_distributed_table": "ENGINE = Distributed('c1', 'db', 'ev_per_minute_local', rand())",
				"create_rollup_view":              "TO db.ev_per_minute_local\n",
				"create_migrations_table":         "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/db/schema_migrations', '{replica}', applied_at)",
			} {
				if !strings.Contains(byName[name], want) {
					t.Errorf("%s lacks %q:\n%s", name, want, byName[name])
				}
			}
			if !strings.Contains(byName["create_table"],
				"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/ev_local', '{replica}', ingested_at)") {
				t.Errorf("main table is not a ReplicatedReplacingMergeTree on its own path:\n%s", byName["create_table"])
			}
			if !strings.Contains(byName["create_rollup_view"], "FROM db.ev_local\n") {
				t.Errorf("view does not read the local table:\n%s", byName["create_rollup_view"])
			}
			wantDedup := d == schemas.DialectModern
			if got := strings.Contains(byName["create_table"], "replicated_deduplication_window = 77"); got != wantDedup {
				t.Errorf("replicated_deduplication_window rendered: %v, want %v", got, wantDedup)
			}
			if strings.Contains(byName["create_table"], "non_replicated_deduplication_window") {
				t.Error("a replicated table carries non_replicated_deduplication_window")
			}
			if got := o.InsertTable(); got != "ev" {
				t.Errorf("InsertTable() = %q, want the Distributed table ev", got)
			}
			// Queries read the Distributed tables, by the plain names.
			qs, err := schemas.Queries(o)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range qs {
				if strings.Contains(q.SQL, "_local") {
					t.Errorf("query %s reads a local table", q.Name)
				}
			}
		})
	}
}

// TestClusterDDLParsesOnChdb parses every modern cluster statement with
// EXPLAIN AST in chdb. The statements cannot run there (no ZooKeeper, no
// remote_servers), but a syntax error in any of them fails this test.
func TestClusterDDLParsesOnChdb(t *testing.T) {
	var steps []map[string]string
	for _, o := range []schemas.Options{
		{Cluster: "main", Dialect: schemas.DialectModern},
		{Database: "analytics", Table: "tweets", TTLDays: 30, Cluster: "prod", ZooKeeperPath: "/ch/{shard}/{table}",
			ReplicaName: "{host}", Dialect: schemas.DialectModern},
	} {
		for _, s := range clusterStatements(t, o) {
			steps = append(steps, map[string]string{"name": o.Cluster + "/" + s.Name, "sql": "EXPLAIN AST " + s.SQL})
		}
	}
	// A statement with a syntax error must be reported, or the test
	// above proves nothing.
	steps = append(steps, map[string]string{"name": "control", "sql": "EXPLAIN AST CREATE TABLE x ON CLUSTER c ENGINE = Distributed('c', 'd', 't') oops"})
	results := runChdbPlan(t, steps, len(steps))
	for _, r := range results {
		if r.Name == "control" {
			if !strings.Contains(r.Error, "Syntax error") {
				t.Errorf("control statement: error %q, want a syntax error", r.Error)
			}
			continue
		}
		if r.Error != "" {
			t.Errorf("%s: %s", r.Name, r.Error)
		}
	}
}

// TestClusterDDLParsesOnServer sends every cluster statement of the
// server's dialect to each shared server. Neither has distributed DDL (no
// ZooKeeper or Keeper, no remote_servers), so each statement fails, but the
// failure must come after parsing: a syntax error (exception code 62) fails
// this test.
func TestClusterDDLParsesOnServer(t *testing.T) {
	testenv.EachClickHouse(t, testClusterDDLParsesOnServer)
}

// codeSyntaxError is the server's exception code for a statement that does
// not parse.
const codeSyntaxError = 62

// testClusterDDLParsesOnServer is TestClusterDDLParsesOnServer on one server.
func testClusterDDLParsesOnServer(t *testing.T, srv testenv.ClickHouseServer) {
	base := srv.HTTPEndpoint(t)
	client := &http.Client{Timeout: time.Minute}
	o := schemas.Options{Database: "textpulse_cluster_parse", Cluster: "main", Dialect: dialectOf(srv)}
	stmts := clusterStatements(t, o)
	stmts = append(stmts, schemas.Statement{Name: "control", SQL: "CREATE TABLE x ON CLUSTER main ENGINE = Distributed('c', 'd', 't') oops"})
	codes := map[int]int{}
	for _, s := range stmts {
		_, err := postQuery(t.Context(), client, base, s.SQL)
		var se *serverError
		if !errors.As(err, &se) {
			t.Errorf("%s: %v; want an error answer after parsing (no distributed DDL here)", s.Name, err)
			continue
		}
		if se.Code == 0 {
			t.Errorf("%s: an error answer without an exception code: %v", s.Name, se)
			continue
		}
		syntax := se.Code == codeSyntaxError
		if s.Name == "control" {
			if !syntax {
				t.Errorf("control statement: %v, want a syntax error", err)
			}
			continue
		}
		codes[se.Code]++
		if syntax {
			t.Errorf("%s: %v", s.Name, err)
		}
	}
	t.Logf("%d %s cluster statements parsed; exception codes after parsing: %v", len(stmts)-1, o.Dialect, codes)
}

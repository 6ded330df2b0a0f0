package clickhouse_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/textpulse/textpulse/internal/itest"
	"github.com/textpulse/textpulse/sink/clickhouse"
)

// TestClusterMode runs the sink in cluster mode against a real cluster of
// two shards (one clickhouse-server each, ZooKeeper, distributed DDL): the
// migration creates the replicated local tables, the Distributed tables and
// the view on every node through ON CLUSTER, a sink on the other node finds
// the migration recorded, an INSERT through the Distributed table has
// reached both shards when Write returns, and a retried batch lands on the
// shards that hold its first copy, where it collapses.
func TestClusterMode(t *testing.T) {
	const cluster = "tp_cluster"
	nodes := itest.StartClickHouseCluster(t, cluster, 2)
	ctx := t.Context()
	open := func(addr string) (*clickhouse.Sink, clickhouse.Config) {
		cfg := clickhouse.DefaultConfig()
		cfg.Addr = []string{addr}
		cfg.Database = "clustertest"
		cfg.Cluster = cluster
		cfg.RetryInitial, cfg.RetryMax = 10*time.Millisecond, 100*time.Millisecond
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		s, err := connect(ctx, cfg, slog.New(slog.NewTextHandler(t.Output(), nil)), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s, cfg
	}
	s1, cfg := open(nodes[0].Addr)
	db := cfg.Database
	start := time.Now()
	applied, err := s1.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) == 0 {
		t.Fatal("migrate applied nothing")
	}
	t.Logf("ON CLUSTER migration on %d nodes (ClickHouse %s) took %s", len(nodes), s1.Version(), time.Since(start).Round(time.Millisecond))

	want := map[string]string{
		"events_local":            "ReplicatedReplacingMergeTree",
		"events":                  "Distributed",
		"events_per_minute_local": "ReplicatedSummingMergeTree",
		"events_per_minute":       "Distributed",
		"events_per_minute_mv":    "MaterializedView",
		"schema_migrations":       "ReplicatedReplacingMergeTree",
	}
	for _, n := range nodes {
		got := tableEngines(t, n, db)
		for table, engine := range want {
			if got[table] != engine {
				t.Errorf("node %d: %s.%s has engine %q, want %s", n.Shard, db, table, got[table], engine)
			}
		}
	}

	// The migration is recorded for the whole cluster.
	s2, _ := open(nodes[1].Addr)
	itest.Eventually(t, 30*time.Second, func() (bool, string) {
		v, latest, err := s2.SchemaVersion(ctx)
		if err != nil {
			return false, err.Error()
		}
		return v == latest, fmt.Sprintf("node 2 sees schema version %d of %d", v, latest)
	})
	if again, err := s2.Migrate(ctx); err != nil || len(again) != 0 {
		t.Fatalf("migrate through node 2 applied %v (%v), want nothing", again, err)
	}

	const rows = 1000
	b := testBatch("topic-a", rows, 0)
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := s1.Write(wctx, b); err != nil {
		t.Fatal(err)
	}
	// insert_distributed_sync: the rows are on the shards when Write
	// returns, spread over both.
	first := localCounts(t, nodes, db)
	total := uint64(0)
	for shard, n := range first {
		if n == 0 {
			t.Errorf("shard %d got no rows: the Distributed table does not spread them", shard)
		}
		total += n
	}
	if total != rows {
		t.Fatalf("shards hold %d rows right after Write, want %d: %v", total, rows, first)
	}
	var rolled uint64
	if err := s1.Conn().QueryRow(ctx, "SELECT toUInt64(sum(events)) FROM "+db+".events_per_minute").Scan(&rolled); err != nil {
		t.Fatal(err)
	}
	if rolled != rows {
		t.Errorf("rollup through the Distributed table counts %d events, want %d", rolled, rows)
	}

	// A retry of the batch, through the other node, goes to the same
	// shards and collapses there.
	if err := s2.Write(wctx, b); err != nil {
		t.Fatal(err)
	}
	sum := uint64(0)
	for _, n := range nodes {
		var count, distinct, final uint64
		if err := n.Conn.QueryRow(ctx, "SELECT count(), uniqExact(kafka_topic, kafka_partition, kafka_offset) FROM "+db+".events_local").Scan(&count, &distinct); err != nil {
			t.Fatal(err)
		}
		if err := n.Conn.QueryRow(ctx, "SELECT count() FROM "+db+".events_local FINAL").Scan(&final); err != nil {
			t.Fatal(err)
		}
		if distinct != first[n.Shard] || final != first[n.Shard] {
			t.Errorf("shard %d: %d distinct records and %d under FINAL after the retry, want the %d of the first write (copies count %d)",
				n.Shard, distinct, final, first[n.Shard], count)
		}
		sum += distinct
	}
	if sum != rows {
		t.Errorf("%d distinct records over the shards, want %d: a record is on two shards", sum, rows)
	}
	var viaDistributed uint64
	if err := s1.Conn().QueryRow(ctx, "SELECT uniqExact(kafka_topic, kafka_partition, kafka_offset) FROM "+db+".events").Scan(&viaDistributed); err != nil {
		t.Fatal(err)
	}
	if viaDistributed != rows {
		t.Errorf("the Distributed table reads %d distinct records, want %d", viaDistributed, rows)
	}
}

func tableEngines(t *testing.T, n *itest.ClusterNode, db string) map[string]string {
	t.Helper()
	rows, err := n.Conn.Query(context.Background(), "SELECT name, engine FROM system.tables WHERE database = ?", db)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	out := map[string]string{}
	for rows.Next() {
		var name, engine string
		if err := rows.Scan(&name, &engine); err != nil {
			t.Fatal(err)
		}
		out[name] = engine
	}
	return out
}

// localCounts returns the rows in each shard's local table.
func localCounts(t *testing.T, nodes []*itest.ClusterNode, db string) map[int]uint64 {
	t.Helper()
	out := map[int]uint64{}
	for _, n := range nodes {
		var c uint64
		if err := n.Conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".events_local").Scan(&c); err != nil {
			t.Fatal(err)
		}
		out[n.Shard] = c
	}
	return out
}

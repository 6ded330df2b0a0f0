package clickhouse_test

import (
	"fmt"
	"testing"

	"github.com/textpulse/textpulse/internal/testenv"
	"github.com/textpulse/textpulse/schemas"
)

func TestMigrateUpgradesVersion1Tables(t *testing.T) {
	testenv.EachClickHouse(t, testMigrateUpgradesVersion1Tables)
}

// testMigrateUpgradesVersion1Tables is TestMigrateUpgradesVersion1Tables on
// one server: tables in the shape migration 1 gave them before migration 2
// existed (no revision column, unsigned rollup counters, a view without
// the revision filter), holding rows, are upgraded by Migrate: the rows and
// the rollup's counts stay, and the consumer's new rows are counted.
func testMigrateUpgradesVersion1Tables(t *testing.T, srv testenv.ClickHouseServer) {
	s, cfg := openTestSink(t, srv)
	ctx := t.Context()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	db := cfg.Database
	// Back to the version 1 shape, as a table created by an older release.
	for _, q := range []string{
		"DROP TABLE " + db + ".events_per_minute_mv",
		"ALTER TABLE " + db + ".events DROP COLUMN revision",
		"ALTER TABLE " + db + ".events_per_minute MODIFY COLUMN events UInt64, MODIFY COLUMN sentiment_scored UInt64, MODIFY COLUMN partial UInt64",
		"CREATE MATERIALIZED VIEW " + db + ".events_per_minute_mv TO " + db + ".events_per_minute AS SELECT " +
			"toStartOfMinute(created_at) AS minute, kafka_topic, source, lang, sentiment_label, emotion_label, count() AS events, " +
			"sumIf(sentiment_score, sentiment_label != '') AS sentiment_score_sum, countIf(sentiment_label != '') AS sentiment_scored, " +
			"countIf(status = 'partial') AS partial FROM " + db + ".events GROUP BY minute, kafka_topic, source, lang, sentiment_label, emotion_label",
		"DROP TABLE " + db + ".schema_migrations",
	} {
		if err := s.Conn().Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// Only migration 1 is recorded.
	boot, err := schemas.Bootstrap(s.Options())
	if err != nil {
		t.Fatal(err)
	}
	migs, err := schemas.Migrations(s.Options())
	if err != nil {
		t.Fatal(err)
	}
	rec, err := schemas.RecordMigrationSQL(s.Options(), migs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range append(boot, schemas.Statement{Name: "record 1", SQL: rec}) {
		if err := s.Conn().Exec(ctx, st.SQL); err != nil {
			t.Fatalf("%s: %v", st.Name, err)
		}
	}
	applied, err := s.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 1 || applied[0] != "2_row_revisions" {
		t.Fatalf("applied %v, want [2_row_revisions]", applied)
	}
	if err := s.Conn().Exec(ctx, "INSERT INTO "+db+".events (kafka_topic, kafka_partition, kafka_offset, kafka_timestamp, text, created_at) "+
		"SELECT 't', 0, 1, now(), 'old row', now()"); err != nil {
		t.Fatal(err)
	}
	var rev uint32
	var typ string
	if err := s.Conn().QueryRow(ctx, "SELECT revision FROM "+db+".events WHERE kafka_offset = 1").Scan(&rev); err != nil {
		t.Fatalf("revision column after the upgrade: %v", err)
	}
	if err := s.Conn().QueryRow(ctx, fmt.Sprintf("SELECT type FROM system.columns WHERE database = '%s' AND table = 'events_per_minute' AND name = 'events'", db)).Scan(&typ); err != nil {
		t.Fatal(err)
	}
	var events int64
	if err := s.Conn().QueryRow(ctx, "SELECT sum(events) FROM "+db+".events_per_minute").Scan(&events); err != nil {
		t.Fatal(err)
	}
	if rev != 0 || typ != "Int64" || events != 1 {
		t.Fatalf("after the upgrade: revision %d, rollup events type %s, rollup events %d; want 0, Int64, 1", rev, typ, events)
	}
}

package clickhouse_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/textpulse/textpulse/internal/testenv"
	"github.com/textpulse/textpulse/processor"
	"github.com/textpulse/textpulse/schemas"
	"github.com/textpulse/textpulse/sink/clickhouse"
)

// openAnalystSink opens a sink on addr for the database db with edit applied
// to a test configuration, and drops the database at the end of t.
func openAnalystSink(t *testing.T, addr, db string, edit func(*clickhouse.Config)) (*clickhouse.Sink, error) {
	t.Helper()
	s, err := openSharedSink(t, addr, db, edit)
	if err == nil {
		t.Cleanup(func() { _ = s.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })
	}
	return s, err
}

// openSharedSink is openAnalystSink without the drop, for a database that
// another sink of the test owns.
func openSharedSink(t *testing.T, addr, db string, edit func(*clickhouse.Config)) (*clickhouse.Sink, error) {
	t.Helper()
	cfg := clickhouse.DefaultConfig()
	cfg.Addr = []string{addr}
	cfg.Database = db
	cfg.RetryInitial = 10 * time.Millisecond
	cfg.RetryMax = 50 * time.Millisecond
	edit(&cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := connect(t.Context(), cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, nil
}

// analystRecord is one seeded event: embeddings are unit vectors, so that e7
// is the nearest neighbour of e1, then e2, e5, and e3 and e4 at distance 1.
type analystRecord struct {
	id        string
	embedding []float32
	metadata  string
}

func analystBatch(topic string, offset int64, recs []analystRecord) *processor.Batch {
	b := processor.NewBatch(fmt.Sprintf("%s-%d", topic, offset))
	now := time.Now().UTC().Truncate(time.Millisecond)
	for i, a := range recs {
		r := processor.Record{Topic: topic, Partition: 0, Offset: offset + int64(i), Timestamp: now, Enrichment: &processor.Enrichment{}}
		r.ID, r.Text, r.Source, r.Lang, r.CreatedAt = a.id, "text of "+a.id, "web", "en", now
		r.Metadata = a.metadata
		if a.embedding != nil {
			r.Embedding, r.EmbeddingModel = a.embedding, "m"
		} else {
			r.FailedStages = []string{"embedding"}
		}
		b.Append(r)
	}
	return b
}

func analystRecords() []analystRecord {
	return []analystRecord{
		{"e1", []float32{1, 0, 0}, `{"channel":"web","ticket":5531,"tags":["sync","bug"]}`},
		{"e2", []float32{0.8, 0.6, 0}, `{"channel":"web"}`},
		{"e3", []float32{0, 1, 0}, `{"channel":"app","ticket":7}`},
		{"e4", []float32{0, 0, 1}, ""},
		{"e5", []float32{0.6, 0, 0.8}, `{"channel":"app","nested":{"n":3.5}}`},
		{"e6", nil, `{"channel":"web"}`},
		{"e7", []float32{0.96, 0.28, 0}, `{"channel":"email","ticket":12}`},
		// An embedding of another length stays out of the index table.
		{"e8", []float32{0.6, 0.8}, ""},
	}
}

// queryRows runs sql and returns every row as a slice of values.
func queryRows(t *testing.T, conn driver.Conn, sql string) [][]any {
	t.Helper()
	rows, err := conn.Query(t.Context(), sql)
	if err != nil {
		t.Fatalf("query %s: %v", sql, err)
	}
	defer func() { _ = rows.Close() }()
	types := rows.ColumnTypes()
	var out [][]any
	for rows.Next() {
		dest := make([]any, len(types))
		for i, ct := range types {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		row := make([]any, len(dest))
		for i, d := range dest {
			row[i] = reflect.ValueOf(d).Elem().Interface()
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func exampleQuery(t *testing.T, o schemas.Options, name string) string {
	t.Helper()
	qs, err := schemas.Queries(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if q.Name == name {
			return q.SQL
		}
	}
	t.Fatalf("no example query %s", name)
	return ""
}

// TestVectorIndexAndJSONMetadataOnModernServer writes seeded events through
// the sink into tables with JSON metadata and the vector index on the modern
// server, and runs the example nearest-neighbour and metadata queries.
func TestVectorIndexAndJSONMetadataOnModernServer(t *testing.T) {
	addr := testenv.Lookup(t, testenv.EnvClickHouseModern)
	s, err := openAnalystSink(t, addr, testenv.Name("sinkvec"), func(c *clickhouse.Config) {
		c.MetadataType, c.VectorIndex, c.EmbeddingDims = "json", "hnsw", 3
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	b := analystBatch("tp.vec", 0, analystRecords())
	// The second write is a retry: the server drops it by its deduplication
	// token in the main table and in the embeddings table.
	for range 2 {
		if err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	o := s.Options().WithDefaults()
	table := o.Database + "." + o.Table
	t.Run("metadata round trip", func(t *testing.T) {
		got := map[string]string{}
		for _, r := range queryRows(t, s.Conn(), "SELECT event_id, toString(metadata) FROM "+table) {
			got[r[0].(string)] = r[1].(string)
		}
		for _, rec := range analystRecords() {
			want := rec.metadata
			if want == "" {
				want = "{}"
			}
			var w, g any
			if err := json.Unmarshal([]byte(want), &w); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(got[rec.id]), &g); err != nil {
				t.Fatalf("metadata of %s: %q is not JSON: %v", rec.id, got[rec.id], err)
			}
			if !reflect.DeepEqual(w, g) {
				t.Errorf("metadata of %s = %s, want %s", rec.id, got[rec.id], want)
			}
		}
		rows := queryRows(t, s.Conn(), "SELECT toString(metadata.nested.n) FROM "+table+" WHERE event_id = 'e5'")
		if len(rows) != 1 || rows[0][0] != "3.5" {
			t.Errorf("metadata.nested.n of e5 = %v, want 3.5", rows)
		}
	})
	t.Run("embeddings table", func(t *testing.T) {
		rows := queryRows(t, s.Conn(), "SELECT groupArray(event_id) FROM (SELECT event_id FROM "+
			o.Database+"."+o.EmbeddingsTable()+" ORDER BY event_id)")
		if got := fmt.Sprint(rows[0][0]); got != "[e1 e2 e3 e4 e5 e7]" {
			t.Errorf("indexed events %s, want e1 e2 e3 e4 e5 e7 (no empty or 2-element embedding)", got)
		}
	})
	nn := strings.ReplaceAll(exampleQuery(t, o, "nearest_neighbours"), schemas.EventIDPlaceholder, "e1")
	t.Run("nearest neighbours", func(t *testing.T) {
		var ids []string
		for _, r := range queryRows(t, s.Conn(), nn) {
			ids = append(ids, r[0].(string))
		}
		if got := strings.Join(ids, " "); got != "e7 e2 e5 e3 e4" {
			t.Errorf("nearest neighbours of e1: %s, want e7 e2 e5 e3 e4", got)
		}
	})
	t.Run("nearest neighbours use the index", func(t *testing.T) {
		for _, tc := range []struct {
			settings string
			want     bool
		}{{"", true}, {" SETTINGS query_plan_try_use_vector_search = 0", false}} {
			var plan strings.Builder
			for _, r := range queryRows(t, s.Conn(), "EXPLAIN indexes = 1 "+nn+tc.settings) {
				plan.WriteString(r[0].(string) + "\n")
			}
			used := strings.Contains(plan.String(), "Name: embedding_idx") &&
				strings.Contains(plan.String(), "Description: vector_similarity")
			if used != tc.want {
				t.Errorf("EXPLAIN indexes = 1%s: index used %v, want %v:\n%s", tc.settings, used, tc.want, plan.String())
			}
		}
	})
	t.Run("metadata query", func(t *testing.T) {
		var got []string
		for _, r := range queryRows(t, s.Conn(), exampleQuery(t, o, "metadata_channels")) {
			got = append(got, fmt.Sprintf("%v:%v/%v", r[0], r[1], r[2]))
		}
		// channel:with_ticket/events
		if g := strings.Join(got, " "); g != "web:1/3 :0/2 app:1/2 email:1/1" {
			t.Errorf("metadata_channels = %s, want web:1/3 :0/2 app:1/2 email:1/1", g)
		}
	})
}

// TestAnalystOptionsOnExistingTables checks what Migrate does when the
// options change under existing tables: the vector index is added, a
// different metadata type is refused.
func TestAnalystOptionsOnExistingTables(t *testing.T) {
	addr := testenv.Lookup(t, testenv.EnvClickHouseModern)
	ctx := t.Context()
	db := testenv.Name("sinkopts")
	plain, err := openAnalystSink(t, addr, db, func(*clickhouse.Config) {})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	t.Run("json metadata on a string table", func(t *testing.T) {
		s, err := openSharedSink(t, addr, db, func(c *clickhouse.Config) { c.MetadataType = "json" })
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Migrate(ctx); !errors.Is(err, clickhouse.ErrMetadataType) || !strings.Contains(err.Error(), "is String") {
			t.Fatalf("Migrate = %v, want %v naming the String column", err, clickhouse.ErrMetadataType)
		}
	})
	t.Run("vector index added to an existing table", func(t *testing.T) {
		s, err := openSharedSink(t, addr, db, func(c *clickhouse.Config) { c.VectorIndex, c.EmbeddingDims = "hnsw", 3 })
		if err != nil {
			t.Fatal(err)
		}
		applied, err := s.Migrate(ctx)
		if err != nil || len(applied) != 0 {
			t.Fatalf("Migrate = %v, %v; want no migration and no error", applied, err)
		}
		if err := s.Write(ctx, analystBatch("tp.opts", 0, analystRecords())); err != nil {
			t.Fatal(err)
		}
		rows := queryRows(t, s.Conn(), "SELECT count() FROM "+db+"."+s.Options().EmbeddingsTable())
		if got := rows[0][0]; got != uint64(6) {
			t.Errorf("indexed rows %v, want 6", got)
		}
		if _, err := s.Migrate(ctx); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
	})
	t.Run("vector index of another dimension", func(t *testing.T) {
		s, err := openSharedSink(t, addr, db, func(c *clickhouse.Config) { c.VectorIndex, c.EmbeddingDims = "hnsw", 4 })
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Migrate(ctx); !errors.Is(err, clickhouse.ErrVectorIndex) || !strings.Contains(err.Error(), "'cosineDistance', 3)") {
			t.Fatalf("Migrate = %v, want %v naming the existing index", err, clickhouse.ErrVectorIndex)
		}
	})
}

// TestAnalystOptionsRefusedOnLegacyServer checks that Connect names the option
// that ClickHouse 18.16 cannot hold.
func TestAnalystOptionsRefusedOnLegacyServer(t *testing.T) {
	addr := testenv.ClickHouseAddr(t)
	for _, tc := range []struct {
		name, option string
		edit         func(*clickhouse.Config)
	}{
		{"json metadata", "MetadataType", func(c *clickhouse.Config) { c.MetadataType = "json" }},
		{"vector index", "VectorIndex", func(c *clickhouse.Config) { c.VectorIndex, c.EmbeddingDims = "hnsw", 3 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := openAnalystSink(t, addr, testenv.Name("sinklegacy"), tc.edit)
			var oe *schemas.OptionError
			if !errors.As(err, &oe) || oe.Option != tc.option || !strings.Contains(err.Error(), "18.16") {
				t.Fatalf("Connect = %v, want an option error for %s naming the server version", err, tc.option)
			}
		})
	}
}

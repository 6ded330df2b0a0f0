package schemas_test

import (
	"encoding/json"
	"errors"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/textpulse/textpulse/schemas"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.sql from the current templates")

// goldenCases are the option sets whose rendering is kept in testdata.
func goldenCases() []struct {
	file string
	opts schemas.Options
} {
	custom := schemas.Options{Database: "analytics", Table: "tweets", TTLDays: 90, DedupWindow: 250}
	legacyCustom, modernCustom := custom, custom
	legacyCustom.Dialect = schemas.DialectLegacy
	modernCustom.Dialect = schemas.DialectModern
	cluster := schemas.Options{Cluster: "analytics_cluster"}
	legacyCluster, modernCluster := cluster, cluster
	legacyCluster.Dialect = schemas.DialectLegacy
	modernCluster.Dialect = schemas.DialectModern
	clusterCustom := schemas.Options{Database: "analytics", Table: "tweets", TTLDays: 90, DedupWindow: 250,
		Cluster: "prod", ZooKeeperPath: "/ch/{shard}/{database}/{table}", MigrationsZooKeeperPath: "/ch/global/{table}",
		ReplicaName: "{host}", Dialect: schemas.DialectModern}
	return []struct {
		file string
		opts schemas.Options
	}{
		{"legacy_default", schemas.Options{Dialect: schemas.DialectLegacy}},
		{"modern_default", schemas.Options{Dialect: schemas.DialectModern}},
		{"legacy_custom", legacyCustom},
		{"modern_custom", modernCustom},
		{"legacy_cluster", legacyCluster},
		{"modern_cluster", modernCluster},
		{"modern_cluster_custom", clusterCustom},
		{"modern_analyst", schemas.Options{Database: "analytics", Table: "tweets", TTLDays: 90, Dialect: schemas.DialectModern,
			MetadataType: schemas.MetadataJSON, VectorIndex: schemas.VectorIndexHNSW, EmbeddingDims: 384}},
		{"modern_vector_l2", schemas.Options{Dialect: schemas.DialectModern,
			VectorIndex: schemas.VectorIndexHNSW, VectorDistance: schemas.DistanceL2, EmbeddingDims: 1536}},
	}
}

// renderAll renders everything the package produces for o as one SQL file.
func renderAll(t *testing.T, o schemas.Options) string {
	t.Helper()
	var b strings.Builder
	boot, err := schemas.Bootstrap(o)
	if err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	for _, s := range boot {
		b.WriteString("-- bootstrap: " + s.Name + "\n" + s.SQL + ";\n\n")
	}
	migs, err := schemas.Migrations(o)
	if err != nil {
		t.Fatalf("Migrations: %v", err)
	}
	for _, m := range migs {
		for _, s := range m.Statements {
			b.WriteString("-- migration " + strconv.Itoa(m.Version) + " " + m.Name + ": " + s.Name + "\n" + s.SQL + ";\n\n")
		}
		rec, err := schemas.RecordMigrationSQL(o, m)
		if err != nil {
			t.Fatalf("RecordMigrationSQL: %v", err)
		}
		b.WriteString("-- record migration " + strconv.Itoa(m.Version) + "\n" + rec + ";\n\n")
	}
	applied, err := schemas.AppliedVersionsSQL(o)
	if err != nil {
		t.Fatalf("AppliedVersionsSQL: %v", err)
	}
	b.WriteString("-- applied versions\n" + applied + ";\n\n")
	qs, err := schemas.Queries(o)
	if err != nil {
		t.Fatalf("Queries: %v", err)
	}
	for _, q := range qs {
		b.WriteString("-- query: " + q.Name + "\n" + q.SQL + ";\n\n")
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.file, func(t *testing.T) {
			got := renderAll(t, tc.opts)
			path := filepath.Join("testdata", tc.file+".golden.sql")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file (regenerate with go test ./schemas -run TestGolden -update): %v", err)
			}
			if got != string(want) {
				line, g, w := firstDiff(got, string(want))
				t.Errorf("rendering differs from %s at line %d:\n got: %q\nwant: %q\nrun go test ./schemas -run TestGolden -update and review the diff",
					path, line, g, w)
			}
		})
	}
}

// firstDiff returns the first line (1-based) where got and want differ, and
// both lines there.
func firstDiff(got, want string) (int, string, string) {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return i + 1, gl, wl
		}
	}
	return 0, "", ""
}

func TestRenderDialectDifferences(t *testing.T) {
	legacyOnly := []string{" DateTime,", "DEFAULT now()"}
	modernOnly := []string{"CODEC(", "LowCardinality(String)", "DateTime64(3)", "COMMENT '",
		"non_replicated_deduplication_window = ", "Map(String, Float32) ALIAS", "now64(3)"}
	for _, tc := range []struct {
		name    string
		opts    schemas.Options
		present []string
		absent  []string
	}{
		{"legacy", schemas.Options{Dialect: schemas.DialectLegacy, TTLDays: 7}, legacyOnly, append(modernOnly, "TTL ")},
		{"modern", schemas.Options{Dialect: schemas.DialectModern}, modernOnly, []string{"TTL ", " DateTime,\n    event_id"}},
		{"modern with ttl", schemas.Options{Dialect: schemas.DialectModern, TTLDays: 7},
			[]string{"TTL toDateTime(created_at) + INTERVAL 7 DAY"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stmts, err := schemas.Render(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var all strings.Builder
			for _, s := range stmts {
				all.WriteString(s.SQL + "\n")
				if strings.HasSuffix(strings.TrimSpace(s.SQL), ";") {
					t.Errorf("statement %s ends with a semicolon", s.Name)
				}
				if !strings.Contains(s.SQL, "IF NOT EXISTS") {
					t.Errorf("statement %s is not idempotent:\n%s", s.Name, s.SQL)
				}
			}
			for _, p := range tc.present {
				if !strings.Contains(all.String(), p) {
					t.Errorf("missing %q", p)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(all.String(), a) {
					t.Errorf("unexpected %q", a)
				}
			}
		})
	}
}

func TestRenderOrderAndNames(t *testing.T) {
	for _, d := range []schemas.Dialect{schemas.DialectLegacy, schemas.DialectModern} {
		t.Run(d.String(), func(t *testing.T) {
			stmts, err := schemas.Render(schemas.Options{Database: "db1", Table: "tbl", Dialect: d})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range stmts {
				names = append(names, s.Name)
			}
			want := []string{"create_database", "create_table", "create_rollup_table", "create_rollup_view"}
			if !slices.Equal(names, want) {
				t.Fatalf("names = %v, want %v", names, want)
			}
			prefixes := []string{
				"CREATE DATABASE IF NOT EXISTS db1",
				"CREATE TABLE IF NOT EXISTS db1.tbl\n",
				"CREATE TABLE IF NOT EXISTS db1.tbl_per_minute\n",
				"CREATE MATERIALIZED VIEW IF NOT EXISTS db1.tbl_per_minute_mv\nTO db1.tbl_per_minute\n",
			}
			for i, p := range prefixes {
				if !strings.HasPrefix(stmts[i].SQL, p) {
					t.Errorf("%s starts with %q, want %q", stmts[i].Name, firstLine(stmts[i].SQL), p)
				}
			}
		})
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// columnLine matches a column definition line of the rendered CREATE TABLE.
var columnLine = regexp.MustCompile(`^    ([a-z_]+) (\S+)`)

func TestInsertColumnsMatchTable(t *testing.T) {
	for _, d := range []schemas.Dialect{schemas.DialectLegacy, schemas.DialectModern} {
		t.Run(d.String(), func(t *testing.T) {
			stmts, err := schemas.Render(schemas.Options{Dialect: d})
			if err != nil {
				t.Fatal(err)
			}
			var cols []string
			for _, line := range strings.Split(stmts[1].SQL, "\n") {
				if m := columnLine.FindStringSubmatch(line); m != nil {
					cols = append(cols, m[1])
				}
			}
			want := append(schemas.InsertColumns(), "ingested_at")
			if d == schemas.DialectModern {
				want = append(want, "emotion")
			}
			if !slices.Equal(cols, want) {
				t.Errorf("table columns = %v\nwant InsertColumns()+extras = %v", cols, want)
			}
		})
	}
	a := schemas.InsertColumns()
	a[0] = "changed"
	if schemas.InsertColumns()[0] != "kafka_topic" {
		t.Error("InsertColumns returns a shared slice")
	}
}

func TestValidate(t *testing.T) {
	modern := schemas.DialectModern
	for _, tc := range []struct {
		name    string
		opts    schemas.Options
		wantErr error
		option  string
	}{
		{"defaults", schemas.Options{Dialect: modern}, nil, ""},
		{"legacy", schemas.Options{Dialect: schemas.DialectLegacy}, nil, ""},
		{"underscore names", schemas.Options{Database: "_db_1", Table: "T_2", Dialect: modern}, nil, ""},
		{"ttl and window", schemas.Options{Dialect: modern, TTLDays: 365, DedupWindow: 10}, nil, ""},
		{"database starts with digit", schemas.Options{Database: "1db", Dialect: modern}, schemas.ErrInvalidIdentifier, "Database"},
		{"database with dash", schemas.Options{Database: "text-pulse", Dialect: modern}, schemas.ErrInvalidIdentifier, "Database"},
		{"database with dot", schemas.Options{Database: "a.b", Dialect: modern}, schemas.ErrInvalidIdentifier, "Database"},
		{"database with space", schemas.Options{Database: "a b", Dialect: modern}, schemas.ErrInvalidIdentifier, "Database"},
		{"database injection", schemas.Options{Database: "x; DROP DATABASE y", Dialect: modern}, schemas.ErrInvalidIdentifier, "Database"},
		{"database backquote", schemas.Options{Database: "`x`", Dialect: modern}, schemas.ErrInvalidIdentifier, "Database"},
		{"database non-ascii", schemas.Options{Database: "données", Dialect: modern}, schemas.ErrInvalidIdentifier, "Database"},
		{"system database", schemas.Options{Database: "system", Dialect: modern}, schemas.ErrInvalidIdentifier, "Database"},
		{"information schema", schemas.Options{Database: "INFORMATION_SCHEMA", Dialect: modern}, schemas.ErrInvalidIdentifier, "Database"},
		{"table with quote", schemas.Options{Table: "ev'ents", Dialect: modern}, schemas.ErrInvalidIdentifier, "Table"},
		{"table with newline", schemas.Options{Table: "events\n", Dialect: modern}, schemas.ErrInvalidIdentifier, "Table"},
		{"table is migrations table", schemas.Options{Table: schemas.MigrationsTable, Dialect: modern}, schemas.ErrInvalidIdentifier, "Table"},
		{"dialect unset", schemas.Options{}, schemas.ErrInvalidOption, "Dialect"},
		{"dialect unknown", schemas.Options{Dialect: 7}, schemas.ErrInvalidOption, "Dialect"},
		{"negative ttl", schemas.Options{Dialect: modern, TTLDays: -1}, schemas.ErrInvalidOption, "TTLDays"},
		{"negative window", schemas.Options{Dialect: modern, DedupWindow: -5}, schemas.ErrInvalidOption, "DedupWindow"},
		{"cluster", schemas.Options{Dialect: modern, Cluster: "prod_1"}, nil, ""},
		{"cluster custom paths", schemas.Options{Dialect: modern, Cluster: "prod", ZooKeeperPath: "/ch/{shard}/{table}",
			MigrationsZooKeeperPath: "/ch/all/{table}", ReplicaName: "{host}-1"}, nil, ""},
		{"paths ignored without cluster", schemas.Options{Dialect: modern, ZooKeeperPath: "relative"}, nil, ""},
		{"cluster with dash", schemas.Options{Dialect: modern, Cluster: "prod-1"}, schemas.ErrInvalidIdentifier, "Cluster"},
		{"cluster injection", schemas.Options{Dialect: modern, Cluster: "c; DROP TABLE x"}, schemas.ErrInvalidIdentifier, "Cluster"},
		{"relative zookeeper path", schemas.Options{Dialect: modern, Cluster: "c", ZooKeeperPath: "tables/{shard}"}, schemas.ErrInvalidOption, "ZooKeeperPath"},
		{"zookeeper path with quote", schemas.Options{Dialect: modern, Cluster: "c", ZooKeeperPath: "/t/'x"}, schemas.ErrInvalidOption, "ZooKeeperPath"},
		{"migrations path with backslash", schemas.Options{Dialect: modern, Cluster: "c", MigrationsZooKeeperPath: `/t/\x`}, schemas.ErrInvalidOption, "MigrationsZooKeeperPath"},
		{"replica with newline", schemas.Options{Dialect: modern, Cluster: "c", ReplicaName: "r\n"}, schemas.ErrInvalidOption, "ReplicaName"},
		{"json metadata", schemas.Options{Dialect: modern, MetadataType: schemas.MetadataJSON}, nil, ""},
		{"string metadata", schemas.Options{Dialect: schemas.DialectLegacy, MetadataType: schemas.MetadataString}, nil, ""},
		{"json metadata on legacy", schemas.Options{Dialect: schemas.DialectLegacy, MetadataType: schemas.MetadataJSON}, schemas.ErrInvalidOption, "MetadataType"},
		{"unknown metadata type", schemas.Options{Dialect: modern, MetadataType: "Object('json')"}, schemas.ErrInvalidOption, "MetadataType"},
		{"vector index", schemas.Options{Dialect: modern, VectorIndex: schemas.VectorIndexHNSW, EmbeddingDims: 384}, nil, ""},
		{"vector index l2", schemas.Options{Dialect: modern, VectorIndex: schemas.VectorIndexHNSW, VectorDistance: schemas.DistanceL2, EmbeddingDims: 3}, nil, ""},
		{"vector index without dims", schemas.Options{Dialect: modern, VectorIndex: schemas.VectorIndexHNSW}, schemas.ErrInvalidOption, "EmbeddingDims"},
		{"vector index huge dims", schemas.Options{Dialect: modern, VectorIndex: schemas.VectorIndexHNSW, EmbeddingDims: 1 << 20}, schemas.ErrInvalidOption, "EmbeddingDims"},
		{"vector index unknown distance", schemas.Options{Dialect: modern, VectorIndex: schemas.VectorIndexHNSW, VectorDistance: "dotProduct", EmbeddingDims: 3}, schemas.ErrInvalidOption, "VectorDistance"},
		{"vector index unknown type", schemas.Options{Dialect: modern, VectorIndex: "ivf", EmbeddingDims: 3}, schemas.ErrInvalidOption, "VectorIndex"},
		{"vector index on legacy", schemas.Options{Dialect: schemas.DialectLegacy, VectorIndex: schemas.VectorIndexHNSW, EmbeddingDims: 3}, schemas.ErrInvalidOption, "VectorIndex"},
		{"vector index in cluster mode", schemas.Options{Dialect: modern, Cluster: "c", VectorIndex: schemas.VectorIndexHNSW, EmbeddingDims: 3}, schemas.ErrInvalidOption, "VectorIndex"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Validate() = %v, want %v", err, tc.wantErr)
			}
			var oe *schemas.OptionError
			if !errors.As(err, &oe) || oe.Option != tc.option {
				t.Fatalf("Validate() = %#v, want an *OptionError for %s", err, tc.option)
			}
			for name, fn := range map[string]func() error{
				"Render":     func() error { _, err := schemas.Render(tc.opts); return err },
				"Bootstrap":  func() error { _, err := schemas.Bootstrap(tc.opts); return err },
				"Migrations": func() error { _, err := schemas.Migrations(tc.opts); return err },
				"Queries":    func() error { _, err := schemas.Queries(tc.opts); return err },
				"AppliedVersionsSQL": func() error {
					_, err := schemas.AppliedVersionsSQL(tc.opts)
					return err
				},
			} {
				if err := fn(); !errors.Is(err, tc.wantErr) {
					t.Errorf("%s error = %v, want %v", name, err, tc.wantErr)
				}
			}
		})
	}
}

func TestCheckServer(t *testing.T) {
	json := schemas.Options{Dialect: schemas.DialectModern, MetadataType: schemas.MetadataJSON}
	vec := schemas.Options{Dialect: schemas.DialectModern, VectorIndex: schemas.VectorIndexHNSW, EmbeddingDims: 3}
	for _, tc := range []struct {
		name    string
		opts    schemas.Options
		version schemas.Version
		option  string
	}{
		{"plain options on 22.3", schemas.Options{Dialect: schemas.DialectModern}, schemas.Version{Major: 22, Minor: 3}, ""},
		{"json on 25.3", json, schemas.Version{Major: 25, Minor: 3}, ""},
		{"json on 24.8", json, schemas.Version{Major: 24, Minor: 8, Patch: 4}, "MetadataType"},
		{"vector index on 26.9", vec, schemas.Version{Major: 26, Minor: 9, Patch: 2}, ""},
		{"vector index on 25.3", vec, schemas.Version{Major: 25, Minor: 3}, "VectorIndex"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.CheckServer(tc.version)
			if tc.option == "" {
				if err != nil {
					t.Fatalf("CheckServer(%s) = %v, want nil", tc.version, err)
				}
				return
			}
			var oe *schemas.OptionError
			if !errors.As(err, &oe) || oe.Option != tc.option || !strings.Contains(err.Error(), tc.version.String()) {
				t.Fatalf("CheckServer(%s) = %v, want an *OptionError for %s naming the server version", tc.version, err, tc.option)
			}
		})
	}
}

func TestRenderAnalystOptions(t *testing.T) {
	o := schemas.Options{Dialect: schemas.DialectModern, MetadataType: schemas.MetadataJSON,
		VectorIndex: schemas.VectorIndexHNSW, EmbeddingDims: 8}
	stmts, err := schemas.Render(o)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range stmts {
		names = append(names, s.Name)
	}
	want := "create_database create_table create_rollup_table create_rollup_view create_embeddings_table create_embeddings_view"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("statements %q, want %q", got, want)
	}
	if !strings.Contains(stmts[1].SQL, "metadata JSON") {
		t.Errorf("main table has no JSON metadata column:\n%s", stmts[1].SQL)
	}
	if !strings.Contains(stmts[4].SQL, "INDEX embedding_idx embedding TYPE vector_similarity('hnsw', 'cosineDistance', 8)") {
		t.Errorf("embeddings table has no vector index:\n%s", stmts[4].SQL)
	}
	if !strings.Contains(stmts[5].SQL, "WHERE length(embedding) = 8") {
		t.Errorf("embeddings view does not keep to the indexed length:\n%s", stmts[5].SQL)
	}
	extra, err := schemas.FeatureStatements(o)
	if err != nil || len(extra) != 2 {
		t.Fatalf("FeatureStatements = %d statements, %v; want 2", len(extra), err)
	}
	none, err := schemas.FeatureStatements(schemas.Options{Dialect: schemas.DialectModern})
	if err != nil || len(none) != 0 {
		t.Fatalf("FeatureStatements without options = %v, %v; want none", none, err)
	}
	if got := schemas.MetadataColumnType(o); got != "JSON" {
		t.Errorf("MetadataColumnType = %q, want JSON", got)
	}
	if got := schemas.MetadataColumnType(schemas.Options{}); got != "String" {
		t.Errorf("MetadataColumnType of defaults = %q, want String", got)
	}
}

func TestWithDefaults(t *testing.T) {
	got := schemas.Options{Dialect: schemas.DialectLegacy}.WithDefaults()
	want := schemas.Options{Database: "textpulse", Table: "events", Dialect: schemas.DialectLegacy, DedupWindow: 1000,
		ZooKeeperPath: "/clickhouse/tables/{shard}/{database}/{table}", MigrationsZooKeeperPath: "/clickhouse/tables/all/{database}/{table}",
		ReplicaName: "{replica}", MetadataType: "string"}
	if got != want {
		t.Errorf("WithDefaults() = %+v, want %+v", got, want)
	}
	kept := schemas.Options{Database: "a", Table: "b", DedupWindow: 3, TTLDays: 2, Cluster: "c",
		ZooKeeperPath: "/p", MigrationsZooKeeperPath: "/m", ReplicaName: "r", MetadataType: "json",
		VectorIndex: "hnsw", VectorDistance: "L2Distance", EmbeddingDims: 4}
	if got := kept.WithDefaults(); got != kept {
		t.Errorf("WithDefaults() = %+v, want %+v", got, kept)
	}
}

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    schemas.Version
		wantErr bool
	}{
		{"18.16.1", schemas.Version{18, 16, 1}, false},
		{"24.8.4.13", schemas.Version{24, 8, 4}, false},
		{"25.3.1.2703", schemas.Version{25, 3, 1}, false},
		{"22.3", schemas.Version{22, 3, 0}, false},
		{" 23.8.2.7 \n", schemas.Version{23, 8, 2}, false},
		{"23.8.2.7-lts", schemas.Version{23, 8, 2}, false},
		{"18.16.1+ds-7.3+b2", schemas.Version{18, 16, 1}, false},
		{"", schemas.Version{}, true},
		{"22", schemas.Version{}, true},
		{"v22.3.1", schemas.Version{}, true},
		{"22..1", schemas.Version{}, true},
		{"22.3.1.2.5", schemas.Version{}, true},
		{"22.x.1", schemas.Version{}, true},
		{"-1.2.3", schemas.Version{}, true},
		{"99999999999999999999.1", schemas.Version{}, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := schemas.ParseVersion(tc.in)
			if tc.wantErr {
				if !errors.Is(err, schemas.ErrInvalidVersion) {
					t.Fatalf("ParseVersion(%q) = %v, %v; want ErrInvalidVersion", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseVersion(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestDialectFor(t *testing.T) {
	for _, tc := range []struct {
		v    schemas.Version
		want schemas.Dialect
	}{
		{schemas.Version{18, 16, 1}, schemas.DialectLegacy},
		{schemas.Version{21, 8, 15}, schemas.DialectLegacy},
		{schemas.Version{22, 2, 99}, schemas.DialectLegacy},
		{schemas.Version{22, 3, 0}, schemas.DialectModern},
		{schemas.Version{22, 12, 1}, schemas.DialectModern},
		{schemas.Version{24, 8, 4}, schemas.DialectModern},
		{schemas.Version{25, 3, 1}, schemas.DialectModern},
		{schemas.Version{1, 1, 54394}, schemas.DialectLegacy},
	} {
		t.Run(tc.v.String(), func(t *testing.T) {
			if got := schemas.DialectFor(tc.v); got != tc.want {
				t.Errorf("DialectFor(%v) = %v, want %v", tc.v, got, tc.want)
			}
		})
	}
}

func TestMigrations(t *testing.T) {
	for _, d := range []schemas.Dialect{schemas.DialectLegacy, schemas.DialectModern} {
		t.Run(d.String(), func(t *testing.T) {
			o := schemas.Options{Database: "mdb", Dialect: d}
			migs, err := schemas.Migrations(o)
			if err != nil {
				t.Fatal(err)
			}
			for i, m := range migs {
				if m.Version != i+1 {
					t.Errorf("migration %d has version %d, want %d", i, m.Version, i+1)
				}
				if m.Name == "" || len(m.Statements) == 0 {
					t.Errorf("migration %d is empty: %+v", m.Version, m)
				}
			}
			render, err := schemas.Render(o)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(migs[0].Statements, render) {
				t.Error("migration 1 differs from Render")
			}
			rec, err := schemas.RecordMigrationSQL(o, migs[0])
			if err != nil {
				t.Fatal(err)
			}
			if want := "INSERT INTO mdb.schema_migrations (version, name, applied_at) SELECT 1, 'create_tables', now()"; rec != want {
				t.Errorf("RecordMigrationSQL = %q, want %q", rec, want)
			}
			if _, err := schemas.RecordMigrationSQL(o, schemas.Migration{}); !errors.Is(err, schemas.ErrInvalidOption) {
				t.Errorf("RecordMigrationSQL(version 0) error = %v, want ErrInvalidOption", err)
			}
			quoted, err := schemas.RecordMigrationSQL(o, schemas.Migration{Version: 2, Name: `it's \ odd`})
			if err != nil || !strings.Contains(quoted, `'it\'s \\ odd'`) {
				t.Errorf("RecordMigrationSQL did not escape the name: %q, %v", quoted, err)
			}
			boot, err := schemas.Bootstrap(o)
			if err != nil {
				t.Fatal(err)
			}
			if len(boot) != 2 || !strings.HasPrefix(boot[1].SQL, "CREATE TABLE IF NOT EXISTS mdb.schema_migrations\n") {
				t.Errorf("Bootstrap = %+v", boot)
			}
		})
	}
}

func TestQueries(t *testing.T) {
	for _, d := range []schemas.Dialect{schemas.DialectLegacy, schemas.DialectModern} {
		t.Run(d.String(), func(t *testing.T) {
			qs, err := schemas.Queries(schemas.Options{Database: "qdb", Table: "qt", Dialect: d})
			if err != nil {
				t.Fatal(err)
			}
			if len(qs) < 5 || len(qs) > 8 {
				t.Errorf("got %d queries, want 5 to 8", len(qs))
			}
			seen := map[string]bool{}
			for _, q := range qs {
				if seen[q.Name] {
					t.Errorf("duplicate query name %s", q.Name)
				}
				seen[q.Name] = true
				if q.Description == "" || !strings.HasSuffix(q.Description, ".") && !strings.Contains(q.Description, ". ") {
					t.Errorf("query %s has no sentence description: %q", q.Name, q.Description)
				}
				if strings.Contains(q.SQL, "{{") || strings.Contains(q.SQL, "}}") || strings.HasSuffix(q.SQL, ";") {
					t.Errorf("query %s is not fully rendered:\n%s", q.Name, q.SQL)
				}
				if !strings.Contains(q.SQL, "qdb.qt") {
					t.Errorf("query %s does not read qdb.qt*", q.Name)
				}
			}
			for _, name := range []string{"sentiment_over_time", "top_emotions_by_language", "partial_rows",
				"events_per_topic", "nearest_neighbours", "negative_texts_by_author", "metadata_channels"} {
				if !seen[name] {
					t.Errorf("missing query %s", name)
				}
			}
			for _, q := range qs {
				if q.Name == "nearest_neighbours" && strings.Count(q.SQL, "'"+schemas.EventIDPlaceholder+"'") != 2 {
					t.Errorf("nearest_neighbours should quote %s twice:\n%s", schemas.EventIDPlaceholder, q.SQL)
				}
			}
		})
	}
}

func TestEventSchema(t *testing.T) {
	raw := schemas.EventSchemaJSON()
	var s struct {
		Schema     string                     `json:"$schema"`
		Type       string                     `json:"type"`
		Required   []string                   `json:"required"`
		Properties map[string]json.RawMessage `json:"properties"`
		Examples   []map[string]any           `json:"examples"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("event schema is not valid JSON: %v", err)
	}
	if s.Schema != "https://json-schema.org/draft/2020-12/schema" || s.Type != "object" {
		t.Errorf("$schema = %q, type = %q", s.Schema, s.Type)
	}
	if !slices.Equal(s.Required, []string{"text"}) {
		t.Errorf("required = %v, want [text]", s.Required)
	}
	for _, f := range []string{"id", "text", "source", "author", "lang", "created_at", "metadata"} {
		if _, ok := s.Properties[f]; !ok {
			t.Errorf("property %s missing", f)
		}
	}
	var text struct {
		Type      string `json:"type"`
		MinLength int    `json:"minLength"`
	}
	if err := json.Unmarshal(s.Properties["text"], &text); err != nil || text.Type != "string" || text.MinLength != 1 {
		t.Errorf("text = %s, want a non-empty string", s.Properties["text"])
	}
	if len(s.Examples) == 0 {
		t.Error("no examples")
	}
	for _, ex := range s.Examples {
		if txt, _ := ex["text"].(string); strings.TrimSpace(txt) == "" {
			t.Errorf("example without text: %v", ex)
		}
	}
	raw[0] = 'x'
	if schemas.EventSchemaJSON()[0] != '{' {
		t.Error("EventSchemaJSON returns shared memory")
	}
}

func TestInsertSettings(t *testing.T) {
	legacy := schemas.Options{Dialect: schemas.DialectLegacy}
	modern := schemas.Options{Dialect: schemas.DialectModern}
	if got := schemas.InsertSettings(legacy, "tok"); got != nil {
		t.Errorf("legacy settings = %v, want nil", got)
	}
	got := schemas.InsertSettings(modern, "t:0:1-9")
	want := map[string]any{
		"insert_deduplication_token":                         "t:0:1-9",
		"deduplicate_blocks_in_dependent_materialized_views": "1",
	}
	if !maps.Equal(got, want) {
		t.Errorf("modern settings = %v, want %v", got, want)
	}
	if _, ok := schemas.InsertSettings(modern, "")["insert_deduplication_token"]; ok {
		t.Error("empty token is sent")
	}
	// In cluster mode the INSERT through the Distributed table must not
	// return before the shards stored the rows.
	legacy.Cluster, modern.Cluster = "main", "main"
	if got := schemas.InsertSettings(legacy, "tok"); !maps.Equal(got, map[string]any{"insert_distributed_sync": 1}) {
		t.Errorf("legacy cluster settings = %v, want only insert_distributed_sync", got)
	}
	want["insert_distributed_sync"] = 1
	if got := schemas.InsertSettings(modern, "t:0:1-9"); !maps.Equal(got, want) {
		t.Errorf("modern cluster settings = %v, want %v", got, want)
	}
}

// TestEventSchemaCreatedAtPattern checks that the pattern for created_at
// strings accepts what an RFC 3339 parser accepts.
func TestEventSchemaCreatedAtPattern(t *testing.T) {
	var s struct {
		Properties struct {
			CreatedAt struct {
				AnyOf []struct {
					Type    string `json:"type"`
					Pattern string `json:"pattern"`
				} `json:"anyOf"`
			} `json:"created_at"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(schemas.EventSchemaJSON(), &s); err != nil {
		t.Fatal(err)
	}
	var pattern string
	for _, alt := range s.Properties.CreatedAt.AnyOf {
		if alt.Type == "string" {
			pattern = alt.Pattern
		}
	}
	re, err := regexp.Compile(pattern)
	if err != nil || pattern == "" {
		t.Fatalf("created_at pattern %q: %v", pattern, err)
	}
	for _, in := range []string{
		"2025-03-14T09:26:53Z",
		"2025-03-14T09:26:53.589Z",
		"2025-03-14T09:26:53.123456789+05:30",
		"2025-03-14T09:26:53-08:00",
		"2025-03-14 09:26:53Z",
		"2025-03-14T09:26:53",
		"2025-03-14",
		"yesterday",
		"1741944413",
	} {
		t.Run(in, func(t *testing.T) {
			_, err := time.Parse(time.RFC3339Nano, in)
			if got, want := re.MatchString(in), err == nil; got != want {
				t.Errorf("pattern match = %v, RFC 3339 parse ok = %v", got, want)
			}
		})
	}
}

// Package schemas holds the textpulse data contracts: the JSON Schema of the
// input events, the ClickHouse DDL of the tables the sink writes, the
// migrations that create and upgrade them, and example queries for analysts.
//
// The DDL comes in two dialects. DialectLegacy renders SQL that ClickHouse
// 18.16 accepts; DialectModern (22.3 and later) adds column codecs,
// LowCardinality, DateTime64, an optional TTL, insert deduplication and an
// emotion Map alias column. Column names and their insert order are the same
// in both, see InsertColumns.
package schemas

import (
	"bytes"
	"embed"
	"fmt"
	"strconv"
	"strings"
	"text/template"
)

// files holds the event schema, the DDL templates and the example queries.
//
//go:embed event.schema.json ddl/*.sql.tmpl queries/*.sql
var files embed.FS

// EventSchemaJSON returns the JSON Schema (draft 2020-12) of the input
// events. Each call returns a new copy.
func EventSchemaJSON() []byte {
	b, err := files.ReadFile("event.schema.json")
	if err != nil {
		// The file is embedded at build time, so this cannot happen.
		panic(err)
	}
	return b
}

// Statement is one SQL statement, without a trailing semicolon.
type Statement struct {
	// Name identifies the statement in logs and errors, such as
	// "create_table".
	Name string
	// SQL is the statement text.
	SQL string
	// ExistsOK marks a legacy ADD COLUMN without IF NOT EXISTS: a runner
	// takes its failure with code 44 (the column exists) as done.
	ExistsOK bool
}

// InsertSettings returns the query settings for an INSERT of one batch into
// the main table, so that retrying the batch with the same token adds
// nothing to the main table or the per-minute rollup. token identifies the
// batch (the same records give the same token). On DialectLegacy without a
// cluster it returns nil: 18.16 knows neither deduplication setting, and
// retried batches are collapsed by the main table's ReplacingMergeTree
// instead. In cluster mode the INSERT goes through the Distributed table
// with insert_distributed_sync = 1, so that it returns only once every
// shard stored its rows, and offsets are never committed for rows that wait
// in a node's local queue. Numeric settings that legacy servers may receive
// are ints, the others strings; the map is new on each call and converts to
// clickhouse-go's clickhouse.Settings.
func InsertSettings(o Options, token string) map[string]any {
	s := map[string]any{}
	if o.Clustered() {
		// An int: servers before 19.x read settings as numbers on the
		// wire, and clickhouse-go encodes only ints and bools that way.
		s["insert_distributed_sync"] = 1
	}
	if o.Dialect == DialectModern {
		// Servers from 24.7 on push a block that the main table dropped as
		// a duplicate through the view; with this setting the rollup table
		// drops it as well. Earlier servers never push it.
		s["deduplicate_blocks_in_dependent_materialized_views"] = "1"
		if token != "" {
			s["insert_deduplication_token"] = token
		}
	}
	if len(s) == 0 {
		return nil
	}
	return s
}

// Render returns the statements that create the database, the main table,
// the per-minute rollup table and the materialized view that fills it, in
// that order. Every statement uses IF NOT EXISTS, so running them again is
// harmless. They are the statements of migration 1.
//
// In cluster mode (Options.Cluster) every statement runs ON CLUSTER, the
// main and rollup tables are Replicated tables named with LocalSuffix, each
// followed by a Distributed table with the plain name, and the view reads
// the local main table on each shard and writes the local rollup table. The
// Distributed main table shards rows by cityHash64 of their Kafka
// coordinates, so a retried record always lands on the shard that holds its
// first copy and collapses with it there.
//
// The rollup counts are exact only while no insert is retried: on legacy
// servers a retried batch is counted twice in the rollup (the main table
// collapses the copies), while modern servers drop an insert that repeats a
// recent insert_deduplication_token in both tables when it carries the
// settings of InsertSettings. Exact counts come from the main table with
// FINAL.
//
// With Options.VectorIndex the statements of FeatureStatements follow.
func Render(o Options) ([]Statement, error) {
	base, err := renderBase(o)
	if err != nil {
		return nil, err
	}
	extra, err := FeatureStatements(o)
	if err != nil {
		return nil, err
	}
	return append(base, extra...), nil
}

// FeatureStatements returns the statements that add what the options enable
// beside the tables of migration 1: with Options.VectorIndex, the table
// Table+"_embeddings" with a vector_similarity index and the materialized
// view that copies into it every new row of the main table whose embedding
// has Options.EmbeddingDims elements (the index refuses arrays of another
// length, so the main table keeps taking every row). They use IF NOT
// EXISTS; a runner executes them after the migrations on every run, so that
// enabling the index on an existing table creates it. Rows written before
// are not copied; see docs/operations.md for the backfill statement.
func FeatureStatements(o Options) ([]Statement, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("render ddl: %w", err)
	}
	if o.VectorIndex == "" {
		return nil, nil
	}
	return renderDDL(o, []ddlTemplate{
		{name: "create_embeddings_table", file: "embeddings.sql.tmpl"},
		{name: "create_embeddings_view", file: "embeddings_mv.sql.tmpl"},
	})
}

// MetadataColumnType returns the server type of the metadata column for the
// options: String or JSON.
func MetadataColumnType(o Options) string {
	c, _ := ColumnNamed("metadata")
	return c.Type(o)
}

// VectorIndexType returns the type of the vector index for the options as
// the server writes it in system.data_skipping_indices.type_full, such as
// vector_similarity('hnsw', 'cosineDistance', 384); "" without an index.
func VectorIndexType(o Options) string {
	o = o.WithDefaults()
	if o.VectorIndex == "" {
		return ""
	}
	return "vector_similarity(" + quoteString(o.VectorIndex) + ", " + quoteString(o.VectorDistance) + ", " +
		strconv.Itoa(o.EmbeddingDims) + ")"
}

// VectorIndexName is the name of the vector index of the embeddings table.
const VectorIndexName = "embedding_idx"

func renderBase(o Options) ([]Statement, error) {
	if o.Clustered() {
		return renderDDL(o, []ddlTemplate{
			{name: "create_database", file: "database.sql.tmpl"},
			{name: "create_table", file: "events.sql.tmpl"},
			{name: "create_distributed_table", file: "events_distributed.sql.tmpl"},
			{name: "create_rollup_table", file: "per_minute.sql.tmpl"},
			{name: "create_rollup_distributed_table", file: "per_minute_distributed.sql.tmpl"},
			{name: "create_rollup_view", file: "per_minute_mv.sql.tmpl"},
		})
	}
	return renderDDL(o, []ddlTemplate{
		{name: "create_database", file: "database.sql.tmpl"},
		{name: "create_table", file: "events.sql.tmpl"},
		{name: "create_rollup_table", file: "per_minute.sql.tmpl"},
		{name: "create_rollup_view", file: "per_minute_mv.sql.tmpl"},
	})
}

// Bootstrap returns the statements that create the database and the
// schema_migrations table, which a migration runner executes before it reads
// the applied versions.
func Bootstrap(o Options) ([]Statement, error) {
	return renderDDL(o, []ddlTemplate{
		{name: "create_database", file: "database.sql.tmpl"},
		{name: "create_migrations_table", file: "schema_migrations.sql.tmpl"},
	})
}

// ddlTemplate names a statement and the file it is rendered from.
type ddlTemplate struct {
	name string
	file string
}

// templateData is what the DDL and query templates see.
type templateData struct {
	Database        string
	Table           string
	MigrationsTable string
	Modern          bool
	TTLDays         int
	DedupWindow     int
	// Cluster is the cluster name, empty when not in cluster mode.
	Cluster string
	// Local is LocalSuffix in cluster mode and empty otherwise: the data
	// tables are named Table+Local.
	Local string
	// MetadataJSON reports the JSON type for the metadata column.
	MetadataJSON bool
	// VectorIndex, VectorDistance and EmbeddingDims are the options of the
	// vector index; VectorIndex is empty when there is none.
	VectorIndex    string
	VectorDistance string
	EmbeddingDims  int
}

func renderDDL(o Options, tmpls []ddlTemplate) ([]Statement, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("render ddl: %w", err)
	}
	o = o.WithDefaults()
	out := make([]Statement, 0, len(tmpls))
	for _, t := range tmpls {
		sql, err := renderFile(o, "ddl/"+t.file)
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", t.name, err)
		}
		out = append(out, Statement{Name: t.name, SQL: sql})
	}
	return out, nil
}

// renderFile executes one embedded template for validated options with the
// defaults applied and returns the trimmed text.
func renderFile(o Options, path string) (string, error) {
	src, err := files.ReadFile(path)
	if err != nil {
		return "", err
	}
	modern := o.Dialect == DialectModern
	funcs := templateFuncs(o)
	t, err := template.New(path).Funcs(funcs).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	err = t.Execute(&buf, templateData{
		Database:        o.Database,
		Table:           o.Table,
		MigrationsTable: MigrationsTable,
		Modern:          modern,
		TTLDays:         o.TTLDays,
		DedupWindow:     o.DedupWindow,
		Cluster:         o.Cluster,
		Local:           localSuffix(o),
		MetadataJSON:    o.MetadataType == MetadataJSON,
		VectorIndex:     o.VectorIndex,
		VectorDistance:  o.VectorDistance,
		EmbeddingDims:   o.EmbeddingDims,
	})
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(buf.String()), nil
}

// templateFuncs returns the functions the DDL templates call, for validated
// options with the defaults applied.
func templateFuncs(o Options) template.FuncMap {
	modern := o.Dialect == DialectModern
	return template.FuncMap{
		// columns renders the insert columns of the main table.
		"columns": func() string { return renderColumns(o) },
		// lc is the type of a low-cardinality string column.
		"lc": func() string {
			if modern {
				return "LowCardinality(String)"
			}
			return "String"
		},
		// dt is the type of a timestamp column.
		"dt": func() string {
			if modern {
				return "DateTime64(3)"
			}
			return "DateTime"
		},
		// codec renders a column codec on modern servers.
		"codec": func(c string) string {
			if modern {
				return " CODEC(" + c + ")"
			}
			return ""
		},
		// ifNotExists renders IF NOT EXISTS for ADD COLUMN on modern
		// servers; 18.16 refuses it.
		"ifNotExists": func() string {
			if modern {
				return "IF NOT EXISTS "
			}
			return ""
		},
		// comment renders a column comment on modern servers.
		"comment": func(c string) string {
			if modern {
				return " COMMENT " + quoteString(c)
			}
			return ""
		},
		// onCluster renders the ON CLUSTER clause in cluster mode.
		"onCluster": func() string {
			if o.Clustered() {
				return " ON CLUSTER " + o.Cluster
			}
			return ""
		},
		// engine renders a MergeTree-family engine for the table; in
		// cluster mode its Replicated form, with the replication path for
		// the table and the replica name.
		"engine": func(family, params, table string) string {
			return engine(o, family, params, o.ZooKeeperPath, table)
		},
		// migrationsEngine is engine for the migrations table, which is
		// replicated to every node.
		"migrationsEngine": func(family, params string) string {
			return engine(o, family, params, o.MigrationsZooKeeperPath, MigrationsTable)
		},
		// dedupSetting renders the insert deduplication window setting on
		// modern servers: the replicated one in cluster mode.
		"dedupSetting": func() string {
			switch {
			case !modern:
				return ""
			case o.Clustered():
				return ", replicated_deduplication_window = " + strconv.Itoa(o.DedupWindow)
			}
			return ", non_replicated_deduplication_window = " + strconv.Itoa(o.DedupWindow)
		},
		// quote renders a string literal.
		"quote": quoteString,
		// vectorIndex renders the index clause of the embeddings table.
		"vectorIndex": func() string {
			return "INDEX " + VectorIndexName + " embedding TYPE " + VectorIndexType(o) + " GRANULARITY 100000000"
		},
	}
}

// localSuffix returns LocalSuffix in cluster mode and "" otherwise.
func localSuffix(o Options) string {
	if o.Clustered() {
		return LocalSuffix
	}
	return ""
}

// engine renders family(params), or in cluster mode
// Replicatedfamily('path', 'replica'[, params]) with {database} and {table}
// in path replaced by the database and table names.
func engine(o Options, family, params, path, table string) string {
	if !o.Clustered() {
		return family + "(" + params + ")"
	}
	path = strings.NewReplacer("{database}", o.Database, "{table}", table).Replace(path)
	args := quoteString(path) + ", " + quoteString(o.ReplicaName)
	if params != "" {
		args += ", " + params
	}
	return "Replicated" + family + "(" + args + ")"
}

// quoteString returns s as a single-quoted ClickHouse string literal.
func quoteString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(s) + "'"
}

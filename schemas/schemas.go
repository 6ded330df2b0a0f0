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
}

// InsertColumns returns the columns the sink inserts into the main table, in
// order. ingested_at (filled in by the server) and the emotion alias are not
// among them. Each call returns a new slice.
func InsertColumns() []string {
	return []string{
		"kafka_topic",
		"kafka_partition",
		"kafka_offset",
		"kafka_timestamp",
		"event_id",
		"text",
		"source",
		"author",
		"lang",
		"created_at",
		"metadata",
		"embedding",
		"embedding_model",
		"sentiment_label",
		"sentiment_score",
		"sentiment_model",
		"emotion_label",
		"emotion_labels",
		"emotion_scores",
		"emotion_model",
		"status",
		"failed_stages",
	}
}

// InsertSettings returns the query settings for an INSERT of one batch into
// the main table, so that retrying the batch with the same token adds
// nothing to the main table or the per-minute rollup. token identifies the
// batch (the same records give the same token). On DialectLegacy it returns
// nil: 18.16 knows neither setting, and retried batches are collapsed by the
// main table's ReplacingMergeTree instead. The values are strings; the map
// is new on each call and converts to clickhouse-go's clickhouse.Settings.
func InsertSettings(d Dialect, token string) map[string]any {
	if d != DialectModern {
		return nil
	}
	s := map[string]any{
		// Servers from 24.7 on push a block that the main table dropped as
		// a duplicate through the view; with this setting the rollup table
		// drops it as well. Earlier servers never push it.
		"deduplicate_blocks_in_dependent_materialized_views": "1",
	}
	if token != "" {
		s["insert_deduplication_token"] = token
	}
	return s
}

// Render returns the statements that create the database, the main table,
// the per-minute rollup table and the materialized view that fills it, in
// that order. Every statement uses IF NOT EXISTS, so running them again is
// harmless. They are the statements of migration 1.
//
// The rollup counts are exact only while no insert is retried: on legacy
// servers a retried batch is counted twice in the rollup (the main table
// collapses the copies), while modern servers drop an insert that repeats a
// recent insert_deduplication_token in both tables when it carries the
// settings of InsertSettings. Exact counts come from the main table with
// FINAL.
func Render(o Options) ([]Statement, error) {
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
	funcs := template.FuncMap{
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
		// comment renders a column comment on modern servers.
		"comment": func(c string) string {
			if modern {
				return " COMMENT " + quoteString(c)
			}
			return ""
		},
	}
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
	})
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(buf.String()), nil
}

// quoteString returns s as a single-quoted ClickHouse string literal.
func quoteString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(s) + "'"
}

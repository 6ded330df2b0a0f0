package schemas

import (
	"fmt"
	"strconv"
)

// Migration is one step of the schema history. Its statements are safe to
// run again wherever the dialect allows it (IF NOT EXISTS), so a runner that
// stopped halfway through a migration can run the whole migration again; see
// Migrations for the one exception on legacy servers.
type Migration struct {
	// Version orders the migrations; it starts at 1 and has no gaps.
	Version int
	// Name describes the migration in snake_case, such as "create_tables".
	Name string
	// Statements run in order.
	Statements []Statement
}

// Migrations returns every migration in ascending Version order, rendered for
// the options. Migration 1 is Render: the database, the main table, the
// per-minute rollup and its materialized view.
//
// A runner executes Bootstrap, reads the applied versions with
// AppliedVersionsSQL, runs the statements of each migration whose version is
// missing, in order, and records each one with RecordMigrationSQL once all of
// its statements succeeded.
//
// Later schema changes are appended as new migrations; applied ones are
// never edited, and a new insert column goes into InsertColumns in the same
// release. On DialectModern a migration adds columns with
//
//	ALTER TABLE db.table ADD COLUMN IF NOT EXISTS name Type AFTER column
//
// which is safe to run again. ClickHouse 18.16 rejects IF NOT EXISTS (and IF
// EXISTS on DROP COLUMN) as a syntax error, so on DialectLegacy a migration
// adds all of a table's new columns in one plain statement,
//
//	ALTER TABLE db.table ADD COLUMN a Type, ADD COLUMN b Type
//
// which 18.16 applies all or nothing. Such a statement only fails on a rerun
// if a runner stopped between it and the record of its migration; the
// exception then is code 44 "column with this name already exists", which
// the runner can take as applied (or check system.columns first).
//
// In cluster mode (Options.Cluster) such a statement runs ON CLUSTER on the
// local table (Table+LocalSuffix) and again on the Distributed table, which
// does not follow the local table's columns by itself.
//
// A column that the materialized view should aggregate needs the view
// dropped (DROP TABLE IF EXISTS db.table_per_minute_mv) and created again
// with the TO form; the rollup rows stay, as they live in their own table.
func Migrations(o Options) ([]Migration, error) {
	v1, err := Render(o)
	if err != nil {
		return nil, fmt.Errorf("render migration 1: %w", err)
	}
	v2, err := revisions(o)
	if err != nil {
		return nil, fmt.Errorf("render migration 2: %w", err)
	}
	return []Migration{
		{Version: 1, Name: "create_tables", Statements: v1},
		{Version: 2, Name: "row_revisions", Statements: v2},
	}, nil
}

// revisions renders migration 2: the revision column of the main table,
// signed rollup counters, and the view created again so that it counts
// only the rows the consumer wrote (revision 0); consumer enrich writes
// newer versions of rows and corrects the rollup itself.
func revisions(o Options) ([]Statement, error) {
	tmpls := []ddlTemplate{{name: "add_revision_column", file: "revision_column.sql.tmpl"}}
	if o.Clustered() {
		tmpls = append(tmpls,
			ddlTemplate{name: "drop_distributed_table", file: "drop_distributed.sql.tmpl"},
			ddlTemplate{name: "create_distributed_table", file: "events_distributed.sql.tmpl"})
	}
	tmpls = append(tmpls, ddlTemplate{name: "signed_rollup_counters", file: "rollup_signed.sql.tmpl"})
	if o.Clustered() {
		tmpls = append(tmpls,
			ddlTemplate{name: "drop_rollup_distributed_table", file: "drop_rollup_distributed.sql.tmpl"},
			ddlTemplate{name: "create_rollup_distributed_table", file: "per_minute_distributed.sql.tmpl"})
	}
	tmpls = append(tmpls,
		ddlTemplate{name: "drop_rollup_view", file: "drop_rollup_view.sql.tmpl"},
		ddlTemplate{name: "create_rollup_view", file: "per_minute_mv.sql.tmpl"})
	sts, err := renderDDL(o, tmpls)
	if err != nil {
		return nil, err
	}
	if o.Dialect != DialectModern {
		for i := range sts {
			sts[i].ExistsOK = sts[i].Name == "add_revision_column"
		}
	}
	return sts, nil
}

// AppliedVersionsSQL returns a query whose rows are the applied migration
// versions, one UInt32 column named version, ascending and without
// duplicates.
func AppliedVersionsSQL(o Options) (string, error) {
	if err := o.Validate(); err != nil {
		return "", fmt.Errorf("render applied versions query: %w", err)
	}
	o = o.WithDefaults()
	return "SELECT version FROM " + o.Database + "." + MigrationsTable +
		" GROUP BY version ORDER BY version", nil
}

// RecordMigrationSQL returns the statement that records m as applied. It
// carries its values inline, so it needs no parameter binding.
func RecordMigrationSQL(o Options, m Migration) (string, error) {
	if err := o.Validate(); err != nil {
		return "", fmt.Errorf("render record of migration %d: %w", m.Version, err)
	}
	if m.Version <= 0 {
		return "", fmt.Errorf("render record of migration %d: %w: version must be positive", m.Version, ErrInvalidOption)
	}
	o = o.WithDefaults()
	return "INSERT INTO " + o.Database + "." + MigrationsTable + " (version, name, applied_at) SELECT " +
		strconv.Itoa(m.Version) + ", " + quoteString(m.Name) + ", now()", nil
}

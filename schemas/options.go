package schemas

import (
	"strconv"
	"strings"
)

// Defaults applied by Options.WithDefaults.
const (
	DefaultDatabase    = "textpulse"
	DefaultTable       = "events"
	DefaultDedupWindow = 1000
)

// MigrationsTable is the name of the table, in Options.Database, that records
// the applied migrations.
const MigrationsTable = "schema_migrations"

// Options selects the names and the dialect of the rendered DDL and queries.
type Options struct {
	// Database holds all tables; "" means DefaultDatabase.
	Database string
	// Table is the main table; "" means DefaultTable. The rollup table and
	// its materialized view are named Table+"_per_minute" and
	// Table+"_per_minute_mv".
	Table string
	// Dialect is DialectLegacy or DialectModern, normally from DialectFor.
	Dialect Dialect
	// TTLDays expires rows of the main table that many days after
	// created_at; 0 keeps them forever. It is only rendered on DialectModern.
	TTLDays int
	// DedupWindow is the non_replicated_deduplication_window of the main
	// table and the rollup table on DialectModern: how many recent insert
	// blocks each remembers for deduplication. 0 means DefaultDedupWindow.
	DedupWindow int
}

// WithDefaults returns o with empty fields set to their defaults. Render,
// Queries and Migrations apply it themselves; callers use it to learn the
// effective names.
func (o Options) WithDefaults() Options {
	if o.Database == "" {
		o.Database = DefaultDatabase
	}
	if o.Table == "" {
		o.Table = DefaultTable
	}
	if o.DedupWindow == 0 {
		o.DedupWindow = DefaultDedupWindow
	}
	return o
}

// Validate checks the options after applying the defaults. Identifiers must
// match ^[A-Za-z_][A-Za-z0-9_]*$, the database must not be a system database,
// the table must not clash with the migrations table, the dialect must be
// DialectLegacy or DialectModern and the numbers must not be negative. The
// error is an *OptionError.
func (o Options) Validate() error {
	o = o.WithDefaults()
	if !validIdentifier(o.Database) {
		return &OptionError{Option: "Database", Value: o.Database, Err: ErrInvalidIdentifier,
			Reason: "want ^[A-Za-z_][A-Za-z0-9_]*$"}
	}
	switch strings.ToLower(o.Database) {
	case "system", "information_schema":
		return &OptionError{Option: "Database", Value: o.Database, Err: ErrInvalidIdentifier,
			Reason: "reserved for the server"}
	}
	if !validIdentifier(o.Table) {
		return &OptionError{Option: "Table", Value: o.Table, Err: ErrInvalidIdentifier,
			Reason: "want ^[A-Za-z_][A-Za-z0-9_]*$"}
	}
	if o.Table == MigrationsTable {
		return &OptionError{Option: "Table", Value: o.Table, Err: ErrInvalidIdentifier,
			Reason: "reserved for the migrations table"}
	}
	if o.Dialect != DialectLegacy && o.Dialect != DialectModern {
		return &OptionError{Option: "Dialect", Value: o.Dialect.String(), Err: ErrInvalidOption,
			Reason: "want DialectLegacy or DialectModern"}
	}
	if o.TTLDays < 0 {
		return &OptionError{Option: "TTLDays", Value: strconv.Itoa(o.TTLDays), Err: ErrInvalidOption,
			Reason: "must not be negative"}
	}
	if o.DedupWindow < 0 {
		return &OptionError{Option: "DedupWindow", Value: strconv.Itoa(o.DedupWindow), Err: ErrInvalidOption,
			Reason: "must not be negative"}
	}
	return nil
}

// validIdentifier reports whether s matches ^[A-Za-z_][A-Za-z0-9_]*$.
func validIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

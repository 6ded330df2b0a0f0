package clickhouse

import (
	"context"
	"fmt"

	"github.com/textpulse/textpulse/schemas"
)

// Migrate creates or upgrades the tables for the server's dialect: it runs
// every migration not yet recorded in the schema_migrations table, in order,
// and returns the names of those it applied. It is safe to run repeatedly
// and from several processes (every statement is idempotent).
func (c *Sink) Migrate(ctx context.Context) ([]string, error) {
	o := c.Options()
	boot, err := schemas.Bootstrap(o)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	for _, st := range boot {
		if err := c.conn.Exec(ctx, st.SQL); err != nil {
			return nil, fmt.Errorf("migrate: %s: %w", st.Name, err)
		}
	}
	applied, err := c.appliedVersions(ctx)
	if err != nil {
		return nil, err
	}
	migs, err := schemas.Migrations(o)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	var done []string
	for _, m := range migs {
		if applied[m.Version] {
			continue
		}
		for _, st := range m.Statements {
			err := c.conn.Exec(ctx, st.SQL)
			if err != nil && st.ExistsOK && columnExists(err) {
				err = nil
			}
			if err != nil {
				return done, fmt.Errorf("migrate: migration %d %s: %s: %w", m.Version, m.Name, st.Name, err)
			}
		}
		rec, err := schemas.RecordMigrationSQL(o, m)
		if err != nil {
			return done, fmt.Errorf("migrate: %w", err)
		}
		if err := c.conn.Exec(ctx, rec); err != nil {
			return done, fmt.Errorf("migrate: record migration %d: %w", m.Version, err)
		}
		done = append(done, fmt.Sprintf("%d_%s", m.Version, m.Name))
		c.log.Info("migration applied", "version", m.Version, "name", m.Name, "dialect", c.dialect.String())
	}
	if err := c.checkMetadataType(ctx); err != nil {
		return done, err
	}
	extra, err := schemas.FeatureStatements(o)
	if err != nil {
		return done, fmt.Errorf("migrate: %w", err)
	}
	for _, st := range extra {
		if err := c.conn.Exec(ctx, st.SQL); err != nil {
			return done, fmt.Errorf("migrate: %s: %w", st.Name, err)
		}
	}
	if len(extra) > 0 {
		if err := c.checkVectorIndex(ctx); err != nil {
			return done, err
		}
	}
	return done, nil
}

// checkVectorIndex refuses an embeddings table whose vector index differs
// from the configured one (another distance or dimension): CREATE TABLE IF
// NOT EXISTS keeps the old table, and rows of the new length would never
// reach it.
func (c *Sink) checkVectorIndex(ctx context.Context) error {
	o := c.Options().WithDefaults()
	var got string
	row := c.conn.QueryRow(ctx, "SELECT type_full FROM system.data_skipping_indices WHERE database = '"+o.Database+
		"' AND table = '"+o.EmbeddingsTable()+"' AND name = '"+schemas.VectorIndexName+"'")
	if err := row.Scan(&got); err != nil {
		return fmt.Errorf("migrate: read vector index of %s.%s: %w", o.Database, o.EmbeddingsTable(), err)
	}
	if want := schemas.VectorIndexType(o); got != want {
		return fmt.Errorf("migrate: %s.%s has index %s, the configuration wants %s; drop %s.%s and %s.%s_mv and migrate again to rebuild it: %w",
			o.Database, o.EmbeddingsTable(), got, want, o.Database, o.EmbeddingsTable(), o.Database, o.EmbeddingsTable(), ErrVectorIndex)
	}
	return nil
}

// checkMetadataType refuses a main table whose metadata column has another
// type than clickhouse.metadata_type asks for: the sink does not convert an
// existing table.
func (c *Sink) checkMetadataType(ctx context.Context) error {
	o := c.Options().WithDefaults()
	table := o.Table
	if o.Clustered() {
		table += schemas.LocalSuffix
	}
	var got string
	row := c.conn.QueryRow(ctx, "SELECT type FROM system.columns WHERE database = '"+o.Database+
		"' AND table = '"+table+"' AND name = 'metadata'")
	if err := row.Scan(&got); err != nil {
		return fmt.Errorf("migrate: read type of %s.%s.metadata: %w", o.Database, table, err)
	}
	if want := schemas.MetadataColumnType(o); got != want {
		return fmt.Errorf("migrate: %s.%s.metadata is %s, clickhouse.metadata_type %s wants %s: %w",
			o.Database, table, got, o.MetadataType, want, ErrMetadataType)
	}
	return nil
}

// SchemaVersion returns the highest applied migration, 0 when none is, and
// the latest migration this binary knows.
func (c *Sink) SchemaVersion(ctx context.Context) (applied, latest int, err error) {
	migs, err := schemas.Migrations(c.Options())
	if err != nil {
		return 0, 0, fmt.Errorf("schema version: %w", err)
	}
	latest = migs[len(migs)-1].Version
	got, err := c.appliedVersions(ctx)
	if err != nil {
		return 0, latest, err
	}
	for v := range got {
		applied = max(applied, v)
	}
	return applied, latest, nil
}

func (c *Sink) appliedVersions(ctx context.Context) (map[int]bool, error) {
	q, err := schemas.AppliedVersionsSQL(c.Options())
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	rows, err := c.conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read applied migrations: %w", err)
	}
	defer func() { _ = rows.Close() }()
	applied := make(map[int]bool)
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read applied migrations: %w", err)
		}
		applied[int(v)] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read applied migrations: %w", err)
	}
	return applied, nil
}

package sink

import (
	"context"
	"fmt"

	"github.com/textpulse/textpulse/schemas"
)

// Migrate creates or upgrades the tables for the server's dialect: it runs
// every migration not yet recorded in the schema_migrations table, in order,
// and returns the names of those it applied. It is safe to run repeatedly
// and from several processes (every statement is idempotent).
func (c *ClickHouse) Migrate(ctx context.Context) ([]string, error) {
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
			if err := c.conn.Exec(ctx, st.SQL); err != nil {
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
	return done, nil
}

// SchemaVersion returns the highest applied migration, 0 when none is, and
// the latest migration this binary knows.
func (c *ClickHouse) SchemaVersion(ctx context.Context) (applied, latest int, err error) {
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

func (c *ClickHouse) appliedVersions(ctx context.Context) (map[int]bool, error) {
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

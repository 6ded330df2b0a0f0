package clickhouse

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/textpulse/textpulse/processor"
	"github.com/textpulse/textpulse/schemas"
)

// storedTimeout bounds one read of the stored offsets of a partition.
const storedTimeout = time.Minute

// StoredOffsets implements processor.StoredReader: the offsets at or after
// from of topic/partition that the table holds, read on the ORDER BY key
// (a range scan of one partition's rows, without FINAL). The pipeline calls
// it once when it takes a partition over, so what it returns is bounded by
// what the previous owner had in flight.
func (c *Sink) StoredOffsets(ctx context.Context, topic string, partition int32, from int64) ([]processor.OffsetRange, error) {
	ranges, err := c.storedOffsets(ctx, topic, partition, from)
	// The read is a request to the server like an INSERT: a partition taken
	// over while ClickHouse is down shows as the sink being down.
	switch {
	case err == nil:
		c.m.up.Set(1)
	case ctx.Err() == nil:
		c.m.up.Set(0)
	}
	return ranges, err
}

func (c *Sink) storedOffsets(ctx context.Context, topic string, partition int32, from int64) ([]processor.OffsetRange, error) {
	ctx, cancel := context.WithTimeout(ctx, storedTimeout)
	defer cancel()
	q := "SELECT kafka_offset FROM " + quoteIdent(c.cfg.Database) + "." + quoteIdent(c.Options().InsertTable()) +
		" WHERE kafka_topic = ? AND kafka_partition = ? AND kafka_offset >= ? ORDER BY kafka_offset"
	rows, err := c.conn.Query(ctx, q, topic, uint32(partition), uint64(max(from, 0))) //nolint:gosec // Partitions and offsets are non-negative.
	if err != nil {
		return nil, fmt.Errorf("read stored offsets of %s/%d from %d: %w", topic, partition, from, err)
	}
	defer func() { _ = rows.Close() }()
	var offsets []int64
	for rows.Next() {
		var o uint64
		if err := rows.Scan(&o); err != nil {
			return nil, fmt.Errorf("scan stored offset of %s/%d: %w", topic, partition, err)
		}
		offsets = append(offsets, int64(o)) //nolint:gosec // Kafka offsets fit in int64.
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read stored offsets of %s/%d from %d: %w", topic, partition, from, err)
	}
	return processor.Ranges(offsets), nil
}

// dedupWindow returns the insert deduplication window that a table's
// engine_full sets (non_replicated_ or replicated_deduplication_window), and
// whether it sets one.
func dedupWindow(engine string) (string, bool) {
	const key = "replicated_deduplication_window"
	const space = " \t\n"
	i := strings.Index(engine, key)
	if i < 0 {
		return "", false
	}
	rest, ok := strings.CutPrefix(strings.TrimLeft(engine[i+len(key):], space), "=")
	if !ok {
		return "", false
	}
	rest = strings.TrimLeft(rest, space)
	n := len(rest) - len(strings.TrimLeft(rest, "0123456789"))
	return rest[:n], n > 0
}

// Guarantee says how often the connected server stores a consumed row and
// why: exactly once where the main table deduplicates retried INSERTs by
// their token (modern servers, with a deduplication window), at least once
// elsewhere.
func (c *Sink) Guarantee(ctx context.Context) (exact bool, why string, err error) {
	server := "ClickHouse " + c.version.String()
	if c.dialect != schemas.DialectModern {
		return false, server + " has no insert deduplication tokens: an INSERT retried after it landed stores its rows twice until a merge collapses them; count with FINAL", nil
	}
	table := c.Options().InsertTable()
	if c.Options().Clustered() {
		table += schemas.LocalSuffix // The data table under the Distributed one.
	}
	var engine string
	q := "SELECT engine_full FROM system.tables WHERE database = ? AND name = ?"
	err = c.conn.QueryRow(ctx, q, c.cfg.Database, table).Scan(&engine)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, server + ", but the table does not exist yet (run the migrate command)", nil
	case err != nil:
		return false, "", fmt.Errorf("read the engine of %s.%s: %w", c.cfg.Database, table, err)
	}
	window, ok := dedupWindow(engine)
	if !ok || window == "0" {
		return false, server + ", but the table keeps no insert deduplication window (created by an older version: recreate it, or ALTER TABLE ... MODIFY SETTING non_replicated_deduplication_window = 1000)", nil
	}
	return true, fmt.Sprintf("%s, dedup window %s; partitions taken over resume past the rows already stored", server, window), nil
}

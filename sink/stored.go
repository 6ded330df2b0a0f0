package sink

import (
	"context"
	"fmt"
	"time"

	"github.com/textpulse/textpulse/processor"
)

// storedTimeout bounds one read of the stored offsets of a partition.
const storedTimeout = time.Minute

// StoredOffsets implements processor.StoredReader: the offsets at or after
// from of topic/partition that the table holds, read on the ORDER BY key
// (a range scan of one partition's rows, without FINAL). The pipeline calls
// it once when it takes a partition over, so what it returns is bounded by
// what the previous owner had in flight.
func (c *ClickHouse) StoredOffsets(ctx context.Context, topic string, partition int32, from int64) ([]processor.OffsetRange, error) {
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

package clickhouse_test

import (
	"testing"

	"github.com/textpulse/textpulse/internal/testenv"
	"github.com/textpulse/textpulse/sink/clickhouse"
)

func TestInsertInBlocksWritesOnePart(t *testing.T) {
	testenv.EachClickHouse(t, testInsertInBlocksWritesOnePart)
}

// testInsertInBlocksWritesOnePart is TestInsertInBlocksWritesOnePart on one
// server: a batch sent in many blocks (clickhouse.block_bytes) is stored
// whole, as one part, so that streaming the INSERT does not multiply parts
// and merges.
func testInsertInBlocksWritesOnePart(t *testing.T, srv testenv.ClickHouseServer) {
	s, cfg := openTestSink(t, srv, func(c *clickhouse.Config) { c.BlockBytes = 16 << 10 })
	ctx := t.Context()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// Without merges, every part the INSERT wrote stays visible.
	if err := s.Conn().Exec(ctx, "SYSTEM STOP MERGES "+cfg.Database+".events"); err != nil {
		t.Fatal(err)
	}
	const n = 3000 // about six blocks of 512 rows
	if err := s.Write(ctx, testBatch("blocks", n, 0)); err != nil {
		t.Fatal(err)
	}
	var rows, parts uint64
	if err := s.Conn().QueryRow(ctx, "SELECT count() FROM "+cfg.Database+".events").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if err := s.Conn().QueryRow(ctx, "SELECT count() FROM system.parts WHERE database = ? AND table = 'events' AND active",
		cfg.Database).Scan(&parts); err != nil {
		t.Fatal(err)
	}
	if rows != n || parts != 1 {
		t.Errorf("stored %d rows in %d parts, want %d rows in 1 part", rows, parts, n)
	}
	// Every row carries its own values, whichever chunk and block it was
	// sent in: the values of one chunk must not show up in another's rows.
	var wrong uint64
	if err := s.Conn().QueryRow(ctx, "SELECT countIf(event_id != concat('id-', toString(kafka_offset))"+
		" OR substring(text, 1, length(toString(kafka_offset)) + 13) != concat('text number ', toString(kafka_offset), ' ')"+
		" OR length(embedding) != if(kafka_offset % 2 = 0, 2, 0)) FROM "+cfg.Database+".events").Scan(&wrong); err != nil {
		t.Fatal(err)
	}
	if wrong != 0 {
		t.Errorf("%d of %d rows hold another row's values", wrong, n)
	}
}

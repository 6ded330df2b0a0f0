package clickhouse

import (
	"fmt"
	"strings"

	"github.com/textpulse/textpulse/processor"
	"github.com/textpulse/textpulse/schemas"
)

// appendChunk is how many rows are turned into column values at a time:
// every column of a chunk is filled while its records are still in the CPU
// cache, rather than one pass over the whole batch per column.
const appendChunk = 512

// columnAppender takes the values of one column of an INSERT, a chunk at a
// time (Append) or a row at a time (AppendRow): a clickhouse-go
// BatchColumn. An error means the values do not fit the column's type.
type columnAppender interface {
	Append(v any) error
	AppendRow(v any) error
}

// appendColumns appends the values of rs to the columns of an INSERT, one
// chunk of rows at a time; col returns the i-th column. After at least
// blockRows rows it calls flush, which sends the rows appended so far as
// one block and empties the columns for the next; a blockRows of 0 never
// flushes.
func appendColumns(col func(i int) columnAppender, flush func() error, blockRows int, o schemas.Options, cols []schemas.Column, rs []processor.Record) error {
	pending := 0
	// The driver copies what it is given, so each column's chunk slice is
	// refilled for the next chunk.
	reuse := make([]any, len(cols))
	for start := 0; start < len(rs); start += appendChunk {
		chunk := rs[start:min(start+appendChunk, len(rs))]
		for i, c := range cols {
			reuse[i] = c.Values(o, chunk, reuse[i])
			if err := appendValues(col(i), reuse[i]); err != nil {
				return &appendError{column: c.Name, err: err}
			}
		}
		pending += len(chunk)
		if blockRows > 0 && pending >= blockRows && start+appendChunk < len(rs) {
			if err := flush(); err != nil {
				return fmt.Errorf("send block: %w", err)
			}
			pending = 0
		}
	}
	return nil
}

// appendValues appends one chunk of a column. Arrays go a row at a time:
// the driver appends a [][]T through reflection, boxing every row, but a
// []T row of a plain type directly, and an empty row given as nil without
// an allocation.
func appendValues(c columnAppender, v any) error {
	switch v := v.(type) {
	case [][]float32:
		return appendRows(c, v)
	case [][]string:
		return appendRows(c, v)
	}
	return c.Append(v)
}

func appendRows[T any](c columnAppender, rows [][]T) error {
	for _, r := range rows {
		if len(r) == 0 {
			r = nil
		}
		if err := c.AppendRow(r); err != nil {
			return err
		}
	}
	return nil
}

// blockRows is how many rows of rs make a block of about blockBytes: the
// row size is estimated from the raw event bytes of the batch and the
// embedding vectors. It is a multiple of appendChunk, at least one chunk.
func blockRows(blockBytes, eventBytes int, rs []processor.Record) int {
	if blockBytes <= 0 || len(rs) == 0 {
		return 0
	}
	row := eventBytes/len(rs) + rowOverhead
	if e := rs[0].Enrichment; e != nil {
		row += 4 * len(e.Embedding)
	}
	n := blockBytes / max(row, 1)
	return max(appendChunk, n/appendChunk*appendChunk)
}

// rowOverhead is what a row costs in the column buffers besides its event
// bytes and vector: fixed-width columns, string offsets, coordinates.
const rowOverhead = 96

// insertSQL is the INSERT statement for the named columns, in their order.
func insertSQL(db, table string, names []string) string {
	return "INSERT INTO " + quoteIdent(db) + "." + quoteIdent(table) + " (" + strings.Join(names, ", ") + ")"
}

func quoteIdent(s string) string {
	return "`" + strings.ReplaceAll(s, "`", "``") + "`"
}

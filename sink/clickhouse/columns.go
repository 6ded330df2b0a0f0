package clickhouse

import (
	"strings"

	"github.com/textpulse/textpulse/processor"
	"github.com/textpulse/textpulse/schemas"
)

// appendChunk is how many rows are turned into column values at a time:
// every column of a chunk is filled while its records are still in the CPU
// cache, rather than one pass over the whole batch per column.
const appendChunk = 512

// appendColumns appends the values of rs to the columns of an INSERT, one
// chunk of rows at a time; add appends values to the i-th column.
func appendColumns(add func(i int, v any) error, o schemas.Options, cols []schemas.Column, rs []processor.Record) error {
	for start := 0; start < len(rs); start += appendChunk {
		chunk := rs[start:min(start+appendChunk, len(rs))]
		for i, c := range cols {
			if err := add(i, c.Values(o, chunk)); err != nil {
				return &appendError{column: c.Name, err: err}
			}
		}
	}
	return nil
}

// insertSQL is the INSERT statement for the named columns, in their order.
func insertSQL(db, table string, names []string) string {
	return "INSERT INTO " + quoteIdent(db) + "." + quoteIdent(table) + " (" + strings.Join(names, ", ") + ")"
}

func quoteIdent(s string) string {
	return "`" + strings.ReplaceAll(s, "`", "``") + "`"
}

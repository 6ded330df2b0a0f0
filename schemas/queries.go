package schemas

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// EventIDPlaceholder stands for the event id in the nearest_neighbours query.
// It sits inside a string literal, so the query runs as it is (and returns no
// rows); replace it with the id, with quotes and backslashes escaped.
const EventIDPlaceholder = "__EVENT_ID__"

// Query is an example analysis over the textpulse tables.
type Query struct {
	// Name identifies the query, such as "sentiment_over_time".
	Name string
	// Description is the leading comment of the query file as plain text.
	Description string
	// SQL is the query text, leading comment included, without a trailing
	// semicolon.
	SQL string
}

// Queries returns the example analyses rendered for o.Dialect, in a fixed
// order; every query exists in both dialects. The nearest_neighbours query
// holds EventIDPlaceholder where the event id goes.
func Queries(o Options) ([]Query, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("render queries: %w", err)
	}
	o = o.WithDefaults()
	names, err := fs.Glob(files, "queries/*.sql")
	if err != nil {
		return nil, fmt.Errorf("list queries: %w", err)
	}
	sort.Strings(names)
	out := make([]Query, 0, len(names))
	for _, file := range names {
		name := queryName(file)
		sql, err := renderFile(o, file)
		if err != nil {
			return nil, fmt.Errorf("render query %s: %w", name, err)
		}
		out = append(out, Query{Name: name, Description: leadingComment(sql), SQL: sql})
	}
	return out, nil
}

// queryName turns "queries/01_sentiment_over_time.sql" into
// "sentiment_over_time".
func queryName(file string) string {
	name := strings.TrimSuffix(path.Base(file), ".sql")
	if i := strings.IndexByte(name, '_'); i > 0 && strings.Trim(name[:i], "0123456789") == "" {
		name = name[i+1:]
	}
	return name
}

// leadingComment returns the text of the "--" lines at the start of sql,
// joined with spaces.
func leadingComment(sql string) string {
	var parts []string
	for _, line := range strings.Split(sql, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "--") {
			break
		}
		if t := strings.TrimSpace(strings.TrimPrefix(line, "--")); t != "" {
			parts = append(parts, t)
		}
	}
	return strings.Join(parts, " ")
}

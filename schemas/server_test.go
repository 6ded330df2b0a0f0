package schemas_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/textpulse/textpulse/schemas"
)

// TestDDLOnServer runs the DDL for the server's dialect (legacy on 18.16),
// the sample inserts (with a retried batch) and every example query against
// the ClickHouse HTTP interface at TEXTPULSE_TEST_CLICKHOUSE_HTTP, in a
// database of its own that it drops at the end.
func TestDDLOnServer(t *testing.T) {
	base := requireEnv(t, envClickHouseHTTP, "the ClickHouse HTTP URL, such as http://127.0.0.1:8123")
	client := &http.Client{Timeout: time.Minute}

	out, err := postQuery(t.Context(), client, base, "SELECT version() AS version")
	if err != nil {
		t.Fatalf("query server version: %v", err)
	}
	rows, err := parseJSONEachRow(out)
	if err != nil || len(rows) != 1 {
		t.Fatalf("server version: %q, %v", out, err)
	}
	version, _ := rows[0]["version"].(string)
	v, err := schemas.ParseVersion(version)
	if err != nil {
		t.Fatal(err)
	}
	dialect := schemas.DialectFor(v)
	t.Logf("server %s, dialect %s", v, dialect)

	db := fmt.Sprintf("textpulse_test_%d_%d", time.Now().UnixNano(), os.Getpid())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := postQuery(ctx, client, base, "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Errorf("drop test database %s: %v", db, err)
		}
	})
	opts := schemas.Options{Database: db, Table: "events", TTLDays: 30, Dialect: dialect}
	steps := buildPlan(t, opts, time.Now())
	results := make([]stepResult, 0, len(steps))
	for _, s := range steps {
		out, err := postQuery(t.Context(), client, base, s.SQL)
		r := stepResult{Name: s.Name, Output: out}
		if err != nil {
			r.Error = err.Error()
		}
		results = append(results, r)
	}
	checkResults(t, dialect, results)
}

// postQuery sends one statement (with inline data for an INSERT) to the HTTP
// interface and returns the body, rows in JSONEachRow for a SELECT.
func postQuery(ctx context.Context, client *http.Client, base, sql string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", base, err)
	}
	q := u.Query()
	q.Set("default_format", "JSONEachRow")
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(sql))
	if err != nil {
		return "", fmt.Errorf("build request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("post query: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("http %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return strings.TrimSpace(string(body)), nil
}

package schemas_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/textpulse/textpulse/internal/testenv"
	"github.com/textpulse/textpulse/schemas"
)

// TestDDLOnServer runs the DDL for the server's dialect (legacy on 18.16,
// modern on 26.9), the sample inserts (with a retried batch) and every
// example query against the HTTP interface of each shared server, in a
// database of its own that it drops at the end.
func TestDDLOnServer(t *testing.T) {
	testenv.EachClickHouse(t, testDDLOnServer)
}

// testDDLOnServer is TestDDLOnServer on one server.
func testDDLOnServer(t *testing.T, srv testenv.ClickHouseServer) {
	base := srv.HTTPEndpoint(t)
	client := &http.Client{Timeout: time.Minute}
	dialect := serverDialect(t, client, base)
	if want := dialectOf(srv); dialect != want {
		t.Fatalf("the %s server gets dialect %s, want %s", srv.Name, dialect, want)
	}

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
		var se *serverError
		if s.ExistsOK && errors.As(err, &se) && se.Code == 44 {
			err = nil
		}
		if err != nil {
			r.Error = err.Error()
		}
		results = append(results, r)
	}
	checkResults(t, dialect, results)
}

// serverDialect asks the server at base for its version and returns the
// dialect the schema renders for it.
func serverDialect(t *testing.T, client *http.Client, base string) schemas.Dialect {
	t.Helper()
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
	return dialect
}

// dialectOf is the dialect a shared server must get.
func dialectOf(srv testenv.ClickHouseServer) schemas.Dialect {
	if srv.Modern {
		return schemas.DialectModern
	}
	return schemas.DialectLegacy
}

// serverError is an error answer of the HTTP interface.
type serverError struct {
	// Status is the HTTP status, Code the server's exception code (0 when
	// the answer names none).
	Status, Code int
	Body         string
}

func (e *serverError) Error() string {
	return fmt.Sprintf("http %d (code %d): %s", e.Status, e.Code, e.Body)
}

// exceptionCode returns the code of an error answer: the
// X-ClickHouse-Exception-Code header where the server sends it (26.9),
// else the code the body starts with (18.16).
func exceptionCode(h http.Header, body string) int {
	if n, err := strconv.Atoi(h.Get("X-ClickHouse-Exception-Code")); err == nil {
		return n
	}
	// "Code: 62," on 18.16, "Code: 62." on 26.9.
	if m := regexp.MustCompile(`^Code: (\d+)`).FindStringSubmatch(body); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

// postQuery sends one statement (with inline data for an INSERT) to the HTTP
// interface and returns the body, rows in JSONEachRow for a SELECT. An
// error answer comes back as a *serverError.
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
		text := strings.TrimSpace(string(body))
		return "", &serverError{Status: resp.StatusCode, Code: exceptionCode(resp.Header, text), Body: text}
	}
	return strings.TrimSpace(string(body)), nil
}

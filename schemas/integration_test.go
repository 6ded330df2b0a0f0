package schemas_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/textpulse/textpulse/schemas"
)

// Environment variables of the integration tests.
const (
	envChdbPython      = "TEXTPULSE_TEST_CHDB_PYTHON"
	envRequireServices = "TEXTPULSE_TEST_REQUIRE_SERVICES"
)

// requireEnv returns the value of name, or skips the test when it is unset,
// unless TEXTPULSE_TEST_REQUIRE_SERVICES=1 makes a missing service fatal.
func requireEnv(t *testing.T, name, what string) string {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	if os.Getenv(envRequireServices) == "1" {
		t.Fatalf("%s is unset but %s=1: set it to %s", name, envRequireServices, what)
	}
	t.Skipf("%s is unset: set it to %s to run this test", name, what)
	return ""
}

// step is one SQL statement of an integration plan. An INSERT carries its
// JSONEachRow data after the FORMAT clause.
type step struct {
	Name string `json:"name"`
	SQL  string `json:"sql"`
	// ExistsOK takes a failure with code 44 (the column exists) as done,
	// as the migration runner does for schemas.Statement.ExistsOK.
	ExistsOK bool `json:"exists_ok,omitempty"`
}

// stepResult is what a step returned: rows in JSONEachRow, or an error.
type stepResult struct {
	Name   string `json:"name"`
	Output string `json:"output"`
	Error  string `json:"error"`
}

// sampleRow is one enriched record of the test data.
type sampleRow struct {
	topic          string
	partition      uint32
	offset         uint64
	eventID        string
	text           string
	source         string
	author         string
	lang           string
	embedding      []float32
	sentimentLabel string
	sentimentScore float32
	emotionLabels  []string
	emotionScores  []float32
	failedStages   []string
}

// sampleBatches returns two insert batches: eight distinct records over two
// topics. Embeddings are unit vectors; e7 is the nearest neighbour of e1,
// then e2.
func sampleBatches() (a, b []sampleRow) {
	a = []sampleRow{
		{"tp.tweets", 0, 100, "e1", "The update broke my sync again.", "web", "alice", "en",
			[]float32{1, 0, 0}, "negative", 0.91, []string{"anger", "joy", "sadness"}, []float32{0.7, 0.2, 0.1}, nil},
		{"tp.tweets", 0, 101, "e2", "Love the new dark mode!", "web", "bob", "en",
			[]float32{0.8, 0.6, 0}, "positive", 0.88, []string{"joy", "anger"}, []float32{0.9, 0.1}, nil},
		{"tp.tweets", 0, 102, "e3", "Support never answered.", "app", "alice", "en",
			[]float32{0, 1, 0}, "negative", 0.75, []string{"sadness", "anger"}, []float32{0.6, 0.4}, nil},
		{"tp.tweets", 1, 7, "e4", "Funciona bem.", "app", "carol", "pt",
			[]float32{0, 0, 1}, "neutral", 0.55, []string{"joy"}, []float32{0.5}, nil},
		{"tp.tweets", 1, 8, "e5", "Não sei o que dizer, it's odd \\ \"quoted\".", "app", "carol", "pt",
			[]float32{0.6, 0, 0.8}, "", 0, []string{"surprise", "joy"}, []float32{0.8, 0.2}, []string{"sentiment"}},
		{"tp.reviews", 0, 0, "e6", "Lieferung kam zu spät.", "web", "dave", "de",
			nil, "negative", 0.6, nil, nil, []string{"embedding", "emotion"}},
	}
	b = []sampleRow{
		{"tp.reviews", 0, 1, "e7", "Terrible: it crashed on start.", "web", "alice", "de",
			[]float32{0.96, 0.28, 0}, "negative", 0.99, []string{"anger"}, []float32{0.95}, nil},
		{"tp.reviews", 0, 2, "", "Pretty good value.", "web", "erin", "de",
			[]float32{0, 0.6, 0.8}, "positive", 0.7, []string{"joy"}, []float32{0.66}, nil},
	}
	return a, b
}

// insertSQL renders an INSERT of rows with exactly InsertColumns and the
// settings of InsertSettings, with the rows inline in JSONEachRow.
func insertSQL(t *testing.T, o schemas.Options, rows []sampleRow, at time.Time, token string) string {
	t.Helper()
	o = o.WithDefaults()
	cols := schemas.InsertColumns()
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s.%s (%s)", o.Database, o.Table, strings.Join(cols, ", "))
	settings := schemas.InsertSettings(o, token)
	if len(settings) > 0 {
		names := slices.Sorted(maps.Keys(settings))
		for i, name := range names {
			names[i] = name + " = '" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(fmt.Sprint(settings[name])) + "'"
		}
		b.WriteString(" SETTINGS " + strings.Join(names, ", "))
	}
	b.WriteString(" FORMAT JSONEachRow ")
	tsLayout := "2006-01-02 15:04:05"
	if o.Dialect == schemas.DialectModern {
		tsLayout = "2006-01-02 15:04:05.000"
	}
	for i, r := range rows {
		kafkaTS := at.Add(time.Duration(i) * time.Second).UTC()
		createdAt := kafkaTS.Add(-1500 * time.Millisecond)
		emotionLabel := ""
		if len(r.emotionLabels) > 0 {
			emotionLabel = r.emotionLabels[0]
		}
		status := "ok"
		if len(r.failedStages) > 0 {
			status = "partial"
		}
		row := make(map[string]any, len(cols))
		for _, c := range cols {
			var v any
			switch c {
			case "kafka_topic":
				v = r.topic
			case "kafka_partition":
				v = r.partition
			case "kafka_offset":
				v = r.offset
			case "kafka_timestamp":
				v = kafkaTS.Format(tsLayout)
			case "event_id":
				v = r.eventID
			case "text":
				v = r.text
			case "source":
				v = r.source
			case "author":
				v = r.author
			case "lang":
				v = r.lang
			case "created_at":
				v = createdAt.Format(tsLayout)
			case "metadata":
				v = `{"offset":` + strconv.FormatUint(r.offset, 10) + `}`
				if o.WithDefaults().MetadataType == schemas.MetadataJSON {
					// A JSON column reads an object, not a string.
					v = json.RawMessage(v.(string))
				}
			case "embedding":
				v = nonNil(r.embedding)
			case "embedding_model":
				v = modelIf(len(r.embedding) > 0, "test-embed")
			case "sentiment_label":
				v = r.sentimentLabel
			case "sentiment_score":
				v = r.sentimentScore
			case "sentiment_model":
				v = modelIf(r.sentimentLabel != "", "test-sentiment")
			case "emotion_label":
				v = emotionLabel
			case "emotion_labels":
				v = nonNil(r.emotionLabels)
			case "emotion_scores":
				v = nonNil(r.emotionScores)
			case "emotion_model":
				v = modelIf(emotionLabel != "", "test-emotion")
			case "status":
				v = status
			case "failed_stages":
				v = nonNil(r.failedStages)
			case "revision":
				v = 0
			default:
				t.Fatalf("InsertColumns has column %q that the test does not know", c)
			}
			row[c] = v
		}
		line, err := json.Marshal(row)
		if err != nil {
			t.Fatal(err)
		}
		// Rows go on one line, separated by spaces: older chdb releases end
		// inline INSERT data at the first newline.
		if i > 0 {
			b.WriteByte(' ')
		}
		b.Write(line)
	}
	return b.String()
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func modelIf(ok bool, name string) string {
	if ok {
		return name
	}
	return ""
}

// buildPlan returns the steps that create the schema (twice, to show it is
// idempotent), record the migration, insert the sample batches with a
// retried first batch, read back the counts and run every example query.
func buildPlan(t *testing.T, o schemas.Options, now time.Time) []step {
	t.Helper()
	o = o.WithDefaults()
	var steps []step
	boot, err := schemas.Bootstrap(o)
	if err != nil {
		t.Fatal(err)
	}
	migs, err := schemas.Migrations(o)
	if err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 2; round++ {
		for _, s := range boot {
			steps = append(steps, step{Name: fmt.Sprintf("bootstrap %d %s", round, s.Name), SQL: s.SQL})
		}
		for _, m := range migs {
			for _, s := range m.Statements {
				steps = append(steps, step{Name: fmt.Sprintf("migration %d.%d %s", m.Version, round, s.Name), SQL: s.SQL, ExistsOK: s.ExistsOK})
			}
			rec, err := schemas.RecordMigrationSQL(o, m)
			if err != nil {
				t.Fatal(err)
			}
			steps = append(steps, step{Name: fmt.Sprintf("record %d.%d", m.Version, round), SQL: rec})
		}
	}
	applied, err := schemas.AppliedVersionsSQL(o)
	if err != nil {
		t.Fatal(err)
	}
	steps = append(steps, step{Name: "applied versions", SQL: applied})

	a, b := sampleBatches()
	at := now.Add(-2 * time.Minute)
	steps = append(steps,
		step{Name: "insert a", SQL: insertSQL(t, o, a, at, "batch-a")},
		step{Name: "insert a again", SQL: insertSQL(t, o, a, at, "batch-a")},
		step{Name: "insert b", SQL: insertSQL(t, o, b, at.Add(time.Duration(len(a))*time.Second), "batch-b")},
	)
	table := o.Database + "." + o.Table
	steps = append(steps,
		step{Name: "count raw", SQL: "SELECT count() AS n FROM " + table},
		step{Name: "count final", SQL: "SELECT count() AS n FROM " + table + " FINAL"},
		step{Name: "rollup", SQL: "SELECT sum(events) AS events, sum(sentiment_scored) AS scored, sum(partial) AS partial, " +
			"round(sum(sentiment_score_sum), 3) AS score_sum FROM " + table + "_per_minute"},
	)
	if o.Dialect == schemas.DialectModern {
		steps = append(steps, step{Name: "emotion alias", SQL: "SELECT emotion, toTypeName(emotion) AS type FROM " + table + " WHERE event_id = 'e1'"})
	}
	qs, err := schemas.Queries(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		steps = append(steps, step{Name: "query " + q.Name, SQL: strings.ReplaceAll(q.SQL, schemas.EventIDPlaceholder, "e1")})
	}
	return steps
}

// checkResults verifies what the plan produced on a server of dialect d.
func checkResults(t *testing.T, d schemas.Dialect, results []stepResult) {
	t.Helper()
	byName := map[string][]map[string]any{}
	for _, r := range results {
		if r.Error != "" {
			t.Errorf("step %q: %s", r.Name, r.Error)
			continue
		}
		rows, err := parseJSONEachRow(r.Output)
		if err != nil {
			t.Errorf("step %q: %v", r.Name, err)
			continue
		}
		byName[r.Name] = rows
	}
	if t.Failed() {
		t.FailNow()
	}
	one := func(name, col string) float64 {
		t.Helper()
		rows := byName[name]
		if len(rows) != 1 {
			t.Fatalf("step %q returned %d rows, want 1: %v", name, len(rows), rows)
		}
		return num(t, rows[0][col])
	}

	t.Run("migrations recorded once", func(t *testing.T) {
		rows := byName["applied versions"]
		if len(rows) != 2 || num(t, rows[0]["version"]) != 1 || num(t, rows[1]["version"]) != 2 {
			t.Errorf("applied versions = %v, want [1 2]", rows)
		}
	})
	t.Run("retried insert", func(t *testing.T) {
		raw, final, events := one("count raw", "n"), one("count final", "n"), one("rollup", "events")
		if final != 8 {
			t.Errorf("count() FINAL = %v, want 8", final)
		}
		switch d {
		case schemas.DialectModern:
			// The retry carries the same insert_deduplication_token: no
			// second copy in the table, nothing pushed to the view.
			if raw != 8 || events != 8 {
				t.Errorf("count() = %v, rollup events = %v; want 8 and 8 (retry deduplicated)", raw, events)
			}
		case schemas.DialectLegacy:
			// No insert deduplication: the table holds the copies until a
			// merge collapses them, and the rollup counts them twice.
			if raw < 8 || raw > 14 {
				t.Errorf("count() = %v, want 8..14", raw)
			}
			if events != 14 {
				t.Errorf("rollup events = %v, want 14 (6 retried rows counted twice)", events)
			}
		}
	})
	t.Run("rollup counters", func(t *testing.T) {
		scored, partial := one("rollup", "scored"), one("rollup", "partial")
		wantScored, wantPartial := 7.0, 2.0
		if d == schemas.DialectLegacy {
			wantScored, wantPartial = 12, 4 // batch a (5 scored, 2 partial) twice
		}
		if scored != wantScored || partial != wantPartial {
			t.Errorf("rollup scored = %v, partial = %v; want %v, %v", scored, partial, wantScored, wantPartial)
		}
	})
	if d == schemas.DialectModern {
		t.Run("emotion alias", func(t *testing.T) {
			rows := byName["emotion alias"]
			if len(rows) != 1 {
				t.Fatalf("rows = %v", rows)
			}
			m, _ := rows[0]["emotion"].(map[string]any)
			if len(m) != 3 || math.Abs(num(t, m["anger"])-0.7) > 1e-6 || rows[0]["type"] != "Map(String, Float32)" {
				t.Errorf("emotion = %v (%v), want {anger:0.7, joy:0.2, sadness:0.1} Map(String, Float32)", m, rows[0]["type"])
			}
		})
	}
	t.Run("query events_per_topic", func(t *testing.T) {
		got := map[string]float64{}
		for _, r := range byName["query events_per_topic"] {
			got[r["kafka_topic"].(string)] = num(t, r["events"])
		}
		if got["tp.tweets"] != 5 || got["tp.reviews"] != 3 || len(got) != 2 {
			t.Errorf("events per topic = %v, want tp.tweets 5, tp.reviews 3", got)
		}
	})
	t.Run("query nearest_neighbours", func(t *testing.T) {
		rows := byName["query nearest_neighbours"]
		var ids []string
		for _, r := range rows {
			ids = append(ids, r["event_id"].(string))
		}
		// e6 has no embedding; e1 itself is excluded.
		if len(rows) != 6 || ids[0] != "e7" || ids[1] != "e2" {
			t.Fatalf("neighbours of e1 = %v, want 6 rows starting e7, e2", ids)
		}
		if d0 := num(t, rows[0]["cosine_distance"]); math.Abs(d0-0.04) > 1e-4 {
			t.Errorf("cosine distance e1-e7 = %v, want 0.04", d0)
		}
	})
	t.Run("query negative_texts_by_author", func(t *testing.T) {
		var got []string
		for _, r := range byName["query negative_texts_by_author"] {
			got = append(got, fmt.Sprintf("%s:%v:%s", r["author"], num(t, r["negative_texts"]), r["event_id"]))
		}
		want := "alice:3:e7 alice:3:e1 alice:3:e3 dave:1:e6"
		if strings.Join(got, " ") != want {
			t.Errorf("negative texts = %v, want %s", got, want)
		}
	})
	t.Run("query partial_rows", func(t *testing.T) {
		var events, partial float64
		stages := map[string]float64{}
		for _, r := range byName["query partial_rows"] {
			events += num(t, r["events"])
			partial += num(t, r["partial_events"])
			pair, _ := r["failed_stage_counts"].([]any)
			if len(pair) != 2 {
				t.Fatalf("failed_stage_counts = %v, want [stages, counts]", r["failed_stage_counts"])
			}
			names, _ := pair[0].([]any)
			counts, _ := pair[1].([]any)
			for i := range names {
				stages[names[i].(string)] += num(t, counts[i])
			}
		}
		if events != 8 || partial != 2 {
			t.Errorf("events = %v, partial = %v; want 8, 2", events, partial)
		}
		if stages["sentiment"] != 1 || stages["embedding"] != 1 || stages["emotion"] != 1 || len(stages) != 3 {
			t.Errorf("failed stages = %v, want sentiment, embedding, emotion once each", stages)
		}
	})
	t.Run("query top_emotions_by_language", func(t *testing.T) {
		got := map[string]float64{}
		for _, r := range byName["query top_emotions_by_language"] {
			got[r["lang"].(string)+"/"+r["emotion_label"].(string)] = num(t, r["events"])
		}
		if got["en/anger"] != 1 || got["de/anger"] != 1 || got["de/joy"] != 1 || got["pt/surprise"] != 1 || len(got) != 7 {
			t.Errorf("top emotions = %v", got)
		}
	})
	t.Run("query sentiment_over_time", func(t *testing.T) {
		var events float64
		for _, r := range byName["query sentiment_over_time"] {
			events += num(t, r["events"])
		}
		want := 8.0
		if d == schemas.DialectLegacy {
			want = 14 // the rollup counts the retried batch twice
		}
		if events != want {
			t.Errorf("events = %v, want %v", events, want)
		}
	})
	t.Run("query ingest_lag", func(t *testing.T) {
		var events float64
		for _, r := range byName["query ingest_lag"] {
			events += num(t, r["events"])
		}
		if events < 8 {
			t.Errorf("events = %v, want at least 8", events)
		}
	})
}

// parseJSONEachRow decodes one JSON object per line.
func parseJSONEachRow(s string) ([]map[string]any, error) {
	var rows []map[string]any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	for dec.More() {
		var row map[string]any
		if err := dec.Decode(&row); err != nil {
			return nil, fmt.Errorf("decode JSONEachRow: %w", err)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// num reads a JSON number or a quoted 64-bit integer.
func num(t *testing.T, v any) float64 {
	t.Helper()
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = x
	default:
		t.Fatalf("%v (%T) is not a number", v, v)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%q is not a number: %v", s, err)
	}
	return f
}

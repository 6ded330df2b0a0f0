package clickhouse_test

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/textpulse/textpulse/internal/testenv"
	"github.com/textpulse/textpulse/processor"
)

func TestReadPageAndWriteRevision(t *testing.T) {
	testenv.EachClickHouse(t, testReadPageAndWriteRevision)
}

// testReadPageAndWriteRevision is TestReadPageAndWriteRevision on one
// server: rows read back equal the rows written, pages follow key order,
// and a new version of the partial rows replaces them under FINAL and
// moves their counts in the rollup.
func testReadPageAndWriteRevision(t *testing.T, srv testenv.ClickHouseServer) {
	s, cfg := openTestSink(t, srv)
	ctx := t.Context()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	written := testBatch("topic-a", 30, 0)
	if err := s.Write(ctx, written); err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(written.Records)
	slices.SortFunc(want, func(a, b processor.Record) int { return cmpKey(a.Key(), b.Key()) })

	var got []processor.Record
	after := processor.RowKey{}
	for {
		page, err := s.ReadPage(ctx, "", after, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1].Key()
	}
	if len(got) != len(want) {
		t.Fatalf("read %d rows in pages, want %d", len(got), len(want))
	}
	for i := range want {
		if !sameRow(got[i], want[i]) {
			t.Fatalf("row %d read back as\n%+v\nwant\n%+v", i, got[i], want[i])
		}
	}

	partial, err := s.ReadPage(ctx, "status = 'partial'", processor.RowKey{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.CountRows(ctx, "has(failed_stages, 'sentiment')", processor.RowKey{}); err != nil || n != 15 || len(partial) != 15 {
		t.Fatalf("partial rows: read %d, counted %d (%v), want 15", len(partial), n, err)
	}
	b := processor.NewBatch("rev")
	b.DedupScope = "revision-test"
	for _, r := range partial {
		r = r.Copy()
		r.FailedStages, r.SentimentLabel, r.SentimentScore, r.SentimentModel = nil, "negative", -0.5, "m2"
		r.Revision++
		b.Append(r)
	}
	for range 2 { // the repeat is dropped where inserts deduplicate, collapses under FINAL elsewhere
		if err := s.WriteRevision(ctx, b, partial); err != nil {
			t.Fatal(err)
		}
	}
	var total, stillPartial, negative uint64
	q := fmt.Sprintf("SELECT count(), countIf(status = 'partial'), countIf(sentiment_label = 'negative' AND revision = 1) FROM %s.events FINAL", cfg.Database)
	if err := s.Conn().QueryRow(ctx, q).Scan(&total, &stillPartial, &negative); err != nil {
		t.Fatal(err)
	}
	if total != 30 || stillPartial != 0 || negative != 15 {
		t.Fatalf("after the revision: %d rows, %d partial, %d negative at revision 1; want 30 0 15", total, stillPartial, negative)
	}
	if !srv.Modern {
		return // no insert deduplication: the repeated correction counts twice
	}
	var events, scored, partialRolled int64
	var scoreSum float64
	q = fmt.Sprintf("SELECT sum(events), sum(sentiment_scored), sum(partial), sum(sentiment_score_sum) FROM %s.events_per_minute", cfg.Database)
	if err := s.Conn().QueryRow(ctx, q).Scan(&events, &scored, &partialRolled, &scoreSum); err != nil {
		t.Fatal(err)
	}
	if events != 30 || scored != 30 || partialRolled != 0 || scoreSum != 0 { // 15 rows at +0.5, 15 new ones at -0.5
		t.Fatalf("rollup: events %d scored %d partial %d score sum %v; want 30 30 0 0", events, scored, partialRolled, scoreSum)
	}
}

func cmpKey(a, b processor.RowKey) int {
	switch {
	case a.Topic != b.Topic:
		return map[bool]int{true: -1, false: 1}[a.Topic < b.Topic]
	case a.Partition != b.Partition:
		return int(a.Partition - b.Partition)
	}
	return int(a.Offset - b.Offset)
}

// sameRow compares what a row stores of a record (nil and empty slices
// alike).
func sameRow(a, b processor.Record) bool {
	norm := func(r processor.Record) processor.Record {
		for _, p := range []*[]string{&r.EmotionLabels, &r.FailedStages} {
			if len(*p) == 0 {
				*p = nil
			}
		}
		for _, p := range []*[]float32{&r.Embedding, &r.EmotionScores} {
			if len(*p) == 0 {
				*p = nil
			}
		}
		r.Timestamp, r.CreatedAt = r.Timestamp.UTC(), r.CreatedAt.UTC()
		return r
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

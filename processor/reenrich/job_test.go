package reenrich

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/textpulse/textpulse/processor"
)

// memStore is a Store over rows in memory; it ignores the condition (the
// tests select with failed_stages) and keeps the newest version of a key.
type memStore struct {
	rows     []processor.Record // in key order
	writes   int
	failNext bool
	tokens   map[string]bool
}

func (m *memStore) ReadPage(_ context.Context, _ string, after processor.RowKey, limit int) ([]processor.Record, error) {
	var out []processor.Record
	for _, r := range m.rows {
		if less(after, r.Key()) && len(r.FailedStages) > 0 && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *memStore) CountRows(ctx context.Context, where string, after processor.RowKey) (uint64, error) {
	rs, _ := m.ReadPage(ctx, where, after, 1<<30)
	return uint64(len(rs)), nil
}

func (m *memStore) WriteRevision(_ context.Context, b *processor.Batch, old []processor.Record) error {
	if len(old) != len(b.Records) {
		return errors.New("old and new differ in length")
	}
	m.writes++
	if !m.tokens[b.DedupToken()] {
		m.tokens[b.DedupToken()] = true
		for _, r := range b.Records {
			for i := range m.rows {
				if m.rows[i].Key() == r.Key() {
					m.rows[i] = r
				}
			}
		}
	}
	if m.failNext {
		m.failNext = false
		return errors.New("connection reset after the insert landed")
	}
	return nil
}

func less(a, b processor.RowKey) bool {
	if a.Topic != b.Topic {
		return a.Topic < b.Topic
	}
	if a.Partition != b.Partition {
		return a.Partition < b.Partition
	}
	return a.Offset < b.Offset
}

// labeler sets SentimentLabel to the upper-cased text, or fails the texts
// in fail.
type labeler struct {
	texts []string
	fail  map[string]bool
}

func (l *labeler) Name() string { return "sentiment" }

func (l *labeler) Enrich(ctx context.Context, b *processor.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i := range b.Records {
		r := &b.Records[i]
		l.texts = append(l.texts, r.Text)
		if l.fail[r.Text] {
			b.MarkFailed(i, "sentiment")
			continue
		}
		r.SentimentLabel, r.SentimentModel = strings.ToUpper(r.Text), "m2"
	}
	return nil
}

func newStore(n int) *memStore {
	m := &memStore{tokens: map[string]bool{}}
	for i := range n {
		r := processor.Record{Topic: "t", Partition: int32(i % 2), Offset: int64(i / 2), Enrichment: &processor.Enrichment{}}
		r.Text = "text" + string(rune('a'+i))
		if i%3 == 0 {
			r.SentimentLabel, r.SentimentModel = "kept", "m1"
		} else {
			r.FailedStages = []string{"sentiment"}
		}
		m.rows = append(m.rows, r)
	}
	slices.SortFunc(m.rows, func(a, b processor.Record) int {
		if less(a.Key(), b.Key()) {
			return -1
		}
		return 1
	})
	return m
}

func TestRunFillsFailedStages(t *testing.T) {
	store := newStore(12) // 8 partial rows
	st := &labeler{fail: map[string]bool{"textb": true}}
	path := filepath.Join(t.TempDir(), "cp.json")
	j := &Job{Store: store, Stages: []processor.Stage{st}, Filter: Filter{FailedStages: []string{"sentiment"}}, PageSize: 3, Checkpoint: path}
	rep, err := j.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total != 8 || rep.Read != 8 || rep.Updated != 7 || rep.Enriched["sentiment"] != 7 || rep.Failed["sentiment"] != 1 {
		t.Fatalf("report %+v", rep)
	}
	if len(st.texts) != 8 {
		t.Fatalf("stage saw %d texts, want the 8 partial rows once each", len(st.texts))
	}
	for _, r := range store.rows {
		switch {
		case r.Text == "textb":
			if r.Revision != 0 || !slices.Equal(r.FailedStages, []string{"sentiment"}) {
				t.Errorf("a row that failed again was rewritten: %+v", r)
			}
		case r.SentimentLabel == "kept":
			if r.Revision != 0 {
				t.Errorf("a complete row was rewritten: %+v", r)
			}
		case r.SentimentLabel != strings.ToUpper(r.Text) || r.Revision != 1 || len(r.FailedStages) != 0:
			t.Errorf("row %v not re-enriched: %+v", r.Key(), r)
		}
	}
	if _, _, err := loadCheckpoint(path, "x", nil); err != nil {
		t.Fatalf("the checkpoint of a finished run is still there: %v", err)
	}
}

func TestRunResumesWithoutEnrichingTwice(t *testing.T) {
	store := newStore(30) // 20 partial rows
	st := &labeler{}
	path := filepath.Join(t.TempDir(), "cp.json")
	crash := errors.New("killed")
	j := &Job{Store: store, Stages: []processor.Stage{st}, PageSize: 4, Checkpoint: path,
		AfterWrite: func(page int) error {
			if page == 3 {
				return crash // killed after the write of page 3, before its checkpoint
			}
			return nil
		}}
	if _, err := j.Run(t.Context()); !errors.Is(err, crash) {
		t.Fatalf("first run ended with %v, want the crash", err)
	}
	firstTexts, writes := len(st.texts), store.writes
	j.AfterWrite = nil
	rep, err := j.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Resumed || rep.Total != 20 {
		t.Fatalf("resume report %+v, want resumed over 20 rows", rep)
	}
	if len(st.texts) != 20 || firstTexts != 12 {
		t.Fatalf("the stage saw %d texts over both runs (%d in the first), want each of the 20 once", len(st.texts), firstTexts)
	}
	if store.writes != writes+3 {
		t.Fatalf("%d writes after the resume, want 3: page 3 written again (a no-op), then pages 4 and 5", store.writes-writes)
	}
	for _, r := range store.rows {
		if r.SentimentLabel == "" || len(r.FailedStages) != 0 {
			t.Errorf("row %v left partial: %+v", r.Key(), r)
		}
	}
}

func TestRunRefusesAnotherRunsCheckpoint(t *testing.T) {
	store := newStore(6)
	path := filepath.Join(t.TempDir(), "cp.json")
	cp := &checkpoint{Run: "r1", Filter: "status = 'partial'", Stages: []string{"sentiment"}}
	if err := cp.save(path); err != nil {
		t.Fatal(err)
	}
	j := &Job{Store: store, Stages: []processor.Stage{&labeler{}}, Filter: Filter{FailedStages: []string{"sentiment"}}, PageSize: 3, Checkpoint: path}
	if _, err := j.Run(t.Context()); !errors.Is(err, ErrCheckpointMismatch) {
		t.Fatalf("error %v, want ErrCheckpointMismatch", err)
	}
}

func TestNeeds(t *testing.T) {
	j := &Job{Filter: Filter{StaleModels: map[string]string{"emotion": "B"}}, Force: []string{"embedding"}}
	tests := []struct {
		name  string
		r     processor.Record
		stage string
		want  bool
	}{
		{"failed stage", processor.Record{Enrichment: &processor.Enrichment{FailedStages: []string{"sentiment"}}}, "sentiment", true},
		{"complete stage", processor.Record{Enrichment: &processor.Enrichment{SentimentModel: "x"}}, "sentiment", false},
		{"stale model", processor.Record{Enrichment: &processor.Enrichment{EmotionModel: "A"}}, "emotion", true},
		{"no model yet", processor.Record{}, "emotion", true},
		{"current model", processor.Record{Enrichment: &processor.Enrichment{EmotionModel: "B"}}, "emotion", false},
		{"forced", processor.Record{}, "embedding", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := j.Needs(&tt.r, tt.stage); got != tt.want {
				t.Errorf("Needs(%s) = %v, want %v", tt.stage, got, tt.want)
			}
		})
	}
}

func TestFilterSQL(t *testing.T) {
	since := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		f    Filter
		want string
	}{
		{"every row", Filter{}, ""},
		{"partial", Filter{Partial: true}, "(status = 'partial')"},
		{"reasons are ORed", Filter{FailedStages: []string{"sentiment"}, StaleModels: map[string]string{"emotion": "B", "embedding": "e'3"}},
			`(has(failed_stages, 'sentiment') OR embedding_model != 'e\'3' OR emotion_model != 'B')`},
		{"bounds are ANDed", Filter{Partial: true, Since: since, Until: since.Add(time.Hour), Topic: "in", Partitions: []int32{0, 2}, Where: "lang = 'en'"},
			"(status = 'partial') AND created_at >= toDateTime(1793491200) AND created_at < toDateTime(1793494800) AND kafka_topic = 'in' AND kafka_partition IN (0, 2) AND (lang = 'en')"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.SQL(); got != tt.want {
				t.Errorf("SQL() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// rejecter dead-letters every record, as a stage under on_failure
// dead_letter does when its provider fails.
type rejecter struct{}

func (rejecter) Name() string { return "sentiment" }

func (rejecter) Enrich(_ context.Context, b *processor.Batch) error {
	for i := range b.Records {
		b.Reject(i, "sentiment", processor.ClassStageFailed, errors.New("down"), 1)
	}
	return nil
}

func TestRunKeepsRowsADeadLetterPolicyRejects(t *testing.T) {
	store := newStore(6)
	j := &Job{Store: store, Stages: []processor.Stage{rejecter{}}, PageSize: 10}
	rep, err := j.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Updated != 0 || rep.Failed["sentiment"] != 4 || store.writes != 0 {
		t.Fatalf("report %+v, %d writes; want the 4 rows failed again and nothing written", rep, store.writes)
	}
	for _, r := range store.rows {
		if r.Revision != 0 || (r.SentimentLabel == "" && !slices.Equal(r.FailedStages, []string{"sentiment"})) {
			t.Fatalf("row %v changed: %+v", r.Key(), r)
		}
	}
}

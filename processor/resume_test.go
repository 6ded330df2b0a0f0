package processor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
)

// tableWriter is a sink that counts how often each coordinate was written
// and answers StoredOffsets from what it holds, failing the first failReads
// reads.
type tableWriter struct {
	mu        sync.Mutex
	writes    map[TopicPartition]map[int64]int
	failReads int
	reads     int
}

func newTableWriter() *tableWriter {
	return &tableWriter{writes: make(map[TopicPartition]map[int64]int)}
}

func (w *tableWriter) store(tp TopicPartition, offsets ...int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.writes[tp] == nil {
		w.writes[tp] = make(map[int64]int)
	}
	for _, o := range offsets {
		w.writes[tp][o]++
	}
}

func (w *tableWriter) Write(_ context.Context, b *Batch) error {
	for _, r := range b.Records {
		w.store(TopicPartition{Topic: r.Topic, Partition: r.Partition}, r.Offset)
	}
	return nil
}

func (w *tableWriter) StoredOffsets(_ context.Context, topic string, partition int32, from int64) ([]OffsetRange, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reads++
	if w.reads <= w.failReads {
		return nil, errors.New("server unreachable")
	}
	var offs []int64
	for o := range w.writes[TopicPartition{Topic: topic, Partition: partition}] {
		if o >= from {
			offs = append(offs, o)
		}
	}
	slices.Sort(offs)
	return Ranges(offs), nil
}

func (w *tableWriter) distinct() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, m := range w.writes {
		n += len(m)
	}
	return n
}

// check reports coordinates written more or less than once, for partitions
// 0..parts-1 holding perPart records each.
func (w *tableWriter) check(topic string, parts int32, perPart int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for p := range parts {
		m := w.writes[TopicPartition{Topic: topic, Partition: p}]
		for o := range perPart {
			if m[o] != 1 {
				return fmt.Errorf("partition %d offset %d written %d times", p, o, m[o])
			}
		}
	}
	return nil
}

func TestPipelineResumesPastStoredRows(t *testing.T) {
	for _, tc := range []struct {
		name      string
		failReads int
	}{
		{"reads answer", 0},
		{"reads fail then answer", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 2)
			var values []string
			for i := range 400 {
				values = append(values, event(i, "text"))
			}
			f.produce(2, values...)
			// A previous owner stored these rows and crashed before
			// committing: partition 0 offsets 10-59 and 100-119 (two
			// batches that finished out of order), partition 1 offsets 0-29.
			w := newTableWriter()
			w.failReads = tc.failReads
			for o := int64(10); o < 60; o++ {
				w.store(TopicPartition{Topic: f.topic, Partition: 0}, o)
			}
			for o := int64(100); o < 120; o++ {
				w.store(TopicPartition{Topic: f.topic, Partition: 0}, o)
			}
			for o := int64(0); o < 30; o++ {
				w.store(TopicPartition{Topic: f.topic, Partition: 1}, o)
			}
			stop := f.start(smallBatches(), Deps{Writer: w, Stored: w, DeadLetters: &memDLQ{}})
			waitFor(t, "rows", func() bool { return w.distinct() == 400 })
			waitFor(t, "commits", func() bool { return f.committed() == 400 })
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if err := w.check(f.topic, 2, 200); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDedupTokenNamesDroppedRecords(t *testing.T) {
	full := NewBatch("1")
	part := NewBatch("2")
	for o := int64(0); o < 10; o++ {
		full.cover("t", 0, o, 0)
		part.cover("t", 0, o, 0)
	}
	part.stored = 4
	if full.DedupToken() == part.DedupToken() {
		t.Fatalf("a batch with stored records dropped has the token of the whole span: %q", part.DedupToken())
	}
}

func TestRanges(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []int64
		want []OffsetRange
	}{
		{"empty", nil, nil},
		{"one", []int64{5}, []OffsetRange{{5, 5}}},
		{"run", []int64{1, 2, 3}, []OffsetRange{{1, 3}}},
		{"gaps and repeats", []int64{1, 2, 2, 4, 7, 8}, []OffsetRange{{1, 2}, {4, 4}, {7, 8}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Ranges(tc.in); !slices.Equal(got, tc.want) {
				t.Fatalf("Ranges(%v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
	s := &stored{ranges: []OffsetRange{{1, 2}, {4, 4}, {7, 8}}}
	for o, want := range map[int64]bool{0: false, 1: true, 2: true, 3: false, 4: true, 5: false, 8: true, 9: false} {
		if got := s.contains(o); got != want {
			t.Errorf("contains(%d) = %v, want %v", o, got, want)
		}
	}
}

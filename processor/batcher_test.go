package processor

import (
	"testing"
	"time"
)

func TestBatcher(t *testing.T) {
	t0 := time.Unix(1000, 0)
	cfg := BatchConfig{MaxRecords: 3, MaxBytes: 100, MaxWait: time.Second}
	tests := []struct {
		name    string
		records int
		held    int
		elapsed time.Duration
		ready   bool
		bytes   bool
	}{
		{name: "empty", records: 0},
		{name: "below limits", records: 2, held: 50, elapsed: 500 * time.Millisecond},
		{name: "cut by count", records: 3, ready: true},
		{name: "cut by bytes", records: 1, held: 100, ready: true, bytes: true},
		{name: "cut by age", records: 1, elapsed: time.Second, ready: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := t0
			var seq uint64
			c := newBatcher(cfg, &seq, func() time.Time { return now })
			if tt.records > 0 {
				b := c.start()
				b.Records = make([]Record, tt.records)
				b.held = tt.held
			}
			now = now.Add(tt.elapsed)
			if got := c.ready(); got != tt.ready {
				t.Errorf("ready() = %v, want %v", got, tt.ready)
			}
			if got := c.bytesReached(); got != tt.bytes {
				t.Errorf("bytesReached() = %v, want %v", got, tt.bytes)
			}
			wantRoom, wantWait := cfg.MaxRecords-tt.records, cfg.MaxWait-tt.elapsed
			if tt.records == 0 {
				wantWait = cfg.MaxWait
			}
			if got := c.room(); got != wantRoom {
				t.Errorf("room() = %d, want %d", got, wantRoom)
			}
			if got := c.wait(); got != wantWait {
				t.Errorf("wait() = %s, want %s", got, wantWait)
			}
			if b := c.take(); (b != nil) != (tt.records > 0) || c.pending() != nil {
				t.Errorf("take() = %v, pending after = %v", b, c.pending())
			}
		})
	}
}

// TestBatcherRecycle checks that the records of a retired batch are reused
// by a later batch, emptied of what they held, and that small or surplus
// slices are not kept.
func TestBatcherRecycle(t *testing.T) {
	cfg := BatchConfig{MaxRecords: 64, MaxBytes: 1 << 20, MaxWait: time.Second}
	var seq uint64
	c := newBatcher(cfg, &seq, nil)
	fill := func(n int) []Record {
		b := c.start()
		c.grow(cfg.MaxRecords, cfg.MaxRecords)
		for i := range n {
			b.Records = append(b.Records, Record{Offset: int64(i), Event: Event{Text: "held"}})
		}
		return c.take().Records
	}
	first := fill(10)
	// A record dropped from the end leaves its element behind the length.
	c.recycle(first[:9])
	second := fill(5)
	if &second[:1][0] != &first[:1][0] {
		t.Fatal("the next batch did not reuse the retired records")
	}
	for i, r := range second[len(second):cap(second)] {
		if r.Text != "" {
			t.Fatalf("a reused slice still holds %q at %d, behind its records", r.Text, len(second)+i)
		}
	}
	tests := []struct {
		name  string
		slice []Record
		kept  int
	}{
		{name: "below an eighth of max_records", slice: make([]Record, 0, cfg.MaxRecords/backlogPoll-1), kept: 0},
		{name: "one", slice: make([]Record, 0, cfg.MaxRecords), kept: 1},
		{name: "up to maxSpare", slice: make([]Record, 0, cfg.MaxRecords), kept: 2},
		{name: "beyond maxSpare", slice: make([]Record, 0, cfg.MaxRecords), kept: maxSpare},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.recycle(tt.slice)
			if len(c.spare) != tt.kept {
				t.Errorf("%d spares kept, want %d", len(c.spare), tt.kept)
			}
		})
	}
}

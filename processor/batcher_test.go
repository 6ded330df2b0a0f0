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

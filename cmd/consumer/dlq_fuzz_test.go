package main

import (
	"testing"
	"time"
)

// FuzzDLQFilterFlags checks that no --source-offsets, --dlq-offsets or
// --since/--until value panics the parsers, and that an accepted offset
// range is ordered and contains its own ends.
func FuzzDLQFilterFlags(f *testing.F) {
	for _, s := range []string{"", "10-20", "10-", "-20", "-", "20-10", "a-b", "1-2-3", "9223372036854775808-", "2026-11-01T10:00:00Z", "15m"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseOffsetRange(s)
		if err == nil {
			if r.from >= 0 && r.to >= 0 && r.from > r.to {
				t.Fatalf("range %q parsed as %+v", s, r)
			}
			if r.from >= 0 && !r.contains(r.from) || r.to >= 0 && !r.contains(r.to) {
				t.Fatalf("range %q (%+v) does not contain its ends", s, r)
			}
			if r.from < -1 || r.to < -1 {
				t.Fatalf("range %q parsed as %+v", s, r)
			}
		}
		if tm, err := parseTimeFlag(s, now); err == nil && s != "" && tm.IsZero() {
			t.Fatalf("time %q parsed as the zero time", s)
		}
	})
}

func TestDLQFilterFlags(t *testing.T) {
	tests := []struct {
		in       string
		from, to int64
		ok       bool
	}{
		{"", -1, -1, true}, {"5-9", 5, 9, true}, {"5-", 5, -1, true}, {"-9", -1, 9, true},
		{"9-5", 0, 0, false}, {"x", 0, 0, false}, {"-1-5", 0, 0, false}, {"1-x", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := parseOffsetRange(tt.in)
			if (err == nil) != tt.ok || (tt.ok && (r.from != tt.from || r.to != tt.to)) {
				t.Fatalf("parseOffsetRange(%q) = %+v, %v", tt.in, r, err)
			}
		})
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if got, err := parseTimeFlag("90m", now); err != nil || !got.Equal(now.Add(-90*time.Minute)) {
		t.Fatalf("duration: %v %v", got, err)
	}
	if got, err := parseTimeFlag("2026-11-01T10:00:00Z", now); err != nil || got.Day() != 1 || got.Month() != 11 {
		t.Fatalf("RFC 3339: %v %v", got, err)
	}
	if _, err := parseTimeFlag("yesterday", now); err == nil {
		t.Fatal("accepted yesterday")
	}
}

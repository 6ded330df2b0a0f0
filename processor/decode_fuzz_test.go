package processor

import (
	"errors"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzDecode checks that no input panics the decoder, that every failure
// carries a class, and that every accepted event has valid UTF-8, non-blank
// text and a storable time.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"id":"a","text":"hello","source":"s","author":"a","lang":"en","created_at":"2026-01-02T03:04:05Z","metadata":{"k":1}}`,
		`{"text":"x","created_at":1764064800123}`,
		`{"text":5}`, `[]`, `nul`, `{"text":"a\ud800"}`, "{\"text\":\"\xff\"}", `{"text":"ok","metadata":[1]}`,
	} {
		f.Add([]byte(s))
	}
	d := NewDecoder(DefaultDecodeConfig())
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, value []byte) {
		var ev Event
		err := d.Decode(nil, value, ts, &ev)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Class == "" {
				t.Fatalf("error without a class: %v", err)
			}
			return
		}
		for _, s := range []string{ev.ID, ev.Text, ev.Source, ev.Author, ev.Lang, ev.Metadata} {
			if !utf8.ValidString(s) {
				t.Fatalf("accepted invalid UTF-8 %q", s)
			}
		}
		if ev.Text == "" {
			t.Fatal("accepted an empty text")
		}
		if ev.CreatedAt.Unix() < minEventUnix || ev.CreatedAt.Unix() > maxEventUnix {
			t.Fatalf("accepted time %v outside the storable range", ev.CreatedAt)
		}
	})
}

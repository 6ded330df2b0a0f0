package textgen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// mustNew returns a generator for opts or fails the test.
func mustNew(t testing.TB, opts Options) *Generator {
	t.Helper()
	g, err := New(opts)
	if err != nil {
		t.Fatalf("new generator: %v", err)
	}
	return g
}

// decodeStrict decodes a valid event, rejecting unknown fields.
func decodeStrict(ev []byte) (Event, error) {
	var e Event
	dec := json.NewDecoder(bytes.NewReader(ev))
	dec.DisallowUnknownFields()
	err := dec.Decode(&e)
	return e, err
}

func TestDeterminism(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"zero", Options{}},
		{"default", DefaultOptions()},
		{"seeded", Options{Seed: 42, RepeatShare: 0.3}},
		{"fixed", Options{Seed: 7, RepeatShare: 0.1, FixedSize: 300}},
		{"malformed", Options{Seed: 9, RepeatShare: 0.1, MalformedShare: 0.5}},
		{"start", Options{Seed: 3, Start: time.Date(2030, 6, 1, 23, 59, 59, 0, time.UTC)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := mustNew(t, tt.opts), mustNew(t, tt.opts)
			var bufA, bufB []byte
			for i := range 5000 {
				var infoA, infoB Info
				bufA, infoA = a.NextInfo(bufA[:0])
				bufB, infoB = b.NextInfo(bufB[:0])
				if !bytes.Equal(bufA, bufB) || infoA != infoB {
					t.Fatalf("event %d differs:\n%s %+v\n%s %+v", i, bufA, infoA, bufB, infoB)
				}
			}
		})
	}

	t.Run("seeds differ", func(t *testing.T) {
		a := mustNew(t, Options{Seed: 1})
		b := mustNew(t, Options{Seed: 2})
		same := 0
		for range 1000 {
			ea, _ := a.Next(nil)
			eb, _ := b.Next(nil)
			if bytes.Equal(ea, eb) {
				same++
			}
		}
		if same > 0 {
			t.Errorf("%d of 1000 events are equal across seeds", same)
		}
	})

	t.Run("appends to dst", func(t *testing.T) {
		g := mustNew(t, Options{Seed: 5})
		want, _ := mustNew(t, Options{Seed: 5}).Next(nil)
		got, _ := g.Next([]byte("prefix"))
		if !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Errorf("Next(prefix) = %q, want prefix followed by %q", got, want)
		}
	})
}

func TestValidEvents(t *testing.T) {
	langs := map[string]bool{}
	for _, l := range langSpecs() {
		langs[l.code] = true
	}
	sources := map[string]bool{}
	for _, s := range sourceSpecs() {
		sources[s.value] = true
	}
	clients := map[string]bool{}
	for _, c := range clientSpecs() {
		clients[c.value] = true
	}
	wantKeys := []string{"author", "created_at", "id", "lang", "metadata", "source", "text"}

	tests := []struct {
		name string
		opts Options
	}{
		{"natural", Options{Seed: 11, RepeatShare: 0.1}},
		{"fixed", Options{Seed: 12, RepeatShare: 0.1, FixedSize: 300}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := mustNew(t, tt.opts)
			seenLang := map[string]int{}
			var prev time.Time
			var buf []byte
			for i := range 10000 {
				var info Info
				buf, info = g.NextInfo(buf[:0])
				if info.Kind != KindValid {
					t.Fatalf("event %d: kind %v with malformed share 0", i, info.Kind)
				}
				if !json.Valid(buf) || !utf8.Valid(buf) {
					t.Fatalf("event %d is not valid UTF-8 JSON: %q", i, buf)
				}
				e, err := decodeStrict(buf)
				if err != nil {
					t.Fatalf("event %d: decode: %v\n%s", i, err, buf)
				}
				var m map[string]json.RawMessage
				if err := json.Unmarshal(buf, &m); err != nil {
					t.Fatalf("event %d: decode into map: %v", i, err)
				}
				if keys := slices.Sorted(mapKeys(m)); !slices.Equal(keys, wantKeys) {
					t.Fatalf("event %d has keys %v, want %v", i, keys, wantKeys)
				}
				if e.ID != fmt.Sprintf("%016x", info.ID) {
					t.Fatalf("event %d: id %q, info id %x", i, e.ID, info.ID)
				}
				if e.Author != info.Author || e.Author == "" || len(e.Author) > maxAuthorLen {
					t.Fatalf("event %d: author %q, info author %q", i, e.Author, info.Author)
				}
				if e.Text == "" || !sources[e.Source] || !langs[e.Lang] || !clients[e.Metadata.Client] {
					t.Fatalf("event %d has an empty or unknown field: %+v", i, e)
				}
				ts, err := time.Parse(CreatedAtLayout, e.CreatedAt)
				if err != nil || len(e.CreatedAt) != len("2025-01-01T00:00:00.000Z") {
					t.Fatalf("event %d: created_at %q: %v", i, e.CreatedAt, err)
				}
				if ts.Before(prev) {
					t.Fatalf("event %d: created_at %v goes back from %v", i, ts, prev)
				}
				prev = ts
				seenLang[e.Lang]++
			}
			for l := range langs {
				if seenLang[l] == 0 {
					t.Errorf("no event in language %q", l)
				}
			}
		})
	}
}

// mapKeys returns an iterator over the keys of m.
func mapKeys(m map[string]json.RawMessage) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestStart(t *testing.T) {
	tests := []struct {
		name  string
		start time.Time
		want  string
	}{
		{"zero", time.Time{}, "2025-01-01T00:00:00.000Z"},
		{"explicit", time.Date(2030, 6, 1, 23, 59, 59, 998_000_000, time.UTC), "2030-06-01T23:59:59.998Z"},
		{"truncated", time.Date(2030, 6, 1, 23, 59, 59, 998_999_999, time.UTC), "2030-06-01T23:59:59.998Z"},
		{"non-utc", time.Date(2024, 2, 29, 1, 0, 0, 0, time.FixedZone("x", 3600)), "2024-02-29T00:00:00.000Z"},
		{"before epoch", time.Date(1969, 12, 31, 23, 59, 59, 999_000_000, time.UTC), "1969-12-31T23:59:59.999Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := mustNew(t, Options{Start: tt.start})
			ev, _ := g.Next(nil)
			e, err := decodeStrict(ev)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if e.CreatedAt != tt.want {
				t.Errorf("first created_at = %q, want %q", e.CreatedAt, tt.want)
			}
			// Cross a day boundary and check the date follows.
			for range 5000 {
				ev, _ = g.Next(ev[:0])
			}
			e, _ = decodeStrict(ev)
			ts, err := time.Parse(CreatedAtLayout, e.CreatedAt)
			if err != nil {
				t.Fatalf("parse created_at %q: %v", e.CreatedAt, err)
			}
			start := tt.start
			if start.IsZero() {
				start = time.UnixMilli(DefaultStartUnixMilli)
			}
			if d := ts.Sub(start); d < 0 || d > 5001*2*time.Millisecond {
				t.Errorf("created_at %v is %v after start %v", ts, d, start)
			}
		})
	}
}

func TestLengthDistribution(t *testing.T) {
	g := mustNew(t, Options{Seed: 21})
	const n = 60000
	var inRange, over1000, overSeveralKB, cjk int
	minRunes, maxRunes, minBytes, maxBytes := math.MaxInt, 0, math.MaxInt, 0
	var buf []byte
	for range n {
		buf, _ = g.Next(buf[:0])
		e, err := decodeStrict(buf)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		r := utf8.RuneCountInString(e.Text)
		minBytes, maxBytes = min(minBytes, textBytes(buf)), max(maxBytes, textBytes(buf))
		minRunes, maxRunes = min(minRunes, r), max(maxRunes, r)
		if r >= 50 && r <= 300 {
			inRange++
		}
		if r > 1000 {
			over1000++
		}
		if len(e.Text) > 4000 {
			overSeveralKB++
		}
		if e.Lang == "ja" || e.Lang == "zh" {
			cjk++
		}
	}
	t.Logf("runes in [%d, %d], %.1f%% in [50, 300], %.2f%% over 1000, %d texts over 4000 bytes, %.1f%% CJK",
		minRunes, maxRunes, 100*float64(inRange)/n, 100*float64(over1000)/n, overSeveralKB, 100*float64(cjk)/n)

	checks := []struct {
		name string
		ok   bool
	}{
		{"shortest text has at least MinTextBytes bytes", minBytes >= MinTextBytes},
		{"longest text has at most MaxTextBytes bytes", maxBytes <= MaxTextBytes},
		{"at least 75% of texts have 50 to 300 characters", inRange >= n*75/100},
		{"1% to 5% of texts have over 1000 characters", over1000 >= n/100 && over1000 <= n*5/100},
		{"some texts are over 4000 bytes", overSeveralKB > 0},
		{"Chinese and Japanese texts are a small share", cjk > n/50 && cjk < n/10},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if !c.ok {
				t.Fail()
			}
		})
	}
}

func TestFixedSize(t *testing.T) {
	for _, size := range []int{MinFixedSize, 300, 1024, 65536} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			g := mustNew(t, Options{Seed: uint64(size), RepeatShare: 0.2, MalformedShare: 0.1, FixedSize: size})
			n := min(20000, 10_000_000/size)
			var buf []byte
			for i := range n {
				var info Info
				buf, info = g.NextInfo(buf[:0])
				if info.Kind != KindValid && info.Kind != KindInvalidUTF8 {
					continue
				}
				if len(buf) != size {
					t.Fatalf("event %d (%v) is %d bytes, want %d: %s", i, info.Kind, len(buf), size, buf)
				}
				if info.Kind == KindValid {
					e, err := decodeStrict(buf)
					if err != nil || len(e.Text) == 0 {
						t.Fatalf("event %d: decode: %v, text %q", i, err, e.Text)
					}
				}
			}
		})
	}
}

func TestRepeatShare(t *testing.T) {
	for _, fixed := range []int{0, 300} {
		for _, share := range []float64{0, 0.1, 0.3, 0.6} {
			t.Run(fmt.Sprintf("fixed=%d/share=%v", fixed, share), func(t *testing.T) {
				g := mustNew(t, Options{Seed: 99, RepeatShare: share, MalformedShare: 0.05, FixedSize: fixed})
				const n = 30000
				seen := make(map[string]bool, n)
				valid, repeats, flagged := 0, 0, 0
				var buf []byte
				for i := range n {
					var info Info
					buf, info = g.NextInfo(buf[:0])
					if info.Kind != KindValid {
						if info.Repeat {
							t.Fatalf("event %d is malformed and flagged as a repeat", i)
						}
						continue
					}
					valid++
					e, err := decodeStrict(buf)
					if err != nil {
						t.Fatalf("decode: %v", err)
					}
					if seen[e.Text] {
						repeats++
					} else if info.Repeat {
						t.Fatalf("event %d is flagged as a repeat but its text is new: %q", i, e.Text)
					}
					if info.Repeat {
						flagged++
					}
					seen[e.Text] = true
				}
				got := float64(repeats) / float64(valid)
				t.Logf("repeat share %.4f (%d flagged) over %d valid events, want %v", got, flagged, valid, share)
				if math.Abs(got-share) > 0.01 {
					t.Errorf("repeat share = %.4f, want %v ± 0.01", got, share)
				}
			})
		}
	}
}

func TestMalformed(t *testing.T) {
	checks := map[Kind]func(ev []byte) error{
		KindValid: func(ev []byte) error {
			if !utf8.Valid(ev) {
				return errors.New("not valid UTF-8")
			}
			_, err := decodeStrict(ev)
			return err
		},
		KindInvalidJSON: func(ev []byte) error {
			if json.Valid(ev) {
				return errors.New("valid JSON")
			}
			if !utf8.Valid(ev) {
				return errors.New("not valid UTF-8")
			}
			return nil
		},
		KindMissingText: func(ev []byte) error {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(ev, &m); err != nil {
				return err
			}
			if _, ok := m["text"]; ok {
				return errors.New("has a text field")
			}
			if len(m) != 6 {
				return fmt.Errorf("has %d fields, want 6", len(m))
			}
			return nil
		},
		KindWrongType: func(ev []byte) error {
			if !json.Valid(ev) {
				return errors.New("not valid JSON")
			}
			_, err := decodeStrict(ev)
			var te *json.UnmarshalTypeError
			if !errors.As(err, &te) || te.Field != "text" {
				return fmt.Errorf("decode error is not a type error on text: %w", err)
			}
			return nil
		},
		KindInvalidUTF8: func(ev []byte) error {
			if utf8.Valid(ev) {
				return errors.New("valid UTF-8")
			}
			if !json.Valid(ev) {
				return errors.New("not valid JSON")
			}
			// Replacing the bad bytes must give a valid event.
			_, err := decodeStrict(bytes.ToValidUTF8(ev, []byte("?")))
			return err
		},
	}

	for _, fixed := range []int{0, 300} {
		for _, share := range []float64{0, 0.01, 0.2, 1} {
			t.Run(fmt.Sprintf("fixed=%d/share=%v", fixed, share), func(t *testing.T) {
				g := mustNew(t, Options{Seed: 77, RepeatShare: 0.1, MalformedShare: share, FixedSize: fixed})
				const n = 20000
				var counts [numKinds]int
				var buf []byte
				for i := range n {
					var info Info
					buf, info = g.NextInfo(buf[:0])
					counts[info.Kind]++
					if err := checks[info.Kind](buf); err != nil {
						t.Fatalf("event %d of kind %v: %v\n%q", i, info.Kind, err, buf)
					}
				}
				malformed := n - counts[KindValid]
				if got := float64(malformed) / n; math.Abs(got-share) > 0.01 {
					t.Errorf("malformed share = %.4f, want %v ± 0.01", got, share)
				}
				for k := KindInvalidJSON; k < numKinds; k++ {
					if got, want := float64(counts[k])/n, share/4; math.Abs(got-want) > 0.01 {
						t.Errorf("share of %v = %.4f, want %.4f ± 0.01", k, got, want)
					}
				}
			})
		}
	}
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"zero", Options{}, ""},
		{"default", DefaultOptions(), ""},
		{"all shares one", Options{RepeatShare: 1, MalformedShare: 1}, ""},
		{"smallest fixed size", Options{FixedSize: MinFixedSize}, ""},
		{"largest fixed size", Options{FixedSize: MaxFixedSize}, ""},
		{"negative repeat share", Options{RepeatShare: -0.1}, "repeat share"},
		{"repeat share over one", Options{RepeatShare: 1.5}, "repeat share"},
		{"NaN repeat share", Options{RepeatShare: math.NaN()}, "repeat share"},
		{"negative malformed share", Options{MalformedShare: -1}, "malformed share"},
		{"fixed size too small", Options{FixedSize: 100}, "fixed size"},
		{"negative fixed size", Options{FixedSize: -300}, "fixed size"},
		{"fixed size too large", Options{FixedSize: MaxFixedSize + 1}, "fixed size"},
		{"start too late", Options{Start: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}, "start year"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("New: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("New error = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestVocabulary(t *testing.T) {
	g := mustNew(t, Options{})
	tables := map[string]*tokenTable{
		"sources": g.sources, "clients": g.clients, "emojis": g.emojis, "hashtags": g.hashtags,
		"specials": g.specials, "urls": g.urlHosts, "langs": g.langTable,
	}
	for _, l := range g.langs {
		tables["words "+l.code] = l.words
		tables["punct "+l.code] = l.punct
	}
	for name, tab := range tables {
		t.Run(name, func(t *testing.T) {
			used := make([]bool, len(tab.tokens))
			for _, i := range tab.index {
				used[i] = true
			}
			for i, tok := range tab.tokens {
				var s string
				if err := json.Unmarshal([]byte(`"`+tok.s+`"`), &s); err != nil {
					t.Errorf("token %q is not JSON string content: %v", tok.s, err)
				}
				if n := utf8.RuneCountInString(s); n != tok.runes || n == 0 {
					t.Errorf("token %q decodes to %d characters, recorded %d", tok.s, n, tok.runes)
				}
				if strings.Contains(tok.s, " ") {
					t.Errorf("token %q holds a space", tok.s)
				}
				if !used[i] {
					t.Errorf("token %q can never be drawn", tok.s)
				}
			}
		})
	}
	t.Run("authors", func(t *testing.T) {
		for _, a := range g.authors {
			if a == "" || len(a) > maxAuthorLen || strings.Trim(a, "abcdefghijklmnopqrstuvwxyz0123456789_.") != "" {
				t.Errorf("author %q is not a short ASCII handle", a)
			}
		}
	})
	t.Run("invalid UTF-8", func(t *testing.T) {
		for _, s := range g.invalid {
			for _, ctx := range []string{"%s", "a%s", "%sa", "é%sé", " %s "} {
				if b := fmt.Sprintf(ctx, s); utf8.ValidString(b) {
					t.Errorf("%q is valid UTF-8", b)
				}
			}
		}
	})
}

func TestKindString(t *testing.T) {
	tests := []struct {
		kind Kind
		want string
	}{
		{KindValid, "valid"},
		{KindInvalidJSON, "invalid_json"},
		{KindMissingText, "missing_text"},
		{KindWrongType, "wrong_type"},
		{KindInvalidUTF8, "invalid_utf8"},
		{Kind(9), "kind(9)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.kind.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAllocations(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		max  float64
	}{
		{"fixed", Options{Seed: 1, RepeatShare: 0.1, MalformedShare: 0.1, FixedSize: 300}, 0},
		{"natural", Options{Seed: 1, RepeatShare: 0.1, MalformedShare: 0.1}, 0.05},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := mustNew(t, tt.opts)
			buf := make([]byte, 0, 64<<10)
			for range 100000 { // Fill the repeat pools.
				buf, _ = g.Next(buf[:0])
			}
			allocs := testing.AllocsPerRun(10000, func() {
				buf, _ = g.Next(buf[:0])
			})
			if allocs > tt.max {
				t.Errorf("%v allocations per event, want at most %v", allocs, tt.max)
			}
		})
	}
}

// textBytes returns the length of the text value of a valid event as
// encoded in it.
func textBytes(ev []byte) int {
	const key = `","text":"`
	i := bytes.Index(ev, []byte(key)) + len(key)
	j := bytes.Index(ev, []byte(`","source":"`))
	return j - i
}

func TestTextsAreTheValidEventsTexts(t *testing.T) {
	opts := Options{Seed: 21, MalformedShare: 0.2, RepeatShare: 0.1}
	g, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	texts, err := g.Texts(300)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for len(want) < 300 {
		ev, valid := ref.Next(nil)
		if !valid {
			continue
		}
		var e Event
		if err := json.Unmarshal(ev, &e); err != nil {
			t.Fatal(err)
		}
		want = append(want, e.Text)
	}
	if !slices.Equal(texts, want) {
		t.Fatal("Texts differ from the texts of the valid events of the same stream")
	}
}

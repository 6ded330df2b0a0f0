package processor

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDecodeJSON(t *testing.T) {
	ts := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		value string
		want  Event
		class ErrorClass
	}{
		{name: "full event",
			value: `{"id":"a1","text":"héllo 🙂","source":"x","author":"bob","lang":"fr","created_at":"2026-01-02T03:04:05.678Z","metadata":{"k":[1,2],"n":null}}`,
			want: Event{ID: "a1", Text: "héllo 🙂", Source: "x", Author: "bob", Lang: "fr",
				CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC), Metadata: `{"k":[1,2],"n":null}`}},
		{name: "only text takes the record time", value: `{"text":"t"}`, want: Event{Text: "t", CreatedAt: ts}},
		{name: "numeric id", value: `{"id":12345678901,"text":"t"}`, want: Event{ID: "12345678901", Text: "t", CreatedAt: ts}},
		{name: "nulls are absent", value: `{"id":null,"text":"t","lang":null,"metadata":null,"created_at":null}`, want: Event{Text: "t", CreatedAt: ts}},
		{name: "epoch seconds", value: `{"text":"t","created_at":1764064800}`, want: Event{Text: "t", CreatedAt: time.Unix(1764064800, 0).UTC()}},
		{name: "epoch milliseconds", value: `{"text":"t","created_at":1764064800123}`, want: Event{Text: "t", CreatedAt: time.UnixMilli(1764064800123).UTC()}},
		{name: "offset timezone", value: `{"text":"t","created_at":"2026-01-02T05:04:05+02:00"}`, want: Event{Text: "t", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}},
		{name: "escaped unicode", value: `{"text":"caf\u00e9 \ud83d\ude00"}`, want: Event{Text: "café 😀", CreatedAt: ts}},
		{name: "null byte kept", value: `{"text":"a\u0000b"}`, want: Event{Text: "a\x00b", CreatedAt: ts}},
		{name: "not json", value: `hello`, class: ClassInvalidJSON},
		{name: "truncated", value: `{"text":"abc`, class: ClassInvalidJSON},
		{name: "empty value", value: ``, class: ClassInvalidJSON},
		{name: "array", value: `[1,2]`, class: ClassWrongType},
		{name: "text is a number", value: `{"text":5}`, class: ClassWrongType},
		{name: "text is an object", value: `{"text":{"a":1}}`, class: ClassWrongType},
		{name: "missing text", value: `{"id":"x"}`, class: ClassMissingText},
		{name: "empty text", value: `{"text":""}`, class: ClassMissingText},
		{name: "blank text", value: `{"text":"  \n\t"}`, class: ClassMissingText},
		{name: "invalid utf8 in text", value: "{\"text\":\"a\xffb\"}", class: ClassInvalidUTF8},
		{name: "lone surrogate kept escaped", value: `{"text":"a\ud800b"}`, want: Event{Text: `a\ud800b`, CreatedAt: ts}},
		{name: "invalid utf8 in author", value: "{\"text\":\"ok\",\"author\":\"\xc3\"}", class: ClassInvalidUTF8},
		{name: "source is a bool", value: `{"text":"ok","source":true}`, class: ClassWrongType},
		{name: "bad timestamp string", value: `{"text":"ok","created_at":"yesterday"}`, class: ClassInvalidTimestamp},
		{name: "timestamp before 1970", value: `{"text":"ok","created_at":"1969-12-31T23:59:59Z"}`, class: ClassInvalidTimestamp},
		{name: "timestamp after 2105", value: `{"text":"ok","created_at":"2200-01-01T00:00:00Z"}`, class: ClassInvalidTimestamp},
		{name: "timestamp is an object", value: `{"text":"ok","created_at":{}}`, class: ClassWrongType},
		{name: "metadata is an array", value: `{"text":"ok","metadata":[1]}`, class: ClassWrongType},
		{name: "deep nesting", value: `{"text":"ok","metadata":` + strings.Repeat(`{"a":`, 400) + `1` + strings.Repeat(`}`, 400) + `}`, class: ClassInvalidJSON},
	}
	d := NewDecoder(DefaultDecodeConfig())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev Event
			err := d.Decode(nil, []byte(tt.value), ts, &ev)
			if tt.class != "" {
				var de *DecodeError
				if !errors.As(err, &de) || de.Class != tt.class {
					t.Fatalf("error %v, want class %s", err, tt.class)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev != tt.want {
				t.Fatalf("got %+v\nwant %+v", ev, tt.want)
			}
		})
	}
}

func TestDecodeOptions(t *testing.T) {
	ts := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	nested := DefaultDecodeConfig()
	nested.Fields.Text = "payload.body"
	nested.Fields.ID = "meta.id"
	text := DefaultDecodeConfig()
	text.Format = FormatText
	small := DefaultDecodeConfig()
	small.MaxEventBytes = 16
	tests := []struct {
		name  string
		cfg   DecodeConfig
		key   string
		value string
		want  Event
		class ErrorClass
	}{
		{name: "nested paths", cfg: nested, value: `{"meta":{"id":"n1"},"payload":{"body":"deep"}}`, want: Event{ID: "n1", Text: "deep", CreatedAt: ts}},
		{name: "nested path missing", cfg: nested, value: `{"text":"top"}`, class: ClassMissingText},
		{name: "plain text", cfg: text, key: "k1", value: "just text, not {json", want: Event{ID: "k1", Text: "just text, not {json", CreatedAt: ts}},
		{name: "plain text empty", cfg: text, value: "   ", class: ClassMissingText},
		{name: "plain text invalid utf8", cfg: text, value: "\xff", class: ClassInvalidUTF8},
		{name: "too large", cfg: small, value: `{"text":"0123456789abcdef"}`, class: ClassTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			var ev Event
			err := NewDecoder(tt.cfg).Decode([]byte(tt.key), []byte(tt.value), ts, &ev)
			if tt.class != "" {
				var de *DecodeError
				if !errors.As(err, &de) || de.Class != tt.class {
					t.Fatalf("error %v, want class %s", err, tt.class)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev != tt.want {
				t.Fatalf("got %+v\nwant %+v", ev, tt.want)
			}
		})
	}
}

func TestDecodeConfigValidate(t *testing.T) {
	bad := []DecodeConfig{
		{Format: "xml", Fields: FieldNames{Text: "text"}},
		{Format: FormatJSON},
		{Format: FormatJSON, Fields: FieldNames{Text: "t"}, MaxEventBytes: -1},
	}
	for i, c := range bad {
		if c.Validate() == nil {
			t.Errorf("config %d validated: %+v", i, c)
		}
	}
}

package processor

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/valyala/fastjson"
)

// Decode formats.
const (
	// FormatJSON decodes each value as a JSON object, see
	// schemas/event.schema.json.
	FormatJSON = "json"
	// FormatText takes the whole value as the text and the key as the ID.
	FormatText = "text"
)

// FieldNames maps Event fields to paths in the JSON object. A path is a
// dot-separated list of object keys, such as "payload.body".
type FieldNames struct {
	ID        string `koanf:"id"`
	Text      string `koanf:"text"`
	Source    string `koanf:"source"`
	Author    string `koanf:"author"`
	Lang      string `koanf:"lang"`
	CreatedAt string `koanf:"created_at"`
	Metadata  string `koanf:"metadata"`
}

// DecodeConfig configures how record values become events.
type DecodeConfig struct {
	// Format is FormatJSON or FormatText.
	Format string `koanf:"format"`
	// Fields names the JSON paths of the event fields.
	Fields FieldNames `koanf:"fields"`
	// MaxEventBytes rejects larger values as too_large; 0 means no limit.
	MaxEventBytes int `koanf:"max_event_bytes"`
}

// DefaultDecodeConfig returns the decoding defaults: JSON with the field
// names of schemas/event.schema.json and a 1 MiB limit per event.
func DefaultDecodeConfig() DecodeConfig {
	return DecodeConfig{
		Format: FormatJSON,
		Fields: FieldNames{
			ID: "id", Text: "text", Source: "source", Author: "author",
			Lang: "lang", CreatedAt: "created_at", Metadata: "metadata",
		},
		MaxEventBytes: 1 << 20,
	}
}

// Validate checks the decoding configuration.
func (c DecodeConfig) Validate() error {
	switch c.Format {
	case FormatJSON:
		if c.Fields.Text == "" {
			return errors.New("decode.fields.text must not be empty")
		}
	case FormatText:
	default:
		return fmt.Errorf("decode.format %q: want %q or %q", c.Format, FormatJSON, FormatText)
	}
	if c.MaxEventBytes < 0 {
		return errors.New("decode.max_event_bytes must not be negative")
	}
	return nil
}

// Earliest and latest Unix seconds the sink can store (the ClickHouse
// DateTime range, kept to whole years).
const (
	minEventUnix = 0
	maxEventUnix = 4291747199 // 2105-12-31T23:59:59Z
)

// Decoder turns record values into events. A Decoder is not safe for
// concurrent use; give each goroutine its own.
type Decoder struct {
	cfg     DecodeConfig
	p       fastjson.Parser
	paths   [7][]string
	scratch []byte
	strs    stringArena
	// value is the value being decoded; decoded strings that appear in it
	// byte for byte are taken from it rather than copied.
	value []byte
	// anchor is the address in the parser's copy of the value that
	// corresponds to the start of the value, when anchored.
	anchor   uintptr
	anchored bool
	// validUTF8 is set when the whole value is valid UTF-8, which makes
	// the per-field checks unnecessary.
	validUTF8 bool
}

const (
	fID = iota
	fText
	fSource
	fAuthor
	fLang
	fCreatedAt
	fMetadata
)

// NewDecoder returns a decoder for a validated configuration.
func NewDecoder(cfg DecodeConfig) *Decoder {
	d := &Decoder{cfg: cfg}
	names := [7]string{cfg.Fields.ID, cfg.Fields.Text, cfg.Fields.Source, cfg.Fields.Author,
		cfg.Fields.Lang, cfg.Fields.CreatedAt, cfg.Fields.Metadata}
	for i, n := range names {
		if n != "" {
			d.paths[i] = strings.Split(n, ".")
		}
	}
	return d
}

// Decode decodes value into ev. The record key and timestamp fill the ID (in
// text format) and CreatedAt (when the event has none). On failure it returns
// a *DecodeError whose Class says why.
//
// The strings of ev may share memory with value (there is then one copy of
// the event's bytes, the record's): value must not be modified while ev is
// in use.
func (d *Decoder) Decode(key, value []byte, ts time.Time, ev *Event) error {
	*ev = Event{}
	if d.cfg.MaxEventBytes > 0 && len(value) > d.cfg.MaxEventBytes {
		return &DecodeError{Class: ClassTooLarge,
			Err: fmt.Errorf("value of %d bytes exceeds the %d-byte limit", len(value), d.cfg.MaxEventBytes)}
	}
	if d.cfg.Format == FormatText {
		return d.decodeText(key, value, ts, ev)
	}
	d.validUTF8 = utf8.Valid(value)
	d.value, d.anchored = value, false
	defer func() { d.value = nil }()
	v, err := d.p.ParseBytes(value)
	if err != nil {
		return &DecodeError{Class: ClassInvalidJSON, Err: err}
	}
	if v.Type() != fastjson.TypeObject {
		return &DecodeError{Class: ClassWrongType, Err: fmt.Errorf("value is a JSON %s, want an object", v.Type())}
	}

	text, err := d.str(v, fText, "text")
	if err != nil {
		return err
	}
	if strings.TrimSpace(text) == "" {
		return &DecodeError{Class: ClassMissingText, Err: ErrNoText}
	}
	ev.Text = text
	if ev.ID, err = d.id(v); err != nil {
		return err
	}
	if ev.Source, err = d.str(v, fSource, "source"); err != nil {
		return err
	}
	if ev.Author, err = d.str(v, fAuthor, "author"); err != nil {
		return err
	}
	if ev.Lang, err = d.str(v, fLang, "lang"); err != nil {
		return err
	}
	if ev.CreatedAt, err = d.createdAt(v, ts); err != nil {
		return err
	}
	if ev.Metadata, err = d.metadata(v); err != nil {
		return err
	}
	return nil
}

func (d *Decoder) decodeText(key, value []byte, ts time.Time, ev *Event) error {
	if !utf8.Valid(value) {
		return &DecodeError{Class: ClassInvalidUTF8, Err: errors.New("text is not valid UTF-8")}
	}
	if len(strings.TrimSpace(string(value))) == 0 {
		return &DecodeError{Class: ClassMissingText, Err: ErrNoText}
	}
	if utf8.Valid(key) {
		ev.ID = string(key)
	}
	ev.Text = unsafe.String(unsafe.SliceData(value), len(value)) //nolint:gosec // The value is not modified while the event is in use, see Decode.
	ev.CreatedAt = clampTime(ts)
	return nil
}

func (d *Decoder) get(v *fastjson.Value, field int) *fastjson.Value {
	if d.paths[field] == nil {
		return nil
	}
	f := v.Get(d.paths[field]...)
	if f == nil || f.Type() == fastjson.TypeNull {
		return nil
	}
	return f
}

// str returns the string at the field's path, "" when absent or null.
func (d *Decoder) str(v *fastjson.Value, field int, name string) (string, error) {
	f := d.get(v, field)
	if f == nil {
		return "", nil
	}
	b, err := f.StringBytes()
	if err != nil {
		return "", &DecodeError{Class: ClassWrongType, Err: fmt.Errorf("field %s is a JSON %s, want a string", name, f.Type())}
	}
	if !d.validUTF8 && !utf8.Valid(b) {
		return "", &DecodeError{Class: ClassInvalidUTF8, Err: fmt.Errorf("field %s is not valid UTF-8", name)}
	}
	return d.keep(b), nil
}

// keep returns b as a string that outlives the next parse: a view of the
// same bytes in the value being decoded when they appear there (a string
// without escapes), else a copy in the arena. Any occurrence will do, since
// only the bytes matter.
//
// The parser works on a copy of the value, so the strings it returns
// without escapes lie at one distance from their bytes in the value: once
// a string was found by search, the others are looked up at that distance
// first.
func (d *Decoder) keep(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	at := uintptr(unsafe.Pointer(unsafe.SliceData(b))) //nolint:gosec // Address arithmetic only; the value is indexed normally.
	if d.anchored {
		if i := int(at - d.anchor); i >= 0 && i <= len(d.value)-len(b) && bytes.Equal(d.value[i:i+len(b)], b) { //nolint:gosec // Checked against the bounds of the value.
			return unsafe.String(&d.value[i], len(b)) //nolint:gosec // The value is not modified while the event is in use, see Decode.
		}
	}
	if i := bytes.Index(d.value, b); i >= 0 {
		if !d.anchored {
			d.anchor, d.anchored = at-uintptr(i), true //nolint:gosec // Address arithmetic only.
		}
		return unsafe.String(&d.value[i], len(b)) //nolint:gosec // The value is not modified while the event is in use, see Decode.
	}
	return d.strs.str(b)
}

// id accepts a string or a number, since producers often use numeric IDs.
func (d *Decoder) id(v *fastjson.Value) (string, error) {
	f := d.get(v, fID)
	if f != nil && f.Type() == fastjson.TypeNumber {
		d.scratch = f.MarshalTo(d.scratch[:0])
		return d.keep(d.scratch), nil
	}
	return d.str(v, fID, "id")
}

func (d *Decoder) createdAt(v *fastjson.Value, ts time.Time) (time.Time, error) {
	f := d.get(v, fCreatedAt)
	if f == nil {
		return clampTime(ts), nil
	}
	var t time.Time
	switch f.Type() {
	case fastjson.TypeString:
		b, _ := f.StringBytes()
		var err error
		t, err = time.Parse(time.RFC3339Nano, string(b))
		if err != nil {
			return time.Time{}, &DecodeError{Class: ClassInvalidTimestamp, Err: fmt.Errorf("field created_at: %w", err)}
		}
	case fastjson.TypeNumber:
		n, err := f.Float64()
		if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
			return time.Time{}, &DecodeError{Class: ClassInvalidTimestamp, Err: errors.New("field created_at is not a finite number")}
		}
		t = epochToTime(n)
	default:
		return time.Time{}, &DecodeError{Class: ClassWrongType,
			Err: fmt.Errorf("field created_at is a JSON %s, want an RFC 3339 string or epoch number", f.Type())}
	}
	if t.Unix() < minEventUnix || t.Unix() > maxEventUnix {
		return time.Time{}, &DecodeError{Class: ClassInvalidTimestamp,
			Err: fmt.Errorf("field created_at %s is outside 1970..2105", t.UTC().Format(time.RFC3339))}
	}
	return t.UTC(), nil
}

// epochToTime reads n as seconds, or as milliseconds when it is too large to
// be a plausible number of seconds (after year 5138).
func epochToTime(n float64) time.Time {
	if math.Abs(n) >= 1e11 {
		ms := int64(n)
		return time.UnixMilli(ms)
	}
	sec, frac := math.Modf(n)
	return time.Unix(int64(sec), int64(frac*1e9))
}

func (d *Decoder) metadata(v *fastjson.Value) (string, error) {
	f := d.get(v, fMetadata)
	if f == nil {
		return "", nil
	}
	if f.Type() != fastjson.TypeObject {
		return "", &DecodeError{Class: ClassWrongType, Err: fmt.Errorf("field metadata is a JSON %s, want an object", f.Type())}
	}
	d.scratch = f.MarshalTo(d.scratch[:0])
	if !d.validUTF8 && !utf8.Valid(d.scratch) {
		return "", &DecodeError{Class: ClassInvalidUTF8, Err: errors.New("field metadata is not valid UTF-8")}
	}
	return d.keep(d.scratch), nil
}

// clampTime keeps a record timestamp inside the range the sink can store.
func clampTime(t time.Time) time.Time {
	switch {
	case t.Unix() < minEventUnix:
		return time.Unix(minEventUnix, 0).UTC()
	case t.Unix() > maxEventUnix:
		return time.Unix(maxEventUnix, 0).UTC()
	}
	return t.UTC()
}

// arenaChunk is the size of the blocks that decoded strings are carved
// from; strings longer than a quarter of it get their own allocation.
const arenaChunk = 256 << 10

// stringArena is a bump allocator for decoded strings: it copies many small
// strings into shared blocks, one allocation per block instead of one per
// string, which cuts allocation and GC work on the hot path. Bytes are never
// reused: a block stays alive while any string in it is referenced.
type stringArena struct {
	buf []byte
}

func (a *stringArena) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > arenaChunk/4 {
		return string(b)
	}
	if cap(a.buf)-len(a.buf) < len(b) {
		a.buf = make([]byte, 0, arenaChunk)
	}
	start := len(a.buf)
	a.buf = append(a.buf, b...)
	return unsafe.String(&a.buf[start], len(b)) //nolint:gosec // The block is never written again at these indices.
}

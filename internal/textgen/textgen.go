// Package textgen generates deterministic streams of realistic social media
// events encoded as JSON, for load tests and benchmarks of the ingest path.
//
// Each valid event is one JSON object of the shape described by [Event]:
//
//	{"id":"5f0c2b4a9d1e3c77","text":"...","source":"twitter","author":"maria_silva",
//	 "lang":"en","created_at":"2025-01-01T00:00:00.001Z",
//	 "metadata":{"client":"android","likes":12,"reposts":0,"reply_to":"..."}}
//
// Texts follow the length distribution of social posts: most hold 50 to 300
// characters and about 3% come from a long tail that reaches several
// kilobytes (capped at [MaxTextBytes] bytes). They mix eight languages
// (English, Spanish, Portuguese, French, German, Japanese, Chinese and
// Korean), accented words, emoji (including skin tones, flags and joined
// sequences), URLs, @mentions, #hashtags, and JSON escapes such as \n, \" and
// \u2019. A configurable share of valid events repeats the text of an earlier
// event exactly, the way retweets and templated posts do.
//
// A [Generator] is deterministic: two generators built from equal [Options]
// produce identical byte streams. It is not safe for concurrent use; give
// each goroutine its own generator with its own seed.
package textgen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kind classifies a generated event as valid or as one kind of malformed.
type Kind uint8

// The kinds of events a [Generator] produces.
const (
	// KindValid is a well-formed event that decodes into [Event].
	KindValid Kind = iota
	// KindInvalidJSON is a valid event cut short at a character boundary,
	// so it is not valid JSON but is still valid UTF-8.
	KindInvalidJSON
	// KindMissingText is a valid JSON object with every field except text.
	KindMissingText
	// KindWrongType is a valid JSON object whose text field holds a number,
	// a boolean, an array or an object instead of a string, so decoding it
	// into [Event] fails with a *json.UnmarshalTypeError.
	KindWrongType
	// KindInvalidUTF8 is a valid event except that its text holds a byte
	// sequence that is not valid UTF-8 (for example 0xff or a lone
	// continuation byte).
	KindInvalidUTF8

	numKinds = 5
)

// String returns the name of the kind, such as "valid" or "invalid_json".
func (k Kind) String() string {
	switch k {
	case KindValid:
		return "valid"
	case KindInvalidJSON:
		return "invalid_json"
	case KindMissingText:
		return "missing_text"
	case KindWrongType:
		return "wrong_type"
	case KindInvalidUTF8:
		return "invalid_utf8"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Limits and defaults of the generator.
const (
	// MinFixedSize is the smallest accepted Options.FixedSize in bytes.
	MinFixedSize = 256
	// MaxFixedSize is the largest accepted Options.FixedSize in bytes.
	MaxFixedSize = 1 << 20
	// MinTextBytes bounds the length of a text outside fixed-size mode from
	// below, in bytes as encoded in the event.
	MinTextBytes = 8
	// MaxTextBytes bounds the length of a text outside fixed-size mode, in
	// bytes as encoded in the event, which bounds its characters too.
	MaxTextBytes = 8000
	// DefaultRepeatShare is the repeat share that [DefaultOptions] sets.
	DefaultRepeatShare = 0.1
	// DefaultStartUnixMilli is the created_at of the first event when
	// Options.Start is zero: 2025-01-01T00:00:00Z.
	DefaultStartUnixMilli int64 = 1735689600000
)

// Options configures a [Generator]. The zero value is valid and produces
// natural-length, all-valid events with no repeats from seed 0.
type Options struct {
	// Seed selects the stream; equal options produce identical streams.
	Seed uint64

	// RepeatShare is the fraction of valid events, in [0, 1], whose text
	// exactly repeats the text of an earlier valid event. Popular texts are
	// repeated more often than others. A repeat has its own id, author,
	// timestamp and metadata, and the language of the text it copies.
	RepeatShare float64

	// MalformedShare is the fraction of events, in [0, 1], that are
	// malformed. Malformed events are spread evenly over the four malformed
	// kinds: KindInvalidJSON, KindMissingText, KindWrongType and
	// KindInvalidUTF8.
	MalformedShare float64

	// FixedSize, when not zero, makes every valid and KindInvalidUTF8 event
	// exactly FixedSize bytes long by sizing the text to fit, which suits
	// raw ingest benchmarks; the other malformed kinds differ in size. It
	// must be zero or between MinFixedSize and MaxFixedSize.
	FixedSize int

	// Start is the created_at of the first event, truncated to the
	// millisecond; each later event is 0 to 2 milliseconds newer than the
	// one before, 1 millisecond on average. The zero value means
	// DefaultStartUnixMilli.
	Start time.Time
}

// DefaultOptions returns the options of a typical stream: seed 0,
// DefaultRepeatShare repeats, no malformed events, natural lengths.
func DefaultOptions() Options {
	return Options{RepeatShare: DefaultRepeatShare}
}

// Info describes one generated event.
type Info struct {
	// Kind tells whether the event is valid and, if not, how it is broken.
	Kind Kind
	// Repeat reports whether the text repeats the text of an earlier event.
	Repeat bool
	// ID is the event id; the id field holds it as 16 lowercase hex digits.
	ID uint64
	// Author is the value of the author field.
	Author string
}

// Event is the shape of a valid event, for decoding with encoding/json.
type Event struct {
	ID        string   `json:"id"`
	Text      string   `json:"text"`
	Source    string   `json:"source"`
	Author    string   `json:"author"`
	Lang      string   `json:"lang"`
	CreatedAt string   `json:"created_at"`
	Metadata  Metadata `json:"metadata"`
}

// Metadata is the shape of the metadata object of a valid event.
type Metadata struct {
	Client  string `json:"client"`
	Likes   int    `json:"likes"`
	Reposts int    `json:"reposts"`
	ReplyTo string `json:"reply_to,omitempty"`
}

// CreatedAtLayout is the time layout of the created_at field: RFC 3339 in
// UTC with milliseconds.
const CreatedAtLayout = "2006-01-02T15:04:05.000Z07:00"

const (
	headPrefix    = `{"id":"`
	textKey       = `","text":"`
	headLen       = len(headPrefix) + 16 + len(textKey)
	numAuthors    = 1 << authorBits
	authorBits    = 12
	maxAuthorLen  = 20
	urlPathLen    = 10
	hexDigits     = "0123456789abcdef"
	decimalDigits = "0123456789"
	urlAlphabet   = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	naturalPool   = 1024
	fixedPool     = 16
)

// language holds the sampling tables of one language.
type language struct {
	idx    uint8
	code   string
	tail   string // `","lang":"en","created_at":"` for code en.
	words  *tokenTable
	punct  *tokenTable
	spaced bool
	scale  float64 // Multiplier on the target length in characters.
	bpc    float64 // Average bytes per character.
}

// pooled is a remembered text that later events may repeat.
type pooled struct {
	text []byte
	lang uint8
}

// textPool remembers recent texts of one size class for repeats.
type textPool struct {
	entries []pooled
	limit   int
}

// Generator produces a deterministic stream of events. Create it with
// [New]; it is not safe for concurrent use.
type Generator struct {
	src *rand.PCG
	rng *rand.Rand // Wraps src for NormFloat64.
	res uint64     // Reservoir of random bits not yet used.
	nr  uint       // Number of valid bits in res.

	repeatThresh    uint64 // Compared with 32-bit draws.
	malformedThresh uint64 // Compared with 32-bit draws.
	fixedSize       int

	langs     []language
	langTable *tokenTable
	sources   *tokenTable
	clients   *tokenTable
	emojis    *tokenTable
	hashtags  *tokenTable
	specials  *tokenTable
	urlHosts  *tokenTable
	authors   []string
	mentions  []token
	invalid   []string

	ms       int64  // created_at of the current event in Unix milliseconds.
	secStart int64  // Start of the second that secText describes.
	secText  []byte // "YYYY-MM-DDTHH:MM:SS." of the second at secStart.

	// Field separators with the value between them, precomputed per value:
	// `","source":"twitter","author":"` and
	// `","metadata":{"client":"web","likes":`.
	sourceTail []string
	clientTail []string

	tail    []byte // Scratch buffer for the fields after text.
	langOff int    // Offset of the lang value in tail.

	pool       textPool          // Repeat pool outside fixed-size mode.
	fixedPools map[int]*textPool // Repeat pools by text size in fixed-size mode.
}

// New returns a generator for opts, or an error if an option is out of
// range.
func New(opts Options) (*Generator, error) {
	if err := validate(opts); err != nil {
		return nil, err
	}
	src := rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)
	g := &Generator{
		src:             src,
		rng:             rand.New(src), //nolint:gosec // Reproducible test data, not secrets.
		repeatThresh:    shareThreshold(opts.RepeatShare),
		malformedThresh: shareThreshold(opts.MalformedShare),
		fixedSize:       opts.FixedSize,
		sources:         newWeightedTable(sourceSpecs()),
		clients:         newWeightedTable(clientSpecs()),
		emojis:          newTokenTable(emojis, 1, true),
		specials:        newTokenTable(specialTokens, 0.5, true),
		urlHosts:        newTokenTable(urlHosts, 0.5, true),
		tail:            make([]byte, 0, 256),
		secText:         make([]byte, 0, 32),
		pool:            textPool{limit: naturalPool},
		ms:              DefaultStartUnixMilli,
		secStart:        math.MaxInt64,
		invalid:         invalidUTF8(),
	}
	if !opts.Start.IsZero() {
		g.ms = opts.Start.UnixMilli()
	}
	if g.fixedSize > 0 {
		g.fixedPools = make(map[int]*textPool)
	}

	for _, s := range g.sources.tokens {
		g.sourceTail = append(g.sourceTail, `","source":"`+s.s+`","author":"`)
	}
	for _, c := range g.clients.tokens {
		g.clientTail = append(g.clientTail, `","metadata":{"client":"`+c.s+`","likes":`)
	}

	specs := langSpecs()
	weights := make([]weighted, len(specs))
	g.langs = make([]language, len(specs))
	for i, s := range specs {
		weights[i] = weighted{s.code, s.weight}
		g.langs[i] = language{
			idx:    uint8(i),
			code:   s.code,
			tail:   `","lang":"` + s.code + `","created_at":"`,
			words:  newTokenTable(s.words, 1, s.spaced),
			punct:  newTokenTable(s.punct, 0.5, false),
			spaced: s.spaced,
			scale:  s.scale,
			bpc:    s.bytesPerChar,
		}
	}
	g.langTable = newWeightedTable(weights)

	tags := strings.Fields(hashtags)
	for i, t := range tags {
		tags[i] = "#" + t
	}
	g.hashtags = newTokenTable(strings.Join(tags, " "), 1, true)

	g.authors = makeAuthors(src)
	g.mentions = make([]token, len(g.authors))
	for i, a := range g.authors {
		g.mentions[i] = newToken("@"+a, true)
	}
	return g, nil
}

// validate checks that every option is in range.
func validate(opts Options) error {
	var errs []error
	if !(opts.RepeatShare >= 0 && opts.RepeatShare <= 1) {
		errs = append(errs, fmt.Errorf("repeat share %v is outside [0, 1]", opts.RepeatShare))
	}
	if !(opts.MalformedShare >= 0 && opts.MalformedShare <= 1) {
		errs = append(errs, fmt.Errorf("malformed share %v is outside [0, 1]", opts.MalformedShare))
	}
	if opts.FixedSize != 0 && (opts.FixedSize < MinFixedSize || opts.FixedSize > MaxFixedSize) {
		errs = append(errs, fmt.Errorf("fixed size %d is outside [%d, %d]", opts.FixedSize, MinFixedSize, MaxFixedSize))
	}
	if y := opts.Start.Year(); !opts.Start.IsZero() && (y < 1 || y > 9000) {
		errs = append(errs, fmt.Errorf("start year %d is outside [1, 9000]", y))
	}
	return errors.Join(errs...)
}

// shareThreshold converts a share in [0, 1] into a threshold for 32-bit
// draws.
func shareThreshold(share float64) uint64 {
	return uint64(math.Round(share * (1 << 32)))
}

// makeAuthors returns numAuthors deterministic handles drawn from src.
func makeAuthors(src *rand.PCG) []string {
	first := strings.Fields(firstNames)
	last := strings.Fields(lastNames)
	authors := make([]string, numAuthors)
	var b []byte
	for i := range authors {
		r := src.Uint64()
		f := first[r%uint64(len(first))]
		r /= uint64(len(first))
		l := last[r%uint64(len(last))]
		r /= uint64(len(last))
		b = b[:0]
		switch r % 5 {
		case 0:
			b = append(append(append(b, f...), '_'), l...)
		case 1:
			b = append(append(b, f...), l...)
			b = strconv.AppendUint(b, r/5%100, 10)
		case 2:
			b = append(append(append(b, f...), '.'), l...)
		case 3:
			b = strconv.AppendUint(append(b, f...), r/5%10000, 10)
		default:
			b = append(append(append(b, "the_"...), f...), l...)
		}
		authors[i] = string(b[:min(len(b), maxAuthorLen)])
	}
	return authors
}

// Next appends the next event to dst and returns the extended slice and
// whether the event is valid. Apart from growing dst when it lacks
// capacity, it allocates only to remember texts for repeats, which stops
// once its pools are full and their buffers large enough.
func (g *Generator) Next(dst []byte) (ev []byte, valid bool) {
	ev, info := g.NextInfo(dst)
	return ev, info.Kind == KindValid
}

// Texts returns the texts of the next n valid events, skipping malformed
// ones, for benchmarks and tests of the enrichment stages.
func (g *Generator) Texts(n int) ([]string, error) {
	out := make([]string, 0, n)
	var buf []byte
	for len(out) < n {
		var valid bool
		buf, valid = g.Next(buf[:0])
		if !valid {
			continue
		}
		var e Event
		if err := json.Unmarshal(buf, &e); err != nil {
			return nil, fmt.Errorf("decode generated event: %w", err)
		}
		out = append(out, e.Text)
	}
	return out, nil
}

// NextInfo appends the next event to dst and returns the extended slice and
// a description of the event. It allocates as Next does.
func (g *Generator) NextInfo(dst []byte) ([]byte, Info) {
	var info Info
	if g.malformedThresh > 0 && g.bits(32) < g.malformedThresh {
		info.Kind = [...]Kind{KindInvalidJSON, KindMissingText, KindWrongType, KindInvalidUTF8}[g.intn(numKinds-1)]
	}
	info.ID = g.src.Uint64()
	// One draw for the fields of the event: bits 0-11 pick the language,
	// 12-35 the author, 36-37 the time step, 38-61 the source and client.
	e := g.src.Uint64()
	lang := &g.langs[g.langTable.index[e&(tableSize-1)]]
	info.Author = g.authors[(e>>12&(numAuthors-1))*(e>>24&(numAuthors-1))>>authorBits]
	g.tail = g.appendTail(g.tail[:0], lang, info.Author, e>>38)

	start := len(dst)
	if g.fixedSize > 0 {
		dst = slices.Grow(dst, g.fixedSize+len(token{}.pre))
	}
	dst = append(dst, headPrefix...)
	dst = appendHex(dst, info.ID)
	switch info.Kind {
	case KindValid:
		dst = append(dst, textKey...)
		dst, info.Repeat = g.appendValidText(dst, lang)
		dst = append(dst, g.tail...)
	case KindInvalidUTF8:
		bad := g.invalid[g.intn(len(g.invalid))]
		dst = append(dst, textKey...)
		textStart := len(dst)
		budget := g.budget()
		if budget >= 0 {
			budget = max(0, budget-len(bad))
		}
		dst = g.appendText(dst, lang, g.targetBytes(lang), budget)
		dst = g.insertInvalid(dst, textStart, bad)
		dst = append(dst, g.tail...)
	case KindMissingText:
		dst = append(dst, g.tail...)
	case KindWrongType:
		dst = append(dst, textKey[:len(textKey)-1]...)
		dst = g.appendWrongValue(dst, lang)
		dst = append(dst, g.tail[1:]...)
	case KindInvalidJSON:
		dst = append(dst, textKey...)
		dst = g.appendText(dst, lang, g.targetBytes(lang), g.budget())
		dst = append(dst, g.tail...)
		// Any proper prefix of a JSON object is invalid JSON; back up to
		// a character boundary so the prefix stays valid UTF-8.
		cut := start + 1 + g.intn(len(dst)-start-1)
		for cut > start+1 && dst[cut]&0xc0 == 0x80 {
			cut--
		}
		dst = dst[:cut]
	}
	g.ms += int64(e>>36&1 + e>>37&1) //nolint:gosec // At most 2.
	return dst, info
}

// invalidUTF8 returns byte sequences that are invalid UTF-8 wherever they
// appear: bytes that never occur in UTF-8, a lone continuation byte,
// truncated sequences, an encoded surrogate and an overlong encoding.
func invalidUTF8() []string {
	return []string{
		"\xff", "\xfe\xff", "\xc3\x28", "\x80", "\xe2\x28\xa1", "\xf0\x28\x8c\xbc", "\xed\xa0\x80", "\xc0\xaf",
	}
}

// budget returns the number of text bytes that make the current event
// exactly FixedSize bytes long, or -1 outside fixed-size mode.
func (g *Generator) budget() int {
	if g.fixedSize == 0 {
		return -1
	}
	return max(0, g.fixedSize-headLen-len(g.tail))
}

// appendValidText appends the text of a valid event, repeating an earlier
// text when the repeat share says so and one of the right size exists.
func (g *Generator) appendValidText(dst []byte, lang *language) ([]byte, bool) {
	budget := g.budget()
	if g.repeatThresh == 0 {
		return g.appendText(dst, lang, g.targetBytes(lang), budget), false
	}
	if g.bits(32) < g.repeatThresh {
		if p := g.poolFor(budget, false); p != nil && len(p.entries) > 0 {
			e := &p.entries[g.skewedN(len(p.entries))]
			copy(g.tail[g.langOff:], g.langs[e.lang].code)
			return append(dst, e.text...), true
		}
	}
	textStart := len(dst)
	dst = g.appendText(dst, lang, g.targetBytes(lang), budget)
	if g.bits(2) == 0 {
		g.poolFor(budget, true).add(g, dst[textStart:], lang.idx)
	}
	return dst, false
}

// poolFor returns the repeat pool for texts of budget bytes, creating it if
// create is set; outside fixed-size mode there is a single pool.
func (g *Generator) poolFor(budget int, create bool) *textPool {
	if budget < 0 {
		return &g.pool
	}
	p := g.fixedPools[budget]
	if p == nil && create {
		p = &textPool{limit: fixedPool}
		g.fixedPools[budget] = p
	}
	return p
}

// add remembers a copy of text, replacing a random entry once the pool is
// full.
func (p *textPool) add(g *Generator, text []byte, lang uint8) {
	if len(p.entries) < p.limit {
		p.entries = append(p.entries, pooled{text: append([]byte(nil), text...), lang: lang})
		return
	}
	e := &p.entries[g.intn(p.limit)]
	e.text = append(e.text[:0], text...)
	e.lang = lang
}

// targetBytes draws a text length for lang from a mixture of two
// lognormal distributions of characters: posts with a median of 120
// characters and a 1-in-32 long tail with a median of 1000, both scaled
// for the language, and converts it to bytes with the language's average
// bytes per character, within [MinTextBytes, MaxTextBytes]. In fixed-size
// mode the length follows from the size instead, so it returns 0 without
// drawing.
func (g *Generator) targetBytes(lang *language) int {
	if g.fixedSize > 0 {
		return 0
	}
	median, sigma := 120.0, 0.55
	if g.bits(5) == 0 {
		median, sigma = 1000, 0.7
	}
	chars := min(max(median*lang.scale*math.Exp(sigma*g.rng.NormFloat64()), MinTextBytes), MaxTextBytes)
	return int(min(chars*lang.bpc, MaxTextBytes))
}

// Token classes drawn per position in a text, as thresholds on a 10-bit
// draw.
const (
	tokMention = 24
	tokHashtag = tokMention + 30
	tokURL     = tokHashtag + 12
	tokEmoji   = tokURL + 40
	tokSpecial = tokEmoji + 14
)

// appendText appends a text in lang to dst. Outside fixed-size mode
// (budget < 0) the text holds at least target bytes, unless that would
// exceed MaxTextBytes; in fixed-size mode it is exactly budget bytes.
func (g *Generator) appendText(dst []byte, lang *language, target, budget int) []byte {
	start := len(dst)
	end, stop := start+MaxTextBytes, start+target
	if budget >= 0 {
		end, stop = start+budget, start+budget
	}
	dst = slices.Grow(dst, min(stop, end)-start+len(token{}.pre))

	// The first token, with no space before it: a mention in replies, a
	// capitalized word otherwise.
	first, isWord := &g.mentions[g.skewed(authorBits)], false
	if g.bits(3) != 0 {
		first, isWord = lang.words.pick(g), true
	}
	if len(first.s) <= end-start {
		dst = append(dst, first.s...)
		if isWord {
			capitalize(dst, start)
		}
	}

	capNext, needSpace, misses := false, false, 0
	for len(dst) < stop {
		// One draw per token: 10 bits pick the class, 12 the token within
		// it and 5 whether punctuation follows. This is bits(27), inlined.
		if g.nr < 27 {
			g.refill()
		}
		d := g.res
		g.res >>= 27
		g.nr -= 27

		if class := d & 1023; class < tokSpecial {
			var ok bool
			if dst, needSpace, ok = g.appendSpecial(dst, lang, class, d, end); !ok {
				if misses++; budget < 0 || misses > 3 || end-len(dst) < 8 {
					break
				}
			}
			continue
		}

		// The common case: a word from the language's vocabulary.
		tok := lang.words.at(d >> 10)
		n := tok.n
		if needSpace {
			n++
		}
		if len(dst)+n > end {
			if misses++; budget < 0 || misses > 3 || end-len(dst) < 8 {
				break
			}
			continue
		}
		if needSpace {
			dst = append(dst, ' ')
			needSpace = false
		}
		dst = appendPre(dst, tok)
		if capNext {
			capitalize(dst, len(dst)-len(tok.s))
			capNext = false
		}
		if d>>22&31 < 3 {
			pt := lang.punct.pick(g)
			if len(dst)+pt.n <= end {
				dst = appendPre(dst, pt)
				capNext = pt.endsSentence
			}
		}
	}
	if budget >= 0 {
		dst = g.pad(dst, start, budget)
	}
	return dst
}

// appendSpecial appends the token of a class other than words, with a
// space before it, unless it would reach past end. It reports whether the
// next word needs a space before it, which is the case after mentions,
// hashtags and URLs in languages that do not separate words.
func (g *Generator) appendSpecial(dst []byte, lang *language, class, d uint64, end int) (_ []byte, needSpace, ok bool) {
	var tok *token
	extra, repeat := 0, 1
	switch {
	case class < tokMention:
		tok = &g.mentions[g.skewed(authorBits)]
	case class < tokHashtag:
		tok = g.hashtags.at(d >> 10)
	case class < tokURL:
		tok = g.urlHosts.at(d >> 10)
		extra = urlPathLen
	case class < tokEmoji:
		tok = g.emojis.at(d >> 10)
		if r := d >> 22 & 31; r < 4 {
			repeat = 2 + int(r&1)
		}
	default:
		tok = g.specials.at(d >> 10)
	}
	if len(dst)+tok.n+extra+(repeat-1)*len(tok.s) > end {
		return dst, false, false
	}
	dst = appendPre(dst, tok)
	for i := 1; i < repeat; i++ {
		dst = append(dst, tok.s...)
	}
	if extra > 0 {
		dst = g.appendURLPath(dst)
	}
	return dst, !lang.spaced && class < tokURL, true
}

// capitalize upper-cases the ASCII letter at dst[i], if it is one.
func capitalize(dst []byte, i int) {
	if c := dst[i]; 'a' <= c && c <= 'z' {
		dst[i] = c - ('a' - 'A')
	}
}

// pad fills the text that starts at start up to budget bytes with ASCII
// filler words.
func (g *Generator) pad(dst []byte, start, budget int) []byte {
	rem := budget - (len(dst) - start)
	if rem <= 0 {
		return dst
	}
	if len(dst) > start && rem >= 2 {
		dst = append(dst, ' ')
		rem--
	}
	// Start at a random word of the filler.
	off := g.small(5)
	for fillerText[off] != ' ' {
		off++
	}
	off++
	for rem > 0 {
		n := min(rem, len(fillerText)-off)
		dst = append(dst, fillerText[off:off+n]...)
		rem -= n
		off = 0
	}
	return dst
}

// appendURLPath appends a random URL path of urlPathLen characters.
func (g *Generator) appendURLPath(dst []byte) []byte {
	for range urlPathLen {
		dst = append(dst, urlAlphabet[g.bits(6)])
	}
	return dst
}

// appendTail appends every field after text, starting with the quote that
// closes the text, and records where the lang value starts. Bits 0-11 of r
// pick the source and bits 12-23 the client.
func (g *Generator) appendTail(b []byte, lang *language, author string, r uint64) []byte {
	b = append(b, g.sourceTail[g.sources.index[r&(tableSize-1)]]...)
	b = append(b, author...)
	g.langOff = len(b) + len(`","lang":"`)
	b = append(b, lang.tail...)
	b = g.appendTime(b)
	b = append(b, g.clientTail[g.clients.index[r>>12&(tableSize-1)]]...)
	// One draw for the counts, which are heavy-tailed: a uniform number
	// of bits, then that many random bits.
	f := g.src.Uint64()
	b = strconv.AppendUint(b, f>>4&(1<<min(f&15, 15)-1), 10)
	b = append(b, `,"reposts":`...)
	b = strconv.AppendUint(b, f>>23&(1<<min(f>>19&15, 12)-1), 10)
	if f>>35&7 == 0 {
		b = append(b, `,"reply_to":"`...)
		b = appendHex(b, g.src.Uint64())
		b = append(b, '"')
	}
	return append(b, "}}"...)
}

// appendTime appends the current timestamp in CreatedAtLayout, formatting
// the part above milliseconds only when the second changes.
func (g *Generator) appendTime(b []byte) []byte {
	ms := g.ms
	if ms < g.secStart || ms-g.secStart >= 1000 {
		g.secStart = ms - ((ms%1000)+1000)%1000
		g.secText = time.UnixMilli(g.secStart).UTC().AppendFormat(g.secText[:0], "2006-01-02T15:04:05.")
	}
	r := ms - g.secStart
	b = append(b, g.secText...)
	return append(b, decimalDigits[r/100], decimalDigits[r/10%10], decimalDigits[r%10], 'Z')
}

// appendHex appends v as 16 lowercase hex digits.
func appendHex(b []byte, v uint64) []byte {
	var buf [16]byte
	for i := 15; i >= 0; i-- {
		buf[i] = hexDigits[v&15]
		v >>= 4
	}
	return append(b, buf[:]...)
}

// appendWrongValue appends a JSON value that is not a string.
func (g *Generator) appendWrongValue(dst []byte, lang *language) []byte {
	switch g.bits(2) {
	case 0:
		return strconv.AppendUint(dst, g.bits(24), 10)
	case 1:
		if g.bits(1) == 0 {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case 2:
		dst = append(dst, `["`...)
		dst = g.appendText(dst, lang, 24, -1)
		return append(dst, `"]`...)
	default:
		dst = append(dst, `{"body":"`...)
		dst = g.appendText(dst, lang, 24, -1)
		return append(dst, `"}`...)
	}
}

// insertInvalid inserts bad into the text that starts at textStart, right
// after a random space, or at the start if the text has no space.
func (g *Generator) insertInvalid(dst []byte, textStart int, bad string) []byte {
	text := dst[textStart:]
	pos := textStart
	if len(text) > 0 {
		off := g.intn(len(text))
		if i := bytes.IndexByte(text[off:], ' '); i >= 0 {
			pos = textStart + off + i + 1
		} else if i := bytes.IndexByte(text[:off], ' '); i >= 0 {
			pos = textStart + i + 1
		}
	}
	end := len(dst)
	dst = append(dst, bad...)
	copy(dst[pos+len(bad):], dst[pos:end])
	copy(dst[pos:], bad)
	return dst
}

// pick draws a token from t.
func (t *tokenTable) pick(g *Generator) *token {
	return t.at(g.bits(tableBits))
}

// at returns the token for the uniform draw r; it uses the low tableBits
// bits of r.
func (t *tokenTable) at(r uint64) *token {
	return &t.tokens[t.index[r&(tableSize-1)]]
}

// bits returns n uniformly random bits, for n of at most 32.
func (g *Generator) bits(n uint) uint64 {
	n &= 63
	if g.nr < n {
		g.refill()
	}
	v := g.res & (1<<n - 1)
	g.res >>= n
	g.nr -= n
	return v
}

// refill replaces the reservoir with 64 fresh bits; it is kept out of bits
// so that bits inlines.
func (g *Generator) refill() {
	g.res = g.src.Uint64()
	g.nr = 64
}

// small returns n uniformly random bits as an int, for n of at most 32.
func (g *Generator) small(n uint) int {
	return int(g.bits(n)) //nolint:gosec // At most 32 bits fit in an int.
}

// intn returns a uniformly random number in [0, n), for n in [1, 2^31).
func (g *Generator) intn(n int) int {
	return g.small(32) * n >> 32
}

// skewed returns a number in [0, 2^n) that favors small values, with the
// density of the product of two uniform draws, for n of at most 16.
func (g *Generator) skewed(n uint) uint64 {
	v := g.bits(2 * n)
	return (v & (1<<n - 1)) * (v >> n) >> n
}

// skewedN returns a number in [0, n) that favors small values, for n below
// 2^16.
func (g *Generator) skewedN(n int) int {
	return int(g.skewed(16)) * n >> 16 //nolint:gosec // Below 2^16.
}

// Package tokenizer encodes text into model input ids exactly as the
// Hugging Face tokenizers library does for the tokenizer.json files of
// today's encoder and decoder models:
//
//   - normalizers BertNormalizer, Replace (strings, and regexes without
//     Unicode classes), Prepend, Precompiled (SentencePiece charsmaps) and
//     Sequence;
//   - pre-tokenizers BertPreTokenizer, ByteLevel, Metaspace, Split (string
//     patterns, and the well-known regexes of GPT-2, GPT-4o, Llama 3 and
//     Qwen2, matched by hand) and Sequence;
//   - models WordPiece, BPE (byte-level, byte fallback, fuse_unk,
//     ignore_merges, continuing and end-of-word affixes) and Unigram;
//   - post-processors BertProcessing, RobertaProcessing, ByteLevel and
//     TemplateProcessing.
//
// Parity covers the added and special tokens that a text may contain
// literally (a user typing "[CLS]" or "<mask>" gets the token, with the
// lstrip, rstrip and single_word rules), the character classes of the
// library (generated into tables.go from tokenizers itself, so Unicode
// version differences between Rust, Oniguruma and Go do not show) and
// truncation. Only single sequences are encoded (pair templates are
// ignored); nothing is padded. Components and regexes that it does not
// implement fail to load with an *UnsupportedError.
package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"unicode/utf8"
)

// Options tune loading.
type Options struct {
	// MaxLength truncates encodings to at most this many tokens including
	// special tokens (Hugging Face: enable_truncation(max_length=N),
	// strategy longest_first, no stride); 0 keeps the truncation setting
	// of tokenizer.json, or none.
	MaxLength int
}

// Encoding is one text's tokens with the special tokens of the
// post-processor, unpadded.
type Encoding struct {
	IDs     []int64
	TypeIDs []int64
}

// Tokenizer encodes text with a loaded tokenizer.json. It is safe for
// concurrent use.
type Tokenizer struct {
	raw        *addedMatcher // Added tokens matched in the raw text.
	normalized *addedMatcher // Added tokens matched in the normalized text.
	normalizer normalizer    // nil: none.
	pre        preTokenizer
	model      model

	prefix, suffix         []int64 // Special tokens around the sequence.
	prefixType, suffixType []int64
	seqType                int64

	maxLength int  // Including special tokens; 0: none.
	keepLeft  bool // Truncation direction "Left": keep the end.
	padID     int64

	pool sync.Pool // Of *scratch.
}

// Scratch space past these sizes, left by a very long text, is not reused.
const (
	maxPooledTokens = 1 << 16
	maxPooledBytes  = 1 << 20
)

// scratch is the reusable state of one Encode call.
type scratch struct {
	ids     []int64
	spans   []span
	spans2  []span
	words   []string
	norm    []byte
	ns      normScratch
	pre     preScratch
	buf     []byte
	bpe     bpeScratch
	unigram unigramScratch
}

// Load reads a Hugging Face tokenizer.json of the WordPiece/BERT or the
// byte-level BPE/RoBERTa family.
func Load(path string, opts Options) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tokenizer: %w", err)
	}
	t, err := parse(data, opts)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer %s: %w", path, err)
	}
	return t, nil
}

func parse(data []byte, opts Options) (*Tokenizer, error) {
	if opts.MaxLength < 0 {
		return nil, fmt.Errorf("%w: negative max length %d", ErrInvalid, opts.MaxLength)
	}
	var cfg fileConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("decode json: %w", err)
	}
	t := &Tokenizer{}
	if err := t.setNormalizer(cfg.Normalizer); err != nil {
		return nil, err
	}
	byteLevel, err := t.setPreTokenizer(cfg.PreTokenizer)
	if err != nil {
		return nil, err
	}
	if err := t.setModel(cfg.Model, byteLevel); err != nil {
		return nil, err
	}
	if err := t.setPostProcessor(cfg.PostProcessor); err != nil {
		return nil, err
	}
	t.setAddedTokens(cfg.AddedTokens)
	if err := t.setTruncation(cfg.Truncation, opts.MaxLength); err != nil {
		return nil, err
	}
	t.padID = padID(cfg, t)
	t.pool.New = func() any { return new(scratch) }
	return t, nil
}

func (t *Tokenizer) setNormalizer(raw json.RawMessage) error {
	n, err := buildNormalizer(raw)
	if err != nil {
		return err
	}
	t.normalizer = n
	return nil
}

func (t *Tokenizer) setPreTokenizer(raw json.RawMessage) (byteLevel bool, err error) {
	pre, byteLevel, err := buildPreTokenizer(raw)
	if err != nil {
		return false, err
	}
	if pre == nil {
		pre = wholePiece{}
	}
	t.pre = pre
	return byteLevel, nil
}

func (t *Tokenizer) setModel(raw json.RawMessage, byteLevel bool) error {
	typ, err := typed(raw)
	if err != nil {
		return fmt.Errorf("decode model: %w", err)
	}
	switch typ {
	case "WordPiece":
		var c wordPieceConfig
		if err := json.Unmarshal(raw, &c); err != nil {
			return fmt.Errorf("decode model: %w", err)
		}
		t.model, err = newWordPiece(c)
	case "BPE":
		var c bpeConfig
		if err := json.Unmarshal(raw, &c); err != nil {
			return fmt.Errorf("decode model: %w", err)
		}
		t.model, err = newBPE(c, byteLevel)
	case "Unigram":
		var c unigramConfig
		if err := json.Unmarshal(raw, &c); err != nil {
			return fmt.Errorf("decode model: %w", err)
		}
		if c.UnkID == nil {
			return &UnsupportedError{Component: "model", Type: "Unigram without unk_id"}
		}
		t.model, err = newUnigram(c)
	case "":
		return fmt.Errorf("%w: no model", ErrInvalid)
	default:
		return &UnsupportedError{Component: "model", Type: typ}
	}
	return err
}

func (t *Tokenizer) setPostProcessor(raw json.RawMessage) error {
	typ, err := typed(raw)
	if err != nil {
		return fmt.Errorf("decode post_processor: %w", err)
	}
	switch typ {
	case "", "ByteLevel":
	case "BertProcessing", "RobertaProcessing":
		var c pairConfig
		if err := json.Unmarshal(raw, &c); err != nil {
			return fmt.Errorf("decode post_processor: %w", err)
		}
		cls, sep, err := c.ids()
		if err != nil {
			return fmt.Errorf("decode post_processor: %w", err)
		}
		t.prefix, t.prefixType = []int64{cls}, []int64{0}
		t.suffix, t.suffixType = []int64{sep}, []int64{0}
	case "TemplateProcessing":
		var c templateConfig
		if err := json.Unmarshal(raw, &c); err != nil {
			return fmt.Errorf("decode post_processor: %w", err)
		}
		return t.setTemplate(c)
	default:
		return &UnsupportedError{Component: "post_processor", Type: typ}
	}
	return nil
}

func (t *Tokenizer) setTemplate(c templateConfig) error {
	seen := false
	for _, p := range c.Single {
		switch {
		case p.Sequence != nil:
			if seen {
				return fmt.Errorf("post_processor: %w: template names a sequence twice", ErrInvalid)
			}
			seen = true
			t.seqType = p.Sequence.TypeID
		case p.SpecialToken != nil:
			st, ok := c.SpecialTokens[p.SpecialToken.ID]
			if !ok {
				return fmt.Errorf("post_processor: %w: special token %q not defined", ErrInvalid, p.SpecialToken.ID)
			}
			for _, id := range st.IDs {
				if seen {
					t.suffix = append(t.suffix, id)
					t.suffixType = append(t.suffixType, p.SpecialToken.TypeID)
				} else {
					t.prefix = append(t.prefix, id)
					t.prefixType = append(t.prefixType, p.SpecialToken.TypeID)
				}
			}
		}
	}
	if !seen {
		return fmt.Errorf("post_processor: %w: template has no sequence", ErrInvalid)
	}
	return nil
}

func (t *Tokenizer) setAddedTokens(tokens []addedToken) {
	var raw, normalized []matchToken
	for _, a := range tokens {
		if a.Content == "" {
			continue
		}
		m := matchToken{content: a.Content, id: a.ID, singleWord: a.SingleWord, lstrip: a.LStrip, rstrip: a.RStrip}
		if !a.Normalized {
			raw = append(raw, m)
			continue
		}
		if t.normalizer != nil {
			m.content = string(t.normalizer.normalize(nil, &normScratch{}, a.Content))
		}
		if m.content != "" {
			normalized = append(normalized, m)
		}
	}
	t.raw = newAddedMatcher(raw)
	t.normalized = newAddedMatcher(normalized)
}

func (t *Tokenizer) setTruncation(c *truncationConfig, maxLength int) error {
	if c != nil {
		switch c.Strategy {
		case "", "LongestFirst", "OnlyFirst":
		default:
			return &UnsupportedError{Component: "truncation", Type: c.Strategy}
		}
		t.keepLeft = c.Direction == "Left"
		t.maxLength = c.MaxLength
	}
	if maxLength > 0 {
		// As enable_truncation(max_length=N): the other settings revert
		// to their defaults.
		t.maxLength = maxLength
		t.keepLeft = false
	}
	if t.maxLength > 0 && t.maxLength < len(t.prefix)+len(t.suffix) {
		return fmt.Errorf("%w: max length %d is shorter than the %d special tokens", ErrInvalid, t.maxLength, len(t.prefix)+len(t.suffix))
	}
	return nil
}

// padID returns the padding id of the padding config, else that of a
// "[PAD]" or "<pad>" token, else 0.
func padID(cfg fileConfig, t *Tokenizer) int64 {
	if cfg.Padding != nil && cfg.Padding.PadID != nil {
		return *cfg.Padding.PadID
	}
	for _, a := range cfg.AddedTokens {
		if a.Content == "[PAD]" || a.Content == "<pad>" {
			return a.ID
		}
	}
	var vocab map[string]int64
	switch m := t.model.(type) {
	case *wordPiece:
		vocab = m.vocab
	case *bpe:
		vocab = m.vocab
	case *unigram:
		vocab = m.vocab
	}
	for _, name := range []string{"[PAD]", "<pad>"} {
		if id, ok := vocab[name]; ok {
			return id
		}
	}
	return 0
}

// PadID returns the id that pads encodings: the pad_id of tokenizer.json's
// padding, else the id of the [PAD] or <pad> token, else 0.
func (t *Tokenizer) PadID() int64 { return t.padID }

// MaxLength returns the number of tokens, special tokens included, that
// encodings are truncated to; 0 means no truncation.
func (t *Tokenizer) MaxLength() int { return t.maxLength }

// Encode tokenizes one text. Invalid UTF-8 bytes become U+FFFD, one per
// byte. It is safe for concurrent use.
func (t *Tokenizer) Encode(text string) Encoding {
	if !utf8.ValidString(text) {
		text = validUTF8(text)
	}
	sc := t.pool.Get().(*scratch) //nolint:errcheck // The pool holds only *scratch.
	limit := -1
	if t.maxLength > 0 {
		limit = t.maxLength - len(t.prefix) - len(t.suffix)
	}
	ids := t.content(sc, text, limit)
	if limit >= 0 && len(ids) > limit {
		if t.keepLeft {
			ids = ids[len(ids)-limit:]
		} else {
			ids = ids[:limit]
		}
	}
	n := len(t.prefix) + len(ids) + len(t.suffix)
	all := make([]int64, 2*n)
	out, types := all[:0:n], all[n:n]
	out = append(append(append(out, t.prefix...), ids...), t.suffix...)
	types = append(types, t.prefixType...)
	for range ids {
		types = append(types, t.seqType)
	}
	types = append(types, t.suffixType...)
	sc.ids = ids[:0]
	if cap(sc.ids) <= maxPooledTokens && cap(sc.norm) <= maxPooledBytes {
		t.pool.Put(sc)
	}
	return Encoding{IDs: out, TypeIDs: types}
}

// content returns the ids of text without special tokens. When limit >= 0
// and truncation keeps the start, it may stop once it has more than limit.
func (t *Tokenizer) content(sc *scratch, text string, limit int) []int64 {
	ids := sc.ids[:0]
	stopEarly := limit >= 0 && !t.keepLeft
	sc.spans = t.raw.split(sc.spans[:0], text)
	for _, sp := range sc.spans {
		if stopEarly && len(ids) > limit {
			break
		}
		if sp.id >= 0 {
			ids = append(ids, sp.id)
			continue
		}
		first := sp.start == 0
		piece := text[sp.start:sp.end]
		if t.normalizer != nil {
			sc.norm = t.normalizer.normalize(sc.norm[:0], &sc.ns, piece)
			if len(sc.norm) == 0 {
				continue
			}
			piece = string(sc.norm)
		}
		if t.normalized == nil {
			ids = t.words(sc, ids, piece, first, limit)
			continue
		}
		sc.spans2 = t.normalized.split(sc.spans2[:0], piece)
		for _, sp2 := range sc.spans2 {
			if sp2.id >= 0 {
				ids = append(ids, sp2.id)
				continue
			}
			ids = t.words(sc, ids, piece[sp2.start:sp2.end], first && sp2.start == 0, limit)
		}
	}
	return ids
}

// words pre-tokenizes piece and appends the ids of its words.
func (t *Tokenizer) words(sc *scratch, ids []int64, piece string, first bool, limit int) []int64 {
	if piece == "" {
		return ids
	}
	sc.words = t.pre.split(&sc.pre, sc.words[:0], piece, first)
	stopEarly := limit >= 0 && !t.keepLeft
	for _, w := range sc.words {
		if stopEarly && len(ids) > limit {
			break
		}
		ids = t.model.tokenize(sc, ids, w)
	}
	return ids
}

// validUTF8 replaces each byte of s that is not part of valid UTF-8 with
// U+FFFD.
func validUTF8(s string) string {
	out := make([]byte, 0, len(s)+8)
	for _, r := range s {
		out = utf8.AppendRune(out, r)
	}
	return string(out)
}

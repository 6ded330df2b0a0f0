package tokenizer

import (
	"sort"
	"unicode"
	"unicode/utf8"
)

// addedMatcher finds added tokens in text the way tokenizers'
// AddedVocabulary does: leftmost-longest matches, scanned left to right,
// honouring single_word, lstrip and rstrip.
type addedMatcher struct {
	byFirst [256][]int32 // Indexes into tokens by first byte, longest first.
	tokens  []matchToken // Longest first.
}

type matchToken struct {
	content    string
	id         int64
	singleWord bool
	lstrip     bool
	rstrip     bool
}

// span is a piece of text: an added token (id >= 0) or text to tokenize.
type span struct {
	start, end int
	id         int64
}

func newAddedMatcher(tokens []matchToken) *addedMatcher {
	if len(tokens) == 0 {
		return nil
	}
	m := &addedMatcher{tokens: tokens}
	sort.SliceStable(m.tokens, func(i, j int) bool { return len(m.tokens[i].content) > len(m.tokens[j].content) })
	for k, t := range m.tokens {
		m.byFirst[t.content[0]] = append(m.byFirst[t.content[0]], int32(k)) //nolint:gosec // Far fewer than 2^31 tokens.
	}
	return m
}

// find returns the leftmost-longest token occurring in s at or after from:
// its start and end, and its index in m.tokens; ok is false when none does.
func (m *addedMatcher) find(s string, from int) (start, end, index int, ok bool) {
	for i := from; i < len(s); i++ {
		for _, k := range m.byFirst[s[i]] {
			t := &m.tokens[k]
			if len(s)-i >= len(t.content) && s[i:i+len(t.content)] == t.content {
				return i, i + len(t.content), int(k), true
			}
		}
	}
	return 0, 0, 0, false
}

// isWordChar reports whether r matches the regex \w of tokenizers.
func isWordChar(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.M, r) ||
		unicode.Is(unicode.Pc, r) || unicode.Is(unicode.Join_Control, r)
}

// split appends to spans the pieces of s: the added tokens it holds and the
// text between them. The pieces cover s in order.
func (m *addedMatcher) split(spans []span, s string) []span {
	if m == nil {
		return append(spans, span{0, len(s), -1})
	}
	offset := 0
	for from := 0; from < len(s); {
		start, stop, k, ok := m.find(s, from)
		if !ok {
			break
		}
		from = stop
		t := &m.tokens[k]
		if t.singleWord {
			before, _ := utf8.DecodeLastRuneInString(s[:start])
			after, _ := utf8.DecodeRuneInString(s[stop:])
			if (start > 0 && isWordChar(before)) || (stop < len(s) && isWordChar(after)) {
				continue
			}
		}
		if t.lstrip {
			ns := start
			for ns > 0 {
				r, size := utf8.DecodeLastRuneInString(s[:ns])
				if !isSpace(r) {
					break
				}
				ns -= size
			}
			start = max(ns, offset)
		}
		if t.rstrip {
			for stop < len(s) {
				r, size := utf8.DecodeRuneInString(s[stop:])
				if !isSpace(r) {
					break
				}
				stop += size
			}
		}
		if offset < start {
			spans = append(spans, span{offset, start, -1})
		}
		spans = append(spans, span{start, stop, t.id})
		offset = stop
	}
	if offset < len(s) || len(s) == 0 {
		spans = append(spans, span{offset, len(s), -1})
	}
	return spans
}

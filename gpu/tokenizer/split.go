package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// splitPattern finds the delimiters of a Split pre-tokenizer.
type splitPattern interface {
	// find returns the first non-empty match in s at or after from, or
	// start < 0 when there is none.
	find(s string, from int) (start, end int)
}

// literalPattern matches a fixed string (Split's {"String": ...}).
type literalPattern string

func (p literalPattern) find(s string, from int) (start, end int) {
	if p == "" {
		return -1, -1
	}
	i := strings.Index(s[from:], string(p))
	if i < 0 {
		return -1, -1
	}
	return from + i, from + i + len(p)
}

// scanPattern is one of the well-known Split regexes, matched by hand with
// the character classes of tokenizers. Each of them matches every
// character, so a match starts wherever the previous one ended.
type scanPattern func(s string, i int) int

func (p scanPattern) find(s string, from int) (start, end int) {
	if from >= len(s) {
		return -1, -1
	}
	return from, p(s, from)
}

// Split regexes that this package matches by hand.
const (
	// patternGPT4o is the pre-tokenizer regex of GPT-4o (o200k).
	patternGPT4o = `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// patternLlama3 is the pre-tokenizer regex of Llama 3 (cl100k style).
	patternLlama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// patternQwen2 is Llama 3's regex with single digits, as in Qwen2.
	patternQwen2 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// patternGPT2 is the regex of the ByteLevel pre-tokenizer.
	patternGPT2 = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
)

// knownPattern returns the matcher of a Split regex, or false.
func knownPattern(re string) (splitPattern, bool) {
	switch re {
	case patternGPT4o:
		return scanPattern(matchGPT4o), true
	case patternLlama3:
		return scanPattern(func(s string, i int) int { return matchLlama3(s, i, 3) }), true
	case patternQwen2:
		return scanPattern(func(s string, i int) int { return matchLlama3(s, i, 1) }), true
	case patternGPT2:
		return scanPattern(byteLevelPreTokenizer{}.match), true
	}
	return nil, false
}

// splitBehavior is Split's SplitDelimiterBehavior.
type splitBehavior int

const (
	splitRemoved splitBehavior = iota
	splitIsolated
	splitMergedWithPrevious
	splitMergedWithNext
	splitContiguous
)

// splitPreTokenizer is the Split pre-tokenizer: it cuts a piece at the
// matches of a pattern and treats the delimiters by behavior; with invert
// the matches are the pieces and the text between them the delimiters.
type splitPreTokenizer struct {
	pattern  splitPattern
	behavior splitBehavior
	invert   bool
}

func (p splitPreTokenizer) split(_ *preScratch, words []string, s string, _ bool) []string {
	// pending is the piece not yet appended, so that a later delimiter can
	// still join it; pendingMatch tells whether the last segment matched.
	pending := [2]int{-1, -1}
	lastMatch := false
	flush := func() {
		if pending[0] >= 0 && pending[1] > pending[0] {
			words = append(words, s[pending[0]:pending[1]])
		}
		pending = [2]int{-1, -1}
	}
	segment := func(start, end int, match bool) {
		if p.invert {
			match = !match
		}
		switch p.behavior {
		case splitRemoved:
			if !match {
				flush()
				pending = [2]int{start, end}
			}
		case splitIsolated:
			flush()
			pending = [2]int{start, end}
		case splitMergedWithPrevious:
			if match && !lastMatch && pending[0] >= 0 {
				pending[1] = end
			} else {
				flush()
				pending = [2]int{start, end}
			}
		case splitMergedWithNext:
			// A delimiter joins the segment after it unless that is a
			// delimiter too.
			if lastMatch && !match && pending[0] >= 0 {
				pending[1] = end
			} else {
				flush()
				pending = [2]int{start, end}
			}
		case splitContiguous:
			if match == lastMatch && pending[0] >= 0 {
				pending[1] = end
			} else {
				flush()
				pending = [2]int{start, end}
			}
		}
		lastMatch = match
	}
	prev := 0
	for prev < len(s) {
		start, end := p.pattern.find(s, prev)
		if start < 0 {
			break
		}
		if start > prev {
			segment(prev, start, false)
		}
		segment(start, end, true)
		prev = end
	}
	if prev < len(s) {
		segment(prev, len(s), false)
	}
	flush()
	return words
}

// sequencePreTokenizer applies pre-tokenizers in order, each to every word
// of the one before.
type sequencePreTokenizer []preTokenizer

func (q sequencePreTokenizer) split(sc *preScratch, words []string, s string, first bool) []string {
	cur := append(sc.a[:0], s)
	for k, p := range q {
		if k == len(q)-1 {
			for i, w := range cur {
				words = p.split(sc, words, w, first && i == 0)
			}
			break
		}
		next := sc.b[:0]
		for i, w := range cur {
			next = p.split(sc, next, w, first && i == 0)
		}
		sc.a, sc.b = next, cur
		cur = next
	}
	sc.a, sc.b = sc.a[:0], sc.b[:0]
	return words
}

// Metaspace prepend schemes.
const (
	prependAlways = iota
	prependFirst
	prependNever
)

// metaspacePreTokenizer is the Metaspace pre-tokenizer: spaces become the
// replacement character, which is prepended by the prepend scheme, and
// with split each word starts at a replacement character.
type metaspacePreTokenizer struct {
	replacement string
	prepend     int
	splitWords  bool
}

func (m metaspacePreTokenizer) split(sc *preScratch, words []string, s string, first bool) []string {
	t := strings.ReplaceAll(s, " ", m.replacement)
	if (m.prepend == prependAlways || (m.prepend == prependFirst && first)) && !strings.HasPrefix(t, m.replacement) {
		t = m.replacement + t
	}
	if !m.splitWords {
		return wholePiece{}.split(sc, words, t, first)
	}
	return splitPreTokenizer{pattern: literalPattern(m.replacement), behavior: splitMergedWithNext}.split(sc, words, t, first)
}

// Character classes of the Split regexes, as tokenizers' Oniguruma has them.

// isUpperish reports whether r matches [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}].
func isUpperish(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 'A' && r <= 'Z'
	}
	return unicode.Is(regexUpperish, r)
}

// isLowerish reports whether r matches [\p{Ll}\p{Lm}\p{Lo}\p{M}].
func isLowerish(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 'a' && r <= 'z'
	}
	return unicode.Is(regexLowerish, r)
}

// isLetterPrefix reports whether r matches [^\r\n\p{L}\p{N}].
func isLetterPrefix(r rune) bool {
	if r == '\r' || r == '\n' {
		return false
	}
	c := regexClass(r)
	return c != classLetter && c != classNumber
}

// runWhile returns the end of the run of characters from i that satisfy in.
func runWhile(s string, i int, in func(rune) bool) int {
	for i < len(s) {
		r, size := decodeRune(s, i)
		if !in(r) {
			break
		}
		i += size
	}
	return i
}

// contractionFold returns the length of (?i:'s|'t|'re|'ve|'m|'ll|'d) at the
// start of s, or 0. Oniguruma folds U+017F (long s) to s.
func contractionFold(s string) int {
	if len(s) < 2 || s[0] != '\'' {
		return 0
	}
	if len(s) >= 3 && s[1] == 0xc5 && s[2] == 0xbf {
		return 3
	}
	lower := func(c byte) byte { return c | 0x20 }
	switch lower(s[1]) {
	case 's', 't', 'm', 'd':
		return 2
	case 'r', 'v':
		if len(s) >= 3 && lower(s[2]) == 'e' {
			return 3
		}
	case 'l':
		if len(s) >= 3 && lower(s[2]) == 'l' {
			return 3
		}
	}
	return 0
}

// digitsUpTo returns the end of at most n \p{N} characters from i, or i.
func digitsUpTo(s string, i, n int) int {
	for k := 0; k < n && i < len(s); k++ {
		r, size := decodeRune(s, i)
		if regexClass(r) != classNumber {
			break
		}
		i += size
	}
	return i
}

// isOther reports whether r matches [^\s\p{L}\p{N}].
func isOther(r rune) bool { return regexClass(r) == classOther }

// punctRun matches ` ?[^\s\p{L}\p{N}]+` followed by a run of the bytes of
// tail, at i; it returns i when nothing matches.
func punctRun(s string, i int, tail string) int {
	j := i
	if s[j] == ' ' && j+1 < len(s) {
		if r, _ := decodeRune(s, j+1); isOther(r) {
			j++
		}
	}
	if r, _ := decodeRune(s, j); !isOther(r) {
		return i
	}
	j = runWhile(s, j, isOther)
	for j < len(s) && strings.IndexByte(tail, s[j]) >= 0 {
		j++
	}
	return j
}

// spaceTail matches \s*[\r\n]+|\s+(?!\S)|\s+ at i, where s[i] is white
// space; it returns i when nothing matches.
func spaceTail(s string, i int) int {
	end := runOf(s, i, classSpace)
	if end == i {
		return i
	}
	// \s*[\r\n]+: up to the last line break of the run.
	for k := end - 1; k >= i; k-- {
		if s[k] == '\r' || s[k] == '\n' {
			return k + 1
		}
	}
	if end == len(s) {
		return end
	}
	_, lastSize := utf8.DecodeLastRuneInString(s[:end])
	if end-lastSize > i {
		return end - lastSize
	}
	return end
}

// letterStart returns the starts to try for a letter alternative with an
// optional [^\r\n\p{L}\p{N}] prefix at i: after the prefix first, then at i.
func letterStart(s string, i int) (withPrefix, without int) {
	r, size := decodeRune(s, i)
	if isLetterPrefix(r) && i+size < len(s) {
		return i + size, i
	}
	return -1, i
}

// matchLlama3 matches patternLlama3 (digits 3) or patternQwen2 (digits 1)
// at i and returns the end of the match.
func matchLlama3(s string, i, digits int) int {
	if n := contractionFold(s[i:]); n > 0 {
		return i + n
	}
	isLetter := func(r rune) bool { return regexClass(r) == classLetter }
	pre, at := letterStart(s, i)
	for _, j := range [2]int{pre, at} {
		if j < 0 {
			continue
		}
		if e := runWhile(s, j, isLetter); e > j {
			return e
		}
	}
	if e := digitsUpTo(s, i, digits); e > i {
		return e
	}
	if e := punctRun(s, i, "\r\n"); e > i {
		return e
	}
	if e := spaceTail(s, i); e > i {
		return e
	}
	_, size := decodeRune(s, i)
	return i + size
}

// casedWord matches [U]*[l]+ at j (lower) or [U]+[l]* (upper), where U is
// the upperish and l the lowerish class, with backtracking as Oniguruma
// does; it returns j when nothing matches.
func casedWord(s string, j int, lower bool) int {
	p := runWhile(s, j, isUpperish)
	if !lower {
		if p == j {
			return j
		}
		return runWhile(s, p, isLowerish)
	}
	if p < len(s) {
		if r, _ := decodeRune(s, p); isLowerish(r) {
			return runWhile(s, p, isLowerish)
		}
	}
	// Give back upperish characters until one is also lowerish.
	for k := p; k > j; {
		r, size := utf8.DecodeLastRuneInString(s[j:k])
		k -= size
		if isLowerish(r) {
			return k + size
		}
	}
	return j
}

// matchGPT4o matches patternGPT4o at i and returns the end of the match.
func matchGPT4o(s string, i int) int {
	pre, at := letterStart(s, i)
	for _, lower := range [2]bool{true, false} {
		for _, j := range [2]int{pre, at} {
			if j < 0 {
				continue
			}
			if e := casedWord(s, j, lower); e > j {
				return e + contractionFold(s[e:])
			}
		}
	}
	if e := digitsUpTo(s, i, 3); e > i {
		return e
	}
	if e := punctRun(s, i, "\r\n/"); e > i {
		return e
	}
	if e := spaceTail(s, i); e > i {
		return e
	}
	_, size := decodeRune(s, i)
	return i + size
}

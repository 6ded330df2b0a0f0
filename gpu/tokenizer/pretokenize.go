package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// preTokenizer splits a piece of normalized text into words.
type preTokenizer interface {
	// split appends the words of s to words and returns the result, using
	// sc for scratch space. Every word is non-empty. first tells whether s
	// starts the text.
	split(sc *preScratch, words []string, s string, first bool) []string
}

// preScratch is the reusable space of a pre-tokenization.
type preScratch struct {
	a, b []string
}

// wholePiece is the absent pre-tokenizer: the piece is one word.
type wholePiece struct{}

func (wholePiece) split(_ *preScratch, words []string, s string, _ bool) []string {
	if s == "" {
		return words
	}
	return append(words, s)
}

// bertPreTokenizer is BertPreTokenizer: it splits on white space, which it
// drops, and isolates each punctuation character.
type bertPreTokenizer struct{}

func isBertPunct(r rune) bool {
	if r < utf8.RuneSelf {
		return (r >= '!' && r <= '/') || (r >= ':' && r <= '@') || (r >= '[' && r <= '`') || (r >= '{' && r <= '~')
	}
	return unicode.Is(bertPunct, r)
}

func (bertPreTokenizer) split(_ *preScratch, words []string, s string, _ bool) []string {
	start := -1
	for i := 0; i < len(s); {
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		switch {
		case isSpace(r):
			if start >= 0 {
				words = append(words, s[start:i])
				start = -1
			}
		case isBertPunct(r):
			if start >= 0 {
				words = append(words, s[start:i])
				start = -1
			}
			words = append(words, s[i:i+size])
		default:
			if start < 0 {
				start = i
			}
		}
		i += size
	}
	if start >= 0 {
		words = append(words, s[start:])
	}
	return words
}

// byteLevelPreTokenizer is the ByteLevel pre-tokenizer. With useRegex it
// splits with the GPT-2 pattern
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// matched by hand with the character classes of tokenizers. The mapping of
// bytes to characters is left to the model, which works on bytes.
type byteLevelPreTokenizer struct {
	addPrefixSpace bool
	useRegex       bool
}

// Character classes of the GPT-2 pattern.
const (
	classOther = iota // [^\s\p{L}\p{N}]
	classLetter
	classNumber
	classSpace
)

func regexClass(r rune) int {
	if r < utf8.RuneSelf {
		switch {
		case (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'):
			return classLetter
		case r >= '0' && r <= '9':
			return classNumber
		case r == ' ' || (r >= '\t' && r <= '\r'):
			return classSpace
		}
		return classOther
	}
	switch {
	case unicode.Is(regexLetter, r):
		return classLetter
	case unicode.Is(regexNumber, r):
		return classNumber
	case unicode.Is(regexSpace, r):
		return classSpace
	}
	return classOther
}

func decodeRune(s string, i int) (rune, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// contraction returns the length of the contraction ('s, 't, 're, 've, 'm,
// 'll, 'd) at the start of s, or 0.
func contraction(s string) int {
	if len(s) < 2 || s[0] != '\'' {
		return 0
	}
	switch s[1] {
	case 's', 't', 'm', 'd':
		return 2
	case 'r', 'v':
		if len(s) >= 3 && s[2] == 'e' {
			return 3
		}
	case 'l':
		if len(s) >= 3 && s[2] == 'l' {
			return 3
		}
	}
	return 0
}

// runOf returns the end of the run of characters of class cls starting at i.
func runOf(s string, i, cls int) int {
	for i < len(s) {
		r, size := decodeRune(s, i)
		if regexClass(r) != cls {
			break
		}
		i += size
	}
	return i
}

func (p byteLevelPreTokenizer) split(sc *preScratch, words []string, s string, first bool) []string {
	if p.addPrefixSpace && s != "" && s[0] != ' ' {
		s = " " + s
	}
	if !p.useRegex {
		return wholePiece{}.split(sc, words, s, first)
	}
	for i := 0; i < len(s); {
		end := p.match(s, i)
		words = append(words, s[i:end])
		i = end
	}
	return words
}

// match returns the end of the leftmost match of the GPT-2 pattern at i.
func (byteLevelPreTokenizer) match(s string, i int) int {
	if n := contraction(s[i:]); n > 0 {
		return i + n
	}
	r, size := decodeRune(s, i)
	cls := regexClass(r)
	start := i
	if r == ' ' && i+size < len(s) {
		// " ?X+" for a letter, a number or another non-space character.
		r2, _ := decodeRune(s, i+size)
		if c2 := regexClass(r2); c2 != classSpace {
			return runOf(s, i+size, c2)
		}
	}
	if cls != classSpace {
		return runOf(s, start, cls)
	}
	// \s+(?!\S): the run of white space, less its last character when a
	// non-space follows; \s+ when that leaves nothing.
	end := runOf(s, i, classSpace)
	if end == len(s) {
		return end
	}
	_, lastSize := utf8.DecodeLastRuneInString(s[:end])
	if end-lastSize > start {
		return end - lastSize
	}
	return end
}

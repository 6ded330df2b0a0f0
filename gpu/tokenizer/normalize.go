package tokenizer

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// lowerEntry is one character whose lowercase form differs from itself.
type lowerEntry struct {
	from rune
	to   string
}

// bertNormalizer is the BertNormalizer of tokenizers: clean_text,
// handle_chinese_chars, strip_accents and lowercase, applied in that order.
type bertNormalizer struct {
	cleanText    bool
	chinese      bool
	stripAccents bool
	lowercase    bool
}

func newBertNormalizer(c bertNormalizerConfig) *bertNormalizer {
	strip := c.Lowercase
	if c.StripAccents != nil {
		strip = *c.StripAccents
	}
	return &bertNormalizer{cleanText: c.CleanText, chinese: c.HandleChineseChars, stripAccents: strip, lowercase: c.Lowercase}
}

// isChinese reports whether r is in the CJK blocks that BertNormalizer
// surrounds with spaces.
func isChinese(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) ||
		(r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) ||
		(r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) ||
		(r >= 0x2B920 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) ||
		(r >= 0x2F800 && r <= 0x2FA1F)
}

// isSpace reports whether r is Unicode white space, as Rust's
// char::is_whitespace and the regex \s of tokenizers define it.
func isSpace(r rune) bool {
	if r < utf8.RuneSelf {
		return r == ' ' || (r >= '\t' && r <= '\r')
	}
	return unicode.Is(regexSpace, r)
}

// normScratch is the reusable space of a normalization.
type normScratch struct {
	clean []byte
	nfd   []byte
	seq   [2][]byte
}

// normalize appends the normalized form of s, which must be valid UTF-8, to
// dst and returns the result.
func (n *bertNormalizer) normalize(dst []byte, sc *normScratch, s string) []byte {
	buf, ascii, keep := n.clean(sc.clean[:0], s)
	sc.clean = buf
	if ascii || (!n.stripAccents && !n.lowercase) {
		if n.lowercase {
			for _, c := range buf {
				if c >= 'A' && c <= 'Z' {
					c += 'a' - 'A'
				}
				dst = append(dst, c)
			}
			return dst
		}
		return append(dst, buf...)
	}
	// Pass 2: NFD and removal of nonspacing marks, then lowercasing. norm's
	// Append takes what its buffer holds as normalized, so it starts from
	// an empty one.
	src := buf
	if n.stripAccents {
		if keep {
			sc.nfd = appendNFDKeeping(sc.nfd[:0], src)
		} else {
			sc.nfd = norm.NFD.Append(sc.nfd[:0], src...)
		}
		src = sc.nfd
	}
	return n.appendStrippedLower(dst, src)
}

// clean is pass 1 of normalize, clean_text and handle_chinese_chars: it
// appends them applied to s to buf. ascii reports whether the result is
// all ASCII, keep whether accent stripping meets a character of nfdKeep.
func (n *bertNormalizer) clean(buf []byte, s string) (out []byte, ascii, keep bool) {
	ascii = true
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			if n.cleanText {
				switch {
				case c == '\t' || c == '\n' || c == '\r':
					c = ' '
				case c < 0x20 || c == 0x7f:
					continue
				}
			}
			buf = append(buf, c)
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if n.cleanText {
			if r == utf8.RuneError || unicode.Is(bertControl, r) {
				continue
			}
			if unicode.Is(bertSpace, r) {
				buf = append(buf, ' ')
				continue
			}
		}
		ascii = false
		if n.stripAccents && !keep && unicode.Is(nfdKeep, r) {
			keep = true
		}
		if n.chinese && isChinese(r) {
			buf = append(buf, ' ')
			buf = utf8.AppendRune(buf, r)
			buf = append(buf, ' ')
			continue
		}
		buf = utf8.AppendRune(buf, r)
	}
	return buf, ascii, keep
}

// appendStrippedLower appends src to dst without its nonspacing marks when
// stripping accents, lowercased when lowercasing.
func (n *bertNormalizer) appendStrippedLower(dst, src []byte) []byte {
	for i := 0; i < len(src); {
		c := src[i]
		if c < utf8.RuneSelf {
			i++
			if n.lowercase && c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			continue
		}
		r, size := utf8.DecodeRune(src[i:])
		i += size
		if n.stripAccents && unicode.Is(nonspacingMark, r) {
			continue
		}
		if n.lowercase {
			dst = appendLower(dst, r)
			continue
		}
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

// appendNFDKeeping appends the NFD of src to dst, leaving the characters of
// nfdKeep undecomposed. They are starters, so decomposing the text between
// them piece by piece gives the same order of marks. It is rarely needed
// and allocates.
func appendNFDKeeping(dst, src []byte) []byte {
	last := 0
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRune(src[i:])
		if r >= utf8.RuneSelf && unicode.Is(nfdKeep, r) {
			dst = append(dst, norm.NFD.Bytes(src[last:i])...)
			dst = append(dst, src[i:i+size]...)
			last = i + size
		}
		i += size
	}
	return append(dst, norm.NFD.Bytes(src[last:])...)
}

// appendLower appends the lowercase form of r as tokenizers computes it.
func appendLower(dst []byte, r rune) []byte {
	lo, hi := 0, len(lowerTable)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch e := &lowerTable[m]; {
		case e.from == r:
			return append(dst, e.to...)
		case e.from < r:
			lo = m + 1
		default:
			hi = m
		}
	}
	return utf8.AppendRune(dst, r)
}

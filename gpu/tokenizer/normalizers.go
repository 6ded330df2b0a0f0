package tokenizer

import (
	"encoding/binary"
	"fmt"
	"regexp"
	"strings"

	"github.com/rivo/uniseg"
)

// normalizer rewrites a piece of text before pre-tokenization.
type normalizer interface {
	// normalize appends the normalized form of s, which is valid UTF-8,
	// to dst and returns the result, using sc for scratch space.
	normalize(dst []byte, sc *normScratch, s string) []byte
}

// replaceNormalizer is the Replace normalizer: every non-overlapping match
// of a string or a regex, left to right, becomes content.
type replaceNormalizer struct {
	literal string
	re      *regexp.Regexp // When not nil, used instead of literal.
	content string
}

func (r replaceNormalizer) normalize(dst []byte, _ *normScratch, s string) []byte {
	if r.re != nil {
		return append(dst, r.re.ReplaceAllLiteralString(s, r.content)...)
	}
	if r.literal == "" {
		return append(dst, s...)
	}
	for {
		i := strings.Index(s, r.literal)
		if i < 0 {
			return append(dst, s...)
		}
		dst = append(append(dst, s[:i]...), r.content...)
		s = s[i+len(r.literal):]
	}
}

// compileReplaceRegex compiles a Replace regex that Go's regexp matches
// exactly as Oniguruma does: ASCII-only, without Unicode classes, case
// folding or lookaround.
func compileReplaceRegex(pattern string) (*regexp.Regexp, error) {
	for i := 0; i < len(pattern); i++ {
		if pattern[i] >= 0x80 {
			return nil, &UnsupportedError{Component: "normalizer", Type: "Replace regex " + pattern}
		}
	}
	// Escapes whose meaning depends on Unicode tables or case folding,
	// where Go's regexp and Oniguruma may disagree.
	for _, e := range []string{`\p`, `\P`, `\s`, `\S`, `\w`, `\W`, `\d`, `\D`, `\b`, `\B`, `(?i`, `\X`, `\R`, `\h`, `\H`, `(?=`, `(?!`, `(?<`} {
		if strings.Contains(pattern, e) {
			return nil, &UnsupportedError{Component: "normalizer", Type: "Replace regex " + pattern}
		}
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, &UnsupportedError{Component: "normalizer", Type: "Replace regex " + pattern}
	}
	return re, nil
}

// prependNormalizer is the Prepend normalizer: non-empty text gets a prefix.
type prependNormalizer string

func (p prependNormalizer) normalize(dst []byte, _ *normScratch, s string) []byte {
	if s == "" {
		return dst
	}
	return append(append(dst, p...), s...)
}

// sequenceNormalizer applies normalizers in order.
type sequenceNormalizer []normalizer

func (q sequenceNormalizer) normalize(dst []byte, sc *normScratch, s string) []byte {
	for i, n := range q {
		if i == len(q)-1 {
			return n.normalize(dst, sc, s)
		}
		buf := n.normalize(sc.seq[i%2][:0], sc, s)
		sc.seq[i%2] = buf
		s = string(buf)
	}
	return append(dst, s...)
}

// precompiledNormalizer is the Precompiled normalizer of SentencePiece
// models (nmt_nfkc and the like): a double-array trie maps text to its
// normalized form. As in tokenizers (spm_precompiled), each grapheme
// cluster shorter than 6 bytes whose start the trie knows is replaced
// whole; otherwise each character is looked up on its own.
type precompiledNormalizer struct {
	trie       []uint32
	normalized []byte
}

func newPrecompiled(charsmap []byte) (*precompiledNormalizer, error) {
	if len(charsmap) < 4 {
		return nil, fmt.Errorf("%w: precompiled_charsmap of %d bytes", ErrInvalid, len(charsmap))
	}
	size := int(binary.LittleEndian.Uint32(charsmap))
	rest := charsmap[4:]
	if size > len(rest) || size%4 != 0 || size == 0 {
		return nil, fmt.Errorf("%w: precompiled_charsmap trie of %d bytes in %d", ErrInvalid, size, len(rest))
	}
	p := &precompiledNormalizer{trie: make([]uint32, size/4), normalized: rest[size:]}
	for i := range p.trie {
		p.trie[i] = binary.LittleEndian.Uint32(rest[4*i:])
	}
	return p, nil
}

// transform returns the normalized form of the shortest key of the trie
// that starts chunk, as spm_precompiled's transform does.
func (p *precompiledNormalizer) transform(chunk string) ([]byte, bool) {
	unit := func(pos uint32) (uint32, bool) {
		if int(pos) >= len(p.trie) {
			return 0, false
		}
		return p.trie[pos], true
	}
	offset := func(u uint32) uint32 { return (u >> 10) << ((u & (1 << 9)) >> 6) }
	u, ok := unit(0)
	if !ok {
		return nil, false
	}
	pos := offset(u)
	for i := 0; i < len(chunk); i++ {
		c := chunk[i]
		if c == 0 {
			break
		}
		pos ^= uint32(c)
		if u, ok = unit(pos); !ok || u&((1<<31)|0xff) != uint32(c) {
			return nil, false
		}
		pos ^= offset(u)
		if (u>>8)&1 == 1 {
			leaf, ok := unit(pos)
			if !ok {
				return nil, false
			}
			start := int(leaf & ((1 << 31) - 1))
			if start > len(p.normalized) {
				return nil, false
			}
			end := start
			for end < len(p.normalized) && p.normalized[end] != 0 {
				end++
			}
			return p.normalized[start:end], true
		}
	}
	return nil, false
}

func (p *precompiledNormalizer) normalize(dst []byte, _ *normScratch, s string) []byte {
	state := -1
	for s != "" {
		var cluster string
		cluster, s, _, state = uniseg.FirstGraphemeClusterInString(s, state)
		if len(cluster) < 6 {
			if norm, ok := p.transform(cluster); ok {
				dst = append(dst, norm...)
				continue
			}
		}
		for i := 0; i < len(cluster); {
			_, size := decodeRune(cluster, i)
			if norm, ok := p.transform(cluster[i : i+size]); ok {
				dst = append(dst, norm...)
			} else {
				dst = append(dst, cluster[i:i+size]...)
			}
			i += size
		}
	}
	return dst
}

package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"

	lru "github.com/hashicorp/golang-lru/v2"
)

// bpeCacheSize is the number of words whose tokens a BPE model remembers,
// as in tokenizers.
const bpeCacheSize = 10000

// bpeCacheMaxWord is the longest word in bytes that the cache keeps.
const bpeCacheMaxWord = 256

// bpeMergeRule is the rank and the result of merging one pair of ids.
type bpeMergeRule struct {
	rank int32
	id   int32
}

// bpe is the BPE model. With byteLevel set, a word's bytes are first mapped
// to the characters of the GPT-2 byte alphabet.
type bpe struct {
	vocab        map[string]int64
	merges       map[uint64]bpeMergeRule
	unk          int64 // -1: none
	fuseUnk      bool
	byteFallback bool
	ignoreMerges bool
	prefix       string
	suffix       string
	byteLevel    bool
	byteChar     [256]string
	byteIDs      [256]int32 // Ids of the byte fallback tokens <0x00>..<0xFF>; -1: none.
	cache        *lru.Cache[string, []int32]
}

// byteAlphabet returns the characters that GPT-2's byte-level encoding
// gives each byte: printable bytes keep their character, the others map
// to U+0100 and up.
func byteAlphabet() [256]string {
	var out [256]string
	n := 0
	for b := range 256 {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			out[b] = string(rune(b))
		} else {
			out[b] = string(rune(256 + n))
			n++
		}
	}
	return out
}

func newBPE(c bpeConfig, byteLevel bool) (*bpe, error) {
	if c.Dropout != nil && *c.Dropout > 0 {
		return nil, &UnsupportedError{Component: "model", Type: fmt.Sprintf("BPE dropout %g", *c.Dropout)}
	}
	if len(c.Vocab) == 0 {
		return nil, fmt.Errorf("bpe model: %w: empty vocab", ErrInvalid)
	}
	m := &bpe{
		vocab:        c.Vocab,
		merges:       make(map[uint64]bpeMergeRule, len(c.Merges)),
		unk:          -1,
		fuseUnk:      c.FuseUnk,
		byteFallback: c.ByteFallback,
		ignoreMerges: c.IgnoreMerges,
		byteLevel:    byteLevel,
		byteChar:     byteAlphabet(),
	}
	if c.ContinuingSubwordPrefix != nil {
		m.prefix = *c.ContinuingSubwordPrefix
	}
	if c.EndOfWordSuffix != nil {
		m.suffix = *c.EndOfWordSuffix
	}
	if c.UnkToken != nil {
		id, ok := c.Vocab[*c.UnkToken]
		if !ok {
			return nil, fmt.Errorf("bpe model: %w: unk_token %q not in vocab", ErrInvalid, *c.UnkToken)
		}
		m.unk = id
	}
	for b := range m.byteIDs {
		m.byteIDs[b] = -1
		if id, ok := c.Vocab[fmt.Sprintf("<0x%02X>", b)]; ok {
			m.byteIDs[b] = int32(id) //nolint:gosec // Vocab ids fit in int32.
		}
	}
	for rank, mg := range c.Merges {
		a, okA := c.Vocab[mg.a]
		b, okB := c.Vocab[mg.b]
		merged := mg.a + strings.TrimPrefix(mg.b, m.prefix)
		id, okM := c.Vocab[merged]
		if !okA || !okB || !okM {
			return nil, fmt.Errorf("bpe model: %w: merge %q %q uses a token not in vocab", ErrInvalid, mg.a, mg.b)
		}
		key := pairKey(int32(a), int32(b)) //nolint:gosec // Vocab ids fit in int32.
		if _, dup := m.merges[key]; !dup {
			m.merges[key] = bpeMergeRule{rank: int32(rank), id: int32(id)} //nolint:gosec // Same.
		}
	}
	cache, err := lru.New[string, []int32](bpeCacheSize)
	if err != nil {
		return nil, fmt.Errorf("bpe cache: %w", err)
	}
	m.cache = cache
	return m, nil
}

// pairKey packs two non-negative ids into a map key.
func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) } //nolint:gosec // Ids are non-negative.

// bpeSymbol is one symbol of a word being merged, linked to its neighbours.
type bpeSymbol struct {
	id         int32
	prev, next int32
	removed    bool
}

// bpeCandidate is a pair that may be merged: the pair starting at pos.
type bpeCandidate struct {
	rank int32
	pos  int32
	id   int32
}

// bpeScratch is the reusable state of one encoding.
type bpeScratch struct {
	syms  []bpeSymbol
	heap  []bpeCandidate
	out   []int32
	piece []byte
	key   []byte
}

func (m *bpe) tokenize(sc *scratch, ids []int64, word string) []int64 {
	if cached, ok := m.cache.Get(word); ok {
		for _, id := range cached {
			ids = append(ids, int64(id))
		}
		return ids
	}
	out := m.merge(&sc.bpe, word)
	if len(word) <= bpeCacheMaxWord {
		m.cache.Add(strings.Clone(word), append([]int32(nil), out...))
	}
	for _, id := range out {
		ids = append(ids, int64(id))
	}
	return ids
}

// merge returns the ids of word after applying the merges in rank order,
// as tokenizers' Word::merge_all does.
func (m *bpe) merge(s *bpeScratch, word string) []int32 {
	text := m.wordText(s, word)
	if m.ignoreMerges {
		if id, ok := m.vocab[string(text)]; ok {
			return append(s.out[:0], int32(id)) //nolint:gosec // Vocab ids fit in int32.
		}
	}
	syms := m.symbols(s, text)
	linkSymbols(syms)
	m.mergeSymbols(s, syms)
	out := s.out[:0]
	for i := range syms {
		if !syms[i].removed {
			out = append(out, syms[i].id)
		}
	}
	s.out = out
	return out
}

// wordText returns word as the model sees it, mapped to the byte alphabet
// with byteLevel, in s.piece.
func (m *bpe) wordText(s *bpeScratch, word string) []byte {
	text := s.piece[:0]
	if m.byteLevel {
		for i := 0; i < len(word); i++ {
			text = append(text, m.byteChar[word[i]]...)
		}
	} else {
		text = append(text, word...)
	}
	s.piece = text
	return text
}

// symbols returns the initial symbols of text, one per known character
// with its prefix and suffix, in s.syms.
func (m *bpe) symbols(s *bpeScratch, text []byte) []bpeSymbol {
	syms := s.syms[:0]
	key := s.key
	pendingUnk := false
	for i := 0; i < len(text); {
		_, size := utf8.DecodeRune(text[i:])
		ch := text[i : i+size]
		first, last := i == 0, i+size == len(text)
		i += size
		key = key[:0]
		if !first {
			key = append(key, m.prefix...)
		}
		key = append(key, ch...)
		if last {
			key = append(key, m.suffix...)
		}
		// As tokenizers' merge_word: an unknown character waits as a
		// pending unknown token (several fuse into one with fuse_unk) until
		// a known character follows; byte fallback tokens do not wait.
		if id, ok := m.vocab[string(key)]; ok {
			if pendingUnk {
				syms = append(syms, bpeSymbol{id: int32(m.unk)}) //nolint:gosec // Vocab ids fit in int32.
				pendingUnk = false
			}
			syms = append(syms, bpeSymbol{id: int32(id)}) //nolint:gosec // Same.
			continue
		}
		if m.byteFallback && m.allBytesKnown(key) {
			for _, c := range key {
				syms = append(syms, bpeSymbol{id: m.byteIDs[c]})
			}
			continue
		}
		if m.unk >= 0 {
			if pendingUnk && !m.fuseUnk {
				syms = append(syms, bpeSymbol{id: int32(m.unk)}) //nolint:gosec // Same.
			}
			pendingUnk = true
		}
	}
	if pendingUnk {
		syms = append(syms, bpeSymbol{id: int32(m.unk)}) //nolint:gosec // Same.
	}
	s.syms, s.key = syms, key
	return syms
}

// linkSymbols links each symbol to its neighbours.
func linkSymbols(syms []bpeSymbol) {
	for i := range syms {
		syms[i].prev = int32(i - 1) //nolint:gosec // Words are far shorter than 2^31.
		syms[i].next = int32(i + 1) //nolint:gosec // Same.
	}
	if len(syms) > 0 {
		syms[len(syms)-1].next = -1
	}
}

// mergeSymbols applies the merges to syms, lowest rank first, marking the
// right symbol of each merged pair removed. Its heap lives in s.heap.
func (m *bpe) mergeSymbols(s *bpeScratch, syms []bpeSymbol) {
	h := s.heap[:0]
	for i := 0; i+1 < len(syms); i++ {
		if r, ok := m.merges[pairKey(syms[i].id, syms[i+1].id)]; ok {
			h = heapPush(h, bpeCandidate{rank: r.rank, pos: int32(i), id: r.id}) //nolint:gosec // Same.
		}
	}
	for len(h) > 0 {
		var top bpeCandidate
		top, h = heapPop(h)
		cur := &syms[top.pos]
		if cur.removed || cur.next < 0 {
			continue
		}
		right := syms[cur.next]
		if r, ok := m.merges[pairKey(cur.id, right.id)]; !ok || r.id != top.id {
			continue
		}
		cur.id = top.id
		syms[cur.next].removed = true
		cur.next = right.next
		if right.next >= 0 {
			syms[right.next].prev = top.pos
		}
		if cur.prev >= 0 {
			if r, ok := m.merges[pairKey(syms[cur.prev].id, cur.id)]; ok {
				h = heapPush(h, bpeCandidate{rank: r.rank, pos: cur.prev, id: r.id})
			}
		}
		if cur.next >= 0 {
			if r, ok := m.merges[pairKey(cur.id, syms[cur.next].id)]; ok {
				h = heapPush(h, bpeCandidate{rank: r.rank, pos: top.pos, id: r.id})
			}
		}
	}
	s.heap = h
}

// allBytesKnown reports whether every byte of b has a byte fallback token.
func (m *bpe) allBytesKnown(b []byte) bool {
	for _, c := range b {
		if m.byteIDs[c] < 0 {
			return false
		}
	}
	return true
}

func less(a, b bpeCandidate) bool {
	return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos)
}

func heapPush(h []bpeCandidate, c bpeCandidate) []bpeCandidate {
	h = append(h, c)
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !less(h[i], h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
	return h
}

func heapPop(h []bpeCandidate) (bpeCandidate, []bpeCandidate) {
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(h) && less(h[l], h[m]) {
			m = l
		}
		if r < len(h) && less(h[r], h[m]) {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	return top, h
}

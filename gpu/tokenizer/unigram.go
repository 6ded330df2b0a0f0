package tokenizer

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"
)

// unigramUnkPenalty is what an unknown character costs below the lowest
// score of the vocabulary, as in tokenizers (K_UNK_PENALTY).
const unigramUnkPenalty = 10.0

// unigramPiece is one vocabulary entry, written as ["token", score].
type unigramPiece struct {
	token string
	score float64
}

// UnmarshalJSON implements json.Unmarshaler.
func (p *unigramPiece) UnmarshalJSON(b []byte) error {
	var pair []json.RawMessage
	if err := json.Unmarshal(b, &pair); err != nil || len(pair) != 2 {
		return fmt.Errorf("unigram piece %.40s: want [token, score]", b)
	}
	if err := json.Unmarshal(pair[0], &p.token); err != nil {
		return fmt.Errorf("unigram piece token: %w", err)
	}
	if err := json.Unmarshal(pair[1], &p.score); err != nil {
		return fmt.Errorf("unigram piece score: %w", err)
	}
	return nil
}

type unigramConfig struct {
	Vocab        []unigramPiece `json:"vocab"`
	UnkID        *int64         `json:"unk_id"`
	ByteFallback bool           `json:"byte_fallback"`
}

// trieNode is a node of the byte trie of a Unigram vocabulary: its children
// are nodes[first:first+count], sorted by label.
type trieNode struct {
	first int32
	count int32
	id    int32 // -1: no token ends here.
	label byte
}

// unigram is the Unigram model: the segmentation of a word that maximizes
// the sum of the token scores (Viterbi), unknown characters scoring below
// every token and fusing into one unknown token.
type unigram struct {
	nodes   []trieNode
	scores  []float64
	vocab   map[string]int64
	unk     int32 // -1: none
	unkCost float64
	byteIDs [256]int32 // <0x00>..<0xFF> with byte fallback; -1: none.
	cache   *lru.Cache[string, []int32]
}

func newUnigram(c unigramConfig) (*unigram, error) {
	if len(c.Vocab) == 0 {
		return nil, fmt.Errorf("unigram model: %w: empty vocab", ErrInvalid)
	}
	m := &unigram{scores: make([]float64, len(c.Vocab)), vocab: make(map[string]int64, len(c.Vocab)), unk: -1}
	if c.UnkID != nil {
		if *c.UnkID < 0 || *c.UnkID >= int64(len(c.Vocab)) {
			return nil, fmt.Errorf("unigram model: %w: unk_id %d outside the vocab", ErrInvalid, *c.UnkID)
		}
		m.unk = int32(*c.UnkID) //nolint:gosec // Checked against the vocab size.
	}
	minScore := math.Inf(1)
	for id, p := range c.Vocab {
		m.vocab[p.token] = int64(id) // A later duplicate wins, as in tokenizers.
		m.scores[id] = p.score
		minScore = min(minScore, p.score)
	}
	m.unkCost = minScore - unigramUnkPenalty
	for b := range m.byteIDs {
		m.byteIDs[b] = -1
		if id, ok := m.vocab[fmt.Sprintf("<0x%02X>", b)]; ok && c.ByteFallback {
			m.byteIDs[b] = int32(id) //nolint:gosec // Vocab ids fit in int32.
		}
	}
	m.buildTrie()
	cache, err := lru.New[string, []int32](bpeCacheSize)
	if err != nil {
		return nil, fmt.Errorf("unigram cache: %w", err)
	}
	m.cache = cache
	return m, nil
}

// buildTrie lays out the trie of the vocabulary breadth first, so that the
// children of each node are contiguous.
func (m *unigram) buildTrie() {
	tokens := make([]string, 0, len(m.vocab))
	for t := range m.vocab {
		if t != "" {
			tokens = append(tokens, t)
		}
	}
	slices.Sort(tokens)
	type item struct {
		lo, hi, depth int
		node          int32
	}
	m.nodes = []trieNode{{id: -1}}
	queue := []item{{0, len(tokens), 0, 0}}
	for q := 0; q < len(queue); q++ {
		it := queue[q]
		lo := it.lo
		if lo < it.hi && len(tokens[lo]) == it.depth {
			m.nodes[it.node].id = int32(m.vocab[tokens[lo]]) //nolint:gosec // Vocab ids fit in int32.
			lo++
		}
		first := len(m.nodes)
		for lo < it.hi {
			b := tokens[lo][it.depth]
			j := lo
			for j < it.hi && tokens[j][it.depth] == b {
				j++
			}
			m.nodes = append(m.nodes, trieNode{id: -1, label: b})
			queue = append(queue, item{lo, j, it.depth + 1, int32(len(m.nodes) - 1)}) //nolint:gosec // Far fewer than 2^31 nodes.
			lo = j
		}
		m.nodes[it.node].first = int32(first)                //nolint:gosec // Same.
		m.nodes[it.node].count = int32(len(m.nodes) - first) //nolint:gosec // Same.
	}
}

// child returns the child of node n labelled c, or -1.
func (m *unigram) child(n int32, c byte) int32 {
	nd := &m.nodes[n]
	lo, hi := nd.first, nd.first+nd.count
	for lo < hi {
		mid := int32(uint32(lo+hi) >> 1) //nolint:gosec // Non-negative.
		switch l := m.nodes[mid].label; {
		case l == c:
			return mid
		case l < c:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return -1
}

// unigramNode is the best segmentation of a prefix of the word: its score,
// the start of its last token and that token's id.
type unigramNode struct {
	score float64
	start int32 // -1: not reached yet.
	id    int32
}

// unigramScratch is the reusable state of one encoding.
type unigramScratch struct {
	best []unigramNode
	out  []int32
}

func (m *unigram) tokenize(sc *scratch, ids []int64, word string) []int64 {
	if cached, ok := m.cache.Get(word); ok {
		for _, id := range cached {
			ids = append(ids, int64(id))
		}
		return ids
	}
	out := m.encode(&sc.unigram, word)
	if len(word) <= bpeCacheMaxWord {
		m.cache.Add(strings.Clone(word), append([]int32(nil), out...))
	}
	for _, id := range out {
		ids = append(ids, int64(id))
	}
	return ids
}

// encode returns the ids of word, as tokenizers' Unigram::encode_optimized
// and tokenize do.
func (m *unigram) encode(s *unigramScratch, word string) []int32 {
	n := len(word)
	best := slices.Grow(s.best[:0], n+1)[:n+1]
	for i := range best {
		best[i] = unigramNode{start: -1}
	}
	best[0].start = 0
	for start := 0; start < n; {
		base := best[start].score
		_, charLen := decodeRune(word, start)
		single := false
		node := int32(0)
		for end := start; end < n; end++ {
			if node = m.child(node, word[end]); node < 0 {
				break
			}
			id := m.nodes[node].id
			if id < 0 {
				continue
			}
			t := &best[end+1]
			if cand := base + m.scores[id]; t.start < 0 || cand > t.score {
				*t = unigramNode{score: cand, start: int32(start), id: id} //nolint:gosec // Words are far shorter than 2^31.
			}
			if end+1-start == charLen {
				single = true
			}
		}
		if !single {
			t := &best[start+charLen]
			if cand := base + m.unkCost; t.start < 0 || cand > t.score {
				*t = unigramNode{score: cand, start: int32(start), id: m.unk} //nolint:gosec // Same.
			}
		}
		start += charLen
	}
	s.best = best
	// Walk back; consecutive unknown pieces fuse into one.
	out := s.out[:0]
	unkEnd := -1
	for end := n; end > 0; {
		nd := best[end]
		start := int(nd.start)
		if m.unk >= 0 && nd.id == m.unk {
			if unkEnd < 0 {
				unkEnd = end
			}
		} else {
			if unkEnd >= 0 {
				out = m.appendUnknown(out, word[end:unkEnd])
				unkEnd = -1
			}
			out = append(out, nd.id)
		}
		end = start
	}
	if unkEnd >= 0 {
		out = m.appendUnknown(out, word[:unkEnd])
	}
	slices.Reverse(out)
	s.out = out
	return out
}

// appendUnknown appends, in reverse, the ids of an unknown piece: the piece
// itself if the vocabulary has it, else its byte fallback tokens when all
// exist, else the unknown token.
func (m *unigram) appendUnknown(out []int32, piece string) []int32 {
	if id, ok := m.vocab[piece]; ok {
		return append(out, int32(id)) //nolint:gosec // Vocab ids fit in int32.
	}
	all := true
	for i := 0; i < len(piece); i++ {
		if m.byteIDs[piece[i]] < 0 {
			all = false
			break
		}
	}
	if all {
		for i := len(piece) - 1; i >= 0; i-- {
			out = append(out, m.byteIDs[piece[i]])
		}
		return out
	}
	return append(out, m.unk)
}

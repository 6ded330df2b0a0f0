package tokenizer

import (
	"fmt"
	"unicode/utf8"
)

// model turns one word into token ids.
type model interface {
	// tokenize appends the ids of word to ids and returns the result,
	// using sc for scratch space.
	tokenize(sc *scratch, ids []int64, word string) []int64
}

// wordPiece is the WordPiece model: greedy longest-match-first subwords,
// continuation pieces carrying a prefix such as "##".
type wordPiece struct {
	vocab    map[string]int64
	unk      int64
	prefix   string
	maxChars int
}

func newWordPiece(c wordPieceConfig) (*wordPiece, error) {
	if len(c.Vocab) == 0 {
		return nil, fmt.Errorf("wordpiece model: %w: empty vocab", ErrInvalid)
	}
	unk, ok := c.Vocab[c.UnkToken]
	if !ok {
		return nil, fmt.Errorf("wordpiece model: %w: unk_token %q not in vocab", ErrInvalid, c.UnkToken)
	}
	wp := &wordPiece{vocab: c.Vocab, unk: unk, prefix: "##", maxChars: 100}
	if c.ContinuingSubwordPrefix != nil {
		wp.prefix = *c.ContinuingSubwordPrefix
	}
	if c.MaxInputCharsPerWord != nil {
		wp.maxChars = *c.MaxInputCharsPerWord
	}
	return wp, nil
}

func (wp *wordPiece) tokenize(sc *scratch, ids []int64, word string) []int64 {
	if utf8.RuneCountInString(word) > wp.maxChars {
		return append(ids, wp.unk)
	}
	if id, ok := wp.vocab[word]; ok {
		return append(ids, id)
	}
	buf := sc.buf
	n := len(ids)
	for start := 0; start < len(word); {
		end := len(word)
		found := false
		var id int64
		for start < end {
			sub := word[start:end]
			if start > 0 {
				buf = append(append(buf[:0], wp.prefix...), sub...)
				id, found = wp.vocab[string(buf)]
			} else {
				id, found = wp.vocab[sub]
			}
			if found {
				break
			}
			_, size := utf8.DecodeLastRuneInString(sub)
			end -= size
		}
		if !found {
			sc.buf = buf
			return append(ids[:n], wp.unk)
		}
		ids = append(ids, id)
		start = end
	}
	sc.buf = buf
	return ids
}

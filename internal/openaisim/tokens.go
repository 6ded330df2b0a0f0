package openaisim

import (
	"fmt"

	"github.com/tiktoken-go/tokenizer"
)

// tokenCounter counts cl100k_base tokens with an embedded vocabulary, so
// it needs no network access.
type tokenCounter struct {
	codec tokenizer.Codec
}

func newTokenCounter() (*tokenCounter, error) {
	c, err := tokenizer.Get(tokenizer.Cl100kBase)
	if err != nil {
		return nil, fmt.Errorf("load cl100k_base tokenizer: %w", err)
	}
	return &tokenCounter{codec: c}, nil
}

// count returns the number of tokens in s. Text the tokenizer rejects is
// estimated at one token per four bytes.
func (t *tokenCounter) count(s string) int {
	if s == "" {
		return 0
	}
	n, err := t.codec.Count(s)
	if err != nil {
		return (len(s) + 3) / 4
	}
	return n
}

// decode turns token ids back into text, reporting false when an id is not
// in the vocabulary.
func (t *tokenCounter) decode(ids []int) (string, bool) {
	u := make([]uint, len(ids))
	for i, id := range ids {
		if id < 0 {
			return "", false
		}
		u[i] = uint(id)
	}
	s, err := t.codec.Decode(u)
	if err != nil {
		return "", false
	}
	return s, true
}

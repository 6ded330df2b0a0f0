package llm

import (
	"fmt"
	"unicode/utf8"

	"github.com/tiktoken-go/tokenizer"
)

// EstimateTokens estimates the number of tokens of s for client-side
// budgets and request packing, by script: a quarter token per ASCII byte
// (English with OpenAI tokenizers), one token per two-byte character
// (Cyrillic, Greek, Arabic, Hebrew), one and a half per three-byte character
// (CJK, kana, Hangul, Indic and Thai scripts) and three per four-byte one
// (emoji, rare CJK), rounded up. Measured against cl100k_base and
// o200k_base it does not under-count Chinese, Japanese, Korean, Russian,
// Arabic, Hindi, Thai or emoji text (TestEstimateTokensScripts); rare kanji
// take up to 2.5 tokens each, which the stages' truncation counts exactly. The server's usage figures are
// what the tokens metric reports.
func EstimateTokens(s string) int {
	ascii, quarters := 0, 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			ascii++
			i++
			continue
		}
		_, n := utf8.DecodeRuneInString(s[i:])
		switch n {
		case 2:
			quarters += 4
		case 3:
			quarters += 6
		default:
			quarters += 12
		}
		i += n
	}
	return (ascii + quarters + 3) / 4
}

// truncator cuts texts to a number of cl100k_base tokens, counted with an
// embedded vocabulary (no network access). A byte-level BPE token holds at
// least one byte, so a text of at most n bytes has at most n tokens and is
// not tokenised at all; only longer ones are (about 10 MB/s on one core).
// Other tokenizers (o200k_base of gpt-4o, those of open models) give fewer
// tokens than cl100k_base for the texts measured, so the cut is safe for
// them too.
type truncator struct {
	codec tokenizer.Codec
}

// newTruncator loads the cl100k_base vocabulary.
func newTruncator() (*truncator, error) {
	c, err := tokenizer.Get(tokenizer.Cl100kBase)
	if err != nil {
		return nil, fmt.Errorf("load cl100k_base tokenizer: %w", err)
	}
	return &truncator{codec: c}, nil
}

// truncate returns s cut to at most maxTokens tokens, keeping its
// beginning and whole UTF-8 characters. It returns s unchanged when it fits
// or when maxTokens is not positive.
func (t *truncator) truncate(s string, maxTokens int) string {
	if maxTokens <= 0 || len(s) <= maxTokens {
		return s
	}
	ids, _, err := t.codec.Encode(s)
	if err != nil {
		return Truncate(s, maxTokens)
	}
	if len(ids) <= maxTokens {
		return s
	}
	out, err := t.codec.Decode(ids[:maxTokens])
	if err != nil {
		return Truncate(s, maxTokens)
	}
	// A token may end inside a character; drop the partial one.
	for len(out) > 0 && !utf8.ValidString(out) {
		out = out[:len(out)-1]
	}
	return out
}

// Truncate returns s cut to at most maxTokens tokens without a tokenizer:
// it keeps at most maxTokens bytes of s (a token holds at least one byte),
// moved back to the start of the UTF-8 rune they cut, so that the result is
// valid UTF-8 when s is. It returns s unchanged when it fits or when
// maxTokens is not positive.
func Truncate(s string, maxTokens int) string {
	if maxTokens <= 0 || len(s) <= maxTokens {
		return s
	}
	n := maxTokens
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

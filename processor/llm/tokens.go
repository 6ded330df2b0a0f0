package llm

import "unicode/utf8"

// bytesPerToken is the divisor of the token estimate.
const bytesPerToken = 4

// EstimateTokens estimates the number of tokens of s as ceil(len(s)/4), the
// usual rule of thumb for English text with OpenAI tokenizers. It is used
// for client-side budgets and request packing; the server's usage figures
// are what the tokens metric reports. The estimate is low for scripts that
// take three or four bytes per character and often a token each, such as
// CJK text; a text the server then finds too long is refused with a 400 and
// handled as a failure of that record alone.
func EstimateTokens(s string) int {
	return (len(s) + bytesPerToken - 1) / bytesPerToken
}

// Truncate returns s cut to at most maxTokens tokens by EstimateTokens: it
// keeps the first maxTokens*4 bytes of s, moved back to the start of the
// UTF-8 rune they cut, so that the result is valid UTF-8 when s is. It
// returns s unchanged when it fits or when maxTokens is not positive.
func Truncate(s string, maxTokens int) string {
	if maxTokens <= 0 || EstimateTokens(s) <= maxTokens {
		return s
	}
	n := maxTokens * bytesPerToken
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

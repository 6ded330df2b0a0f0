package tokenizer

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzSplitPatterns requires every hand-matched Split regex to cut any
// text into non-empty pieces on character boundaries that, joined, give the
// text back.
func FuzzSplitPatterns(f *testing.F) {
	for _, s := range []string{"", "Hello world", "it'ſ IT'S", "a  \r\n\r\n b", "12345 ½", "é\u0301x!!/\n", "\xff\xfe'"} {
		f.Add(s)
	}
	var patterns []splitPattern
	for _, re := range []string{patternGPT4o, patternLlama3, patternQwen2, patternGPT2} {
		p, ok := knownPattern(re)
		if !ok {
			f.Fatalf("pattern %s not known", re)
		}
		patterns = append(patterns, p)
	}
	f.Fuzz(func(t *testing.T, text string) {
		text = strings.ToValidUTF8(text, "\ufffd")
		for k, p := range patterns {
			words := splitPreTokenizer{pattern: p, behavior: splitIsolated}.split(nil, nil, text, true)
			if got := strings.Join(words, ""); got != text {
				t.Fatalf("pattern %d: pieces %q join to %q", k, words, got)
			}
			for _, w := range words {
				if w == "" || !utf8.ValidString(w) {
					t.Fatalf("pattern %d: piece %q of %q", k, w, text)
				}
			}
		}
	})
}

func TestSplitBehaviors(t *testing.T) {
	tests := []struct {
		behavior splitBehavior
		invert   bool
		want     []string
	}{
		{splitRemoved, false, []string{"a", "b", "c"}},
		{splitRemoved, true, []string{"-", "-", "-", "-"}},
		{splitIsolated, false, []string{"-", "a", "-", "-", "b", "-", "c"}},
		{splitMergedWithPrevious, false, []string{"-", "a-", "-", "b-", "c"}},
		{splitMergedWithNext, false, []string{"-a", "-", "-b", "-c"}},
		{splitContiguous, false, []string{"-", "a", "--", "b", "-", "c"}},
		{splitMergedWithPrevious, true, []string{"-a", "-", "-b", "-c"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("behavior %d invert %v", tt.behavior, tt.invert), func(t *testing.T) {
			p := splitPreTokenizer{pattern: literalPattern("-"), behavior: tt.behavior, invert: tt.invert}
			if got := p.split(nil, nil, "-a--b-c", true); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestUnigramViterbi(t *testing.T) {
	unk := int64(0)
	m, err := newUnigram(unigramConfig{
		Vocab: []unigramPiece{{"<unk>", 0}, {"a", -1}, {"b", -1}, {"ab", -1.5}, {"abc", -4}, {"c", -2}, {"<0x78>", -1}},
		UnkID: &unk,
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		word string
		want []int32
	}{
		{"ab", []int32{3}},         // -1.5 beats a+b = -2.
		{"abc", []int32{3, 5}},     // ab+c = -3.5 beats abc = -4.
		{"xyab", []int32{0, 3}},    // Unknown characters fuse into one <unk>.
		{"axyb", []int32{1, 0, 2}}, // <0x78> is not used without byte_fallback.
		{"é", []int32{0}},          // A multi-byte unknown character is one piece.
		{"", []int32(nil)},         // Nothing.
		{"cab", []int32{5, 3}},     // Scores add up across pieces.
		{"abab", []int32{3, 3}},    // Repeated best piece.
		{"b\u0301", []int32{2, 0}}, // Combining mark unknown.
		{"zzz", []int32{0}},        // All unknown: one token.
		{"aéz", []int32{1, 0}},     // Trailing unknown run.
		{"éa", []int32{0, 1}},      // Leading unknown run.
		{"abcabc", []int32{3, 5, 3, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.word, func(t *testing.T) {
			got := m.encode(&unigramScratch{}, tt.word)
			if !slices.Equal(got, tt.want) && (len(got) != 0 || len(tt.want) != 0) {
				t.Errorf("encode(%q) = %v, want %v", tt.word, got, tt.want)
			}
		})
	}
	fb, err := newUnigram(unigramConfig{
		Vocab:        []unigramPiece{{"<unk>", 0}, {"a", -1}, {"<0x78>", -1}, {"<0x79>", -1}},
		UnkID:        &unk,
		ByteFallback: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fb.encode(&unigramScratch{}, "xya"), []int32{2, 3, 1}; !slices.Equal(got, want) {
		t.Errorf("byte fallback: encode(xya) = %v, want %v", got, want)
	}
	if got, want := fb.encode(&unigramScratch{}, "xza"), []int32{0, 1}; !slices.Equal(got, want) {
		t.Errorf("byte fallback with a missing byte: encode(xza) = %v, want %v", got, want)
	}
}

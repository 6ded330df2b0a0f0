package tokenizer_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/textpulse/textpulse/gpu/tokenizer"
)

// tinyWordPiece is a hand-written BERT-style tokenizer.json whose ids are
// easy to check by hand.
const tinyWordPiece = `{
  "version": "1.0",
  "truncation": null,
  "padding": null,
  "added_tokens": [
    {"id": 0, "content": "[PAD]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 1, "content": "[UNK]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 2, "content": "[CLS]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 3, "content": "[SEP]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 4, "content": "[MASK]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
  ],
  "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
  "pre_tokenizer": {"type": "BertPreTokenizer"},
  "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
  "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
  "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
    "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, "hello": 5, "world": 6, ",": 7, "!": 8,
      "un": 9, "##aff": 10, "##able": 11, "cafe": 12, "中": 13, "文": 14, "##s": 15, "'": 16, "istanbul": 17}}
}`

func writeFile(t testing.TB, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatalf("write tokenizer: %v", err)
	}
	return p
}

func mustLoad(t testing.TB, path string, opts tokenizer.Options) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.Load(path, opts)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	return tok
}

func TestWordPieceEncode(t *testing.T) {
	path := writeFile(t, tinyWordPiece)
	tests := []struct {
		name      string
		text      string
		maxLength int
		want      []int64
	}{
		{"empty", "", 0, []int64{2, 3}},
		{"punctuation and case", "Hello, World!", 0, []int64{2, 5, 7, 6, 8, 3}},
		{"subwords", "unaffable", 0, []int64{2, 9, 10, 11, 3}},
		{"accent NFC", "Café", 0, []int64{2, 12, 3}},
		{"accent NFD", "Cafe\u0301", 0, []int64{2, 12, 3}},
		{"dotted capital I", "İstanbul", 0, []int64{2, 17, 3}},
		{"chinese characters split", "中文", 0, []int64{2, 13, 14, 3}},
		{"unknown word", "xyz hello", 0, []int64{2, 1, 5, 3}},
		{"unknown continuation", "unx", 0, []int64{2, 1, 3}},
		{"literal special token", "hello [MASK] world", 0, []int64{2, 5, 4, 6, 3}},
		{"glued special tokens", "[CLS]hello[SEP]", 0, []int64{2, 2, 5, 3, 3}},
		{"lowercase special token is text", "[mask]", 0, []int64{2, 1, 1, 1, 3}},
		{"control and zero-width characters dropped", "hel\x00lo\u200b wor\x7fld", 0, []int64{2, 5, 6, 3}},
		{"white space runs", " \t hello \n\n world\r\n", 0, []int64{2, 5, 6, 3}},
		{"apostrophe", "hello's", 0, []int64{2, 5, 16, 1, 3}},
		{"truncated", "hello world hello world", 4, []int64{2, 5, 6, 3}},
		{"truncation fits", "hello world", 4, []int64{2, 5, 6, 3}},
		{"only specials fit", "hello", 2, []int64{2, 3}},
		{"word too long", strings.Repeat("a", 101), 0, []int64{2, 1, 3}},
		{"invalid utf-8 dropped", "hello\xffworld", 0, []int64{2, 1, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := mustLoad(t, path, tokenizer.Options{MaxLength: tt.maxLength})
			got := tok.Encode(tt.text)
			if !slices.Equal(got.IDs, tt.want) {
				t.Errorf("Encode(%q).IDs = %v, want %v", tt.text, got.IDs, tt.want)
			}
			if want := make([]int64, len(tt.want)); !slices.Equal(got.TypeIDs, want) {
				t.Errorf("Encode(%q).TypeIDs = %v, want %v", tt.text, got.TypeIDs, want)
			}
		})
	}
}

func TestBPEEncode(t *testing.T) {
	tok := mustLoad(t, bpePath, tokenizer.Options{})
	if got := tok.PadID(); got != 1 {
		t.Errorf("PadID() = %d, want 1 (<pad>)", got)
	}
	if got := tok.MaxLength(); got != 0 {
		t.Errorf("MaxLength() = %d, want 0 (no truncation in the file)", got)
	}
	tests := []struct {
		name string
		text string
		want []int64
	}{
		{"empty", "", []int64{0, 2}},
		{"mask alone", "<mask>", []int64{0, 4, 2}},
		{"specials in text", "<s></s><pad><unk>", []int64{0, 0, 2, 1, 3, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tok.Encode(tt.text)
			if !slices.Equal(got.IDs, tt.want) {
				t.Errorf("Encode(%q).IDs = %v, want %v", tt.text, got.IDs, tt.want)
			}
		})
	}
	// "<mask>" takes the spaces before it (lstrip), so these agree.
	a, b := tok.Encode("hi<mask>"), tok.Encode("hi   <mask>")
	if !slices.Equal(a.IDs, b.IDs) {
		t.Errorf("lstrip: %v != %v", a.IDs, b.IDs)
	}
	// Byte-level BPE never loses text: every byte of any text maps to a
	// token, so the space before a word is part of its first token.
	hello, spaced := tok.Encode("hello"), tok.Encode(" hello")
	if slices.Equal(hello.IDs, spaced.IDs) {
		t.Errorf("%q and %q encode alike: %v", "hello", " hello", hello.IDs)
	}
	long := strings.Repeat("word ", 1000)
	for _, n := range []int{3, 10, 512} {
		tr := mustLoad(t, bpePath, tokenizer.Options{MaxLength: n})
		got := tr.Encode(long)
		full := tok.Encode(long)
		if len(got.IDs) != n || got.IDs[0] != 0 || got.IDs[n-1] != 2 {
			t.Errorf("max length %d: got %d ids starting %d ending %d", n, len(got.IDs), got.IDs[0], got.IDs[len(got.IDs)-1])
		}
		if !slices.Equal(got.IDs[1:n-1], full.IDs[1:n-1]) {
			t.Errorf("max length %d: truncation does not keep the first tokens", n)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	replace := func(old, repl string) string {
		if !strings.Contains(tinyWordPiece, old) {
			t.Fatalf("tinyWordPiece lacks %q", old)
		}
		return strings.Replace(tinyWordPiece, old, repl, 1)
	}
	tests := []struct {
		name        string
		content     string
		opts        tokenizer.Options
		unsupported *tokenizer.UnsupportedError
		invalid     bool
	}{
		{"model", replace(`"type": "WordPiece", "unk_token"`, `"type": "WordLevel", "unk_token"`), tokenizer.Options{},
			&tokenizer.UnsupportedError{Component: "model", Type: "WordLevel"}, false},
		{"unigram without unk_id", `{"model": {"type": "Unigram", "vocab": [["a", -1.0]]}}`, tokenizer.Options{},
			&tokenizer.UnsupportedError{Component: "model", Type: "Unigram without unk_id"}, false},
		{"unknown split regex", replace(`"type": "BertPreTokenizer"`, `"type": "Split", "pattern": {"Regex": "[a-z]+"}, "behavior": "Isolated", "invert": false`), tokenizer.Options{},
			&tokenizer.UnsupportedError{Component: "pre_tokenizer", Type: "Split regex [a-z]+"}, false},
		{"split behavior", replace(`"type": "BertPreTokenizer"`, `"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways", "invert": false`), tokenizer.Options{},
			&tokenizer.UnsupportedError{Component: "pre_tokenizer", Type: "Split behavior Sideways"}, false},
		{"replace regex with classes", replace(`"type": "BertNormalizer"`, `"type": "Replace", "pattern": {"Regex": "(?i)a"}, "content": " "`), tokenizer.Options{},
			&tokenizer.UnsupportedError{Component: "normalizer", Type: "Replace regex (?i)a"}, false},
		{"pre-tokenizer after byte level", replace(`"type": "BertPreTokenizer"`, `"type": "Sequence", "pretokenizers": [{"type": "ByteLevel"}, {"type": "BertPreTokenizer"}]`), tokenizer.Options{},
			&tokenizer.UnsupportedError{Component: "pre_tokenizer", Type: "Sequence with a pre-tokenizer after ByteLevel"}, false},
		{"metaspace replacement", replace(`"type": "BertPreTokenizer"`, `"type": "Metaspace", "replacement": "ab"`), tokenizer.Options{}, nil, true},
		{"precompiled charsmap", replace(`"type": "BertNormalizer"`, `"type": "Precompiled", "precompiled_charsmap": "AAAA"`), tokenizer.Options{}, nil, true},
		{"normalizer", replace(`"type": "BertNormalizer"`, `"type": "NFKC"`), tokenizer.Options{},
			&tokenizer.UnsupportedError{Component: "normalizer", Type: "NFKC"}, false},
		{"pre-tokenizer", replace(`"type": "BertPreTokenizer"`, `"type": "Punctuation"`), tokenizer.Options{},
			&tokenizer.UnsupportedError{Component: "pre_tokenizer", Type: "Punctuation"}, false},
		{"post-processor", replace(`"type": "BertProcessing"`, `"type": "Sequence"`), tokenizer.Options{},
			&tokenizer.UnsupportedError{Component: "post_processor", Type: "Sequence"}, false},
		{"unk not in vocab", replace(`"unk_token": "[UNK]"`, `"unk_token": "<unk>"`), tokenizer.Options{}, nil, true},
		{"max length below specials", tinyWordPiece, tokenizer.Options{MaxLength: 1}, nil, true},
		{"negative max length", tinyWordPiece, tokenizer.Options{MaxLength: -1}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tokenizer.Load(writeFile(t, tt.content), tt.opts)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if tt.unsupported != nil {
				var ue *tokenizer.UnsupportedError
				if !errors.As(err, &ue) || *ue != *tt.unsupported {
					t.Fatalf("error %v, want %v", err, tt.unsupported)
				}
				if !strings.Contains(err.Error(), tt.unsupported.Type) {
					t.Errorf("error %q does not name %q", err, tt.unsupported.Type)
				}
			}
			if tt.invalid && !errors.Is(err, tokenizer.ErrInvalid) {
				t.Errorf("error %v, want ErrInvalid", err)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		_, err := tokenizer.Load(filepath.Join(t.TempDir(), "nope.json"), tokenizer.Options{})
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("error %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("not json", func(t *testing.T) {
		if _, err := tokenizer.Load(writeFile(t, "{"), tokenizer.Options{}); err == nil {
			t.Fatal("Load succeeded on broken JSON")
		}
	})
}

func TestEncodeConcurrent(t *testing.T) {
	tok := mustLoad(t, bpePath, tokenizer.Options{MaxLength: 128})
	texts := textgenTexts(t, 3, 200)
	want := make([]tokenizer.Encoding, len(texts))
	for i, s := range texts {
		want[i] = tok.Encode(s)
	}
	fresh := mustLoad(t, bpePath, tokenizer.Options{MaxLength: 128})
	done := make(chan error, 4)
	for w := range 4 {
		go func() {
			for i := range texts {
				k := (i + w*50) % len(texts)
				if got := fresh.Encode(texts[k]); !slices.Equal(got.IDs, want[k].IDs) {
					done <- errors.New("concurrent encoding differs for " + texts[k])
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func FuzzEncode(f *testing.F) {
	for _, s := range hardCases {
		f.Add(s, 0)
	}
	f.Add("\xff\xfe<mask>[CLS]", 5)
	wp := writeFile(f, tinyWordPiece)
	lengths := []int{0, 2, 3, 5, 16, 128}
	type family struct {
		toks     []*tokenizer.Tokenizer // One per entry of lengths.
		vocab    int64
		cls, sep int64
	}
	var families []family
	for _, fam := range []struct {
		path            string
		vocab, cls, sep int64
	}{{wp, 18, 2, 3}, {bpePath, 4000, 0, 2}} {
		fm := family{vocab: fam.vocab, cls: fam.cls, sep: fam.sep}
		for _, n := range lengths {
			fm.toks = append(fm.toks, mustLoad(f, fam.path, tokenizer.Options{MaxLength: n}))
		}
		families = append(families, fm)
	}
	f.Fuzz(func(t *testing.T, text string, pick int) {
		k := abs(pick) % len(lengths)
		n := lengths[k]
		for _, fam := range families {
			got := fam.toks[k].Encode(text)
			if len(got.IDs) < 2 || len(got.TypeIDs) != len(got.IDs) {
				t.Fatalf("%d ids and %d type ids", len(got.IDs), len(got.TypeIDs))
			}
			if got.IDs[0] != fam.cls || got.IDs[len(got.IDs)-1] != fam.sep {
				t.Fatalf("ids %v do not start with %d and end with %d", got.IDs, fam.cls, fam.sep)
			}
			if n > 0 && len(got.IDs) > n {
				t.Fatalf("%d ids, max length %d", len(got.IDs), n)
			}
			for _, id := range got.IDs {
				if id < 0 || id >= fam.vocab {
					t.Fatalf("id %d outside the vocab of %d", id, fam.vocab)
				}
			}
			for _, ty := range got.TypeIDs {
				if ty != 0 {
					t.Fatalf("type id %d for a single sequence", ty)
				}
			}
		}
	})
}

func abs(n int) int {
	if n < 0 {
		if n == -n {
			return 0
		}
		return -n
	}
	return n
}

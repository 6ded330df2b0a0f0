package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
)

// fileConfig is the part of tokenizer.json that encoding depends on.
type fileConfig struct {
	Truncation    *truncationConfig `json:"truncation"`
	Padding       *paddingConfig    `json:"padding"`
	AddedTokens   []addedToken      `json:"added_tokens"`
	Normalizer    json.RawMessage   `json:"normalizer"`
	PreTokenizer  json.RawMessage   `json:"pre_tokenizer"`
	Model         json.RawMessage   `json:"model"`
	PostProcessor json.RawMessage   `json:"post_processor"`
}

type truncationConfig struct {
	MaxLength int    `json:"max_length"`
	Strategy  string `json:"strategy"`
	Direction string `json:"direction"`
}

type paddingConfig struct {
	PadID    *int64 `json:"pad_id"`
	PadToken string `json:"pad_token"`
}

type addedToken struct {
	ID         int64  `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// typed reads the "type" field of a component; null or absent yields "".
func typed(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var t struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return "", err
	}
	return t.Type, nil
}

type bertNormalizerConfig struct {
	CleanText          bool  `json:"clean_text"`
	HandleChineseChars bool  `json:"handle_chinese_chars"`
	StripAccents       *bool `json:"strip_accents"`
	Lowercase          bool  `json:"lowercase"`
}

type byteLevelConfig struct {
	AddPrefixSpace bool  `json:"add_prefix_space"`
	UseRegex       *bool `json:"use_regex"`
}

type wordPieceConfig struct {
	Vocab                   map[string]int64 `json:"vocab"`
	UnkToken                string           `json:"unk_token"`
	ContinuingSubwordPrefix *string          `json:"continuing_subword_prefix"`
	MaxInputCharsPerWord    *int             `json:"max_input_chars_per_word"`
}

type bpeConfig struct {
	Vocab                   map[string]int64 `json:"vocab"`
	Merges                  []bpeMerge       `json:"merges"`
	Dropout                 *float64         `json:"dropout"`
	UnkToken                *string          `json:"unk_token"`
	ContinuingSubwordPrefix *string          `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string          `json:"end_of_word_suffix"`
	FuseUnk                 bool             `json:"fuse_unk"`
	ByteFallback            bool             `json:"byte_fallback"`
	IgnoreMerges            bool             `json:"ignore_merges"`
}

// bpeMerge is one merge rule, written either as "a b" (older files) or as
// ["a", "b"].
type bpeMerge struct{ a, b string }

// UnmarshalJSON implements json.Unmarshaler.
func (m *bpeMerge) UnmarshalJSON(b []byte) error {
	var pair []string
	if err := json.Unmarshal(b, &pair); err == nil {
		if len(pair) != 2 {
			return fmt.Errorf("merge %s: want two parts", b)
		}
		m.a, m.b = pair[0], pair[1]
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("merge %s: want a string or a pair of strings", b)
	}
	a, rest, ok := strings.Cut(s, " ")
	if !ok || strings.Contains(rest, " ") {
		return fmt.Errorf("merge %q: want two parts separated by one space", s)
	}
	m.a, m.b = a, rest
	return nil
}

type templateConfig struct {
	Single        []templatePiece                  `json:"single"`
	SpecialTokens map[string]templateSpecialTokens `json:"special_tokens"`
}

type templatePiece struct {
	SpecialToken *struct {
		ID     string `json:"id"`
		TypeID int64  `json:"type_id"`
	} `json:"SpecialToken"`
	Sequence *struct {
		ID     string `json:"id"`
		TypeID int64  `json:"type_id"`
	} `json:"Sequence"`
}

type templateSpecialTokens struct {
	ID  string  `json:"id"`
	IDs []int64 `json:"ids"`
}

// pairConfig is the shape of BertProcessing and RobertaProcessing:
// "sep": ["[SEP]", 102], "cls": ["[CLS]", 101].
type pairConfig struct {
	Sep [2]json.RawMessage `json:"sep"`
	Cls [2]json.RawMessage `json:"cls"`
}

func (p pairConfig) ids() (cls, sep int64, err error) {
	if err := json.Unmarshal(p.Cls[1], &cls); err != nil {
		return 0, 0, fmt.Errorf("cls id: %w", err)
	}
	if err := json.Unmarshal(p.Sep[1], &sep); err != nil {
		return 0, 0, fmt.Errorf("sep id: %w", err)
	}
	return cls, sep, nil
}

package tokenizer

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// patternConfig is the pattern of Replace and Split: {"String": "..."} or
// {"Regex": "..."}.
type patternConfig struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

type replaceConfig struct {
	Pattern patternConfig `json:"pattern"`
	Content string        `json:"content"`
}

type splitConfig struct {
	Pattern  patternConfig `json:"pattern"`
	Behavior string        `json:"behavior"`
	Invert   bool          `json:"invert"`
}

type metaspaceConfig struct {
	Replacement    string  `json:"replacement"`
	PrependScheme  *string `json:"prepend_scheme"`
	AddPrefixSpace *bool   `json:"add_prefix_space"`
	Split          *bool   `json:"split"`
}

// buildNormalizer returns the normalizer of a tokenizer.json normalizer
// entry; nil when there is none.
func buildNormalizer(raw json.RawMessage) (normalizer, error) {
	typ, err := typed(raw)
	if err != nil {
		return nil, fmt.Errorf("decode normalizer: %w", err)
	}
	decode := func(v any) error {
		if err := json.Unmarshal(raw, v); err != nil {
			return fmt.Errorf("decode normalizer %s: %w", typ, err)
		}
		return nil
	}
	switch typ {
	case "":
		return nil, nil
	case "BertNormalizer":
		var c bertNormalizerConfig
		if err := decode(&c); err != nil {
			return nil, err
		}
		return newBertNormalizer(c), nil
	case "Replace":
		var c replaceConfig
		if err := decode(&c); err != nil {
			return nil, err
		}
		return newReplaceNormalizer(c)
	case "Prepend":
		var c struct {
			Prepend string `json:"prepend"`
		}
		if err := decode(&c); err != nil {
			return nil, err
		}
		return prependNormalizer(c.Prepend), nil
	case "Precompiled":
		var c struct {
			Charsmap []byte `json:"precompiled_charsmap"`
		}
		if err := decode(&c); err != nil {
			return nil, err
		}
		return newPrecompiled(c.Charsmap)
	case "Sequence":
		var c struct {
			Normalizers []json.RawMessage `json:"normalizers"`
		}
		if err := decode(&c); err != nil {
			return nil, err
		}
		return buildNormalizerSequence(c.Normalizers)
	}
	return nil, &UnsupportedError{Component: "normalizer", Type: typ}
}

// newReplaceNormalizer returns the Replace normalizer of c.
func newReplaceNormalizer(c replaceConfig) (normalizer, error) {
	switch {
	case c.Pattern.String != nil:
		return replaceNormalizer{literal: *c.Pattern.String, content: c.Content}, nil
	case c.Pattern.Regex != nil:
		re, err := compileReplaceRegex(*c.Pattern.Regex)
		if err != nil {
			return nil, err
		}
		return replaceNormalizer{re: re, content: c.Content}, nil
	}
	return nil, fmt.Errorf("%w: Replace normalizer without a pattern", ErrInvalid)
}

// buildNormalizerSequence returns the normalizer of a Sequence's entries,
// nested sequences flattened: nil when none is left, the only one when one is.
func buildNormalizerSequence(entries []json.RawMessage) (normalizer, error) {
	var seq sequenceNormalizer
	for _, r := range entries {
		n, err := buildNormalizer(r)
		if err != nil {
			return nil, err
		}
		switch n := n.(type) {
		case nil:
		case sequenceNormalizer:
			seq = append(seq, n...)
		default:
			seq = append(seq, n)
		}
	}
	switch len(seq) {
	case 0:
		return nil, nil
	case 1:
		return seq[0], nil
	}
	return seq, nil
}

// buildPreTokenizer returns the pre-tokenizer of a tokenizer.json
// pre_tokenizer entry, nil when there is none, and whether it maps bytes
// to the byte-level alphabet (which the BPE model then does).
func buildPreTokenizer(raw json.RawMessage) (preTokenizer, bool, error) {
	typ, err := typed(raw)
	if err != nil {
		return nil, false, fmt.Errorf("decode pre_tokenizer: %w", err)
	}
	decode := func(v any) error {
		if err := json.Unmarshal(raw, v); err != nil {
			return fmt.Errorf("decode pre_tokenizer %s: %w", typ, err)
		}
		return nil
	}
	switch typ {
	case "":
		return nil, false, nil
	case "BertPreTokenizer":
		return bertPreTokenizer{}, false, nil
	case "ByteLevel":
		var c byteLevelConfig
		if err := decode(&c); err != nil {
			return nil, false, err
		}
		return byteLevelPreTokenizer{addPrefixSpace: c.AddPrefixSpace, useRegex: c.UseRegex == nil || *c.UseRegex}, true, nil
	case "Split":
		var c splitConfig
		if err := decode(&c); err != nil {
			return nil, false, err
		}
		p, err := buildSplit(c)
		return p, false, err
	case "Metaspace":
		var c metaspaceConfig
		if err := decode(&c); err != nil {
			return nil, false, err
		}
		p, err := buildMetaspace(c)
		return p, false, err
	case "Sequence":
		var c struct {
			PreTokenizers []json.RawMessage `json:"pretokenizers"`
		}
		if err := decode(&c); err != nil {
			return nil, false, err
		}
		return buildPreSequence(c.PreTokenizers)
	}
	return nil, false, &UnsupportedError{Component: "pre_tokenizer", Type: typ}
}

// buildPreSequence flattens a Sequence pre-tokenizer. The byte-level
// mapping is left to the model, so a ByteLevel pre-tokenizer must come
// last.
func buildPreSequence(raws []json.RawMessage) (preTokenizer, bool, error) {
	var seq sequencePreTokenizer
	byteLevel := false
	for _, r := range raws {
		if byteLevel {
			return nil, false, &UnsupportedError{Component: "pre_tokenizer", Type: "Sequence with a pre-tokenizer after ByteLevel"}
		}
		p, bl, err := buildPreTokenizer(r)
		if err != nil {
			return nil, false, err
		}
		byteLevel = bl
		switch p := p.(type) {
		case nil:
		case sequencePreTokenizer:
			seq = append(seq, p...)
		default:
			seq = append(seq, p)
		}
	}
	switch len(seq) {
	case 0:
		return nil, byteLevel, nil
	case 1:
		return seq[0], byteLevel, nil
	}
	return seq, byteLevel, nil
}

func buildSplit(c splitConfig) (preTokenizer, error) {
	p := splitPreTokenizer{invert: c.Invert}
	switch c.Behavior {
	case "Removed":
		p.behavior = splitRemoved
	case "Isolated":
		p.behavior = splitIsolated
	case "MergedWithPrevious":
		p.behavior = splitMergedWithPrevious
	case "MergedWithNext":
		p.behavior = splitMergedWithNext
	case "Contiguous":
		p.behavior = splitContiguous
	default:
		return nil, &UnsupportedError{Component: "pre_tokenizer", Type: "Split behavior " + c.Behavior}
	}
	switch {
	case c.Pattern.String != nil:
		p.pattern = literalPattern(*c.Pattern.String)
	case c.Pattern.Regex != nil:
		m, ok := knownPattern(*c.Pattern.Regex)
		if !ok {
			return nil, &UnsupportedError{Component: "pre_tokenizer", Type: "Split regex " + *c.Pattern.Regex}
		}
		p.pattern = m
	default:
		return nil, fmt.Errorf("%w: Split pre-tokenizer without a pattern", ErrInvalid)
	}
	return p, nil
}

func buildMetaspace(c metaspaceConfig) (preTokenizer, error) {
	if utf8.RuneCountInString(c.Replacement) != 1 {
		return nil, fmt.Errorf("%w: Metaspace replacement %q is not one character", ErrInvalid, c.Replacement)
	}
	m := metaspacePreTokenizer{replacement: c.Replacement, prepend: prependAlways, splitWords: c.Split == nil || *c.Split}
	if c.PrependScheme != nil {
		switch *c.PrependScheme {
		case "always":
			m.prepend = prependAlways
		case "first":
			m.prepend = prependFirst
		case "never":
			m.prepend = prependNever
		default:
			return nil, &UnsupportedError{Component: "pre_tokenizer", Type: "Metaspace prepend_scheme " + *c.PrependScheme}
		}
	}
	if c.AddPrefixSpace != nil && !*c.AddPrefixSpace {
		m.prepend = prependNever
	}
	return m, nil
}

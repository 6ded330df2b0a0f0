package tokenizer

import (
	"errors"
	"fmt"
)

// ErrInvalid reports a tokenizer.json that is well-formed JSON but cannot
// describe a working tokenizer, such as a model without a vocabulary or a
// post-processor naming a token the vocabulary lacks. Errors wrapping it
// say what is wrong.
var ErrInvalid = errors.New("invalid tokenizer")

// UnsupportedError reports a component of tokenizer.json whose type this
// package does not implement, such as a "WordLevel" model or a Split
// pre-tokenizer with a regex it does not know, or an option of a supported
// component that it does not implement, such as BPE dropout.
type UnsupportedError struct {
	// Component is the part of tokenizer.json: "model", "normalizer",
	// "pre_tokenizer", "post_processor" or "truncation".
	Component string
	// Type is the unsupported type or option as tokenizer.json names it.
	Type string
}

// Error implements error.
func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("unsupported %s type %q", e.Component, e.Type)
}

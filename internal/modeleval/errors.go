package modeleval

import "errors"

// ErrInvalidData marks a labelled file that cannot be read as
// {"text": ..., "label": ...} lines, or an empty one. It is permanent.
var ErrInvalidData = errors.New("invalid labelled data")

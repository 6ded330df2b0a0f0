package local

import "errors"

// ErrLabels means a sentiment model's labels are not a subset of
// negative, neutral and positive including negative and positive.
var ErrLabels = errors.New("unsupported model labels")

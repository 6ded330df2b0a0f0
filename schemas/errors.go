package schemas

import (
	"errors"
	"fmt"
)

// ErrInvalidIdentifier reports a database or table name that does not match
// ^[A-Za-z_][A-Za-z0-9_]*$ or that names a reserved object.
var ErrInvalidIdentifier = errors.New("invalid identifier")

// ErrInvalidOption reports an option value outside its allowed range.
var ErrInvalidOption = errors.New("invalid option")

// ErrInvalidVersion reports a server version string that ParseVersion cannot
// read.
var ErrInvalidVersion = errors.New("invalid version")

// OptionError says which option was rejected. It wraps ErrInvalidIdentifier
// or ErrInvalidOption, so callers can match it with errors.Is.
type OptionError struct {
	// Option is the name of the Options field, such as "Database".
	Option string
	// Value is the rejected value as text.
	Value string
	// Reason explains the rejection; it may be empty.
	Reason string
	// Err is ErrInvalidIdentifier or ErrInvalidOption.
	Err error
}

// Error returns the option, its value and the reason.
func (e *OptionError) Error() string {
	msg := fmt.Sprintf("option %s %q: %v", e.Option, e.Value, e.Err)
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

// Unwrap returns the sentinel error the OptionError wraps.
func (e *OptionError) Unwrap() error { return e.Err }

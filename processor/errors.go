package processor

import (
	"errors"
	"fmt"
)

// ErrorClass is a stable, low-cardinality name for why an input was rejected.
// It is used in dead-letter headers and metric labels.
type ErrorClass string

// Error classes of inputs that cannot be decoded or written.
const (
	ClassInvalidJSON      ErrorClass = "invalid_json"
	ClassInvalidUTF8      ErrorClass = "invalid_utf8"
	ClassMissingText      ErrorClass = "missing_text"
	ClassWrongType        ErrorClass = "wrong_type"
	ClassInvalidTimestamp ErrorClass = "invalid_timestamp"
	ClassTooLarge         ErrorClass = "too_large"
	ClassStageFailed      ErrorClass = "stage_failed"
	ClassSinkRejected     ErrorClass = "sink_rejected"
)

var (
	// ErrNoText means the event has no text, or an empty one.
	ErrNoText = errors.New("event has no text")
	// ErrPipelineStopped is returned by Run when the pipeline was stopped by
	// a failure that it cannot recover from without losing records.
	ErrPipelineStopped = errors.New("pipeline stopped")
)

// DecodeError says why a record could not be decoded into an Event.
type DecodeError struct {
	Class ErrorClass
	Err   error
}

func (e *DecodeError) Error() string { return fmt.Sprintf("decode %s: %v", e.Class, e.Err) }

func (e *DecodeError) Unwrap() error { return e.Err }

// PermanentError marks an error that retrying the same input cannot fix, for
// example a row that the sink rejects for its content. Writers wrap such
// errors with Permanent so that the pipeline can isolate the offending
// records instead of retrying them forever.
type PermanentError struct {
	Err error
}

func (e *PermanentError) Error() string { return e.Err.Error() }

func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError. It returns nil for a nil err.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err is, or wraps, a PermanentError.
func IsPermanent(err error) bool {
	var pe *PermanentError
	return errors.As(err, &pe)
}

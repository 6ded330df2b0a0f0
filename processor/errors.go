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

// How a failed call of a dependency (a model endpoint, a local model, the
// sink) is to be treated. This is the one vocabulary of the project; errors
// say which applies by methods, read by the functions below from anywhere
// in the error's tree:
//
//   - Retryable() bool: true when repeating the same call may succeed (a
//     timeout, a 429 or 5xx after the client's own retries, an inference
//     that ran out of accelerator memory), false when it cannot (a closed
//     model). An error that says nothing is not retryable.
//   - EndpointWide() bool: true when the failure holds for every input to
//     the dependency (a bad key, an unknown model, an exhausted quota):
//     retrying or splitting single inputs cannot help until the dependency
//     is fixed; a stage then probes it rather than hammering it.
//   - PermanentError (Permanent, IsPermanent): the same input fails again
//     for its content (a row the sink refuses, a model answer that does not
//     fit the labels).

// IsRetryable reports whether repeating the call that returned err may
// succeed: some error in its tree says Retryable() true and none says
// false, and err is neither permanent nor endpoint-wide.
func IsRetryable(err error) bool {
	if err == nil || IsPermanent(err) || IsEndpointWide(err) {
		return false
	}
	said, ok := false, true
	walkErrors(err, func(e error) {
		if r, is := e.(interface{ Retryable() bool }); is {
			said = true
			ok = ok && r.Retryable()
		}
	})
	return said && ok
}

// IsEndpointWide reports whether some error in err's tree says that the
// failure holds for every input to the dependency.
func IsEndpointWide(err error) bool {
	wide := false
	walkErrors(err, func(e error) {
		if w, is := e.(interface{ EndpointWide() bool }); is && w.EndpointWide() {
			wide = true
		}
	})
	return wide
}

// walkErrors calls f for err and every error it wraps, depth first.
func walkErrors(err error, f func(error)) {
	if err == nil {
		return
	}
	f(err)
	switch u := err.(type) { //nolint:errorlint // Walks the tree itself.
	case interface{ Unwrap() error }:
		walkErrors(u.Unwrap(), f)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walkErrors(e, f)
		}
	}
}

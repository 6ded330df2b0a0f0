package llm

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalidAnswer means a response was received but does not follow
	// the protocol: it is not valid JSON, or it misses, repeats or invents
	// items, or a value is out of range.
	ErrInvalidAnswer = errors.New("invalid answer")
	// ErrRejected means the endpoint refused the request permanently, with
	// a 4xx status other than 408 and 429; retrying the same request cannot
	// succeed.
	ErrRejected = errors.New("request rejected")
	// ErrUnavailable means the request kept failing with retryable errors
	// (429, 5xx, timeouts, network errors) until its attempts ran out.
	ErrUnavailable = errors.New("endpoint unavailable")
)

// RequestError is the final failure of one request to an endpoint, after
// its attempts. It wraps one of ErrInvalidAnswer, ErrRejected and
// ErrUnavailable, and the last underlying error.
type RequestError struct {
	// Op is the action, for example "create embeddings".
	Op string
	// Status is the HTTP status of the last response, or 0 when there was
	// none.
	Status int
	// Attempts is how many times the request was sent.
	Attempts int
	// Kind is ErrInvalidAnswer, ErrRejected or ErrUnavailable.
	Kind error
	// Err is the last underlying error.
	Err error
}

func (e *RequestError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("%s: %v after %d attempts (status %d): %v", e.Op, e.Kind, e.Attempts, e.Status, e.Err)
	}
	return fmt.Sprintf("%s: %v after %d attempts: %v", e.Op, e.Kind, e.Attempts, e.Err)
}

// Unwrap returns the kind and the underlying error.
func (e *RequestError) Unwrap() []error { return []error{e.Kind, e.Err} }

// EndpointWide reports whether the failure concerns every request to the
// endpoint rather than the inputs of this one: a bad key (401), missing
// permission (403) or unknown model or deployment (404). Such a request is
// not split to find an offending input.
func (e *RequestError) EndpointWide() bool {
	switch e.Status {
	case 401, 403, 404:
		return true
	}
	return false
}

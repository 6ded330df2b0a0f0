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
	// ErrRefused means the model answered but declined the texts: a
	// refusal, or a finish_reason of content_filter. Sending the same
	// texts again gives the same answer.
	ErrRefused = errors.New("answer refused")
	// ErrCutAnswer means the answer was cut at the completion length limit
	// (finish_reason length); fewer texts per request give shorter answers.
	ErrCutAnswer = errors.New("answer cut at the length limit")
	// ErrEndpointDown means an earlier request of the same batch failed for
	// the whole endpoint, so that this one was not sent.
	ErrEndpointDown = errors.New("endpoint refuses every request")
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
	// Wide is set when the failure holds for every request to the
	// endpoint (see EndpointWide) although the status alone does not say
	// so: an unsupported parameter, or an exhausted quota.
	Wide bool
	// Unsupported is the request parameter the endpoint said it does not
	// support ("response_format", "dimensions", "encoding_format"), or "".
	Unsupported string
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
// permission (403), unknown model or deployment (404), a parameter the
// model does not support (a 400 such as "This model does not support
// specifying dimensions"), or an exhausted quota (429 insufficient_quota).
// Such a request is not split to find an offending input, and ends the
// attempt for the whole batch.
func (e *RequestError) EndpointWide() bool {
	if e.Wide {
		return true
	}
	switch e.Status {
	case 401, 403, 404:
		return true
	}
	return false
}

// Retryable reports whether the same request may succeed later: it kept
// failing with retryable errors (429, 5xx, timeouts) until its attempts ran
// out, and the failure is not endpoint-wide. See processor.IsRetryable.
func (e *RequestError) Retryable() bool {
	return errors.Is(e.Kind, ErrUnavailable) && !e.EndpointWide()
}

// AnswerError is an answer that cannot be used for a reason the server
// stated: Reason is "refusal", "content_filter" or "length", and Kind is
// ErrRefused or ErrCutAnswer.
type AnswerError struct {
	Reason string
	Kind   error
	Detail string
}

func (e *AnswerError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("%v (%s)", e.Kind, e.Reason)
	}
	return fmt.Sprintf("%v (%s): %s", e.Kind, e.Reason, e.Detail)
}

// Unwrap returns the kind.
func (e *AnswerError) Unwrap() error { return e.Kind }

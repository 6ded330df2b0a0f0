package processor

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// says is a failure that states its retryability and reach.
type says struct {
	retry, wide bool
}

func (e says) Error() string      { return fmt.Sprintf("retry %v wide %v", e.retry, e.wide) }
func (e says) Retryable() bool    { return e.retry }
func (e says) EndpointWide() bool { return e.wide }

// saysRetry states only its retryability.
type saysRetry bool

func (e saysRetry) Error() string   { return "retry" }
func (e saysRetry) Retryable() bool { return bool(e) }

func TestErrorVocabulary(t *testing.T) {
	tests := []struct {
		name                 string
		err                  error
		retryable, wide, per bool
	}{
		{name: "nil", err: nil},
		{name: "plain error says nothing", err: errors.New("boom")},
		{name: "context error", err: context.DeadlineExceeded},
		{name: "retryable", err: saysRetry(true), retryable: true},
		{name: "wrapped retryable", err: fmt.Errorf("call: %w", saysRetry(true)), retryable: true},
		{name: "not retryable", err: saysRetry(false)},
		{name: "one no among yeses", err: errors.Join(saysRetry(true), fmt.Errorf("x: %w", saysRetry(false)))},
		{name: "endpoint-wide is not retryable", err: says{retry: true, wide: true}, wide: true},
		{name: "wide in a join", err: errors.Join(errors.New("a"), says{wide: true}), wide: true},
		{name: "permanent wins", err: Permanent(saysRetry(true)), per: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsRetryable(tt.err); got != tt.retryable {
				t.Errorf("IsRetryable = %v, want %v", got, tt.retryable)
			}
			if got := IsEndpointWide(tt.err); got != tt.wide {
				t.Errorf("IsEndpointWide = %v, want %v", got, tt.wide)
			}
			if got := IsPermanent(tt.err); got != tt.per {
				t.Errorf("IsPermanent = %v, want %v", got, tt.per)
			}
		})
	}
}

package llm

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	openai "github.com/sashabaranov/go-openai"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// round fills every slot of l, lets latency pass and releases them all
// with o: one round trip at the limit.
func round(t *testing.T, l *limiter, clk *fakeClock, latency time.Duration, o slotOutcome) {
	t.Helper()
	n := l.Limit() - l.InFlight()
	for range n {
		if err := l.acquire(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	clk.advance(latency)
	for range n {
		l.release(o, latency)
	}
}

// phase is a number of rounds at one latency and outcome.
type phase struct {
	rounds  int
	latency time.Duration
	outcome slotOutcome
}

func TestLimiterAIMD(t *testing.T) {
	steady := phase{rounds: 20, latency: 100 * time.Millisecond, outcome: slotOK}
	tests := []struct {
		name              string
		ceiling, initial  int
		adaptive          bool
		phases            []phase
		wantMin, wantMax  int
		wantBelowPrevious bool // the last phase lowered the limit
	}{
		{name: "doubles under steady low latency until the first decrease", ceiling: 1000, initial: 4, adaptive: true,
			phases: []phase{{rounds: 3, latency: 100 * time.Millisecond, outcome: slotOK}}, wantMin: 32, wantMax: 32},
		{name: "grows by one after the first decrease", ceiling: 1000, initial: 40, adaptive: true,
			// 40 -> 36 at the first 429 (the others came in the same round
			// trip), no growth in the window that saw them, then 9 rounds
			// of +1.
			phases: []phase{
				{rounds: 1, latency: 100 * time.Millisecond, outcome: slotBackPressure},
				{rounds: 10, latency: 100 * time.Millisecond, outcome: slotOK},
			}, wantMin: 45, wantMax: 45},
		{name: "stops at the ceiling", ceiling: 10, initial: 4, adaptive: true,
			phases: []phase{steady, steady}, wantMin: 10, wantMax: 10},
		{name: "initial above the ceiling starts at the ceiling", ceiling: 6, initial: 32, adaptive: true,
			phases: nil, wantMin: 6, wantMax: 6},
		{name: "decreases on 429, once a round trip", ceiling: 64, initial: 40, adaptive: true,
			phases:  []phase{{rounds: 1, latency: 100 * time.Millisecond, outcome: slotBackPressure}},
			wantMin: 36, wantMax: 36, wantBelowPrevious: true},
		{name: "keeps decreasing on back pressure, never below 1", ceiling: 64, initial: 40, adaptive: true,
			phases:  []phase{{rounds: 100, latency: 100 * time.Millisecond, outcome: slotBackPressure}},
			wantMin: 1, wantMax: 1, wantBelowPrevious: true},
		{name: "decreases on a latency spike", ceiling: 64, initial: 16, adaptive: true,
			phases:  []phase{steady, {rounds: 3, latency: 400 * time.Millisecond, outcome: slotOK}},
			wantMin: 45, wantMax: 60, wantBelowPrevious: true},
		{name: "decreases on a latency spike after slow start", ceiling: 1000, initial: 40, adaptive: true,
			phases: []phase{
				{rounds: 1, latency: 100 * time.Millisecond, outcome: slotBackPressure},
				steady,
				{rounds: 3, latency: 400 * time.Millisecond, outcome: slotOK},
			}, wantMin: 35, wantMax: 49, wantBelowPrevious: true},
		{name: "recovers after back pressure", ceiling: 64, initial: 40, adaptive: true,
			phases: []phase{{rounds: 5, latency: 100 * time.Millisecond, outcome: slotBackPressure}, steady},
			// 40 -> 36 -> 32 -> 28 -> 25 -> 22, once a round; no growth in
			// the window that saw the 429s, then 19 rounds of +1.
			wantMin: 41, wantMax: 41},
		{name: "ignored outcomes change nothing", ceiling: 64, initial: 8, adaptive: true,
			phases: []phase{{rounds: 20, latency: 100 * time.Millisecond, outcome: slotIgnored}}, wantMin: 8, wantMax: 8},
		{name: "fixed mode stays at concurrency", ceiling: 8, initial: 2, adaptive: false,
			phases: []phase{steady, {rounds: 10, latency: time.Second, outcome: slotBackPressure}}, wantMin: 8, wantMax: 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &fakeClock{t: time.Unix(1e9, 0)}
			l := newLimiter(tt.ceiling, tt.initial, tt.adaptive, clk.now, nil, nil)
			before := l.Limit()
			for _, p := range tt.phases {
				before = l.Limit()
				for range p.rounds {
					round(t, l, clk, p.latency, p.outcome)
					if got := l.Limit(); got < 1 || got > tt.ceiling {
						t.Fatalf("limit %d outside [1, %d]", got, tt.ceiling)
					}
				}
			}
			got := l.Limit()
			if got < tt.wantMin || got > tt.wantMax {
				t.Errorf("limit = %d, want in [%d, %d]", got, tt.wantMin, tt.wantMax)
			}
			if tt.wantBelowPrevious && got >= before {
				t.Errorf("limit = %d after the last phase, want below %d", got, before)
			}
			if l.InFlight() != 0 {
				t.Errorf("in flight = %d after every release, want 0", l.InFlight())
			}
		})
	}
}

func TestLimiterGrowsOnlyWhenUsed(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	l := newLimiter(64, 8, true, clk.now, nil, nil)
	for range 50 {
		for range 2 {
			if err := l.acquire(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		clk.advance(100 * time.Millisecond)
		l.release(slotOK, 100*time.Millisecond)
		l.release(slotOK, 100*time.Millisecond)
	}
	if got := l.Limit(); got != 8 {
		t.Errorf("limit = %d with 2 of 8 slots used, want 8", got)
	}
}

func TestLimiterSemaphore(t *testing.T) {
	tests := []struct {
		name     string
		adaptive bool
	}{
		{name: "fixed", adaptive: false},
		{name: "adaptive", adaptive: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLimiter(2, 2, tt.adaptive, time.Now, nil, nil)
			for range 2 {
				if err := l.acquire(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			// Full: an acquire waits until its context ends.
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
			defer cancel()
			if err := l.acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("acquire on a full limiter = %v, want the deadline", err)
			}
			// A release hands the slot to a waiter.
			got := make(chan error, 1)
			go func() { got <- l.acquire(t.Context()) }()
			waitFor(t, func() bool { l.mu.Lock(); defer l.mu.Unlock(); return len(l.waiters) == 1 })
			l.release(slotIgnored, 0)
			if err := <-got; err != nil {
				t.Fatal(err)
			}
			if n := l.InFlight(); n != 2 {
				t.Errorf("in flight = %d, want 2", n)
			}
			l.release(slotIgnored, 0)
			l.release(slotIgnored, 0)
			if n := l.InFlight(); n != 0 {
				t.Errorf("in flight = %d after releasing all, want 0", n)
			}
		})
	}
}

func TestLimiterLowerLimitAppliesToNewAcquires(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	l := newLimiter(10, 4, true, clk.now, nil, nil)
	for range 4 {
		if err := l.acquire(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	clk.advance(time.Second)
	l.release(slotBackPressure, time.Second) // 4 -> 3, three still in flight
	if got := l.Limit(); got != 3 {
		t.Fatalf("limit = %d, want 3", got)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := l.acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquire with 3 of 3 in flight = %v, want the deadline", err)
	}
	l.release(slotIgnored, 0)
	if err := l.acquire(t.Context()); err != nil {
		t.Fatalf("acquire with 2 of 3 in flight: %v", err)
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLimiterOutcome(t *testing.T) {
	apiErr := func(status int, code string) error {
		return &openai.APIError{HTTPStatusCode: status, Code: code, Message: "test"}
	}
	tests := []struct {
		name string
		ctx  func() context.Context
		err  error
		want slotOutcome
	}{
		{name: "success", err: nil, want: slotOK},
		{name: "429", err: apiErr(http.StatusTooManyRequests, "rate_limit_exceeded"), want: slotBackPressure},
		{name: "exhausted quota", err: apiErr(http.StatusTooManyRequests, "insufficient_quota"), want: slotIgnored},
		{name: "503", err: apiErr(http.StatusServiceUnavailable, ""), want: slotBackPressure},
		{name: "500", err: apiErr(http.StatusInternalServerError, ""), want: slotIgnored},
		{name: "timeout", err: context.DeadlineExceeded, want: slotBackPressure},
		{name: "400", err: apiErr(http.StatusBadRequest, ""), want: slotIgnored},
		{name: "invalid answer", err: ErrInvalidAnswer, want: slotIgnored},
		{name: "canceled", ctx: func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, err: context.Canceled, want: slotIgnored},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if tt.ctx != nil {
				ctx = tt.ctx()
			}
			if got := limiterOutcome(ctx, tt.err, &responseRecord{}); got != tt.want {
				t.Errorf("outcome = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestLimiterGauges(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics("sentiment", reg)
	cfg := testEndpoint("http://127.0.0.1:1")
	cfg.Concurrency, cfg.ConcurrencyInitial = 20, 5
	l := newConcurrencyLimiter(cfg, m)
	if err := l.acquire(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.concurrencyLimit); got != 5 {
		t.Errorf("textpulse_llm_concurrency_limit = %v, want 5", got)
	}
	if got := testutil.ToFloat64(m.inFlight); got != 1 {
		t.Errorf("textpulse_llm_requests_in_flight = %v, want 1", got)
	}
	cfg.AdaptiveConcurrency = false
	newConcurrencyLimiter(cfg, m)
	if got := testutil.ToFloat64(m.concurrencyLimit); got != 20 {
		t.Errorf("textpulse_llm_concurrency_limit = %v in fixed mode, want 20", got)
	}
}

func TestLimiterWindowNeedsSamples(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	l := newLimiter(64, 32, true, clk.now, nil, nil)
	l.baseline = 100 * time.Millisecond
	slow := 400 * time.Millisecond
	for i := range minSamples {
		if err := l.acquire(t.Context()); err != nil {
			t.Fatal(err)
		}
		clk.advance(slow)
		l.release(slotOK, slow)
		want := 32
		if i == minSamples-1 {
			want = 28 // 32 × 0.9
		}
		if got := l.Limit(); got != want {
			t.Fatalf("limit = %d after %d slow answers, want %d", got, i+1, want)
		}
	}
}

package openaisim

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter enforces per-minute request and token limits with token buckets
// whose capacity is the limit and which refill continuously over a minute,
// like the real API.
type limiter struct {
	mu  sync.Mutex
	rpm int
	tpm int
	req *rate.Limiter
	tok *rate.Limiter
}

func newLimiter(rpm, tpm int, burst time.Duration, now time.Time) *limiter {
	l := &limiter{rpm: rpm, tpm: tpm}
	capacity := func(limit int) int {
		if burst <= 0 || burst >= time.Minute {
			return limit
		}
		return max(1, int(float64(limit)*burst.Seconds()/60))
	}
	if rpm > 0 {
		l.req = rate.NewLimiter(rate.Limit(float64(rpm)/60), capacity(rpm))
		l.req.AllowN(now, 0)
	}
	if tpm > 0 {
		l.tok = rate.NewLimiter(rate.Limit(float64(tpm)/60), capacity(tpm))
		l.tok.AllowN(now, 0)
	}
	return l
}

// limitResult is the outcome of one admission check.
type limitResult struct {
	allowed bool
	// kind is "requests" or "tokens" when a limit refused the request.
	kind string
	// tooLarge reports that the request needs more tokens than the limit.
	tooLarge   bool
	retryAfter time.Duration
	headers    map[string]string
}

// take admits a request that needs tokens tokens, or explains why not.
func (l *limiter) take(now time.Time, tokens int) limitResult {
	if l.req == nil && l.tok == nil {
		return limitResult{allowed: true}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	res := limitResult{allowed: true}
	if l.req != nil && l.req.TokensAt(now) < 1 {
		res.allowed = false
		res.kind = "requests"
		res.retryAfter = waitFor(l.req, now, 1)
	}
	if l.tok != nil && float64(tokens) > l.tok.TokensAt(now) {
		if res.allowed {
			res.kind = "tokens"
		}
		res.allowed = false
		if tokens > l.tpm {
			res.tooLarge = true
			res.kind = "tokens"
			res.retryAfter = max(res.retryAfter, time.Minute)
		} else {
			res.retryAfter = max(res.retryAfter, waitFor(l.tok, now, tokens))
		}
	}
	if res.allowed {
		if l.req != nil {
			l.req.AllowN(now, 1)
		}
		if l.tok != nil {
			l.tok.AllowN(now, tokens)
		}
	}
	res.headers = l.headers(now)
	return res
}

func (l *limiter) headers(now time.Time) map[string]string {
	h := make(map[string]string, 6)
	if l.req != nil {
		h["x-ratelimit-limit-requests"] = strconv.Itoa(l.rpm)
		h["x-ratelimit-remaining-requests"] = strconv.Itoa(int(math.Floor(max(0, l.req.TokensAt(now)))))
		h["x-ratelimit-reset-requests"] = formatReset(waitFor(l.req, now, l.rpm))
	}
	if l.tok != nil {
		h["x-ratelimit-limit-tokens"] = strconv.Itoa(l.tpm)
		h["x-ratelimit-remaining-tokens"] = strconv.Itoa(int(math.Floor(max(0, l.tok.TokensAt(now)))))
		h["x-ratelimit-reset-tokens"] = formatReset(waitFor(l.tok, now, l.tpm))
	}
	return h
}

// waitFor returns how long until bucket b holds n tokens.
func waitFor(b *rate.Limiter, now time.Time, n int) time.Duration {
	missing := float64(n) - b.TokensAt(now)
	if missing <= 0 {
		return 0
	}
	return time.Duration(math.Ceil(missing / float64(b.Limit()) * float64(time.Second)))
}

// formatReset formats a reset duration the way the real API does, e.g.
// "1.5s" or "6m0s".
func formatReset(d time.Duration) string {
	if d < time.Millisecond {
		return "0s"
	}
	return d.Round(time.Millisecond).String()
}

// setRetryAfter sets Retry-After in whole seconds (at least 1) and
// retry-after-ms.
func setRetryAfter(h http.Header, d time.Duration) {
	secs := max(1, int64(math.Ceil(d.Seconds())))
	h.Set("Retry-After", strconv.FormatInt(secs, 10))
	h.Set("retry-after-ms", strconv.FormatInt(max(1, int64(math.Ceil(float64(d)/float64(time.Millisecond)))), 10))
}

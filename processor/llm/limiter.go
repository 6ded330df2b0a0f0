package llm

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Adaptive concurrency: an AIMD limit on the requests of a stage in flight,
// in the manner of adaptive request concurrency. Time is cut into windows
// of about one round trip (the baseline latency, at least minWindow). The
// limit is multiplied by decreaseRatio as soon as a request meets back
// pressure (429, 503, a timeout), at most once a round trip, and at the end
// of a window whose mean latency rose above latencyThreshold times the
// baseline; otherwise it grows by 1 at the end of a window that used the
// whole limit without back pressure. Until the first decrease it doubles
// instead (a slow start, as TCP's), so that a stage whose endpoint has room
// reaches it in a few round trips. The baseline is a moving average of the
// window means that follows falls fast and rises slowly, so that it tracks
// the lowest recent latencies.
const (
	// decreaseRatio multiplies the limit on back pressure.
	decreaseRatio = 0.9
	// latencyThreshold is how far above the baseline a window's mean
	// latency may rise before the limit is decreased.
	latencyThreshold = 1.5
	// baselineFall and baselineRise are the weights of a new window mean
	// below and above the baseline.
	baselineFall = 0.5
	baselineRise = 0.1
	// minWindow is the shortest window.
	minWindow = 10 * time.Millisecond
	// minSamples is how many answers a window needs (or the limit, when
	// lower) before it ends, so that one slow answer, such as the first
	// on a new connection, does not decide alone.
	minSamples = 8
)

// slotOutcome is what a request that held a slot of the limiter came to.
type slotOutcome int

const (
	// slotIgnored is a request whose latency says nothing about the
	// endpoint's load: canceled, or failed for reasons of its own.
	slotIgnored slotOutcome = iota
	// slotOK is a request answered in time.
	slotOK
	// slotBackPressure is a 429, a 503 or a timeout.
	slotBackPressure
)

// limiter is a semaphore whose size, the limit, changes with the observed
// latency and back pressure when adaptive, and stays fixed otherwise.
// Acquire waits until fewer requests than the limit are in flight; a
// changed limit applies to the acquires that follow.
type limiter struct {
	ceiling  int
	adaptive bool
	now      func() time.Time
	limitG   prometheus.Gauge // may be nil
	flightG  prometheus.Gauge // may be nil

	mu       sync.Mutex
	limit    int
	inFlight int
	waiters  []chan struct{}
	baseline time.Duration
	win      window
	// slowStart holds until the first decrease.
	slowStart    bool
	lastDecrease time.Time
}

// window is what the limiter saw since the current window began.
type window struct {
	start     time.Time
	samples   int
	total     time.Duration
	pressure  bool
	saturated bool
}

// newLimiter returns a limiter starting at initial (clamped to [1,
// ceiling]); a fixed one stays at ceiling.
func newLimiter(ceiling, initial int, adaptive bool, now func() time.Time, limitG, flightG prometheus.Gauge) *limiter {
	ceiling = max(1, ceiling)
	limit := ceiling
	if adaptive {
		limit = min(max(1, initial), ceiling)
	}
	l := &limiter{ceiling: ceiling, adaptive: adaptive, now: now, limitG: limitG, flightG: flightG, limit: limit,
		slowStart: adaptive}
	l.win.start = now()
	l.publish()
	return l
}

// Limit returns the current limit.
func (l *limiter) Limit() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limit
}

// InFlight returns the number of slots held.
func (l *limiter) InFlight() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inFlight
}

// acquire takes a slot, waiting until one is free or ctx is done.
func (l *limiter) acquire(ctx context.Context) error {
	l.mu.Lock()
	if len(l.waiters) == 0 && l.inFlight < l.limit {
		l.take()
		l.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	l.waiters = append(l.waiters, ch)
	l.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, w := range l.waiters {
		if w == ch {
			l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
			return ctx.Err()
		}
	}
	// The slot was handed over as ctx ended: give it back.
	l.inFlight--
	l.wake()
	return ctx.Err()
}

// take counts a held slot; l.mu is held.
func (l *limiter) take() {
	l.inFlight++
	if l.inFlight >= l.limit {
		l.win.saturated = true
	}
	l.publish()
}

// wake hands free slots to waiters in order; l.mu is held.
func (l *limiter) wake() {
	for len(l.waiters) > 0 && l.inFlight < l.limit {
		ch := l.waiters[0]
		l.waiters = l.waiters[1:]
		l.take()
		close(ch)
	}
	l.publish()
}

// release gives a slot back with what its request came to and how long
// it took.
func (l *limiter) release(o slotOutcome, latency time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight--
	if l.adaptive {
		l.observe(o, latency)
	}
	l.wake()
}

// observe records one request in the window and closes the window when it
// has lasted a round trip; l.mu is held.
func (l *limiter) observe(o slotOutcome, latency time.Duration) {
	now := l.now()
	rtt := max(l.baseline, minWindow)
	switch o {
	case slotOK:
		l.win.samples++
		l.win.total += latency
	case slotBackPressure:
		// Back off at once, not at the end of the window: every slot
		// above the endpoint's capacity turns over fast with refusals.
		// Once a round trip at most, since the requests in flight were
		// sent under the old limit.
		l.win.pressure = true
		if l.lastDecrease.IsZero() || now.Sub(l.lastDecrease) >= rtt {
			l.decrease(now)
		}
		return
	default:
		return
	}
	if now.Sub(l.win.start) < rtt || l.win.samples < min(l.limit, minSamples) {
		return
	}
	l.adjust(now)
	l.win = window{start: now, saturated: l.inFlight >= l.limit}
}

// decrease lowers the limit by decreaseRatio and ends the slow start;
// l.mu is held.
func (l *limiter) decrease(now time.Time) {
	l.limit = max(1, int(float64(l.limit)*decreaseRatio))
	l.slowStart = false
	l.lastDecrease = now
}

// adjust changes the limit and the baseline at the end of a window; l.mu
// is held.
func (l *limiter) adjust(now time.Time) {
	w := l.win
	var mean time.Duration
	if w.samples > 0 {
		mean = w.total / time.Duration(w.samples)
	}
	slow := w.samples > 0 && l.baseline > 0 && float64(mean) > latencyThreshold*float64(l.baseline)
	switch {
	case w.pressure:
		// Decreased when the back pressure came.
	case slow:
		l.decrease(now)
	case w.saturated && w.samples > 0 && l.slowStart:
		l.limit = min(l.ceiling, 2*l.limit)
	case w.saturated && w.samples > 0:
		l.limit = min(l.ceiling, l.limit+1)
	}
	if w.samples == 0 {
		return
	}
	switch {
	case l.baseline == 0:
		l.baseline = mean
	case mean < l.baseline:
		l.baseline += time.Duration(baselineFall * float64(mean-l.baseline))
	default:
		l.baseline += time.Duration(baselineRise * float64(mean-l.baseline))
	}
}

// publish sets the gauges; l.mu is held.
func (l *limiter) publish() {
	if l.limitG != nil {
		l.limitG.Set(float64(l.limit))
	}
	if l.flightG != nil {
		l.flightG.Set(float64(l.inFlight))
	}
}

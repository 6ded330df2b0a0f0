package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"

	"github.com/textpulse/textpulse/internal/textgen"
)

// sink is where generated events go.
type sink interface {
	// emit generates the next event with gen and sends it. It blocks while
	// too many events are in flight, returning ctx's error if ctx ends
	// first, and returns the first delivery error seen so far.
	emit(ctx context.Context, gen *textgen.Generator) error
	// flush waits until every emitted event is delivered or failed and
	// returns the first delivery error.
	flush(ctx context.Context) error
	// close releases the sink's resources.
	close() error
}

// counters tracks delivered events; sinks update it concurrently.
type counters struct {
	valid     atomic.Int64
	malformed atomic.Int64
	bytes     atomic.Int64
}

// add counts one delivered event of size bytes.
func (c *counters) add(valid bool, size int) {
	if valid {
		c.valid.Add(1)
	} else {
		c.malformed.Add(1)
	}
	c.bytes.Add(int64(size))
}

// events returns the number of delivered events.
func (c *counters) events() int64 {
	return c.valid.Load() + c.malformed.Load()
}

// summary is the final report; --json-summary prints it as JSON.
type summary struct {
	Count      int64   `json:"count"`
	Valid      int64   `json:"valid"`
	Malformed  int64   `json:"malformed"`
	Bytes      int64   `json:"bytes"`
	Seconds    float64 `json:"seconds"`
	EventsPerS float64 `json:"events_per_s"`
	MBPerS     float64 `json:"mb_per_s"`
}

// run parses args, generates events into Kafka or a file until the count,
// duration or ctx ends, and reports on stderr and, with --json-summary, on
// stdout. An interrupt through ctx is a clean stop, not an error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, pflag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))

	gen, err := textgen.New(cfg.gen)
	if err != nil {
		return fmt.Errorf("create generator: %w", err)
	}
	ctrs := &counters{}
	var s sink
	if cfg.file != "" {
		s, err = newFileSink(cfg.file, ctrs)
	} else {
		s, err = newKafkaSink(ctx, cfg, log, ctrs)
	}
	if err != nil {
		return err
	}
	log.Info("start", "sink", sinkName(cfg), "count", cfg.count, "rate", cfg.rate, "duration", cfg.dur,
		"seed", cfg.gen.Seed, "fixed_size", cfg.gen.FixedSize, "repeat_share", cfg.gen.RepeatShare,
		"malformed_share", cfg.gen.MalformedShare)

	start := time.Now()
	stopProgress := startProgress(cfg.progress, ctrs, log)
	emitted, genErr := generate(ctx, cfg, gen, s)
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.flushTimeout)
	flushErr := s.flush(flushCtx)
	cancel()
	closeErr := s.close()
	stopProgress()

	sum := summarize(ctrs, time.Since(start))
	if ctx.Err() != nil {
		log.Info("interrupted", "emitted", emitted)
	}
	log.Info("summary", "count", sum.Count, "valid", sum.Valid, "malformed", sum.Malformed, "bytes", sum.Bytes,
		"seconds", sum.Seconds, "events_per_s", sum.EventsPerS, "mb_per_s", sum.MBPerS)
	if cfg.jsonSummary {
		if err := json.NewEncoder(stdout).Encode(sum); err != nil {
			return fmt.Errorf("write summary: %w", err)
		}
	}
	if err := errors.Join(genErr, flushErr, closeErr); err != nil {
		return err
	}
	if lost := emitted - sum.Count; lost != 0 {
		return fmt.Errorf("deliver events: %d of %d emitted events were not delivered", lost, emitted)
	}
	return nil
}

// sinkName describes where events go, for the log.
func sinkName(cfg *config) string {
	if cfg.file != "" {
		return "file:" + cfg.file
	}
	return "kafka:" + cfg.topic
}

// summarize builds the summary of a run that took elapsed.
func summarize(ctrs *counters, elapsed time.Duration) summary {
	s := summary{
		Valid:     ctrs.valid.Load(),
		Malformed: ctrs.malformed.Load(),
		Bytes:     ctrs.bytes.Load(),
		Seconds:   round(elapsed.Seconds(), 3),
	}
	s.Count = s.Valid + s.Malformed
	if secs := elapsed.Seconds(); secs > 0 {
		s.EventsPerS = round(float64(s.Count)/secs, 1)
		s.MBPerS = round(float64(s.Bytes)/secs/1e6, 2)
	}
	return s
}

// round rounds v to digits decimal places.
func round(v float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(v*p) / p
}

const (
	// chunk is how many events generate emits between checks of the clock
	// and ctx.
	chunk = 256
	// minPause is the shortest sleep of a paced run.
	minPause = time.Millisecond
)

// generate emits events into s until cfg.count events are emitted,
// cfg.dur has passed, or ctx ends, pacing them at cfg.rate when set. It
// returns the number of events emitted. The end of ctx is not an error.
func generate(ctx context.Context, cfg *config, gen *textgen.Generator, s sink) (int64, error) {
	start := time.Now()
	var deadline time.Time
	if cfg.dur > 0 {
		deadline = start.Add(cfg.dur)
	}
	var emitted int64
	for cfg.count == 0 || emitted < cfg.count {
		if ctx.Err() != nil {
			return emitted, nil
		}
		now := time.Now()
		if !deadline.IsZero() && !now.Before(deadline) {
			return emitted, nil
		}
		n := int64(chunk)
		if cfg.count > 0 {
			n = min(n, cfg.count-emitted)
		}
		if cfg.rate > 0 {
			// The first event is due at start, event i at start + i/rate.
			due := int64(cfg.rate*now.Sub(start).Seconds()) + 1 - emitted
			if due <= 0 {
				// Sleep until the next event is due, but at least
				// minPause, so that high rates go out in small bursts
				// rather than one timer per event.
				next := start.Add(time.Duration(float64(emitted) / cfg.rate * float64(time.Second)))
				next = later(next, now.Add(minPause))
				if !deadline.IsZero() && next.After(deadline) {
					next = deadline
				}
				sleep(ctx, next.Sub(now))
				continue
			}
			n = min(n, due)
		}
		for range n {
			if err := s.emit(ctx, gen); err != nil {
				if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
					return emitted, nil
				}
				return emitted, err
			}
			emitted++
		}
	}
	return emitted, nil
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// startProgress logs delivered events and rates every interval until the
// returned function is called; an interval of 0 disables it.
func startProgress(interval time.Duration, ctrs *counters, log *slog.Logger) (stop func()) {
	if interval <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		last, lastEvents, lastBytes := time.Now(), int64(0), int64(0)
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				events, bytes := ctrs.events(), ctrs.bytes.Load()
				secs := now.Sub(last).Seconds()
				log.Info("progress", "sent", events,
					"events_per_s", round(float64(events-lastEvents)/secs, 0),
					"mb_per_s", round(float64(bytes-lastBytes)/secs/1e6, 2))
				last, lastEvents, lastBytes = now, events, bytes
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

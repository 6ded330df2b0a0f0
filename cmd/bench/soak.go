package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/textpulse/textpulse/internal/harness"
	"github.com/textpulse/textpulse/internal/openaisim"
)

const (
	// soakInterval is how often the soak scenario samples the consumer; it
	// is also the consumer's lag interval there.
	soakInterval = 5 * time.Second
	// soakDims is the embedding size of the soak scenario.
	soakDims = 384
	// soakRSSGoal is the largest RSS slope after the warm-up, in MiB per
	// minute, that passes.
	soakRSSGoal = 1.0
	// soakLagGoal is the largest lag that passes, in seconds of events at
	// the soak rate.
	soakLagGoal = 60
)

// soakSample is one observation of the consumer in the soak scenario.
type soakSample struct {
	// minutes is the time since the consumer started.
	minutes                               float64
	rssMiB, heapMiB, goroutines, fds, lag float64
	cacheBytes, cacheEntries              float64
	producing                             bool
}

// soakDuration is the length of the steady stream: --soak-duration, or 30
// minutes (2 with --quick).
func soakDuration(o options) time.Duration {
	switch {
	case o.soakDuration > 0:
		return o.soakDuration
	case o.quick:
		return 2 * time.Minute
	}
	return 30 * time.Minute
}

// soakWarmup is the start of a soak of length d left out of the slopes:
// the first third, at least a minute.
func soakWarmup(d time.Duration) time.Duration {
	return max(d/3, time.Minute)
}

// runSoak runs a steady stream through the consumer with all three stages
// for a long time and fits the slopes of its memory, goroutines and file
// descriptors after a warm-up. It is not repeated.
func runSoak(ctx context.Context, o options, stdout io.Writer) (*Result, error) {
	if o.models == "" || o.ortLib == "" {
		return nil, errors.New("needs --models and --ort-lib (or TEXTPULSE_TEST_MODELS and TEXTPULSE_ORT_LIB, set by scripts/env.sh)")
	}
	if o.soakRate <= 0 {
		return nil, errors.New("--soak-rate must be above 0")
	}
	d := soakDuration(o)
	if d < 2*time.Minute {
		return nil, errors.New("--soak-duration must be at least 2m (the warm-up alone is 1m)")
	}
	r := newResult("soak", fmt.Sprintf("Soak: a steady stream of %.0f events/s for %s with all three stages (embeddings, sentiment, "+
		"emotion), sampled every %s; slopes fitted after the warm-up", o.soakRate, d, soakInterval))
	r.Settings = map[string]any{
		"rate": o.soakRate, "duration": d.String(), "warmup": soakWarmup(d).String(), "sample_interval": soakInterval.String(),
		"repeat": 1, "partitions": o.partitions, "emotion_model": o.emotionModel, "dimensions": soakDims,
		"consumer_config": "as in e2e (batch.max_in_flight 12, batch.max_wait 200ms, retry policy) with the stage caches at their " +
			"defaults (100000 entries) and kafka.lag_interval " + soakInterval.String(),
		"simulator":   "embeddings 300 ms median, 900 ms p99; sentiment 1.5 s median, 4 s p99",
		"text_length": "realistic social posts (textgen) with 10% exact repeats",
		"lag_final":   "the last sample of the stream, before the drain",
	}
	cl, adm, err := newProducer(o)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	_, _ = fmt.Fprintf(stdout, "soak: %.0f events/s for %s, warm-up %s\n", o.soakRate, d, soakWarmup(d))
	samples, run, err := soakOnce(ctx, o, cl, adm, d)
	if err != nil {
		return nil, err
	}
	_, _ = fmt.Fprintf(stdout, "  %.0f events stored (%.0f/s); after warm-up RSS %+.3f MiB/min, heap %+.3f MiB/min, "+
		"goroutines %+.3f/min, fds %+.3f/min; lag max %.0f, final %.0f\n",
		run["events"], run["events_per_s_stored"], run["rss_slope_mib_per_min"], run["heap_slope_mib_per_min"],
		run["goroutines_slope_per_min"], run["fds_slope_per_min"], run["lag_max"], run["lag_final"])
	r.Runs = append(r.Runs, run)
	r.Series = soakSeries(samples)
	r.Notes = append(r.Notes, soakNotes(samples, soakWarmup(d).Minutes())...)
	r.summarize()
	for _, c := range soakChecks(r) {
		_, _ = fmt.Fprintf(stdout, "  %s: %s\n", passFail(c.pass), c.goal)
	}
	return r, nil
}

// soakOnce serves the simulator, runs the consumer and the stream of
// length d, verifies the rows and returns the samples and the figures.
func soakOnce(ctx context.Context, o options, cl *kgo.Client, adm *kadm.Client, d time.Duration) ([]soakSample, map[string]float64, error) {
	cfg := openaisim.DefaultConfig()
	cfg.Embeddings.Latency = openaisim.Latency{Median: 300 * time.Millisecond, P99: 900 * time.Millisecond}
	cfg.Chat.Latency = openaisim.Latency{Median: 1500 * time.Millisecond, P99: 4 * time.Second}
	_, base, stopSim, err := serveSim(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	defer stopSim()
	env, cleanup, err := newRunEnv(ctx, o, adm, "soak", int32(o.partitions)) //nolint:gosec // Small flag value.
	if err != nil {
		return nil, nil, err
	}
	defer cleanup()
	t0 := time.Now()
	proc, stopConsumer, err := startConsumer(ctx, o.consumer, soakArgs(o, env, base))
	if err != nil {
		return nil, nil, err
	}
	defer stopConsumer()
	w := &soakWatch{url: env.metricsURL, pid: proc.Pid(), t0: t0}
	if err := w.waitUp(ctx, time.Minute); err != nil {
		return nil, nil, fmt.Errorf("%w; consumer log: %s", err, proc.Tail(20))
	}
	sent, elapsed, err := w.stream(ctx, cl, env.topic, o.soakRate, d)
	if err != nil {
		return nil, nil, err
	}
	stored, err := verifySoak(o, env.db, sent)
	if err != nil {
		return nil, nil, err
	}
	if err := proc.Signal(os.Interrupt); err != nil {
		return nil, nil, err
	}
	_ = proc.Wait()
	run := soakFigures(w.samples, soakWarmup(d).Minutes())
	run["events"] = float64(stored)
	run["events_per_s_stored"] = float64(stored) / elapsed.Seconds()
	return w.samples, run, nil
}

// soakArgs are the consumer's flags in the soak scenario: e2e's with
// 384-dimension embeddings, the stage caches at their defaults and the lag
// monitor on.
func soakArgs(o options, env *runEnv, base string) []string {
	args := e2eArgs(o, env, base, filepath.Join(o.models, o.emotionModel))
	args = setFlag(args, "--stages.embedding.cache_size", "100000")
	args = setFlag(args, "--stages.sentiment.cache_size", "100000")
	args = setFlag(args, "--stages.embedding.dimensions", strconv.Itoa(soakDims))
	return setFlag(args, "--kafka.lag_interval", soakInterval.String())
}

// setFlag sets flag name to value in args: it replaces the value after
// the last occurrence of name, or appends both.
func setFlag(args []string, name, value string) []string {
	out := append([]string(nil), args...)
	for i := len(out) - 2; i >= 0; i-- {
		if out[i] == name {
			out[i+1] = value
			return out
		}
	}
	return append(out, name, value)
}

// verifySoak checks that the sent events are stored, each once at least
// (counted by distinct Kafka coordinates) and enriched by every stage; it
// returns how many distinct events are stored.
func verifySoak(o options, db string, sent int) (int, error) {
	got, err := chQuery(o, fmt.Sprintf("SELECT uniqExact(kafka_topic, kafka_partition, kafka_offset) FROM %s.events", db))
	if err != nil {
		return 0, err
	}
	stored, err := strconv.Atoi(got)
	if err != nil {
		return 0, fmt.Errorf("parse stored count %q: %w", got, err)
	}
	if stored != sent {
		return 0, fmt.Errorf("consumer stored %d distinct events, want %d", stored, sent)
	}
	missing, err := chQuery(o, fmt.Sprintf("SELECT countIf(status != 'ok' OR emotion_label = '' OR length(embedding) != %d OR sentiment_label = '') FROM %s.events", soakDims, db))
	if err != nil {
		return 0, err
	}
	if missing != "0" {
		return 0, fmt.Errorf("%s rows lack an enrichment", missing)
	}
	return stored, nil
}

// soakWatch samples one consumer during the soak.
type soakWatch struct {
	url     string
	pid     int
	t0      time.Time
	samples []soakSample
}

// waitUp waits until the consumer's /metrics answers.
func (w *soakWatch) waitUp(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := harness.Scrape(ctx, w.url+"/metrics"); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("consumer metrics not up within %s: %w", timeout, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stream produces at rate for d while sampling, then samples on until
// every event is written and two more lag intervals have passed. It
// returns the events sent and the time from the first produced event to
// the last one written.
func (w *soakWatch) stream(ctx context.Context, cl *kgo.Client, topic string, rate float64, d time.Duration) (int, time.Duration, error) {
	start := time.Now()
	type produced struct {
		n   int
		err error
	}
	done := make(chan produced, 1)
	go func() {
		n, err := produceSoak(ctx, cl, topic, rate, d)
		done <- produced{n, err}
	}()
	tick := time.NewTicker(soakInterval)
	defer tick.Stop()
	for {
		select {
		case p := <-done:
			if p.err != nil {
				return 0, 0, p.err
			}
			return w.drain(ctx, p.n, start, tick)
		case <-tick.C:
			if err := w.sample(ctx, true); err != nil {
				return 0, 0, err
			}
		}
	}
}

// drain samples until n records are written (within 10 minutes), then for
// two more intervals; it checks the written counter every 100 ms, so that
// the elapsed time does not round up to a sample.
func (w *soakWatch) drain(ctx context.Context, n int, start time.Time, tick *time.Ticker) (int, time.Duration, error) {
	deadline := time.Now().Add(10 * time.Minute)
	check := time.NewTicker(100 * time.Millisecond)
	defer check.Stop()
	var elapsed time.Duration
	for after := 0; after < 2; {
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("consumer did not write %d records within 10 minutes of the stream's end", n)
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-check.C:
			if elapsed > 0 {
				continue
			}
			c, err := scrapeCounters(ctx, w.url, "textpulse_records_written_total")
			if err == nil && c[0] >= float64(n) {
				elapsed = time.Since(start)
			}
		case <-tick.C:
			if err := w.sample(ctx, false); err != nil {
				return 0, 0, err
			}
			if elapsed > 0 {
				after++
			}
		}
	}
	return n, elapsed, nil
}

// produceSoak produces the steady stream in one-minute pieces, so that an
// interrupt ends it within a minute.
func produceSoak(ctx context.Context, cl *kgo.Client, topic string, rate float64, d time.Duration) (int, error) {
	seed := uint64(time.Now().UnixNano()) //nolint:gosec // Any seed will do.
	sent := 0
	for i := uint64(0); d > 0; i++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		piece := min(d, time.Minute)
		n, err := produceSteady(ctx, cl, topic, rate, seed+i, piece)
		if err != nil {
			return 0, err
		}
		sent += n
		d -= piece
	}
	return sent, nil
}

// sample scrapes the consumer once and reads its RSS.
func (w *soakWatch) sample(ctx context.Context, producing bool) error {
	m, err := harness.Scrape(ctx, w.url+"/metrics")
	if err != nil {
		return fmt.Errorf("scrape consumer: %w", err)
	}
	s, err := sampleMetrics(m)
	if err != nil {
		return err
	}
	if s.rssMiB, err = rssMiB(w.pid); err != nil {
		return fmt.Errorf("read consumer rss: %w", err)
	}
	s.minutes = time.Since(w.t0).Minutes()
	s.producing = producing
	w.samples = append(w.samples, s)
	return nil
}

// sampleMetrics reads a soak sample's figures from one scrape. Lag and
// cache gauges count as 0 while absent (before the first lag measurement,
// or with a stage that has no cache).
func sampleMetrics(m harness.Metrics) (soakSample, error) {
	var s soakSample
	var ok bool
	if s.goroutines, ok = m.Value("go_goroutines", nil); !ok {
		return s, errors.New("metric go_goroutines missing")
	}
	if s.fds, ok = m.Value("process_open_fds", nil); !ok {
		return s, errors.New("metric process_open_fds missing")
	}
	heap, ok := m.Value("go_memstats_heap_inuse_bytes", nil)
	if !ok {
		if heap, ok = m.Value("go_memstats_alloc_bytes", nil); !ok {
			return s, errors.New("metrics go_memstats_heap_inuse_bytes and go_memstats_alloc_bytes missing")
		}
	}
	s.heapMiB = heap / (1 << 20)
	s.lag, _ = m.Value("textpulse_consumer_lag_records", nil)
	s.cacheBytes, _ = m.Value("textpulse_stage_cache_bytes", nil)
	s.cacheEntries, _ = m.Value("textpulse_stage_cache_entries", nil)
	return s, nil
}

// slopePerMinute is the least-squares slope of points (minutes, value); 0
// with fewer than two points or a single abscissa.
func slopePerMinute(pts [][2]float64) float64 {
	if len(pts) < 2 {
		return 0
	}
	var mx, my float64
	for _, p := range pts {
		mx += p[0]
		my += p[1]
	}
	mx /= float64(len(pts))
	my /= float64(len(pts))
	var sxy, sxx float64
	for _, p := range pts {
		sxy += (p[0] - mx) * (p[1] - my)
		sxx += (p[0] - mx) * (p[0] - mx)
	}
	if sxx == 0 {
		return 0
	}
	return sxy / sxx
}

// soakFigures are the figures of the samples: slopes over those taken
// while producing after warm minutes, maxima over all, final values from
// the last sample taken while producing (the lag of the steady stream) and
// the last one (RSS, cache).
func soakFigures(samples []soakSample, warm float64) map[string]float64 {
	pick := func(f func(soakSample) float64) [][2]float64 {
		var pts [][2]float64
		for _, s := range samples {
			if s.producing && s.minutes >= warm {
				pts = append(pts, [2]float64{s.minutes, f(s)})
			}
		}
		return pts
	}
	out := map[string]float64{
		"rss_slope_mib_per_min":    slopePerMinute(pick(func(s soakSample) float64 { return s.rssMiB })),
		"heap_slope_mib_per_min":   slopePerMinute(pick(func(s soakSample) float64 { return s.heapMiB })),
		"goroutines_slope_per_min": slopePerMinute(pick(func(s soakSample) float64 { return s.goroutines })),
		"fds_slope_per_min":        slopePerMinute(pick(func(s soakSample) float64 { return s.fds })),
		"rss_max_mib":              0, "rss_final_mib": 0, "lag_max": 0, "lag_final": 0, "cache_bytes_final": 0,
	}
	for _, s := range samples {
		out["rss_max_mib"] = max(out["rss_max_mib"], s.rssMiB)
		out["lag_max"] = max(out["lag_max"], s.lag)
		out["rss_final_mib"], out["cache_bytes_final"] = s.rssMiB, s.cacheBytes
		if s.producing {
			out["lag_final"] = s.lag
		}
	}
	return out
}

// soakNotes explains the slopes of the samples after warm minutes: a
// stage cache still filling then (a run too short for the caches to reach
// their bounds) adds its growth to the RSS and heap slopes.
func soakNotes(samples []soakSample, warm float64) []string {
	var pts [][2]float64
	for _, s := range samples {
		if s.producing && s.minutes >= warm {
			pts = append(pts, [2]float64{s.minutes, s.cacheBytes / (1 << 20)})
		}
	}
	if g := slopePerMinute(pts); g > 0.5 {
		return []string{fmt.Sprintf("the stage caches still grew by %.1f MiB/min after the warm-up (they had not reached their "+
			"bounds); the RSS and heap slopes include that growth, and a longer --soak-duration leaves it in the warm-up.", g)}
	}
	return nil
}

// soakSeries are the plotted series of the samples, over minutes since
// the consumer started.
func soakSeries(samples []soakSample) map[string][][2]float64 {
	out := make(map[string][][2]float64, 4)
	for _, s := range samples {
		for name, v := range map[string]float64{
			"rss_mib_over_minutes": s.rssMiB, "heap_mib_over_minutes": s.heapMiB,
			"goroutines_over_minutes": s.goroutines, "lag_over_minutes": s.lag,
		} {
			out[name] = append(out[name], [2]float64{s.minutes, v})
		}
	}
	return out
}

// soakCheck is one goal of the soak scenario and whether a result met it.
type soakCheck struct {
	goal string
	pass bool
}

// flat reports whether a slope per minute, over window minutes, grows by
// at most 5% of level or 2, whichever is more: a leak grows, while a count
// that swings with the load (goroutines of requests in flight) may fall.
func flat(slope, window, level float64) bool {
	return slope*window <= max(2, 0.05*math.Abs(level))
}

// soakChecks judges a soak result against its goals: RSS slope under
// soakRSSGoal, goroutines and file descriptors flat after the warm-up and
// lag under soakLagGoal seconds of events.
func soakChecks(r *Result) []soakCheck {
	fig := func(k string) float64 { return r.Summary[k].Median }
	rate, _ := r.Settings["rate"].(float64)
	d, _ := time.ParseDuration(fmt.Sprint(r.Settings["duration"]))
	warm := soakWarmup(d)
	window := (d - warm).Minutes()
	// level is the mean of a series after the warm-up.
	level := func(name string) float64 {
		sum, n := 0.0, 0
		for _, p := range r.Series[name] {
			if p[0] >= warm.Minutes() {
				sum, n = sum+p[1], n+1
			}
		}
		if n == 0 {
			return 0
		}
		return sum / float64(n)
	}
	lagBound := rate * soakLagGoal
	return []soakCheck{
		{fmt.Sprintf("RSS slope after the warm-up under %.0f MiB/min (%+.3f)", soakRSSGoal, fig("rss_slope_mib_per_min")),
			fig("rss_slope_mib_per_min") < soakRSSGoal},
		{fmt.Sprintf("goroutines flat: growth over the %.0f min after the warm-up within 5%% of their mean or 2 (%+.3f/min)",
			window, fig("goroutines_slope_per_min")),
			flat(fig("goroutines_slope_per_min"), window, level("goroutines_over_minutes"))},
		{fmt.Sprintf("open fds flat: growth over the %.0f min after the warm-up at most 2 (%+.3f/min)", window, fig("fds_slope_per_min")),
			flat(fig("fds_slope_per_min"), window, 0)},
		{fmt.Sprintf("lag bounded: max and final under %d s of events, %.0f (max %.0f, final %.0f)",
			soakLagGoal, lagBound, fig("lag_max"), fig("lag_final")),
			fig("lag_max") < lagBound && fig("lag_final") < lagBound},
	}
}

func passFail(ok bool) string {
	if ok {
		return "pass"
	}
	return "FAIL"
}

// soakReport is the soak section's text after its table: how it is run
// and its goals.
func soakReport(r *Result) string {
	var b strings.Builder
	b.WriteString("\nRun with `make soak` (not part of `make bench`). Goals:\n\n")
	for _, c := range soakChecks(r) {
		fmt.Fprintf(&b, "- %s: %s\n", passFail(c.pass), c.goal)
	}
	return b.String()
}

// soakPlots are the soak scenario's series with their titles and axis
// labels, in the order of the report.
func soakPlots() [][3]string {
	return [][3]string{
		{"rss_mib_over_minutes", "Consumer RSS during the soak", "RSS (MiB)"},
		{"heap_mib_over_minutes", "Go heap in use during the soak", "heap (MiB)"},
		{"goroutines_over_minutes", "Goroutines during the soak", "goroutines"},
		{"lag_over_minutes", "Consumer lag during the soak", "lag (records)"},
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/textpulse/textpulse/internal/openaisim"
	"github.com/textpulse/textpulse/internal/textgen"
)

// prototypeTextsPerSec is the measured throughput of the Python prototype,
// the reference line of the end-to-end scenario.
const prototypeTextsPerSec = 0.44

// runE2E measures the whole pipeline with all three stages: embeddings and
// sentiment through the simulator with realistic latency, emotion from a
// model run by ONNX Runtime on the CPU. Phase one drains a backlog for
// throughput; phase two produces at a steady rate below it and reads the
// consumer's end-to-end latency histogram (Kafka record time to row
// written).
func runE2E(ctx context.Context, o options, stdout io.Writer) (*Result, error) {
	if o.models == "" || o.ortLib == "" {
		return nil, errors.New("needs --models and --ort-lib (or TEXTPULSE_TEST_MODELS and TEXTPULSE_ORT_LIB, set by scripts/env.sh)")
	}
	n, steadyFor := 20_000, 30*time.Second
	if o.quick {
		n, steadyFor = 3_000, 10*time.Second
	}
	model := filepath.Join(o.models, o.emotionModel)
	r := newResult("e2e", "End to end with all three stages: embeddings (300 ms median, 900 ms p99 latency) and sentiment "+
		"(1.5 s median, 4 s p99) through the simulator, emotion from an ONNX model on the CPU")
	r.Settings = map[string]any{
		"backlog_texts": n, "latency_phase": steadyFor.String(), "repeat": o.repeat, "partitions": o.partitions,
		"emotion_model":   o.emotionModel,
		"api_caps":        "none (3000 RPM-class budgets are measured by the api scenario)",
		"consumer_config": "batch.max_in_flight 12, batch.max_wait 200ms (latency-oriented; defaults 3 and 500ms gave p50 8.6 s); API stages with retry policy and caches off, chat requests in flight adapted by the stage (adaptive_concurrency, ceiling 256; 24 texts each); emotion stage on the CPU with its defaults",
		"latency_rate":    "half the throughput measured in phase one, event time = Kafka record time",
		"text_length":     "realistic social posts (textgen) with 10% exact repeats",
	}
	cl, adm, err := newProducer(o)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	for i := range o.repeat {
		_, _ = fmt.Fprintf(stdout, "e2e run %d/%d: %d texts backlog, then %s at a steady rate\n", i+1, o.repeat, n, steadyFor)
		run, err := e2eOnce(ctx, o, cl, adm, model, n, steadyFor)
		if err != nil {
			return nil, err
		}
		_, _ = fmt.Fprintf(stdout, "  %.0f texts/s (%.0fx the prototype); at %.0f texts/s latency p50 %.2f s, p99 %.2f s\n",
			run["texts_per_s"], run["multiple_of_prototype"], run["latency_phase_rate"], run["latency_p50_s"], run["latency_p99_s"])
		r.Runs = append(r.Runs, run)
	}
	r.summarize()
	return r, nil
}

func e2eOnce(ctx context.Context, o options, cl *kgo.Client, adm *kadm.Client, model string, n int, steadyFor time.Duration) (map[string]float64, error) {
	cfg := openaisim.DefaultConfig()
	cfg.Embeddings.Latency = openaisim.Latency{Median: 300 * time.Millisecond, P99: 900 * time.Millisecond}
	cfg.Chat.Latency = openaisim.Latency{Median: 1500 * time.Millisecond, P99: 4 * time.Second}
	_, base, stopSim, err := serveSim(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer stopSim()
	env, cleanup, err := newRunEnv(ctx, o, adm, "e2e", int32(o.partitions)) //nolint:gosec // Small flag value.
	if err != nil {
		return nil, err
	}
	defer cleanup()
	gen := textgen.Options{Seed: uint64(time.Now().UnixNano()), RepeatShare: 0.1} //nolint:gosec // Any seed will do.
	if err := produceTexts(ctx, cl, env.topic, n, gen); err != nil {
		return nil, err
	}
	proc, stopConsumer, err := startConsumer(ctx, o.consumer, e2eArgs(o, env, base, model))
	if err != nil {
		return nil, err
	}
	defer stopConsumer()
	first, done, err := waitWritten(ctx, env.metricsURL, float64(n), 20*time.Minute)
	if err != nil {
		return nil, err
	}
	rate := float64(n) / done.Sub(first).Seconds()

	// Phase two: a steady stream at half the measured rate.
	const histName = "textpulse_end_to_end_latency_seconds"
	before, err := scrapeHistogram(ctx, env.metricsURL, histName)
	if err != nil {
		return nil, err
	}
	steady := rate / 2
	sent, err := produceSteady(ctx, cl, env.topic, steady, gen.Seed+1, steadyFor)
	if err != nil {
		return nil, err
	}
	if _, _, err := waitWritten(ctx, env.metricsURL, float64(n+sent), 10*time.Minute); err != nil {
		return nil, err
	}
	after, err := scrapeHistogram(ctx, env.metricsURL, histName)
	if err != nil {
		return nil, err
	}
	_ = proc.Signal(os.Interrupt)
	_ = proc.Wait()
	missing, err := chQuery(o, fmt.Sprintf("SELECT countIf(status != 'ok' OR emotion_label = '' OR length(embedding) = 0 OR sentiment_label = '') FROM %s.events", env.db))
	if err != nil {
		return nil, err
	}
	if missing != "0" {
		return nil, fmt.Errorf("%s rows lack an enrichment", missing)
	}
	lat := after.Sub(before)
	return map[string]float64{
		"texts_per_s":           rate,
		"multiple_of_prototype": rate / prototypeTextsPerSec,
		"latency_phase_rate":    steady,
		"latency_phase_texts":   float64(sent),
		"latency_p50_s":         lat.Quantile(0.5),
		"latency_p99_s":         lat.Quantile(0.99),
	}, nil
}

// e2eArgs are the consumer's flags in the end-to-end scenario: both API
// stages against the simulator at base and the emotion stage with model.
func e2eArgs(o options, env *runEnv, base, model string) []string {
	args := env.consumerArgs(o)
	for _, st := range []string{"embedding", "sentiment"} {
		p := "--stages." + st + "."
		args = append(args, p+"enabled", p+"base_url", base, p+"api_key", "bench", p+"cache_size", "0", p+"on_failure", "retry")
	}
	// Latency-oriented batching: with seconds-long API calls, more and
	// smaller batches in flight keep one slow request from holding many rows.
	args = append(args, "--batch.max_in_flight", "12", "--batch.max_wait", "200ms",
		"--stages.emotion.enabled", "--stages.emotion.model_dir", model, "--ort.lib", o.ortLib)
	return append(args, strings.Fields(o.extraArgs)...)
}

// produceSteady produces realistic texts (10% repeats, from seed) at rate
// per second for d, then flushes; it returns how many it produced.
func produceSteady(ctx context.Context, cl *kgo.Client, topic string, rate float64, seed uint64, d time.Duration) (int, error) {
	g, err := textgen.New(textgen.Options{Seed: seed, RepeatShare: 0.1})
	if err != nil {
		return 0, err
	}
	sent := 0
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	for now := range tick.C {
		el := now.Sub(start)
		if el >= d {
			break
		}
		for want := int(rate * el.Seconds()); sent < want; sent++ {
			ev, _ := g.Next(nil)
			cl.Produce(ctx, &kgo.Record{Topic: topic, Value: ev}, nil)
		}
	}
	tick.Stop()
	if err := cl.Flush(ctx); err != nil {
		return 0, fmt.Errorf("flush: %w", err)
	}
	return sent, nil
}

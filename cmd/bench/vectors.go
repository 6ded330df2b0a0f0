package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/textpulse/textpulse/internal/openaisim"
	"github.com/textpulse/textpulse/internal/textgen"
)

// vectorDims is the embedding size stored in the vectors scenario, that of
// text-embedding-3-small.
const vectorDims = 1536

// runVectors measures ingest with a 1536-dimension embedding stored per row:
// the embeddings come from the simulator with no latency and no caps, so
// the figures show what storing the vectors costs, not an API's limits.
func runVectors(ctx context.Context, o options, stdout io.Writer) (*Result, error) {
	n := 200_000
	if o.quick {
		n = 30_000
	}
	r := newResult("vectors", "Ingest with 1536-dimension embeddings stored: realistic texts enriched by the embedding stage "+
		"through the simulator (no latency, no caps, in the bench process) and written to ClickHouse with their vectors")
	r.Settings = map[string]any{
		"events": n, "partitions": o.partitions, "repeat": o.repeat, "dimensions": vectorDims,
		"consumer_config": "defaults; embedding stage with base64 vectors, 2048 inputs per request, 4 requests in flight, cache off",
		"text_length":     "realistic social posts (textgen), no repeated texts",
	}
	cl, adm, err := newProducer(o)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	for i := range o.repeat {
		_, _ = fmt.Fprintf(stdout, "vectors run %d/%d: %d events\n", i+1, o.repeat, n)
		run, err := vectorsOnce(ctx, o, cl, adm, n)
		if err != nil {
			return nil, err
		}
		_, _ = fmt.Fprintf(stdout, "  %.0f rows/s, %.1f MB/s of column data into ClickHouse (%.1f MB/s of vectors)\n",
			run["rows_per_s"], run["column_mb_per_s"], run["vector_mb_per_s"])
		r.Runs = append(r.Runs, run)
	}
	r.summarize()
	return r, nil
}

func vectorsOnce(ctx context.Context, o options, cl *kgo.Client, adm *kadm.Client, n int) (map[string]float64, error) {
	_, base, stopSim, err := serveSim(ctx, openaisim.DefaultConfig())
	if err != nil {
		return nil, err
	}
	defer stopSim()
	env, cleanup, err := newRunEnv(ctx, o, adm, "vectors", int32(o.partitions)) //nolint:gosec // Small flag value.
	if err != nil {
		return nil, err
	}
	defer cleanup()
	if err := produceTexts(ctx, cl, env.topic, n, textgen.Options{Seed: 7}); err != nil {
		return nil, err
	}
	args := append(env.consumerArgs(o),
		"--stages.embedding.enabled", "--stages.embedding.base_url", base, "--stages.embedding.api_key", "bench",
		"--stages.embedding.cache_size", "0", "--stages.embedding.on_failure", "retry",
		"--stages.embedding.dimensions", strconv.Itoa(vectorDims))
	args = append(args, strings.Fields(o.extraArgs)...)
	proc, stopConsumer, err := startConsumer(ctx, o.consumer, args)
	if err != nil {
		return nil, err
	}
	defer stopConsumer()
	first, done, err := waitWritten(ctx, env.metricsURL, float64(n), 15*time.Minute)
	if err != nil {
		return nil, err
	}
	rss, _ := rssMiB(proc.Pid())
	peak, _ := procStatusMiB(proc.Pid(), "VmHWM:")
	_ = proc.Signal(os.Interrupt)
	_ = proc.Wait()
	stored, err := chQuery(o, fmt.Sprintf("SELECT countIf(length(embedding) = %d) FROM %s.events FINAL", vectorDims, env.db))
	if err != nil {
		return nil, err
	}
	if stored != strconv.Itoa(n) {
		return nil, fmt.Errorf("%s rows with a %d-dimension vector, want %d", stored, vectorDims, n)
	}
	sizes, err := chQuery(o, fmt.Sprintf("SELECT sum(data_uncompressed_bytes), sum(data_compressed_bytes), "+
		"sumIf(data_uncompressed_bytes, name = 'embedding') FROM system.columns WHERE database = '%s' AND table = 'events'", env.db))
	if err != nil {
		return nil, err
	}
	f := strings.Fields(sizes)
	if len(f) != 3 {
		return nil, fmt.Errorf("column sizes: unexpected answer %q", sizes)
	}
	var bytes [3]float64
	for i := range f {
		if bytes[i], err = strconv.ParseFloat(f[i], 64); err != nil {
			return nil, fmt.Errorf("column sizes: %w", err)
		}
	}
	secs := done.Sub(first).Seconds()
	rows := float64(n)
	return map[string]float64{
		"seconds":                   secs,
		"rows_per_s":                rows / secs,
		"column_mb_per_s":           bytes[0] / secs / 1e6,
		"vector_mb_per_s":           bytes[2] / secs / 1e6,
		"stored_bytes_per_row":      bytes[0] / rows,
		"compressed_bytes_per_row":  bytes[1] / rows,
		"consumer_rss_mib_at_end":   rss,
		"consumer_max_rss_mib":      peak,
		"vector_bytes_per_row_want": vectorDims * 4,
	}, nil
}

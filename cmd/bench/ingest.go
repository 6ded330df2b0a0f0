package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/textpulse/textpulse/internal/harness"
	"github.com/textpulse/textpulse/internal/textgen"
	"github.com/textpulse/textpulse/schemas"
)

// eventBytes is the size of every event in the raw-ingest scenario.
const eventBytes = 300

// runIngest measures raw ingest (no enrichment): a backlog of 300-byte JSON
// events drained by the consumer into ClickHouse, against clickhouse-client
// inserting the same rows from a TSV file in the same run.
func runIngest(ctx context.Context, o options, stdout io.Writer) (*Result, error) {
	r := newResult("ingest", "Raw ingest: Kafka backlog of 300-byte JSON events to ClickHouse, no enrichment")
	r.Settings = map[string]any{
		"events": o.events, "event_bytes": eventBytes, "partitions": o.partitions,
		"consumer_config": "defaults (batch.max_records 100000, batch.max_bytes 32 MiB, batch.max_in_flight 3, no wire compression; clickhouse-client --compression 0 to match)",
		"repeat":          o.repeat,
		"baseline":        "clickhouse-client INSERT ... FORMAT TSV of the same rows, same tables, same server",
	}
	cl, adm, err := newProducer(o, kgo.MaxBufferedRecords(1<<20), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		return nil, err
	}
	defer cl.Close()

	for i := range o.repeat {
		_, _ = fmt.Fprintf(stdout, "ingest run %d/%d: %d events\n", i+1, o.repeat, o.events)
		run, err := ingestOnce(ctx, o, cl, adm, i == 0, r)
		if err != nil {
			return nil, err
		}
		_, _ = fmt.Fprintf(stdout, "  consumer %.0f events/s (wall %.0f), clickhouse-client %.0f rows/s, ratio %.2f\n",
			run["consumer_events_per_s"], run["consumer_wall_events_per_s"], run["client_rows_per_s"], run["ratio"])
		r.Runs = append(r.Runs, run)
	}
	r.summarize()
	return r, nil
}

// ingestOnce drains one backlog of o.events into a fresh database and times
// clickhouse-client inserting the same rows; profile adds a CPU profile and
// the RSS series to res.
func ingestOnce(ctx context.Context, o options, cl *kgo.Client, adm *kadm.Client, profile bool, res *Result) (map[string]float64, error) {
	stamp := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic := "bench.ingest." + stamp
	db := "bench_" + stamp
	baseDB := db + "_client"
	if _, err := adm.CreateTopic(ctx, int32(o.partitions), 1, nil, topic); err != nil { //nolint:gosec // Small flag value.
		return nil, fmt.Errorf("create topic: %w", err)
	}
	defer func() {
		_, _ = adm.DeleteTopics(context.WithoutCancel(ctx), topic, topic+".dlq")
		_ = chExec(o, "DROP DATABASE IF EXISTS "+db)
		_ = chExec(o, "DROP DATABASE IF EXISTS "+baseDB)
	}()
	start := time.Now()
	if err := produceFixed(ctx, cl, topic, o.events); err != nil {
		return nil, err
	}
	produceSecs := time.Since(start).Seconds()
	// Let the page cache write back the produced log before measuring.
	_ = exec.CommandContext(ctx, "sync").Run()
	time.Sleep(2 * time.Second)

	port, err := freePort(ctx)
	if err != nil {
		return nil, err
	}
	w, err := ingestConsumer(ctx, o, ingestArgs(o, stamp, topic, db, port), fmt.Sprintf("http://127.0.0.1:%d", port), profile, res)
	if err != nil {
		return nil, err
	}
	stored, err := chQuery(o, fmt.Sprintf("SELECT uniqExact(kafka_topic, kafka_partition, kafka_offset) FROM %s.events", db))
	if err != nil {
		return nil, err
	}
	if stored != strconv.Itoa(o.events) {
		return nil, fmt.Errorf("consumer stored %s distinct events, want %d", stored, o.events)
	}

	clientSecs, err := clientBaseline(ctx, o, db, baseDB)
	if err != nil {
		return nil, err
	}
	if profile {
		res.Series = map[string][][2]float64{"consumer_rss_mib_over_seconds": w.series}
	}
	return w.rates(float64(o.events), produceSecs, clientSecs), nil
}

// ingestArgs are the consumer's flags in the raw-ingest scenario.
func ingestArgs(o options, stamp, topic, db string, port int) []string {
	args := []string{"run",
		"--kafka.brokers", o.brokers, "--kafka.topics", topic, "--kafka.group", "bench-" + stamp,
		"--kafka.dead_letter_topic", topic + ".dlq", "--kafka.lag_interval", "0",
		"--clickhouse.addr", o.chAddr, "--clickhouse.database", db,
		"--http.listen", fmt.Sprintf("127.0.0.1:%d", port), "--http.pprof",
		"--log.level", "warn", "--log.format", "text"}
	if o.batch > 0 {
		args = append(args, "--batch.max_records", strconv.Itoa(o.batch))
	}
	return append(args, strings.Fields(o.extraArgs)...)
}

// ingestWatch is what the raw-ingest scenario observed of one consumer
// run.
type ingestWatch struct {
	// t0 is the consumer's start, tFirst the first polled record and
	// tDone the moment every event was written.
	t0, tFirst, tDone time.Time
	rssMax            float64
	// tFirstRow is when the first row was stored; cpuSeconds is the
	// consumer's CPU time (user and system) at the last scrape.
	tFirstRow  time.Time
	cpuSeconds float64
	// series is RSS in MiB over seconds since t0, when profiling.
	series [][2]float64
}

// ingestConsumer runs the consumer with args until it has written
// o.events rows, then interrupts it and waits for it to exit. With profile
// it takes a CPU profile from the steady window into res.
func ingestConsumer(ctx context.Context, o options, args []string, metricsURL string, profile bool, res *Result) (*ingestWatch, error) {
	w := &ingestWatch{t0: time.Now()}
	proc, stopConsumer, err := startConsumer(ctx, o.consumer, args)
	if err != nil {
		return nil, err
	}
	defer stopConsumer()
	profCh := make(chan error, 1)
	if err := w.poll(ctx, o, proc, metricsURL, profile, profCh); err != nil {
		return nil, err
	}
	if err := proc.Signal(os.Interrupt); err != nil {
		return nil, err
	}
	_ = proc.Wait()
	if profile {
		if err := <-profCh; err != nil {
			res.Notes = append(res.Notes, "cpu profile: "+err.Error())
		} else if top, err := pprofTop(o.consumer, filepath.Join(o.outDir, "ingest.cpu.pprof")); err == nil {
			res.Profile = top
		}
	}
	return w, nil
}

// poll scrapes the consumer's counters and RSS every 20 ms until o.events
// records are written, for at most 10 minutes. With profile it starts the
// CPU profile at the first polled record; its result arrives on profCh.
func (w *ingestWatch) poll(ctx context.Context, o options, proc *harness.Process, metricsURL string, profile bool, profCh chan<- error) error {
	n := float64(o.events)
	deadline := time.Now().Add(10 * time.Minute)
	for w.tDone.IsZero() {
		if time.Now().After(deadline) {
			return errors.New("consumer did not finish within 10 minutes")
		}
		time.Sleep(20 * time.Millisecond)
		counters, err := scrapeCounters(ctx, metricsURL, "textpulse_records_written_total", "textpulse_records_consumed_total",
			"process_cpu_seconds_total")
		if err != nil {
			continue
		}
		written, consumed := counters[0], counters[1]
		now := time.Now()
		if written > 0 && w.tFirstRow.IsZero() {
			w.tFirstRow = now
		}
		w.cpuSeconds = counters[2]
		if rss, err := rssMiB(proc.Pid()); err == nil {
			w.rssMax = max(w.rssMax, rss)
			if profile {
				w.series = append(w.series, [2]float64{now.Sub(w.t0).Seconds(), rss})
			}
		}
		// The steady window starts at the first polled record: it leaves
		// out process start, migration and the group join.
		if consumed > 0 && w.tFirst.IsZero() {
			w.tFirst = now
			if profile {
				secs := max(2, int(n/200000))
				go func() {
					profCh <- fetchProfile(ctx, metricsURL, secs, filepath.Join(o.outDir, "ingest.cpu.pprof"))
				}()
			}
		}
		if written >= n {
			w.tDone = now
		}
	}
	return nil
}

// rates are the run's results for n events.
func (w *ingestWatch) rates(n, produceSecs, clientSecs float64) map[string]float64 {
	steady := w.tDone.Sub(w.tFirst).Seconds()
	wall := w.tDone.Sub(w.t0).Seconds()
	consumerRate := n / steady
	clientRate := n / clientSecs
	return map[string]float64{
		"produce_seconds":            produceSecs,
		"consumer_wall_seconds":      wall,
		"consumer_seconds":           steady,
		"consumer_events_per_s":      consumerRate,
		"consumer_wall_events_per_s": n / wall,
		"consumer_mb_per_s":          n * eventBytes / steady / 1e6,
		"client_seconds":             clientSecs,
		"client_rows_per_s":          clientRate,
		"ratio":                      consumerRate / clientRate,
		"ratio_wall":                 (n / wall) / clientRate,
		"consumer_max_rss_mib":       w.rssMax,
		// CPU from process start to the last row stored, per million
		// events; and how long after start the first row was stored.
		"consumer_cpu_seconds_per_million": w.cpuSeconds / n * 1e6,
		"consumer_first_row_seconds":       w.tFirstRow.Sub(w.t0).Seconds(),
	}
}

// produceFixed produces n fixed-size events and waits for them.
func produceFixed(ctx context.Context, cl *kgo.Client, topic string, n int) error {
	g, err := textgen.New(textgen.Options{Seed: 1, FixedSize: eventBytes})
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	for range n {
		ev, _ := g.Next(nil)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: ev}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	select {
	case err := <-errc:
		return fmt.Errorf("produce: %w", err)
	default:
	}
	return nil
}

// clientBaseline exports the consumer's rows as TSV, then times
// clickhouse-client inserting them into fresh tables of the same schema.
func clientBaseline(ctx context.Context, o options, srcDB, dstDB string) (float64, error) {
	path, err := exportRows(ctx, o, srcDB)
	if err != nil {
		return 0, err
	}
	defer func() { _ = os.Remove(path) }()
	if err := migrateDB(ctx, o, dstDB); err != nil {
		return 0, err
	}
	_ = exec.CommandContext(ctx, "sync").Run()
	time.Sleep(2 * time.Second)
	secs, _, err := clientInsert(ctx, o, path, dstDB)
	return secs, err
}

// exportRows writes the rows of srcDB.events as TSV to a temporary file
// and returns its path; the caller removes it.
func exportRows(ctx context.Context, o options, srcDB string) (string, error) {
	cols := strings.Join(schemas.InsertColumns(), ", ")
	f, err := os.CreateTemp("", "bench-rows-*.tsv")
	if err != nil {
		return "", err
	}
	export := exec.CommandContext(ctx, o.chClient, "--host", chHost(o), "--port", chPort(o), //nolint:gosec // Benchmark tool.
		"--query", fmt.Sprintf("SELECT %s FROM %s.events ORDER BY kafka_partition, kafka_offset FORMAT TabSeparated", cols, srcDB))
	export.Stdout = f
	if out, err := runCombined(export); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("export rows: %w: %s", err, out)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// migrateDB creates the consumer's tables in db.
func migrateDB(ctx context.Context, o options, db string) error {
	mig := exec.CommandContext(ctx, o.consumer, "migrate", "--clickhouse.addr", o.chAddr, //nolint:gosec // Benchmark binary.
		"--clickhouse.database", db, "--log.level", "warn")
	if out, err := mig.CombinedOutput(); err != nil {
		return fmt.Errorf("migrate baseline tables: %w: %s", err, out)
	}
	return nil
}

// clientInsert times clickhouse-client inserting the TSV rows at path into
// dstDB.events, checks that o.events rows arrived and returns the seconds
// with the client's process state (its CPU time and peak RSS).
func clientInsert(ctx context.Context, o options, path, dstDB string) (float64, *os.ProcessState, error) {
	cols := strings.Join(schemas.InsertColumns(), ", ")
	in, err := os.Open(path) //nolint:gosec // Temporary file written by exportRows.
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = in.Close() }()
	// The client uses the consumer's wire compression, so both send the
	// same bytes over the native protocol.
	compress := "0"
	if strings.Contains(o.extraArgs, "compression=lz4") || strings.Contains(o.extraArgs, "compression=zstd") {
		compress = "1"
	}
	ins := exec.CommandContext(ctx, o.chClient, "--host", chHost(o), "--port", chPort(o), "--compression", compress, //nolint:gosec // Benchmark tool.
		"--query", fmt.Sprintf("INSERT INTO %s.events (%s) FORMAT TabSeparated", dstDB, cols))
	ins.Stdin = bufio.NewReaderSize(in, 1<<20)
	start := time.Now()
	if out, err := ins.CombinedOutput(); err != nil {
		return 0, nil, fmt.Errorf("clickhouse-client insert: %w: %s", err, out)
	}
	secs := time.Since(start).Seconds()
	got, err := chQuery(o, fmt.Sprintf("SELECT count() FROM %s.events", dstDB))
	if err != nil {
		return 0, nil, err
	}
	if got != strconv.Itoa(o.events) {
		return 0, nil, fmt.Errorf("clickhouse-client inserted %s rows, want %d", got, o.events)
	}
	return secs, ins.ProcessState, nil
}

func runCombined(cmd *exec.Cmd) (string, error) {
	var sb strings.Builder
	cmd.Stderr = &sb
	err := cmd.Run()
	return sb.String(), err
}

func chHost(o options) string {
	h, _, _ := net.SplitHostPort(o.chAddr)
	return h
}

func chPort(o options) string {
	_, p, _ := net.SplitHostPort(o.chAddr)
	return p
}

func chQuery(o options, q string) (string, error) {
	out, err := exec.Command(o.chClient, "--host", chHost(o), "--port", chPort(o), "--query", q).Output() //nolint:gosec,noctx // Benchmark tool.
	if err != nil {
		return "", fmt.Errorf("query %q: %w", q, err)
	}
	return strings.TrimSpace(string(out)), nil
}

func chExec(o options, q string) error {
	_, err := chQuery(o, q)
	return err
}

func freePort(ctx context.Context) (int, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startConsumer starts the consumer binary with its output in a temporary
// log file. The returned stop kills it if it still runs, waits for it and
// removes the log.
func startConsumer(ctx context.Context, bin string, args []string) (*harness.Process, func(), error) {
	logFile, err := os.CreateTemp("", "bench-consumer-*.log")
	if err != nil {
		return nil, nil, err
	}
	logPath := logFile.Name()
	_ = logFile.Close()
	p, err := harness.Start(ctx, harness.Config{Path: bin, Args: args, LogFile: logPath})
	if err != nil {
		_ = os.Remove(logPath)
		return nil, nil, fmt.Errorf("start consumer: %w", err)
	}
	return p, func() {
		_ = p.Kill()
		_ = os.Remove(logPath)
	}, nil
}

// scrapeCounters reads counters from one scrape of a /metrics endpoint, in
// the order of names; a labelled counter is the sum of its series.
func scrapeCounters(ctx context.Context, base string, names ...string) ([]float64, error) {
	m, err := harness.Scrape(ctx, base+"/metrics")
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(names))
	found := 0
	for i, name := range names {
		if v, ok := m.Value(name, nil); ok {
			out[i] = v
			found++
		}
	}
	if found < len(names) {
		return nil, fmt.Errorf("metrics %v: %d of %d found", names, found, len(names))
	}
	return out, nil
}

func fetchProfile(ctx context.Context, base string, secs int, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile: HTTP %d", resp.StatusCode)
	}
	f, err := os.Create(path) //nolint:gosec // Path under the results directory.
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func pprofTop(binary, profile string) (string, error) {
	out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=25", binary, profile).Output() //nolint:gosec,noctx // Local tool.
	if err != nil {
		return "", err
	}
	return string(out), nil
}

// rssMiB reads the resident set size of a process from /proc.
func rssMiB(pid int) (float64, error) {
	return procStatusMiB(pid, "VmRSS:")
}

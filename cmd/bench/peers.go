package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/textpulse/textpulse/internal/harness"
	"github.com/textpulse/textpulse/schemas"
)

// clockTicks is the kernel's USER_HZ, the unit of utime and stime in
// /proc/<pid>/stat (100 on every Linux configuration the services run on).
const clockTicks = 100

// peerTool is one tool of the peers scenario: its key prefix in the runs,
// its label in the report and the key of its rate.
type peerTool struct {
	name, label, rate string
}

func peerTools() []peerTool {
	return []peerTool{
		{"textpulse", "textpulse (defaults)", "textpulse_events_per_s"},
		{"kafka_engine", "ClickHouse Kafka engine", "kafka_engine_events_per_s"},
		{"client", "clickhouse-client (TSV INSERT)", "client_rows_per_s"},
		{"sinker", "clickhouse_sinker", "sinker_events_per_s"},
	}
}

// peerColumns are the fields of the benchmark events that the Kafka engine
// and clickhouse_sinker store, all as String (18.16 parses neither the
// millisecond timestamps nor the nested metadata object of JSONEachRow).
func peerColumns() []string {
	return []string{"id", "text", "source", "author", "lang", "created_at"}
}

// runPeers measures textpulse against other ways of moving the same Kafka
// backlog into ClickHouse: each round produces one backlog that every tool
// drains with its own consumer group into its own database, one tool after
// the other, so the ratios of a round share the machine's state.
func runPeers(ctx context.Context, o options, stdout io.Writer) (*Result, error) {
	r := newResult("peers", "Peers: the same Kafka backlog of 300-byte JSON events drained into the legacy ClickHouse server "+
		"by textpulse, ClickHouse's Kafka engine and clickhouse-client, in interleaved rounds")
	r.Settings = map[string]any{
		"events": o.events, "event_bytes": eventBytes, "partitions": o.partitions, "rounds": o.repeat,
		"clickhouse":            o.chAddr,
		"textpulse":             "consumer defaults, full schema (" + strconv.Itoa(len(schemas.InsertColumns())) + " columns)",
		"kafka_engine":          fmt.Sprintf("Kafka table (JSONEachRow, kafka_num_consumers %d) and a materialized view into a MergeTree of the %d string fields", kafkaEngineConsumers, len(peerColumns())),
		"clickhouse_client":     "one INSERT ... FORMAT TabSeparated of textpulse's stored rows (full schema), --compression 0",
		"timing":                "from process start (Kafka engine: CREATE TABLE) to the last row stored; clickhouse-client: the INSERT alone",
		"server_cpu_and_memory": "the ClickHouse server's utime+stime and RSS over each tool's run, background merges included",
	}
	r.Notes = peersNotes(o)
	cl, adm, err := newProducer(o, kgo.MaxBufferedRecords(1<<20), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	srv, err := serverPid(o.chPidFile)
	if err != nil {
		r.Notes = append(r.Notes, "server CPU and memory not measured: "+err.Error())
	}
	for i := range o.repeat {
		_, _ = fmt.Fprintf(stdout, "peers round %d/%d: %d events\n", i+1, o.repeat, o.events)
		run, err := peersRound(ctx, o, cl, adm, srv, i)
		if err != nil {
			return nil, err
		}
		for _, t := range peerTools() {
			if v, ok := run[t.rate]; ok {
				_, _ = fmt.Fprintf(stdout, "  %s %.0f events/s\n", t.label, v)
			}
		}
		r.Runs = append(r.Runs, run)
	}
	r.summarize()
	return r, nil
}

func peersNotes(o options) []string {
	notes := []string{
		"the Kafka engine of 18.16 has no _partition or _offset columns, so its rows are verified by count(); " +
			"a new group of it starts at the log end, so its group's offsets are committed at 0 first; " +
			"it flushes a block every 65536 rows or stream_flush_interval_ms (7.5 s), which bounds its last block; " +
			"it runs one consumer, since with kafka_num_consumers 4 it stored a 1M backlog twice in one round " +
			"(its consumers rebalance while they join and re-read partitions not yet committed)",
		"server CPU is the server's utime+stime over a tool's run (merges during the run included); server RSS increase is " +
			"its peak over the run less its RSS at the start, and the server keeps memory an earlier run grew, so textpulse and " +
			"the Kafka engine alternate which runs first",
		"Redpanda Connect: not run (its connect module is not under an open-source licence and may not be used here)",
	}
	if o.sinkerBin == "" {
		notes = append(notes, "clickhouse_sinker: not run (its module is not served by the Go module proxy; pass --sinker-bin)")
	}
	return notes
}

// kafkaEngineConsumers is the Kafka engine's kafka_num_consumers. With 4
// (one per partition) 18.16 stored a 1M backlog twice in one round: its
// consumers rebalance while they join, and a partition handed over before
// its first commit is read again from offset 0.
const kafkaEngineConsumers = 1

// peersRound produces one backlog and drains it with every tool;
// clickhouse-client inserts the rows textpulse stored.
func peersRound(ctx context.Context, o options, cl *kgo.Client, adm *kadm.Client, srv, round int) (map[string]float64, error) {
	stamp := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic := "bench.peers." + stamp
	base := "bench_peers_" + stamp
	dbs := []string{base + "_tp", base + "_ke", base + "_client", base + "_sinker"}
	if _, err := adm.CreateTopic(ctx, int32(o.partitions), 1, nil, topic); err != nil { //nolint:gosec // Small flag value.
		return nil, fmt.Errorf("create topic: %w", err)
	}
	defer func() {
		_, _ = adm.DeleteTopics(context.WithoutCancel(ctx), topic, topic+".dlq")
		for _, db := range dbs {
			_ = chExec(o, "DROP DATABASE IF EXISTS "+db)
		}
	}()
	if err := produceFixed(ctx, cl, topic, o.events); err != nil {
		return nil, err
	}
	run := map[string]float64{}
	drains := []func() error{
		func() error { return wrapErr("textpulse", peersTextpulse(ctx, o, topic, stamp, dbs[0], srv, run)) },
		func() error {
			return wrapErr("kafka engine", peersKafkaEngine(ctx, o, adm, topic, stamp, dbs[1], srv, run))
		},
	}
	// Odd rounds run the Kafka engine first, so that neither tool always
	// finds the server warm (its allocator keeps what an earlier run grew).
	if round%2 == 1 {
		drains[0], drains[1] = drains[1], drains[0]
	}
	for _, drain := range drains {
		settle(ctx)
		if err := drain(); err != nil {
			return nil, err
		}
	}
	if err := peersClient(ctx, o, dbs[0], dbs[2], srv, run); err != nil {
		return nil, fmt.Errorf("clickhouse-client: %w", err)
	}
	if o.sinkerBin != "" {
		settle(ctx)
		if err := peersSinker(ctx, o, topic, stamp, dbs[3], srv, run); err != nil {
			return nil, fmt.Errorf("clickhouse_sinker: %w", err)
		}
	}
	peersRatios(run)
	return run, nil
}

func wrapErr(action string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", action, err)
	}
	return nil
}

// settle lets the page cache write back before the next measurement.
func settle(ctx context.Context) {
	_ = exec.CommandContext(ctx, "sync").Run()
	time.Sleep(2 * time.Second)
}

// peersTextpulse drains the topic with the consumer at its defaults.
func peersTextpulse(ctx context.Context, o options, topic, stamp, db string, srv int, run map[string]float64) error {
	port, err := freePort(ctx)
	if err != nil {
		return err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	sw := watchServer(srv)
	defer sw.close()
	w := &ingestWatch{t0: time.Now()}
	proc, stop, err := startConsumer(ctx, o.consumer, ingestArgs(o, stamp+"-tp", topic, db, port))
	if err != nil {
		return err
	}
	defer stop()
	if err := w.poll(ctx, o, proc, url, false, nil); err != nil {
		return err
	}
	sw.finish(run, "textpulse", o.events)
	rss := w.rssMax
	if hwm, err := procStatusMiB(proc.Pid(), "VmHWM:"); err == nil {
		rss = max(rss, hwm)
	}
	cpu := w.cpuSeconds
	if c, err := procCPUSeconds(proc.Pid()); err == nil {
		cpu = c
	}
	if m, err := harness.Scrape(ctx, url+"/metrics"); err == nil {
		if v, ok := m.Value("textpulse_sink_inserts_total", map[string]string{"outcome": "ok"}); ok {
			run["textpulse_inserts"] = v
		}
	}
	if err := proc.Signal(os.Interrupt); err != nil {
		return err
	}
	_ = proc.Wait()
	stored, err := chQuery(o, fmt.Sprintf("SELECT uniqExact(kafka_topic, kafka_partition, kafka_offset) FROM %s.events", db))
	if err != nil {
		return err
	}
	if stored != strconv.Itoa(o.events) {
		return fmt.Errorf("stored %s distinct events, want %d", stored, o.events)
	}
	return putTool(o, run, "textpulse", db, w.tDone.Sub(w.t0).Seconds(), cpu, rss)
}

// putTool records a tool's rate, CPU per million events, peak RSS (when
// rss > 0) and active parts of db.events.
func putTool(o options, run map[string]float64, tool, db string, secs, cpu, rss float64) error {
	n := float64(o.events)
	rate := tool + "_events_per_s"
	if tool == "client" {
		rate = "client_rows_per_s"
	}
	run[tool+"_seconds"] = secs
	run[rate] = n / secs
	if cpu > 0 {
		run[tool+"_cpu_seconds_per_million"] = cpu / n * 1e6
	}
	if rss > 0 {
		run[tool+"_max_rss_mib"] = rss
	}
	parts, err := chQuery(o, fmt.Sprintf("SELECT count() FROM system.parts WHERE database = '%s' AND table = 'events' AND active", db))
	if err != nil {
		return err
	}
	p, err := strconv.ParseFloat(parts, 64)
	if err != nil {
		return fmt.Errorf("parse parts %q: %w", parts, err)
	}
	run["parts_"+tool] = p
	return nil
}

// peerTable creates db and in it the MergeTree table events of
// peerColumns.
func peerTable(o options, db string) error {
	if err := chExec(o, "CREATE DATABASE IF NOT EXISTS "+db); err != nil {
		return err
	}
	return chExec(o, fmt.Sprintf("CREATE TABLE %s.events (%s) ENGINE = MergeTree() ORDER BY (source, id)", db, peerColumnDefs()))
}

func peerColumnDefs() string {
	defs := make([]string, 0, len(peerColumns()))
	for _, c := range peerColumns() {
		defs = append(defs, c+" String")
	}
	return strings.Join(defs, ", ")
}

// peersKafkaEngine drains the topic with the server's Kafka engine: a
// Kafka table and a materialized view into db.events.
func peersKafkaEngine(ctx context.Context, o options, adm *kadm.Client, topic, stamp, db string, srv int, run map[string]float64) error {
	group := "bench-" + stamp + "-kengine"
	var offs kadm.Offsets
	for p := range int32(o.partitions) { //nolint:gosec // Small flag value.
		offs.Add(kadm.Offset{Topic: topic, Partition: p, At: 0, LeaderEpoch: -1})
	}
	resp, err := adm.CommitOffsets(ctx, group, offs)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("commit start offsets: %w", err)
	}
	if err := peerTable(o, db); err != nil {
		return err
	}
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{o.chAddr}, DialTimeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("open clickhouse: %w", err)
	}
	defer func() { _ = conn.Close() }()
	sw := watchServer(srv)
	defer sw.close()
	t0 := time.Now()
	if err := chExec(o, kafkaTableDDL(o, db, topic, group)); err != nil {
		return err
	}
	if err := chExec(o, fmt.Sprintf("CREATE MATERIALIZED VIEW %s.consumer TO %s.events AS SELECT %s FROM %s.queue",
		db, db, strings.Join(peerColumns(), ", "), db)); err != nil {
		return err
	}
	err = waitCount(ctx, conn, db, o.events, 10*time.Minute)
	secs := time.Since(t0).Seconds()
	sw.finish(run, "kafka_engine", o.events)
	_ = chExec(o, "DROP TABLE IF EXISTS "+db+".consumer")
	_ = chExec(o, "DROP TABLE IF EXISTS "+db+".queue")
	if err != nil {
		return err
	}
	if err := checkCount(o, db); err != nil {
		return err
	}
	return putTool(o, run, "kafka_engine", db, secs, 0, 0)
}

// kafkaTableDDL is the Kafka table of the Kafka engine tool, in the
// settings spelling of 18.16.
func kafkaTableDDL(o options, db, topic, group string) string {
	return fmt.Sprintf("CREATE TABLE %s.queue (%s) ENGINE = Kafka SETTINGS kafka_broker_list = '%s', kafka_topic_list = '%s', "+
		"kafka_group_name = '%s', kafka_format = 'JSONEachRow', kafka_num_consumers = %d",
		db, peerColumnDefs(), o.brokers, topic, group, kafkaEngineConsumers)
}

// waitCount polls count() of db.events until it reaches n.
func waitCount(ctx context.Context, conn clickhouse.Conn, db string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	q := "SELECT count() FROM " + db + ".events"
	for {
		var got uint64
		if err := conn.QueryRow(ctx, q).Scan(&got); err != nil {
			return fmt.Errorf("count rows: %w", err)
		}
		if got >= uint64(n) { //nolint:gosec // Positive event count.
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d rows stored within %s", got, n, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// checkCount verifies that db.events holds exactly o.events rows.
func checkCount(o options, db string) error {
	got, err := chQuery(o, "SELECT count() FROM "+db+".events")
	if err != nil {
		return err
	}
	if got != strconv.Itoa(o.events) {
		return fmt.Errorf("stored %s rows, want %d", got, o.events)
	}
	return nil
}

// peersClient times clickhouse-client inserting textpulse's rows of srcDB
// into dstDB.
func peersClient(ctx context.Context, o options, srcDB, dstDB string, srv int, run map[string]float64) error {
	path, err := exportRows(ctx, o, srcDB)
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(path) }()
	if err := migrateDB(ctx, o, dstDB); err != nil {
		return err
	}
	settle(ctx)
	sw := watchServer(srv)
	defer sw.close()
	secs, state, err := clientInsert(ctx, o, path, dstDB)
	if err != nil {
		return err
	}
	sw.finish(run, "client", o.events)
	cpu := (state.UserTime() + state.SystemTime()).Seconds()
	var rss float64
	if ru, ok := state.SysUsage().(*syscall.Rusage); ok {
		rss = float64(ru.Maxrss) / 1024 // kB on Linux.
	}
	return putTool(o, run, "client", dstDB, secs, cpu, rss)
}

// peersRatios adds the rate of every tool over textpulse's and
// clickhouse-client's in the same round: <tool>_x_textpulse and
// <tool>_x_client.
func peersRatios(run map[string]float64) {
	tools := peerTools()
	for _, t := range tools {
		v, ok := run[t.rate]
		if !ok {
			continue
		}
		for _, ref := range []peerTool{tools[0], tools[2]} {
			if rv := run[ref.rate]; ref.name != t.name && rv > 0 {
				run[t.name+"_x_"+ref.name] = v / rv
			}
		}
	}
}

// peersSinker drains the topic with a clickhouse_sinker binary (optional:
// --sinker-bin) into db.events.
func peersSinker(ctx context.Context, o options, topic, stamp, db string, srv int, run map[string]float64) error {
	if err := peerTable(o, db); err != nil {
		return err
	}
	cfg, err := sinkerConfig(o, topic, "bench-"+stamp+"-sinker", db)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bench-sinker-*")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	cfgPath := dir + "/cfg.json"
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return fmt.Errorf("write sinker config: %w", err)
	}
	port, err := freePort(ctx)
	if err != nil {
		return err
	}
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{o.chAddr}, DialTimeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("open clickhouse: %w", err)
	}
	defer func() { _ = conn.Close() }()
	sw := watchServer(srv)
	defer sw.close()
	t0 := time.Now()
	p, stop, err := startConsumer(ctx, o.sinkerBin, []string{"--local-cfg-file", cfgPath, "--http-port", strconv.Itoa(port)})
	if err != nil {
		return err
	}
	defer stop()
	err = waitCount(ctx, conn, db, o.events, 10*time.Minute)
	secs := time.Since(t0).Seconds()
	sw.finish(run, "sinker", o.events)
	rss, _ := procStatusMiB(p.Pid(), "VmHWM:")
	cpu, _ := procCPUSeconds(p.Pid())
	_ = p.Signal(os.Interrupt)
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
	}
	if err != nil {
		return err
	}
	if err := checkCount(o, db); err != nil {
		return err
	}
	return putTool(o, run, "sinker", db, secs, cpu, rss)
}

// serverWatch follows the ClickHouse server's CPU time and RSS over one
// tool's run; with pid 0 it records nothing.
type serverWatch struct {
	pid        int
	cpu0, rss0 float64
	mu         sync.Mutex
	rssMax     float64
	stop, done chan struct{}
	once       sync.Once
}

func watchServer(pid int) *serverWatch {
	w := &serverWatch{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	if pid == 0 {
		close(w.done)
		return w
	}
	w.cpu0, _ = procCPUSeconds(pid)
	w.rss0, _ = procStatusMiB(pid, "VmRSS:")
	w.rssMax = w.rss0
	go func() {
		defer close(w.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				if rss, err := procStatusMiB(pid, "VmRSS:"); err == nil {
					w.mu.Lock()
					w.rssMax = max(w.rssMax, rss)
					w.mu.Unlock()
				}
			}
		}
	}()
	return w
}

// finish stops the watch and records the server's CPU seconds per million
// of n events and its RSS increase under the tool's name.
func (w *serverWatch) finish(run map[string]float64, tool string, n int) {
	w.close()
	if w.pid == 0 {
		return
	}
	cpu, err := procCPUSeconds(w.pid)
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	run["server_cpu_seconds_per_million_"+tool] = (cpu - w.cpu0) / float64(n) * 1e6
	run["server_rss_increase_mib_"+tool] = w.rssMax - w.rss0
}

// close stops the sampling; it may be called many times.
func (w *serverWatch) close() {
	w.once.Do(func() { close(w.stop) })
	<-w.done
}

// serverPid reads the ClickHouse server's pid from its pid file and checks
// that the process runs.
func serverPid(path string) (int, error) {
	if path == "" {
		return 0, errors.New("no --clickhouse-pid-file")
	}
	b, err := os.ReadFile(path) //nolint:gosec // Pid file named by a flag.
	if err != nil {
		return 0, fmt.Errorf("read server pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("parse server pid %q: %w", b, err)
	}
	if _, err := procCPUSeconds(pid); err != nil {
		return 0, err
	}
	return pid, nil
}

// procCPUSeconds is a process's user and system CPU time.
func procCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)) //nolint:gosec // A pid, not a path from input.
	if err != nil {
		return 0, fmt.Errorf("read process stat: %w", err)
	}
	ticks, err := parseStatCPU(string(b))
	if err != nil {
		return 0, err
	}
	return float64(ticks) / clockTicks, nil
}

// parseStatCPU returns utime+stime (fields 14 and 15) of a /proc/<pid>/stat
// line; the command name (field 2) may hold spaces and parentheses, so the
// fields are counted after its last ')'.
func parseStatCPU(stat string) (int64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("parse process stat: no command name")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state), so utime and stime are f[11] and f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("parse process stat: %d fields after the command name", len(f))
	}
	var sum int64
	for _, s := range f[11:13] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse process stat: %w", err)
		}
		sum += v
	}
	return sum, nil
}

// procStatusMiB reads a kB field such as "VmHWM:" of /proc/<pid>/status in
// MiB.
func procStatusMiB(pid int, field string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)) //nolint:gosec // A pid, not a path from input.
	if err != nil {
		return 0, fmt.Errorf("read process status: %w", err)
	}
	return parseStatusMiB(string(b), field)
}

func parseStatusMiB(status, field string) (float64, error) {
	for _, line := range strings.Split(status, "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0, fmt.Errorf("parse %s: %w", field, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("parse process status: no %s line", field)
}

// sinkerConfig is clickhouse_sinker's local configuration for draining
// topic into db.events with explicit string dims.
func sinkerConfig(o options, topic, group, db string) ([]byte, error) {
	dims := make([]map[string]string, 0, len(peerColumns()))
	for _, c := range peerColumns() {
		dims = append(dims, map[string]string{"name": c, "type": "String"})
	}
	cfg := map[string]any{
		"clickhouse": map[string]any{"hosts": [][]string{{chHost(o)}}, "port": chPortNum(o), "db": db},
		"kafka":      map[string]any{"brokers": o.brokers},
		"task": map[string]any{
			"name": "bench_peers", "topic": topic, "consumerGroup": group, "earliest": true,
			"parser": "fastjson", "tableName": "events", "dims": dims,
			"bufferSize": 100000, "flushInterval": 1,
			// 3.2.1 on 18.16 needs a sharding key, or it reads a column
			// of system.tables that 18.16 lacks.
			"shardingKey": "id",
		},
		"logLevel": "warn",
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode sinker config: %w", err)
	}
	return b, nil
}

func chPortNum(o options) int {
	p, _ := strconv.Atoi(chPort(o))
	return p
}

// peersTable renders the peers result as one row per tool that ran:
// rate, ratios of the same rounds, peak RSS, CPU and parts.
func peersTable(r *Result) string {
	var b strings.Builder
	b.WriteString("\n| tool | events/s median (min–max) | ×textpulse | ×clickhouse-client | peak RSS | tool CPU-s per 1M | server CPU-s per 1M | parts |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, t := range peerTools() {
		s, ok := r.Summary[t.rate]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s (%s–%s) | %s | %s | %s | %s | %s | %s |\n", t.label, num(s.Median), num(s.Min), num(s.Max),
			ratioCell(r, t.name, "textpulse"), ratioCell(r, t.name, "client"), rssCell(r, t.name),
			medianCell(r, t.name+"_cpu_seconds_per_million", cpuMissing(t.name)), medianCell(r, "server_cpu_seconds_per_million_"+t.name, "–"),
			partsCell(r, t.name))
	}
	return b.String()
}

func ratioCell(r *Result, tool, ref string) string {
	if tool == ref {
		return "1"
	}
	if s, ok := r.Summary[tool+"_x_"+ref]; ok {
		return fmt.Sprintf("%.2f", s.Median)
	}
	return "–"
}

func rssCell(r *Result, tool string) string {
	if s, ok := r.Summary[tool+"_max_rss_mib"]; ok {
		return fmt.Sprintf("%.0f MiB", s.Median)
	}
	if s, ok := r.Summary["server_rss_increase_mib_"+tool]; ok {
		return fmt.Sprintf("server +%.0f MiB", s.Median)
	}
	return "–"
}

func partsCell(r *Result, tool string) string {
	if s, ok := r.Summary["parts_"+tool]; ok {
		return fmt.Sprintf("%.0f", s.Median)
	}
	return "–"
}

// cpuMissing is the tool CPU cell of a tool without its own process.
func cpuMissing(tool string) string {
	if tool == "kafka_engine" {
		return "in the server"
	}
	return "–"
}

func medianCell(r *Result, key, missing string) string {
	if s, ok := r.Summary[key]; ok {
		return num(s.Median)
	}
	return missing
}

// peersPlot draws the median rate of every tool that ran.
func peersPlot(outDir string, r *Result) (string, error) {
	var labels []string
	var values []float64
	for _, t := range peerTools() {
		if s, ok := r.Summary[t.rate]; ok {
			labels = append(labels, strings.Fields(t.label)[0])
			values = append(values, s.Median)
		}
	}
	if len(values) == 0 {
		return "", nil
	}
	return plotBars(outDir, "peers_rates.png", "Kafka backlog to ClickHouse 18.16, median of the rounds", "events per second", labels, values)
}

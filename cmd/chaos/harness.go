package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	process "github.com/textpulse/textpulse/internal/harness"
	"github.com/textpulse/textpulse/internal/openaisim"
	"github.com/textpulse/textpulse/processor/deadletter"
)

// malformedValues are the malformed events produced, in turn.
var malformedValues = [...]string{ //nolint:gochecknoglobals // Constant table.
	`not json at all`, `{"id":"m","text":5}`, `{"id":"m"}`, "{\"text\":\"bad \xff bytes\"}", `{"text":""}`,
}

// harness is one chaos run: its topic, group, database, simulator and
// consumer processes.
type harness struct {
	o        options
	log      *slog.Logger
	topic    string
	dlq      string
	group    string
	db       string
	logDir   string
	keepLogs bool

	cl  *kgo.Client
	adm *kadm.Client
	ch  driver.Conn
	sim *openaisim.Server
	srv *http.Server
	url string

	mu      sync.Mutex
	members []*member
	nextID  int
	faults  map[string]int
	touched bool

	prod *produced
}

// member is one consumer process.
type member struct {
	id   int
	proc *process.Process
}

func randomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func newHarness(ctx context.Context, o options, log *slog.Logger) (*harness, error) {
	if _, err := os.Stat(o.consumer); err != nil {
		return nil, fmt.Errorf("consumer binary: %w (run make build)", err)
	}
	sfx := randomSuffix()
	h := &harness{o: o, log: log, topic: "chaos_" + sfx, group: "chaos_" + sfx, db: "chaos_" + sfx, keepLogs: o.keepLogs,
		faults: map[string]int{}, prod: newProduced(o.partitions)}
	h.dlq = h.topic + ".dlq"
	var err error
	if h.logDir, err = os.MkdirTemp("", "textpulse-chaos-"); err != nil {
		return nil, err
	}
	if h.cl, err = kgo.NewClient(kgo.SeedBrokers(o.brokers), kgo.ProducerLinger(5*time.Millisecond),
		kgo.RequiredAcks(kgo.AllISRAcks())); err != nil {
		return nil, fmt.Errorf("create kafka client: %w", err)
	}
	h.adm = kadm.NewClient(h.cl)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for t, p := range map[string]int32{h.topic: o.partitions, h.dlq: 1} {
		resp, err := h.adm.CreateTopic(cctx, p, 1, nil, t)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			h.close()
			return nil, fmt.Errorf("create topic %s: %w", t, err)
		}
	}
	if h.ch, err = clickhouse.Open(&clickhouse.Options{Addr: []string{o.clickhouse}, DialTimeout: 3 * time.Second}); err != nil {
		h.close()
		return nil, fmt.Errorf("open clickhouse: %w", err)
	}

	cfg := openaisim.DefaultConfig()
	faults := openaisim.Faults{ServerError: 0.03, Timeout: 0.01, Truncated: 0.01, InvalidJSON: 0.02,
		WrongCount: 0.01, BadValues: 0.01, Storm: 0.003}
	cfg.Embeddings.Faults, cfg.Chat.Faults = faults, faults
	cfg.StormDuration = time.Second
	cfg.MaxHang = 5 * time.Second
	cfg.Seed = 11
	if h.sim, err = openaisim.New(cfg, log.With("component", "openaisim")); err != nil {
		h.close()
		return nil, err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		h.close()
		return nil, err
	}
	h.url = "http://" + ln.Addr().String() + "/v1"
	h.srv = &http.Server{Handler: h.sim.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = h.srv.Serve(ln) }()
	return h, nil
}

// close stops the consumers and the simulator, starts any service that a
// fault left stopped, and drops the run's topics and database.
func (h *harness) close() {
	h.mu.Lock()
	members := h.members
	h.members = nil
	h.mu.Unlock()
	for _, m := range members {
		_ = m.proc.Kill()
	}
	if h.touched {
		h.ensureServices()
	}
	if h.srv != nil {
		_ = h.srv.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if h.ch != nil {
		_ = h.ch.Exec(ctx, "DROP DATABASE IF EXISTS "+h.db)
		_ = h.ch.Close()
	}
	if h.adm != nil {
		_, _ = h.adm.DeleteTopics(ctx, h.topic, h.dlq)
		_, _ = h.adm.DeleteGroup(ctx, h.group)
	}
	if h.cl != nil {
		h.cl.Close()
	}
	if h.keepLogs {
		fmt.Fprintln(os.Stderr, "consumer logs kept in", h.logDir)
	} else {
		_ = os.RemoveAll(h.logDir) //nolint:gosec // A directory made by os.MkdirTemp.
	}
}

// ensureServices starts Kafka and ClickHouse if they are not running; the
// script's start waits until the service answers.
func (h *harness) ensureServices() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, svc := range []string{"kafka", h.o.chService} {
		if out, err := exec.CommandContext(ctx, h.o.script, "start", svc).CombinedOutput(); err != nil { //nolint:gosec // Script named by the operator.
			h.log.Error("start service", "service", svc, "err", err, "output", string(out))
		}
	}
}

func (h *harness) service(ctx context.Context, action, svc string) error {
	h.mu.Lock()
	h.touched = true
	h.mu.Unlock()
	out, err := exec.CommandContext(ctx, h.o.script, action, svc).CombinedOutput() //nolint:gosec // Script named by the operator.
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", action, svc, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (h *harness) consumerArgs(id int) []string {
	args := []string{"run",
		"--kafka.brokers", h.o.brokers, "--kafka.topics", h.topic, "--kafka.group", h.group,
		"--kafka.client_id", "chaos-" + strconv.Itoa(id), "--kafka.dead_letter_topic", h.dlq,
		"--kafka.session_timeout", "10s", "--kafka.rebalance_timeout", "20s", "--kafka.lag_interval", "0",
		"--clickhouse.addr", h.o.clickhouse, "--clickhouse.database", h.db, "--clickhouse.retry_max", "1s",
		"--batch.max_records", "500", "--batch.max_wait", "200ms", "--batch.drain_timeout", "10s",
		"--http.listen", "", "--log.format", "text", "--log.level", "info",
		"--stages.embedding.dimensions", "8", "--stages.sentiment.items_per_request", "16",
	}
	for _, stage := range []string{"embedding", "sentiment"} {
		p := "--stages." + stage + "."
		args = append(args, p+"enabled", p+"base_url", h.url, p+"api_key", "chaos", p+"on_failure", "retry",
			p+"timeout", "2s", p+"retry_initial_interval", "20ms", p+"retry_max_interval", "500ms", p+"max_attempts", "5")
	}
	return args
}

// startMember starts one more consumer process; it is killed if ctx ends
// first.
func (h *harness) startMember(ctx context.Context) error {
	m, err := h.spawn(ctx, nil)
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.members = append(h.members, m)
	h.mu.Unlock()
	return nil
}

// spawn starts a consumer process with extra environment variables, its
// output in the run's log directory.
func (h *harness) spawn(ctx context.Context, env []string) (*member, error) {
	h.mu.Lock()
	h.nextID++
	id := h.nextID
	h.mu.Unlock()
	p, err := process.Start(ctx, process.Config{Path: h.o.consumer, Args: h.consumerArgs(id), Env: env,
		LogFile: filepath.Join(h.logDir, fmt.Sprintf("consumer-%d.log", id))})
	if err != nil {
		return nil, fmt.Errorf("start consumer: %w", err)
	}
	h.log.Info("consumer started", "member", id)
	return &member{id: id, proc: p}, nil
}

// hookKill starts a member that SIGKILLs itself right after its nth stored
// batch, before committing it (the consumer's TEXTPULSE_TEST_KILL_AFTER_STORE
// hook), and waits for it to die. It reports whether the hook fired; a
// member still alive after limit is killed from outside instead.
func (h *harness) hookKill(ctx context.Context, n int, limit time.Duration) (bool, error) {
	m, err := h.spawn(ctx, []string{"TEXTPULSE_TEST_KILL_AFTER_STORE=" + strconv.Itoa(n)})
	if err != nil {
		return false, err
	}
	select {
	case <-m.proc.Done():
		err := m.proc.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
				h.log.Info("consumer killed itself after a stored, uncommitted batch", "member", m.id, "batch", n)
				return true, nil
			}
		}
		return false, fmt.Errorf("member %d with the kill hook exited: %w", m.id, err)
	case <-time.After(limit):
		_ = m.proc.Kill()
		h.log.Info("consumer with the kill hook killed from outside", "member", m.id, "exit", m.proc.Wait())
		return false, nil
	case <-ctx.Done():
		_ = m.proc.Kill()
		h.log.Info("consumer with the kill hook killed", "member", m.id, "exit", m.proc.Wait())
		return false, ctx.Err()
	}
}

// takeMember removes the oldest member from the set.
func (h *harness) takeMember() *member {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.members) == 0 {
		return nil
	}
	m := h.members[0]
	h.members = h.members[1:]
	return m
}

// killMember SIGKILLs the oldest member.
func (h *harness) killMember() error {
	m := h.takeMember()
	if m == nil {
		return errors.New("no member to kill")
	}
	_ = m.proc.Kill()
	h.log.Info("consumer killed", "member", m.id)
	return nil
}

// stopMember stops the oldest member gracefully: it drains and leaves.
func (h *harness) stopMember() error {
	m := h.takeMember()
	if m == nil {
		return errors.New("no member to stop")
	}
	err := m.proc.Stop(45 * time.Second)
	if err != nil {
		err = fmt.Errorf("member %d: %w", m.id, err)
	}
	h.log.Info("consumer stopped", "member", m.id, "err", err)
	return err
}

func (h *harness) memberCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.members)
}

// produced remembers every acknowledged event by its coordinates.
type produced struct {
	mu sync.Mutex
	// kinds[p][o] is 0 when unknown, 1 for a valid event, 2 for a
	// malformed one.
	kinds [][]uint8
	valid int
	bad   int
}

func newProduced(partitions int32) *produced {
	return &produced{kinds: make([][]uint8, partitions)}
}

func (p *produced) add(part int32, off int64, valid bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ks := p.kinds[part]
	for int64(len(ks)) <= off {
		ks = append(ks, 0)
	}
	k := uint8(2)
	if valid {
		k = 1
		p.valid++
	} else {
		p.bad++
	}
	ks[off] = k
	p.kinds[part] = ks
}

// validBelow returns, for partition part, how far the offsets are known
// without a gap (at most limit), and how many valid events lie below that.
func (p *produced) validBelow(part int32, limit int64) (known int64, valid uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ks := p.kinds[part]
	for o := int64(0); o < limit && o < int64(len(ks)); o++ {
		if ks[o] == 0 {
			return o, valid
		}
		if ks[o] == 1 {
			valid++
		}
		known = o + 1
	}
	return known, valid
}

func (p *produced) counts() (valid, bad int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.valid, p.bad
}

// produce sends o.events events at o.rate per second, every malformed
// share-th one malformed, and records each acknowledged one.
func (h *harness) produce(ctx context.Context) error {
	const tick = 100 * time.Millisecond
	start := time.Now()
	sent := 0
	every := 0
	if h.o.malformedShare > 0 {
		every = int(math.Round(1 / h.o.malformedShare))
	}
	for sent < h.o.events {
		due := min(h.o.events, int(time.Since(start).Seconds()*float64(h.o.rate))+1)
		if due <= sent {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(tick):
			}
			continue
		}
		recs := make([]*kgo.Record, 0, due-sent)
		// ProduceSync returns results in completion order, not in the
		// order of recs.
		valid := make(map[*kgo.Record]bool, due-sent)
		for i := sent; i < due; i++ {
			key := []byte("c-" + strconv.Itoa(i))
			if every > 0 && i%every == every-1 {
				recs = append(recs, &kgo.Record{Topic: h.topic, Key: key, Value: []byte(malformedValues[(i/every)%len(malformedValues)])})
				continue
			}
			recs = append(recs, &kgo.Record{Topic: h.topic, Key: key, Value: fmt.Appendf(nil,
				`{"id":"c-%d","text":"chaos event %d: the service was %s today, says user %d","source":"chaos","created_at":%d}`,
				i, i, [...]string{"great", "slow", "fine", "terrible", "okay"}[i%5], i%101, time.Now().Unix())})
			valid[recs[len(recs)-1]] = true
		}
		// ProduceSync retries through a broker restart until every record
		// is acknowledged or ctx ends.
		for _, r := range h.cl.ProduceSync(ctx, recs...) {
			if r.Err != nil {
				return fmt.Errorf("produce: %w", r.Err)
			}
			h.prod.add(r.Record.Partition, r.Record.Offset, valid[r.Record])
		}
		sent = due
	}
	return nil
}

// committed returns the group's committed offsets and the topic's end
// offsets.
func (h *harness) committed(ctx context.Context) (committed, ends map[int32]int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := h.adm.FetchOffsets(ctx, h.group)
	if err != nil {
		return nil, nil, err
	}
	committed = map[int32]int64{}
	for p, o := range resp[h.topic] {
		if o.Err == nil && o.At >= 0 {
			committed[p] = o.At
		}
	}
	le, err := h.adm.ListEndOffsets(ctx, h.topic)
	if err != nil {
		return nil, nil, err
	}
	ends = map[int32]int64{}
	le.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
	return committed, ends, nil
}

// storedBelow returns per partition the distinct stored offsets below
// limit.
func (h *harness) storedBelow(ctx context.Context, limit map[int32]int64) (map[int32]uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var conds []string
	for p, l := range limit {
		conds = append(conds, fmt.Sprintf("(kafka_partition = %d AND kafka_offset < %d)", p, l))
	}
	out := map[int32]uint64{}
	if len(conds) == 0 {
		return out, nil
	}
	q := fmt.Sprintf("SELECT kafka_partition, uniqExact(kafka_offset) FROM %s.events WHERE kafka_topic = ? AND (%s) GROUP BY kafka_partition",
		h.db, strings.Join(conds, " OR "))
	rows, err := h.ch.Query(ctx, q, h.topic)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var p uint32
		var n uint64
		if err := rows.Scan(&p, &n); err != nil {
			return nil, err
		}
		out[int32(p)] = n //nolint:gosec // Partition numbers are small.
	}
	return out, rows.Err()
}

// dlqInfo is what the dead-letter topic holds for the run's topic.
type dlqInfo struct {
	records int
	coords  map[[2]int64]int
	classes map[string]int
}

func (h *harness) readDLQ(ctx context.Context) (*dlqInfo, error) {
	out := &dlqInfo{coords: map[[2]int64]int{}, classes: map[string]int{}}
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var want int64
	err := deadletter.Scan(rctx, []kgo.Opt{kgo.SeedBrokers(h.o.brokers)}, h.dlq, func(n int64) { want = n }, func(l deadletter.Letter) bool {
		out.records++
		if l.Err != nil || l.Info.Topic != h.topic {
			out.classes["(bad headers)"]++
			return true
		}
		out.coords[[2]int64{int64(l.Info.Partition), l.Info.Offset}]++
		out.classes[string(l.Info.Class)]++
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %d of %d: %w", h.dlq, out.records, want, err)
	}
	return out, nil
}

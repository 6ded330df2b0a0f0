package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/textpulse/textpulse/schemas"
)

// members is the size of the group between faults.
const members = 3

// result is what a run found.
type result struct {
	mode                  string
	elapsed               time.Duration
	faults                []faultRecord
	apiFaults             map[string]int64
	api429                int64
	valid, malformed      int
	stored, distinct      uint64
	final                 uint64
	rollup                uint64
	server                string
	exact                 bool
	lost, unexpected      int
	dlqRecords            int
	dlqMissing            int
	dlqValid              int
	dlqClasses            map[string]int
	checks, aheadCount    int
	aheadFirst            string
	maxLag                int64
	committedBehind       int
	produceErr, settleErr error
}

// faultRecord is one injected fault and how long the group took to catch
// up with what was produced when it ended.
type faultRecord struct {
	kind     string
	at       time.Duration
	took     time.Duration
	recovery time.Duration
	err      error
}

func (r *result) problems() []string {
	var p []string
	if r.lost > 0 {
		p = append(p, fmt.Sprintf("%d valid events lost", r.lost))
	}
	if r.unexpected > 0 {
		p = append(p, fmt.Sprintf("%d rows that are not valid events", r.unexpected))
	}
	if r.final != r.distinct {
		p = append(p, fmt.Sprintf("%d rows under FINAL for %d distinct events", r.final, r.distinct))
	}
	if r.exact && r.stored != r.distinct {
		p = append(p, fmt.Sprintf("%d rows before FINAL for %d distinct events on a server that stores rows exactly once", r.stored, r.distinct))
	}
	if r.exact && r.rollup != r.distinct {
		p = append(p, fmt.Sprintf("the per-minute rollup counts %d events for %d distinct rows", r.rollup, r.distinct))
	}
	if r.dlqMissing > 0 {
		p = append(p, fmt.Sprintf("%d malformed events missing from the dead-letter topic", r.dlqMissing))
	}
	if r.aheadCount > 0 {
		p = append(p, fmt.Sprintf("commit ahead of stored rows %d times, first: %s", r.aheadCount, r.aheadFirst))
	}
	if r.committedBehind > 0 {
		p = append(p, fmt.Sprintf("%d partitions not committed to their end", r.committedBehind))
	}
	for _, err := range []error{r.produceErr, r.settleErr} {
		if err != nil {
			p = append(p, err.Error())
		}
	}
	for _, f := range r.faults {
		if f.err != nil {
			p = append(p, fmt.Sprintf("fault %s: %v", f.kind, f.err))
		}
	}
	return p
}

func (r *result) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, args ...any) { _, _ = fmt.Fprintf(tw, format, args...) }
	guarantee := "at least once: duplicates reported, collapsed under FINAL"
	if r.exact {
		guarantee = "exactly once: no duplicate before FINAL, exact rollup"
	}
	_, _ = fmt.Fprintf(w, "chaos run (%s) on ClickHouse %s (%s), %s\n\n", r.mode, r.server, guarantee, r.elapsed.Round(time.Second))
	p("fault\tat\ttook\trecovery\t\n")
	for _, f := range r.faults {
		rec := "-"
		if f.recovery > 0 {
			rec = f.recovery.Round(100 * time.Millisecond).String()
		}
		status := ""
		if f.err != nil {
			status = "  ERROR: " + f.err.Error()
		}
		p("%s\t%s\t%s\t%s\t%s\n", f.kind, f.at.Round(time.Second), f.took.Round(100*time.Millisecond), rec, status)
	}
	keys := make([]string, 0, len(r.apiFaults))
	for k := range r.apiFaults {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var api []string
	for _, k := range keys {
		api = append(api, fmt.Sprintf("%s=%d", k, r.apiFaults[k]))
	}
	_ = tw.Flush()
	_, _ = fmt.Fprintf(w, "api faults: %s; 429 answers: %d\n\n", strings.Join(api, " "), r.api429)
	p("events produced\t%d valid + %d malformed\t\n", r.valid, r.malformed)
	p("rows stored (before FINAL)\t%d\t\n", r.stored)
	p("distinct events stored\t%d\t\n", r.distinct)
	p("duplicates before FINAL\t%d\t\n", r.stored-min(r.stored, r.distinct))
	p("duplicates after FINAL\t%d\t\n", r.final-min(r.final, r.distinct))
	p("per-minute rollup total\t%d (error %+d)\t\n", r.rollup, int64(r.rollup)-int64(r.distinct)) //nolint:gosec // Counts fit.
	p("valid events lost\t%d\t\n", r.lost)
	p("rows that are not valid events\t%d\t\n", r.unexpected)
	p("dead letters (records)\t%d\t\n", r.dlqRecords)
	p("malformed missing from DLQ\t%d\t\n", r.dlqMissing)
	p("valid events dead-lettered\t%d\t\n", r.dlqValid)
	p("commit-vs-rows checks\t%d (%d ahead)\t\n", r.checks, r.aheadCount)
	p("max lag (records)\t%d\t\n", r.maxLag)
	_ = tw.Flush()
}

// watcher polls committed offsets against stored rows, and the lag.
type watcher struct {
	mu         sync.Mutex
	checks     int
	ahead      int
	aheadFirst string
	maxLag     int64
}

func (h *harness) watch(ctx context.Context, w *watcher) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
		committed, ends, err := h.committed(ctx)
		if err != nil {
			continue
		}
		var lag int64
		for p, e := range ends {
			lag += e - committed[p]
		}
		limit := map[int32]int64{}
		want := map[int32]uint64{}
		for p, c := range committed {
			known, valid := h.prod.validBelow(p, c)
			limit[p], want[p] = known, valid
		}
		// Rows only grow: reading the commits first makes the check sound
		// while the consumers run.
		stored, err := h.storedBelow(ctx, limit)
		w.mu.Lock()
		w.maxLag = max(w.maxLag, lag)
		if err == nil {
			w.checks++
			for p, n := range want {
				if stored[p] < n {
					w.ahead++
					if w.aheadFirst == "" {
						w.aheadFirst = fmt.Sprintf("partition %d committed at %d with %d of %d valid rows below stored", p, committed[p], stored[p], n)
					}
				}
			}
		}
		w.mu.Unlock()
	}
}

// caughtUp waits until the committed offsets reach ends on every
// partition, and returns how long it took.
func (h *harness) caughtUp(ctx context.Context, ends map[int32]int64, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	for time.Since(start) < limit {
		committed, _, err := h.committed(ctx)
		if err == nil {
			done := true
			for p, e := range ends {
				if committed[p] < e {
					done = false
				}
			}
			if done {
				return time.Since(start), nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("not caught up after %s", limit)
}

// step is one scheduled fault.
type step struct {
	at   float64 // share of the production time
	kind string
	do   func(context.Context) error
}

func (h *harness) schedule() []step {
	kill := func(ctx context.Context) error {
		if err := h.killMember(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
		return h.startMember(ctx)
	}
	steps := []step{
		{0.25, "member added", func(ctx context.Context) error { return h.startMember(ctx) }},
		{0.70, "member removed", func(context.Context) error { return h.stopMember() }},
	}
	if h.o.serviceFaults {
		steps = append(steps,
			step{0.30, "broker restart", func(ctx context.Context) error { return h.service(ctx, "restart", "kafka") }},
			step{0.50, "clickhouse down " + h.o.clickhouseDown.String(), func(ctx context.Context) error {
				stopErr := h.service(ctx, "stop", h.o.chService)
				select {
				case <-ctx.Done():
				case <-time.After(h.o.clickhouseDown):
				}
				// Start it whatever stop said: it may have stopped it.
				return errors.Join(stopErr, h.service(context.WithoutCancel(ctx), "start", h.o.chService))
			}})
	}
	for i := range h.o.kills {
		steps = append(steps, step{float64(i+1) / float64(h.o.kills+1), "consumer SIGKILL", kill})
	}
	for i := range h.o.hookKills {
		n := 1 + i%3 // after the 1st, 2nd or 3rd stored batch
		steps = append(steps, step{(float64(i) + 0.6) / float64(h.o.hookKills+1), "SIGKILL after insert, before commit",
			func(ctx context.Context) error {
				fired, err := h.hookKill(ctx, n, 60*time.Second)
				if err == nil && !fired {
					err = errors.New("the member stored no batch within 60s")
				}
				return err
			}})
	}
	if h.o.mode == "long" {
		steps = append(steps,
			step{0.80, "member added", func(ctx context.Context) error { return h.startMember(ctx) }},
			step{0.90, "member removed", func(context.Context) error { return h.stopMember() }},
		)
		if h.o.serviceFaults {
			steps = append(steps, step{0.85, "broker restart", func(ctx context.Context) error { return h.service(ctx, "restart", "kafka") }})
		}
	}
	slices.SortStableFunc(steps, func(a, b step) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		}
		return 0
	})
	return steps
}

func (h *harness) run(ctx context.Context) (*result, error) {
	start := time.Now()
	res := &result{mode: h.o.mode}
	for range members {
		if err := h.startMember(ctx); err != nil {
			return nil, err
		}
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	w := &watcher{}
	go h.watch(wctx, w)

	prodDone := make(chan error, 1)
	go func() { prodDone <- h.produce(ctx) }()
	production := time.Duration(float64(h.o.events) / float64(h.o.rate) * float64(time.Second))

	var recMu sync.Mutex
	var recWG sync.WaitGroup
	for _, s := range h.schedule() {
		at := time.Duration(s.at * float64(production))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Until(start.Add(at))):
		}
		h.log.Info("injecting fault", "fault", s.kind)
		t0 := time.Now()
		err := s.do(ctx)
		f := faultRecord{kind: s.kind, at: t0.Sub(start), took: time.Since(t0), err: err}
		idx := len(res.faults)
		res.faults = append(res.faults, f)
		if _, ends, cerr := h.committed(ctx); cerr == nil && err == nil {
			recWG.Go(func() {
				d, err := h.caughtUp(ctx, ends, h.o.settle)
				recMu.Lock()
				defer recMu.Unlock()
				res.faults[idx].recovery = d
				if err != nil {
					res.faults[idx].err = fmt.Errorf("recovery: %w", err)
				}
			})
		}
	}
	res.produceErr = <-prodDone
	res.valid, res.malformed = h.prod.counts()

	// Wait for every valid event to be stored and every offset committed.
	_, ends, err := h.committed(ctx)
	if err == nil {
		_, err = h.caughtUp(ctx, ends, h.o.settle)
	}
	if err != nil {
		res.settleErr = fmt.Errorf("settle: %w", err)
	}
	recWG.Wait()
	stopWatch()
	for h.memberCount() > 0 {
		if err := h.stopMember(); err != nil {
			h.log.Warn("stop member", "err", err)
		}
	}
	w.mu.Lock()
	res.checks, res.aheadCount, res.aheadFirst, res.maxLag = w.checks, w.ahead, w.aheadFirst, w.maxLag
	w.mu.Unlock()
	if err := h.verify(ctx, res); err != nil {
		return res, err
	}
	st := h.sim.Stats()
	res.apiFaults = map[string]int64{}
	for _, m := range []map[string]int64{st.Embeddings.Faults, st.Chat.Faults} {
		for k, v := range m {
			res.apiFaults[k] += v
		}
	}
	res.api429 = st.Embeddings.TooManyRequests + st.Chat.TooManyRequests
	res.elapsed = time.Since(start)
	return res, nil
}

// verify compares what ClickHouse and the dead-letter topic hold with what
// was produced.
func (h *harness) verify(ctx context.Context, res *result) error {
	q := fmt.Sprintf("SELECT count(), uniqExact(kafka_partition, kafka_offset) FROM %s.events", h.db)
	if err := h.ch.QueryRow(ctx, q).Scan(&res.stored, &res.distinct); err != nil {
		return fmt.Errorf("count rows: %w", err)
	}
	if err := h.ch.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.events FINAL", h.db)).Scan(&res.final); err != nil {
		return fmt.Errorf("count rows under FINAL: %w", err)
	}
	if err := h.ch.QueryRow(ctx, fmt.Sprintf("SELECT toUInt64(sum(events)) FROM %s.events_per_minute", h.db)).Scan(&res.rollup); err != nil {
		return fmt.Errorf("sum the per-minute rollup: %w", err)
	}
	var version string
	if err := h.ch.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		return fmt.Errorf("read server version: %w", err)
	}
	v, err := schemas.ParseVersion(version)
	if err != nil {
		return err
	}
	res.server, res.exact = v.String(), schemas.DialectFor(v) == schemas.DialectModern
	rows, err := h.ch.Query(ctx, fmt.Sprintf("SELECT DISTINCT kafka_partition, kafka_offset FROM %s.events", h.db))
	if err != nil {
		return fmt.Errorf("read coordinates: %w", err)
	}
	stored := map[[2]int64]bool{}
	for rows.Next() {
		var p uint32
		var o uint64
		if err := rows.Scan(&p, &o); err != nil {
			_ = rows.Close()
			return err
		}
		stored[[2]int64{int64(p), int64(o)}] = true //nolint:gosec // Offsets fit.
	}
	_ = rows.Close()
	dlq, err := h.readDLQ(ctx)
	if err != nil {
		return fmt.Errorf("read dead letters: %w", err)
	}
	res.dlqRecords, res.dlqClasses = dlq.records, dlq.classes
	h.prod.mu.Lock()
	defer h.prod.mu.Unlock()
	for p, ks := range h.prod.kinds {
		for o, k := range ks {
			c := [2]int64{int64(p), int64(o)}
			switch k {
			case 1:
				if !stored[c] {
					res.lost++
				}
				if dlq.coords[c] > 0 {
					res.dlqValid++
				}
				delete(stored, c)
			case 2:
				if dlq.coords[c] == 0 {
					res.dlqMissing++
				}
			}
		}
	}
	res.unexpected = len(stored)
	committed, ends, err := h.committed(ctx)
	if err != nil {
		return err
	}
	for p, e := range ends {
		if committed[p] < e {
			res.committedBehind++
		}
	}
	if res.valid+res.malformed == 0 {
		return errors.New("nothing was produced")
	}
	return nil
}

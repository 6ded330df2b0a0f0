package reenrich

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/textpulse/textpulse/processor"
	"github.com/textpulse/textpulse/schemas"
)

// Store reads and rewrites stored rows; *clickhouse.Sink is one.
//
// ReadPage returns up to limit rows matching the SQL condition where that
// come after the key after, in key order, in their newest version.
// CountRows counts them. WriteRevision stores the records of b as new
// versions of the rows old holds (old[i] for b.Records[i]) and corrects the
// rollup; it retries transient failures itself, and a repeat with the same
// b.DedupScope and keys adds nothing where the server deduplicates. Each
// may block until ctx is done; an error means nothing can be assumed
// written.
type Store interface {
	ReadPage(ctx context.Context, where string, after processor.RowKey, limit int) ([]processor.Record, error)
	CountRows(ctx context.Context, where string, after processor.RowKey) (uint64, error)
	WriteRevision(ctx context.Context, b *processor.Batch, old []processor.Record) error
}

// Job is one re-enrichment run.
type Job struct {
	Store  Store
	Filter Filter
	// Stages are the stages that may run; a row runs those it needs (see
	// Needs).
	Stages []processor.Stage
	// Force names stages that run on every selected row.
	Force []string
	// PageSize is how many rows one page reads and enriches at a time:
	// it bounds the memory of the run.
	PageSize int
	// Checkpoint is the file that lets a killed run resume; "" runs
	// without one.
	Checkpoint string
	// Progress, when set, is called after each page.
	Progress func(Progress)
	// AfterWrite, when set, is called after the write of each page and
	// before the checkpoint records it; an error ends the run there, as a
	// crash would (a test hook).
	AfterWrite func(page int) error
	Log        *slog.Logger
}

// Progress is the state of a run after a page.
type Progress struct {
	// Total is the rows the run selects, counted at its start (with those
	// read before a resume).
	Total uint64
	// Read and Updated are the rows read and written so far.
	Read, Updated uint64
	// Resumed is set when the run continues an earlier one.
	Resumed bool
}

// Report is what a run did.
type Report struct {
	Progress
	// Enriched counts per stage the rows that got a result, Failed those
	// that did not (their stage stays in failed_stages).
	Enriched, Failed map[string]int
	// Elapsed is the run's wall time.
	Elapsed time.Duration
}

// Run re-enriches the selected rows until none is left or ctx ends, and
// removes the checkpoint when done. It returns what it did; an error leaves
// the checkpoint for a resume.
func (j *Job) Run(ctx context.Context) (*Report, error) {
	start := time.Now()
	if len(j.Stages) == 0 {
		return nil, ErrNoStages
	}
	where := j.Filter.SQL()
	cp, resumed, err := loadCheckpoint(j.Checkpoint, where, j.stageNames())
	if err != nil {
		return nil, err
	}
	rep := &Report{Enriched: map[string]int{}, Failed: map[string]int{}}
	rep.Resumed = resumed
	if err := j.finishPending(ctx, cp); err != nil {
		return nil, err
	}
	left, err := j.Store.CountRows(ctx, where, cp.After)
	if err != nil {
		return nil, err
	}
	rep.Total = cp.Read + left
	for page := 1; ; page++ {
		rows, err := j.Store.ReadPage(ctx, where, cp.After, j.PageSize)
		if err != nil {
			return nil, err
		}
		if len(rows) == 0 {
			break
		}
		if err := j.page(ctx, cp, rows, page, rep); err != nil {
			return nil, err
		}
		rep.Read, rep.Updated = cp.Read, cp.Updated
		if j.Progress != nil {
			j.Progress(rep.Progress)
		}
	}
	rep.Read, rep.Updated, rep.Elapsed = cp.Read, cp.Updated, time.Since(start)
	if j.Checkpoint != "" {
		if err := os.Remove(j.Checkpoint); err != nil && !os.IsNotExist(err) {
			return rep, fmt.Errorf("remove checkpoint: %w", err)
		}
	}
	return rep, nil
}

// page enriches one page of rows and writes those that changed, with the
// checkpoint saved before the write (as pending) and after it.
func (j *Job) page(ctx context.Context, cp *checkpoint, rows []processor.Record, n int, rep *Report) error {
	updated, old, err := j.enrich(ctx, rows, n, rep)
	if err != nil {
		return err
	}
	cp.After = rows[len(rows)-1].Key()
	cp.Read += uint64(len(rows))
	if len(updated) > 0 {
		cp.Pending = &pending{Rows: updated, Old: old}
		if err := cp.save(j.Checkpoint); err != nil {
			return err
		}
		if err := j.write(ctx, cp, n); err != nil {
			return err
		}
		if j.AfterWrite != nil {
			if err := j.AfterWrite(n); err != nil {
				return err
			}
		}
		cp.Updated += uint64(len(updated))
	}
	cp.Pending = nil
	return cp.save(j.Checkpoint)
}

// finishPending writes the pending page of a resumed run.
func (j *Job) finishPending(ctx context.Context, cp *checkpoint) error {
	if cp.Pending == nil {
		return nil
	}
	if j.Log != nil {
		j.Log.Info("writing the page a previous run left pending", "rows", len(cp.Pending.Rows))
	}
	if err := j.write(ctx, cp, 0); err != nil {
		return err
	}
	cp.Updated += uint64(len(cp.Pending.Rows))
	cp.Pending = nil
	return cp.save(j.Checkpoint)
}

// write stores the pending rows of cp.
func (j *Job) write(ctx context.Context, cp *checkpoint, n int) error {
	b := processor.NewBatch("enrich-" + cp.Run + "-" + strconv.Itoa(n))
	b.DedupScope = "enrich:" + cp.Run
	for _, r := range cp.Pending.Rows {
		b.Append(r)
	}
	if err := j.Store.WriteRevision(ctx, b, cp.Pending.Old); err != nil {
		return fmt.Errorf("write page %d: %w", n, err)
	}
	return nil
}

// enrich runs on rows the stages each needs, one stage after the other,
// and returns the new versions of the rows that changed with the versions
// they replace. Only ctx ending is an error.
func (j *Job) enrich(ctx context.Context, rows []processor.Record, n int, rep *Report) (updated, old []processor.Record, err error) {
	work := make([]processor.Record, len(rows))
	for i := range rows {
		work[i] = rows[i].Copy()
		work[i].FailedStages = slices.Clone(rows[i].FailedStages)
	}
	changed := make([]bool, len(rows))
	for _, st := range j.Stages {
		name := st.Name()
		var idx []int
		for i := range work {
			if j.Needs(&work[i], name) {
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			continue
		}
		b := processor.NewBatch(fmt.Sprintf("enrich-%d-%s", n, name))
		for _, i := range idx {
			r := work[i].Copy()
			r.FailedStages = slices.DeleteFunc(slices.Clone(r.FailedStages), func(s string) bool { return s == name })
			b.Append(r)
		}
		if err := st.Enrich(ctx, b); err != nil {
			return nil, nil, fmt.Errorf("enrich page %d with %s: %w", n, name, err)
		}
		rejected := b.Rejected()
		for k, i := range idx {
			r := b.Records[k]
			if _, ok := rejected[k]; ok && !slices.Contains(r.FailedStages, name) {
				// No dead letters here: the row keeps its stored form.
				r.FailedStages = append(r.FailedStages, name)
			}
			if slices.Contains(r.FailedStages, name) {
				rep.Failed[name]++
				continue
			}
			rep.Enriched[name]++
			work[i], changed[i] = r, true
		}
	}
	for i := range work {
		if changed[i] {
			work[i].Revision = rows[i].Revision + 1
			updated = append(updated, work[i])
			old = append(old, rows[i])
		}
	}
	return updated, old, nil
}

// Needs reports whether the stage named stage is to run on r: it is
// forced, or r lists it in failed_stages, or the filter names a model for
// it that r's <stage>_model column does not hold.
func (j *Job) Needs(r *processor.Record, stage string) bool {
	if slices.Contains(j.Force, stage) || (r.Enrichment != nil && slices.Contains(r.FailedStages, stage)) {
		return true
	}
	want, ok := j.Filter.StaleModels[stage]
	if !ok {
		return false
	}
	if r.Enrichment == nil {
		return true // no model yet
	}
	c, ok := schemas.ColumnNamed(stage + "_model")
	if !ok || c.Dest == nil {
		return false
	}
	got, _ := c.Dest(r).(*string)
	return got == nil || *got != want
}

// stageNames returns the names of the stages, in order.
func (j *Job) stageNames() []string {
	out := make([]string, len(j.Stages))
	for i, s := range j.Stages {
		out[i] = s.Name()
	}
	return out
}

// Plan reads the selected rows as Run would, without enriching or writing
// anything, and calls visit for each row with the stages it needs. It does
// not touch the checkpoint.
func (j *Job) Plan(ctx context.Context, visit func(r *processor.Record, stages []string)) (uint64, error) {
	where := j.Filter.SQL()
	var after processor.RowKey
	var n uint64
	for {
		rows, err := j.Store.ReadPage(ctx, where, after, j.PageSize)
		if err != nil {
			return n, err
		}
		if len(rows) == 0 {
			return n, nil
		}
		for i := range rows {
			var need []string
			for _, st := range j.Stages {
				if j.Needs(&rows[i], st.Name()) {
					need = append(need, st.Name())
				}
			}
			visit(&rows[i], need)
		}
		n += uint64(len(rows))
		after = rows[len(rows)-1].Key()
	}
}

package processor

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Stage enriches the records of a batch, for example with an embedding.
//
// Enrich is called once per batch, concurrently with the other stages of the
// same batch. It writes only its own Enrichment fields of b.Records, and
// applies its own failure policy per record: it sets its result, or calls
// b.MarkFailed to write the row without its result, or calls b.Reject to
// dead-letter the record. It may block (network, accelerator) until ctx is
// done; ctx is cancelled when the pipeline abandons the batch on shutdown or
// rebalance. A returned error means the batch cannot be completed: nothing of
// it is written or committed, and its records are consumed again later.
type Stage interface {
	// Name is a stable, lowercase name used in metrics, logs and the
	// failed_stages column.
	Name() string
	// Enrich enriches b in place; see the Stage contract.
	Enrich(ctx context.Context, b *Batch) error
}

// ResultSizer is implemented by stages whose results add notably to the
// memory a batch holds, such as embedding vectors. ResultBytes is a fixed
// estimate of the bytes the stage adds per record; the pipeline counts it,
// with the record's value, toward batch.max_bytes, so that batches of
// enriched rows stay within the same memory bound as raw ones.
type ResultSizer interface {
	ResultBytes() int
}

// Writer writes the rows of a batch to the sink.
//
// Write blocks until every record in b.Records is stored durably, retrying
// transient failures itself, or until ctx is done. The caller owns b; Write
// must not keep references to it after returning. A nil error means the rows
// are stored and their offsets may be committed. An error for which
// IsPermanent is true means the sink refused the rows for their content and
// the same rows will be refused again; the pipeline then splits the batch to
// isolate the offending rows. Any other error means ctx ended first.
type Writer interface {
	Write(ctx context.Context, b *Batch) error
}

// DeadLetterSink stores inputs that will not be written as rows.
//
// Send blocks until every dead letter is stored durably, retrying transient
// failures itself, or until ctx is done, in which case it returns an error
// and none of the dead letters may be assumed stored. The caller owns dls.
type DeadLetterSink interface {
	Send(ctx context.Context, dls []DeadLetter) error
}

// MarkFailed records that stage produced no result for record i and that
// the row is to be written without it. It is safe for concurrent use.
func (b *Batch) MarkFailed(i int, stage string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := &b.Records[i]
	if !slices.Contains(r.FailedStages, stage) {
		r.FailedStages = append(r.FailedStages, stage)
	}
}

// runStages runs all stages on b concurrently and returns the first error.
func runStages(ctx context.Context, stages []Stage, b *Batch, observe func(stage string, seconds float64)) error {
	if len(stages) == 0 {
		return nil
	}
	b.PrepareResults()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(stages))
	var wg sync.WaitGroup
	for i, s := range stages {
		wg.Go(func() {
			start := time.Now()
			errs[i] = s.Enrich(ctx, b)
			observe(s.Name(), time.Since(start).Seconds())
			if errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

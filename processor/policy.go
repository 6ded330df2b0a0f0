package processor

import "fmt"

// FailurePolicy says what an enrichment stage does with a record whose
// enrichment failed for good (after the stage's retries for a retryable
// error, at once for a permanent one).
type FailurePolicy string

// Failure policies.
const (
	// PolicyRetry keeps retrying the failed records, with backoff, until
	// the batch's context is done; Enrich then returns the context's
	// error, so the batch is neither written nor committed and is consumed
	// again later. Choose it when complete enrichment matters more than
	// freshness: an outage of the stage's backend stalls ingestion.
	PolicyRetry FailurePolicy = "retry"
	// PolicySkip writes the row without the stage's result and lists the
	// stage in the row's failed_stages (status "partial"). A flaky or
	// exhausted backend does not stall ingestion, and the flagged rows can
	// be found and re-enriched later.
	PolicySkip FailurePolicy = "skip"
	// PolicyDeadLetter sends the record to the dead-letter topic with
	// class stage_failed instead of writing a row.
	PolicyDeadLetter FailurePolicy = "dead_letter"
)

// Validate checks p.
func (p FailurePolicy) Validate() error {
	switch p {
	case PolicyRetry, PolicySkip, PolicyDeadLetter:
		return nil
	}
	return fmt.Errorf("on_failure %q: must be retry, skip or dead_letter", p)
}

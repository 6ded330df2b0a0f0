// Package enrich is the engine every enrichment stage runs on, whatever
// provides its results (an OpenAI-compatible API, a local model): it
// deduplicates the texts of a batch, answers repeats from a bounded cache,
// tries failed texts again with backoff, applies the stage's failure policy
// (processor.FailurePolicy) and exports the textpulse_stage_* metrics. A
// provider plugs in through the three methods of Provider. While
// Config.Defer says so, it leaves the provider alone and marks the records
// the cache cannot answer failed for the stage, to be enriched later.
//
// Retryable, permanent and endpoint-wide failures are told apart with the
// vocabulary of package processor (processor.IsRetryable,
// processor.IsPermanent, processor.IsEndpointWide).
package enrich

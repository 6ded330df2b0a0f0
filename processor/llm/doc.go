// Package llm provides enrichment stages backed by OpenAI-compatible HTTP
// APIs: EmbeddingStage stores an embedding vector of each text, and
// SentimentStage a sentiment label and score from a chat model with
// structured output.
//
// Each stage owns a client for its endpoint with client-side budgets of
// requests and estimated tokens per minute, a bound on requests in flight
// shared by all batches, retries of transient failures (429 after the wait
// the server asks for, 5xx, timeouts and network errors with exponential
// backoff and jitter), a content-hash LRU cache of results, and a failure
// policy (FailurePolicy) for records that cannot be enriched.
//
// NewEmbeddingBatchStage and NewSentimentBatchStage return the same stages
// over the OpenAI Batch API instead (BatchConfig), for backlogs that can
// wait for the batch price: the same requests are written to JSONL input
// files, submitted as batches, polled until they end and their answers
// mapped back by custom_id.
package llm

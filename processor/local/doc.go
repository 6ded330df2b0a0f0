// Package local holds the enrichment stages that run models in-process with
// ONNX Runtime (package gpu) instead of calling an API: emotion scores from a
// sequence classifier, sentiment from a negative/neutral/positive
// classifier, and embeddings from a feature-extraction model with mean
// pooling. With a CUDA build of ONNX Runtime they run on the GPU; otherwise
// on the CPU.
//
// Each stage deduplicates the texts of a batch, looks them up in a bounded
// LRU cache keyed by a hash of the text, runs the model on the rest in one
// call (the model's dynamic batcher splits it into inference batches and
// merges it with the calls of other batches in flight), and applies its
// processor.FailurePolicy when the model fails.
package local

package gpu

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package either wraps one of
// them or is a context error of the caller. Each says by its Retryable
// method whether the failed call may succeed when repeated (the vocabulary
// of processor.IsRetryable): only ErrInference does.
var (
	// ErrClosed means the classifier, embedder or runtime was closed. Permanent.
	ErrClosed error = &sentinel{msg: "model closed"}
	// ErrInvalidConfig means a Config value is out of range. Permanent.
	ErrInvalidConfig error = &sentinel{msg: "invalid config"}
	// ErrCUDAUnavailable means Device is "cuda" but the CUDA execution
	// provider could not be used: a CPU-only ONNX Runtime library, no CUDA
	// libraries, or no device. Permanent for this configuration.
	ErrCUDAUnavailable error = &sentinel{msg: "cuda execution provider unavailable"}
	// ErrRuntime means the ONNX Runtime library could not be loaded or
	// initialised. Permanent.
	ErrRuntime error = &sentinel{msg: "onnx runtime unavailable"}
	// ErrInvalidModel means a model directory does not hold a usable
	// Hugging Face export; ModelError carries the reason. Permanent.
	ErrInvalidModel error = &sentinel{msg: "invalid model"}
	// ErrInference means an inference call failed inside ONNX Runtime (for
	// example GPU memory exhausted by a large batch). Retryable.
	ErrInference error = &sentinel{msg: "inference failed", retryable: true}
)

// Reasons a model directory is rejected, wrapped by ModelError.
var (
	// ErrMissingFile: model.onnx, tokenizer.json or config.json is absent.
	ErrMissingFile = errors.New("missing file")
	// ErrModelInputs: the graph's inputs are not input_ids, attention_mask
	// and optionally token_type_ids, all int64 [batch, sequence].
	ErrModelInputs = errors.New("unexpected model inputs")
	// ErrModelOutputs: the graph lacks the output the model kind needs
	// (logits for a classifier, last_hidden_state for an embedder), or its
	// shape is wrong.
	ErrModelOutputs = errors.New("unexpected model outputs")
	// ErrLabels: config.json has no id2label, or its size differs from the
	// width of the logits output, or its ids are not 0..n-1.
	ErrLabels = errors.New("bad labels")
	// ErrProblemType: config.json names a problem_type other than
	// single_label_classification and multi_label_classification.
	ErrProblemType = errors.New("unsupported problem_type")
	// ErrModelConfig: config.json cannot be parsed or is inconsistent with
	// the requested settings (for example max_length beyond the position
	// embeddings).
	ErrModelConfig = errors.New("bad model config")
)

// ModelError is a model directory that cannot be loaded. It wraps
// ErrInvalidModel and one of the reasons above (or the underlying error).
type ModelError struct {
	// Dir is the model directory.
	Dir string
	// Reason is one of ErrMissingFile, ErrModelInputs, ErrModelOutputs,
	// ErrLabels, ErrProblemType, ErrModelConfig, or an I/O or ONNX Runtime
	// error.
	Reason error
	// Detail says what exactly is wrong, for the operator.
	Detail string
}

func (e *ModelError) Error() string {
	return fmt.Sprintf("load model %s: %v: %v: %s", e.Dir, ErrInvalidModel, e.Reason, e.Detail)
}

// Unwrap returns ErrInvalidModel and the reason.
func (e *ModelError) Unwrap() []error { return []error{ErrInvalidModel, e.Reason} }

func modelErr(dir string, reason error, format string, args ...any) error {
	return &ModelError{Dir: dir, Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// sentinel is a kind of failure of this package that says whether the
// failed call may succeed when repeated.
type sentinel struct {
	msg       string
	retryable bool
}

func (e *sentinel) Error() string { return e.msg }

// Retryable reports whether repeating the failed call may succeed; see
// processor.IsRetryable.
func (e *sentinel) Retryable() bool { return e.retryable }

// Package gpu runs Hugging Face transformer models exported to ONNX (the
// optimum layout: model.onnx, tokenizer.json, config.json) with ONNX
// Runtime, on a CUDA device when one is available and on the CPU otherwise.
// A Classifier turns texts into label probabilities, an Embedder into
// L2-normalised mean-pooled sentence embeddings. Concurrent calls are merged
// by a dynamic batcher that sorts texts by token length to cut padding.
package gpu

import (
	"fmt"
	"time"
)

// Devices accepted in Config.Device.
const (
	DeviceAuto = "auto"
	DeviceCPU  = "cpu"
	DeviceCUDA = "cuda"
)

// Config selects a model and how it runs.
type Config struct {
	// ModelDir is a directory in the Hugging Face export layout:
	// model.onnx, tokenizer.json and config.json.
	ModelDir string `koanf:"model_dir"`
	// Device is auto (CUDA when available, else CPU with a warning), cpu or
	// cuda (an error when CUDA cannot be used).
	Device string `koanf:"device"`
	// CUDADeviceID is the CUDA device ordinal.
	CUDADeviceID int `koanf:"cuda_device_id"`
	// GPUMemLimit caps the CUDA memory arena in bytes; 0 keeps the ONNX
	// Runtime default (no limit).
	GPUMemLimit int64 `koanf:"gpu_mem_limit_bytes"`
	// IntraOpThreads is the number of threads one inference call uses; 0
	// keeps the ONNX Runtime default (one per physical core).
	IntraOpThreads int `koanf:"intra_op_threads"`
	// MaxBatch is the most texts per inference call.
	MaxBatch int `koanf:"max_batch"`
	// MaxWait is how long the batcher waits for more texts once it has
	// fewer than MaxBatch.
	MaxWait time.Duration `koanf:"max_wait"`
	// MaxLength truncates texts to this many tokens including special
	// tokens; 0 uses the tokenizer's truncation, capped by the model's
	// position embeddings.
	MaxLength int `koanf:"max_length"`
	// DisableBucketing runs texts in arrival order instead of sorting each
	// gathered batch by token length; only useful to measure what sorting
	// saves.
	DisableBucketing bool `koanf:"disable_bucketing"`
}

// DefaultConfig returns the defaults: auto device, batches of up to 32
// texts gathered for at most 5ms.
func DefaultConfig() Config {
	return Config{
		Device:   DeviceAuto,
		MaxBatch: 32,
		MaxWait:  5 * time.Millisecond,
	}
}

// Validate reports the first invalid value.
func (c Config) Validate() error {
	switch {
	case c.ModelDir == "":
		return fmt.Errorf("%w: model_dir is empty", ErrInvalidConfig)
	case c.Device != DeviceAuto && c.Device != DeviceCPU && c.Device != DeviceCUDA:
		return fmt.Errorf("%w: device %q is not auto, cpu or cuda", ErrInvalidConfig, c.Device)
	case c.CUDADeviceID < 0:
		return fmt.Errorf("%w: cuda_device_id %d is negative", ErrInvalidConfig, c.CUDADeviceID)
	case c.GPUMemLimit < 0:
		return fmt.Errorf("%w: gpu_mem_limit_bytes %d is negative", ErrInvalidConfig, c.GPUMemLimit)
	case c.IntraOpThreads < 0:
		return fmt.Errorf("%w: intra_op_threads %d is negative", ErrInvalidConfig, c.IntraOpThreads)
	case c.MaxBatch < 1:
		return fmt.Errorf("%w: max_batch %d must be at least 1", ErrInvalidConfig, c.MaxBatch)
	case c.MaxWait < 0:
		return fmt.Errorf("%w: max_wait %s is negative", ErrInvalidConfig, c.MaxWait)
	case c.MaxLength < 0:
		return fmt.Errorf("%w: max_length %d is negative", ErrInvalidConfig, c.MaxLength)
	}
	return nil
}

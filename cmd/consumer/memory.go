package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
)

// MemoryConfig is the memory budget of the process.
type MemoryConfig struct {
	// Limit is the memory the whole process aims to stay under, in bytes.
	// The Go runtime collects garbage harder as its heap nears the limit
	// less the memory the local models take outside it, and the caches of
	// the stages whose cache_max_bytes is 0 get shares of that heap (see
	// cacheShares). 0, the default, budgets autoMemory for the consumer
	// on top of what the local models take; -1 sets no limit (the caches
	// are then bounded by entries only). GOMEMLIMIT, when set, takes
	// precedence for the runtime.
	Limit int64 `koanf:"limit"`
}

// autoMemory is what memory.limit 0 budgets for the consumer besides the
// local models.
const autoMemory = 384 << 20

// noMemoryLimit is the memory.limit that sets none.
const noMemoryLimit = -1

// minMemoryLimit is the smallest memory.limit accepted.
const minMemoryLimit = 64 << 20

// cacheShares are the shares of memory.limit that the stage caches take
// when their cache_max_bytes is 0: an embedding cache holds vectors, a
// sentiment cache labels, a local cache either.
const (
	embeddingCacheShare = 4  // a quarter
	sentimentCacheShare = 16 // a sixteenth
	localCacheShare     = 8  // an eighth
)

// nativeBase is the memory reserved outside the Go heap besides the models:
// thread stacks, the ONNX Runtime library, buffers of the C libraries.
const nativeBase = 32 << 20

// modelMemoryFactor is the memory ONNX Runtime takes for a model, as a
// multiple of the size of its model file: the weights plus the arena of
// the activations.
const modelMemoryFactor = 2

func (c MemoryConfig) validate() error {
	if c.Limit != 0 && c.Limit != noMemoryLimit && c.Limit < minMemoryLimit {
		return fmt.Errorf("memory.limit %d: want 0 (automatic), -1 (no limit) or at least %d bytes (64 MiB)", c.Limit, minMemoryLimit)
	}
	return nil
}

// heapLimit is the Go heap's share of the limit, given the native memory
// of the stages: the limit less native, or with the automatic limit
// autoMemory less nativeBase; 0 with no limit.
func (c MemoryConfig) heapLimit(native int64) int64 {
	switch c.Limit {
	case noMemoryLimit:
		return 0
	case 0:
		return autoMemory - nativeBase
	}
	return c.Limit - native
}

// cacheShares returns c with the cache_max_bytes of 0 replaced by their
// share of heap; with no limit (heap 0) the caches stay bounded by entries
// only.
func (c StagesConfig) cacheShares(heap int64) StagesConfig {
	if heap <= 0 {
		return c
	}
	share := func(n *int64, div int64) {
		if *n == 0 {
			*n = heap / div
		}
	}
	share(&c.Embedding.CacheMaxBytes, embeddingCacheShare)
	share(&c.Embedding.Local.CacheMaxBytes, localCacheShare)
	share(&c.Sentiment.CacheMaxBytes, sentimentCacheShare)
	share(&c.Sentiment.Local.CacheMaxBytes, localCacheShare)
	share(&c.Emotion.CacheMaxBytes, localCacheShare)
	return c
}

// nativeMemory estimates the memory the process takes outside the Go heap:
// nativeBase, plus modelMemoryFactor times the model file of each enabled
// local stage.
func (c StagesConfig) nativeMemory() int64 {
	n := int64(nativeBase)
	for _, dir := range c.localModelDirs() {
		if fi, err := os.Stat(filepath.Join(dir, "model.onnx")); err == nil {
			n += modelMemoryFactor * fi.Size()
		}
	}
	return n
}

// localModelDirs lists the model directories of the enabled local stages.
func (c StagesConfig) localModelDirs() []string {
	var dirs []string
	if c.Embedding.Enabled && c.Embedding.Provider == providerLocal {
		dirs = append(dirs, c.Embedding.Local.ModelDir)
	}
	if c.Sentiment.Enabled && c.Sentiment.Provider == providerLocal {
		dirs = append(dirs, c.Sentiment.Local.ModelDir)
	}
	if c.Emotion.Enabled {
		dirs = append(dirs, c.Emotion.ModelDir)
	}
	return dirs
}

// errMemoryTooSmall is returned when the local models alone would take
// the memory limit.
var errMemoryTooSmall = errors.New("memory.limit leaves no room for the Go heap beside the local models")

// applyMemoryLimit sets the Go runtime's soft memory limit from
// cfg.Memory.Limit less the native memory of the stages, unless GOMEMLIMIT
// is set; the returned function restores the limit in force before.
func applyMemoryLimit(cfg Config, getenv func(string) string, log *slog.Logger) (restore func(), err error) {
	prev := debug.SetMemoryLimit(-1)
	restore = func() { debug.SetMemoryLimit(prev) }
	if cfg.Memory.Limit == noMemoryLimit {
		return restore, nil
	}
	if v := getenv("GOMEMLIMIT"); v != "" {
		log.Info("memory limit from the environment", "gomemlimit", v)
		return restore, nil
	}
	native := cfg.Stages.nativeMemory()
	heap := cfg.Memory.heapLimit(native)
	if heap < minMemoryLimit/2 {
		return restore, fmt.Errorf("%w: limit %d bytes, models and native memory about %d", errMemoryTooSmall, cfg.Memory.Limit, native)
	}
	debug.SetMemoryLimit(heap)
	log.Info("memory limit", "limit_bytes", heap+native, "go_heap_limit_bytes", heap, "native_bytes", native)
	return restore, nil
}

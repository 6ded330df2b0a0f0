package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func TestMemoryHeapLimit(t *testing.T) {
	tests := []struct {
		name          string
		limit, native int64
		want          int64
	}{
		{"automatic", 0, 500 << 20, autoMemory - nativeBase},
		{"none", noMemoryLimit, 500 << 20, 0},
		{"explicit less the models", 1 << 30, 200 << 20, 1<<30 - 200<<20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (MemoryConfig{Limit: tt.limit}).heapLimit(tt.native); got != tt.want {
				t.Errorf("heapLimit = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestMemoryValidate(t *testing.T) {
	tests := []struct {
		limit int64
		ok    bool
	}{{0, true}, {-1, true}, {64 << 20, true}, {1 << 20, false}, {-2, false}}
	for _, tt := range tests {
		if err := (MemoryConfig{Limit: tt.limit}).validate(); (err == nil) != tt.ok {
			t.Errorf("validate(%d) = %v, want ok %v", tt.limit, err, tt.ok)
		}
	}
}

func TestCacheShares(t *testing.T) {
	c := defaultStagesConfig()
	c.Sentiment.CacheMaxBytes = 5 // set by the user: kept
	got := c.cacheShares(400 << 20)
	if got.Embedding.CacheMaxBytes != 100<<20 || got.Sentiment.CacheMaxBytes != 5 || got.Emotion.CacheMaxBytes != 50<<20 {
		t.Errorf("shares: embedding %d sentiment %d emotion %d", got.Embedding.CacheMaxBytes, got.Sentiment.CacheMaxBytes, got.Emotion.CacheMaxBytes)
	}
	if none := c.cacheShares(0); none.Embedding.CacheMaxBytes != 0 {
		t.Errorf("no limit: embedding cache bounded to %d bytes", none.Embedding.CacheMaxBytes)
	}
}

func TestApplyMemoryLimit(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "model.onnx"), make([]byte, 40<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Stages.Emotion.Enabled, cfg.Stages.Emotion.ModelDir = true, dir
	log := slog.New(slog.DiscardHandler)
	before := debug.SetMemoryLimit(-1)
	noEnv := func(string) string { return "" }
	tests := []struct {
		name    string
		limit   int64
		getenv  func(string) string
		want    int64
		wantErr bool
	}{
		{"automatic", 0, noEnv, autoMemory - nativeBase, false},
		{"explicit less the model", 256 << 20, noEnv, 256<<20 - nativeBase - 80<<20, false},
		{"too small for the model", 100 << 20, noEnv, before, true},
		{"GOMEMLIMIT wins", 0, func(k string) string { return map[string]string{"GOMEMLIMIT": "1GiB"}[k] }, before, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg.Memory.Limit = tt.limit
			restore, err := applyMemoryLimit(cfg, tt.getenv, log)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got := debug.SetMemoryLimit(-1); got != tt.want {
				t.Errorf("Go memory limit %d, want %d", got, tt.want)
			}
			restore()
			if got := debug.SetMemoryLimit(-1); got != before {
				t.Errorf("restored limit %d, want %d", got, before)
			}
		})
	}
}

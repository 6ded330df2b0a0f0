package reenrich

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/textpulse/textpulse/processor"
)

// checkpoint is the state of a run, saved after every page.
type checkpoint struct {
	// Run identifies the run; it scopes the deduplication tokens of its
	// writes.
	Run string `json:"run"`
	// Filter and Stages are what the run selects and runs; a resume must
	// ask for the same.
	Filter string   `json:"filter"`
	Stages []string `json:"stages"`
	// After is the key of the last row read; the next page starts after it.
	After processor.RowKey `json:"after"`
	// Read and Updated count the rows read and the rows written so far.
	Read    uint64 `json:"read"`
	Updated uint64 `json:"updated"`
	// Pending is a page whose rows were enriched and are being written:
	// a resume writes it again (the same tokens make a repeat a no-op
	// where the server deduplicates) instead of enriching it again.
	Pending *pending `json:"pending,omitempty"`
}

// pending is the new versions of a page's changed rows and the versions
// they replace.
type pending struct {
	Rows []processor.Record `json:"rows"`
	Old  []processor.Record `json:"old"`
}

// loadCheckpoint returns the checkpoint at path, or a new one when there
// is none (or path is ""). An existing one must be for the same filter and
// stages.
func loadCheckpoint(path, filter string, stages []string) (*checkpoint, bool, error) {
	cp := &checkpoint{Filter: filter, Stages: stages}
	if path == "" {
		cp.Run = newRunID()
		return cp, false, nil
	}
	b, err := os.ReadFile(path) //nolint:gosec // The operator names the checkpoint file.
	if errors.Is(err, fs.ErrNotExist) {
		cp.Run = newRunID()
		return cp, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read checkpoint: %w", err)
	}
	var old checkpoint
	if err := json.Unmarshal(b, &old); err != nil {
		return nil, false, fmt.Errorf("read checkpoint %s: %w", path, err)
	}
	if old.Filter != filter || !slices.Equal(old.Stages, stages) {
		return nil, false, fmt.Errorf("%w: %s was written for filter %q and stages %v; this run has %q and %v",
			ErrCheckpointMismatch, path, old.Filter, old.Stages, filter, stages)
	}
	return &old, true, nil
}

// save writes cp to path atomically (a temporary file renamed over it).
func (cp *checkpoint) save(path string) error {
	if path == "" {
		return nil
	}
	b, err := json.Marshal(cp)
	if err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}

func newRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

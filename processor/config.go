package processor

import (
	"errors"
	"fmt"
	"time"
)

// BatchConfig bounds micro-batches and the work in flight.
type BatchConfig struct {
	// MaxRecords cuts a batch at this many records.
	MaxRecords int `koanf:"max_records"`
	// MaxBytes cuts a batch once its record values, plus the results the
	// stages expect to add to each record (embedding vectors; see
	// ResultSizer), reach this many bytes.
	MaxBytes int `koanf:"max_bytes"`
	// MaxWait cuts a non-empty batch this long after its first record.
	MaxWait time.Duration `koanf:"max_wait"`
	// MaxInFlight is how many batches may be processed and written at
	// once; offsets are still committed in order. It bounds memory: when
	// it is reached, polling stops until the oldest batch is committed.
	MaxInFlight int `koanf:"max_in_flight"`
	// DrainTimeout is how long a shutdown or rebalance waits for batches
	// in flight before abandoning them uncommitted.
	DrainTimeout time.Duration `koanf:"drain_timeout"`
}

// DefaultBatchConfig returns batch defaults sized for ClickHouse, which
// prefers few large inserts.
func DefaultBatchConfig() BatchConfig {
	return BatchConfig{
		MaxRecords:   100000,
		MaxBytes:     32 << 20,
		MaxWait:      500 * time.Millisecond,
		MaxInFlight:  3,
		DrainTimeout: 20 * time.Second,
	}
}

// Validate checks the batch configuration.
func (c BatchConfig) Validate() error {
	var errs []error
	if c.MaxRecords < 1 {
		errs = append(errs, fmt.Errorf("batch.max_records %d: must be at least 1", c.MaxRecords))
	}
	if c.MaxBytes < 1 {
		errs = append(errs, fmt.Errorf("batch.max_bytes %d: must be at least 1", c.MaxBytes))
	}
	if c.MaxWait <= 0 {
		errs = append(errs, fmt.Errorf("batch.max_wait %s: must be positive", c.MaxWait))
	}
	if c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("batch.max_in_flight %d: must be at least 1", c.MaxInFlight))
	}
	if c.DrainTimeout <= 0 {
		errs = append(errs, fmt.Errorf("batch.drain_timeout %s: must be positive", c.DrainTimeout))
	}
	return errors.Join(errs...)
}

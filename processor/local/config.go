package local

import (
	"errors"
	"fmt"

	"github.com/textpulse/textpulse/gpu"
	"github.com/textpulse/textpulse/processor"
)

// Config configures a local stage: the model and how it runs, the cache and
// the failure policy.
type Config struct {
	gpu.Config `koanf:",squash"`
	// CacheSize is how many results the text-hash cache keeps; 0 disables
	// it. Exact repeats of a text are then still computed once per batch.
	CacheSize int `koanf:"cache_size"`
	// CacheMaxBytes bounds the estimated memory of the cache (vectors
	// count 4 bytes per dimension); 0 bounds the entries only.
	CacheMaxBytes int64 `koanf:"cache_max_bytes"`
	// MaxAttempts is how many times a failed model call is tried before
	// the failure policy applies (the retry policy keeps trying).
	MaxAttempts int `koanf:"max_attempts"`
	// OnFailure is the failure policy; see processor.FailurePolicy.
	OnFailure processor.FailurePolicy `koanf:"on_failure"`
}

// DefaultConfig returns the defaults: the model's defaults from package
// gpu, a cache of 100000 results, three attempts and the skip policy.
func DefaultConfig() Config {
	return Config{
		Config:        gpu.DefaultConfig(),
		CacheSize:     100000,
		CacheMaxBytes: 64 << 20,
		MaxAttempts:   3,
		OnFailure:     processor.PolicySkip,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	errs := []error{c.Config.Validate(), c.OnFailure.Validate()}
	if c.CacheMaxBytes < 0 {
		errs = append(errs, fmt.Errorf("cache_max_bytes %d: must not be negative", c.CacheMaxBytes))
	}
	if c.CacheSize < 0 {
		errs = append(errs, fmt.Errorf("cache_size %d: must not be negative", c.CacheSize))
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("max_attempts %d: must be at least 1", c.MaxAttempts))
	}
	return errors.Join(errs...)
}

package main

import (
	"strings"
	"sync/atomic"
	"testing"
)

func TestDeferAboveLagValidation(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   string // empty: valid
	}{
		{name: "api stage with a lag monitor", change: func(c *Config) {
			c.Stages.Embedding.Enabled, c.Stages.Embedding.DeferAboveLag = true, 1000
		}},
		{name: "zero never defers", change: func(c *Config) {
			c.Stages.Sentiment.Enabled, c.Kafka.LagInterval = true, 0
		}},
		{name: "disabled stage is not checked", change: func(c *Config) {
			c.Stages.Sentiment.DeferAboveLag = -1
		}},
		{name: "negative", change: func(c *Config) {
			c.Stages.Sentiment.Enabled, c.Stages.Sentiment.DeferAboveLag = true, -1
		}, want: "stages.sentiment: defer_above_lag -1: want 0"},
		{name: "local provider", change: func(c *Config) {
			c.Stages.Embedding.Enabled, c.Stages.Embedding.Provider, c.Stages.Embedding.Local.ModelDir = true, providerLocal, "m"
			c.Stages.Embedding.DeferAboveLag = 10
		}, want: "stages.embedding: defer_above_lag 10: only provider api defers"},
		{name: "no lag monitor", change: func(c *Config) {
			c.Stages.Sentiment.Enabled, c.Stages.Sentiment.DeferAboveLag, c.Kafka.LagInterval = true, 10, 0
		}, want: "stages.sentiment: defer_above_lag 10 needs the lag monitor: set kafka.lag_interval above 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.change(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate: %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestDeferAboveLagFlag(t *testing.T) {
	cfg, _, err := loadConfig(flagSet("consumer", DefaultConfig()),
		[]string{"--stages.embedding.defer_above_lag", "5000"},
		envOf(map[string]string{"TEXTPULSE_STAGES_SENTIMENT_DEFER_ABOVE_LAG": "7"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Stages.Embedding.DeferAboveLag != 5000 || cfg.Stages.Sentiment.DeferAboveLag != 7 {
		t.Fatalf("defer_above_lag embedding %d sentiment %d, want 5000 and 7",
			cfg.Stages.Embedding.DeferAboveLag, cfg.Stages.Sentiment.DeferAboveLag)
	}
}

func TestLagGate(t *testing.T) {
	tests := []struct {
		name  string
		above int64
		lags  []int64
		want  []bool
	}{
		{name: "not measured yet", above: 10, lags: []int64{-1, -1}, want: []bool{false, false}},
		{name: "at the threshold does not defer", above: 10, lags: []int64{10, 9}, want: []bool{false, false}},
		{name: "hovering at the threshold does not flap", above: 100, lags: []int64{101, 99, 100, 101, 85, 80, 79, 95, 101},
			want: []bool{true, true, true, true, true, true, false, false, true}},
		{name: "threshold of one resumes when drained", above: 1, lags: []int64{2, 1, 0, 1}, want: []bool{true, true, false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lag atomic.Int64
			g := newLagGate(lag.Load, tt.above)
			for i, l := range tt.lags {
				lag.Store(l)
				if got := g.deferring(); got != tt.want[i] {
					t.Fatalf("lag %d (step %d): deferring %v, want %v", l, i, got, tt.want[i])
				}
			}
		})
	}
}

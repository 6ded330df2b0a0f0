package kafka

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestLagBeforeMeasurement(t *testing.T) {
	// Nothing listens on port 1: every measurement fails.
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"), kgo.RetryTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	m := NewLagMonitor(cl, "g", slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	tests := []struct {
		name    string
		measure bool
	}{
		{name: "before any measurement", measure: false},
		{name: "after a failed measurement", measure: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.measure {
				ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
				defer cancel()
				m.Update(ctx)
			}
			if got := m.Lag(); got != -1 {
				t.Fatalf("Lag() = %d, want -1 (not measured)", got)
			}
		})
	}
}

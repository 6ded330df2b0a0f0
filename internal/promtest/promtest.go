// Package promtest reads metric values from a Prometheus registry in tests.
package promtest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/textpulse/textpulse/internal/harness"
)

// Sum gathers g and returns the sum of the counter, gauge and untyped
// samples of the family name whose labels include every pair of labels
// (nil matches all), as harness.Metrics.Value reads them; 0 when none
// matches. It fails t when gathering fails.
func Sum(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	m, err := harness.Gather(g)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := m.Value(name, labels)
	return v
}

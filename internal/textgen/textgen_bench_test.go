package textgen

import (
	"testing"
)

// BenchmarkNext measures event generation; events/s and MB/s are per core.
func BenchmarkNext(b *testing.B) {
	benchmarks := []struct {
		name string
		opts Options
	}{
		{"fixed300", Options{Seed: 1, RepeatShare: DefaultRepeatShare, FixedSize: 300}},
		{"fixed1024", Options{Seed: 1, RepeatShare: DefaultRepeatShare, FixedSize: 1024}},
		{"natural", Options{Seed: 1, RepeatShare: DefaultRepeatShare}},
		{"natural_malformed10pct", Options{Seed: 1, RepeatShare: DefaultRepeatShare, MalformedShare: 0.1}},
		{"natural_norepeat", Options{Seed: 1}},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			g, err := New(bm.opts)
			if err != nil {
				b.Fatalf("new generator: %v", err)
			}
			buf := make([]byte, 0, 64<<10)
			var total int
			b.ReportAllocs()
			for b.Loop() {
				buf, _ = g.Next(buf[:0])
				total += len(buf)
			}
			secs := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N)/secs, "events/s")
			b.ReportMetric(float64(total)/secs/1e6, "MB/s")
			b.ReportMetric(float64(total)/float64(b.N), "bytes/event")
		})
	}
}

// BenchmarkNew measures building a generator and its tables.
func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(DefaultOptions()); err != nil {
			b.Fatalf("new generator: %v", err)
		}
	}
}

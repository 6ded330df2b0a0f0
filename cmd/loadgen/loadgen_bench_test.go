package main

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// BenchmarkRunKfake measures end-to-end producing of 300-byte events to an
// in-process fake cluster that discards what it receives. The fake broker
// shares the process and its cores, so the figures bound the producer side
// only loosely; measure against a real broker for the real figure.
func BenchmarkRunKfake(b *testing.B) {
	for _, compression := range []string{"lz4", "none"} {
		b.Run(compression, func(b *testing.B) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.BlackholeProduce())
			if err != nil {
				b.Fatalf("start fake cluster: %v", err)
			}
			defer c.Close()
			b.ReportAllocs()
			b.ResetTimer()
			err = run(context.Background(), []string{"--brokers", c.ListenAddrs()[0], "--topic", "bench",
				"--count", fmt.Sprint(b.N), "--fixed-size", "300", "--compression", compression, "--progress", "0",
				"--log-level", "warn"}, io.Discard, io.Discard)
			if err != nil {
				b.Fatalf("run: %v", err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.SetBytes(300)
		})
	}
}

// BenchmarkRunFile measures writing 300-byte events as JSONEachRow lines.
func BenchmarkRunFile(b *testing.B) {
	path := b.TempDir() + "/events.jsonl"
	b.ReportAllocs()
	err := run(context.Background(), []string{"--file", path, "--count", fmt.Sprint(b.N), "--fixed-size", "300",
		"--progress", "0", "--log-level", "warn"}, io.Discard, io.Discard)
	if err != nil {
		b.Fatalf("run: %v", err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.SetBytes(300)
}

package processor

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/textpulse/textpulse/internal/textgen"
)

func benchEvents(b *testing.B, n int) [][]byte {
	b.Helper()
	g, err := textgen.New(textgen.Options{Seed: 1, FixedSize: 300})
	if err != nil {
		b.Fatal(err)
	}
	out := make([][]byte, n)
	for i := range out {
		out[i], _ = g.Next(nil)
	}
	return out
}

func BenchmarkDecode(b *testing.B) {
	evs := benchEvents(b, 4096)
	d := NewDecoder(DefaultDecodeConfig())
	ts := time.Now()
	var ev Event
	b.ReportAllocs()
	b.SetBytes(300)
	b.ResetTimer()
	for i := range b.N {
		if err := d.Decode(nil, evs[i%len(evs)], ts, &ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBatchBuild measures decoding polled records into a batch, as the
// poll loop does.
func BenchmarkBatchBuild(b *testing.B) {
	evs := benchEvents(b, 50000)
	recs := make([]*kgo.Record, len(evs))
	for i, v := range evs {
		recs[i] = &kgo.Record{Topic: "t", Partition: int32(i % 4), Offset: int64(i), Value: v, Timestamp: time.Now()}
	}
	p, err := New(DefaultBatchConfig(), DefaultDecodeConfig(), Deps{Writer: nopWriter{}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(300 * len(recs)))
	b.ResetTimer()
	for range b.N {
		l := &loop{dec: NewDecoder(p.dec), batch: newBatcher(p.cfg, &p.seq, nil)}
		p.addAll(context.Background(), l, recs)
		if l.batch.pending().Len() != len(recs) {
			b.Fatalf("batch has %d records", l.batch.pending().Len())
		}
	}
}

type nopWriter struct{}

func (nopWriter) Write(context.Context, *Batch) error { return nil }

package clickhouse

import (
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"

	"github.com/textpulse/textpulse/processor"
	"github.com/textpulse/textpulse/schemas"
)

func benchRecords(n int) []processor.Record {
	rs := make([]processor.Record, n)
	for i := range rs {
		r := &rs[i]
		r.Topic, r.Partition, r.Offset, r.Timestamp = "events", int32(i%4), int64(i), time.Now()
		r.ID = fmt.Sprintf("%016x", i)
		r.Text = "a realistic social post of about two hundred characters, with a link https://example.com/x and a #tag, padded out with words to reach a typical length for the benchmark of the column path"
		r.Source, r.Author, r.Lang, r.CreatedAt, r.Metadata = "web", "someone", "en", time.Now(), `{"likes":3,"reply":false}`
	}
	return rs
}

// BenchmarkColumnAppend measures turning a batch into ClickHouse native
// columns: building the column slices and appending them, as one INSERT does
// before compressing and sending; raw rows, and rows with every stage's
// results and a 384-dimension embedding.
func BenchmarkColumnAppend(b *testing.B) {
	const n = 10000
	enriched := benchRecords(n)
	vec := make([]float32, 384)
	for i := range enriched {
		enriched[i].Enrichment = &processor.Enrichment{Embedding: vec, EmbeddingModel: "m",
			SentimentLabel: "positive", SentimentScore: 0.9, SentimentModel: "m", EmotionLabel: "joy",
			EmotionLabels: []string{"joy", "anger"}, EmotionScores: []float32{0.9, 0.1}, EmotionModel: "m"}
	}
	for _, bc := range []struct {
		name string
		rs   []processor.Record
	}{{"raw", benchRecords(n)}, {"enriched", enriched}} {
		b.Run(bc.name, func(b *testing.B) {
			benchColumnAppend(b, bc.rs)
		})
	}
}

func benchColumnAppend(b *testing.B, rs []processor.Record) {
	cols := schemas.Columns()
	o := schemas.Options{Dialect: schemas.DialectLegacy}
	b.ReportAllocs()
	b.SetBytes(int64(len(rs)) * 300)
	b.ResetTimer()
	for range b.N {
		cc := make([]column.Interface, len(cols))
		for i, col := range cols {
			c, err := column.Type(col.Type(o)).Column(col.Name, &column.ServerContext{Timezone: time.UTC})
			if err != nil {
				b.Fatal(err)
			}
			cc[i] = c
		}
		col := func(i int) columnAppender { return benchColumn{cc[i]} }
		if err := appendColumns(col, nil, 0, o, cols, rs); err != nil {
			b.Fatal(err)
		}
		for _, c := range cc {
			if c.Rows() != len(rs) {
				b.Fatalf("%s has %d rows", c.Name(), c.Rows())
			}
		}
	}
}

// benchColumn is a driver column as an INSERT's BatchColumn presents it.
type benchColumn struct{ column.Interface }

func (c benchColumn) Append(v any) error {
	_, err := c.Interface.Append(v)
	return err
}

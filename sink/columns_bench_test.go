package sink

import (
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"

	"github.com/textpulse/textpulse/processor"
)

// legacyTypes are the 18.16 column types of the insert columns.
func legacyTypes() map[string]string {
	return map[string]string{
		"kafka_topic": "String", "kafka_partition": "UInt32", "kafka_offset": "UInt64", "kafka_timestamp": "DateTime",
		"event_id": "String", "text": "String", "source": "String", "author": "String", "lang": "String",
		"created_at": "DateTime", "metadata": "String", "embedding": "Array(Float32)", "embedding_model": "String",
		"sentiment_label": "String", "sentiment_score": "Float32", "sentiment_model": "String",
		"emotion_label": "String", "emotion_labels": "Array(String)", "emotion_scores": "Array(Float32)",
		"emotion_model": "String", "status": "String", "failed_stages": "Array(String)",
	}
}

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
// before compressing and sending.
func BenchmarkColumnAppend(b *testing.B) {
	const n = 10000
	rs := benchRecords(n)
	types := legacyTypes()
	names := make([]string, 0, len(types))
	for name := range types {
		names = append(names, name)
	}
	b.ReportAllocs()
	b.SetBytes(n * 300)
	b.ResetTimer()
	for range b.N {
		cols := buildColumns(rs)
		for _, name := range names {
			c, err := column.Type(types[name]).Column(name, &column.ServerContext{Timezone: time.UTC})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.Append(cols.get(name)); err != nil {
				b.Fatal(err)
			}
			if c.Rows() != n {
				b.Fatalf("%s has %d rows", name, c.Rows())
			}
		}
	}
}

package schemas

import (
	"strings"
	"time"

	"github.com/textpulse/textpulse/processor"
)

// Column is one insert column of the main table: its ClickHouse definition
// per dialect, the stage that fills it and how its values come from records.
type Column struct {
	// Name is the column name.
	Name string
	// Legacy and Modern are the column types on DialectLegacy and
	// DialectModern.
	Legacy, Modern string
	// Comment and Codec are rendered on DialectModern only; Codec may be
	// empty.
	Comment, Codec string
	// JSON, when set, replaces the definition for MetadataJSON.
	JSON *Column
	// Stage names the enrichment stage that fills the column; "" for the
	// columns of the input record.
	Stage string
	// Values returns the column of rs in the Go type that clickhouse-go
	// appends without conversion. reuse is nil or what an earlier call for
	// this column returned, once the driver copied it: the result may take
	// its memory, so that an INSERT fills one slice per column, not one per
	// chunk of rows.
	Values func(o Options, rs []processor.Record, reuse any) any
	// Select is the expression that reads the column back in the type of
	// Dest's target; "" selects the column by name.
	Select string
	// Dest returns where a read value of the column goes in a record; nil
	// for a column derived from others (status), which is not read.
	Dest func(r *processor.Record) any
}

// SelectExpr returns the expression that reads the column for the options
// (without an alias: a reader scans by position, and an alias named like
// the column would shadow it in WHERE).
func (c Column) SelectExpr(o Options) string {
	c = c.forOptions(o)
	if c.Select != "" {
		return c.Select
	}
	return c.Name
}

// ReadColumns returns the columns of Columns that are read back into a
// record (those with a Dest), in order.
func ReadColumns() []Column {
	var out []Column
	for _, c := range Columns() {
		if c.Dest != nil {
			out = append(out, c)
		}
	}
	return out
}

// Type returns the column type for the options.
func (c Column) Type(o Options) string {
	c = c.forOptions(o)
	if o.Dialect == DialectModern {
		return c.Modern
	}
	return c.Legacy
}

// forOptions returns the definition that applies to the options.
func (c Column) forOptions(o Options) Column {
	if c.JSON != nil && o.WithDefaults().MetadataType == MetadataJSON {
		return *c.JSON
	}
	return c
}

// define renders the column as it appears in CREATE TABLE.
func (c Column) define(o Options) string {
	c = c.forOptions(o)
	if o.Dialect != DialectModern {
		return c.Name + " " + c.Legacy
	}
	s := c.Name + " " + c.Modern + " COMMENT " + quoteString(c.Comment)
	if c.Codec != "" {
		s += " CODEC(" + c.Codec + ")"
	}
	return s
}

// ofResult builds Column.Values from the stage results of one record; a
// record without results has the zero value of T, or for a slice an empty
// one.
func ofResult[T any](f func(e *processor.Enrichment) T) func(Options, []processor.Record, any) any {
	return func(_ Options, rs []processor.Record, reuse any) any {
		out := sized[T](reuse, len(rs))
		var none processor.Enrichment
		for i := range rs {
			if e := rs[i].Enrichment; e != nil {
				out[i] = f(e)
			} else {
				out[i] = f(&none)
			}
		}
		return out
	}
}

// of builds Column.Values from the value of one record.
func of[T any](f func(r *processor.Record) T) func(Options, []processor.Record, any) any {
	return func(_ Options, rs []processor.Record, reuse any) any {
		out := sized[T](reuse, len(rs))
		for i := range rs {
			out[i] = f(&rs[i])
		}
		return out
	}
}

// sized returns a []T of length n, in the memory of reuse when that is a
// []T large enough.
func sized[T any](reuse any, n int) []T {
	if s, ok := reuse.([]T); ok && cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}

// Type names of the two dialects.
const (
	lcLegacy = "String"
	lcModern = "LowCardinality(String)"
	dtLegacy = "DateTime"
	dtModern = "DateTime64(3)"
)

// Columns returns the insert columns of the main table in insert order:
// the one declaration of the row that the DDL, InsertColumns and the sink
// follow. ingested_at (filled in by the server) and the emotion alias are
// not among them. Adding an enrichment column is one entry here and a
// migration that adds it to existing tables. Each call returns a new slice.
func Columns() []Column {
	return []Column{
		{Name: "kafka_topic", Legacy: "String", Modern: "String", Comment: "Kafka topic the record was consumed from.",
			Values: of(func(r *processor.Record) string { return r.Topic }), Dest: func(r *processor.Record) any { return &r.Topic }},
		{Name: "kafka_partition", Legacy: "UInt32", Modern: "UInt32", Comment: "Kafka partition of the record.",
			Values: of(func(r *processor.Record) uint32 { return uint32(r.Partition) }), Select: "toInt32(kafka_partition)", Dest: func(r *processor.Record) any { return &r.Partition }}, //nolint:gosec // Kafka partitions are non-negative.
		{Name: "kafka_offset", Legacy: "UInt64", Modern: "UInt64", Comment: "Kafka offset of the record.", Codec: "Delta, ZSTD(1)",
			Values: of(func(r *processor.Record) uint64 { return uint64(r.Offset) }), Select: "toInt64(kafka_offset)", Dest: func(r *processor.Record) any { return &r.Offset }}, //nolint:gosec // Kafka offsets are non-negative.
		{Name: "kafka_timestamp", Legacy: dtLegacy, Modern: dtModern, Comment: "Kafka record timestamp.", Codec: "DoubleDelta, ZSTD(1)",
			Values: of(func(r *processor.Record) time.Time { return r.Timestamp }), Dest: func(r *processor.Record) any { return &r.Timestamp }},
		{Name: "event_id", Legacy: "String", Modern: "String", Comment: "Event id from the producer, may be empty.", Codec: "ZSTD(1)",
			Values: of(func(r *processor.Record) string { return r.ID }), Dest: func(r *processor.Record) any { return &r.ID }},
		{Name: "text", Legacy: "String", Modern: "String", Comment: "Event text as received.", Codec: "ZSTD(3)",
			Values: of(func(r *processor.Record) string { return r.Text }), Dest: func(r *processor.Record) any { return &r.Text }},
		{Name: "source", Legacy: lcLegacy, Modern: lcModern, Comment: "Producer-defined source of the event.",
			Values: of(func(r *processor.Record) string { return r.Source }), Dest: func(r *processor.Record) any { return &r.Source }},
		{Name: "author", Legacy: "String", Modern: "String", Comment: "Author of the text, may be empty.", Codec: "ZSTD(1)",
			Values: of(func(r *processor.Record) string { return r.Author }), Dest: func(r *processor.Record) any { return &r.Author }},
		{Name: "lang", Legacy: lcLegacy, Modern: lcModern, Comment: "Language code of the text, may be empty.",
			Values: of(func(r *processor.Record) string { return r.Lang }), Dest: func(r *processor.Record) any { return &r.Lang }},
		{Name: "created_at", Legacy: dtLegacy, Modern: dtModern, Codec: "DoubleDelta, ZSTD(1)",
			Comment: "When the text was created, or the Kafka timestamp when the event has none.",
			Values:  of(func(r *processor.Record) time.Time { return r.CreatedAt }), Dest: func(r *processor.Record) any { return &r.CreatedAt }},
		metadataColumn(),
		{Name: "embedding", Legacy: "Array(Float32)", Modern: "Array(Float32)", Stage: "embedding",
			Comment: "L2-normalised text embedding, empty when not computed.",
			Values:  ofResult(func(e *processor.Enrichment) []float32 { return nonNil(e.Embedding) }), Dest: func(r *processor.Record) any { return &r.Result().Embedding }},
		{Name: "embedding_model", Legacy: lcLegacy, Modern: lcModern, Stage: "embedding", Comment: "Model that computed the embedding.",
			Values: ofResult(func(e *processor.Enrichment) string { return e.EmbeddingModel }), Dest: func(r *processor.Record) any { return &r.Result().EmbeddingModel }},
		{Name: "sentiment_label", Legacy: lcLegacy, Modern: lcModern, Stage: "sentiment", Comment: "Sentiment label, empty when absent.",
			Values: ofResult(func(e *processor.Enrichment) string { return e.SentimentLabel }), Dest: func(r *processor.Record) any { return &r.Result().SentimentLabel }},
		{Name: "sentiment_score", Legacy: "Float32", Modern: "Float32", Stage: "sentiment", Comment: "Score of sentiment_label, 0 when absent.",
			Values: ofResult(func(e *processor.Enrichment) float32 { return e.SentimentScore }), Dest: func(r *processor.Record) any { return &r.Result().SentimentScore }},
		{Name: "sentiment_model", Legacy: lcLegacy, Modern: lcModern, Stage: "sentiment", Comment: "Model that computed the sentiment.",
			Values: ofResult(func(e *processor.Enrichment) string { return e.SentimentModel }), Dest: func(r *processor.Record) any { return &r.Result().SentimentModel }},
		{Name: "emotion_label", Legacy: lcLegacy, Modern: lcModern, Stage: "emotion", Comment: "Emotion with the highest score, empty when absent.",
			Values: ofResult(func(e *processor.Enrichment) string { return e.EmotionLabel }), Dest: func(r *processor.Record) any { return &r.Result().EmotionLabel }},
		{Name: "emotion_labels", Legacy: "Array(" + lcLegacy + ")", Modern: "Array(" + lcModern + ")", Stage: "emotion",
			Comment: "Emotion labels, parallel to emotion_scores.",
			Values:  ofResult(func(e *processor.Enrichment) []string { return nonNil(e.EmotionLabels) }), Dest: func(r *processor.Record) any { return &r.Result().EmotionLabels }},
		{Name: "emotion_scores", Legacy: "Array(Float32)", Modern: "Array(Float32)", Stage: "emotion",
			Comment: "Emotion scores, parallel to emotion_labels.",
			Values:  ofResult(func(e *processor.Enrichment) []float32 { return nonNil(e.EmotionScores) }), Dest: func(r *processor.Record) any { return &r.Result().EmotionScores }},
		{Name: "emotion_model", Legacy: lcLegacy, Modern: lcModern, Stage: "emotion", Comment: "Model that computed the emotions.",
			Values: ofResult(func(e *processor.Enrichment) string { return e.EmotionModel }), Dest: func(r *processor.Record) any { return &r.Result().EmotionModel }},
		{Name: "status", Legacy: lcLegacy, Modern: lcModern, Comment: "ok when every enabled stage produced a result, partial otherwise.",
			Values: of(func(r *processor.Record) string { return r.Status() })},
		{Name: "failed_stages", Legacy: "Array(String)", Modern: "Array(String)", Comment: "Stages whose failure left their columns empty.",
			Values: ofResult(func(e *processor.Enrichment) []string { return nonNil(e.FailedStages) }), Dest: func(r *processor.Record) any { return &r.Result().FailedStages }},
		{Name: "revision", Legacy: "UInt32", Modern: "UInt32",
			Comment: "0 for the row the consumer wrote, n for the n-th new version written by consumer enrich. The newest row of a key wins.",
			Values:  of(func(r *processor.Record) uint32 { return r.Revision }), Dest: func(r *processor.Record) any { return &r.Revision }},
	}
}

// metadataColumn is the metadata column: String, or JSON (which refuses the
// empty string, so absent metadata is written as "{}").
func metadataColumn() Column {
	return Column{
		Name: "metadata", Legacy: "String", Modern: "String", Codec: "ZSTD(3)",
		Comment: "Raw JSON text of the event metadata object, empty when absent.",
		JSON: &Column{Name: "metadata", Legacy: "JSON", Modern: "JSON", Codec: "ZSTD(3)",
			Comment: "Event metadata object, {} when absent; paths read as metadata.a.b.", Select: "toJSONString(metadata)"},
		Dest: func(r *processor.Record) any { return &r.Metadata },
		Values: func(o Options, rs []processor.Record, reuse any) any {
			json := o.WithDefaults().MetadataType == MetadataJSON
			out := sized[string](reuse, len(rs))
			for i := range rs {
				out[i] = rs[i].Metadata
				if json && out[i] == "" {
					out[i] = "{}"
				}
			}
			return out
		},
	}
}

// ColumnNamed returns the insert column of that name, and whether there is one.
func ColumnNamed(name string) (Column, bool) {
	for _, c := range Columns() {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// InsertColumns returns the names of Columns, in order. Each call returns a
// new slice.
func InsertColumns() []string {
	cols := Columns()
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return names
}

// renderColumns renders the column list of CREATE TABLE for Columns: each
// definition on its own indented line, followed by a comma.
func renderColumns(o Options) string {
	var b strings.Builder
	for _, c := range Columns() {
		b.WriteString("\n    " + c.define(o) + ",")
	}
	return b.String()
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

package sink

import (
	"fmt"
	"strings"
	"time"

	"github.com/textpulse/textpulse/processor"
)

// columns holds one batch in columnar form, in the Go types that
// clickhouse-go appends without conversion.
type columns struct {
	topic          []string
	partition      []uint32
	offset         []uint64
	timestamp      []time.Time
	eventID        []string
	text           []string
	source         []string
	author         []string
	lang           []string
	createdAt      []time.Time
	metadata       []string
	embedding      [][]float32
	embeddingModel []string
	sentLabel      []string
	sentScore      []float32
	sentModel      []string
	emoLabel       []string
	emoLabels      [][]string
	emoScores      [][]float32
	emoModel       []string
	status         []string
	failedStages   [][]string
}

func buildColumns(rs []processor.Record) *columns {
	n := len(rs)
	c := &columns{
		topic: make([]string, n), partition: make([]uint32, n), offset: make([]uint64, n),
		timestamp: make([]time.Time, n), eventID: make([]string, n), text: make([]string, n),
		source: make([]string, n), author: make([]string, n), lang: make([]string, n),
		createdAt: make([]time.Time, n), metadata: make([]string, n), embedding: make([][]float32, n),
		embeddingModel: make([]string, n), sentLabel: make([]string, n), sentScore: make([]float32, n),
		sentModel: make([]string, n), emoLabel: make([]string, n), emoLabels: make([][]string, n),
		emoScores: make([][]float32, n), emoModel: make([]string, n), status: make([]string, n),
		failedStages: make([][]string, n),
	}
	for i := range rs {
		r := &rs[i]
		c.topic[i] = r.Topic
		c.partition[i] = uint32(r.Partition) //nolint:gosec // Kafka partitions are non-negative.
		c.offset[i] = uint64(r.Offset)       //nolint:gosec // Kafka offsets are non-negative.
		c.timestamp[i] = r.Timestamp
		c.eventID[i] = r.ID
		c.text[i] = r.Text
		c.source[i] = r.Source
		c.author[i] = r.Author
		c.lang[i] = r.Lang
		c.createdAt[i] = r.CreatedAt
		c.metadata[i] = r.Metadata
		c.embedding[i] = nonNilF(r.Embedding)
		c.embeddingModel[i] = r.EmbeddingModel
		c.sentLabel[i] = r.SentimentLabel
		c.sentScore[i] = r.SentimentScore
		c.sentModel[i] = r.SentimentModel
		c.emoLabel[i] = r.EmotionLabel
		c.emoLabels[i] = nonNilS(r.EmotionLabels)
		c.emoScores[i] = nonNilF(r.EmotionScores)
		c.emoModel[i] = r.EmotionModel
		c.status[i] = r.Status()
		c.failedStages[i] = nonNilS(r.FailedStages)
	}
	return c
}

// emptyMetadataAsObject turns absent metadata into "{}", the empty object,
// for a JSON metadata column, which refuses the empty string.
func (c *columns) emptyMetadataAsObject() {
	for i, m := range c.metadata {
		if m == "" {
			c.metadata[i] = "{}"
		}
	}
}

func nonNilF(v []float32) []float32 {
	if v == nil {
		return []float32{}
	}
	return v
}

func nonNilS(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// get returns the column slice for a column name, or nil for a name the
// sink cannot fill.
func (c *columns) get(name string) any {
	switch name {
	case "kafka_topic":
		return c.topic
	case "kafka_partition":
		return c.partition
	case "kafka_offset":
		return c.offset
	case "kafka_timestamp":
		return c.timestamp
	case "event_id":
		return c.eventID
	case "text":
		return c.text
	case "source":
		return c.source
	case "author":
		return c.author
	case "lang":
		return c.lang
	case "created_at":
		return c.createdAt
	case "metadata":
		return c.metadata
	case "embedding":
		return c.embedding
	case "embedding_model":
		return c.embeddingModel
	case "sentiment_label":
		return c.sentLabel
	case "sentiment_score":
		return c.sentScore
	case "sentiment_model":
		return c.sentModel
	case "emotion_label":
		return c.emoLabel
	case "emotion_labels":
		return c.emoLabels
	case "emotion_scores":
		return c.emoScores
	case "emotion_model":
		return c.emoModel
	case "status":
		return c.status
	case "failed_stages":
		return c.failedStages
	}
	return nil
}

// checkColumns verifies that the sink can fill every insert column.
func checkColumns(cols []string) error {
	probe := buildColumns(nil)
	for _, name := range cols {
		if probe.get(name) == nil {
			return fmt.Errorf("insert column %q: %w", name, ErrUnknownColumn)
		}
	}
	return nil
}

func insertSQL(db, table string, cols []string) string {
	return "INSERT INTO " + quoteIdent(db) + "." + quoteIdent(table) + " (" + strings.Join(cols, ", ") + ")"
}

func quoteIdent(s string) string {
	return "`" + strings.ReplaceAll(s, "`", "``") + "`"
}

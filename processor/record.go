// Package processor turns polled Kafka records into enriched rows: it decodes
// events, cuts micro-batches, runs the enrichment stages of each batch
// concurrently, hands the batch to a Writer and commits offsets only after the
// write succeeded.
package processor

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Event is a decoded input event, see schemas/event.schema.json.
type Event struct {
	ID        string
	Text      string
	Source    string
	Author    string
	Lang      string
	CreatedAt time.Time
	// Metadata is the raw JSON text of the metadata object, or "" when absent.
	Metadata string
}

// Enrichment holds what the stages computed for one record. A zero value
// means the stage did not run or did not produce a result; FailedStages says
// which of those were failures rather than disabled stages.
type Enrichment struct {
	Embedding      []float32
	EmbeddingModel string

	SentimentLabel string
	SentimentScore float32
	SentimentModel string

	EmotionLabel  string
	EmotionLabels []string
	EmotionScores []float32
	EmotionModel  string

	// FailedStages lists the stages whose failure policy wrote the row
	// without their result.
	FailedStages []string
}

// Record is one Kafka record that decoded into an Event, with the
// coordinates that identify it in its source topic.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time

	Event
	// Enrichment is nil until the batch is prepared for stages (see
	// Batch.PrepareResults), so that a raw-ingest row does not carry room
	// for results it never gets. A copy of a Record shares it: see Copy.
	*Enrichment

	// Revision is 0 for a row the consumer writes and n for the n-th new
	// version of the row written by re-enrichment.
	Revision uint32

	// source is what of the consumed record a dead letter carries besides
	// the coordinates. It is kept rather than the *kgo.Record, so that the
	// client's record structs are not held for the life of the batch.
	source recordSource
}

// recordSource is the part of a consumed record that dead-lettering needs
// besides the coordinates of its Record.
type recordSource struct {
	key, value []byte
	headers    []kgo.RecordHeader
	epoch      int32
}

// consumed returns the record as consumed, for a dead letter, or nil for a
// Record that was not consumed by a pipeline.
func (r *Record) consumed() *kgo.Record {
	if r.source.value == nil && r.source.key == nil && r.source.headers == nil {
		return nil
	}
	return &kgo.Record{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp,
		Key: r.source.key, Value: r.source.value, Headers: r.source.headers, LeaderEpoch: r.source.epoch,
	}
}

// Status returns the per-row status written to the sink: "ok" when every
// enabled stage produced a result, "partial" otherwise.
func (r *Record) Status() string {
	if r.Enrichment != nil && len(r.FailedStages) > 0 {
		return "partial"
	}
	return "ok"
}

// DeadLetter is an input that will not be written as a row, with the reason.
type DeadLetter struct {
	// Record is the record as consumed from the source topic.
	Record *kgo.Record
	// Stage is where it failed: "decode", a stage name, or "sink".
	Stage string
	// Class is the error class, a stable snake_case word.
	Class ErrorClass
	// Reason is the error message.
	Reason string
	// Attempts is how many times the failing step was tried.
	Attempts int
	// Time is when the input was dead-lettered.
	Time time.Time
}

// TopicPartition names a partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// RowKey is the key of a stored row, its Kafka coordinates; rows order by
// topic, partition and offset.
type RowKey struct {
	Topic     string
	Partition int32
	Offset    int64
}

// Key returns the key of r's row.
func (r *Record) Key() RowKey {
	return RowKey{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
}

// OffsetSpan is an inclusive offset range with the leader epoch of its last
// record.
type OffsetSpan struct {
	First, Last int64
	LastEpoch   int32
}

// Batch is a micro-batch cut from one or more polls. The pipeline owns a
// batch. Stages run concurrently on the same batch: each writes only its own
// Enrichment fields of the records, may call Reject (which is safe for
// concurrent use), and must not keep references after returning.
type Batch struct {
	// ID identifies the batch in logs and errors.
	ID string
	// Records are the rows to write, in offset order per partition.
	Records []Record
	// DeadLetters are the inputs that will not be written as rows.
	DeadLetters []DeadLetter
	// Bytes is the size of the raw record values in the batch.
	Bytes int
	// DedupScope, when set, prefixes DedupToken, so that a write of the
	// same offsets for another purpose (a new version of the rows) is not
	// taken by the server for a retry of the consumer's insert.
	DedupScope string
	// held is Bytes plus the results the stages are expected to add, such
	// as embedding vectors: what batch.max_bytes bounds.
	held int

	// spans records the offset range per topic partition that the batch
	// covers, including records that went to DeadLetters.
	spans map[TopicPartition]OffsetSpan

	// reads are the stored-offset reads of the partitions taken over that
	// the batch holds records of; stored counts the records dropped because
	// their rows were already stored.
	reads  map[TopicPartition]*stored
	stored int

	mu       sync.Mutex
	rejected map[int]DeadLetter
	// prepared is set once PrepareResults ran.
	prepared bool
}

// NewBatch returns an empty batch with the given ID.
func NewBatch(id string) *Batch {
	return &Batch{ID: id, spans: make(map[TopicPartition]OffsetSpan)}
}

// Len returns the number of inputs in the batch, rows and dead letters.
func (b *Batch) Len() int { return len(b.Records) + len(b.DeadLetters) }

// Spans returns the offset ranges the batch covers per partition. The map
// must not be modified.
func (b *Batch) Spans() map[TopicPartition]OffsetSpan { return b.spans }

// cover extends the spans of the batch with a consumed record.
func (b *Batch) cover(topic string, partition int32, offset int64, epoch int32) {
	tp := TopicPartition{Topic: topic, Partition: partition}
	s, ok := b.spans[tp]
	if !ok || offset < s.First {
		s.First = offset
	}
	if !ok || offset >= s.Last {
		s.Last = offset
		s.LastEpoch = epoch
	}
	b.spans[tp] = s
}

// DedupToken returns a deterministic token derived from the source offsets of
// the batch, usable as an insert deduplication token: the same records cut
// into the same batch yield the same token.
func (b *Batch) DedupToken() string {
	parts := make([]string, 0, len(b.spans))
	for tp, s := range b.spans {
		parts = append(parts, tp.Topic+":"+strconv.Itoa(int(tp.Partition))+":"+
			strconv.FormatInt(s.First, 10)+"-"+strconv.FormatInt(s.Last, 10))
	}
	slices.Sort(parts)
	if b.stored > 0 {
		// Fewer rows than the spans cover: the token must not match an
		// INSERT of the whole spans.
		parts = append(parts, "stored:"+strconv.Itoa(b.stored))
	}
	if b.DedupScope != "" {
		return b.DedupScope + ":" + strings.Join(parts, ",")
	}
	return strings.Join(parts, ",")
}

// Reject marks record i for the dead-letter topic with the stage, class and
// error that caused it; the record is then not written as a row. Reject is
// safe for concurrent use by stages; the first rejection of a record wins.
func (b *Batch) Reject(i int, stage string, class ErrorClass, err error, attempts int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rejected == nil {
		b.rejected = make(map[int]DeadLetter)
	}
	if _, ok := b.rejected[i]; ok {
		return
	}
	b.rejected[i] = DeadLetter{
		Record:   b.Records[i].consumed(),
		Stage:    stage,
		Class:    class,
		Reason:   err.Error(),
		Attempts: attempts,
		Time:     time.Now(),
	}
}

// Rejected returns the dead letters that stages asked for so far, by record
// index; they leave Records once every stage has returned. It is safe for
// concurrent use and returns a copy.
func (b *Batch) Rejected() map[int]DeadLetter {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.rejected)
}

// applyRejects moves rejected records from Records to DeadLetters, keeping
// the order of the rest. It runs after all stages returned.
func (b *Batch) applyRejects() {
	if len(b.rejected) == 0 {
		return
	}
	kept := b.Records[:0]
	for i := range b.Records {
		if dl, ok := b.rejected[i]; ok {
			b.DeadLetters = append(b.DeadLetters, dl)
			continue
		}
		kept = append(kept, b.Records[i])
	}
	clear(b.Records[len(kept):])
	b.Records = kept
	b.rejected = nil
}

// Append adds r to the records of the batch and extends its offset spans,
// for building batches outside a pipeline, such as in tests of Writers and
// Stages. A record without an Enrichment gets one.
func (b *Batch) Append(r Record) {
	b.cover(r.Topic, r.Partition, r.Offset, -1)
	if r.Enrichment == nil {
		r.Enrichment = &Enrichment{}
	}
	b.Records = append(b.Records, r)
}

// PrepareResults gives every record of the batch an Enrichment, for stages
// to write their results into; the Enrichments of one batch share one
// allocation. Stages call it before they write; it is safe for concurrent
// use and does nothing once done.
func (b *Batch) PrepareResults() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.prepared {
		return
	}
	b.prepared = true
	missing := 0
	for i := range b.Records {
		if b.Records[i].Enrichment == nil {
			missing++
		}
	}
	if missing == 0 {
		return
	}
	slab := make([]Enrichment, missing)
	for i := range b.Records {
		if b.Records[i].Enrichment == nil {
			b.Records[i].Enrichment = &slab[0]
			slab = slab[1:]
		}
	}
}

// Copy returns r with an Enrichment of its own (the results are copied;
// their slices are shared), so that stages writing to the copy leave r as
// it is.
func (r Record) Copy() Record {
	if r.Enrichment != nil {
		e := *r.Enrichment
		r.Enrichment = &e
	}
	return r
}

// Result returns the Enrichment of r, giving it one if it has none; it is
// for code that owns r alone, such as a reader filling rows.
func (r *Record) Result() *Enrichment {
	if r.Enrichment == nil {
		r.Enrichment = &Enrichment{}
	}
	return r.Enrichment
}

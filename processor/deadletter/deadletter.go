// Package deadletter stores and reads back dead letters: the textpulse.* header
// format, a Kafka producer for processor.DeadLetterSink, the codec that
// replays a dead letter to its source topic, a reader of dead-letter topics
// (Scan) and the Replayer that re-publishes what it reads.
package deadletter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/textpulse/textpulse/processor"
)

// Dead-letter header keys. Replay tools read them back.
const (
	HeaderTopic      = "textpulse.topic"
	HeaderPartition  = "textpulse.partition"
	HeaderOffset     = "textpulse.offset"
	HeaderTimestamp  = "textpulse.timestamp"
	HeaderStage      = "textpulse.stage"
	HeaderErrorClass = "textpulse.error_class"
	HeaderError      = "textpulse.error"
	HeaderAttempts   = "textpulse.attempts"
	HeaderTime       = "textpulse.time"
	// HeaderValueBytes is set only on a dead letter whose key or value was
	// cut because the dead-letter topic refused the whole record: it holds
	// the original value size, and the original stays in the source topic
	// at the coordinates in the other headers.
	HeaderValueBytes = "textpulse.value_bytes"
)

// Sizes a dead letter is cut to when the dead-letter topic refuses it as
// too large.
const (
	truncatedValueBytes = 64 << 10
	// truncatedKeyBytes bounds the key and, separately, the user headers.
	truncatedKeyBytes = 4 << 10
)

// maxReasonBytes caps the error message carried in a header.
const maxReasonBytes = 1024

// Producer produces dead letters to a Kafka topic: the original key,
// value and headers, plus textpulse.* headers that say where the record came
// from and why it was rejected.
type Producer struct {
	cl        *kgo.Client
	topic     string
	log       *slog.Logger
	produced  prometheus.Counter
	retries   prometheus.Counter
	truncated prometheus.Counter
}

// NewProducer returns a sink producing to topic through cl.
func NewProducer(cl *kgo.Client, topic string, log *slog.Logger, reg prometheus.Registerer) *Producer {
	f := promauto.With(reg)
	return &Producer{
		cl:    cl,
		topic: topic,
		log:   log,
		produced: f.NewCounter(prometheus.CounterOpts{
			Name: "textpulse_dead_letter_records_produced_total",
			Help: "Records produced to the dead-letter topic.",
		}),
		retries: f.NewCounter(prometheus.CounterOpts{
			Name: "textpulse_dead_letter_produce_retries_total",
			Help: "Retried produce calls to the dead-letter topic.",
		}),
		truncated: f.NewCounter(prometheus.CounterOpts{
			Name: "textpulse_dead_letter_truncated_total",
			Help: "Dead letters stored with their value cut because the dead-letter topic refused them as too large.",
		}),
	}
}

// Send produces dls and waits for the broker's acknowledgement, retrying
// with exponential backoff until every record is acknowledged or ctx is done.
// A dead letter that the producer or the topic refuses as too large is
// produced again with its value cut to 64 KiB (and its key to 4 KiB) and a
// textpulse.value_bytes header with the original size, instead of blocking
// its partition forever; the original stays in the source topic.
func (k *Producer) Send(ctx context.Context, dls []processor.DeadLetter) error {
	pending := make([]*kgo.Record, 0, len(dls))
	for i := range dls {
		pending = append(pending, Record(k.topic, &dls[i]))
	}
	bo := backoff.NewExponentialBackOff()
	bo.MaxInterval = 10 * time.Second
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		results := k.cl.ProduceSync(ctx, pending...)
		var failed []*kgo.Record
		var firstErr error
		for _, r := range results {
			if r.Err != nil {
				if errors.Is(r.Err, kerr.MessageTooLarge) && truncate(r.Record) {
					k.truncated.Inc()
					k.log.Warn("dead letter too large, value cut", "topic", k.topic, "value_bytes", headerValue(r.Record, HeaderValueBytes))
				}
				failed = append(failed, r.Record)
				if firstErr == nil {
					firstErr = r.Err
				}
			}
		}
		k.produced.Add(float64(len(pending) - len(failed)))
		if len(failed) == 0 {
			return struct{}{}, nil
		}
		if errors.Is(firstErr, kgo.ErrClientClosed) {
			return struct{}{}, backoff.Permanent(firstErr)
		}
		k.retries.Inc()
		k.log.Warn("produce dead letters", "topic", k.topic, "failed", len(failed), "err", firstErr)
		pending = failed
		return struct{}{}, firstErr
	}, backoff.WithBackOff(bo), backoff.WithMaxElapsedTime(0))
	if err != nil {
		return fmt.Errorf("produce %d dead letters to %s: %w", len(pending), k.topic, err)
	}
	return nil
}

// Record builds the record that carries dl to topic. When the
// source record carries a textpulse.attempts header (a replayed dead letter),
// the attempts of dl are added to it, so that a record failing again after a
// replay says how often it was tried in all.
func Record(topic string, dl *processor.DeadLetter) *kgo.Record {
	src := dl.Record
	reason := clipReason(dl.Reason)
	r := &kgo.Record{Topic: topic}
	var hdrs []kgo.RecordHeader
	attempts := dl.Attempts
	if src != nil {
		r.Key = src.Key
		r.Value = src.Value
		hdrs = make([]kgo.RecordHeader, 0, len(src.Headers)+9)
		for _, h := range src.Headers {
			if !isTextpulseHeader(h.Key) {
				hdrs = append(hdrs, h)
				continue
			}
			// A replayed dead letter carries the attempts of its earlier
			// deliveries; this failure adds to them.
			if h.Key == HeaderAttempts {
				if prior, err := parseAttempts(h.Value); err == nil {
					attempts = addAttempts(prior, dl.Attempts)
				}
			}
		}
		hdrs = append(hdrs,
			kgo.RecordHeader{Key: HeaderTopic, Value: []byte(src.Topic)},
			kgo.RecordHeader{Key: HeaderPartition, Value: []byte(strconv.Itoa(int(src.Partition)))},
			kgo.RecordHeader{Key: HeaderOffset, Value: []byte(strconv.FormatInt(src.Offset, 10))},
			kgo.RecordHeader{Key: HeaderTimestamp, Value: []byte(src.Timestamp.UTC().Format(time.RFC3339Nano))},
		)
	}
	hdrs = append(hdrs,
		kgo.RecordHeader{Key: HeaderStage, Value: []byte(dl.Stage)},
		kgo.RecordHeader{Key: HeaderErrorClass, Value: []byte(dl.Class)},
		kgo.RecordHeader{Key: HeaderError, Value: []byte(reason)},
		kgo.RecordHeader{Key: HeaderAttempts, Value: []byte(strconv.Itoa(attempts))},
		kgo.RecordHeader{Key: HeaderTime, Value: []byte(dl.Time.UTC().Format(time.RFC3339Nano))},
	)
	r.Headers = hdrs
	return r
}

// clipReason keeps an error message within maxReasonBytes, keeping its
// start and its end, where wrapped errors put the cause.
func clipReason(r string) string {
	if len(r) <= maxReasonBytes {
		return r
	}
	const sep = " ... "
	head := (maxReasonBytes - len(sep)) / 2
	tail := maxReasonBytes - len(sep) - head
	return strings.ToValidUTF8(r[:head]+sep+r[len(r)-tail:], "")
}

// truncate cuts the key and value of a dead-letter record that was refused
// as too large and records the original value size in a header; it reports
// false when r was cut already.
func truncate(r *kgo.Record) bool {
	if headerValue(r, HeaderValueBytes) != "" {
		return false
	}
	r.Headers = append(r.Headers, kgo.RecordHeader{Key: HeaderValueBytes, Value: []byte(strconv.Itoa(len(r.Value)))})
	if len(r.Value) > truncatedValueBytes {
		r.Value = r.Value[:truncatedValueBytes]
	}
	if len(r.Key) > truncatedKeyBytes {
		r.Key = r.Key[:truncatedKeyBytes]
	}
	kept, budget := r.Headers[:0], truncatedKeyBytes
	for _, h := range r.Headers {
		if !isTextpulseHeader(h.Key) {
			if budget -= len(h.Key) + len(h.Value); budget < 0 {
				continue
			}
		}
		kept = append(kept, h)
	}
	r.Headers = kept
	return true
}

func headerValue(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func isTextpulseHeader(k string) bool {
	return len(k) > len("textpulse.") && k[:len("textpulse.")] == "textpulse."
}

// maxAttempts caps the attempts counted across replays, so that a counter
// read from a header cannot overflow.
const maxAttempts = 1 << 30

func parseAttempts(v []byte) (int, error) {
	n, err := strconv.Atoi(string(v))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: %s %q is not a non-negative integer", ErrBadHeader, HeaderAttempts, v)
	}
	return min(n, maxAttempts), nil
}

func addAttempts(a, b int) int {
	return min(a+max(b, 0), maxAttempts)
}

// Info is what the textpulse.* headers of a dead letter say about
// it. Absent headers leave their fields zero; HasSource says whether the
// source coordinates were present.
type Info struct {
	// Topic, Partition, Offset and Timestamp locate the record in its
	// source topic.
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time
	// HasSource is set when the topic, partition and offset headers are
	// all present.
	HasSource bool
	// Stage, Class and Error say where and why it was rejected.
	Stage string
	Class processor.ErrorClass
	Error string
	// Attempts is how often the failing step was tried, over every
	// delivery of the record.
	Attempts int
	// Time is when it was dead-lettered.
	Time time.Time
	// ValueBytes is the original value size of a dead letter whose value
	// was cut, and 0 when it was not.
	ValueBytes int
}

// ParseDeadLetterHeaders reads the textpulse.* headers of a dead-letter
// record; other headers are ignored and a repeated header counts once, the
// last one winning. A header whose value cannot be parsed is an error
// wrapping ErrBadHeader, and the fields read so far are returned with it.
func ParseDeadLetterHeaders(hdrs []kgo.RecordHeader) (Info, error) {
	var info Info
	var errs []error
	var seen [3]bool
	for _, h := range hdrs {
		switch h.Key {
		case HeaderTopic:
			info.Topic, seen[0] = string(h.Value), true
		case HeaderPartition:
			p, err := strconv.ParseInt(string(h.Value), 10, 32)
			if err != nil || p < 0 {
				errs = append(errs, fmt.Errorf("%w: %s %q is not a partition", ErrBadHeader, h.Key, h.Value))
				continue
			}
			info.Partition, seen[1] = int32(p), true
		case HeaderOffset:
			o, err := strconv.ParseInt(string(h.Value), 10, 64)
			if err != nil || o < 0 {
				errs = append(errs, fmt.Errorf("%w: %s %q is not an offset", ErrBadHeader, h.Key, h.Value))
				continue
			}
			info.Offset, seen[2] = o, true
		case HeaderTimestamp, HeaderTime:
			t, err := time.Parse(time.RFC3339Nano, string(h.Value))
			if err != nil {
				errs = append(errs, fmt.Errorf("%w: %s %q is not an RFC 3339 time", ErrBadHeader, h.Key, h.Value))
				continue
			}
			if h.Key == HeaderTime {
				info.Time = t.UTC()
			} else {
				info.Timestamp = t.UTC()
			}
		case HeaderStage:
			info.Stage = string(h.Value)
		case HeaderErrorClass:
			info.Class = processor.ErrorClass(h.Value)
		case HeaderError:
			info.Error = string(h.Value)
		case HeaderValueBytes:
			n, err := strconv.Atoi(string(h.Value))
			if err != nil || n < 0 {
				errs = append(errs, fmt.Errorf("%w: %s %q is not a size", ErrBadHeader, h.Key, h.Value))
				continue
			}
			info.ValueBytes = n
		case HeaderAttempts:
			n, err := parseAttempts(h.Value)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			info.Attempts = n
		}
	}
	info.HasSource = seen[0] && seen[1] && seen[2] && info.Topic != ""
	return info, errors.Join(errs...)
}

// ReplayRecord builds the record that re-publishes the dead letter dl to
// topic: its key, value and headers other than textpulse.*, plus a
// textpulse.attempts header with attempts, so that a record that fails again
// is dead-lettered with its attempts counted on. The record has no
// partition set; the producer's partitioner picks one.
func ReplayRecord(topic string, dl *kgo.Record, attempts int) *kgo.Record {
	hdrs := make([]kgo.RecordHeader, 0, len(dl.Headers)+1)
	for _, h := range dl.Headers {
		if !isTextpulseHeader(h.Key) {
			hdrs = append(hdrs, h)
		}
	}
	hdrs = append(hdrs, kgo.RecordHeader{Key: HeaderAttempts, Value: []byte(strconv.Itoa(max(attempts, 0)))})
	return &kgo.Record{Topic: topic, Key: dl.Key, Value: dl.Value, Headers: hdrs}
}

package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/twmb/franz-go/pkg/kgo"
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
)

// maxReasonBytes caps the error message carried in a header.
const maxReasonBytes = 1024

// KafkaDeadLetters produces dead letters to a Kafka topic: the original key,
// value and headers, plus textpulse.* headers that say where the record came
// from and why it was rejected.
type KafkaDeadLetters struct {
	cl       *kgo.Client
	topic    string
	log      *slog.Logger
	produced prometheus.Counter
	retries  prometheus.Counter
}

// NewKafkaDeadLetters returns a sink producing to topic through cl.
func NewKafkaDeadLetters(cl *kgo.Client, topic string, log *slog.Logger, reg prometheus.Registerer) *KafkaDeadLetters {
	f := promauto.With(reg)
	return &KafkaDeadLetters{
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
	}
}

// Send produces dls and waits for the broker's acknowledgement, retrying
// with exponential backoff until every record is acknowledged or ctx is done.
func (k *KafkaDeadLetters) Send(ctx context.Context, dls []DeadLetter) error {
	pending := make([]*kgo.Record, 0, len(dls))
	for i := range dls {
		pending = append(pending, DeadLetterRecord(k.topic, &dls[i]))
	}
	bo := backoff.NewExponentialBackOff()
	bo.MaxInterval = 10 * time.Second
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		results := k.cl.ProduceSync(ctx, pending...)
		var failed []*kgo.Record
		var firstErr error
		for _, r := range results {
			if r.Err != nil {
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

// DeadLetterRecord builds the record that carries dl to topic.
func DeadLetterRecord(topic string, dl *DeadLetter) *kgo.Record {
	src := dl.Record
	reason := dl.Reason
	if len(reason) > maxReasonBytes {
		reason = reason[:maxReasonBytes]
	}
	r := &kgo.Record{Topic: topic}
	var hdrs []kgo.RecordHeader
	if src != nil {
		r.Key = src.Key
		r.Value = src.Value
		hdrs = make([]kgo.RecordHeader, 0, len(src.Headers)+9)
		for _, h := range src.Headers {
			if !isTextpulseHeader(h.Key) {
				hdrs = append(hdrs, h)
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
		kgo.RecordHeader{Key: HeaderAttempts, Value: []byte(strconv.Itoa(dl.Attempts))},
		kgo.RecordHeader{Key: HeaderTime, Value: []byte(dl.Time.UTC().Format(time.RFC3339Nano))},
	)
	r.Headers = hdrs
	return r
}

func isTextpulseHeader(k string) bool {
	return len(k) > len("textpulse.") && k[:len("textpulse.")] == "textpulse."
}

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/textpulse/textpulse/internal/textgen"
)

const (
	// slabSize is the size of the buffers that record keys and values are
	// cut from, which saves an allocation per record.
	slabSize = 1 << 20
	// slabReserve is the free room below which a new slab is started; a
	// larger event gets a buffer of its own.
	slabReserve = 64 << 10
	// recordChunk is how many records are allocated at once.
	recordChunk = 1024
)

// kafkaSink produces events to a topic with franz-go.
type kafkaSink struct {
	cl  *kgo.Client
	key string

	slab []byte       // Free room for record keys and values.
	recs []kgo.Record // Preallocated records not yet used.

	validDone     func(*kgo.Record, error)
	malformedDone func(*kgo.Record, error)

	// Records in flight are bounded here rather than by kgo's
	// MaxBufferedRecords: once high are in flight emit waits until at most
	// low are, which avoids a blocked kgo.Produce per record.
	inflight atomic.Int64
	waiting  atomic.Bool
	wake     chan struct{}
	high     int64
	low      int64

	errMu sync.Mutex
	err   error // First delivery error.
}

// newKafkaSink connects to the brokers, creates the topic if it is missing
// and cfg.createTopic is set, and returns a sink that produces to it.
func newKafkaSink(ctx context.Context, cfg *config, log *slog.Logger, ctrs *counters) (*kafkaSink, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.brokers...),
		kgo.ClientID(cfg.clientID),
		kgo.DefaultProduceTopic(cfg.topic),
		kgo.ProducerLinger(cfg.linger),
		kgo.ProducerBatchCompression(cfg.compression),
		kgo.ProducerBatchMaxBytes(cfg.batchMaxBytes),
		kgo.MaxBufferedRecords(cfg.maxBuffered + 1),
		kgo.RequiredAcks(cfg.acks),
		kgo.RecordDeliveryTimeout(cfg.deliveryTimeout),
		kgo.WithLogger(kgoLogger{log}),
	}
	if !cfg.acksAll {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("create kafka client: %w", err)
	}
	setupCtx, cancel := context.WithTimeout(ctx, cfg.connectTimeout)
	defer cancel()
	if err := cl.Ping(setupCtx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("connect to brokers %v: %w", cfg.brokers, err)
	}
	if cfg.createTopic {
		if err := ensureTopic(setupCtx, kadm.NewClient(cl), cfg, log); err != nil {
			cl.Close()
			return nil, err
		}
	}

	s := &kafkaSink{
		cl:   cl,
		key:  cfg.key,
		wake: make(chan struct{}, 1),
		high: int64(cfg.maxBuffered),
		low:  int64(cfg.maxBuffered / 2),
	}
	s.validDone = s.promise(ctrs, true)
	s.malformedDone = s.promise(ctrs, false)
	return s, nil
}

// ensureTopic creates the topic with the configured partitions and
// replication factor unless it exists.
func ensureTopic(ctx context.Context, adm *kadm.Client, cfg *config, log *slog.Logger) error {
	_, err := adm.CreateTopic(ctx, cfg.partitions, cfg.replication, nil, cfg.topic)
	switch {
	case errors.Is(err, kerr.TopicAlreadyExists):
		log.Info("topic exists", "topic", cfg.topic)
		return nil
	case err != nil:
		return fmt.Errorf("create topic %s: %w", cfg.topic, err)
	}
	log.Info("topic created", "topic", cfg.topic, "partitions", cfg.partitions, "replication_factor", cfg.replication)
	return nil
}

// promise returns the delivery callback for valid or malformed events.
func (s *kafkaSink) promise(ctrs *counters, valid bool) func(*kgo.Record, error) {
	return func(r *kgo.Record, err error) {
		if err != nil {
			s.setErr(fmt.Errorf("produce record: %w", err))
		} else {
			ctrs.add(valid, len(r.Value))
		}
		if n := s.inflight.Add(-1); n <= s.low && s.waiting.Load() {
			select {
			case s.wake <- struct{}{}:
			default:
			}
		}
	}
}

// emit generates an event into the current slab and produces it.
func (s *kafkaSink) emit(ctx context.Context, gen *textgen.Generator) error {
	if s.inflight.Load() >= s.high {
		if err := s.waitRoom(ctx); err != nil {
			return err
		}
	}
	if err := s.firstErr(); err != nil {
		return err
	}
	if cap(s.slab)-len(s.slab) < slabReserve {
		s.slab = make([]byte, 0, slabSize)
	}
	if len(s.recs) == 0 {
		s.recs = make([]kgo.Record, recordChunk)
	}
	r := &s.recs[0]
	s.recs = s.recs[1:]

	dst := s.slab[len(s.slab):]
	ev, info := gen.NextInfo(dst)
	r.Value = s.take(dst, ev)
	switch s.key {
	case keyID:
		dst = s.slab[len(s.slab):]
		r.Key = s.take(dst, appendHex(dst, info.ID))
	case keyAuthor:
		dst = s.slab[len(s.slab):]
		r.Key = s.take(dst, append(dst, info.Author...))
	}

	s.inflight.Add(1)
	done := s.malformedDone
	if info.Kind == textgen.KindValid {
		done = s.validDone
	}
	// The record has no context of its own, so the background context
	// keeps buffered records alive through an interrupt until flush.
	s.cl.Produce(context.Background(), r, done)
	return nil
}

// take returns b with its capacity clipped, and claims its bytes from the
// slab when b was appended in place to dst, the slab's free room.
func (s *kafkaSink) take(dst, b []byte) []byte {
	if len(b) > 0 && len(b) <= cap(dst) && &dst[:1][0] == &b[0] {
		s.slab = s.slab[:len(s.slab)+len(b)]
	}
	return b[:len(b):len(b)]
}

// waitRoom blocks until at most s.low records are in flight or ctx ends.
func (s *kafkaSink) waitRoom(ctx context.Context) error {
	defer s.waiting.Store(false)
	for s.inflight.Load() > s.low {
		s.waiting.Store(true)
		if s.inflight.Load() <= s.low {
			return nil
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// setErr records err if it is the first delivery error.
func (s *kafkaSink) setErr(err error) {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

// firstErr returns the first delivery error, if any.
func (s *kafkaSink) firstErr() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// flush waits until every produced record is acknowledged or failed.
func (s *kafkaSink) flush(ctx context.Context) error {
	if err := s.cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush records: %w", err)
	}
	return s.firstErr()
}

// close closes the client.
func (s *kafkaSink) close() error {
	s.cl.Close()
	return nil
}

// kgoLogger passes franz-go's log lines to slog.
type kgoLogger struct {
	log *slog.Logger
}

// Level returns debug when the slog handler enables debug and warn
// otherwise: franz-go's informational lines are too chatty for a tool.
func (l kgoLogger) Level() kgo.LogLevel {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		return kgo.LogLevelDebug
	}
	return kgo.LogLevelWarn
}

// Log writes one franz-go log line, demoting its info lines to debug.
func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lvl := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		lvl = slog.LevelError
	case kgo.LogLevelWarn:
		lvl = slog.LevelWarn
	}
	l.log.Log(context.Background(), lvl, msg, keyvals...)
}

// appendHex appends v as 16 lowercase hex digits, the form of event ids.
func appendHex(b []byte, v uint64) []byte {
	const digits = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		b = append(b, digits[v>>shift&15])
	}
	return b
}

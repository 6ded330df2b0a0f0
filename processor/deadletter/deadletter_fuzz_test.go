package deadletter

import (
	"errors"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/textpulse/textpulse/processor"
)

// FuzzParseDeadLetterHeaders checks that no header values panic the parser,
// that every failure wraps ErrBadHeader, that parsed values are in range,
// and that a replayed record carries the parsed attempts and no other
// textpulse.* header.
func FuzzParseDeadLetterHeaders(f *testing.F) {
	f.Add("in", "3", "42", "2026-11-01T10:00:00Z", "decode", "invalid_json", "bad", "1", "2026-11-01T10:00:01.5Z")
	f.Add("", "-1", "x", "", "", "", "", "-2", "nope")
	f.Add("t\x00", "2147483648", "9223372036854775808", "2026-13-01T00:00:00Z", "\xff", "", "\xfe", "1e3", "")
	f.Fuzz(func(t *testing.T, topic, partition, offset, ts, stage, class, reason, attempts, when string) {
		hdrs := []kgo.RecordHeader{
			{Key: "user", Value: []byte(reason)},
			{Key: HeaderTopic, Value: []byte(topic)},
			{Key: HeaderPartition, Value: []byte(partition)},
			{Key: HeaderOffset, Value: []byte(offset)},
			{Key: HeaderTimestamp, Value: []byte(ts)},
			{Key: HeaderStage, Value: []byte(stage)},
			{Key: HeaderErrorClass, Value: []byte(class)},
			{Key: HeaderError, Value: []byte(reason)},
			{Key: HeaderAttempts, Value: []byte(attempts)},
			{Key: HeaderTime, Value: []byte(when)},
		}
		info, err := ParseDeadLetterHeaders(hdrs)
		if err != nil && !errors.Is(err, ErrBadHeader) {
			t.Fatalf("error %v does not wrap ErrBadHeader", err)
		}
		if info.Partition < 0 || info.Offset < 0 || info.Attempts < 0 || info.Attempts > maxAttempts {
			t.Fatalf("out of range: %+v", info)
		}
		if info.HasSource && info.Topic == "" {
			t.Fatal("source without a topic")
		}
		r := ReplayRecord("in", &kgo.Record{Value: []byte(reason), Headers: hdrs}, info.Attempts)
		n := 0
		for _, h := range r.Headers {
			switch {
			case h.Key == HeaderAttempts:
				n++
				if string(h.Value) != strconv.Itoa(info.Attempts) {
					t.Fatalf("replayed attempts %q, want %d", h.Value, info.Attempts)
				}
			case isTextpulseHeader(h.Key):
				t.Fatalf("replayed record keeps %s", h.Key)
			}
		}
		if n != 1 {
			t.Fatalf("%d attempts headers", n)
		}
		again, err := ParseDeadLetterHeaders(Record("dlq", &processor.DeadLetter{Record: r, Stage: "decode", Attempts: 1}).Headers)
		if err != nil || again.Attempts != addAttempts(info.Attempts, 1) {
			t.Fatalf("dead-lettered again: attempts %d (%v), want %d", again.Attempts, err, addAttempts(info.Attempts, 1))
		}
	})
}

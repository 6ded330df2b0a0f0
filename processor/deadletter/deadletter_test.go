package deadletter

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/textpulse/textpulse/processor"
)

func TestDeadLetterRoundTripAndReplayAttempts(t *testing.T) {
	src := &kgo.Record{
		Topic: "in", Partition: 3, Offset: 42, Key: []byte("k"), Value: []byte(`{"broken`),
		Timestamp: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC),
		Headers:   []kgo.RecordHeader{{Key: "trace", Value: []byte("t1")}},
	}
	now := time.Date(2026, 11, 1, 10, 0, 1, 0, time.UTC)
	first := Record("dlq", &processor.DeadLetter{Record: src, Stage: "decode", Class: processor.ClassInvalidJSON, Reason: "bad", Attempts: 1, Time: now})
	info, err := ParseDeadLetterHeaders(first.Headers)
	if err != nil {
		t.Fatal(err)
	}
	want := Info{Topic: "in", Partition: 3, Offset: 42, Timestamp: src.Timestamp, HasSource: true,
		Stage: "decode", Class: processor.ClassInvalidJSON, Error: "bad", Attempts: 1, Time: now}
	if info != want {
		t.Fatalf("parsed %+v, want %+v", info, want)
	}

	replayed := ReplayRecord("in", first, info.Attempts)
	if string(replayed.Key) != "k" || string(replayed.Value) != `{"broken` || replayed.Topic != "in" {
		t.Fatalf("replayed record %+v", replayed)
	}
	hdr := map[string]string{}
	for _, h := range replayed.Headers {
		hdr[h.Key] = string(h.Value)
	}
	if len(hdr) != 2 || hdr["trace"] != "t1" || hdr[HeaderAttempts] != "1" {
		t.Fatalf("replayed headers %v: want the user header and the attempts only", hdr)
	}

	// Consumed again from the source topic, it fails again.
	replayed.Partition, replayed.Offset = 0, 7
	second := Record("dlq", &processor.DeadLetter{Record: replayed, Stage: "decode", Class: processor.ClassInvalidJSON, Reason: "bad", Attempts: 1, Time: now})
	info, err = ParseDeadLetterHeaders(second.Headers)
	if err != nil {
		t.Fatal(err)
	}
	if info.Attempts != 2 || info.Offset != 7 || info.Partition != 0 {
		t.Fatalf("second dead letter %+v: want attempts 2 at 0/7", info)
	}
	n := 0
	for _, h := range second.Headers {
		if h.Key == HeaderAttempts {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d attempts headers, want 1", n)
	}
}

func TestParseDeadLetterHeadersRejectsBadValues(t *testing.T) {
	tests := []struct {
		name string
		key  string
		val  string
	}{
		{"negative partition", HeaderPartition, "-1"},
		{"partition past int32", HeaderPartition, "2147483648"},
		{"offset not a number", HeaderOffset, "12a"},
		{"attempts negative", HeaderAttempts, "-3"},
		{"time not RFC 3339", HeaderTime, "yesterday"},
		{"timestamp empty", HeaderTimestamp, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDeadLetterHeaders([]kgo.RecordHeader{{Key: HeaderStage, Value: []byte("decode")}, {Key: tt.key, Value: []byte(tt.val)}})
			if !errors.Is(err, ErrBadHeader) {
				t.Fatalf("error %v, want ErrBadHeader", err)
			}
		})
	}
	info, err := ParseDeadLetterHeaders([]kgo.RecordHeader{{Key: HeaderAttempts, Value: []byte("99999999999")}})
	if err != nil || info.Attempts != maxAttempts {
		t.Fatalf("huge attempts: %+v %v, want capped at %d", info, err, maxAttempts)
	}
}

func TestDeadLetterReasonKeepsStartAndEnd(t *testing.T) {
	long := "decode invalid_json: " + strings.Repeat("cannot parse object: ", 200) + "too big depth for the nested JSON"
	r := Record("dlq", &processor.DeadLetter{Record: &kgo.Record{}, Stage: "decode", Reason: long})
	info, err := ParseDeadLetterHeaders(r.Headers)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Error) > maxReasonBytes || !strings.HasPrefix(info.Error, "decode invalid_json: ") ||
		!strings.HasSuffix(info.Error, "too big depth for the nested JSON") {
		t.Fatalf("reason of %d bytes: %q", len(info.Error), info.Error)
	}
}

package deadletter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/textpulse/textpulse/processor"
)

// fakeProducer acknowledges records, failing those whose value fail
// selects, and returns the results in reverse order, the way completion
// order may differ from the order of the records.
type fakeProducer struct {
	fail  func(*kgo.Record) bool
	calls [][]*kgo.Record
}

func (p *fakeProducer) ProduceSync(_ context.Context, rs ...*kgo.Record) kgo.ProduceResults {
	p.calls = append(p.calls, slices.Clone(rs))
	var out kgo.ProduceResults
	for _, r := range slices.Backward(rs) {
		var err error
		if p.fail != nil && p.fail(r) {
			err = errors.New("refused")
		}
		out = append(out, kgo.ProduceResult{Record: r, Err: err})
	}
	return out
}

// testLetter is the dead letter at partition/offset of a dead-letter topic
// for the record at the same offset of partition 0 of topic "in".
func testLetter(partition int32, offset int64) Letter {
	src := &kgo.Record{Topic: "in", Offset: offset, Value: []byte(strconv.FormatInt(offset, 10))}
	r := Record("dlq", &processor.DeadLetter{Record: src, Stage: "embedding", Class: processor.ClassStageFailed,
		Reason: "down", Attempts: 1, Time: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)})
	r.Partition, r.Offset = partition, offset
	info, err := ParseDeadLetterHeaders(r.Headers)
	return Letter{Record: r, Info: info, Err: err}
}

// scanOf returns a scan over letters.
func scanOf(letters []Letter, err error) scanFunc {
	return func(total func(int64), fn func(Letter) bool) error {
		total(int64(len(letters)))
		for _, l := range letters {
			if !fn(l) {
				return nil
			}
		}
		return err
	}
}

func TestReplaySkipReasons(t *testing.T) {
	badHeader := testLetter(0, 0)
	badHeader.Err = fmt.Errorf("%w: textpulse.offset \"x\" is not an offset", ErrBadHeader)
	cut := testLetter(0, 1)
	cut.Info.ValueBytes = 100
	noSource := testLetter(0, 2)
	noSource.Info.HasSource, noSource.Info.Topic = false, ""
	tests := []struct {
		name    string
		l       Letter
		toTopic string
		reason  string
		target  string
	}{
		{"bad header", badHeader, "", badHeader.Err.Error(), ""},
		{"bad header with to-topic", badHeader, "other", badHeader.Err.Error(), ""},
		{"value cut", cut, "", "value cut from 100 bytes; the original is at in/0/1", ""},
		{"no source", noSource, "", "no source topic in the headers; use --to-topic", ""},
		{"no source with to-topic", noSource, "other", "", "other"},
		{"source", testLetter(0, 3), "", "", "in"},
		{"to-topic", testLetter(0, 3), "other", "", "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prod := &fakeProducer{}
			rp := &Replayer{Topic: "dlq", ToTopic: tt.toTopic}
			rep, err := rp.run(context.Background(), prod, scanOf([]Letter{tt.l}, nil))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Scanned != 1 || rep.Matched != 1 {
				t.Fatalf("report %+v", rep)
			}
			if tt.reason != "" {
				want := []ReplaySkip{{Partition: 0, Offset: tt.l.Record.Offset, Reason: tt.reason}}
				if !slices.Equal(rep.Skipped, want) || rep.Sent != 0 || len(prod.calls) != 0 {
					t.Fatalf("report %+v, %d produce calls; want skipped %+v", rep, len(prod.calls), want)
				}
				return
			}
			if len(rep.Skipped) != 0 || rep.Sent != 1 || rep.ByTarget[tt.target] != 1 || prod.calls[0][0].Topic != tt.target {
				t.Fatalf("report %+v; want one sent to %s", rep, tt.target)
			}
			if got := rep.LastSentOffset["0"]; got != tt.l.Record.Offset {
				t.Fatalf("last sent offset %d, want %d", got, tt.l.Record.Offset)
			}
		})
	}
}

func TestReplayChunksAndFailure(t *testing.T) {
	var letters []Letter
	for i := range 1200 {
		letters = append(letters, testLetter(int32(i%2), int64(i)))
	}
	// One record of the second chunk fails: the chunk is still sent in
	// full, the third is not attempted.
	prod := &fakeProducer{fail: func(r *kgo.Record) bool { return string(r.Value) == "700" }}
	var progress, final int
	rp := &Replayer{Topic: "dlq", Progress: func(rep *ReplayReport, total int64, last bool) {
		if total != 1200 {
			t.Errorf("progress total %d", total)
		}
		progress++
		if last {
			final++
		}
	}}
	rep, err := rp.run(context.Background(), prod, scanOf(letters, nil))
	if !errors.Is(err, ErrReplayIncomplete) || err.Error() != "replay incomplete: 999 sent, 1 failed" {
		t.Fatalf("error %v", err)
	}
	if len(prod.calls) != 2 || len(prod.calls[0]) != replayChunk || len(prod.calls[1]) != replayChunk {
		t.Fatalf("%d produce calls", len(prod.calls))
	}
	want := []ReplaySkip{{Partition: 0, Offset: 700, Reason: "refused"}}
	if rep.Scanned != 1000 || rep.Matched != 1000 || rep.Sent != 999 || !slices.Equal(rep.Failed, want) || rep.ByTarget["in"] != 999 {
		t.Fatalf("report %+v", rep)
	}
	if rep.ResumeFrom["0"] != 999 || rep.ResumeFrom["1"] != 1000 || len(rep.ResumeFrom) != 2 {
		t.Fatalf("resume from %v", rep.ResumeFrom)
	}
	if rep.LastSentOffset["0"] != 998 || rep.LastSentOffset["1"] != 999 {
		t.Fatalf("last sent %v", rep.LastSentOffset)
	}
	if progress != 1001 || final != 1 {
		t.Fatalf("%d progress calls, %d final", progress, final)
	}
}

func TestReplayDryRunMatchAndMax(t *testing.T) {
	var letters []Letter
	for i := range 10 {
		letters = append(letters, testLetter(0, int64(i)))
	}
	even := func(r *kgo.Record, _ *Info) bool { return r.Offset%2 == 0 }
	tests := []struct {
		name                   string
		max                    int
		scanned, matched, want int
		last                   int64
	}{
		{"all", 0, 10, 5, 5, 8},
		{"max", 3, 5, 3, 3, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rp := &Replayer{Topic: "dlq", ToTopic: "out", DryRun: true, Max: tt.max, Match: even}
			rep, err := rp.run(context.Background(), nil, scanOf(letters, nil))
			if err != nil {
				t.Fatal(err)
			}
			if !rep.DryRun || rep.Sent != 0 || rep.Scanned != tt.scanned || rep.Matched != tt.matched ||
				rep.ByTarget["out"] != tt.want || rep.LastSentOffset["0"] != tt.last {
				t.Fatalf("report %+v", rep)
			}
		})
	}
}

func TestReplayScanErrorSendsNoMore(t *testing.T) {
	prod := &fakeProducer{}
	rp := &Replayer{Topic: "dlq"}
	scanErr := errors.New("fetch failed")
	rep, err := rp.run(context.Background(), prod, scanOf([]Letter{testLetter(0, 0)}, scanErr))
	if !errors.Is(err, scanErr) || err.Error() != "replay dlq after sending 0: fetch failed" {
		t.Fatalf("error %v", err)
	}
	if len(prod.calls) != 0 || rep.Matched != 1 || rep.Sent != 0 {
		t.Fatalf("report %+v, %d produce calls", rep, len(prod.calls))
	}
}

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/textpulse/textpulse/processor"
)

// poisonCase is one input of the poison corpus and where it must end up.
type poisonCase struct {
	Name    string
	Value   []byte
	Outcome string // "row" or "dead_letter"
	Stage   string
	Class   processor.ErrorClass
	Error   string // a substring of the dead letter's error
	// ID is the event_id a row must have; empty for dead letters.
	ID string
	// Cut says that the dead letter is too large for the dead-letter
	// topic and is stored with its value cut.
	Cut bool
}

// loadPoisonCorpus reads testdata/poison/cases.json and the files it names,
// and adds the cases too large to keep in the repository, generated here.
func loadPoisonCorpus(t *testing.T) []poisonCase {
	t.Helper()
	dir := filepath.Join("testdata", "poison")
	b, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var manifest []struct {
		File, Outcome, Stage, Class, Error, ID string
	}
	if err := json.Unmarshal(b, &manifest); err != nil {
		t.Fatalf("cases.json: %v", err)
	}
	var cases []poisonCase
	for _, m := range manifest {
		v, err := os.ReadFile(filepath.Join(dir, m.File))
		if err != nil {
			t.Fatal(err)
		}
		c := poisonCase{Name: strings.TrimSuffix(m.File, ".bin"), Value: v, Outcome: m.Outcome, Stage: m.Stage,
			Class: processor.ErrorClass(m.Class), Error: m.Error, ID: m.ID}
		cases = append(cases, c)
	}
	limit := processor.DefaultDecodeConfig().MaxEventBytes
	big := func(id string, metaBytes, textBytes int) []byte {
		text := strings.Repeat("long text past every model limit. ", textBytes/34+1)[:textBytes]
		meta := strings.Repeat("x", metaBytes)
		return fmt.Appendf(nil, `{"id":%q,"text":%q,"metadata":{"blob":%q}}`, id, text, meta)
	}
	cases = append(cases,
		poisonCase{Name: "value-10mb", Value: big("p-10mb", 10<<20, 100), Outcome: "dead_letter", Stage: "decode",
			Class: processor.ClassTooLarge, Error: fmt.Sprintf("exceeds the %d-byte limit", limit), Cut: true},
		poisonCase{Name: "metadata-over-limit", Value: big("p-meta-over", limit, 100), Outcome: "dead_letter", Stage: "decode",
			Class: processor.ClassTooLarge, Error: fmt.Sprintf("exceeds the %d-byte limit", limit), Cut: true},
		poisonCase{Name: "huge-metadata", Value: big("p-meta-huge", 900<<10, 100), Outcome: "row", ID: "p-meta-huge"},
		// About 100K estimated tokens: past the embedding input limit
		// (8191) and the sentiment input limit (2048); the stages cut it.
		poisonCase{Name: "text-past-model-limits", Value: big("p-long-text", 10, 400<<10), Outcome: "row", ID: "p-long-text"},
	)
	return cases
}

// TestPoisonCorpusDecodes checks each corpus input against the decoder
// alone: the class and message it must be rejected with, or acceptance.
func TestPoisonCorpusDecodes(t *testing.T) {
	d := processor.NewDecoder(processor.DefaultDecodeConfig())
	for _, c := range loadPoisonCorpus(t) {
		t.Run(c.Name, func(t *testing.T) {
			var ev processor.Event
			err := d.Decode(nil, c.Value, time.Now(), &ev)
			if c.Outcome == "row" {
				if err != nil || ev.ID != c.ID {
					t.Fatalf("decode: %v (id %q), want a row with id %q", err, ev.ID, c.ID)
				}
				return
			}
			var de *processor.DecodeError
			if !errors.As(err, &de) || de.Class != c.Class || !strings.Contains(err.Error(), c.Error) {
				t.Fatalf("decode error %v, want class %s containing %q", err, c.Class, c.Error)
			}
		})
	}
}

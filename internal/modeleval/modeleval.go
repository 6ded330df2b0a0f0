// Package modeleval measures how well a text classifier labels a held-out
// set: accuracy, macro-F1 and per-label precision, recall and F1, computed
// from the classifier's top label for each text.
package modeleval

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/textpulse/textpulse/gpu"
)

// Example is one labelled text.
type Example struct {
	Text  string `json:"text"`
	Label string `json:"label"`
}

// Classifier labels texts; *gpu.Classifier satisfies it. Classify returns
// one classification per text, in order.
type Classifier interface {
	Classify(ctx context.Context, texts []string) ([]gpu.Classification, error)
}

// LabelScore is the precision, recall and F1 of one label.
type LabelScore struct {
	Label     string
	Support   int // texts whose true label this is
	Predicted int // texts given this label
	Precision float64
	Recall    float64
	F1        float64
}

// Report is the result of one evaluation.
type Report struct {
	Examples int
	Correct  int
	Accuracy float64
	// MacroF1 is the unweighted mean F1 over every label that is a true
	// or a predicted label of some example (as scikit-learn computes it).
	MacroF1 float64
	// Labels are sorted by name.
	Labels []LabelScore
}

// ReadFile reads a JSONL file of examples, one {"text", "label"} object per
// line. A line that is not such an object, a missing label or an empty file
// is an ErrInvalidData error naming the line.
func ReadFile(path string) ([]Example, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open labelled data: %w", err)
	}
	defer func() { _ = f.Close() }()
	examples, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return examples, nil
}

// Read reads JSONL examples from r; see ReadFile.
func Read(r io.Reader) ([]Example, error) {
	var out []Example
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var ex Example
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ex); err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrInvalidData, n, err)
		}
		if ex.Label == "" {
			return nil, fmt.Errorf("%w: line %d: no label", ErrInvalidData, n)
		}
		out = append(out, ex)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scan labelled data: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no examples", ErrInvalidData)
	}
	return out, nil
}

// Evaluate classifies every example's text and scores the top labels
// against the true ones.
func Evaluate(ctx context.Context, c Classifier, examples []Example) (Report, error) {
	if len(examples) == 0 {
		return Report{}, fmt.Errorf("%w: no examples", ErrInvalidData)
	}
	texts := make([]string, len(examples))
	for i, ex := range examples {
		texts[i] = ex.Text
	}
	got, err := c.Classify(ctx, texts)
	if err != nil {
		return Report{}, fmt.Errorf("classify %d texts: %w", len(texts), err)
	}
	if len(got) != len(texts) {
		return Report{}, fmt.Errorf("classify: %d results for %d texts", len(got), len(texts))
	}
	predicted := make([]string, len(got))
	for i, g := range got {
		predicted[i] = g.Label
	}
	return Score(examples, predicted), nil
}

// Score compares predicted[i] with examples[i].Label; the slices have equal
// lengths.
func Score(examples []Example, predicted []string) Report {
	type counts struct{ tp, support, predicted int }
	per := map[string]*counts{}
	get := func(label string) *counts {
		if per[label] == nil {
			per[label] = &counts{}
		}
		return per[label]
	}
	rep := Report{Examples: len(examples)}
	for i, ex := range examples {
		get(ex.Label).support++
		get(predicted[i]).predicted++
		if predicted[i] == ex.Label {
			get(ex.Label).tp++
			rep.Correct++
		}
	}
	for label, c := range per {
		s := LabelScore{Label: label, Support: c.support, Predicted: c.predicted}
		s.Precision = ratio(c.tp, c.predicted)
		s.Recall = ratio(c.tp, c.support)
		if s.Precision+s.Recall > 0 {
			s.F1 = 2 * s.Precision * s.Recall / (s.Precision + s.Recall)
		}
		rep.Labels = append(rep.Labels, s)
		rep.MacroF1 += s.F1
	}
	slices.SortFunc(rep.Labels, func(a, b LabelScore) int { return strings.Compare(a.Label, b.Label) })
	if len(per) > 0 {
		rep.MacroF1 /= float64(len(per))
	}
	rep.Accuracy = ratio(rep.Correct, rep.Examples)
	return rep
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

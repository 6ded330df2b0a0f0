package modeleval

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/textpulse/textpulse/gpu"
)

func examples(labels ...string) []Example {
	out := make([]Example, len(labels))
	for i, l := range labels {
		out[i] = Example{Text: "t" + l, Label: l}
	}
	return out
}

func TestScore(t *testing.T) {
	tests := []struct {
		name      string
		gold      []string
		predicted []string
		accuracy  float64
		macroF1   float64
	}{
		{name: "all right", gold: []string{"a", "b", "c"}, predicted: []string{"a", "b", "c"}, accuracy: 1, macroF1: 1},
		{name: "all wrong", gold: []string{"a", "b"}, predicted: []string{"b", "a"}, accuracy: 0, macroF1: 0},
		// a: P=1/2 R=1 F1=2/3; b: P=1 R=1/2 F1=2/3.
		{name: "one confusion", gold: []string{"a", "b", "b"}, predicted: []string{"a", "a", "b"}, accuracy: 2.0 / 3, macroF1: 2.0 / 3},
		// x is only predicted: it counts in the macro mean with F1 0.
		{name: "label outside the gold set", gold: []string{"a", "a"}, predicted: []string{"a", "x"}, accuracy: 0.5, macroF1: (2.0 / 3) / 2},
		// a always predicted: a P=1/4 R=1 F1=0.4; b, c, d F1=0.
		{name: "constant prediction", gold: []string{"a", "b", "c", "d"}, predicted: []string{"a", "a", "a", "a"}, accuracy: 0.25, macroF1: 0.1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := Score(examples(tt.gold...), tt.predicted)
			if math.Abs(rep.Accuracy-tt.accuracy) > 1e-12 || math.Abs(rep.MacroF1-tt.macroF1) > 1e-12 {
				t.Fatalf("accuracy %v macro-F1 %v, want %v and %v", rep.Accuracy, rep.MacroF1, tt.accuracy, tt.macroF1)
			}
			if rep.Examples != len(tt.gold) {
				t.Fatalf("examples %d, want %d", rep.Examples, len(tt.gold))
			}
			for i := 1; i < len(rep.Labels); i++ {
				if rep.Labels[i-1].Label >= rep.Labels[i].Label {
					t.Fatalf("labels not sorted: %+v", rep.Labels)
				}
			}
		})
	}
}

func TestRead(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int
		wantErr string
	}{
		{name: "two lines and a blank one", in: "{\"text\":\"a\",\"label\":\"joy\"}\n\n{\"text\":\"\",\"label\":\"neutral\"}\n", want: 2},
		{name: "not json", in: "{\"text\":\"a\",\"label\":\"joy\"}\nnope\n", wantErr: "line 2"},
		{name: "no label", in: "{\"text\":\"a\"}\n", wantErr: "line 1: no label"},
		{name: "unknown field", in: "{\"text\":\"a\",\"label\":\"joy\",\"lable\":\"x\"}\n", wantErr: "line 1"},
		{name: "wrong type", in: "{\"text\":1,\"label\":\"joy\"}\n", wantErr: "line 1"},
		{name: "empty", in: "\n", wantErr: "no examples"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Read(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalidData) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want ErrInvalidData mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(got) != tt.want {
				t.Fatalf("got %d examples, err %v; want %d", len(got), err, tt.want)
			}
		})
	}
}

type fakeClassifier struct {
	labels []string
	err    error
}

func (f fakeClassifier) Classify(_ context.Context, texts []string) ([]gpu.Classification, error) {
	out := make([]gpu.Classification, 0, len(f.labels))
	for _, l := range f.labels {
		out = append(out, gpu.Classification{Label: l})
	}
	return out, f.err
}

func TestEvaluate(t *testing.T) {
	ex := examples("a", "b")
	tests := []struct {
		name     string
		c        fakeClassifier
		accuracy float64
		wantErr  string
	}{
		{name: "scores the top labels", c: fakeClassifier{labels: []string{"a", "a"}}, accuracy: 0.5},
		{name: "classifier error", c: fakeClassifier{err: errors.New("boom")}, wantErr: "classify 2 texts: boom"},
		{name: "result count", c: fakeClassifier{labels: []string{"a"}}, wantErr: "1 results for 2 texts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := Evaluate(t.Context(), tt.c, ex)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || rep.Accuracy != tt.accuracy {
				t.Fatalf("accuracy %v err %v, want %v", rep.Accuracy, err, tt.accuracy)
			}
		})
	}
}

func FuzzRead(f *testing.F) {
	f.Add("{\"text\":\"a\",\"label\":\"joy\"}\n")
	f.Add("{\"text\":\"\\u00e9\",\"label\":\"x\"}\n{}\n")
	f.Add("[1]\n")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := Read(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrInvalidData) && !strings.Contains(err.Error(), "scan") {
				t.Fatalf("error without ErrInvalidData: %v", err)
			}
			return
		}
		for _, ex := range got {
			if ex.Label == "" {
				t.Fatalf("example without a label: %+v", ex)
			}
		}
	})
}

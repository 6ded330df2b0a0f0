package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/textpulse/textpulse/processor/reenrich"
)

func TestProgressView(t *testing.T) {
	tests := []struct {
		mode string
		want []string
	}{
		{"bar", []string{"enrich", "/10, ", "rows/", "%"}},
		{"lines", []string{"enrich: 10 of 10 rows read, 4 updated", "rows/s, eta"}},
		{"none", nil},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			var out bytes.Buffer
			v := newProgress(tt.mode, time.Hour, &out)
			v.update(reenrich.Progress{Total: 10, Read: 5, Updated: 2})
			if tt.mode == "bar" {
				for _, w := range tt.want {
					if !strings.Contains(out.String(), w) {
						t.Fatalf("bar shows %q, want %q in it", out.String(), w)
					}
				}
			}
			v.update(reenrich.Progress{Total: 10, Read: 10, Updated: 4})
			v.finish()
			switch {
			case tt.mode == "none" && out.Len() > 0:
				t.Fatalf("--progress none printed %q", out.String())
			case tt.mode == "lines":
				for _, w := range tt.want {
					if !strings.Contains(out.String(), w) {
						t.Fatalf("lines %q, want %q in them", out.String(), w)
					}
				}
			}
		})
	}
}

package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/textpulse/textpulse/processor/reenrich"
)

// progressView shows the progress of consumer enrich: a bar with rate and
// ETA on a terminal, plain lines otherwise (logs, CI), or nothing.
type progressView struct {
	w        io.Writer
	bar      *progressbar.ProgressBar
	lines    bool
	interval time.Duration
	last     time.Time
	start    time.Time
	p        reenrich.Progress
}

// newProgress returns the view for mode (auto, bar, lines, none) on w.
func newProgress(mode string, interval time.Duration, w io.Writer) *progressView {
	v := &progressView{w: w, interval: interval, start: time.Now()}
	if mode == "auto" {
		mode = "lines"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) { //nolint:gosec // File descriptors fit in int.
			mode = "bar"
		}
	}
	switch mode {
	case "bar":
		v.bar = progressbar.NewOptions64(-1, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription("enrich"),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("rows"),
			progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish())
	case "lines":
		v.lines = true
	}
	return v
}

// update shows p.
func (v *progressView) update(p reenrich.Progress) {
	v.p = p
	switch {
	case v.bar != nil:
		if v.bar.GetMax64() != int64(p.Total) { //nolint:gosec // Row counts fit.
			v.bar.ChangeMax64(int64(p.Total)) //nolint:gosec // Row counts fit.
		}
		_ = v.bar.Set64(int64(p.Read)) //nolint:gosec // Row counts fit.
	case v.lines && time.Since(v.last) >= v.interval:
		v.last = time.Now()
		v.line()
	}
}

// line prints one progress line: rows read of the total, updated, rate and
// the estimated time left.
func (v *progressView) line() {
	el := time.Since(v.start)
	rate := float64(v.p.Read) / max(el.Seconds(), 1e-9)
	eta := "unknown"
	if rate > 0 && v.p.Total >= v.p.Read {
		eta = (time.Duration(float64(v.p.Total-v.p.Read)/rate) * time.Second).Round(time.Second).String()
	}
	_, _ = fmt.Fprintf(v.w, "enrich: %d of %d rows read, %d updated, %.1f rows/s, eta %s\n",
		v.p.Read, v.p.Total, v.p.Updated, rate, eta)
}

// finish ends the display; lines mode prints the last state.
func (v *progressView) finish() {
	switch {
	case v.bar != nil:
		_ = v.bar.Finish()
	case v.lines:
		v.line()
	}
}

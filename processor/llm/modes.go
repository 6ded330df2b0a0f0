package llm

import (
	"log/slog"
	"slices"
	"sync/atomic"
)

// modes is the ordered list of ways to ask an endpoint for something (the
// response_format modes of the sentiment stage, the encodings of the
// embedding stage), and the one in use. In auto mode a capability refusal
// moves to the next one for good: the outcome is remembered for the
// endpoint and model of the stage, logged once and exported as the
// textpulse_llm_response_format gauge. It is safe for concurrent use.
type modes struct {
	stage string
	what  string
	list  []string
	auto  bool
	idx   atomic.Int32
	m     *metrics
	log   *slog.Logger
}

// newModes returns modes starting at the first of list; with auto false it
// never moves.
func newModes(stage, what string, list []string, auto bool, m *metrics, log *slog.Logger) *modes {
	list = slices.Compact(slices.Clone(list))
	md := &modes{stage: stage, what: what, list: list, auto: auto, m: m, log: log}
	for i, v := range list {
		m.format.WithLabelValues(v).Set(float64(min(1, 1-i)))
	}
	return md
}

// current returns the mode in use.
func (md *modes) current() string { return md.list[md.idx.Load()] }

// fallBack moves from the mode from to the next one, when auto allows and
// there is one. It reports whether the mode in use is now another than
// from, which a concurrent call may have done already.
func (md *modes) fallBack(from string) bool {
	i := int32(slices.Index(md.list, from)) //nolint:gosec // The list has a handful of entries.
	if !md.auto || i < 0 {
		return false
	}
	if int(i)+1 >= len(md.list) {
		return md.idx.Load() != i
	}
	if md.idx.CompareAndSwap(i, i+1) {
		md.m.format.WithLabelValues(from).Set(0)
		md.m.format.WithLabelValues(md.list[i+1]).Set(1)
		md.log.Warn("llm endpoint does not support a mode, falling back", "stage", md.stage,
			"what", md.what, "from", from, "to", md.list[i+1])
	}
	return md.idx.Load() != i
}

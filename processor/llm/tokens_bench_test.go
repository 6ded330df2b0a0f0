package llm

import (
	"strings"
	"testing"
)

func BenchmarkEstimateTokens(b *testing.B) {
	s := strings.Repeat(scriptSamples["english"]+scriptSamples["japanese"], 4)
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		_ = EstimateTokens(s)
	}
}

// BenchmarkTruncateLong cuts a text over the limit, which is tokenised.
func BenchmarkTruncateLong(b *testing.B) {
	tr, err := newTruncator()
	if err != nil {
		b.Fatal(err)
	}
	s := strings.Repeat(scriptSamples["english"]+scriptSamples["japanese"], 40)
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		_ = tr.truncate(s, 2048)
	}
}

// BenchmarkTruncateShort checks a text of fewer bytes than the limit,
// which is not tokenised.
func BenchmarkTruncateShort(b *testing.B) {
	tr, err := newTruncator()
	if err != nil {
		b.Fatal(err)
	}
	s := scriptSamples["english"]
	b.ReportAllocs()
	for b.Loop() {
		_ = tr.truncate(s, 2048)
	}
}

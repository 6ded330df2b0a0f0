package llm

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tiktoken-go/tokenizer"
)

// scriptSamples are short texts in the scripts the estimate is measured on.
var scriptSamples = map[string]string{
	"japanese": "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。吾輩はここで始めて人間というものを見た。",
	"chinese":  "我们的产品质量非常好，客户都很满意。但是最近物流速度太慢了，很多用户抱怨收到货的时间超过一周。希望公司能够尽快改善配送服务，提高用户体验。",
	"korean":   "이 제품은 정말 훌륭합니다. 배송도 빠르고 포장도 꼼꼼했어요. 다음에도 꼭 다시 구매하고 싶습니다. 고객 서비스도 친절했습니다.",
	"english":  "The quick brown fox jumps over the lazy dog. This product is great, but shipping was slow and support never answered my emails.",
	"russian":  "Этот продукт отличный, но доставка была медленной, а поддержка так и не ответила на мои письма.",
	"arabic":   "هذا المنتج رائع، لكن الشحن كان بطيئا ولم يرد الدعم على رسائلي.",
	"hindi":    "यह उत्पाद बहुत अच्छा है, लेकिन शिपिंग धीमी थी और सहायता ने मेरे ईमेल का जवाब नहीं दिया।",
	"thai":     "สินค้านี้ดีมาก แต่การจัดส่งช้าและฝ่ายสนับสนุนไม่เคยตอบอีเมลของฉัน",
	"emoji":    "great 😀😀🎉🎉 love it ❤️❤️ 👍🏽👍🏽",
}

// tokenCount counts the cl100k_base tokens of s.
func tokenCount(t testing.TB, s string) int {
	t.Helper()
	c, err := tokenizer.Get(tokenizer.Cl100kBase)
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.Count(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestEstimateTokensScripts(t *testing.T) {
	o200k, err := tokenizer.Get(tokenizer.O200kBase)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range scriptSamples {
		t.Run(name, func(t *testing.T) {
			est := EstimateTokens(s)
			cl := tokenCount(t, s)
			o, err := o200k.Count(s)
			if err != nil {
				t.Fatal(err)
			}
			if est < cl || est < o {
				t.Errorf("EstimateTokens = %d, under cl100k_base %d or o200k_base %d", est, cl, o)
			}
			if est > 3*cl {
				t.Errorf("EstimateTokens = %d, more than three times cl100k_base %d", est, cl)
			}
		})
	}
	if got := EstimateTokens("abcde"); got != 2 {
		t.Errorf("EstimateTokens(abcde) = %d, want 2", got)
	}
}

func TestTruncatorLongJapanese(t *testing.T) {
	tr, err := newTruncator()
	if err != nil {
		t.Fatal(err)
	}
	// 12,800 characters of Japanese, about 10,000 cl100k_base tokens: the
	// old cut at 4 bytes a token kept 32,764 bytes, over the 8,191 limit.
	ja := []rune(strings.Repeat(scriptSamples["japanese"], 200))[:12800]
	text := string(ja)
	const limit = 8191
	old := Truncate(text, 4*limit)
	if n := tokenCount(t, old); n <= limit {
		t.Fatalf("bytes/4 cut has %d tokens; the sample no longer shows the problem", n)
	}
	got := tr.truncate(text, limit)
	n := tokenCount(t, got)
	if n > limit || n < limit-4 {
		t.Errorf("truncate kept %d tokens, want close to and at most %d", n, limit)
	}
	if !strings.HasPrefix(text, got) || !utf8.ValidString(got) {
		t.Errorf("truncate did not keep a valid prefix")
	}
	if short := scriptSamples["korean"]; tr.truncate(short, limit) != short {
		t.Errorf("a short text was changed")
	}
	rare := strings.Repeat("鬱麤龘靐齉爨癵驫麣纞", 100)
	if n := tokenCount(t, tr.truncate(rare, 100)); n > 100 {
		t.Errorf("rare kanji cut to %d tokens, want at most 100", n)
	}
}

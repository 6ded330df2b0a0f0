package tokenizer_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/textpulse/textpulse/internal/textgen"
)

// hardCases are texts that exercise the corners of normalization,
// pre-tokenization, added tokens and truncation.
var hardCases = []string{
	"",
	" ",
	"   ",
	"\t\n\r",
	"Hello, world!",
	"hello world",
	"HELLO WORLD",
	"  leading and trailing spaces  ",
	"multiple   spaces\tand\ttabs\n\nand newlines\r\n",
	"I'm sure you're right, we've got it, he'll go, she'd say it's Tom's.",
	"I'M SURE YOU'RE RIGHT 'S 'T 'RE ''s '' ' 'x",
	"Café naïve résumé jalapeño déjà façade piñata fiancée über crème brûlée",
	"Cafe\u0301 nai\u0308ve re\u0301sume\u0301 jalapen\u0303o",
	"Ångström Øre Æsir Œuvre straße İstanbul ΣΊΣΥΦΟΣ ﬁ ﬂ Ǆ ǅ",
	"ÀÉÎÕÜ àéîõü ÇĞŞ çğş",
	"今天天气很好，我们去公园吧！",
	"東京は晴れです。ありがとうございます",
	"안녕하세요 여러분, 오늘 날씨가 좋네요",
	"مرحبا بالعالم! كيف حالك؟",
	"नमस्ते दुनिया, आप कैसे हैं?",
	"Привет, мир! Как дела? ЁЖИК ёжик",
	"สวัสดีครับ ยินดีต้อนรับ",
	"שלום עולם",
	"Γειά σου Κόσμε",
	"😀😂🤣 👍🏽👍🏿 👨‍👩‍👧‍👦 🏳️‍🌈 🇧🇷🇺🇸 ❤️‍🔥 🧑🏾‍💻",
	"I love it!!! 😍😍😍 #blessed @maria_silva",
	"Check https://example.com/path?q=1&x=%20y#frag and http://t.co/AbC123",
	"email me at someone.name+tag@example.co.uk",
	"@user1 @User_2 #HashTag #日本 #café",
	"Numbers: 0 1 12 123 1234 12345 3.14159 1,000,000 -42 +7 1e10 ½ ² ٣ ๓ १२३",
	"Prices $19.99 €5,50 £3 ¥1000 ₹250",
	"!!!??? ... --- *** ### $$$ %%% ^^^ &&& ((( ))) [[[ ]]] {{{ }}}",
	"\"quoted\" 'single' «guillemets» „German“ ‘curly’ “double”",
	"a\u200bb\u200cc\u200dd\ufeffe\u2060f",
	"zero\u200bwidth\u200bspace",
	"ctrl\x00chars\x01\x02\x07\x1b\x7f here",
	"soft\u00adhyphen non\u00a0breaking thin\u2009space ideographic\u3000space",
	"line\u2028separator paragraph\u2029separator next\u0085line",
	"private \ue000\uf8ff use",
	"replacement \ufffd char",
	"[CLS] literal special tokens [SEP] [MASK] [PAD] [UNK]",
	"[cls] lowercase [sep] [Mask]",
	"text[CLS]glued[SEP]together[MASK]",
	"[[CLS]] [CLS[SEP]] [CL S]",
	"<s> roberta </s> <mask> <pad> <unk>",
	"glued<mask>token and spaced <mask> token and   <mask>",
	"<s><s></s></s><mask><mask>",
	"<mask>",
	"[CLS]",
	"<s>",
	"  <mask>  ",
	"<<mask>> <s > < s> </ s>",
	"tab\t<mask>\tnewline\n<mask>\n",
	"a",
	"A",
	"ß",
	"ﷺ",
	"𝕳𝖊𝖑𝖑𝖔 𝔀𝓸𝓻𝓵𝓭 ｆｕｌｌｗｉｄｔｈ",
	"Ⅻ ⅻ ① ⑩ ㊿",
	"word" + strings.Repeat("x", 120),
	strings.Repeat("supercalifragilistic", 8),
	"unbelievably antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
	"CamelCaseWordsAndMIXEDCase and snake_case_words and kebab-case-words",
	"x=1;y=2; if (a<b) {return a&&b||c;} // comment",
	"<html><body><p>Hi &amp; bye</p></body></html>",
	"C:\\Users\\name\\file.txt /usr/local/bin",
	"tokenizer's tokenizers' tokenizer’s",
	"don't DON'T Don't don’t",
	"sentence one. sentence two! sentence three? sentence four...",
	"\u0301leading combining mark",
	"e\u0301\u0302\u0303 stacked marks a\u0323\u0307 o\u031b\u0301",
	"ｶﾀｶﾅ ｈａｌｆ",
	"Ｆｕｌｌ：ｗｉｄｔｈ，ｐｕｎｃｔ！",
	"\U0002070e\U00020731 \U0002a6d6 \U0002b740 extension ideographs",
	"兀 ﬀ 豈 更 compatibility ideographs",
	"Dives Akuru 𑤸",
	"ꟋꟌ new letters Ᲊᲊ",
	"𐵀𐵁 new digits 𖵐",
	"mixed 中文English混合text日本語",
	"🙂🙃",
	"жж가a zжж a가ж ж가 가가가",
	"it'ſ IT'S It'Re we'VE i'M they'LL he'D x'ſa ǅx'S ᾈbc'll",
	"DŽungla ǅungla ᾈᾈ ʰʰa ʰA Ŀa aʰ ǈǈ MiXeD ALLCAPS'S lower'd",
	"crlf\r\nline\r\n\r\nend  \r\n  tab\t\r\n/path//x\n\n/",
	"1234567 ١٢٣٤٥ 12a3 a12 x1y2z3 ½¾ 12/34",
	"double  spaces   and    more ▁ ▁▁ already▁meta",
	"e\u0301 a\u0308\u0301 \r\n 한\u1100\u1161 ᄀ\u1161\u11a8 क्ष ️️ a\u200d b\ufe0f",
}

// textgenTexts returns n realistic social media texts.
func textgenTexts(t testing.TB, seed uint64, n int) []string {
	t.Helper()
	g, err := textgen.New(textgen.Options{Seed: seed})
	if err != nil {
		t.Fatalf("new generator: %v", err)
	}
	out, err := g.Texts(n)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// parityCorpus returns the texts of the parity test: the hard cases,
// realistic texts, random mixtures of hard fragments and long texts.
func parityCorpus(t testing.TB) []string {
	t.Helper()
	texts := append([]string(nil), hardCases...)
	texts = append(texts, textgenTexts(t, 7, 700)...)
	rng := rand.New(rand.NewPCG(1, 2))
	fragments := append(append([]string(nil), hardCases[1:]...), textgenTexts(t, 8, 50)...)
	seps := []string{"", " ", "  ", "\t", "\n", "<mask>", " [CLS] ", "\u200b", "\u00a0"}
	for range 300 {
		var b strings.Builder
		for range 1 + rng.IntN(6) {
			f := fragments[rng.IntN(len(fragments))]
			if rng.IntN(4) == 0 && len(f) > 2 {
				// Cut at any byte, leaving invalid UTF-8 now and then.
				f = f[:rng.IntN(len(f))]
			}
			b.WriteString(f)
			b.WriteString(seps[rng.IntN(len(seps))])
		}
		texts = append(texts, b.String())
	}
	for i := range 8 {
		var b strings.Builder
		for b.Len() < 3000+i*1000 {
			b.WriteString(fragments[rng.IntN(len(fragments))])
			b.WriteByte(' ')
		}
		texts = append(texts, b.String())
	}
	texts = append(texts, "invalid \xff\xfe utf8 \xc3\x28 \xe2\x82 end", "\x80", "ok\xed\xa0\x80surrogate")
	for range 500 {
		texts = append(texts, randomText(rng, 1+rng.IntN(60)))
	}
	return texts
}

// runeRanges are the blocks that randomText draws characters from, each as
// often as the others: ASCII, Latin-1 and Latin Extended, combining marks,
// white space and format characters, scripts, CJK and its compatibility
// ideographs, emoji with modifiers and joiners, and the whole of the BMP
// and of the supplementary planes.
var runeRanges = [][2]rune{
	{0x20, 0x7e}, {0x20, 0x7e}, {0x00, 0x1f}, {0x80, 0x24f}, {0x300, 0x36f},
	{0x2000, 0x206f}, {0x0370, 0x052f}, {0x0590, 0x06ff}, {0x0900, 0x0dff},
	{0x0e00, 0x0e7f}, {0x1100, 0x11ff}, {0x3000, 0x30ff}, {0x4e00, 0x9fff},
	{0xac00, 0xd7a3}, {0xf900, 0xfaff}, {0xfe00, 0xfe0f}, {0xff00, 0xffef},
	{0x1f300, 0x1faff}, {0x1f3fb, 0x1f3ff}, {0x200d, 0x200d}, {0x0, 0xd7ff},
	{0xe000, 0xffff}, {0x10000, 0x10ffff}, {0x20000, 0x2fa1f},
}

// randomText returns n characters drawn from runeRanges, with added-token
// text mixed in.
func randomText(rng *rand.Rand, n int) string {
	var b strings.Builder
	for range n {
		if rng.IntN(40) == 0 {
			b.WriteString([]string{"<mask>", "<s>", "</s>", "[CLS]", "[SEP]", "[MASK]", " ", "'s", "'ll"}[rng.IntN(9)])
			continue
		}
		r := runeRanges[rng.IntN(len(runeRanges))]
		c := r[0] + rng.Int32N(r[1]-r[0]+1)
		if c >= 0xd800 && c <= 0xdfff {
			c = 0xfffd
		}
		b.WriteRune(c)
	}
	return b.String()
}

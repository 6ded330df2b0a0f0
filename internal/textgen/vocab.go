package textgen

import (
	"math"
	"strings"
	"unicode/utf8"
)

// The vocabularies below are space-separated token lists ordered roughly by
// frequency, so that a Zipf-like sampler over their positions yields natural
// looking word frequencies. Every token is already the content of a JSON
// string: it holds no raw quote, backslash, control character or space, and
// any escape sequence in it is valid.
const (
	wordsEN = "the i to a and is you it of in that my for this on me so be just have not with but are was like it's " +
		"all what your at get do can i'm love good if up out when one now day no about how know we they new time " +
		"people think go today really got lol need don't see some more much want from back great best going there " +
		"would still make as right will by he she why here their been am too an or never always thank thanks " +
		"happy life work year night who feel could even only first last man off did say world over after tomorrow " +
		"home let week game look better because please ever next those yes yeah watch show free live big little " +
		"again amazing fun u gonna wanna omg wow nice cool same every hate friends family team season " +
		"music song album video news story post thread read update real actually literally honestly someone " +
		"everyone anything nothing something stop start keep trying finally already such its than then them " +
		"other many most done put made take came gave told hear heard open long old bad hard easy fast slow " +
		"weekend morning coffee lunch dinner weather rain sun city town party school class job boss money " +
		"phone app bug code deploy server data cloud model release launch meeting office remote vote election " +
		"match goal win lost score fans stream episode trailer ticket concert festival beach trip flight " +
		"hotel food pizza tacos burger cake birthday wedding baby dog cat puppy kitten photo selfie tired " +
		"sleep awake excited proud sorry crazy wild insane huge tiny perfect beautiful cute funny weird " +
		"café naïve résumé jalapeño déjà façade piñata fiancée über crème brûlée smörgåsbord"

	wordsES = "de la que el en y a los se del las un por con no una su para es al lo como más pero sus le ya o " +
		"este sí porque esta entre cuando muy sin sobre también me hasta hay donde quien desde todo nos " +
		"durante todos uno les ni contra otros ese eso ante ellos esto mí antes algunos qué unos yo otro " +
		"otras otra él tanto esa estos mucho quienes nada muchos cual poco ella estar estas algunas algo " +
		"nosotros hoy mañana ayer año día noche vida gracias bien mal feliz amor corazón casa trabajo " +
		"fútbol partido gol música canción jajaja jaja increíble genial mejor peor siempre nunca ahora " +
		"después señor niño niña pequeño grande rápido café país ciudad calle fiesta verano invierno " +
		"película serie noticias gobierno elección información también además está están había sería"

	wordsPT = "de a o que e do da em um para é com não uma os no se na por mais as dos como mas foi ao ele " +
		"das tem à seu sua ou ser quando muito há nos já está eu também só pelo pela até isso ela entre " +
		"era depois sem mesmo aos ter seus quem nas me esse estão você tinha foram essa num nem suas " +
		"meu às minha têm numa pelos elas havia seja qual será nós tenho lhe deles essas esses pelas este " +
		"hoje amanhã ontem coração ação canção informação obrigado obrigada saudade kkkk kkkkk gente " +
		"jogo futebol música vida amor trabalho cidade praia festa filme série notícia eleição país " +
		"incrível ótimo péssimo rápido lento pão café manhã tarde noite irmão irmã família"

	wordsFR = "de la le et les des en un du une que est pour qui dans à par plus pas au sur ne se ce il " +
		"sont été être avec je tout mais nous vous très où ça c'est aujourd'hui demain hier merci déjà " +
		"après même encore toujours jamais rien bien mal beau belle petit grand nouveau nouvelle vie amour " +
		"travail école ville café fête été hiver musique chanson film série match équipe élection " +
		"gouvernement français française élève père mère frère sœur cœur où là-bas voilà génial trop mdr " +
		"bisous week-end soirée journée matin pâtes crêpe château forêt théâtre naïve"

	wordsDE = "der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als auch es an " +
		"werden aus er hat dass sie nach wird bei einer um am sind noch wie einem über einen so zum war " +
		"haben nur oder aber vor zur bis mehr durch man sehr heute morgen gestern schön danke bitte " +
		"groß größer klein Straße Grüße müssen können wählen Mädchen Bücher Brücke Käse Bär Fußball " +
		"Spiel Mannschaft Musik Lied Film Arbeit Wochenende Kaffee Kuchen Bahn Verspätung wieder endlich " +
		"natürlich vielleicht eigentlich übrigens Geburtstag Urlaub Wetter Regen Sonne"

	wordsJA = "今日は 本当に ありがとう すごい 東京 天気 いい 楽しかった 明日 仕事 疲れた ラーメン 食べた 映画 " +
		"見た 友達 と 一緒に 最高 です ね よ かわいい 新しい 発売 ゲーム 大好き 週末 朝 夜 電車 会社 " +
		"音楽 ライブ 行ってきた 写真 撮った 嬉しい 悲しい おはよう おやすみ 桜 ねこ 犬 コーヒー " +
		"頑張る 応援 してます 試合 勝った 負けた ニュース 最新 動画 配信 中 草 笑"

	wordsZH = "今天 我们 真的 非常 喜欢 这个 天气 很好 朋友 一起 吃饭 电影 工作 北京 上海 新闻 手机 视频 " +
		"分享 谢谢 哈哈 加油 时间 问题 大家 觉得 已经 没有 可以 什么 怎么 因为 所以 但是 还是 " +
		"周末 咖啡 音乐 比赛 赢了 输了 开心 难过 生日 快乐 晚安 早上好 发布 更新 最新 直播"

	wordsKO = "오늘 정말 감사합니다 날씨 좋아요 친구 함께 영화 맛있는 사랑해 최고 서울 주말 너무 행복 " +
		"내일 일 피곤해 커피 음악 노래 공연 경기 이겼다 졌다 뉴스 영상 사진 귀여워 대박 ㅋㅋㅋ " +
		"ㅠㅠ 진짜 완전 우리 같이 먹었어 보고 싶어 화이팅 축하해 생일"

	emojis = "😂 ❤️ 🤣 👍 😭 🙏 😘 🥰 😍 😊 🎉 😁 💕 🥺 😅 🔥 ☺️ 🤦 🤷 🙄 😆 🤗 😉 🎂 🤔 👏 🙂 " +
		"😳 🥳 😎 👌 💜 😔 💪 ✨ 💖 👀 😋 😏 😢 👉 💯 🌹 💙 😡 🙈 🤞 😄 🙌 🤪 😀 💀 👇 💔 🤩 🙃 😬 " +
		"😱 😴 🤭 😐 🌞 😇 🌸 🎶 ✌️ 🥵 💚 ☀️ 🖤 👑 🎁 💥 🙋 ✅ 👋 🌟 🌈 💛 🤯 💃 ⚡ ☕ 🍀 ⭐ 🦋 " +
		"👍🏽 👏🏻 🙏🏾 💪🏼 🇧🇷 🇺🇸 🇯🇵 🇫🇷 🇩🇪 🇪🇸 👨‍💻 👩‍🚀 🏳️‍🌈 👨‍👩‍👧"

	hashtags = "ai news music love photography tbt nowplaying football nba f1 crypto bitcoin golang rustlang " +
		"python javascript kafka clickhouse devops tech startup art travel food fitness gaming anime " +
		"movies tv election climate science health mondaymotivation fridayfeeling café méxico " +
		"são_paulo 東京 日本 中国 한국 brasil españa paris berlin worldcup olympics opensource " +
		"100daysofcode buildinpublic caturday dogsoftwitter foodie ootd sunset nature"

	// specialTokens exercise JSON escapes and HTML entities the way real
	// feeds do: quotes, newlines, tabs, backslashes and \u escapes.
	specialTokens = `\n \n\n \"wow\" \"literally\" don\u2019t it\u2019s \u201cwhat\u201d &amp; &lt;3 <3 -> ` +
		`\\o/ ¯\\_(ツ)_/¯ \t... (1/3) (2/3) RT: ...`

	urlHosts = "https://t.co/ https://bit.ly/ https://youtu.be/ https://github.com/textpulse/ " +
		"https://www.instagram.com/p/ https://news.example.com/2025/ https://open.spotify.com/track/ " +
		"https://bsky.app/profile/ https://mastodon.social/@"

	firstNames = "maria jose ana juan luis carlos sofia lucas emma noah olivia liam mia ben lea paul " +
		"yuki haruto sakura wei li jun minji jisoo chen omar fatima ali sara amir nina ivan olga " +
		"pierre camille louis jules hans anna felix lena marco giulia joao pedro bruna diego " +
		"alex sam chris jordan taylor max kim lee dev ops data cloud pixel retro neon"

	lastNames = "silva santos souza oliveira garcia martinez lopez gonzalez smith johnson brown jones " +
		"miller davis wilson nakamura tanaka sato wang zhang liu kim park choi muller schmidt " +
		"schneider fischer dubois martin bernard rossi russo ferrari kowalski novak ivanov petrov " +
		"dev codes writes plays tweets news fan daily official hq lab studio"

	fillerText = "lol haha yes ok wow nice same tbh fr ngl idk omg yay hmm sure cool true mood vibes " +
		"lol haha yes ok wow nice same tbh fr ngl idk omg yay hmm sure cool true mood vibes"
)

// langSpec describes one language of generated posts.
type langSpec struct {
	code   string  // Two-letter ISO 639-1 code written to the lang field.
	weight float64 // Relative share of posts in this language.
	words  string  // Space-separated vocabulary ordered by frequency.
	spaced bool    // Whether words are separated by spaces.
	scale  float64 // Multiplier on the target length in characters.
	punct  string  // Space-separated punctuation appended after words.
	// bytesPerChar is the average number of bytes per character of the
	// language's texts, which converts target lengths into bytes.
	bytesPerChar float64
}

// langSpecs returns the languages the generator writes, with their shares.
func langSpecs() []langSpec {
	return []langSpec{
		{code: "en", weight: 58, words: wordsEN, spaced: true, scale: 1, punct: ". , ! ? ... !! :", bytesPerChar: 1.03},
		{code: "es", weight: 12, words: wordsES, spaced: true, scale: 1, punct: ". , ! ? ...", bytesPerChar: 1.05},
		{code: "pt", weight: 9, words: wordsPT, spaced: true, scale: 1, punct: ". , ! ? ...", bytesPerChar: 1.06},
		{code: "fr", weight: 6, words: wordsFR, spaced: true, scale: 1, punct: ". , ! ? …", bytesPerChar: 1.07},
		{code: "de", weight: 5, words: wordsDE, spaced: true, scale: 1, punct: ". , ! ? …", bytesPerChar: 1.05},
		{code: "ja", weight: 4, words: wordsJA, spaced: false, scale: 0.5, punct: "。 、 ！ ？ w", bytesPerChar: 2.4},
		{code: "zh", weight: 3, words: wordsZH, spaced: false, scale: 0.5, punct: "。 ， ！ ？", bytesPerChar: 2.3},
		{code: "ko", weight: 3, words: wordsKO, spaced: true, scale: 0.6, punct: ". , ! ? ~", bytesPerChar: 2.05},
	}
}

// weighted is a named value with a relative weight.
type weighted struct {
	value  string
	weight float64
}

// sourceSpecs returns the values of the source field with their shares.
func sourceSpecs() []weighted {
	return []weighted{
		{"twitter", 40}, {"bluesky", 15}, {"mastodon", 15}, {"reddit", 12}, {"threads", 10}, {"youtube", 8},
	}
}

// clientSpecs returns the values of metadata.client with their shares.
func clientSpecs() []weighted {
	return []weighted{
		{"android", 38}, {"iphone", 34}, {"web", 20}, {"ipad", 4}, {"api", 3}, {"bot", 1},
	}
}

// token is a pre-escaped piece of text.
type token struct {
	s     string // JSON-escaped bytes, ready to copy into a string value.
	runes int    // Number of characters the token decodes to.
	// spaced reports whether appendPre puts a space before s, as it does in
	// tables of space-separated words; n is the length it appends.
	spaced bool
	n      int
	// pre holds the bytes that appendPre appends, padded with zeros, when
	// they fit in 16 bytes.
	pre  [16]byte
	fits bool
	// endsSentence reports whether the next word starts a sentence.
	endsSentence bool
}

// newToken returns the token for the JSON string content s.
func newToken(s string, spaced bool) token {
	t := token{s: s, runes: escapedRunes(s), spaced: spaced, endsSentence: strings.ContainsAny(s[:1], ".!?")}
	p := s
	if spaced {
		p = " " + s
	}
	t.n = len(p)
	if t.n <= len(t.pre) {
		copy(t.pre[:], p)
		t.fits = true
	}
	return t
}

// appendPre appends t.s to dst, preceded by a space if t is spaced. A token
// that fits is copied as one 16-byte block when dst has the spare capacity,
// which is much faster than a general copy; the bytes past it are spare
// capacity that later appends overwrite.
func appendPre(dst []byte, t *token) []byte {
	if l := len(dst); t.fits && cap(dst)-l >= len(t.pre) {
		*(*[16]byte)(dst[l : l+16]) = t.pre
		return dst[:l+t.n]
	}
	if t.spaced {
		dst = append(dst, ' ')
	}
	return append(dst, t.s...)
}

// tokenTable samples tokens with fixed probabilities in O(1).
type tokenTable struct {
	tokens []token
	index  [tableSize]uint16 // Maps a uniform tableBits draw to a token.
}

const (
	tableBits = 12
	tableSize = 1 << tableBits
)

// newTokenTable builds a table over the space-separated tokens in list,
// giving the token at rank r a weight of 1/(r+2.7)^exponent (a
// Zipf-Mandelbrot law); an exponent of 0 makes the choice uniform. Spaced
// tokens get a space before them in the fast path.
func newTokenTable(list string, exponent float64, spaced bool) *tokenTable {
	fields := strings.Fields(list)
	t := &tokenTable{tokens: make([]token, len(fields))}
	weights := make([]float64, len(fields))
	for i, f := range fields {
		t.tokens[i] = newToken(f, spaced)
		weights[i] = 1 / math.Pow(float64(i)+2.7, exponent)
	}
	fillIndex(t.index[:], weights)
	return t
}

// newWeightedTable builds a table over values with explicit weights.
func newWeightedTable(values []weighted) *tokenTable {
	t := &tokenTable{tokens: make([]token, len(values))}
	weights := make([]float64, len(values))
	for i, v := range values {
		t.tokens[i] = newToken(v.value, false)
		weights[i] = v.weight
	}
	fillIndex(t.index[:], weights)
	return t
}

// fillIndex spreads the indexes of weights over index in proportion to
// their weights: slot j holds the entry whose cumulative weight range
// contains the midpoint of slot j.
func fillIndex(index []uint16, weights []float64) {
	var total float64
	for _, w := range weights {
		total += w
	}
	i, cum := 0, weights[0]/total
	for j := range index {
		mid := (float64(j) + 0.5) / float64(len(index))
		for mid > cum && i < len(weights)-1 {
			i++
			cum += weights[i] / total
		}
		index[j] = uint16(i)
	}
}

// escapedRunes reports how many characters the JSON string content s
// decodes to, counting each escape sequence as one character.
func escapedRunes(s string) int {
	n := 0
	for i := 0; i < len(s); {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == 'u':
			i += 6
		case s[i] == '\\':
			i += 2
		default:
			_, size := utf8.DecodeRuneInString(s[i:])
			i += size
		}
		n++
	}
	return n
}

#!/usr/bin/env python3
"""Generates testdata/bpe/tokenizer.json: a small RoBERTa-style byte-level BPE.

The tokenizer is trained with the Hugging Face `tokenizers` library on a
deterministic corpus built from the word lists below, and is laid out like
roberta-base's tokenizer.json: special tokens <s>, <pad>, </s>, <unk>, <mask>
as ids 0..4 (<mask> strips the space on its left), a ByteLevel pre-tokenizer
without a prefix space, a RobertaProcessing post-processor and a ByteLevel
decoder. Running it again produces the same file byte for byte.

Usage: .local/venv/bin/python gpu/tokenizer/testdata/gen_bpe.py [OUT]
"""

import hashlib
import json
import os
import random
import sys

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

VOCAB_SIZE = 4000
SPECIAL = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]

WORDS = {
    "en": """the i to a and is you it of in that my for this on me so be just have not with but are was like
        it's all what your at get do can i'm love good if up out when one now day no about how know we they new
        time people think go today really got lol need don't see some more much want from back great best going
        there would still make as right will by he she why here their been am too an or never always thank
        thanks happy life work year night who feel could even only first last man off did say world over after
        tomorrow home let week game look better because please ever next those yes yeah watch show free live
        big little again amazing fun gonna wanna omg wow nice cool same every hate friends family team season
        music song album video news story post thread read update real actually literally honestly someone
        everyone anything nothing something stop start keep trying finally already than then them other many
        most done made take came told hear open long old bad hard easy fast slow weekend morning coffee lunch
        dinner weather rain sun city party school job money phone app bug code deploy server data cloud model
        release launch meeting office vote election match goal win lost score fans stream episode trailer
        ticket concert festival beach trip flight hotel food pizza burger cake birthday baby dog cat photo
        tired sleep excited proud sorry crazy huge tiny perfect beautiful cute funny weird angry sad scared
        disgusting surprised terrible awful wonderful fantastic boring annoying delayed refund support""",
    "es": """de la que el en y a los se del las un por con no una su para es al lo como más pero sus le ya
        este sí porque esta entre cuando muy sin sobre también me hasta hay donde quien desde todo nos
        hoy mañana ayer año día noche vida gracias bien mal feliz amor corazón casa trabajo fútbol partido
        música canción jajaja increíble genial mejor peor siempre nunca ahora después niño pequeño""",
    "pt": """de a o que e do da em um para é com não uma os no se na por mais as dos como mas foi ao ele
        hoje amanhã ontem coração ação canção informação obrigado saudade kkkk gente jogo futebol vida""",
    "fr": """de la le et les des en un du une que est pour qui dans à par plus pas au sur ne se ce il sont
        été être avec je tout mais nous vous très où ça c'est aujourd'hui demain merci déjà après même
        encore toujours jamais rien bien beau belle petit grand vie amour travail école café fête cœur""",
    "de": """der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als auch es an
        werden aus er hat dass sie nach wird bei einer um am sind noch wie heute morgen schön danke bitte
        groß Straße Grüße müssen können Mädchen Bücher Brücke Käse Fußball Spiel Musik Arbeit Kaffee""",
    "ru": """и в не на я что он с как это по но из у за так же от все она вы мы был сегодня завтра
        спасибо привет хорошо плохо люблю работа жизнь музыка город погода новости""",
    "ja": """今日 明日 ありがとう すごい 楽しい 仕事 天気 映画 音楽 友達 です ます した ない""",
    "zh": """今天 明天 谢谢 我们 你们 他们 工作 天气 电影 音乐 朋友 的 是 了 不 很""",
}
EMOJI = ["😀", "😂", "😍", "😭", "🔥", "👍", "👍🏽", "❤️", "🎉", "🙏", "👨‍👩‍👧", "🇧🇷", "✨", "💯"]
PUNCT = [".", ",", "!", "?", "!!", "...", ":", ";", " -", " (", ")", "\"", "'"]


def corpus(seed=20250101, lines=30000):
    rng = random.Random(seed)
    langs = sorted(WORDS)
    vocab = {k: WORDS[k].split() for k in langs}
    out = []
    for n in range(lines):
        words = vocab[langs[rng.randrange(len(langs))] if rng.random() < 0.5 else "en"]
        parts = []
        for _ in range(rng.randint(3, 25)):
            # A Zipf-like pick: frequent words come first in each list.
            w = words[min(int(rng.paretovariate(1.2)) - 1, len(words) - 1)]
            if rng.random() < 0.1:
                w = w.capitalize()
            parts.append(w)
            r = rng.random()
            if r < 0.08:
                parts.append(PUNCT[rng.randrange(len(PUNCT))])
            elif r < 0.11:
                parts.append(EMOJI[rng.randrange(len(EMOJI))])
            elif r < 0.13:
                parts.append(str(rng.randrange(10000)))
            elif r < 0.14:
                parts.append("@user%d" % rng.randrange(100))
            elif r < 0.15:
                parts.append("#" + words[rng.randrange(len(words))])
            elif r < 0.155:
                parts.append("https://example.com/p/%d" % rng.randrange(1000))
        out.append(" ".join(parts))
    return out


def build():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    tok.post_processor = processors.RobertaProcessing(
        ("</s>", tok.token_to_id("</s>")),
        ("<s>", tok.token_to_id("<s>")),
        trim_offsets=True,
        add_prefix_space=False,
    )
    data = json.loads(tok.to_str())
    for added in data["added_tokens"]:
        # As in roberta-base: "<mask>" takes the space before it.
        if added["content"] == "<mask>":
            added["lstrip"] = True
    ids = [data["model"]["vocab"][s] for s in SPECIAL]
    if ids != list(range(len(SPECIAL))):
        raise SystemExit("special token ids are %r, want 0..%d" % (ids, len(SPECIAL) - 1))
    return json.dumps(data, ensure_ascii=False, indent=None, separators=(",", ":"), sort_keys=False) + "\n"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "bpe", "tokenizer.json")
    text = build()
    # Loading the result back checks that it is a valid tokenizer.json.
    Tokenizer.from_str(text)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    print("%s: %d bytes, sha256 %s" % (out, len(text.encode()), hashlib.sha256(text.encode()).hexdigest()))


if __name__ == "__main__":
    main()

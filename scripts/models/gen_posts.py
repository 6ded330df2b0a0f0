#!/usr/bin/env python3
"""Writes the labelled short social posts that train and evaluate the bundled classifiers.

    gen_posts.py --out testdata/posts

writes emotion-train.jsonl, emotion-test.jsonl, sentiment-train.jsonl and sentiment-test.jsonl,
one {"text": ..., "label": ...} object per line, balanced across labels.

Every post is composed from hand-written parts: a core clause that carries the label (with a
{t} slot for a topic), a topic, and optional openers, tails, emoji and hashtags, in one of
several frames. The train and test splits draw from DISJOINT pools of every part: different
core clauses, different topics, different openers/tails/emoji/hashtags and different frames,
so a test post never shares its label-bearing wording with a training post and the held-out
score measures how the classifier generalises to new phrasings, not how well it remembers
them. The random choices are seeded: a rerun writes identical files.
"""

from __future__ import annotations

import argparse
import json
import os
import random

EMOTIONS = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]
SENTIMENTS = ["negative", "neutral", "positive"]

# Core clauses per label and split. {t} is replaced by a topic of the split.
EMOTION_CORES = {
    "anger": {
        "train": [
            "I am so angry about {t}",
            "{t} makes my blood boil",
            "absolutely furious with {t} right now",
            "I'm sick and tired of {t}, this is outrageous",
            "who approved {t}?? I am livid",
            "{t} is a complete joke and I'm fuming",
            "stop lying to us about {t}!!",
            "I swear {t} is going to make me scream",
            "so mad I could punch a wall, thanks to {t}",
            "how dare they do this with {t}",
            "{t} again. I am beyond pissed off",
            "I'm raging about {t}",
            "enough is enough, {t} is unacceptable and I'm furious",
            "seriously? {t}? this makes me so angry",
            "I hate how they keep messing up {t}",
            "never been this mad in my life, {t} is a disgrace to customers",
            "they ignored every complaint about {t} and I am boiling",
            "{t} has me yelling at my screen",
        ],
        "test": [
            "I'm seething over {t}",
            "{t} has me irate, they need to fix it NOW",
            "can't stop shouting about {t}, so infuriating",
            "{t} drives me up the wall, I'm enraged",
            "I am losing my temper with {t}",
            "rage mode: {t} is ridiculous",
            "{t}?! I'm so annoyed and angry I'm shaking",
            "done being polite, {t} is infuriating",
            "cannot believe the nerve of them, {t} has me furious",
            "{t} is making me lose my mind with anger",
            "I want to scream at whoever is responsible for {t}",
            "hostile mood today, all because of {t}",
        ],
    },
    "disgust": {
        "train": [
            "{t} is absolutely disgusting",
            "ew, {t} made me want to throw up",
            "gross. just gross. {t}",
            "{t} smelled like rotten eggs, so nasty",
            "I feel sick looking at {t}",
            "found hair in {t}, revolting",
            "{t} is vile and repulsive",
            "yuck, {t} was slimy and moldy",
            "that was the most disgusting thing, {t}",
            "{t} literally made me gag",
            "the stench from {t} is unbearable, eww",
            "so nasty, {t} was crawling with bugs",
            "{t} is filthy, there was grime everywhere",
            "nauseating. {t} should be illegal",
            "{t} looked like sewage, I'm grossed out",
            "who thought {t} was edible? disgusting",
        ],
        "test": [
            "{t} was covered in mold, I nearly vomited",
            "so repulsive, {t} reeked of garbage",
            "{t} is sickening to look at",
            "icky and greasy, {t} turned my stomach",
            "there was a cockroach in {t}, ugh, revolting",
            "{t} tasted like rancid milk",
            "the slime on {t} made me retch",
            "eww eww eww {t} is so gross",
            "{t} stinks of rot and filth",
            "putrid. that's the only word for {t}",
            "I almost puked because of {t}",
            "{t} was crusty, sticky and nasty",
        ],
    },
    "fear": {
        "train": [
            "I'm so scared about {t}",
            "{t} is terrifying me, I can't sleep",
            "really afraid of what happens with {t}",
            "panic attack because of {t}",
            "my hands are shaking, {t} scares me",
            "I'm anxious and frightened about {t}",
            "what if {t} goes wrong, I'm terrified",
            "{t} gives me nightmares",
            "someone is following me home and I'm scared",
            "heard noises downstairs, so afraid right now",
            "my heart is racing, {t} is so scary",
            "dreading {t}, I feel sick with worry",
            "I'm frightened that {t} will hurt us",
            "{t} has me in a state of panic",
            "there's a storm coming and I'm terrified",
            "so nervous about {t} I can barely breathe",
        ],
        "test": [
            "I'm petrified of {t}",
            "{t} fills me with dread",
            "hiding under the blanket, {t} freaks me out",
            "I'm worried sick that {t} will be a disaster",
            "{t} is creepy and I'm afraid to be alone",
            "anxiety through the roof because of {t}",
            "chills down my spine thinking about {t}",
            "I keep having horrible thoughts about {t}, so frightened",
            "the lights went out and I heard footsteps, terrified",
            "{t} makes me fear for my life",
            "scared stiff, {t} is getting worse",
            "I'm trembling, {t} is so frightening",
        ],
    },
    "joy": {
        "train": [
            "so happy about {t}!",
            "{t} made my whole day",
            "I love {t} so much",
            "best day ever thanks to {t}",
            "over the moon about {t}",
            "{t} has me smiling from ear to ear",
            "feeling blessed, {t} was perfect",
            "yay!! {t} worked out",
            "I'm thrilled with {t}",
            "{t} is pure happiness",
            "can't stop laughing and dancing, {t} is amazing",
            "so grateful and happy for {t}",
            "what a wonderful surprise party, I'm overjoyed",
            "{t} went great and I feel fantastic",
            "life is good, {t} is awesome",
            "celebrating {t} tonight, so much joy",
        ],
        "test": [
            "{t} filled my heart with joy",
            "ecstatic about {t}",
            "{t} made me so cheerful today",
            "grinning like an idiot, {t} is delightful",
            "I'm delighted with {t}",
            "{t} = happiest I've been in months",
            "on cloud nine after {t}",
            "such a lovely feeling, {t} was a dream come true",
            "jumping for joy because of {t}",
            "{t} brought a huge smile to my face",
            "feeling glad and content, {t} was lovely",
            "woohoo, {t} is the best",
        ],
    },
    "neutral": {
        "train": [
            "{t} is scheduled for 3 pm on Tuesday",
            "reminder: {t} starts next week",
            "the update on {t} is posted on the website",
            "{t} will take about two hours",
            "does anyone know the address for {t}?",
            "{t} has been moved to room 204",
            "I'm taking the bus to {t} tomorrow",
            "{t} is listed in the second section of the report",
            "the form for {t} is due on Friday",
            "today I read an article about {t}",
            "{t} opens at 9 and closes at 5",
            "here is the link with details about {t}",
            "we discussed {t} in the meeting",
            "{t} costs 12 dollars per month",
            "the instructions for {t} are on page 4",
            "going to check {t} later this afternoon",
        ],
        "test": [
            "{t} is on the agenda for Monday",
            "the documentation for {t} was updated yesterday",
            "{t} runs every 30 minutes",
            "please send me the file about {t}",
            "{t} is located next to the train station",
            "what time does {t} begin?",
            "note: {t} requires a valid ID",
            "I will pick up {t} on Thursday",
            "{t} has three parts and a short quiz",
            "the schedule for {t} is attached",
            "{t} is available in blue and gray",
            "writing a summary of {t} for the team",
        ],
    },
    "sadness": {
        "train": [
            "I'm so sad about {t}",
            "{t} broke my heart",
            "crying all night because of {t}",
            "feeling so lonely since {t}",
            "I miss how things were before {t}",
            "{t} left me feeling empty and depressed",
            "can't stop the tears, {t} hurts",
            "my dog passed away this morning, I'm devastated",
            "so heartbroken over {t}",
            "{t} made me feel hopeless",
            "rip to {t}, I'm grieving",
            "nobody came to my birthday, feeling down",
            "{t} is gone and I feel so alone",
            "depressed and tired, {t} was the last straw",
            "I feel miserable about {t}",
            "sad day, {t} is over",
        ],
        "test": [
            "{t} has me in tears",
            "grief is heavy today, {t} keeps coming back to me",
            "I'm sorrowful about {t}",
            "{t} leaves a hole in my heart",
            "feeling blue because of {t}",
            "lost my grandma last night and I can't stop weeping",
            "so gloomy since {t}, everything feels pointless",
            "{t} makes me want to curl up and cry",
            "I'm heartsick over {t}",
            "mourning {t}, life feels so unfair",
            "{t} made me feel worthless and low",
            "lonely nights after {t}",
        ],
    },
    "surprise": {
        "train": [
            "wow, I did not expect {t}!",
            "{t}?? no way!",
            "whoa, {t} came out of nowhere",
            "I can't believe {t} actually happened",
            "omg, {t} just surprised everyone",
            "wait what? {t}?!",
            "never saw {t} coming",
            "{t} totally caught me off guard",
            "shocked that {t} is real",
            "is this for real? {t}",
            "plot twist: {t}",
            "I was stunned by {t}",
            "holy cow, {t} happened overnight",
            "didn't see that coming at all, {t}",
            "{t} left me speechless, so unexpected",
            "really? {t}? wow",
        ],
        "test": [
            "{t} took me completely by surprise",
            "jaw on the floor, {t}",
            "whoa whoa whoa, {t} out of the blue",
            "astonished by {t}",
            "{t} was so unexpected I had to read it twice",
            "no wayyy, {t} is happening?!",
            "amazed that {t} turned out like this",
            "{t}! what a shock",
            "hold on, {t} is real? I'm floored",
            "bet nobody predicted {t}",
            "{t} blindsided me",
            "huh, {t}, that's unexpected",
        ],
    },
}

# Extra sentiment cores (beside the emotion cores that map onto a sentiment).
SENTIMENT_CORES = {
    "positive": {
        "train": [
            "great service with {t}, highly recommend",
            "{t} works perfectly, five stars",
            "thank you so much for {t}, really appreciate it",
            "{t} exceeded my expectations",
            "really impressed by {t}",
            "{t} is excellent value",
            "loving {t}, well done team",
            "{t} was fast, friendly and helpful",
        ],
        "test": [
            "{t} is superb, would buy again",
            "kudos to everyone behind {t}",
            "{t} was smooth and pleasant",
            "top notch experience with {t}",
            "{t} is brilliant, thanks",
            "very satisfied with {t}",
        ],
    },
    "negative": {
        "train": [
            "terrible experience with {t}, never again",
            "{t} broke after two days, waste of money",
            "{t} is the worst, one star",
            "very disappointed with {t}",
            "{t} was slow, rude and useless",
            "do not buy {t}, it's awful",
            "{t} keeps crashing, so frustrating",
            "refund please, {t} was horrible",
        ],
        "test": [
            "{t} is a total rip-off",
            "awful quality, {t} fell apart",
            "{t} was a nightmare from start to finish",
            "regret paying for {t}",
            "{t} is poor and overpriced",
            "zero stars for {t}, dreadful",
        ],
    },
    "neutral": {
        "train": [
            "{t} ships in a standard box",
            "the manual for {t} is 40 pages long",
            "{t} has a 12 month warranty",
            "the price of {t} changed on the 1st",
        ],
        "test": [
            "{t} comes with two cables",
            "the store lists {t} under electronics",
            "{t} weighs about 300 grams",
            "support for {t} is by email",
        ],
    },
}

# Emotion labels that map onto a sentiment (surprise is neither positive nor negative).
EMOTION_TO_SENTIMENT = {"anger": "negative", "disgust": "negative", "fear": "negative", "sadness": "negative", "joy": "positive", "neutral": "neutral"}

TOPICS = {
    "train": [
        "the new phone update", "my flight", "the landlord", "this traffic", "the election results",
        "my boss", "the delivery", "the restaurant downtown", "the movie last night", "my exam",
        "the concert", "the bank", "the wifi", "the weekend trip", "this weather", "the hospital visit",
        "the job interview", "the new game", "the school board", "my neighbor", "the train schedule",
        "the price increase", "the customer service", "my car", "the football match", "the hotel room",
        "the software release", "the city council", "my sister's wedding", "the gym",
    ],
    "test": [
        "the airline", "the subway", "my professor", "the grocery store", "the podcast episode",
        "the tax office", "my laptop", "the vet appointment", "the cafe on main street",
        "the season finale", "my internship", "the apartment", "the marathon", "the pizza place",
        "the insurance company", "the road trip", "the museum", "the festival", "my roommate",
        "the power company",
    ],
}

OPENERS = {
    "train": ["", "", "", "honestly ", "ok so ", "ugh, ", "today: ", "lol ", "not gonna lie, ", "update: "],
    "test": ["", "", "", "tbh ", "so yeah, ", "guys, ", "just saying, ", "hmm ", "PSA: "],
}
TAILS = {
    "train": ["", "", "", " #mondays", " #life", " @support", " lol", " smh", " !!!", " ..."],
    "test": ["", "", "", " #weekend", " #mood", " @help", " fr", " ngl", " !!", " :/"],
}
EMOJI = {
    "anger": {"train": ["😡", "🤬"], "test": ["😠", "💢"]},
    "disgust": {"train": ["🤮", "🤢"], "test": ["😖", "🤧"]},
    "fear": {"train": ["😱", "😨"], "test": ["😰", "🫣"]},
    "joy": {"train": ["😀", "🎉"], "test": ["😄", "🥳"]},
    "neutral": {"train": ["📅", "ℹ️"], "test": ["📌", "🗓️"]},
    "sadness": {"train": ["😢", "💔"], "test": ["😭", "😞"]},
    "surprise": {"train": ["😮", "😲"], "test": ["🤯", "😯"]},
    "positive": {"train": ["👍", "⭐"], "test": ["👌", "💯"]},
    "negative": {"train": ["👎", "😤"], "test": ["🙄", "😒"]},
}
FRAMES = {
    "train": ["{o}{c}{tail}", "{o}{c} {e}{tail}", "{c}. {e}", "{O}{c}{tail}"],
    "test": ["{c} {e}", "{o}{c}", "{e} {c}{tail}", "{C}{tail}"],
}


def compose(rng: random.Random, split: str, label: str, core: str) -> str:
    t = rng.choice(TOPICS[split])
    c = core.replace("{t}", t)
    c = c[0].upper() + c[1:] if rng.random() < 0.6 else c
    frame = rng.choice(FRAMES[split])
    o = rng.choice(OPENERS[split])
    return frame.format(
        o=o,
        O=o.upper(),
        c=c,
        C=c.upper() if rng.random() < 0.3 else c.lower(),
        tail=rng.choice(TAILS[split]),
        e=rng.choice(EMOJI[label][split]),
    ).strip()


def posts(rng: random.Random, split: str, cores: dict[str, list[str]], per_label: int) -> list[dict]:
    """per_label distinct posts per label, the core clauses used in turn."""
    out = []
    for label, pool in cores.items():
        seen: set[str] = set()
        i = 0
        while len(seen) < per_label:
            text = compose(rng, split, label, pool[i % len(pool)])
            i += 1
            if text not in seen:
                seen.add(text)
                out.append({"text": text, "label": label})
            if i > per_label * 50:
                raise SystemExit(f"{split}/{label}: cannot compose {per_label} distinct posts")
    rng.shuffle(out)
    return out


def sentiment_cores(split: str) -> dict[str, list[str]]:
    cores = {s: list(SENTIMENT_CORES[s][split]) for s in SENTIMENTS}
    for emotion, sentiment in EMOTION_TO_SENTIMENT.items():
        cores[sentiment].extend(EMOTION_CORES[emotion][split])
    return cores


def write(path: str, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory, e.g. testdata/posts")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    # Disjointness of the splits is what makes the test score honest: check it.
    for pools in [TOPICS, OPENERS, TAILS, FRAMES] + list(EMOTION_CORES.values()) + list(SENTIMENT_CORES.values()) + list(EMOJI.values()):
        shared = (set(pools["train"]) & set(pools["test"])) - {""}
        if shared:
            raise SystemExit(f"train and test share {sorted(shared)}")
    sizes = {"train": (160, 240), "test": (60, 90)}  # (per emotion label, per sentiment label)
    for split, seed in (("train", 14001), ("test", 14002)):
        rng = random.Random(seed)
        per_emotion, per_sentiment = sizes[split]
        emo_cores = {e: EMOTION_CORES[e][split] for e in EMOTIONS}
        write(os.path.join(args.out, f"emotion-{split}.jsonl"), posts(rng, split, emo_cores, per_emotion))
        write(os.path.join(args.out, f"sentiment-{split}.jsonl"), posts(rng, split, sentiment_cores(split), per_sentiment))


if __name__ == "__main__":
    main()

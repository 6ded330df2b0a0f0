#!/usr/bin/env python3
"""Encodes texts with Hugging Face `tokenizers`, the reference for parity tests.

Usage:
  encode.py TOKENIZER_JSON TEXTS_JSON MAX_LENGTHS       print encodings as JSON
  encode.py --bench TOKENIZER_JSON TEXTS_JSON MAX_LENGTH [REPEAT]
                                                       print encode speed

TEXTS_JSON holds a JSON array of strings. MAX_LENGTHS is a comma-separated
list; 0 keeps the truncation of tokenizer.json. Padding is turned off. The
output maps each max length to a list of [ids, type_ids], one per text.
"""

import json
import sys
import time

from tokenizers import Tokenizer


def load(path, max_length):
    tok = Tokenizer.from_file(path)
    tok.no_padding()
    if max_length > 0:
        tok.enable_truncation(max_length=max_length)
    return tok


def encode(path, texts, max_lengths):
    out = {}
    for n in max_lengths:
        tok = load(path, n)
        out[str(n)] = [[e.ids, e.type_ids] for e in (tok.encode(t) for t in texts)]
    json.dump(out, sys.stdout, separators=(",", ":"))


def bench(path, texts, max_length, repeat):
    tok = load(path, max_length)
    # Warm up the caches the way a long-running process would.
    tok.encode_batch(texts)
    result = {"texts": len(texts) * repeat}
    start = time.perf_counter()
    for _ in range(repeat):
        for t in texts:
            tok.encode(t)
    result["encode_texts_per_s"] = result["texts"] / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(repeat):
        tok.encode_batch(texts)
    result["encode_batch_texts_per_s"] = result["texts"] / (time.perf_counter() - start)
    json.dump(result, sys.stdout)
    print()


def main():
    args = sys.argv[1:]
    if args and args[0] == "--bench":
        path, texts_path, max_length = args[1], args[2], int(args[3])
        repeat = int(args[4]) if len(args) > 4 else 3
        with open(texts_path, encoding="utf-8") as f:
            bench(path, json.load(f), max_length, repeat)
        return
    if len(args) != 3:
        raise SystemExit(__doc__)
    path, texts_path, lengths = args
    with open(texts_path, encoding="utf-8") as f:
        texts = json.load(f)
    encode(path, texts, [int(n) for n in lengths.split(",")])


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Python onnxruntime throughput on the batches the gpu package's batcher forms.

    bench_ort.py --model-dir .local/models/distilroberta-emotion --texts texts.json \\
        --max-length 128 --batch 32 --threads 2 [--no-bucketing] [--repeat 3]

texts.json is a JSON list of strings. Like gpu.BenchmarkTexts, each pass tokenizes every text
(Hugging Face tokenizers, truncation at --max-length, one text at a time), sorts them by token
length (unless --no-bucketing), cuts them into batches of --batch, pads each batch to its longest
text and runs it with onnxruntime on the CPU with --threads intra-op threads. Prints JSON with the
best and median texts/s over --repeat passes (after one warm-up run) and the padding ratio
(padding tokens / all tokens).
"""

import argparse
import json
import os
import statistics
import time

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--texts", required=True)
    ap.add_argument("--max-length", type=int, required=True)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads; 0 = onnxruntime default")
    ap.add_argument("--no-bucketing", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    texts = json.load(open(args.texts, encoding="utf-8"))
    tok = Tokenizer.from_file(os.path.join(args.model_dir, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=args.max_length)
    so = ort.SessionOptions()
    if args.threads:
        so.intra_op_num_threads = args.threads
    sess = ort.InferenceSession(os.path.join(args.model_dir, "model.onnx"), so, providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    pad_id = tok.token_to_id("<pad>")
    if pad_id is None:
        pad_id = tok.token_to_id("[PAD]") or 0

    def run_pass():
        encs = [tok.encode(t) for t in texts]
        order = list(range(len(encs)))
        if not args.no_bucketing:
            order.sort(key=lambda i: len(encs[i].ids))  # stable, like the Go batcher
        real = padded = 0
        for s in range(0, len(order), args.batch):
            batch = [encs[i] for i in order[s : s + args.batch]]
            width = max(max(len(e.ids) for e in batch), 1)
            ids = np.full((len(batch), width), pad_id, np.int64)
            mask = np.zeros((len(batch), width), np.int64)
            tt = np.zeros((len(batch), width), np.int64)
            for r, e in enumerate(batch):
                ids[r, : len(e.ids)] = e.ids
                mask[r, : len(e.ids)] = 1
                tt[r, : len(e.ids)] = e.type_ids
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in names:
                feeds["token_type_ids"] = tt
            sess.run(None, feeds)
            real += int(mask.sum())
            padded += int(mask.size - mask.sum())
        return padded / max(real + padded, 1)

    warm = tok.encode("warm up the model")
    warm_feeds = {"input_ids": np.array([warm.ids], np.int64), "attention_mask": np.ones((1, len(warm.ids)), np.int64)}
    if "token_type_ids" in names:
        warm_feeds["token_type_ids"] = np.zeros((1, len(warm.ids)), np.int64)
    sess.run(None, warm_feeds)
    rates, ratio = [], 0.0
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        ratio = run_pass()
        rates.append(len(texts) / (time.perf_counter() - t0))
    print(json.dumps({
        "onnxruntime": ort.__version__,
        "texts": len(texts),
        "batch": args.batch,
        "max_length": args.max_length,
        "threads": args.threads,
        "bucketing": not args.no_bucketing,
        "texts_per_sec": max(rates),
        "texts_per_sec_median": statistics.median(rates),
        "padding_ratio": ratio,
    }))


if __name__ == "__main__":
    main()

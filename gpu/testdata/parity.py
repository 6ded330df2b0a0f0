#!/usr/bin/env python3
"""Reference outputs of a model for the gpu package's parity test.

    parity.py REQUEST.json OUT_DIR

REQUEST.json: {"model_dir": ..., "kind": "classify" | "embed", "max_length": N, "texts": [...]}.
Each text is tokenized with Hugging Face `tokenizers` (Tokenizer.from_file + enable_truncation)
and run alone (batch of one, no padding) through Python onnxruntime on the CPU. Writes
OUT_DIR/result.json with, per text, the token ids and type ids and either the logits and the
probabilities (softmax, or sigmoid for multi_label_classification) or the mean-pooled,
L2-normalised embedding; for "embed" also OUT_DIR/hidden.f32, every text's raw
last_hidden_state rows (tokens x hidden, float32 little-endian) one text after another.
"""

import json
import os
import sys

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer


def main() -> None:
    req = json.load(open(sys.argv[1], encoding="utf-8"))
    out_dir = sys.argv[2]
    model_dir = req["model_dir"]
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=req["max_length"])
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(os.path.join(model_dir, "model.onnx"), so, providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    sigmoid = cfg.get("problem_type") == "multi_label_classification"
    items = []
    hidden = open(os.path.join(out_dir, "hidden.f32"), "wb") if req["kind"] == "embed" else None
    for text in req["texts"]:
        enc = tok.encode(text)
        ids = np.array([enc.ids], np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if "token_type_ids" in names:
            feeds["token_type_ids"] = np.array([enc.type_ids], np.int64)
        out = sess.run(None, feeds)[0][0]
        item = {"ids": enc.ids, "type_ids": enc.type_ids}
        if req["kind"] == "embed":
            hidden.write(out.astype("<f4").tobytes())
            e = out.astype(np.float64).mean(axis=0)
            item["embedding"] = (e / max(np.linalg.norm(e), 1e-12)).tolist()
        else:
            lg = out.astype(np.float64)
            if sigmoid:
                p = 1.0 / (1.0 + np.exp(-lg))
            else:
                p = np.exp(lg - lg.max())
                p /= p.sum()
            item["logits"] = lg.tolist()
            item["probs"] = p.tolist()
        items.append(item)
    if hidden:
        hidden.close()
    with open(os.path.join(out_dir, "result.json"), "w", encoding="utf-8") as f:
        json.dump({"onnxruntime": ort.__version__, "items": items}, f)


if __name__ == "__main__":
    main()

"""Trains the linear head of the bundled sentence-embedding classifiers.

The features are all-MiniLM-L6-v2 sentence embeddings (mean pooling over the attention mask,
unit length), computed with the built minilm/model.onnx; the head is a multinomial logistic
regression on them, fitted by full-batch gradient descent (Adam) from zero weights, so the
result depends only on the data and the constants below: no random state.
"""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from encoder import mean_pool_normalize

# Chosen once on the training split (see docs/models.md); not tuned on the held-out split.
L2 = 1e-3  # weight decay on W (not on the bias), per example
STEPS = 800
LEARNING_RATE = 0.05
EMBED_BATCH = 64
MAX_LENGTH = 128


def read_jsonl(path: str, labels: list[str]) -> tuple[list[str], np.ndarray]:
    """Texts and label indices of a {"text", "label"} JSONL file; unknown labels exit."""
    texts, ys = [], []
    index = {lab: i for i, lab in enumerate(labels)}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            row = json.loads(line)
            if row["label"] not in index:
                raise SystemExit(f"{path}:{n}: label {row['label']!r} is not one of {labels}")
            texts.append(row["text"])
            ys.append(index[row["label"]])
    return texts, np.array(ys, np.int64)


def embed(model_path: str, tokenizer_path: str, texts: list[str], threads: int = 2) -> np.ndarray:
    """Unit-length mean-pooled embeddings [len(texts), hidden], in float64."""
    tok = Tokenizer.from_file(tokenizer_path)
    tok.no_padding()
    tok.enable_truncation(max_length=MAX_LENGTH)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    out = []
    for start in range(0, len(texts), EMBED_BATCH):
        encs = [tok.encode(t) for t in texts[start : start + EMBED_BATCH]]
        S = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), S), np.int64)
        mask = np.zeros((len(encs), S), np.int64)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)] = e.ids
            mask[i, : len(e.ids)] = 1
        h = sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
        out.append(mean_pool_normalize(h.astype(np.float64), mask))
    return np.concatenate(out)


def fit(x: np.ndarray, y: np.ndarray, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression: W [labels, hidden], b [labels] (float64)."""
    n, d = x.shape
    onehot = np.eye(n_labels)[y]
    params = [np.zeros((n_labels, d)), np.zeros(n_labels)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2, eps = 0.9, 0.999, 1e-8
    for step in range(1, STEPS + 1):
        W, b = params
        z = x @ W.T + b
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / n
        grads = [g.T @ x + L2 * W, g.sum(0)]
        for i, gr in enumerate(grads):
            m[i] = b1 * m[i] + (1 - b1) * gr
            v[i] = b2 * v[i] + (1 - b2) * gr * gr
            params[i] = params[i] - LEARNING_RATE * (m[i] / (1 - b1**step)) / (np.sqrt(v[i] / (1 - b2**step)) + eps)
    return params[0], params[1]


def accuracy(x: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.argmax(x @ W.T + b, axis=1) == y))

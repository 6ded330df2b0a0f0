"""BERT / RoBERTa encoder as an ONNX graph, plus an independent numpy forward pass.

The graph has the signature of a Hugging Face / optimum export:

    inputs   input_ids [batch, sequence] int64, attention_mask [batch, sequence] int64,
             token_type_ids [batch, sequence] int64 (BERT family only)
    outputs  last_hidden_state [batch, sequence, hidden] float32   (feature extraction)
             logits [batch, num_labels] float32                    (sequence classification)

Two classification heads: the Hugging Face one (head "first_token": dense + tanh on the first
token, then a linear layer), and the sentence-embedding one (head "mean_pooling": mean of the
token vectors over the attention mask, scaled to unit length as sentence-transformers does,
then a linear layer "classifier.weight" [labels, hidden] + "classifier.bias").

Weights use the Hugging Face parameter names without the "bert." / "roberta." prefix,
so a BertModel / RobertaModel safetensors file maps onto them directly.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17  # LayerNormalization is a standard op from opset 17.
IR_VERSION = 8

_ST_DTYPES = {
    "F32": np.float32,
    "F16": np.float16,
    "F64": np.float64,
    "I64": np.int64,
    "I32": np.int32,
    "I8": np.int8,
    "U8": np.uint8,
}


@dataclass
class EncoderConfig:
    """Architecture hyper-parameters (the subset of a HF config.json the graph needs)."""

    model_type: str  # "bert" or "roberta"
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int
    pad_token_id: int
    layer_norm_eps: float = 1e-12
    labels: list[str] = field(default_factory=list)  # empty: feature extraction
    problem_type: str = "single_label_classification"
    name_or_path: str = ""
    initializer_range: float = 0.02
    head: str = "first_token"  # or "mean_pooling"; only with labels

    @property
    def is_roberta(self) -> bool:
        return self.model_type == "roberta"

    @property
    def position_offset(self) -> int:
        """RoBERTa positions start at padding_idx + 1; BERT at 0."""
        return self.pad_token_id + 1 if self.is_roberta else 0

    def hf_config(self) -> dict:
        arch = "RobertaModel" if self.is_roberta else "BertModel"
        if self.labels and self.head == "first_token":
            arch = "RobertaForSequenceClassification" if self.is_roberta else "BertForSequenceClassification"
        cfg = {
            "_name_or_path": self.name_or_path,
            "architectures": [arch],
            "model_type": self.model_type,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "intermediate_size": self.intermediate_size,
            "hidden_act": "gelu",
            "max_position_embeddings": self.max_position_embeddings,
            "type_vocab_size": self.type_vocab_size,
            "pad_token_id": self.pad_token_id,
            "layer_norm_eps": self.layer_norm_eps,
            "initializer_range": self.initializer_range,
            "position_embedding_type": "absolute",
        }
        if self.is_roberta:
            cfg["bos_token_id"] = 0
            cfg["eos_token_id"] = 2
        if self.labels:
            cfg["id2label"] = {str(i): lab for i, lab in enumerate(self.labels)}
            cfg["label2id"] = {lab: i for i, lab in enumerate(self.labels)}
            cfg["problem_type"] = self.problem_type
            if self.head == "mean_pooling":
                cfg["classifier_head"] = "mean pooling over attention_mask, L2 normalisation, linear (classifier.weight, classifier.bias)"
        return cfg


def read_safetensors(path: str) -> dict[str, np.ndarray]:
    """Parses a safetensors file: u64 LE header length, JSON header, raw little-endian data."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    base = 8 + n
    out: dict[str, np.ndarray] = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        dtype = _ST_DTYPES.get(meta["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {meta['dtype']}")
        start, end = meta["data_offsets"]
        arr = np.frombuffer(blob, dtype=np.dtype(dtype).newbyteorder("<"), count=(end - start) // np.dtype(dtype).itemsize, offset=base + start)
        out[name] = arr.reshape(meta["shape"]).astype(dtype if dtype != np.float16 else np.float32)
    return out


def strip_prefix(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Drops the "bert." / "roberta." prefix HF uses inside *ForSequenceClassification."""
    out = {}
    for k, v in weights.items():
        for p in ("bert.", "roberta."):
            if k.startswith(p):
                k = k[len(p) :]
                break
        out[k] = v
    return out


def random_weights(cfg: EncoderConfig, seed: int) -> dict[str, np.ndarray]:
    """HF-named weights drawn from N(0, initializer_range), LayerNorm = (1, 0), fixed seed."""
    rng = np.random.default_rng(seed)
    std = cfg.initializer_range
    H, I = cfg.hidden_size, cfg.intermediate_size

    def normal(*shape):
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(std)

    def small(*shape):
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(std * 0.1)

    w: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": normal(cfg.vocab_size, H),
        "embeddings.position_embeddings.weight": normal(cfg.max_position_embeddings, H),
        "embeddings.token_type_embeddings.weight": normal(cfg.type_vocab_size, H),
        "embeddings.LayerNorm.weight": np.ones(H, np.float32),
        "embeddings.LayerNorm.bias": np.zeros(H, np.float32),
    }
    w["embeddings.word_embeddings.weight"][cfg.pad_token_id] = 0.0
    for i in range(cfg.num_hidden_layers):
        p = f"encoder.layer.{i}."
        for n in ("query", "key", "value"):
            w[p + f"attention.self.{n}.weight"] = normal(H, H)
            w[p + f"attention.self.{n}.bias"] = small(H)
        w[p + "attention.output.dense.weight"] = normal(H, H)
        w[p + "attention.output.dense.bias"] = small(H)
        w[p + "attention.output.LayerNorm.weight"] = np.ones(H, np.float32)
        w[p + "attention.output.LayerNorm.bias"] = np.zeros(H, np.float32)
        w[p + "intermediate.dense.weight"] = normal(I, H)
        w[p + "intermediate.dense.bias"] = small(I)
        w[p + "output.dense.weight"] = normal(H, I)
        w[p + "output.dense.bias"] = small(H)
        w[p + "output.LayerNorm.weight"] = np.ones(H, np.float32)
        w[p + "output.LayerNorm.bias"] = np.zeros(H, np.float32)
    n = len(cfg.labels)
    if n:
        # Heads get a larger scale so that random logits differ visibly between texts.
        head = lambda *s: rng.standard_normal(s, dtype=np.float32) * np.float32(1.0 / math.sqrt(s[-1]))  # noqa: E731
        if cfg.is_roberta:
            w["classifier.dense.weight"] = head(H, H)
            w["classifier.dense.bias"] = np.zeros(H, np.float32)
            w["classifier.out_proj.weight"] = head(n, H) * np.float32(4.0)
            w["classifier.out_proj.bias"] = small(n)
        else:
            w["pooler.dense.weight"] = head(H, H)
            w["pooler.dense.bias"] = np.zeros(H, np.float32)
            w["classifier.weight"] = head(n, H) * np.float32(4.0)
            w["classifier.bias"] = small(n)
    return w


class _Graph:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def name(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.array(value, order="C"), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out + "_node", **attrs))
        return out

    def linear(self, x: str, w: np.ndarray, b: np.ndarray, prefix: str) -> str:
        """x @ W^T + b with a HF [out, in] weight."""
        wt = self.const(prefix + ".weight_t", w.T.astype(np.float32))
        bb = self.const(prefix + ".bias", b.astype(np.float32))
        return self.op("Add", [self.op("MatMul", [x, wt]), bb])

    def layer_norm(self, x: str, w: dict, prefix: str, eps: float) -> str:
        g = self.const(prefix + ".weight", w[prefix + ".weight"])
        b = self.const(prefix + ".bias", w[prefix + ".bias"])
        return self.op("LayerNormalization", [x, g, b], axis=-1, epsilon=eps)

    def gelu(self, x: str) -> str:
        inv_sqrt2 = self.const(self.name("inv_sqrt2"), np.array(1.0 / math.sqrt(2.0), np.float32))
        one = self.const(self.name("one"), np.array(1.0, np.float32))
        half = self.const(self.name("half"), np.array(0.5, np.float32))
        erf = self.op("Erf", [self.op("Mul", [x, inv_sqrt2])])
        return self.op("Mul", [self.op("Mul", [x, half]), self.op("Add", [erf, one])])


def build_graph(cfg: EncoderConfig, w: dict[str, np.ndarray]) -> onnx.ModelProto:
    """Builds the encoder (and head when cfg.labels) as an ONNX model."""
    g = _Graph()
    H, nh = cfg.hidden_size, cfg.num_attention_heads
    hd = H // nh
    if hd * nh != H:
        raise ValueError(f"hidden_size {H} is not divisible by num_attention_heads {nh}")
    eps = cfg.layer_norm_eps

    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch_size", "sequence_length"]),
    ]
    if not cfg.is_roberta:
        inputs.append(helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, ["batch_size", "sequence_length"]))

    # Embeddings.
    word = g.op("Gather", [g.const("embeddings.word_embeddings.weight", w["embeddings.word_embeddings.weight"]), "input_ids"], axis=0)
    pos_table = g.const("embeddings.position_embeddings.weight", w["embeddings.position_embeddings.weight"])
    if cfg.is_roberta:
        # create_position_ids_from_input_ids: cumsum(ids != pad) * (ids != pad) + padding_idx.
        pad = g.const("pad_token_id", np.array(cfg.pad_token_id, np.int64))
        not_pad = g.op("Cast", [g.op("Not", [g.op("Equal", ["input_ids", pad])])], to=TensorProto.INT64)
        axis1 = g.const("axis_1", np.array(1, np.int64))
        cums = g.op("CumSum", [not_pad, axis1])
        pos_ids = g.op("Add", [g.op("Mul", [cums, not_pad]), pad])
        pos = g.op("Gather", [pos_table, pos_ids], axis=0)  # [B, S, H]
    else:
        # 0..S-1 per row: CumSum of ones along the sequence axis, minus one.
        ones = g.op("ConstantOfShape", [g.op("Shape", ["input_ids"])], value=helper.make_tensor("one", TensorProto.INT64, [1], [1]))
        axis1 = g.const("axis_1", np.array(1, np.int64))
        pos_ids = g.op("Sub", [g.op("CumSum", [ones, axis1]), g.const("one_i64", np.array(1, np.int64))])
        pos = g.op("Gather", [pos_table, pos_ids], axis=0)  # [B, S, H]
    tt_table = w["embeddings.token_type_embeddings.weight"]
    if cfg.is_roberta:
        tt = g.const("embeddings.token_type_embeddings.row0", tt_table[0])  # token_type_ids are all 0
    else:
        tt = g.op("Gather", [g.const("embeddings.token_type_embeddings.weight", tt_table), "token_type_ids"], axis=0)
    x = g.op("Add", [g.op("Add", [word, pos]), tt])
    x = g.layer_norm(x, w, "embeddings.LayerNorm", eps)

    # Additive attention mask [B, 1, 1, S]: 0 where attended, finfo(float32).min where masked.
    mask_f = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    one_f = g.const("one_f", np.array(1.0, np.float32))
    neg = g.const("mask_min", np.array(np.finfo(np.float32).min, np.float32))
    add_mask = g.op("Mul", [g.op("Sub", [one_f, mask_f]), neg])
    add_mask = g.op("Unsqueeze", [add_mask, g.const("axes_1_2", np.array([1, 2], np.int64))], hint="ext_mask")

    split_shape = g.const("split_heads_shape", np.array([0, 0, nh, hd], np.int64))
    merge_shape = g.const("merge_heads_shape", np.array([0, 0, H], np.int64))
    scale = g.const("attn_scale", np.array(1.0 / math.sqrt(hd), np.float32))

    for i in range(cfg.num_hidden_layers):
        p = f"encoder.layer.{i}."

        def proj(name: str) -> str:
            return g.linear(x, w[p + f"attention.self.{name}.weight"], w[p + f"attention.self.{name}.bias"], p + f"attention.self.{name}")

        q = g.op("Transpose", [g.op("Reshape", [proj("query"), split_shape])], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [proj("key"), split_shape])], perm=[0, 2, 3, 1])
        v = g.op("Transpose", [g.op("Reshape", [proj("value"), split_shape])], perm=[0, 2, 1, 3])
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k]), scale]), add_mask])
        probs = g.op("Softmax", [scores], axis=-1)
        ctx = g.op("Reshape", [g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3]), merge_shape])
        attn = g.linear(ctx, w[p + "attention.output.dense.weight"], w[p + "attention.output.dense.bias"], p + "attention.output.dense")
        x = g.layer_norm(g.op("Add", [attn, x]), w, p + "attention.output.LayerNorm", eps)
        inter = g.gelu(g.linear(x, w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"], p + "intermediate.dense"))
        out = g.linear(inter, w[p + "output.dense.weight"], w[p + "output.dense.bias"], p + "output.dense")
        x = g.layer_norm(g.op("Add", [out, x]), w, p + "output.LayerNorm", eps)

    n = len(cfg.labels)
    if n == 0:
        g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="last_hidden_state_node"))
        outputs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch_size", "sequence_length", H])]
    elif cfg.head == "mean_pooling":
        m = g.op("Unsqueeze", [mask_f, g.const("axes_2", np.array([2], np.int64))])  # [B, S, 1]
        axes1 = g.const("axes_1", np.array([1], np.int64))
        summed = g.op("ReduceSum", [g.op("Mul", [x, m]), axes1], keepdims=0)  # [B, H]
        count = g.op("Max", [g.op("ReduceSum", [m, axes1], keepdims=0), g.const("min_count", np.array(1e-9, np.float32))])  # [B, 1]
        pooled = g.op("Div", [summed, count])
        norm = g.op("Sqrt", [g.op("ReduceSum", [g.op("Mul", [pooled, pooled]), g.const("axes_last", np.array([-1], np.int64))], keepdims=1)])
        unit = g.op("Div", [pooled, g.op("Max", [norm, g.const("min_norm", np.array(1e-12, np.float32))])])
        logits = g.linear(unit, w["classifier.weight"], w["classifier.bias"], "classifier")
        g.nodes.append(helper.make_node("Identity", [logits], ["logits"], name="logits_node"))
        outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch_size", n])]
    elif cfg.head == "first_token":
        first = g.op("Gather", [x, g.const("first_token", np.array(0, np.int64))], axis=1)  # [B, H]
        if cfg.is_roberta:
            h = g.op("Tanh", [g.linear(first, w["classifier.dense.weight"], w["classifier.dense.bias"], "classifier.dense")])
            logits = g.linear(h, w["classifier.out_proj.weight"], w["classifier.out_proj.bias"], "classifier.out_proj")
        else:
            h = g.op("Tanh", [g.linear(first, w["pooler.dense.weight"], w["pooler.dense.bias"], "pooler.dense")])
            logits = g.linear(h, w["classifier.weight"], w["classifier.bias"], "classifier")
        g.nodes.append(helper.make_node("Identity", [logits], ["logits"], name="logits_node"))
        outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch_size", n])]
    else:
        raise ValueError(f"unknown classification head {cfg.head!r}")

    graph = helper.make_graph(g.nodes, "encoder", inputs, outputs, initializer=g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="textpulse-models")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


# ---------------------------------------------------------------------------
# Independent numpy reference (float64), written from the HF modeling code, not from the graph.


def _ln(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def numpy_forward(cfg: EncoderConfig, w: dict[str, np.ndarray], input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray | None = None) -> np.ndarray:
    """Returns last_hidden_state (no labels) or logits, computed in float64."""
    W = {k: v.astype(np.float64) for k, v in w.items()}
    B, S = input_ids.shape
    H, nh = cfg.hidden_size, cfg.num_attention_heads
    hd = H // nh
    if cfg.is_roberta:
        m = (input_ids != cfg.pad_token_id).astype(np.int64)
        pos_ids = np.cumsum(m, axis=1) * m + cfg.pad_token_id
    else:
        pos_ids = np.broadcast_to(np.arange(S), (B, S))
    if token_type_ids is None:
        token_type_ids = np.zeros_like(input_ids)
    x = W["embeddings.word_embeddings.weight"][input_ids] + W["embeddings.position_embeddings.weight"][pos_ids] + W["embeddings.token_type_embeddings.weight"][token_type_ids]
    x = _ln(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"], cfg.layer_norm_eps)
    ext = (1.0 - attention_mask[:, None, None, :].astype(np.float64)) * np.finfo(np.float32).min
    for i in range(cfg.num_hidden_layers):
        p = f"encoder.layer.{i}."

        def lin(t, name):
            return t @ W[p + name + ".weight"].T + W[p + name + ".bias"]

        def heads(t):
            return t.reshape(B, S, nh, hd).transpose(0, 2, 1, 3)

        q, k, v = (heads(lin(x, f"attention.self.{n}")) for n in ("query", "key", "value"))
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd) + ext
        s = s - s.max(-1, keepdims=True)
        pr = np.exp(s)
        pr /= pr.sum(-1, keepdims=True)
        ctx = (pr @ v).transpose(0, 2, 1, 3).reshape(B, S, H)
        x = _ln(lin(ctx, "attention.output.dense") + x, W[p + "attention.output.LayerNorm.weight"], W[p + "attention.output.LayerNorm.bias"], cfg.layer_norm_eps)
        h = lin(x, "intermediate.dense")
        h = 0.5 * h * (1.0 + _erf(h / math.sqrt(2.0)))
        x = _ln(lin(h, "output.dense") + x, W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"], cfg.layer_norm_eps)
    if not cfg.labels:
        return x
    if cfg.head == "mean_pooling":
        return mean_pool_normalize(x, attention_mask) @ W["classifier.weight"].T + W["classifier.bias"]
    first = x[:, 0, :]
    if cfg.is_roberta:
        h = np.tanh(first @ W["classifier.dense.weight"].T + W["classifier.dense.bias"])
        return h @ W["classifier.out_proj.weight"].T + W["classifier.out_proj.bias"]
    h = np.tanh(first @ W["pooler.dense.weight"].T + W["pooler.dense.bias"])
    return h @ W["classifier.weight"].T + W["classifier.bias"]


def mean_pool_normalize(hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """sentence-transformers pooling: mean over the attention mask, then unit length."""
    m = attention_mask[..., None].astype(hidden.dtype)
    pooled = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)

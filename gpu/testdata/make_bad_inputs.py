#!/usr/bin/env python3
"""Writes bad_inputs.onnx: a classifier-shaped graph whose inputs are named ids and mask
instead of input_ids and attention_mask, for the gpu package's loading tests."""

import os

import onnx
from onnx import TensorProto, helper

inputs = [
    helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
    helper.make_tensor_value_info("mask", TensorProto.INT64, ["batch_size", "sequence_length"]),
]
out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch_size", 7])
nodes = [
    helper.make_node("Cast", ["ids"], ["f"], to=TensorProto.FLOAT),
    helper.make_node("ReduceSum", ["f"], ["s"], keepdims=1),
    helper.make_node("Tile", ["s", "reps"], ["logits"]),
]
reps = helper.make_tensor("reps", TensorProto.INT64, [2], [1, 7])
graph = helper.make_graph(nodes, "bad_inputs", inputs, [out], initializer=[reps])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, os.path.join(os.path.dirname(os.path.abspath(__file__)), "bad_inputs.onnx"))

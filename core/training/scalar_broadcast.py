"""Scalars broadcast against (..., 1) tensors get the tensor's rank in step graphs.

ONNX Runtime's CPU kernels for binary elementwise ops take a slow path when a scalar of shape () meets a tensor
whose last axis is 1: Add, Mul or Div of a (128, 288, 1) tensor and a () scalar take 368-378 us, and 7-12 us with
the same scalar shaped (1, 1, 1), or with a (128, 288) tensor (its profiler, 100 runs each). Such nodes come from a
mean over the last axis kept as (..., 1): a layer normalization's variance plus epsilon, a loss over a one-channel
output, an optimizer's update of a (K, 1) kernel. Shaping the scalar (1, ..., 1) gives the same values and output
shape. Every step graph (training and evaluation) gets it, whole, just before its outputs are declared.
"""

from __future__ import annotations

import numpy as np

from core.graph import GraphBuilder, OpNode

BINARY = frozenset({"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Equal", "Greater", "Less", "GreaterOrEqual",
                    "LessOrEqual"})


def widen_scalars(g: GraphBuilder) -> int:
    """Give every () input of a binary elementwise node of `g` the rank of a (..., 1) input it meets; returns how
    many inputs changed. Constants are reshaped once when the graph is built, other scalars by a Reshape node."""
    widened: dict[tuple[str, int], str] = {}
    nodes: list[OpNode] = []
    changed = 0
    for node in g.nodes:
        if node.op_type in BINARY and not node.domain:
            shapes = [g.values[i].shape if i in g.values else None for i in node.inputs]
            rank = max((len(s) for s in shapes if s is not None and len(s) >= 2 and s[-1] == 1), default=0)
            for k, (name, shape) in enumerate(zip(node.inputs, shapes)):
                if not rank or shape != ():
                    continue
                key = (name, rank)
                if key not in widened:
                    if name in g.initializers:
                        widened[key] = g.constant(np.reshape(g.initializers[name], (1,) * rank)).name
                    else:
                        t = g.values[name]
                        out = g._new_tensor(g.unique_name(name + "_widened"), t.dtype, (1,) * rank)
                        dims = g.constant(np.ones(rank, np.int64)).name
                        nodes.append(OpNode("Reshape", [name, dims], [out.name], {}, "",
                                            g.unique_name("Reshape_widened_scalar")))
                        widened[key] = out.name
                node.inputs[k] = widened[key]
                changed += 1
        nodes.append(node)
    g.nodes = nodes
    return changed

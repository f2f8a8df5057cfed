"""Reverse-mode differentiation over a `GraphBuilder`'s recorded nodes.

The forward graph is a topologically ordered list of `OpNode`s. Walking it backwards from the loss, each node on a
path from a weight to the loss gets its gradient rule (`gradients.py`), which emits the backward nodes into the same
builder, so forward, backward and optimizer update end up in one ONNX graph.
"""

from __future__ import annotations

import numpy as np

from core import ops
from core.graph import GraphBuilder, SymbolicTensor, graph_scope, lookup, node_inputs
from core.training.gradients import NON_DIFFERENTIABLE, GradientError, rule_for


def _is_float(t: SymbolicTensor) -> bool:
    return t.dtype.startswith("float")


def gradients(loss: SymbolicTensor, wrt: list[SymbolicTensor]) -> list[SymbolicTensor]:
    """d loss / d w for each w in `wrt` (a zero tensor where the loss does not depend on w)."""
    g: GraphBuilder = loss.graph
    with graph_scope(g):
        seed = g.constant(np.array(1.0, dtype=loss.dtype), loss.dtype)
    grads = backprop(g, list(g.nodes), {loss.name: seed}, [t.name for t in wrt])
    with graph_scope(g):
        return [grads.get(w.name) if grads.get(w.name) is not None else ops.zeros_like(w) for w in wrt]


def backprop(g: GraphBuilder, forward: list, seeds: dict, wrt_names) -> dict:
    """Reverse-mode pass over `forward` (nodes of `g`, in order) from `seeds` (tensor name -> its gradient).
    Returns gradients by name for the tensors in `wrt_names` that the seeds depend on (others are absent)."""
    # Nodes that depend on a wrt tensor ...
    depends = set(wrt_names)
    for n in forward:
        if n.op_type in NON_DIFFERENTIABLE:
            continue
        if any(i in depends for i in node_inputs(n)):
            depends.update(n.outputs)
    # ... and that a seed depends on.
    needed = set(seeds)
    relevant = []
    for n in reversed(forward):
        if any(o in needed for o in n.outputs) and any(o in depends for o in n.outputs):
            relevant.append(n)
            needed.update(i for i in node_inputs(n) if i in depends)

    with graph_scope(g):
        grads: dict[str, SymbolicTensor] = dict(seeds)

        def accumulate(name, dx):
            x = lookup(g, name)
            if dx is None or name not in depends or not _is_float(x):
                return
            if dx.dtype != x.dtype:
                dx = ops.cast(dx, x.dtype)
            prev = grads.get(name)
            grads[name] = dx if prev is None else ops.add(prev, dx)

        for n in relevant:  # already in reverse order
            if all(grads.get(o) is None for o in n.outputs):
                continue
            if n.op_type == "Dropout" and len(n.outputs) == 1:
                _add_dropout_mask(g, n)
            xs = [lookup(g, i) if i else None for i in n.inputs]
            ys = [lookup(g, o) for o in n.outputs]
            dys = [grads.get(o) for o in n.outputs]
            if dys[0] is None and n.op_type not in ("Split", "Scan"):
                dys[0] = ops.zeros_like(ys[0])
            try:
                dxs = rule_for(n)(g, n, xs, ys, dys, depends) if n.op_type == "Scan" else \
                    rule_for(n)(g, n, xs, ys, dys)
            except GradientError:
                raise
            except Exception as exc:  # a rule that cannot handle this node's shapes
                raise GradientError(f"Gradient of {n.op_type} node '{n.name}' failed: {exc}") from exc
            extra = {}
            if isinstance(dxs, tuple):
                dxs, extra = dxs
            for x, dx in zip(xs, dxs):
                if x is not None:
                    accumulate(x.name, dx)
            for name, dx in extra.items():
                accumulate(name, dx)
    return {name: grads[name] for name in wrt_names if name in grads}


def _add_dropout_mask(g: GraphBuilder, node) -> None:
    """Dropout's gradient needs the mask it drew: give the node its optional second output."""
    y = g.values[node.outputs[0]]
    name = g.unique_name(node.outputs[0] + "_mask")
    g.values[name] = SymbolicTensor(g, name, "bool", y.shape)
    node.outputs.append(name)

"""Reverse-mode differentiation over a `GraphBuilder`'s recorded nodes.

The forward graph is a topologically ordered list of `OpNode`s. Walking it backwards from the loss, each node on a
path from a weight to the loss gets its gradient rule (`gradients.py`), which emits the backward nodes into the same
builder, so forward, backward and optimizer update end up in one ONNX graph.

A region recorded by `core.graph.custom_gradient` gets its gradient from its own function, called once with the
gradients of its outputs, and its nodes get none of their own, unless that would lose a gradient (`_closed`): then
its nodes are differentiated one by one like any others.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from core import ops
from core.graph import GraphBuilder, SymbolicTensor, graph_scope, lookup, node_inputs, node_readers
from core.training.gradients import NON_DIFFERENTIABLE, GradientError, rule_for


_switches = threading.local()


def _is_float(t: SymbolicTensor) -> bool:
    return t.dtype.startswith("float")


@contextlib.contextmanager
def op_by_op():
    """Differentiate custom-gradient regions node by node inside this block (to compare the two, in tests and
    benchmarks): the same forward graph, the gradient its nodes' rules give."""
    before = getattr(_switches, "op_by_op", False)
    _switches.op_by_op = True
    try:
        yield
    finally:
        _switches.op_by_op = before


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

    regions = {} if getattr(_switches, "op_by_op", False) else \
        _regions_in_use(g, forward, relevant, depends, set(seeds) | set(wrt_names))
    applied = set()

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
            region = regions.get(id(n))
            if region is not None:
                # Its nodes are contiguous and every reader of its outputs comes after them: the first of its nodes
                # that the walk meets comes after all the gradient its outputs get.
                if id(region) not in applied:
                    applied.add(id(region))
                    for x, dx in zip(region.inputs, _region_gradients(region, grads)):
                        if x is not None:
                            accumulate(x.name, dx)
                continue
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


def _region_gradients(region, grads) -> list:
    dys = [grads.get(t.name) for t in region.outputs]
    if all(dy is None for dy in dys):
        return []
    dys = [ops.zeros_like(t) if dy is None else dy for t, dy in zip(region.outputs, dys)]
    try:
        dxs = region.grad(*dys)
    except GradientError:
        raise
    except Exception as exc:
        raise GradientError(f"The custom gradient of '{region.name}' failed: {exc}") from exc
    dxs = list(dxs) if isinstance(dxs, (list, tuple)) else [dxs]
    if len(dxs) != len(region.inputs):
        raise GradientError(f"The custom gradient of '{region.name}' gave {len(dxs)} gradient(s) for "
                            f"{len(region.inputs)} argument(s); it must give one per argument (None for none).")
    return dxs


def _regions_in_use(g: GraphBuilder, forward: list, relevant: list, depends: set, ends: set) -> dict:
    """{id(node): region} for the custom-gradient regions of `g` whose function gives the gradient. An outer region
    covers the regions inside it; one that is not closed (`_closed`) leaves its inner ones to be tried."""
    if not g.gradient_regions:
        return {}
    in_forward = {id(n) for n in forward}
    readers = node_readers(relevant)
    taken: dict[int, object] = {}
    for region in sorted(g.gradient_regions, key=lambda r: -len(r.nodes)):
        ids = {id(n) for n in region.nodes}
        if ids and ids <= in_forward and not ids & taken.keys() and _closed(region, ids, readers, depends, ends):
            taken.update(dict.fromkeys(ids, region))
    return taken


def _closed(region, ids: set, readers: dict, depends: set, ends: set) -> bool:
    """Whether the region's function accounts for every gradient through its nodes: no tensor inside it but its
    outputs is read on a differentiated path outside it (or is itself a seed or a tensor asked for), and its nodes
    read no differentiable tensor from outside but its arguments."""
    made = {o for n in region.nodes for o in n.outputs}
    private = made - {t.name for t in region.outputs}
    for name in private & depends:
        if name in ends or any(id(n) not in ids for n in readers.get(name, [])):
            return False
    given = {t.name for t in region.inputs if t is not None}
    return all(i in made or i in given or i not in depends for n in region.nodes for i in node_inputs(n))


def _add_dropout_mask(g: GraphBuilder, node) -> None:
    """Dropout's gradient needs the mask it drew: give the node its optional second output."""
    y = g.values[node.outputs[0]]
    name = g.unique_name(node.outputs[0] + "_mask")
    g.values[name] = SymbolicTensor(g, name, "bool", y.shape)
    node.outputs.append(name)

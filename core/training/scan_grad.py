"""The gradient of ONNX `Scan` (how recurrent layers train): a reversed Scan over the recorded states.

The forward Scan is given extra scan outputs that record the carried state at the start of every step. The backward
Scan runs over time in reverse; its body replays the forward body on the recorded state and the step's inputs and
differentiates it (the same per-op rules, `autodiff.backprop`) with the incoming gradients of the new state and of
the step's outputs as seeds. It carries the state gradient (dh, dc) and sums the gradients of the tensors the body
reads from outside (the recurrent kernel and bias); the input gradients come out per step as scan outputs. The
input projection X·W sits outside the Scan (DESIGN.md §3), so dW is one large MatMul done by the ordinary rules.
"""

from __future__ import annotations

import numpy as np

from core import ops
from core.graph import GraphBuilder, OpNode, SymbolicTensor, graph_scope
from core.training.gradients import GradientError, register_gradient


def _is_float(t) -> bool:
    return t.dtype.startswith("float")


def _fresh_outputs(body: GraphBuilder, tensors):
    """Body outputs must be distinct tensors that are not body inputs (ORT rejects the rest)."""
    outs = []
    for t in tensors:
        if any(t is o for o in outs) or any(t is i for i in body.inputs):
            t = body.emit("Identity", [t], {}, [(t.dtype, t.shape)], name_hint="grad_out")[0]
        outs.append(t)
    return outs


def _zeros_like_outer(g: GraphBuilder, t: SymbolicTensor) -> SymbolicTensor:
    from onnx import numpy_helper

    shape = g.emit("Shape", [t], {}, [("int64", (t.ndim,))])[0]
    return g.emit("ConstantOfShape", [shape], {"value": numpy_helper.from_array(np.zeros(1, dtype=t.dtype))},
                  [(t.dtype, t.shape)])[0]


@register_gradient("Scan")
def _scan(g, node, xs, ys, dys, depends):
    from core.training.autodiff import backprop, lookup, outer_refs

    body: GraphBuilder = node.attrs["body"]
    n_scan = int(node.attrs["num_scan_inputs"])
    for key in ("scan_input_directions", "scan_output_directions", "scan_input_axes", "scan_output_axes"):
        if any(int(v) for v in node.attrs.get(key, [])):
            raise GradientError(f"Scan node '{node.name}': only forward scans over axis 0 can be differentiated.")
    n_state = len(xs) - n_scan
    state_in = body.inputs[:n_state]
    slice_in = body.inputs[n_state:]
    n_out = len(ys) - n_state
    fwd_nodes = list(body.nodes)
    fwd_outputs = list(body.outputs[:n_state + n_out])
    for s in state_in:
        if not _is_float(s):
            raise GradientError(f"Scan node '{node.name}' carries a non-float state; cannot differentiate it.")

    # 1. The forward Scan also records each step's incoming state.
    T = xs[n_state].shape[0] if n_scan else None
    records = []
    with graph_scope(body):
        for s in state_in:
            body.outputs.append(body.emit("Identity", [s], {}, [(s.dtype, s.shape)], name_hint="record")[0])
    for s in state_in:
        name = g.unique_name(f"{node.outputs[0]}_record")
        rec = SymbolicTensor(g, name, s.dtype, (T,) + tuple(s.shape))
        g.values[name] = rec
        node.outputs.append(name)
        records.append(rec)

    refs = [r for r in outer_refs(body) if r in depends and _is_float(lookup(g, r))]

    # 2. The backward body: replay the step, differentiate it.
    bb = GraphBuilder(f"{body.name}_grad", parent=g)
    with graph_scope(bb):
        d_state = [bb.add_input("d_state", s.dtype, s.shape) for s in state_in]
        acc = [bb.add_input("d_outer", lookup(g, r).dtype, lookup(g, r).shape) for r in refs]
        rec_t = [bb.add_input("state_t", s.dtype, s.shape) for s in state_in]
        x_t = [bb.add_input("x_t", s.dtype, s.shape) for s in slice_in]
        dy_t = [bb.add_input("dy_t", o.dtype, o.shape) for o in fwd_outputs[n_state:]]
        mapping = {a.name: b.name for a, b in zip(list(state_in) + list(slice_in), rec_t + x_t)}
        replay = []
        for n in fwd_nodes:
            outs = []
            for o in n.outputs:
                src = body.values[o]
                t = bb._new_tensor(bb.unique_name(o), src.dtype, src.shape)
                mapping[o] = t.name
                outs.append(t.name)
            copy = OpNode(n.op_type, [mapping.get(i, i) if i else "" for i in n.inputs], outs, dict(n.attrs),
                          n.domain, bb.unique_name(n.name or n.op_type))
            bb.nodes.append(copy)
            replay.append(copy)
        seeds = {}
        for out, d in zip(fwd_outputs, d_state + dy_t):
            name = mapping.get(out.name, out.name)
            seeds[name] = d if name not in seeds else ops.add(seeds[name], d)
        wrt = [t.name for t in rec_t] + [t.name for t in x_t if _is_float(t)] + refs
        grads = backprop(bb, replay, seeds, wrt)

        def grad_or_zeros(name, like):
            d = grads.get(name)
            return d if d is not None else ops.zeros_like(like)

        new_d_state = [grad_or_zeros(t.name, t) for t in rec_t]
        new_acc = [ops.add(a, grads[r]) if r in grads else a for a, r in zip(acc, refs)]
        d_x = [grad_or_zeros(t.name, t) for t in x_t if _is_float(t)]
        bb.set_outputs(_fresh_outputs(bb, new_d_state + new_acc + d_x))
    # Per-step values the backward pass reads are recorded by the forward Scan instead of being recomputed.
    kept = _reuse_forward_values(g, node, body, bb, replay, mapping, rec_t + x_t, T)

    # 3. The reversed Scan.
    init_state = [d if d is not None else ops.zeros_like(y) for d, y in zip(dys[:n_state], ys[:n_state])]
    init_acc = [_zeros_like_outer(g, lookup(g, r)) for r in refs]
    d_seq = [d if d is not None else ops.zeros_like(y) for d, y in zip(dys[n_state:n_state + n_out],
                                                                        ys[n_state:n_state + n_out])]
    scan_inputs = records + list(xs[n_state:]) + d_seq + [rec for _, rec in kept]
    float_slices = [x for x in xs[n_state:] if _is_float(x)]
    specs = [(s.dtype, s.shape) for s in init_state] + [(lookup(g, r).dtype, lookup(g, r).shape) for r in refs] + \
        [(x.dtype, x.shape) for x in float_slices]
    results = g.emit("Scan", init_state + init_acc + scan_inputs,
                     {"body": bb, "num_scan_inputs": len(scan_inputs),
                      "scan_input_directions": [1] * len(scan_inputs),
                      "scan_output_directions": [1] * len(float_slices)},
                     specs, name_hint="scan_grad")
    d_init = results[:n_state]
    d_refs = results[n_state:n_state + len(refs)]
    d_slices = iter(results[n_state + len(refs):])
    per_input = list(d_init) + [next(d_slices) if _is_float(x) else None for x in xs[n_state:]]
    return per_input, dict(zip(refs, d_refs))


def _reuse_forward_values(g, node, body, bb, replay, mapping, step_inputs, T):
    """Turn replayed per-step values that the gradient nodes read into extra forward scan outputs (recorded once)
    read back as backward scan inputs, then drop the replay nodes nobody needs. Returns [(bb input, record)]."""
    varying = {t.name for t in step_inputs}
    produced_by_replay = set()
    for n in replay:
        produced_by_replay.update(n.outputs)
        if n.op_type != "Constant" and any(i in varying for i in n.inputs):
            varying.update(n.outputs)
    replay_ids = {id(n) for n in replay}
    wanted = []
    for n in bb.nodes:
        if id(n) in replay_ids:
            continue
        for i in n.inputs:
            if i in produced_by_replay and i in varying and i not in wanted:
                wanted.append(i)
    reverse = {v: k for k, v in mapping.items()}
    kept = []
    for name in wanted:
        src = body.values[reverse[name]]
        with graph_scope(body):
            body.outputs.append(body.emit("Identity", [src], {}, [(src.dtype, src.shape)], name_hint="record")[0])
        rec_name = g.unique_name(f"{node.outputs[0]}_keep")
        rec = SymbolicTensor(g, rec_name, src.dtype, (T,) + tuple(src.shape))
        g.values[rec_name] = rec
        node.outputs.append(rec_name)
        inp = bb.add_input("kept_t", src.dtype, src.shape)
        for n in bb.nodes:
            if id(n) not in replay_ids:
                n.inputs = [inp.name if i == name else i for i in n.inputs]
        for k, o in enumerate(bb.outputs):
            if o.name == name:
                bb.outputs[k] = inp
        kept.append((inp, rec))
    # Dead replay nodes go.
    live = {o.name for o in bb.outputs}
    keep_nodes = []
    for n in reversed(bb.nodes):
        if id(n) not in replay_ids or any(o in live for o in n.outputs):
            keep_nodes.append(n)
            live.update(i for i in n.inputs if i)
    bb.nodes[:] = list(reversed(keep_nodes))
    return kept

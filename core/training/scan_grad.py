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


def _passes_through(body, i) -> bool:
    """Whether carried value i leaves each step unchanged (weights a recurrence carries instead of reading them
    from outside)."""
    out = body.outputs[i]
    name = body.inputs[i].name
    while out.name != name:
        producer = next((n for n in body.nodes if out.name in n.outputs), None)
        if producer is None or producer.op_type != "Identity":
            return False
        out = body.values.get(producer.inputs[0]) or SymbolicTensor(body, producer.inputs[0], out.dtype, out.shape)
    return True


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
    # Carried values that never change are read like outer tensors: not recorded, not carried backwards.
    fixed = [i for i in range(n_state) if _passes_through(body, i)]
    moving = [i for i in range(n_state) if i not in fixed]

    # 1. The forward Scan also records each step's incoming (changing) state.
    T = xs[n_state].shape[0] if n_scan else None
    records = []
    with graph_scope(body):
        for i in moving:
            s = state_in[i]
            body.outputs.append(body.emit("Identity", [s], {}, [(s.dtype, s.shape)], name_hint="record")[0])
    for i in moving:
        s = state_in[i]
        name = g.unique_name(f"{node.outputs[0]}_record")
        rec = SymbolicTensor(g, name, s.dtype, (T,) + tuple(s.shape))
        g.values[name] = rec
        node.outputs.append(name)
        records.append(rec)

    refs = [r for r in outer_refs(body) if r in depends and _is_float(lookup(g, r))]
    refs += [xs[i].name for i in fixed if xs[i].name in depends and xs[i].name not in refs]
    aliases = {r: set() for r in refs}
    for r in refs:
        aliases[r].update(n.outputs[0] for n in fwd_nodes if n.op_type == "Identity" and n.inputs[0] == r)
    for i in fixed:
        if xs[i].name in aliases:
            aliases[xs[i].name].add(state_in[i].name)
    # A weight the step only multiplies into (h @ R) gets its gradient after the Scan as one large product over all
    # steps, sum_t h_t^T dY_t, instead of a small product per step accumulated in the loop.
    factors = _matmul_factors(body, fwd_nodes, aliases)
    summed = [r for r in refs if r not in factors]

    # 2. The backward body: replay the step, differentiate it.
    bb = GraphBuilder(f"{body.name}_grad", parent=g)
    with graph_scope(bb):
        d_state = [bb.add_input("d_state", state_in[i].dtype, state_in[i].shape) for i in moving]
        acc = [bb.add_input("d_outer", lookup(g, r).dtype, lookup(g, r).shape) for r in summed]
        rec_t = [bb.add_input("state_t", state_in[i].dtype, state_in[i].shape) for i in moving]
        x_t = [bb.add_input("x_t", s.dtype, s.shape) for s in slice_in]
        dy_t = [bb.add_input("dy_t", o.dtype, o.shape) for o in fwd_outputs[n_state:]]
        mapping = {state_in[i].name: t.name for i, t in zip(moving, rec_t)}
        mapping.update({state_in[i].name: xs[i].name for i in fixed})
        mapping.update({a.name: b.name for a, b in zip(slice_in, x_t)})
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
        for out, d in zip([fwd_outputs[i] for i in moving] + fwd_outputs[n_state:], d_state + dy_t):
            name = mapping.get(out.name, out.name)
            seeds[name] = d if name not in seeds else ops.add(seeds[name], d)
        products = [(mapping.get(a, a), mapping[y]) for r in factors for a, y in factors[r]]
        wrt = [t.name for t in rec_t] + [t.name for t in x_t if _is_float(t)] + summed + [y for _, y in products]
        grads = backprop(bb, replay, seeds, wrt)

        def grad_or_zeros(name, like):
            d = grads.get(name)
            return d if d is not None else ops.zeros_like(like)

        new_d_state = [grad_or_zeros(t.name, t) for t in rec_t]
        new_acc = [ops.add(a, grads[r]) if r in grads else a for a, r in zip(acc, summed)]
        d_x = [grad_or_zeros(t.name, t) for t in x_t if _is_float(t)]
        per_step = []
        for a, y in products:
            per_step += [lookup(bb, a), grad_or_zeros(y, bb.values[y])]
        bb.set_outputs(_fresh_outputs(bb, new_d_state + new_acc + d_x + per_step))
    # Per-step values the backward pass reads are recorded by the forward Scan instead of being recomputed.
    kept = _reuse_forward_values(g, node, body, bb, replay, mapping, rec_t + x_t, T)

    # 3. The reversed Scan.
    init_state = [dys[i] if dys[i] is not None else ops.zeros_like(ys[i]) for i in moving]
    init_acc = [_zeros_like_outer(g, lookup(g, r)) for r in summed]
    d_seq = [d if d is not None else ops.zeros_like(y) for d, y in zip(dys[n_state:n_state + n_out],
                                                                        ys[n_state:n_state + n_out])]
    scan_inputs = records + list(xs[n_state:]) + d_seq + [rec for _, rec in kept]
    float_slices = [x for x in xs[n_state:] if _is_float(x)]
    seq_specs = [(x.dtype, x.shape) for x in float_slices]
    for a, y in products:
        for name in (a, y):
            t = lookup(bb, name)
            seq_specs.append((t.dtype, (T,) + tuple(t.shape)))
    specs = [(s.dtype, s.shape) for s in init_state] + \
        [(lookup(g, r).dtype, lookup(g, r).shape) for r in summed] + seq_specs
    results = g.emit("Scan", init_state + init_acc + scan_inputs,
                     {"body": bb, "num_scan_inputs": len(scan_inputs),
                      "scan_input_directions": [1] * len(scan_inputs),
                      "scan_output_directions": [1] * len(seq_specs)},
                     specs, name_hint="scan_grad")
    n_moving = len(moving)
    d_init = dict(zip(moving, results[:n_moving]))
    extra = dict(zip(summed, results[n_moving:n_moving + len(summed)]))
    rest = iter(results[n_moving + len(summed):])
    per_input = [d_init.get(i) for i in range(n_state)] + [next(rest) if _is_float(x) else None
                                                           for x in xs[n_state:]]
    for r, pairs in factors.items():
        for _ in pairs:
            a_seq, dy_seq = next(rest), next(rest)
            k, n = a_seq.shape[-1], dy_seq.shape[-1]
            part = ops.matmul(ops.transpose(ops.reshape(a_seq, (-1, k))), ops.reshape(dy_seq, (-1, n)))
            extra[r] = part if r not in extra else ops.add(extra[r], part)
    for i in fixed:  # a gradient reaching the carried-out copy of a fixed value
        if dys[i] is not None and xs[i].name in depends:
            extra[xs[i].name] = dys[i] if xs[i].name not in extra else ops.add(extra[xs[i].name], dys[i])
    return per_input, extra


def _matmul_factors(body, nodes, aliases):
    """For weights the step reads only as the right factor of MatMuls: {weight: [(left factor, product)]} by body
    tensor names. `aliases` maps each weight to the body tensors that hold it (Identity copies, a carried input)."""
    out = {}
    for r, names in aliases.items():
        names = set(names)
        changed = True
        while changed:  # Identity copies of a copy are copies too
            changed = False
            for n in nodes:
                if n.op_type == "Identity" and n.inputs[0] in names | {r} and n.outputs[0] not in names:
                    names.add(n.outputs[0])
                    changed = True
        users = [n for n in nodes if n.op_type != "Identity" and any(i in names or i == r for i in n.inputs)]
        if not users or not all(n.op_type == "MatMul" and n.inputs[1] in names and n.inputs[0] not in names
                                for n in users):
            continue
        left = [body.values.get(n.inputs[0]) for n in users]
        if all(t is not None and t.ndim == 2 and t.shape[-1] is not None for t in left) and \
                all(body.values[n.outputs[0]].shape[-1] is not None for n in users):
            out[r] = [(n.inputs[0], n.outputs[0]) for n in users]
    return out


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
                with graph_scope(bb):
                    bb.outputs[k] = bb.emit("Identity", [inp], {}, [(inp.dtype, inp.shape)], name_hint="kept_out")[0]
        kept.append((inp, rec))
    # Dead nodes go: replayed values nobody reads now, and gradients of inputs nobody needs (a MatMul rule gives
    # both factors' gradients; inside a loop the unused one would still run every step).
    live = {o.name for o in bb.outputs}
    keep_nodes = []
    for n in reversed(bb.nodes):
        if any(o in live for o in n.outputs):
            keep_nodes.append(n)
            live.update(i for i in n.inputs if i)
    bb.nodes[:] = list(reversed(keep_nodes))
    return kept

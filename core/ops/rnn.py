"""Recurrent ops: ONNX's LSTM, GRU and RNN nodes, and the Scan-based recurrence used where they cannot express Keras.

The fused ONNX nodes compute X·W for all steps at once and run the recurrence in one kernel, so unmasked inference
uses them. They cannot express Keras's masks (a masked step keeps the previous state and repeats the previous output,
anywhere in the sequence), dropout, or activations outside ONNX's list; for those `scan_rnn` runs the recurrence as a
`Scan` whose step is written with `core.ops`, the way Keras's `backend.rnn` runs a cell's step function.
"""

from __future__ import annotations

import numpy as np

from core.errors import ShapeError
from core.graph import GraphBuilder, graph_scope
from core.ops.dispatch import graph_of

__all__ = ["onnx_activation", "onnx_recurrent", "scan_rnn", "scan_vjp", "zeros_state", "keras_to_onnx_gates",
           "right_padding_lengths", "if_then_else", "split_last"]

def onnx_activation(fn):
    """ONNX's (name, alpha, beta) for a Keras activation, or None when the fused ops cannot express it.

    ORT consumes `activation_alpha`/`activation_beta` only for the functions that use them, in order.
    """
    from core import activations as a  # activations imports core.ops: look it up at call time

    table = {
        a.sigmoid: ("Sigmoid", None, None),
        a.tanh: ("Tanh", None, None),
        a.relu: ("Relu", None, None),
        a.linear: ("Affine", 1.0, 0.0),
        a.hard_sigmoid: ("HardSigmoid", 1.0 / 6.0, 0.5),  # Keras 3's relu6(x + 3) / 6
        a.elu: ("Elu", 1.0, None),
        a.softsign: ("Softsign", None, None),
        a.softplus: ("Softplus", None, None),
    }
    return table.get(fn)


def keras_to_onnx_gates(w, gate_order, units):
    """Reorder the gate blocks of the last axis of `w` (a tensor whose last axis is G*units).

    `gate_order` lists, for each ONNX gate, the index of the Keras gate that goes there (LSTM: Keras i,f,c,o ->
    ONNX i,o,f,c is (0, 3, 1, 2)).
    """
    from core.ops.array import concatenate, getitem

    if list(gate_order) == list(range(len(gate_order))):
        return w
    nd = len(w.shape)
    pieces = []
    for k in gate_order:
        key = (slice(None),) * (nd - 1) + (slice(k * units, (k + 1) * units),)
        pieces.append(getitem(w, key))
    return concatenate(pieces, axis=-1)


def split_last(x, sizes):
    """Split the last axis into pieces of `sizes` with one Split node (its gradient is a Concat, where a Slice's
    is a scatter: this matters inside a recurrence, which runs it every step)."""
    g = graph_of(x)
    t = g.as_tensor(x)
    if t.shape[-1] is not None and sum(sizes) != t.shape[-1]:
        raise ShapeError(f"split_last: sizes {list(sizes)} do not add up to the last dimension of {t.shape}.")
    return g.emit("Split", [t, g.constant(np.array(sizes, dtype=np.int64))], {"axis": len(t.shape) - 1},
                  [(t.dtype, tuple(t.shape[:-1]) + (int(n),)) for n in sizes])


def zeros_state(like, units: int, dtype=None):
    """Zeros of shape (batch, units), the batch taken at run time from `like` (batch first)."""
    from onnx import numpy_helper

    g = graph_of(like)
    t = g.as_tensor(like)
    dtype = dtype or t.dtype
    batch = g.emit("Shape", [t], {"start": 0, "end": 1}, [("int64", (1,))])[0]
    shape = g.emit("Concat", [batch, g.constant(np.array([units], dtype=np.int64))], {"axis": 0},
                   [("int64", (2,))])[0]
    value = numpy_helper.from_array(np.zeros((1,), dtype=dtype))
    return g.emit("ConstantOfShape", [shape], {"value": value}, [(dtype, (t.shape[0], units))])[0]


def right_padding_lengths(mask):
    """(lengths (batch,) int32, is_right_padded scalar bool) of a bool (batch, time) mask.

    `is_right_padded` is true when every row is a run of True followed only by False, and no row is empty: then
    ONNX's `sequence_lens` expresses the mask exactly (ORT refuses zero lengths).
    """
    from core.ops.math import all as all_, cast, equal, greater, less, min as min_, sum as sum_

    g = graph_of(mask)
    m = cast(g.as_tensor(mask), "bool")
    lengths = sum_(cast(m, "int32"), axis=1)
    steps = g.emit("Shape", [m], {"start": 1, "end": 2}, [("int64", (1,))])[0]
    steps = g.emit("Squeeze", [steps, g.constant(np.array([0], np.int64))], {}, [("int64", ())])[0]
    positions = g.emit("Range", [g.constant(np.array(0, np.int64)), steps, g.constant(np.array(1, np.int64))], {},
                       [("int64", (m.shape[1],))])[0]
    from core.ops.array import expand_dims

    prefix = less(expand_dims(cast(positions, "int32"), 0), expand_dims(lengths, 1))
    ok = all_(equal(cast(prefix, "int32"), cast(m, "int32")))
    ok = cast(cast(ok, "int32") * cast(greater(min_(lengths), 0), "int32"), "bool")
    return lengths, ok


def if_then_else(cond, then_fn, else_fn, name="branch"):
    """ONNX `If`: `then_fn()` / `else_fn()` record their ops into their own branch graphs and return lists of
    tensors of matching dtypes and ranks; only the chosen branch runs. Outer tensors a branch uses should first
    pass `bring(t)` (given to the functions) so that ops on them land in the branch, not before the If."""
    g = graph_of(cond)
    branches, results = [], []
    for fn in (then_fn, else_fn):
        bg = GraphBuilder(f"{name}_{'then' if not branches else 'else'}", parent=g)

        def bring(t, bg=bg):
            t = g.as_tensor(t) if not hasattr(t, "graph") else t
            return bg.emit("Identity", [t], {}, [(t.dtype, t.shape)], name_hint="outer")[0]

        with graph_scope(bg):
            outs = list(fn(bring))
            fixed = []
            for t in outs:
                if any(t is o for o in fixed) or t.graph is not bg:
                    t = bg.emit("Identity", [t], {}, [(t.dtype, t.shape)], name_hint="branch_out")[0]
                fixed.append(t)
            bg.set_outputs(fixed)
        branches.append(bg)
        results.append(fixed)
    specs = []
    for a, b in zip(*results):
        if a.dtype != b.dtype or len(a.shape) != len(b.shape):
            raise ShapeError(f"{name}: the If branches disagree ({a.dtype}{a.shape} vs {b.dtype}{b.shape}).")
        specs.append((a.dtype, tuple(x if x == y else None for x, y in zip(a.shape, b.shape))))
    return g.emit("If", [cond], {"then_branch": branches[0], "else_branch": branches[1]}, specs, name_hint=name)


def onnx_recurrent(kind: str, x, W, R, B, initial_states, *, units: int, acts, go_backwards=False,
                   return_sequences=False, linear_before_reset=None, sequence_lens=None):
    """One ONNX LSTM / GRU / RNN node over batch-major `x` (batch, time, features).

    W, R, B are already in ONNX's layout ([1, G*units, I], [1, G*units, units], [1, 2*G*units]). `acts` are the
    ONNX (name, alpha, beta) triples. Returns (outputs or None, [final states]) with outputs batch-major, in
    processing order (reversed when `go_backwards`, as Keras returns them).
    """
    from core.ops.array import expand_dims, flip, squeeze, transpose

    g = graph_of(x)
    xt = transpose(x, (1, 0, 2))
    T, batch = xt.shape[0], xt.shape[1]
    states = [None if s is None else expand_dims(s, 0) for s in initial_states]
    inputs = [xt, W, R, B, sequence_lens] + states
    while inputs and inputs[-1] is None:
        inputs.pop()
    attrs = {"hidden_size": int(units), "direction": "reverse" if go_backwards else "forward",
             "activations": [a[0] for a in acts]}
    alphas = [a[1] for a in acts if a[1] is not None]
    betas = [a[2] for a in acts if a[2] is not None]
    if alphas:
        attrs["activation_alpha"] = [float(a) for a in alphas]
    if betas:
        attrs["activation_beta"] = [float(b) for b in betas]
    if linear_before_reset is not None:
        attrs["linear_before_reset"] = int(linear_before_reset)
    n_states = 2 if kind == "LSTM" else 1
    specs = [(xt.dtype, (T, 1, batch, units))] + [(xt.dtype, (1, batch, units))] * n_states
    outs = g.emit(kind, inputs, attrs, specs, name_hint=f"onnx_{kind.lower()}")
    final = [squeeze(s, [0]) for s in outs[1:]]
    seq = None
    if return_sequences:
        seq = transpose(squeeze(outs[0], [1]), (1, 0, 2))
        if go_backwards:  # ONNX writes Y in input order; Keras returns the processing order
            seq = flip(seq, 1)
    return seq, final


def scan_rnn(step, sequences, initial_states, *, output_size: int, mask=None, go_backwards=False,
             return_sequences=False, zero_output_for_mask=False, constants=(), carry_constants=False, name="rnn"):
    """Keras's `backend.rnn` as an ONNX Scan.

    `step(inputs_t, states, constants) -> (output, new_states)` is called once, on tensors of the Scan body: the
    time slices of `sequences` (batch-major (batch, time, ...)), the states, and `constants` (outer tensors brought
    into the body). With a `mask` (bool (batch, time)), a masked step keeps the previous states and its output is
    the previous output (zeros before the first unmasked step), or zeros when `zero_output_for_mask`.
    Returns (last_output, outputs (batch, time, output_size) or None, final states).

    By default the body reads `constants` from the outer scope (cheapest for inference). With `carry_constants`
    they enter as loop-carried values passed through unchanged, so that every tensor the recurrence depends on is
    an explicit input of the Scan node, as reverse-mode differentiation of a training graph needs.
    """
    from core.ops.array import expand_dims, flip, transpose
    from core.ops.math import cast, where

    g = graph_of(*sequences)
    seqs = []
    for s in sequences:
        s = g.as_tensor(s)
        perm = (1, 0) + tuple(range(2, len(s.shape)))
        s = transpose(s, perm)
        seqs.append(flip(s, 0) if go_backwards else s)
    T = seqs[0].shape[0]
    if T == 0:
        raise ShapeError(f"{name}: the sequence has no time steps.")
    scan_inputs = list(seqs)
    if mask is not None:
        m = transpose(cast(g.as_tensor(mask), "bool"), (1, 0))
        if go_backwards:
            m = flip(m, 0)
        scan_inputs.append(expand_dims(m, -1))
    prev_output = zeros_state(sequences[0], output_size, seqs[0].dtype)
    constants = [g.as_tensor(c) for c in constants]
    carried = list(initial_states) + [prev_output] + (constants if carry_constants else [])
    n = len(initial_states)

    body = GraphBuilder(f"{name}_step", parent=g)
    with graph_scope(body):
        state_in = [body.add_input("state", s.dtype, s.shape) for s in carried]
        slices = [body.add_input("step_in", s.dtype, s.shape[1:]) for s in scan_inputs]
        mask_t = slices.pop() if mask is not None else None
        if carry_constants:
            consts = state_in[n + 1:]
        else:
            consts = [body.emit("Identity", [c], {}, [(c.dtype, c.shape)], name_hint="outer")[0] for c in constants]
        states_t, prev_t = state_in[:n], state_in[n]
        output, new_states = step(slices, states_t, consts)
        if mask_t is not None:
            new_states = [where(mask_t, n, o) for n, o in zip(new_states, states_t)]
            fallback = zeros_state(output, output_size, output.dtype) if zero_output_for_mask else prev_t
            output = where(mask_t, output, fallback)
        outs = []
        # A body output must be its own value: the same tensor twice (h is both state and output) breaks ORT.
        passed = consts if carry_constants else []
        for t in list(new_states) + [output] + passed + ([output] if return_sequences else []):
            if any(t is o for o in outs) or any(t is i for i in state_in + slices):
                t = body.emit("Identity", [t], {}, [(t.dtype, t.shape)], name_hint="step_out")[0]
            outs.append(t)
        body.set_outputs(outs)

    specs = [(s.dtype, s.shape) for s in carried]
    if return_sequences:
        specs.append((output.dtype, (T,) + tuple(output.shape)))
    results = g.emit("Scan", carried + scan_inputs, {"body": body, "num_scan_inputs": len(scan_inputs)}, specs,
                     name_hint=f"{name}_scan")
    final_states, last_output = results[:n], results[n]
    seq = transpose(results[len(carried)], (1, 0, 2)) if return_sequences else None
    return last_output, seq, final_states


def scan_vjp(g, node, xs, ys, dys, rule_for, non_differentiable=frozenset()):
    """The reverse-mode rule of a Scan node (default axes, forward direction), for training graphs.

    The forward body is made to also emit the state each step started from; the backward pass is a second Scan that
    runs the steps in reverse, recomputes each step from its saved state and differentiates it with the per-op
    `rule_for(node)(g, node, xs, ys, dys)` rules, carrying only the states' gradients. Returns one gradient (or
    None) per input of `node`: the initial carried values', then the scanned sequences'.
    Tensors the body reads from the outer scope get no gradient, so a trainable recurrence must carry its weights
    (`scan_rnn(..., carry_constants=True)`); a float graph input read that way is refused.
    """
    from core.ops.array import zeros_like

    body: GraphBuilder = node.attrs["body"]
    M = int(node.attrs["num_scan_inputs"])
    N = len(body.inputs) - M
    K = len(body.outputs) - N
    for key in ("scan_input_axes", "scan_output_axes", "scan_input_directions", "scan_output_directions"):
        if key in node.attrs:
            raise ValueError(f"Scan node '{node.name}': gradients support only default axes and directions.")
    _check_captures(g, body)
    body_outputs = list(body.outputs)
    saved = _save_step_states(g, node, body, N, xs[N])

    bg = GraphBuilder(f"{body.name}_grad", parent=g)
    with graph_scope(bg):
        d_state = [bg.add_input("d_state", t.dtype, t.shape) for t in body.inputs[:N]]
        state_t = [bg.add_input("state_t", t.dtype, t.shape) for t in body.inputs[:N]]
        x_t = [bg.add_input("x_t", t.dtype, t.shape) for t in body.inputs[N:]]
        dy_t = [bg.add_input("dy_t", t.dtype, t.shape) for t in body_outputs[N:]]
        mapping = {t.name: s for t, s in zip(body.inputs, state_t + x_t)}
        copied = _copy_nodes(bg, body, mapping)
        seeds = {}
        for t, d in zip(body_outputs, d_state + dy_t):
            name = mapping[t.name].name
            seeds[name] = d if name not in seeds else add_grads(seeds[name], d)
        wrt = [t for t in state_t + x_t if t.dtype.startswith("float")]
        grads = _reverse(bg, copied, seeds, wrt, rule_for, non_differentiable)
        d_state_out = [grads.get(s.name) if grads.get(s.name) is not None else zeros_like(s) for s in state_t]
        dx_index = [j for j, t in enumerate(x_t) if t.dtype.startswith("float")]
        dx_out = [grads.get(x_t[j].name) if grads.get(x_t[j].name) is not None else zeros_like(x_t[j])
                  for j in dx_index]
        outs = []
        for t in d_state_out + dx_out:
            if any(t is o for o in outs) or any(t is i for i in bg.inputs):
                t = bg.emit("Identity", [t], {}, [(t.dtype, t.shape)], name_hint="grad_out")[0]
            outs.append(t)
        bg.set_outputs(outs)

    with graph_scope(g):
        init = [dys[i] if dys[i] is not None else zeros_like(ys[i]) for i in range(N)]
        dseq = [dys[N + k] if dys[N + k] is not None else zeros_like(ys[N + k]) for k in range(K)]
    scanned = saved + list(xs[N:]) + dseq
    specs = [(t.dtype, t.shape) for t in init] + [(xs[N + j].dtype, xs[N + j].shape) for j in dx_index]
    n_in = len(scanned)
    results = g.emit("Scan", init + scanned, {"body": bg, "num_scan_inputs": n_in,
                                              "scan_input_directions": [1] * n_in,
                                              "scan_output_directions": [1] * len(dx_index)},
                     specs, name_hint=f"{node.name}_grad")
    dxs = list(results[:N]) + [None] * M
    for j, r in zip(dx_index, results[N:]):
        dxs[N + j] = r
    return dxs


def add_grads(a, b):
    from core.ops.math import add

    return add(a, b)


def _lookup(g: GraphBuilder, name: str):
    while g is not None:
        if name in g.values:
            return g.values[name]
        g = g.parent
    raise KeyError(name)


def _check_captures(g: GraphBuilder, body: GraphBuilder) -> None:
    produced = {t.name for t in body.inputs} | {o for n in body.nodes for o in n.outputs}
    root = g
    while root.parent is not None:
        root = root.parent
    graph_inputs = {t.name for t in root.inputs}
    for n in body.nodes:
        for i in n.inputs:
            if i and i not in produced and i in graph_inputs and _lookup(g, i).dtype.startswith("float"):
                raise ValueError(f"Scan body '{body.name}' reads the graph input '{i}' from the outer scope, so its "
                                 f"gradient would be lost; pass it as a carried value (carry_constants=True).")


def _save_step_states(g: GraphBuilder, node, body: GraphBuilder, N: int, first_scanned):
    """Make the forward Scan also output, per step, the states the step started from."""
    saved = []
    for t in body.inputs[:N]:
        out = body.emit("Identity", [t], {}, [(t.dtype, t.shape)], name_hint="saved_state")[0]
        body.outputs.append(out)
        name = g.unique_name(f"{node.outputs[0]}_saved")
        saved_t = g._new_tensor(name, t.dtype, (first_scanned.shape[0],) + tuple(t.shape))
        node.outputs.append(name)
        saved.append(saved_t)
    return saved


def _copy_nodes(bg: GraphBuilder, body: GraphBuilder, mapping: dict):
    """Re-emit the body's nodes into `bg`, reading `mapping`'s tensors for the body's inputs."""
    from core.graph import OpNode

    copied = []
    for n in body.nodes:
        if any(isinstance(v, GraphBuilder) for v in n.attrs.values()):
            raise ValueError(f"Scan body '{body.name}' holds a nested subgraph; its gradient is not supported.")
        ins = []
        for i in n.inputs:
            if not i:
                ins.append("")
            elif i in mapping:
                ins.append(mapping[i].name)
            else:
                ins.append(i)  # an outer-scope value: readable from the backward body too
        outs = []
        for o in n.outputs:
            src = body.values[o]
            t = bg._new_tensor(bg.unique_name(o), src.dtype, src.shape)
            mapping[o] = t
            outs.append(t.name)
        new = OpNode(n.op_type, ins, outs, dict(n.attrs), n.domain, bg.unique_name(n.name))
        bg.nodes.append(new)
        copied.append(new)
    return copied


def _reverse(bg: GraphBuilder, nodes, seeds: dict, wrt, rule_for, non_differentiable):
    """Reverse-mode over `nodes` of `bg` from the gradients in `seeds`; returns name -> gradient."""
    from core.ops.array import zeros_like
    from core.ops.math import cast

    depends = {t.name for t in wrt}
    for n in nodes:
        if n.op_type in non_differentiable:
            continue
        if any(i in depends for i in n.inputs if i):
            depends.update(n.outputs)
    needed = set(seeds)
    relevant = []
    for n in reversed(nodes):
        if any(o in needed for o in n.outputs) and any(o in depends for o in n.outputs):
            relevant.append(n)
            needed.update(i for i in n.inputs if i and i in depends)
    grads = dict(seeds)
    for n in relevant:
        dys = [grads.get(o) for o in n.outputs]
        if all(d is None for d in dys):
            continue
        xs = [_lookup(bg, i) if i else None for i in n.inputs]
        ys = [bg.values[o] for o in n.outputs]
        if dys[0] is None and n.op_type != "Split":
            dys[0] = zeros_like(ys[0])
        dxs = rule_for(n)(bg, n, xs, ys, dys)
        for x, dx in zip(xs, dxs):
            if x is None or dx is None or x.name not in depends or not x.dtype.startswith("float"):
                continue
            if dx.dtype != x.dtype:
                dx = cast(dx, x.dtype)
            prev = grads.get(x.name)
            grads[x.name] = dx if prev is None else add_grads(prev, dx)
    return grads

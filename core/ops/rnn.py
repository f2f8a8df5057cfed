"""Recurrent ops: ONNX's LSTM, GRU and RNN nodes, and the Scan-based recurrence used where they cannot express Keras.

The fused ONNX nodes compute X·W for all steps at once and run the recurrence in one kernel, so unmasked inference
uses them. They cannot express Keras's masks (a masked step keeps the previous state and repeats the previous output,
anywhere in the sequence), dropout, or activations outside ONNX's list; for those `scan_rnn` runs the recurrence as a
`Scan` whose step is written with `core.ops`, the way Keras's `backend.rnn` runs a cell's step function.
"""

from __future__ import annotations

import numpy as np

from core.errors import ShapeError
from core.graph import GraphBuilder, graph_scope, is_row_lookup, lookup, producer
from core.ops.dispatch import graph_of

__all__ = ["onnx_activation", "onnx_recurrent", "scan_rnn", "zeros_state", "keras_to_onnx_gates",
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
        a.hard_sigmoid_tf_keras2: ("HardSigmoid", 0.2, 0.5),
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


def zeros_state(like, units: int, dtype=None, batch_axis: int = 0):
    """Zeros of shape (batch, units), the batch taken at run time from axis `batch_axis` of `like`."""
    from onnx import numpy_helper

    g = graph_of(like)
    t = g.as_tensor(like)
    dtype = dtype or t.dtype
    # A row lookup's batch is its ids' batch: reading it there leaves the lookup to be dropped when only the
    # state's shape needed it (Embedding -> RNN, whose layer looks rows up in the projected table instead).
    gather = producer(t)
    ids = lookup(g, gather.inputs[1]) if is_row_lookup(gather) else None
    source = ids if ids is not None and ids.ndim > batch_axis else t
    batch = g.emit("Shape", [source], {"start": batch_axis, "end": batch_axis + 1}, [("int64", (1,))])[0]
    shape = g.emit("Concat", [batch, g.constant(np.array([units], dtype=np.int64))], {"axis": 0},
                   [("int64", (2,))])[0]
    value = numpy_helper.from_array(np.zeros((1,), dtype=dtype))
    return g.emit("ConstantOfShape", [shape], {"value": value}, [(dtype, (t.shape[batch_axis], units))])[0]


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
             return_sequences=False, zero_output_for_mask=False, constants=(), time_major=False, batch_axis=0,
             name="rnn"):
    """Keras's `backend.rnn` as an ONNX Scan.

    `step(inputs_t, states, constants) -> (output, new_states)` is called once, on tensors of the Scan body: the
    time slices of `sequences` ((batch, time, ...), or (time, batch, ...) when `time_major`), the states, and
    `constants` (outer tensors the body reads by name, never copied per step). With a `mask` (bool (batch, time)),
    a masked step keeps the previous states and its output is the previous output (zeros before the first unmasked
    step), or zeros when `zero_output_for_mask`.
    Returns (last_output, outputs (batch, time, output_size) or None, final states). Steps may carry leading axes
    before the batch (stacked directions of a Bidirectional layer), `batch_axis` of the states: outputs are then
    (..., batch, time, size).
    """
    from core.ops.array import expand_dims, flip, take, transpose
    from core.ops.math import cast, where

    g = graph_of(*sequences)
    seqs = []
    for s in sequences:
        s = g.as_tensor(s)
        if not time_major:
            s = transpose(s, (1, 0) + tuple(range(2, len(s.shape))))
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
    carried = list(initial_states)
    if mask is not None:  # a masked step repeats the previous output, so the output is carried too
        carried.append(zeros_state(seqs[0], output_size, seqs[0].dtype, batch_axis=1))
    n = len(initial_states)

    body = GraphBuilder(f"{name}_step", parent=g)
    body.batch_axis = batch_axis
    with graph_scope(body):
        state_in = [body.add_input("state", s.dtype, s.shape) for s in carried]
        slices = [body.add_input("step_in", s.dtype, s.shape[1:]) for s in scan_inputs]
        mask_t = slices.pop() if mask is not None else None
        consts = [body.outer(g.as_tensor(c)) for c in constants]
        states_t = state_in[:n]
        output, new_states = step(slices, states_t, consts)
        if mask_t is not None:
            new_states = [where(mask_t, new, old) for new, old in zip(new_states, states_t)]
            fallback = zeros_state(output, output_size, output.dtype) if zero_output_for_mask else state_in[n]
            output = where(mask_t, output, fallback)
        # Unmasked, the last output is the final value of the state it equals (h for Keras's cells), or else the
        # last row of the recorded outputs.
        output_state = next((k for k, s in enumerate(new_states) if s is output), None) if mask is None else None
        record_output = return_sequences or (mask is None and output_state is None)
        produced = {o for nd in body.nodes for o in nd.outputs}
        outs = []
        # A body output must be a value of its own: the same tensor twice (h is both state and output), a body
        # input or an outer value breaks ORT.
        for t in list(new_states) + ([output] if mask is not None else []) + ([output] if record_output else []):
            if any(t is o for o in outs) or t.name not in produced:
                t = body.emit("Identity", [t], {}, [(t.dtype, t.shape)], name_hint="step_out")[0]
            outs.append(t)
        body.set_outputs(outs)

    specs = [(s.dtype, s.shape) for s in carried]
    if record_output:
        specs.append((output.dtype, (T,) + tuple(output.shape)))
    results = g.emit("Scan", carried + scan_inputs, {"body": body, "num_scan_inputs": len(scan_inputs)}, specs,
                     name_hint=f"{name}_scan")
    final_states = results[:n]
    if mask is not None:
        last_output = results[n]
    elif output_state is not None:
        last_output = final_states[output_state]
    else:
        last_output = take(results[len(carried)], -1, axis=0)
    seq = None
    if return_sequences:  # the time axis moves next to the features: (time, batch, n) -> (batch, time, n)
        rank = len(specs[-1][1])
        seq = transpose(results[len(carried)], tuple(range(1, rank - 1)) + (0, rank - 1))
    return last_output, seq, final_states

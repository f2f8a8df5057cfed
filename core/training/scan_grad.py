"""The gradient of ONNX `Scan` (how recurrent layers train): a reversed Scan over values the forward Scan recorded.

The backward Scan runs over time in reverse. Its body replays the forward step and differentiates it (the same
per-op rules, `autodiff.backprop`), seeded with the incoming gradients of the new state and of the step's outputs;
it carries the state gradient (dh, dc) and puts out the input gradients per step. Then, because at recurrent sizes
(batch 64, 128 units) every node in a loop body costs about as much as a small matmul's worth of arithmetic:
- the replayed forward values the gradient reads (gates, tanh(c), the incoming state) are recorded by the forward
  Scan as extra scan outputs, and the replay is dropped;
- weights the step reads from outside as the right factor of a MatMul (h @ R) or as an added bias get their
  gradients after the loop, as one large product (sum_t h_tᵀ dZ_t) or sum, from sequences that mostly exist
  already (the recorded states, the input gradients);
- elementwise math that depends only on forward values (activation derivatives such as s(1 - s)), after products
  are regrouped so such factors meet ((c * a) * b -> c * (a * b)) and rewritten to reuse products the forward step
  has (c₋₁·f(1 - f) -> (f·c₋₁)(1 - f)), leaves the backward loop. On a CPU it goes into the forward step, which
  records the finished factors instead of the gates: there a node costs about a microsecond a step on values still
  in cache, where the same op between the loops streams whole sequences through memory (LSTM bench: 1-5% faster
  a step than between the loops, measured in turns). On a GPU, where each node in a loop is a kernel launch per
  step, it runs between the loops on whole sequences (`GraphBuilder.scan_factors_in_forward`).
The input projection X·W sits outside the Scan (DESIGN.md §3), so dW is one large MatMul done by the ordinary rules.
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
    from core.graph import lookup, outer_refs
    from core.training.autodiff import backprop

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
    T = xs[n_state].shape[0] if n_scan else None

    refs = [r for r in outer_refs(body) if r in depends and _is_float(lookup(g, r))]
    # A weight the step only multiplies into (h @ R) or adds (a recurrent bias) gets its gradient after the Scan, one
    # large product or sum over all steps instead of a small one per step accumulated in the loop.
    factors = _outside_factors(body, fwd_nodes, refs)
    summed = [r for r in refs if r not in factors]

    # 1. The backward body: replay the step on its recorded incoming state, differentiate it.
    bb = GraphBuilder(f"{body.name}_grad", parent=g)
    bb.batch_axis = body.batch_axis
    with graph_scope(bb):
        d_state = [bb.add_input("d_state", s.dtype, s.shape) for s in state_in]
        acc = [bb.add_input("d_outer", lookup(g, r).dtype, lookup(g, r).shape) for r in summed]
        rec_t = [bb.add_input("state_t", s.dtype, s.shape) for s in state_in]
        x_t = [bb.add_input("x_t", s.dtype, s.shape) for s in slice_in]
        dy_t = [bb.add_input("dy_t", o.dtype, o.shape) for o in fwd_outputs[n_state:]]
        mapping = {s.name: t.name for s, t in zip(state_in, rec_t)}
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
        for out, d in zip(fwd_outputs, d_state + dy_t):
            name = mapping.get(out.name, out.name)
            seeds[name] = d if name not in seeds else ops.add(seeds[name], d)
        products = [(None if a is None else mapping.get(a, a), mapping[y]) for r in factors for a, y in factors[r]]
        wrt = [t.name for t in rec_t] + [t.name for t in x_t if _is_float(t)] + summed + [y for _, y in products]
        grads = backprop(bb, replay, seeds, wrt)
        # A state the step's results do not depend on gets a zero gradient (shaped like the incoming one).
        new_d_state = [grads[t.name] if t.name in grads else ops.zeros_like(d) for t, d in zip(rec_t, d_state)]
        new_acc = [ops.add(a, grads[r]) if r in grads else a for a, r in zip(acc, summed)]
        d_x = [grads[t.name] if t.name in grads else ops.zeros_like(t) for t in x_t if _is_float(t)]
        per_step = [(None if a is None else lookup(bb, a), grads[y] if y in grads else ops.zeros_like(bb.values[y]))
                    for a, y in products]

    # 2. Per-step values of the forward step that the gradient reads become backward scan inputs, recorded once by
    # the forward Scan instead of being recomputed; the replay then goes.
    pending = new_d_state + new_acc + d_x + [t for pair in per_step for t in pair if t is not None]
    kept = _reuse_forward_values(bb, replay, mapping, rec_t + x_t, pending)
    now = {id(t): bb.values[t.name] for t in pending}  # a replayed value is now the step input that replaced it

    def current(t):
        return None if t is None else now[id(t)]

    new_d_state, new_acc, d_x = ([current(t) for t in ts] for ts in (new_d_state, new_acc, d_x))
    per_step = [(current(a), current(dy)) for a, dy in per_step]

    # 3. Outputs of the backward step. A product's per-step factors are often sequences that exist already: the
    # left factor a recorded state or input slice, the right one an input's gradient (dY of h@R is dZ).
    seq_sources = {}  # backward-body input name -> ("state", i) | ("x", i) | ("kept", i)
    seq_sources.update({t.name: ("state", i) for i, t in enumerate(rec_t)})
    seq_sources.update({t.name: ("x", i) for i, t in enumerate(x_t)})
    seq_sources.update({inp.name: ("kept", i) for i, (inp, _) in enumerate(kept)})
    float_x = [i for i, t in enumerate(x_t) if _is_float(t)]
    outs = new_d_state + new_acc + d_x
    extra_seq = []  # tensors recorded by the backward Scan beyond the input gradients
    product_plan = []
    for a, dy in per_step:
        if a is None:  # a bias
            a_plan = None
        elif a.name in seq_sources:
            a_plan = ("outer", seq_sources[a.name])
        else:
            a_plan = ("bwd", _index(extra_seq, a))
        same = [j for j, d in enumerate(d_x) if d is dy]
        dy_plan = ("dx", same[0]) if same else ("bwd", _index(extra_seq, dy))
        product_plan.append((a_plan, dy_plan))
    with graph_scope(bb):
        bb.set_outputs(_fresh_outputs(bb, outs + extra_seq))
    _drop_dead_nodes(bb)
    # 3b. Derivative factors: from products the forward step computes anyway and, on a CPU, in the forward step.
    in_forward = g.root.scan_factors_in_forward
    source_of = dict(zip([t.name for t in rec_t + x_t], state_in + slice_in))
    source_of.update({inp.name: body.values[name] for inp, name in kept})
    _reuse_forward_products(bb, body, kept, source_of, [t.name for t in dy_t], in_forward)
    if in_forward:
        _concat_factors(bb, set(source_of))
        _move_step_math_into_forward(bb, body, kept, source_of)
    seq_sources.update({inp.name: ("kept", i) for i, (inp, _) in enumerate(kept)})

    # 4. Forward records: each incoming state and kept value the backward step still reads.
    used = {i for n in bb.nodes for i in n.inputs} | {o.name for o in bb.outputs}
    recorded = {}
    with graph_scope(body):
        produced = {o for n in body.nodes for o in n.outputs}
        for what, src in [("state", s) for s in state_in] + [("kept", body.values[name]) for _, name in kept]:
            inp = rec_t[state_in.index(src)] if what == "state" else next(i for i, nm in kept if nm == src.name)
            if inp.name not in used and not any(p[0] == ("outer", seq_sources[inp.name]) for p in product_plan):
                continue
            taken = any(o is src for o in body.outputs)
            out = src if src.name in produced and not taken else \
                body.emit("Identity", [src], {}, [(src.dtype, src.shape)], name_hint="record")[0]
            body.outputs.append(out)
            rec_name = g.unique_name(f"{node.outputs[0]}_record")
            rec = SymbolicTensor(g, rec_name, src.dtype, (T,) + tuple(src.shape))
            g.values[rec_name] = rec
            node.outputs.append(rec_name)
            recorded[inp.name] = rec

    def outer_sequence(source):
        kind, i = source
        if kind == "x":
            return xs[n_state + i]
        return recorded[(rec_t[i] if kind == "state" else kept[i][0]).name]

    # Backward inputs nobody reads any more are dropped, with their sequences.
    slices = [(t, recorded.get(t.name)) for t in rec_t] + [(t, xs[n_state + i]) for i, t in enumerate(x_t)] + \
        [(t, d) for t, d in zip(dy_t, dys[n_state:n_state + n_out])] + [(inp, recorded.get(inp.name)) for inp, _ in kept]
    live_slices = []
    for t, seq in slices:
        if t.name in used:
            if seq is None:  # an output's gradient that never arrived
                seq = ops.zeros_like(ys[n_state + dy_t.index(t)])
            live_slices.append((t, seq))
    live_slices = _hoist_per_step_math(g, bb, live_slices, T)
    bb.inputs = d_state + acc + [t for t, _ in live_slices]

    # 5. The reversed Scan.
    init_state = [dys[i] if dys[i] is not None else ops.zeros_like(ys[i]) for i in range(n_state)]
    init_acc = [_zeros_like_outer(g, lookup(g, r)) for r in summed]
    scan_inputs = [seq for _, seq in live_slices]
    seq_specs = [(xs[n_state + i].dtype, xs[n_state + i].shape) for i in float_x]
    seq_specs += [(t.dtype, (T,) + tuple(t.shape)) for t in extra_seq]
    specs = [(s.dtype, s.shape) for s in init_state] + \
        [(lookup(g, r).dtype, lookup(g, r).shape) for r in summed] + seq_specs
    results = g.emit("Scan", init_state + init_acc + scan_inputs,
                     {"body": bb, "num_scan_inputs": len(scan_inputs),
                      "scan_input_directions": [1] * len(scan_inputs),
                      "scan_output_directions": [1] * len(seq_specs)},
                     specs, name_hint="scan_grad")
    d_init = results[:n_state]
    extra = dict(zip(summed, results[n_state:n_state + len(summed)]))
    rest = results[n_state + len(summed):]
    d_seqs, extra_seqs = rest[:len(float_x)], rest[len(float_x):]
    per_input = list(d_init)
    it = iter(d_seqs)
    per_input += [next(it) if _is_float(x) else None for x in xs[n_state:]]
    plans = iter(product_plan)
    for r, pairs in factors.items():
        for _ in pairs:
            a_plan, (dy_kind, dy_src) = next(plans)
            dy_seq = d_seqs[float_x.index(dy_src)] if dy_kind == "dx" else extra_seqs[dy_src]
            stacked = dy_seq.ndim == 4  # (steps, D, batch, n): one sum or product per leading index
            if a_plan is None:
                # One axis at a time: ORT sums (steps, batch, n) over both leading axes 2.3x slower (a GRU's
                # recurrent bias, (100, 64, 384): 678 against 290 us), summing 6400 rows column by column.
                part = ops.sum(ops.sum(dy_seq, axis=0), axis=1 if stacked else 0, keepdims=stacked)
            else:
                a_kind, a_src = a_plan
                a_seq = outer_sequence(a_src) if a_kind == "outer" else extra_seqs[a_src]
                k, n = a_seq.shape[-1], dy_seq.shape[-1]
                if stacked:
                    d = a_seq.shape[1]
                    rows = [ops.reshape(ops.transpose(t, (1, 0, 2, 3)), (d, -1, t.shape[-1])) for t in (a_seq, dy_seq)]
                    part = ops.matmul(ops.transpose(rows[0], (0, 2, 1)), rows[1])
                else:
                    part = ops.matmul(ops.transpose(ops.reshape(a_seq, (-1, k))), ops.reshape(dy_seq, (-1, n)))
            extra[r] = part if r not in extra else ops.add(extra[r], part)
    return per_input, extra


# Ops that act element by element (numpy broadcasting, no axis attribute): applied to whole sequences they give
# every step's result at once.
_ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Neg", "Abs", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Reciprocal",
                "Relu", "Pow", "Where", "Cast", "Greater", "Less", "Equal", "GreaterOrEqual", "LessOrEqual", "Not",
                "And", "Or", "Clip", "Softplus", "Softsign", "HardSigmoid", "Elu", "LeakyRelu", "Erf", "Sign",
                "Max", "Min"}


def _hoist_per_step_math(g, bb, slices, T):
    """Move the backward step's elementwise math that depends on no carried value (activation derivatives such as
    sigma(z)(1 - sigma(z)), computed from recorded gates) out of the loop: one op over the whole sequence instead of
    one small op per step, whose fixed cost dominates at recurrent sizes. `slices` are (step input, sequence)
    pairs; returns the pairs the loop reads after the move."""
    seq_of = {t.name: seq for t, seq in slices}  # body value -> its whole-sequence tensor in g
    const_nodes = _constant_nodes(bb)
    _factor_out_step_values(bb, set(seq_of) | set(const_nodes))
    local = {t.name for t in bb.inputs} | {o for n in bb.nodes for o in n.outputs}
    hoisted = []
    for n in bb.nodes:
        if n.op_type not in _ELEMENTWISE or not any(i in seq_of for i in n.inputs):
            continue
        out = bb.values[n.outputs[0]]
        args = []
        for i in n.inputs:
            if not i:
                args.append(None)
            elif i in seq_of:
                if bb.values[i].ndim != out.ndim:  # a leading time axis would not line up
                    break
                args.append(seq_of[i])
            elif i in const_nodes:
                value = _constant_value(const_nodes[i])
                if value.ndim > out.ndim:
                    break
                with graph_scope(g):
                    args.append(g.constant(value, value.dtype.name))
            elif i not in local and _outer_value(g, i) is not None and _outer_value(g, i).ndim <= out.ndim:
                args.append(_outer_value(g, i))
            else:
                break
        else:
            with graph_scope(g):
                seq = g.emit(n.op_type, args, dict(n.attrs), [(out.dtype, (T,) + tuple(out.shape))],
                             name_hint=f"{n.outputs[0]}_seq")[0]
            seq_of[n.outputs[0]] = seq
            hoisted.append(n)
    if not hoisted:
        return slices
    gone = {id(n) for n in hoisted}
    bb.nodes[:] = [n for n in bb.nodes if id(n) not in gone]
    _drop_dead_nodes(bb)
    read = {i for n in bb.nodes for i in n.inputs} | {o.name for o in bb.outputs}
    kept = [(t, seq) for t, seq in slices if t.name in read]
    for n in hoisted:
        name = n.outputs[0]
        if name in read:  # the loop reads the hoisted value as a step input of the same name
            t = bb.values[name]
            kept.append((t, seq_of[name]))
    return kept


def _factor_out_step_values(bb, step_only: set) -> None:
    """Rewrite the backward step so that values depending only on the step (recorded gates, constants) gather into
    factors that can leave the loop, leaving one product with the carried gradient c:
    (c * a) * b -> c * (a * b);  -(c * a) -> c * (-a);  c * a +/- c * b -> c * (a +/- b); and a + (-b) -> a - b.
    (Exact algebra; rounding moves by an ulp or so.)"""
    def apply_once() -> bool:
        known, producer, uses = _step_view(bb, step_only)

        def split(x):
            """(c, a) when x = c * a with a step-only factor, c not, and x read once; else None."""
            m = producer.get(x)
            if m is None or m.op_type != "Mul" or uses.get(x) != 1 or x in known:
                return None
            for j in (0, 1):
                if m.inputs[j] in known and m.inputs[1 - j] not in known:
                    return m.inputs[1 - j], m.inputs[j]
            return None

        def negated(names):
            """The first of `names` that is -b, read once; else None."""
            return next((i for i in names if getattr(producer.get(i), "op_type", None) == "Neg" and uses.get(i) == 1),
                        None)

        for k, n in enumerate(bb.nodes):
            if n.op_type == "Mul" and len(n.inputs) == 2:
                for xi in (0, 1):
                    b, inner = n.inputs[1 - xi], split(n.inputs[xi])
                    if b in known and inner is not None:
                        c, a = inner
                        n.inputs = [c, _insert(bb, k, "Mul", [a, b])]
                        return True
            elif n.op_type == "Neg":
                inner = split(n.inputs[0])
                if inner is not None:
                    c, a = inner
                    n.op_type, n.inputs = "Mul", [c, _insert(bb, k, "Neg", [a])]
                    return True
            elif n.op_type == "Add" and len(n.inputs) == 2 and negated(n.inputs) is not None:
                neg = negated(n.inputs)
                n.op_type, n.inputs = "Sub", [n.inputs[1] if n.inputs[0] == neg else n.inputs[0],
                                              producer[neg].inputs[0]]
                return True
            elif n.op_type in ("Add", "Sub"):
                left, right = split(n.inputs[0]), split(n.inputs[1])
                if left is not None and right is not None and left[0] == right[0]:
                    n.inputs = [left[0], _insert(bb, k, n.op_type, [left[1], right[1]])]
                    n.op_type = "Mul"
                    return True
        return False

    while apply_once():
        _drop_dead_nodes(bb)


def _reuse_forward_products(bb, body, kept, source_of, from_outside, in_forward) -> None:
    """Rewrite the backward step's derivative factors to read values the forward step computes anyway instead of
    recomputing them from their factors:
    - a factor the forward step computes itself (a GRU's 1 - z) is read from it;
    - a product of factors whose pair the forward step multiplies: c·(f·(1 - f)) -> (f·c)·(1 - f) (LSTM: f·c₋₁,
      i·g; with the factors computed in the forward step also o·tanh(c) = h);
    - x·(1 - y·w) -> x - (x·y)·w where the forward step multiplies x·y (the tanh derivative: i·(1 - g²) ->
      i - (i·g)·g).
    Each saves an elementwise op, and an incoming state no one reads any more (c₋₁) is not recorded. A forward
    value is used where the forward step can record it without a copy (a node output that is not a body output, or
    a value recorded already) or, `in_forward`, where the factor will be computed in the forward step (it reads
    nothing from `from_outside`, the incoming per-step output gradients). `kept`: [(backward input, forward value)],
    extended in place; `source_of`: {backward input: forward tensor}, likewise."""
    fwd_consts = _constant_nodes(body)
    recordable = {o for n in body.nodes if n.op_type != "Constant" for o in n.outputs} - \
        {o.name for o in body.outputs}
    recordable |= {name for _, name in kept}

    def const_key(node):
        value = _constant_value(node)
        return ("const", value.dtype.str, value.shape, value.tobytes())

    def key(op_type, keys):
        return (op_type,) + (tuple(sorted(keys)) if op_type in ("Mul", "Add") else tuple(keys))

    computed = {}  # (op, input keys) -> forward value, for the forward step's plain elementwise nodes
    for n in body.nodes:
        if n.op_type in _ELEMENTWISE and not n.attrs and len(n.outputs) == 1:
            ins = [const_key(fwd_consts[i]) if i in fwd_consts else ("fwd", i) for i in n.inputs]
            computed.setdefault(key(n.op_type, ins), n.outputs[0])

    def apply_once() -> bool:
        consts = _constant_nodes(bb)
        step_only, producer, uses = _step_view(bb, set(source_of) | set(from_outside) | set(consts))
        forward_only = _step_view(bb, set(source_of) | set(consts))[0]

        def in_key(name):
            if name in consts:
                return const_key(consts[name])
            return ("fwd", source_of[name].name) if name in source_of else None

        def usable(value, reader):
            """`value` (a forward tensor name or None) if the factor `reader` may read it."""
            if value is None or not (value in recordable or in_forward and reader in forward_only):
                return None
            return value

        def product(a, b, reader):
            """The forward value a·b, if `reader` may read it."""
            ka, kb = in_key(a), in_key(b)
            return None if ka is None or kb is None else usable(computed.get(key("Mul", [ka, kb])), reader)

        def leaves(name):
            m = producer.get(name)
            if m is not None and m.op_type == "Mul" and uses.get(name) == 1 and name in step_only:
                return leaves(m.inputs[0]) + leaves(m.inputs[1])
            return [name]

        def is_one(name):
            return name in consts and np.all(_constant_value(consts[name]) == 1)

        for k, n in enumerate(bb.nodes):
            out = n.outputs[0]
            if n.op_type not in _ELEMENTWISE or out not in step_only:
                continue
            keys = [in_key(i) for i in n.inputs]
            if all(kk is not None for kk in keys) and not n.attrs and not any(o.name == out for o in bb.outputs):
                same = usable(computed.get(key(n.op_type, keys)), out)
                if same is not None:
                    _replace_reads(bb.nodes, out, _kept_input(bb, body, kept, source_of, same))
                    return True
            if n.op_type != "Mul":
                continue
            factors = leaves(n.inputs[0]) + leaves(n.inputs[1])
            for a in range(len(factors)):
                for b in range(a + 1, len(factors)):
                    p = product(factors[a], factors[b], out)
                    rest = [f for j, f in enumerate(factors) if j not in (a, b)]
                    if p is None or not rest:  # (a whole product the forward has is the first rule's)
                        continue
                    acc, pos = rest[0], k
                    for f in rest[1:]:
                        acc = _insert(bb, pos, "Mul", [acc, f])
                        pos += 1
                    n.inputs = [_kept_input(bb, body, kept, source_of, p), acc]
                    return True
            for x, s in (n.inputs, n.inputs[::-1]):
                sub = producer.get(s)
                if sub is None or sub.op_type != "Sub" or uses.get(s) != 1 or not is_one(sub.inputs[0]):
                    continue
                m = producer.get(sub.inputs[1])
                if m is None or m.op_type != "Mul" or uses.get(sub.inputs[1]) != 1:
                    continue
                for y, w in (m.inputs, m.inputs[::-1]):
                    p = product(x, y, out)
                    if p is not None:
                        n.op_type = "Sub"
                        n.inputs = [x, _insert(bb, k, "Mul", [_kept_input(bb, body, kept, source_of, p), w])]
                        return True
        return False

    _factor_out_step_values(bb, set(source_of) | set(from_outside) | set(_constant_nodes(bb)))
    while apply_once():
        _drop_dead_nodes(bb)


def _kept_input(bb, body, kept, source_of, name) -> str:
    """The backward input that reads forward value `name` step by step (recorded by the forward Scan), made if
    there is none yet."""
    for inp, fwd_name in kept:
        if fwd_name == name:
            return inp.name
    src = body.values[name]
    inp = bb.add_input("kept_t", src.dtype, src.shape)
    kept.append((inp, name))
    source_of[inp.name] = src
    return inp.name


def _concat_factors(bb, forward_values: set) -> None:
    """Concat(c₁·a₁, ..., cₙ·aₙ) with factors aₖ computed from `forward_values` (and constants) ->
    Concat(c₁, ..., cₙ) · Concat(a₁, ..., aₙ). The factors' Concat joins them in the forward step, and the
    backward step runs two nodes instead of n + 1 (LSTM: dZ = [dc, dc, dc, dh] · [i', f', g', o'], 1-5% a step
    in five runs taken in turns)."""
    forward_only, producer, uses = _step_view(bb, forward_values | set(_constant_nodes(bb)))
    for n in list(bb.nodes):
        if n.op_type != "Concat" or len(n.inputs) < 2:
            continue
        parts = []
        for i in n.inputs:
            m = producer.get(i)
            if m is None or m.op_type != "Mul" or uses.get(i) != 1:
                break
            a = [x for x in m.inputs if x in forward_only]
            c = [x for x in m.inputs if x not in forward_only]
            shape = bb.values[i].shape
            if len(a) != 1 or len(c) != 1 or bb.values[a[0]].shape != shape or bb.values[c[0]].shape != shape:
                break
            parts.append((c[0], a[0]))
        else:
            out = bb.values[n.outputs[0]]
            pos = bb.nodes.index(n)
            joined = []
            for names in ([c for c, _ in parts], [a for _, a in parts]):
                t = bb._new_tensor(bb.unique_name("concat_steps"), out.dtype, out.shape)
                bb.nodes.insert(pos, OpNode("Concat", names, [t.name], dict(n.attrs), "",
                                            bb.unique_name("Concat_steps")))
                pos += 1
                joined.append(t.name)
            n.op_type, n.inputs, n.attrs = "Mul", joined, {}
    _drop_dead_nodes(bb)


def _move_step_math_into_forward(bb, body, kept, source_of) -> None:
    """Compute the backward step's elementwise math on forward values (the derivative factors, and Concats of
    them) in the forward step instead, which then records the factors rather than what they are made of. In the loop
    each such op costs a node's fixed cost per step on values still in cache; between the loops it streams whole
    sequences through memory (LSTM, batch 64 x 128 units x 100 steps: 1-5% faster a training step in five runs
    taken in turns)."""
    from core.graph import lookup, outer_refs

    consts = _constant_nodes(bb)
    outer = set(outer_refs(body))  # what the forward Scan already reads, hence exists before it runs
    fwd_of = {name: src.name for name, src in source_of.items()}
    bb_outputs = {o.name for o in bb.outputs}
    moved = []
    for n in bb.nodes:
        if n.op_type not in _ELEMENTWISE and n.op_type != "Concat" or n.outputs[0] in bb_outputs:
            continue
        args = []
        for i in n.inputs:
            if not i:
                args.append(None)
            elif i in fwd_of:
                args.append(body.values[fwd_of[i]])
            elif i in consts:
                value = _constant_value(consts[i])
                with graph_scope(body):
                    args.append(body.constant(value, value.dtype.name))
            elif i in outer:
                args.append(lookup(body, i))
            else:
                break
        else:
            out = bb.values[n.outputs[0]]
            with graph_scope(body):
                t = body.emit(n.op_type, args, dict(n.attrs), [(out.dtype, out.shape)], name_hint="factor")[0]
            fwd_of[n.outputs[0]] = t.name
            moved.append(n)
    if not moved:
        return
    gone = {id(n) for n in moved}
    bb.nodes[:] = [n for n in bb.nodes if id(n) not in gone]
    read = {i for n in bb.nodes for i in n.inputs}
    for n in moved:
        if n.outputs[0] in read:
            _replace_reads(bb.nodes, n.outputs[0], _kept_input(bb, body, kept, source_of, fwd_of[n.outputs[0]]))
    _drop_dead_nodes(bb)


def _constant_nodes(graph) -> dict:
    """{output: node} for the graph's Constant nodes."""
    return {n.outputs[0]: n for n in graph.nodes if n.op_type == "Constant" and "value" in n.attrs}


def _replace_reads(nodes, old: str, new: str) -> None:
    """Make `nodes` read tensor `new` wherever they read `old`."""
    for n in nodes:
        n.inputs = [new if i == old else i for i in n.inputs]


def _constant_value(node) -> np.ndarray:
    """The value of a Constant node."""
    from onnx import numpy_helper

    return numpy_helper.to_array(node.attrs["value"])


def _step_view(bb, step_only: set):
    """(values that depend only on `step_only` ones through elementwise nodes, {value: producing node},
    {value: how many times the backward step reads it})."""
    known = set(step_only)
    for n in bb.nodes:
        if n.op_type in _ELEMENTWISE and all(i in known for i in n.inputs if i):
            known.update(n.outputs)
    producer = {o: n for n in bb.nodes for o in n.outputs}
    uses = {}
    for n in bb.nodes:
        for i in n.inputs:
            uses[i] = uses.get(i, 0) + 1
    for o in bb.outputs:
        uses[o.name] = uses.get(o.name, 0) + 1
    return known, producer, uses


def _insert(bb, k, op_type, inputs) -> str:
    """Insert an elementwise node before node k of `bb`; returns its output name."""
    shapes = [bb.values[i].shape for i in inputs]
    shape = max(shapes, key=len)
    out = bb._new_tensor(bb.unique_name(f"{op_type.lower()}_steps"), bb.values[inputs[0]].dtype, shape)
    bb.nodes.insert(k, OpNode(op_type, list(inputs), [out.name], {}, "", bb.unique_name(f"{op_type}_steps")))
    return out.name


def _outer_value(g, name):
    """The tensor called `name` in `g` or a graph around it; None if there is none."""
    from core.graph import lookup

    try:
        return lookup(g, name)
    except KeyError:
        return None


def _index(items: list, t) -> int:
    """Position of tensor `t` in `items`, appending it first if absent."""
    for i, x in enumerate(items):
        if x is t:
            return i
    items.append(t)
    return len(items) - 1


def _outside_factors(body, nodes, refs):
    """Outer weights the step reads only as the right factor of 2-D MatMuls (h @ R) or as a bias added to a 2-D
    value (z + b): {weight: [(left factor, or None for a bias, result)]} by body tensor names. Their gradients are
    taken after the loop, over all steps at once: sum_t a_tᵀ dY_t, or dY summed over steps and batch. Stacked
    recurrences (a Bidirectional layer's two directions) have one leading axis more on both sides: (D, batch, k) @
    (D, k, n) and (D, batch, n) + (D, 1, n), summed per leading index."""
    from core.graph import lookup

    out = {}
    for r in refs:
        pairs = []
        w = lookup(body, r)
        stacked = w.ndim == 3 and w.shape[0] is not None
        for n in (n for n in nodes if r in n.inputs):
            y = body.values.get(n.outputs[0])
            if n.op_type == "MatMul" and n.inputs[1] == r and n.inputs[0] != r:
                a = body.values.get(n.inputs[0])
                if a is None or a.shape[-1] is None or y is None or y.shape[-1] is None or \
                        a.ndim != (3 if stacked else 2) or (stacked and a.shape[0] != w.shape[0]):
                    break
                pairs.append((n.inputs[0], n.outputs[0]))
            elif n.op_type == "Add" and n.inputs.count(r) == 1:
                other = body.values.get(next(i for i in n.inputs if i != r))
                rank = 3 if stacked else 1
                if other is None or y is None or w.ndim != rank or other.ndim != max(rank, 2) or \
                        y.ndim != other.ndim or w.shape[-1] is None or w.shape[-1] != other.shape[-1] or \
                        (stacked and (w.shape[1] != 1 or other.shape[0] != w.shape[0])):
                    break
                pairs.append((None, n.outputs[0]))
            else:
                break
        else:
            if pairs:
                out[r] = pairs
    return out


def _reuse_forward_values(bb, replay, mapping, step_inputs, pending):
    """Replace the replayed per-step values that gradient nodes (or the `pending` outputs) read by new backward
    inputs, to be fed from records of the forward Scan. Returns [(backward input, forward body tensor name)]."""
    varying = {t.name for t in step_inputs}
    produced_by_replay = set()
    for n in replay:
        produced_by_replay.update(n.outputs)
        if n.op_type != "Constant" and any(i in varying for i in n.inputs):
            varying.update(n.outputs)
    replay_ids = {id(n) for n in replay}
    wanted = []
    for name in [i for n in bb.nodes if id(n) not in replay_ids for i in n.inputs] + [t.name for t in pending]:
        if name in produced_by_replay and name in varying and name not in wanted:
            wanted.append(name)
    reverse = {v: k for k, v in mapping.items()}
    kept = []
    for name in wanted:
        src = bb.values[name]
        inp = bb.add_input("kept_t", src.dtype, src.shape)
        _replace_reads([n for n in bb.nodes if id(n) not in replay_ids], name, inp.name)
        bb.values[name] = inp  # pending outputs that were this value now read the input
        kept.append((inp, reverse[name]))
    _drop_dead_nodes(bb, roots={bb.values[t.name].name for t in pending})
    return kept


def _drop_dead_nodes(bb, roots=None):
    """Drop nodes whose results nobody reads: replayed values the gradient does not need, and gradients of inputs
    nobody needs (a MatMul rule gives both factors' gradients; inside a loop the unused one would still run every
    step)."""
    live = set(roots) if roots is not None else {o.name for o in bb.outputs}
    keep_nodes = []
    for n in reversed(bb.nodes):
        if any(o in live for o in n.outputs):
            keep_nodes.append(n)
            live.update(i for i in n.inputs if i)
    bb.nodes[:] = list(reversed(keep_nodes))

"""The training step (and the evaluation step) as ONE ONNX graph of standard ops.

Forward pass (traced with weights as graph inputs) + losses + regularization penalties + metric statistics, and for
training the reverse-mode gradient and the optimizer update. Weights, optimizer slots, the step count and the
learning rate are inputs; their new values are outputs (DESIGN.md §3). `StepProgram` records which graph input
and output holds what, so the session can bind buffers by meaning. Convolution stacks train channels first
(`channels_first`), and a graph for the CPU runs its 2-D convolutions in ONNX Runtime's blocked layout where it can
(`blocked_conv`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core import losses as losses_module
from core import ops
from core.errors import InputDataError
from core.graph import SymbolicTensor, graph_scope, is_row_lookup
from core.metrics import output_mask
from core.training.autodiff import backprop
from core.training.blocked_conv import block_convolutions, declare_nchwc_domain
from core.training.channels_first import flatten_channels_first, keep_channels_first
from core.training.gradients import RULES
from core.training.host_dropout import feed_bits_to_dropouts
from core.training.pool_first import pool_before_relu
from core.training.scalar_broadcast import widen_scalars


# Weights of this many values or more update on their own instead of in the flat vector (see build_step): the
# copies into and out of the vector cost more than a weight's own dozen update nodes. With a 20000 x 128 embedding
# the keras-io IMDB models train 6-9% faster alone (6 rounds in turns on a loaded machine); an MLP's 784 x 512 kernel
# is the same either way.
PACKED_WEIGHT_MAX = 1 << 18


@dataclass
class StateSlot:
    """One persistent value: a weight ('w', id(var)), an optimizer slot ('s', id(var), name) or global ('g', name)."""

    key: tuple
    input_name: str
    output_name: str | None  # None: read but never written by this graph
    dtype: str
    shape: tuple


@dataclass
class OutputTarget:
    """How one model output is trained: its loss (or None), the loss weight and its metrics."""

    name: str
    loss: object
    loss_weight: float | None
    metrics: list
    weighted_metrics: list


@dataclass
class StepProgram:
    model_proto: object
    x_inputs: list[str]
    y_inputs: list[str | None]
    sw_inputs: list[str | None]
    lr_input: str | None
    iterations_input: str | None
    state: list[StateSlot]
    # scalar outputs: ("loss", None) total, ("output_loss", i), ("metric", (i, j, weighted), k-th stat)
    results: list[tuple] = field(default_factory=list)
    result_names: list[str] = field(default_factory=list)
    result_shapes: list[tuple] = field(default_factory=list)
    # With one flat slot vector per slot name: (id(var), size) in the order the weights are packed.
    flat_layout: list | None = None
    # The metric of each ("layer_metric", u, k) result: metrics a layer's call updated, once per update.
    layer_metrics: list = field(default_factory=list)
    # Multiply-adds of the forward pass per sample in its matrix products and convolutions (outside loops).
    macs_per_sample: float = 0.0
    # The random bits each step feeds to Dropouts whose masks the host draws (core.training.host_dropout).
    dropout_bits: list = field(default_factory=list)


def build_step(model, x_specs, y_specs, targets: list[OutputTarget], *, optimizer=None,
               device: str = "cpu") -> StepProgram:
    """Trace `model` and write the step graph for `device`. `y_specs`: (dtype, shape) per output (None for
    outputs without targets). With an optimizer, the graph also differentiates and updates; without, it only
    evaluates."""
    train = optimizer is not None
    g = model.inference_graph(x_specs, training=train, weights_as_inputs=True)
    g.scan_factors_in_forward = device == "cpu"
    macs = forward_macs(g)
    x_inputs = [t.name for t in g.inputs]
    preds = list(g.outputs)
    if len(preds) != len(targets):
        raise InputDataError(f"Model '{model.name}' has {len(preds)} output(s) but {len(targets)} were configured.")
    results, result_tensors = [], []
    y_inputs, sw_inputs = [], []
    with graph_scope(g):
        total = None
        for i, (pred, tgt, yspec) in enumerate(zip(preds, targets, y_specs)):
            if yspec is None:
                y_inputs.append(None)
                sw_inputs.append(None)
                continue
            y = g.add_input(f"target_{tgt.name}", yspec[0], yspec[1])
            # One weight per loss value: per sample, or per timestep (pixel) for outputs of rank > 2, where the
            # host broadcasts per-sample weights (`targets.sample_weights`).
            sw = g.add_input(f"sample_weight_{tgt.name}", "float32", (None,) + tuple(pred.shape[1:-1]))
            y_inputs.append(y.name)
            sw_inputs.append(sw.name)
            mask = _output_mask(g, pred)
            if mask is not None and output_mask(pred) is None:
                pred._keras_mask = mask  # metrics read the mask from y_pred, as Keras's do
            if tgt.loss is not None:
                values = tgt.loss.call(y, pred)
                value = losses_module.reduce_weighted(values, _weights_for(values, sw), tgt.loss.reduction,
                                                      mask=mask)
                value = ops.cast(value, "float32")
                if len(targets) > 1:
                    results.append(("output_loss", i))
                    result_tensors.append(value)
                if tgt.loss_weight is not None:
                    value = ops.multiply(value, float(tgt.loss_weight))
                total = value if total is None else ops.add(total, value)
            for j, m in enumerate(tgt.metrics):
                for k, s in enumerate(m.batch_stats(y, pred, None)):
                    results.append(("metric", (i, j, False), k))
                    result_tensors.append(s)
            for j, m in enumerate(tgt.weighted_metrics):
                for k, s in enumerate(m.batch_stats(y, pred, sw)):
                    results.append(("metric", (i, j, True), k))
                    result_tensors.append(s)
        # Metrics that layers updated inside call (the endpoint-layer pattern): one result per statistic.
        layer_metrics = []
        for metric, stats in g.metric_updates:
            for k, s in enumerate(stats):
                results.append(("layer_metric", len(layer_metrics), k))
                result_tensors.append(s)
            layer_metrics.append(metric)
        if train and total is None and not g.losses and not any(v.regularizer is not None
                                                                for v, _ in g.variable_inputs):
            raise InputDataError(f"Model '{model.name}' has no loss to train: give compile() a loss, or add one "
                                 f"with self.add_loss() inside a layer's call().")
        if total is None:
            total = g.constant(np.array(0.0, dtype=np.float32), "float32")
        trainable_ids = {id(v) for v in model.trainable_weights}
        for var, t in list(g.variable_inputs):
            if var.regularizer is not None and id(var) in trainable_ids:
                total = ops.add(total, ops.cast(var.regularizer(t), "float32"))
        for penalty in getattr(g, "losses", []):
            total = ops.add(total, ops.cast(penalty, "float32"))
        results.insert(0, ("loss", None))
        result_tensors.insert(0, total)

        state: list[StateSlot] = []
        outputs = list(result_tensors)
        out_names = [f"result_{k}" for k in range(len(result_tensors))]
        written: dict[int, object] = {}
        lr_name = it_name = None
        flat_layout = None

        def written_state(slot: StateSlot, value) -> None:
            """A persistent value the step reads and writes anew."""
            state.append(slot)
            outputs.append(value)
            out_names.append(f"new_{len(out_names)}")
            slot.output_name = out_names[-1]

        if train:
            params = [(v, t) for v, t in g.variable_inputs if id(v) in trainable_ids]
            pool_before_relu(g)  # the same values and gradients, with the ReLU on the pooled tensor
            flatten_channels_first(g)  # Dense kernels' rows in the convolution's order, not the activations
            grads, sparse = _gradients_and_sparse_parts(g, total, [t for _, t in params],
                                                         dense_from_rows=optimizer.reads_lookup_rows)
            keep_channels_first(g)  # convolution stacks trained channels first, forward and gradient
            lr = g.add_input("learning_rate", "float32", ())
            it = g.add_input("iterations", "float32", ())
            lr_name, it_name = lr.name, it.name
            glob = {k: g.add_input(f"optimizer/{k}", "float32", ()) for k in sorted(optimizer.global_slots)}
            dtypes = {v.dtype for v, _ in params}
            slot_names = optimizer.state_slot_names
            # Accumulated gradients are clipped after averaging, and clipnorm clips each weight's own gradient.
            per_weight_clip = bool(optimizer.gradient_accumulation_steps) and optimizer.clips
            # Small weights share one flat vector: the elementwise update is written (and run) once, not once per
            # weight, which matters for small models where every node costs about a microsecond. A large weight
            # (an embedding table) updates on its own: packing would copy it and its gradient into the vector and
            # back out every step, four passes over it, to save a dozen small nodes. Packing needs one dtype, and
            # gradients clipped before the update (clipnorm with accumulation clips each averaged gradient inside).
            packs = len(dtypes) == 1 and not per_weight_clip
            if packs:
                grads = optimizer.clip(grads)
                if optimizer.clips:
                    sparse = [None] * len(params)  # a clipped gradient is a dense one
            sizes = [int(np.prod(v.shape)) for v, _ in params]
            packed = [k for k, n in enumerate(sizes) if n < PACKED_WEIGHT_MAX] if packs else []
            packed = packed if len(packed) > 1 else []
            alone = [k for k in range(len(params)) if k not in packed]
            update_g, update_p, update_s, update_sparse = [], [], [], []
            if packed:
                dtype = next(iter(dtypes))
                total_size = sum(sizes[k] for k in packed)
                update_g.append(ops.concatenate([ops.reshape(grads[k], (-1,)) for k in packed], axis=0))
                update_p.append(ops.concatenate([ops.reshape(params[k][1], (-1,)) for k in packed], axis=0))
                update_s.append({sname: g.add_input(f"optimizer/{sname}", dtype, (total_size,))
                                 for sname in slot_names})
                flat_sparse = None
                if any(sparse[k] is not None for k in packed):
                    flat_sparse = {
                        kind: ops.concatenate([ops.reshape(sparse[k][kind] if sparse[k] is not None
                                                           else fn(grads[k]), (-1,)) for k in packed], axis=0)
                        for kind, fn in (("square", ops.square), ("abs", ops.abs))}
                update_sparse.append(flat_sparse)
            for k in alone:
                v, t = params[k]
                update_g.append(grads[k])
                update_p.append(t)
                update_s.append({sname: g.add_input(f"{v.path}/{sname}", v.dtype, v.shape) for sname in slot_names})
                update_sparse.append(sparse[k])
            new_p, new_s, new_glob = optimizer.apply(update_g, update_p, update_s, glob, lr, it, clip=not packs,
                                                     sparse=update_sparse)
            own = 0
            if packed:
                pieces = g.emit("Split", [new_p[0], g.constant(np.array([sizes[k] for k in packed], np.int64))],
                                {"axis": 0}, [(dtype, (sizes[k],)) for k in packed])
                for k, piece in zip(packed, pieces):
                    v = params[k][0]
                    written[id(v)] = ops.reshape(piece, v.shape) if len(v.shape) != 1 else piece
                for sname, tin in update_s[0].items():
                    written_state(StateSlot(("sf", sname), tin.name, None, dtype, (total_size,)), new_s[0][sname])
                flat_layout = [(id(params[k][0]), sizes[k]) for k in packed]
                own = 1
            for k, p, slots, news in zip(alone, new_p[own:], update_s[own:], new_s[own:]):
                v = params[k][0]
                written[id(v)] = ops.cast(p, v.dtype)
                for sname, tin in slots.items():
                    written_state(StateSlot(("s", id(v), sname), tin.name, None, v.dtype, v.shape), news[sname])
            for k, tin in glob.items():
                written_state(StateSlot(("g", k), tin.name, None, "float32", ()), ops.cast(new_glob[k], "float32"))
            # Keras applies each weight's constraint to its value right after the optimizer's update.
            for v, _ in params:
                if getattr(v, "constraint", None) is not None and id(v) in written:
                    written[id(v)] = ops.cast(v.constraint(written[id(v)]), v.dtype)
            for var, value in getattr(g, "state_updates", []) or []:
                written[id(var)] = ops.cast(value, var.dtype)
        for v, t in g.variable_inputs:
            slot = StateSlot(("w", id(v)), t.name, None, v.dtype, v.shape)
            if id(v) in written:
                written_state(slot, written[id(v)])
            else:
                state.append(slot)  # read, never written
    # Outputs keep their tensors' own names where they can, which saves an Identity node per output.
    used = set()
    graph_in = {t.name for t in g.inputs} | set(g.initializers)
    for k, t in enumerate(outputs):
        if t.name not in used and t.name not in graph_in:
            out_names[k] = t.name
        used.add(out_names[k])
    for slot in state:
        if slot.output_name is not None:
            slot.output_name = out_names[int(slot.output_name.split("_")[-1])]
    widen_scalars(g)  # () scalars against (..., 1) tensors: ONNX Runtime's slow broadcasting path
    g.set_outputs(outputs, out_names)
    standard = g.to_model()
    # Weights are inputs here, so ONNX Runtime leaves the convolutions in its slow layout (see blocked_conv).
    blocked = device == "cpu" and block_convolutions(g)
    model_proto = g.to_model() if blocked else standard
    if blocked:
        declare_nchwc_domain(model_proto)
    n_res = len(result_tensors)
    # On a GPU the Dropout kernel is fast and fed bits would cross the bus every step. ONNX's shape inference does
    # not know the blocked ops, so the sizes come from the standard graph (the same tensor names).
    dropout_bits = feed_bits_to_dropouts(model_proto, shapes_of=standard) if train and device == "cpu" else []
    return StepProgram(
        model_proto=model_proto, x_inputs=x_inputs, y_inputs=y_inputs, sw_inputs=sw_inputs, lr_input=lr_name,
        iterations_input=it_name, state=state, results=results, result_names=out_names[:n_res],
        result_shapes=[tuple(t.shape) for t in result_tensors], flat_layout=flat_layout, layer_metrics=layer_metrics,
        macs_per_sample=macs, dropout_bits=dropout_bits)


def forward_macs(g) -> float:
    """Multiply-adds per sample of `g`'s matrix products and convolutions, from the shapes known when the graph is
    built (unknown sizes, the batch among them, count as 1). A convolution applies its kernel at every output
    position, so this, not the weight count, says how much work a step holds."""
    total = 0.0
    for n in g.nodes:
        if n.op_type not in ("MatMul", "Gemm", "Conv", "ConvTranspose") or n.domain:
            continue
        a, b, y = g.values.get(n.inputs[0]), g.values.get(n.inputs[1]), g.values.get(n.outputs[0])
        if a is None or b is None or y is None:
            continue
        if n.op_type == "Conv":
            per_output, outputs = b.shape[1:], y.shape
        elif n.op_type == "ConvTranspose":
            per_output, outputs = b.shape[1:], a.shape  # each input position meets the whole kernel
        else:
            transposed = n.op_type == "Gemm" and n.attrs.get("transA", 0)
            per_output, outputs = (a.shape[-2] if transposed else a.shape[-1],), y.shape
        total += float(np.prod([d or 1 for d in per_output])) * float(np.prod([d or 1 for d in outputs]))
    return total


def _gradients_and_sparse_parts(g, loss, params, dense_from_rows=False):
    """Gradients of `loss` for `params`; and for weights read only by Gather (embeddings), what Keras's sparse
    update uses instead of the summed row gradient: the per-row sums of each lookup's squared and absolute
    gradient ({"square": ..., "abs": ...}; None for other weights).

    A recurrent layer may look rows up in the projected table E·W (+ b) instead of projecting the rows of E (see
    `core.layers.recurrent`); each lookup's gradient for the rows of E is then dY·Wᵀ. Those per-lookup rows cost
    (lookups x units x features) multiply-adds, several times the table's own dP·Wᵀ, so they are made only for an
    optimizer that reads them (`dense_from_rows`); E's gradient is then their scatter, not dP·Wᵀ as well."""
    readers: dict[str, list] = {}
    for n in g.nodes:
        for i in n.inputs:
            readers.setdefault(i, []).append(n)
    lookups = {}  # param name -> [(Gather node, W or None)]
    for t in params:
        found = _row_lookups(t.name, readers)
        if found:
            lookups[t.name] = found
    from_rows = {name for name, found in lookups.items()
                 if dense_from_rows and any(w is not None for _, w in found)}
    extra = [n.outputs[0] for found in lookups.values() for n, _ in found]
    with graph_scope(g):
        seed = g.constant(np.array(1.0, dtype=loss.dtype), loss.dtype)
    found = backprop(g, list(g.nodes), {loss.name: seed}, [t.name for t in params if t.name not in from_rows] + extra)
    producers = {n.outputs[0]: n for n in g.nodes if n.op_type == "Gather"}
    grads, sparse = [], []
    with graph_scope(g):
        for t in params:
            rows = _lookup_row_gradients(g, found, lookups.get(t.name, []), producers)
            parts = dense = None
            for key, dy in rows.items():
                n = producers[key]
                ids = g.values[n.inputs[1]]
                xs = [t, ids]
                ys = [SymbolicTensor(g, n.outputs[0], t.dtype, tuple(ids.shape) + tuple(t.shape[1:]))]
                new = {kind: RULES["Gather"](g, n, xs, ys, [fn(dy)])[0]
                       for kind, fn in (("square", ops.square), ("abs", ops.abs))}
                parts = new if parts is None else {k: ops.add(parts[k], new[k]) for k in parts}
                if t.name in from_rows:
                    scattered = RULES["Gather"](g, n, xs, ys, [dy])[0]
                    dense = scattered if dense is None else ops.add(dense, scattered)
            grad = dense if t.name in from_rows else found.get(t.name)
            grads.append(grad if grad is not None else ops.zeros_like(t))
            sparse.append(parts)
    return grads, sparse


def _lookup_row_gradients(g, found, lookups, producers):
    """Each lookup's row gradients, {Gather node output: dY}. A lookup into the projected table E·W (+ b) gives
    E's rows as dY·Wᵀ; it stands for the original lookup E[ids] it replaced, whose ids it reads transposed
    (time-major). Keras squares each original lookup's summed row gradient, so where several values stand for one
    original (the original's own rows are read elsewhere too, or a Bidirectional layer's two directions) they are
    added in the original's layout; a projected lookup that stands alone keeps its own layout and ids, which saves
    transposing its rows."""
    rows: dict[str, object] = {}
    for n, w in lookups:
        dy = found.get(n.outputs[0])
        if dy is None:
            continue
        if w is not None:
            dy = ops.matmul(dy, ops.transpose(g.values[w]))
        rows[n.outputs[0]] = dy
    stands_for: dict[str, list] = {}  # original lookup -> the projected lookups with rows that replaced it
    for n, w in lookups:
        original = g.folded_lookups.get(n.outputs[0])
        if w is not None and n.outputs[0] in rows and original in producers:
            stands_for.setdefault(original, []).append(n.outputs[0])
    for original, projected in stands_for.items():
        if len(projected) == 1 and original not in rows:
            continue
        for name in projected:
            dy = rows.pop(name)
            dy = ops.transpose(dy, (1, 0) + tuple(range(2, dy.ndim)))
            rows[original] = dy if original not in rows else ops.add(rows[original], dy)
    return rows


def _row_lookups(name, readers):
    """How tensor `name` (a 2-D table) is read, if only by row lookups: [(Gather node, None)] for direct lookups,
    [(Gather node, W)] for lookups into the projected table name·W (+ a bias); else None."""
    def gathers_of(value):
        nodes = readers.get(value, [])
        if nodes and all(is_row_lookup(n) and n.inputs[0] == value for n in nodes):
            return nodes
        return None

    out = []
    for n in readers.get(name, []):
        if n.op_type == "Gather":
            if n.inputs[0] != name or not is_row_lookup(n):
                return None
            out.append((n, None))
        elif n.op_type == "MatMul" and n.inputs[0] == name:
            projected = n.outputs[0]
            after = readers.get(projected, [])
            if len(after) == 1 and after[0].op_type == "Add" and projected in after[0].inputs:
                projected = after[0].outputs[0]  # the bias
            nodes = gathers_of(projected)
            if nodes is None:
                return None
            out += [(m, n.inputs[1]) for m in nodes]
        else:
            return None
    return out or None


def _weights_for(values, sw):
    """The sample weights averaged down to the rank of a loss's values (a custom loss may give one value per sample
    of a sequence output; its per-timestep weights are then broadcast per-sample ones, or per-timestep ones)."""
    if sw.ndim > values.ndim:
        return ops.mean(sw, axis=list(range(values.ndim, sw.ndim)))
    return sw


def _output_mask(g, out):
    """The Keras mask of a model output (outputs renamed through Identity keep it on the tensor they copy)."""
    mask = output_mask(out)
    if mask is None:
        for n in g.nodes:
            if n.op_type == "Identity" and n.outputs[0] == out.name:
                mask = output_mask(g.values.get(n.inputs[0]))
                break
    return mask

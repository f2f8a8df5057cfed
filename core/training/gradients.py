"""One reverse-mode rule per ONNX op type.

Standard ONNX Runtime has no gradient kernels (DESIGN.md §3), so each rule writes the vector-Jacobian product of its
op with standard ops into the same graph. A rule gets the node, its input and output tensors and the gradients that
reached its outputs (None where none did) and returns one gradient per input (None for inputs that take none).

Shapes are dynamic on the batch axis, so anything that depends on a runtime size goes through `Shape` ops.
Layers that emit an op without a rule here can register one with `register_gradient(op_type)`.
"""

from __future__ import annotations

import numpy as np

from core import ops
from core.errors import NetweaverError
from core.graph import GraphBuilder, OpNode, SymbolicTensor


class GradientError(NetweaverError, ValueError):
    """The model uses an op that training cannot differentiate."""


RULES: dict = {}

# Ops whose outputs carry no gradient (integer results, comparisons, shapes, random draws).
NON_DIFFERENTIABLE = {
    "Shape", "Size", "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "Not", "And", "Or", "Xor",
    "ArgMax", "ArgMin", "NonZero", "ConstantOfShape", "Range", "OneHot", "RandomUniformLike", "RandomNormalLike",
    "RandomUniform", "RandomNormal", "Constant", "Sign", "Floor", "Ceil", "Round", "IsNaN", "IsInf",
}


def register_gradient(op_type: str):
    """Register `fn(g, node, inputs, outputs, grads) -> [grad or None per input]` as the rule of `op_type`."""

    def deco(fn):
        RULES[op_type] = fn
        return fn

    return deco


# -- helpers --------------------------------------------------------------------------------------------------------
def _i64(g: GraphBuilder, values) -> SymbolicTensor:
    return g.constant(np.asarray(values, dtype=np.int64))


def shape_of(x: SymbolicTensor) -> SymbolicTensor:
    return x.graph.emit("Shape", [x], {}, [("int64", (x.ndim,))])[0]


def const_value(g: GraphBuilder, t: SymbolicTensor | None):
    """The value of a constant input (an initializer or a Constant node), or None when it is computed."""
    if t is None:
        return None
    if t.name in g.initializers:
        return np.asarray(g.initializers[t.name])
    for n in g.nodes:
        if n.op_type == "Constant" and n.outputs[0] == t.name:
            from onnx import numpy_helper

            return numpy_helper.to_array(n.attrs["value"])
    return None


def unbroadcast(grad: SymbolicTensor, target: SymbolicTensor) -> SymbolicTensor:
    """Sum `grad` over the axes along which `target` was broadcast, so it gets `target`'s shape."""
    g = grad.graph
    gs, ts = grad.shape, target.shape
    lead = len(gs) - len(ts)
    static = True
    axes = list(range(lead))
    batch = getattr(g, "batch_axis", 0)
    for i, d in enumerate(ts):
        gd = gs[lead + i]
        if d == gd and (d is not None or (lead == 0 and i == batch and None not in ts[:i])):
            # Equal known sizes; or the batch axis of two tensors of the same rank, which is never broadcast
            # (a tensor made from the data has the whole batch there; a broadcast one has a static 1).
            continue
        if d == 1:
            if gd != 1:
                axes.append(lead + i)
        elif d is None or gd is None:
            static = False  # an unknown size on one side: decide at run time
    if static:
        out = grad
        kept = [a for a in axes if a >= lead]
        summed = sorted(axes)
        rest = gs[len(summed):]
        if summed and summed == list(range(len(summed))) and all(d is not None for d in rest) and grad.ndim > 1 \
                and grad.dtype in ("float32", "float64"):
            return _sum_leading(grad, len(summed), ts)
        if kept:
            out = g.emit("ReduceSum", [out, _i64(g, kept)], {"keepdims": 1},
                         [(out.dtype, tuple(1 if i in kept else d for i, d in enumerate(out.shape)))])[0]
        if lead:
            out = g.emit("ReduceSum", [out, _i64(g, list(range(lead)))], {"keepdims": 0},
                         [(out.dtype, out.shape[lead:])])[0]
        return out
    gshape = shape_of(grad)
    tshape = shape_of(target)
    padded = g.emit("Concat", [_i64(g, [1] * lead), tshape], {"axis": 0}, [("int64", (len(gs),))])[0] \
        if lead else tshape
    differs = g.emit("Not", [g.emit("Equal", [gshape, padded], {}, [("bool", (len(gs),))])[0]], {},
                     [("bool", (len(gs),))])[0]
    where = g.emit("NonZero", [differs], {}, [("int64", (1, None))])[0]
    axes_t = g.emit("Reshape", [where, _i64(g, [-1])], {}, [("int64", (None,))])[0]
    red = g.emit("ReduceSum", [grad, axes_t], {"keepdims": 1, "noop_with_empty_axes": 1},
                 [(grad.dtype, tuple(None for _ in gs))])[0]
    return g.emit("Reshape", [red, tshape], {}, [(grad.dtype, ts)])[0]


def _sum_leading(grad: SymbolicTensor, count: int, shape) -> SymbolicTensor:
    """grad summed over its first `count` axes, reshaped to `shape`: a row of ones times grad as (rows, rest),
    the bias gradient's form. ONNX Runtime's ReduceSum over leading axes is 3x slower on one thread and 8x on two
    (0.17 and 0.5 against 0.06 ms for a Conv1D's (128, 288, 32) output gradient, measured in turns).

    Images are the exception: ONNX Runtime runs a 2-D convolution's output gradient channels-first, and a ReduceSum
    lets its layout optimizer sum that tensor where it is, where the product needs it transposed back first (1.05
    and 0.64 ms for the keras-io MNIST convnet's two layers). With ReduceSum for rank 4 and up that model trains
    1.07x as fast (median of 6 rounds in turns, 1.01-1.18); the Conv1D classifier was 0.96x with it, so sequences
    keep the product."""
    from onnx import numpy_helper

    g = grad.graph
    if grad.ndim >= 4:
        total = g.emit("ReduceSum", [grad, _i64(g, list(range(count)))], {"keepdims": 0},
                       [(grad.dtype, tuple(grad.shape[count:]))])[0]
        return g.emit("Reshape", [total, _i64(g, [1 if d is None else d for d in shape])], {},
                      [(grad.dtype, shape)])[0]
    width = int(np.prod(grad.shape[count:]))
    flat = g.emit("Reshape", [grad, _i64(g, [-1, width])], {}, [(grad.dtype, (None, width))])[0]
    rows = g.emit("Slice", [shape_of(flat), _i64(g, [0]), _i64(g, [1])], {}, [("int64", (1,))])[0]
    ones_shape = g.emit("Concat", [_i64(g, [1]), rows], {"axis": 0}, [("int64", (2,))])[0]
    ones = g.emit("ConstantOfShape", [ones_shape], {"value": numpy_helper.from_array(np.ones(1, grad.dtype))},
                  [(grad.dtype, (1, None))])[0]
    total = g.emit("MatMul", [ones, flat], {}, [(grad.dtype, (1, width))])[0]
    return g.emit("Reshape", [total, _i64(g, [1 if d is None else d for d in shape])], {}, [(grad.dtype, shape)])[0]


def _reshape_like(dy: SymbolicTensor, x: SymbolicTensor) -> SymbolicTensor:
    return dy.graph.emit("Reshape", [dy, shape_of(x)], {}, [(dy.dtype, x.shape)])[0]


def _zero(g, dtype):
    return g.constant(np.array(0, dtype=dtype))


def _one(g, dtype):
    return g.constant(np.array(1, dtype=dtype))


def _reduce_axes(g, node, x):
    """The axes a Reduce* node reduced (all of them when none were given), as a sorted list or None if dynamic."""
    if len(node.inputs) > 1 and node.inputs[1]:
        v = const_value(g, g.values[node.inputs[1]])
        if v is None:
            return None
        return sorted(int(a) % x.ndim for a in np.atleast_1d(v))
    if "axes" in node.attrs:
        return sorted(int(a) % x.ndim for a in node.attrs["axes"])
    return list(range(x.ndim))


def _expand_reduced(g, node, x, dy):
    """Bring the gradient of a reduction back to x's rank (with 1s on the reduced axes)."""
    axes = _reduce_axes(g, node, x)
    if axes is None:
        raise GradientError(f"Cannot differentiate {node.op_type} over axes computed at run time.")
    if not node.attrs.get("keepdims", 1) and axes:
        shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        dy = g.emit("Unsqueeze", [dy, _i64(g, axes)], {}, [(dy.dtype, shape)])[0]
    return dy, axes


# -- elementwise arithmetic -----------------------------------------------------------------------------------------
@register_gradient("Add")
def _add(g, node, xs, ys, dys):
    dy = dys[0]
    return [unbroadcast(dy, xs[0]), unbroadcast(dy, xs[1])]


@register_gradient("Sub")
def _sub(g, node, xs, ys, dys):
    dy = dys[0]
    return [unbroadcast(dy, xs[0]), unbroadcast(ops.negative(dy), xs[1])]


@register_gradient("Mul")
def _mul(g, node, xs, ys, dys):
    a, b = xs
    dy = dys[0]
    return [unbroadcast(ops.multiply(dy, b), a), unbroadcast(ops.multiply(dy, a), b)]


@register_gradient("Div")
def _div(g, node, xs, ys, dys):
    a, b = xs
    dy = dys[0]
    return [unbroadcast(ops.divide(dy, b), a),
            unbroadcast(ops.negative(ops.divide(ops.multiply(dy, ys[0]), b)), b)]


@register_gradient("Neg")
def _neg(g, node, xs, ys, dys):
    return [ops.negative(dys[0])]


@register_gradient("Pow")
def _pow(g, node, xs, ys, dys):
    a, b = xs
    dy = dys[0]
    bb = b if b.dtype == a.dtype else ops.cast(b, a.dtype)
    da = ops.multiply(dy, ops.multiply(bb, ops.power(a, ops.subtract(bb, 1.0))))
    db = None
    if b.dtype.startswith("float") and const_value(g, b) is None:
        safe = ops.where(ops.greater(a, 0.0), a, ops.ones_like(a))
        db = unbroadcast(ops.multiply(dy, ops.multiply(ys[0], ops.log(safe))), b)
    return [unbroadcast(da, a), db]


@register_gradient("Max")
@register_gradient("Min")
def _maxmin(g, node, xs, ys, dys):
    dy = dys[0]
    if len(xs) == 1:
        return [dy]
    if len(xs) != 2:
        raise GradientError(f"{node.op_type} with {len(xs)} inputs has no gradient rule (only 1 or 2).")
    a, b = xs
    pick_a = ops.greater_equal(a, b) if node.op_type == "Max" else ops.less_equal(a, b)
    zero = _zero(g, dy.dtype)
    return [unbroadcast(ops.where(pick_a, dy, zero), a), unbroadcast(ops.where(pick_a, zero, dy), b)]


@register_gradient("Where")
def _where(g, node, xs, ys, dys):
    c, a, b = xs
    dy = dys[0]
    zero = _zero(g, dy.dtype)
    return [None, unbroadcast(ops.where(c, dy, zero), a), unbroadcast(ops.where(c, zero, dy), b)]


@register_gradient("Sum")
def _sum(g, node, xs, ys, dys):
    return [unbroadcast(dys[0], x) for x in xs]


@register_gradient("Mean")
def _mean(g, node, xs, ys, dys):
    scaled = ops.divide(dys[0], float(len(xs)))
    return [unbroadcast(scaled, x) for x in xs]


# -- unary math -------------------------------------------------------------------------------------------------------
@register_gradient("Identity")
def _identity(g, node, xs, ys, dys):
    return [dys[0]]


@register_gradient("Cast")
def _cast(g, node, xs, ys, dys):
    if not xs[0].dtype.startswith("float"):
        return [None]
    return [ops.cast(dys[0], xs[0].dtype)]


@register_gradient("Relu")
def _relu(g, node, xs, ys, dys):
    # dy times the 0/1 mask: ONNX Runtime's Where is 1.5x slower than Cast and Mul (1.06 against 0.67 ms on a
    # (128, 288, 32) Conv1D output, measured in turns). The same as TensorFlow's select for finite dy.
    return [ops.multiply(dys[0], ops.cast(ops.greater(xs[0], 0.0), dys[0].dtype))]


@register_gradient("Sigmoid")
def _sigmoid(g, node, xs, ys, dys):
    y = ys[0]
    return [ops.multiply(dys[0], ops.multiply(y, ops.subtract(1.0, y)))]


@register_gradient("Tanh")
def _tanh(g, node, xs, ys, dys):
    y = ys[0]
    return [ops.multiply(dys[0], ops.subtract(1.0, ops.multiply(y, y)))]


@register_gradient("Exp")
def _exp(g, node, xs, ys, dys):
    return [ops.multiply(dys[0], ys[0])]


@register_gradient("Log")
def _log(g, node, xs, ys, dys):
    return [ops.divide(dys[0], xs[0])]


@register_gradient("Sqrt")
def _sqrt(g, node, xs, ys, dys):
    return [ops.divide(ops.multiply(dys[0], 0.5), ys[0])]


@register_gradient("Reciprocal")
def _reciprocal(g, node, xs, ys, dys):
    y = ys[0]
    return [ops.negative(ops.multiply(dys[0], ops.multiply(y, y)))]


@register_gradient("Abs")
def _abs(g, node, xs, ys, dys):
    return [ops.multiply(dys[0], ops.sign(xs[0]))]


@register_gradient("Sin")
def _sin(g, node, xs, ys, dys):
    return [ops.multiply(dys[0], ops.cos(xs[0]))]


@register_gradient("Cos")
def _cos(g, node, xs, ys, dys):
    return [ops.negative(ops.multiply(dys[0], ops.sin(xs[0])))]


@register_gradient("Erf")
def _erf(g, node, xs, ys, dys):
    x = xs[0]
    coef = float(2.0 / np.sqrt(np.pi))
    return [ops.multiply(dys[0], ops.multiply(coef, ops.exp(ops.negative(ops.multiply(x, x)))))]


@register_gradient("Softplus")
def _softplus(g, node, xs, ys, dys):
    return [ops.multiply(dys[0], ops.sigmoid(xs[0]))]


@register_gradient("Softsign")
def _softsign(g, node, xs, ys, dys):
    d = ops.add(1.0, ops.abs(xs[0]))
    return [ops.divide(dys[0], ops.multiply(d, d))]


@register_gradient("Elu")
def _elu(g, node, xs, ys, dys):
    alpha = float(node.attrs.get("alpha", 1.0))
    x, y, dy = xs[0], ys[0], dys[0]
    return [ops.where(ops.greater(x, 0.0), dy, ops.multiply(dy, ops.add(y, alpha)))]


@register_gradient("Selu")
def _selu(g, node, xs, ys, dys):
    alpha = float(node.attrs.get("alpha", 1.67326319217681884765625))
    gamma = float(node.attrs.get("gamma", 1.05070102214813232421875))
    x, y, dy = xs[0], ys[0], dys[0]
    return [ops.where(ops.greater(x, 0.0), ops.multiply(dy, gamma), ops.multiply(dy, ops.add(y, gamma * alpha)))]


@register_gradient("LeakyRelu")
def _leaky_relu(g, node, xs, ys, dys):
    alpha = float(node.attrs.get("alpha", 0.01))
    return [ops.where(ops.greater(xs[0], 0.0), dys[0], ops.multiply(dys[0], alpha))]


@register_gradient("HardSigmoid")
def _hard_sigmoid(g, node, xs, ys, dys):
    alpha = float(node.attrs.get("alpha", 0.2))
    beta = float(node.attrs.get("beta", 0.5))
    z = ops.add(ops.multiply(xs[0], alpha), beta)
    inside = ops.logical_and(ops.greater(z, 0.0), ops.less(z, 1.0))
    return [ops.where(inside, ops.multiply(dys[0], alpha), _zero(g, dys[0].dtype))]


@register_gradient("Clip")
def _clip(g, node, xs, ys, dys):
    x, dy = xs[0], dys[0]
    keep = None
    if len(xs) > 1 and xs[1] is not None:
        keep = ops.greater_equal(x, xs[1])
    if len(xs) > 2 and xs[2] is not None:
        hi = ops.less_equal(x, xs[2])
        keep = hi if keep is None else ops.logical_and(keep, hi)
    if keep is None:
        return [dy]
    return [ops.where(keep, dy, _zero(g, dy.dtype))] + [None] * (len(xs) - 1)


@register_gradient("Softmax")
def _softmax(g, node, xs, ys, dys):
    axis = int(node.attrs.get("axis", -1))
    y, dy = ys[0], dys[0]
    inner = ops.sum(ops.multiply(dy, y), axis=axis, keepdims=True)
    return [ops.multiply(y, ops.subtract(dy, inner))]


@register_gradient("LogSoftmax")
def _log_softmax(g, node, xs, ys, dys):
    axis = int(node.attrs.get("axis", -1))
    y, dy = ys[0], dys[0]
    return [ops.subtract(dy, ops.multiply(ops.exp(y), ops.sum(dy, axis=axis, keepdims=True)))]


@register_gradient("Dropout")
def _dropout(g, node, xs, ys, dys):
    dy = dys[0]
    if len(ys) < 2:
        raise GradientError("Dropout needs its mask output for the gradient (autodiff adds it).")
    mask = ops.cast(ys[1], dy.dtype)
    training = len(xs) > 2 and xs[2] is not None and bool(np.asarray(const_value(g, xs[2]) or False))
    if not training:
        return [dy] + [None] * (len(xs) - 1)
    ratio = xs[1] if len(xs) > 1 and xs[1] is not None else g.constant(np.array(0.5, dtype=dy.dtype))
    scale = ops.divide(_one(g, dy.dtype), ops.subtract(_one(g, dy.dtype), ops.cast(ratio, dy.dtype)))
    return [ops.multiply(ops.multiply(dy, mask), scale)] + [None] * (len(xs) - 1)


# -- matrix products ----------------------------------------------------------------------------------------------
def _swap_last(t):
    perm = list(range(t.ndim))
    perm[-1], perm[-2] = perm[-2], perm[-1]
    return ops.transpose(t, perm)


@register_gradient("MatMul")
def _matmul(g, node, xs, ys, dys):
    a, b = xs
    dy = dys[0]
    if a.ndim < 2 or b.ndim < 2:
        raise GradientError("MatMul gradients need inputs of rank 2 or more.")
    if a.ndim == 2 and b.ndim == 2:
        # Gemm transposes an operand as it reads it: no Transpose node (inside a Scan one would run every step).
        da = g.emit("Gemm", [dy, b], {"transB": 1}, [(dy.dtype, a.shape)])[0]
        db = g.emit("Gemm", [a, dy], {"transA": 1}, [(dy.dtype, b.shape)])[0]
        return [da, db]
    if b.ndim == 2 and a.ndim > 2:
        # A Dense layer on a sequence: fold the leading axes into one large product for dB.
        k, n = b.shape
        a2 = ops.reshape(a, (-1, k if k is not None else a.shape[-1]))
        dy2 = ops.reshape(dy, (-1, n if n is not None else dy.shape[-1]))
        db = ops.matmul(ops.transpose(a2), dy2)
        da = ops.matmul(dy, ops.transpose(b))
        return [da, db]
    da = unbroadcast(ops.matmul(dy, _swap_last(b)), a)
    db = unbroadcast(ops.matmul(_swap_last(a), dy), b)
    return [da, db]


# -- shapes -----------------------------------------------------------------------------------------------------------
@register_gradient("Reshape")
@register_gradient("Flatten")
@register_gradient("Squeeze")
@register_gradient("Unsqueeze")
def _reshape(g, node, xs, ys, dys):
    return [_reshape_like(dys[0], xs[0])] + [None] * (len(xs) - 1)


@register_gradient("Expand")
def _expand(g, node, xs, ys, dys):
    return [unbroadcast(dys[0], xs[0]), None]


@register_gradient("Transpose")
def _transpose(g, node, xs, ys, dys):
    perm = node.attrs.get("perm") or list(reversed(range(xs[0].ndim)))
    inv = list(np.argsort(perm))
    return [ops.transpose(dys[0], inv)]


@register_gradient("Concat")
def _concat(g, node, xs, ys, dys):
    axis = int(node.attrs["axis"]) % ys[0].ndim
    dy = dys[0]
    sizes = [x.shape[axis] for x in xs]
    if all(s is not None for s in sizes):
        outs = g.emit("Split", [dy, _i64(g, sizes)], {"axis": axis},
                      [(dy.dtype, x.shape) for x in xs])
        return list(outs)
    grads = []
    start = _i64(g, [0])
    for x in xs:
        size = g.emit("Slice", [shape_of(x), _i64(g, [axis]), _i64(g, [axis + 1])], {}, [("int64", (1,))])[0]
        end = g.emit("Add", [start, size], {}, [("int64", (1,))])[0]
        grads.append(g.emit("Slice", [dy, start, end, _i64(g, [axis])], {}, [(dy.dtype, x.shape)])[0])
        start = end
    return grads


@register_gradient("Split")
def _split(g, node, xs, ys, dys):
    axis = int(node.attrs.get("axis", 0))
    parts = [dy if dy is not None else ops.zeros_like(y) for y, dy in zip(ys, dys)]
    return [ops.concatenate(parts, axis=axis)] + [None] * (len(xs) - 1)


def _scatter_axis(dy, x_dim, positions, axis):
    """Place `dy`'s slices along `axis` at `positions` of an axis of size `x_dim` (zeros elsewhere)."""
    g = dy.graph
    nd = dy.ndim
    perm = [axis] + [i for i in range(nd) if i != axis]
    dyt = ops.transpose(dy, perm) if axis else dy
    rest = g.emit("Slice", [shape_of(dyt), _i64(g, [1]), _i64(g, [nd])], {}, [("int64", (nd - 1,))])[0]
    zshape = g.emit("Concat", [x_dim, rest], {"axis": 0}, [("int64", (nd,))])[0]
    zeros = g.emit("ConstantOfShape", [zshape], {"value": _tensor_attr(np.zeros(1, dtype=dy.dtype))},
                   [(dy.dtype, (None,) + dyt.shape[1:])])[0]
    idx = g.emit("Unsqueeze", [positions, _i64(g, [-1])], {}, [("int64", positions.shape + (1,))])[0]
    out = g.emit("ScatterND", [zeros, idx, dyt], {}, [(dy.dtype, zeros.shape)])[0]
    if axis:
        out = ops.transpose(out, list(np.argsort(perm)))
    return out


def _tensor_attr(arr):
    from onnx import numpy_helper

    return numpy_helper.from_array(arr)


@register_gradient("Slice")
def _slice(g, node, xs, ys, dys):
    x = xs[0]
    starts, ends = xs[1], xs[2]
    axes_v = const_value(g, xs[3]) if len(xs) > 3 and xs[3] is not None else np.arange(x.ndim)
    if axes_v is None:
        raise GradientError("Cannot differentiate a Slice whose axes are computed at run time.")
    axes_v = [int(a) % x.ndim for a in np.atleast_1d(axes_v)]
    steps = xs[4] if len(xs) > 4 and xs[4] is not None else _i64(g, [1] * len(axes_v))
    dy = dys[0]
    consts = [const_value(g, t) for t in (starts, ends, steps)]
    if _reverses_whole_axes(consts):
        # A flip (ops.flip: every reversed recurrence, a Bidirectional layer's backward outputs) is its own
        # adjoint: flip dy back instead of scattering it position by position into zeros.
        return [g.emit("Slice", [dy, starts, ends, xs[3], steps], {}, [(dy.dtype, x.shape)])[0]] + \
            [None] * (len(xs) - 1)
    padded = _slice_as_pad(g, x, dy, axes_v, consts)
    if padded is not None:
        return [padded] + [None] * (len(xs) - 1)
    xshape = shape_of(x)
    for k, axis in enumerate(axes_v):
        pick = _i64(g, [k])
        dim = g.emit("Gather", [xshape, _i64(g, [axis])], {"axis": 0}, [("int64", (1,))])[0]
        dim_s = g.emit("Squeeze", [dim, _i64(g, [0])], {}, [("int64", ())])[0]
        positions = g.emit("Range", [_zero(g, "int64"), dim_s, _one(g, "int64")], {}, [("int64", (None,))])[0]
        sl = [g.emit("Gather", [t, pick], {"axis": 0}, [("int64", (1,))])[0] for t in (starts, ends, steps)]
        positions = g.emit("Slice", [positions, sl[0], sl[1], _i64(g, [0]), sl[2]], {}, [("int64", (None,))])[0]
        dy = _scatter_axis(dy, dim, positions, axis)
    return [_reshape_like(dy, x)] + [None] * (len(xs) - 1)


def _reverses_whole_axes(consts) -> bool:
    """Whether constant Slice bounds read every sliced axis whole, last element first (step -1 from the end to
    past the start, whatever the axis's length)."""
    if any(c is None for c in consts):
        return False
    starts, ends, steps = (np.atleast_1d(c).tolist() for c in consts)
    far = 2 ** 62  # Slice clamps bounds to the axis; bounds this far out cover any length
    return all(int(step) == -1 and (int(st) == -1 or int(st) >= far) and int(en) <= -far
               for st, en, step in zip(starts, ends, steps))


def _slice_as_pad(g, x, dy, axes, consts):
    """A forward slice with constant bounds and positive steps over axes of known size: its gradient is dy with
    zeros between the positions a step skipped (`_spread`), then one Pad of zeros into place (an LSTM's gate slices
    hit this every time step, a strided convolution's windows once per kernel offset)."""
    if any(c is None for c in consts):
        return None
    starts, ends, steps = (np.atleast_1d(c).tolist() for c in consts)
    if any(int(st) < 1 for st in steps) or any(x.shape[a] is None for a in axes):
        return None
    begin, end = [0] * x.ndim, [0] * x.ndim
    for a, st, en, step in zip(axes, starts, ends, steps):
        span = range(*slice(int(st), int(en), int(step)).indices(x.shape[a]))
        if not len(span):
            return None
        if span.step > 1 and len(span) > 1:
            dy = _spread(g, dy, a, len(span), span.step)
        begin[a] = span.start
        end[a] = x.shape[a] - span.start - (len(span) - 1) * span.step - 1
    zero = g.constant(np.array(0, dtype=dy.dtype), dy.dtype)
    return g.emit("Pad", [dy, _i64(g, begin + end), zero], {"mode": "constant"}, [(dy.dtype, x.shape)])[0]


def _spread(g, dy, axis, n, step):
    """dy (n positions along `axis`) with step - 1 zeros after each position but the last: (n - 1) * step + 1."""
    nd = dy.ndim
    wide = dy.shape[:axis] + (n * step,) + dy.shape[axis + 1:]
    up = g.emit("Unsqueeze", [dy, _i64(g, [axis + 1])], {},
                [(dy.dtype, dy.shape[:axis] + (n, 1) + dy.shape[axis + 1:])])[0]
    pads = [0] * (2 * (nd + 1))
    pads[nd + 1 + axis + 1] = step - 1
    gaps = g.emit("Pad", [up, _i64(g, pads)], {"mode": "constant"},
                  [(dy.dtype, dy.shape[:axis] + (n, step) + dy.shape[axis + 1:])])[0]
    # Reshape's 0 keeps a leading axis's size; the axes after the merged one are read from dy's shape.
    target = _i64(g, [0] * axis + [-1])
    if axis + 1 < nd:
        tail = g.emit("Slice", [shape_of(dy), _i64(g, [axis + 1]), _i64(g, [nd])], {},
                      [("int64", (nd - axis - 1,))])[0]
        target = g.emit("Concat", [target, tail], {"axis": 0}, [("int64", (nd,))])[0]
    merged = g.emit("Reshape", [gaps, target], {}, [(dy.dtype, wide)])[0]
    return g.emit("Slice", [merged, _i64(g, [0]), _i64(g, [(n - 1) * step + 1]), _i64(g, [axis])], {},
                  [(dy.dtype, dy.shape[:axis] + ((n - 1) * step + 1,) + dy.shape[axis + 1:])])[0]


@register_gradient("Gather")
def _gather(g, node, xs, ys, dys):
    data, idx = xs
    dy = dys[0]
    axis = int(node.attrs.get("axis", 0)) % data.ndim
    dshape = shape_of(data)
    dim = g.emit("Gather", [dshape, _i64(g, [axis])], {"axis": 0}, [("int64", (1,))])[0]
    idx = ops.cast(idx, "int64")
    # Negative indices count from the end; ScatterND wants them non-negative.
    dim_s = g.emit("Squeeze", [dim, _i64(g, [0])], {}, [("int64", ())])[0]
    idx = ops.where(ops.less(idx, _zero(g, "int64")), ops.add(idx, dim_s), idx)
    ir = idx.ndim
    # Move the gathered (index) axes of dy to the front, and data's gathered axis likewise.
    perm = list(range(axis, axis + ir)) + list(range(axis)) + list(range(axis + ir, dy.ndim))
    dyt = ops.transpose(dy, perm) if perm != list(range(dy.ndim)) else dy
    dperm = [axis] + [i for i in range(data.ndim) if i != axis]
    zshape = g.emit("Gather", [dshape, _i64(g, dperm)], {"axis": 0}, [("int64", (data.ndim,))])[0]
    zeros = g.emit("ConstantOfShape", [zshape], {"value": _tensor_attr(np.zeros(1, dtype=dy.dtype))},
                   [(dy.dtype, tuple(data.shape[p] for p in dperm))])[0]
    idx_u = g.emit("Unsqueeze", [idx, _i64(g, [-1])], {}, [("int64", idx.shape + (1,))])[0]
    out = g.emit("ScatterND", [zeros, idx_u, dyt], {"reduction": "add"}, [(dy.dtype, zeros.shape)])[0]
    if axis:
        out = ops.transpose(out, list(np.argsort(dperm)))
    return [out, None]


@register_gradient("Tile")
def _tile(g, node, xs, ys, dys):
    x, reps = xs
    dy = dys[0]
    nd = x.ndim
    xs_shape = shape_of(x)
    pairs = g.emit("Concat", [g.emit("Unsqueeze", [reps, _i64(g, [1])], {}, [("int64", (nd, 1))])[0],
                              g.emit("Unsqueeze", [xs_shape, _i64(g, [1])], {}, [("int64", (nd, 1))])[0]],
                   {"axis": 1}, [("int64", (nd, 2))])[0]
    inter = g.emit("Reshape", [pairs, _i64(g, [-1])], {}, [("int64", (2 * nd,))])[0]
    split = g.emit("Reshape", [dy, inter], {}, [(dy.dtype, tuple(None for _ in range(2 * nd)))])[0]
    out = g.emit("ReduceSum", [split, _i64(g, list(range(0, 2 * nd, 2)))], {"keepdims": 0},
                 [(dy.dtype, x.shape)])[0]
    return [out, None]


@register_gradient("Pad")
def _pad(g, node, xs, ys, dys):
    mode = node.attrs.get("mode", "constant")
    if isinstance(mode, bytes):
        mode = mode.decode()
    if mode != "constant":
        raise GradientError(f"Pad mode '{mode}' has no gradient rule (only 'constant').")
    x, pads = xs[0], xs[1]
    if len(xs) > 3 and xs[3] is not None:
        raise GradientError("Pad with explicit axes has no gradient rule.")
    dy = dys[0]
    nd = x.ndim
    begin = g.emit("Slice", [pads, _i64(g, [0]), _i64(g, [nd])], {}, [("int64", (nd,))])[0]
    end_pad = g.emit("Slice", [pads, _i64(g, [nd]), _i64(g, [2 * nd])], {}, [("int64", (nd,))])[0]
    end = g.emit("Sub", [shape_of(dy), end_pad], {}, [("int64", (nd,))])[0]
    out = g.emit("Slice", [dy, begin, end, _i64(g, list(range(nd)))], {}, [(dy.dtype, x.shape)])[0]
    return [out] + [None] * (len(xs) - 1)


# -- reductions ---------------------------------------------------------------------------------------------------
@register_gradient("ReduceSum")
def _reduce_sum(g, node, xs, ys, dys):
    x = xs[0]
    dy, _ = _expand_reduced(g, node, x, dys[0])
    out = g.emit("Expand", [dy, shape_of(x)], {}, [(dy.dtype, x.shape)])[0]
    return [out] + [None] * (len(xs) - 1)


def _count(g, x, y, dtype):
    nx = g.emit("ReduceProd", [shape_of(x)], {"keepdims": 0}, [("int64", ())])[0]
    ny = g.emit("ReduceProd", [shape_of(y)], {"keepdims": 0}, [("int64", ())])[0]
    return ops.divide(ops.cast(nx, dtype), ops.cast(ny, dtype))


@register_gradient("ReduceMean")
def _reduce_mean(g, node, xs, ys, dys):
    x, y = xs[0], ys[0]
    dy, _ = _expand_reduced(g, node, x, dys[0])
    dy = ops.divide(dy, _count(g, x, y, dy.dtype))
    out = g.emit("Expand", [dy, shape_of(x)], {}, [(dy.dtype, x.shape)])[0]
    return [out] + [None] * (len(xs) - 1)


@register_gradient("ReduceMax")
@register_gradient("ReduceMin")
def _reduce_max(g, node, xs, ys, dys):
    x = xs[0]
    dy, axes = _expand_reduced(g, node, x, dys[0])
    y, _ = _expand_reduced(g, node, x, ys[0])
    hit = ops.cast(ops.equal(x, y), x.dtype)
    # Ties share the gradient equally, as TensorFlow does.
    n = ops.sum(hit, axis=axes, keepdims=True)
    return [ops.multiply(hit, ops.divide(dy, n))] + [None] * (len(xs) - 1)


@register_gradient("ReduceProd")
def _reduce_prod(g, node, xs, ys, dys):
    """d prod / d x_i is the product of the other elements. Written without dividing by x_i where that is zero: with
    no zero in the reduced group it is prod / x_i; with one zero, the product of the rest at the zero and 0
    elsewhere; with more, 0 everywhere."""
    x = xs[0]
    dy, axes = _expand_reduced(g, node, x, dys[0])
    zero = ops.equal(x, 0.0)
    safe = ops.where(zero, 1.0, x)
    rest = ops.prod(safe, axis=axes, keepdims=True)  # the product of the nonzero elements
    zeros = ops.sum(ops.cast(zero, x.dtype), axis=axes, keepdims=True)
    others = ops.where(ops.equal(zeros, 0.0), ops.divide(rest, safe),
                       ops.where(ops.logical_and(ops.equal(zeros, 1.0), zero), rest, 0.0))
    return [ops.multiply(dy, others)] + [None] * (len(xs) - 1)


@register_gradient("ReduceLogSumExp")
def _reduce_lse(g, node, xs, ys, dys):
    x = xs[0]
    dy, _ = _expand_reduced(g, node, x, dys[0])
    y, _ = _expand_reduced(g, node, x, ys[0])
    return [ops.multiply(dy, ops.exp(ops.subtract(x, y)))] + [None] * (len(xs) - 1)


@register_gradient("ReduceSumSquare")
def _reduce_sum_square(g, node, xs, ys, dys):
    x = xs[0]
    dy, _ = _expand_reduced(g, node, x, dys[0])
    return [ops.multiply(ops.multiply(dy, 2.0), x)] + [None] * (len(xs) - 1)


# -- attention (issue 15) ---------------------------------------------------------------------------------------------
@register_gradient("Einsum")
def _einsum(g, node, xs, ys, dys):
    """Each operand's gradient is the einsum of the output's gradient with the other operands onto its indices.
    `ops.einsum` records explicit equations without repeated indices, the form this rule needs. An index only that
    operand has (summed away) gets the gradient broadcast along it."""
    lhs, out = node.attrs["equation"].replace(" ", "").split("->")
    terms = lhs.split(",")
    dy = dys[0]
    grads = []
    for i, (term, x) in enumerate(zip(terms, xs)):
        others = [t for j, t in enumerate(terms) if j != i]
        reach = set(out + "".join(others))
        kept = "".join(c for c in term if c in reach)
        eq = ",".join([out] + others) + "->" + kept
        kept_shape = tuple(d for c, d in zip(term, x.shape) if c in reach)
        grad = g.emit("Einsum", [dy] + [t for j, t in enumerate(xs) if j != i], {"equation": eq},
                      [(dy.dtype, kept_shape)])[0]
        if kept != term:
            lost = [k for k, c in enumerate(term) if c not in reach]
            grad = g.emit("Unsqueeze", [grad, _i64(g, lost)], {},
                          [(dy.dtype, tuple(1 if c not in reach else d for c, d in zip(term, x.shape)))])[0]
            grad = g.emit("Expand", [grad, shape_of(x)], {}, [(dy.dtype, x.shape)])[0]
        grads.append(grad)
    return grads


def rule_for(node: OpNode):
    rule = RULES.get(node.op_type)
    if rule is None:
        raise GradientError(f"Training cannot differentiate the ONNX op '{node.op_type}' (node '{node.name}'): no "
                            f"gradient rule is registered for it.")
    return rule


# Rules that live beside the ops they differentiate register themselves on import.
from core.training import conv_gradients, pool_gradients, scan_grad  # noqa: E402,F401

"""Elementwise math, comparisons, reductions and matrix products."""

from __future__ import annotations

import numpy as np

from core.errors import ShapeError
from core.graph import SymbolicTensor
from core.ops.dispatch import broadcast_shapes, graph_of, norm_axis, op, result_dtype


def _weak_dtype(tensor_dtype: str, scalar) -> str:
    """The dtype of `tensor op scalar` for a Python number, as Keras 3 promotes "weak" Python scalars: the tensor's
    own, except that a float with an integer or bool tensor gives float32 (`tokens > 0.5`, `tokens + 0.5`) and an int
    with a bool tensor gives int32."""
    if isinstance(scalar, (float, np.floating)) and not tensor_dtype.startswith("float"):
        return "float32"
    if isinstance(scalar, (int, np.integer)) and not isinstance(scalar, (bool, np.bool_)) and tensor_dtype == "bool":
        return "int32"
    return tensor_dtype


def _operands(a, b):
    """Both operands as tensors of one graph and one dtype; Python numbers take the tensor's dtype (see
    `_weak_dtype` for where Keras promotes instead)."""
    g = graph_of(a, b)
    a_sym = isinstance(a, SymbolicTensor) or hasattr(a, "_nw_variable")
    b_sym = isinstance(b, SymbolicTensor) or hasattr(b, "_nw_variable")
    if a_sym and not b_sym:
        ta = g.as_tensor(a)
        dt = _weak_dtype(ta.dtype, b)
        ta = cast(ta, dt) if dt != ta.dtype else ta
        tb = g.as_tensor(b, dt)
    elif b_sym and not a_sym:
        tb = g.as_tensor(b)
        dt = _weak_dtype(tb.dtype, a)
        tb = cast(tb, dt) if dt != tb.dtype else tb
        ta = g.as_tensor(a, dt)
    else:
        ta, tb = g.as_tensor(a), g.as_tensor(b)
    if ta.dtype != tb.dtype:
        dt = result_dtype(ta, tb)
        ta, tb = cast(ta, dt), cast(tb, dt)
    return g, ta, tb


def _binary(onnx_op, a, b, out_dtype=None):
    g, ta, tb = _operands(a, b)
    shape = broadcast_shapes(ta.shape, tb.shape, f"{onnx_op} operands")
    return g.emit(onnx_op, [ta, tb], {}, [(out_dtype or ta.dtype, shape)])[0]


# Elementwise ops that keras.ops computes in float32 on integer and bool tensors (ONNX has only float kernels).
_FLOAT_RESULT = {"Exp", "Log", "Sqrt", "Tanh", "Sin", "Cos", "Floor", "Ceil", "Reciprocal"}


def _unary(onnx_op, x, attrs=None, out_dtype=None):
    g = graph_of(x)
    t = g.as_tensor(x)
    if onnx_op in _FLOAT_RESULT and not t.dtype.startswith("float"):
        t = cast(t, "float32")
    return g.emit(onnx_op, [t], attrs or {}, [(out_dtype or t.dtype, t.shape)])[0]


@op
def add(a, b): return _binary("Add", a, b)
@op
def subtract(a, b): return _binary("Sub", a, b)
@op
def multiply(a, b): return _binary("Mul", a, b)
@op
def divide(a, b): return _binary("Div", a, b)


@op
def true_divide(a, b):
    """Keras's divide (and `/` on its tensors): integers divide as float32. `divide` keeps ONNX's integer division,
    which the engine's own shape arithmetic relies on."""
    g, ta, tb = _operands(a, b)
    if not ta.dtype.startswith("float"):
        ta, tb = cast(ta, "float32"), cast(tb, "float32")
    return _binary("Div", ta, tb)
@op
def power(a, b): return _binary("Pow", a, b)
@op
def maximum(a, b): return _binary("Max", a, b)
@op
def minimum(a, b): return _binary("Min", a, b)
@op
def equal(a, b): return _binary("Equal", a, b, "bool")
@op
def less(a, b): return _binary("Less", a, b, "bool")
@op
def less_equal(a, b): return _binary("LessOrEqual", a, b, "bool")
@op
def greater(a, b): return _binary("Greater", a, b, "bool")
@op
def greater_equal(a, b): return _binary("GreaterOrEqual", a, b, "bool")
@op
def logical_and(a, b): return _binary("And", cast(a, "bool"), cast(b, "bool"), "bool")
@op
def logical_or(a, b): return _binary("Or", cast(a, "bool"), cast(b, "bool"), "bool")


@op
def not_equal(a, b):
    return logical_not(equal(a, b))


@op
def logical_not(x): return _unary("Not", cast(x, "bool"), out_dtype="bool")
@op
def negative(x): return _unary("Neg", x)
@op
def abs(x): return _unary("Abs", x)  # noqa: A001 - Keras's name
@op
def exp(x): return _unary("Exp", x)
@op
def log(x): return _unary("Log", x)
@op
def sqrt(x): return _unary("Sqrt", x)
@op
def tanh(x): return _unary("Tanh", x)
@op
def sigmoid(x): return _unary("Sigmoid", x)
@op
def relu(x): return _unary("Relu", x)
@op
def erf(x): return _unary("Erf", x)
@op
def sign(x): return _unary("Sign", x)
@op
def floor(x): return _unary("Floor", x)
@op
def ceil(x): return _unary("Ceil", x)
@op
def sin(x): return _unary("Sin", x)
@op
def cos(x): return _unary("Cos", x)
@op
def reciprocal(x): return _unary("Reciprocal", x)
@op
def identity(x): return _unary("Identity", x)


@op
def square(x):
    return multiply(x, x)


@op
def rsqrt(x):
    return reciprocal(sqrt(x))


@op
def round(x):  # noqa: A001 - Keras's name
    return _unary("Round", x)


@op
def clip(x, x_min, x_max):
    g = graph_of(x)
    t = g.as_tensor(x)
    lo = g.as_tensor(x_min, t.dtype) if x_min is not None else None
    hi = g.as_tensor(x_max, t.dtype) if x_max is not None else None
    return g.emit("Clip", [t, lo, hi], {}, [(t.dtype, t.shape)])[0]


@op
def cast(x, dtype):
    from core.graph import dtype_name

    dtype = dtype_name(dtype)
    g = graph_of(x)
    t = g.as_tensor(x)
    if t.dtype == dtype:
        return t
    from core.graph import onnx_dtype

    return g.emit("Cast", [t], {"to": onnx_dtype(dtype)}, [(dtype, t.shape)])[0]


@op
def where(condition, x, y):
    g = graph_of(condition, x, y)
    c = cast(g.as_tensor(condition), "bool")
    _, tx, ty = _operands(x, y)
    shape = broadcast_shapes(broadcast_shapes(c.shape, tx.shape, "where operands"), ty.shape, "where operands")
    return g.emit("Where", [c, tx, ty], {}, [(tx.dtype, shape)])[0]


@op
def matmul(a, b):
    g, ta, tb = _operands(a, b)
    sa, sb = ta.shape, tb.shape
    if len(sa) < 1 or len(sb) < 1:
        raise ShapeError(f"matmul needs tensors of rank 1 or more, got shapes {sa} and {sb}.")
    ka = sa[-1]
    kb = sb[-2] if len(sb) >= 2 else sb[0]
    if ka is not None and kb is not None and ka != kb:
        raise ShapeError(f"matmul: the inner dimensions of shapes {sa} and {sb} differ ({ka} != {kb}).")
    if len(sa) == 1 and len(sb) == 1:
        shape = ()
    elif len(sa) == 1:
        shape = sb[:-2] + sb[-1:]
    elif len(sb) == 1:
        shape = sa[:-1]
    else:
        batch = broadcast_shapes(sa[:-2], sb[:-2], "matmul batch dimensions")
        shape = batch + (sa[-2], sb[-1])
    return g.emit("MatMul", [ta, tb], {}, [(ta.dtype, shape)])[0]


def _reduce_shape(shape, axes, keepdims):
    if axes is None:
        return tuple(1 for _ in shape) if keepdims else ()
    return tuple((1 if keepdims else None) if i in axes else d for i, d in enumerate(shape)
                 if keepdims or i not in axes)


def _reduce(onnx_op, x, axis, keepdims):
    g = graph_of(x)
    t = g.as_tensor(x)
    if axis is None:
        axes = None
    else:
        axes = sorted({norm_axis(a, t.ndim) for a in (axis if isinstance(axis, (list, tuple)) else [axis])})
    inputs = [t]
    if axes is not None:
        inputs.append(g.constant(np.array(axes, dtype=np.int64)))
    out_shape = _reduce_shape(t.shape, set(axes) if axes is not None else None, keepdims)
    out_shape = tuple(1 if d is None and keepdims and axes is not None and i in axes else d
                      for i, d in enumerate(out_shape))
    return g.emit(onnx_op, inputs, {"keepdims": int(bool(keepdims))}, [(t.dtype, out_shape)])[0]


@op
def sum(x, axis=None, keepdims=False):  # noqa: A001 - Keras's name
    return _reduce("ReduceSum", _counts(x), axis, keepdims)


def _counts(x):
    """Keras sums and multiplies bools as int32 (`ops.sum(tokens != 0, axis=1)` counts)."""
    t = graph_of(x).as_tensor(x)
    return cast(t, "int32") if t.dtype == "bool" else t


@op
def mean(x, axis=None, keepdims=False):
    return _reduce("ReduceMean", _float(x), axis, keepdims)


def _float(x):
    """Keras averages integers and bools as float32."""
    t = graph_of(x).as_tensor(x)
    return t if t.dtype.startswith("float") else cast(t, "float32")


@op
def max(x, axis=None, keepdims=False):  # noqa: A001 - Keras's name
    return _reduce("ReduceMax", x, axis, keepdims)


@op
def min(x, axis=None, keepdims=False):  # noqa: A001 - Keras's name
    return _reduce("ReduceMin", x, axis, keepdims)


@op
def prod(x, axis=None, keepdims=False):
    return _reduce("ReduceProd", _counts(x), axis, keepdims)


@op
def logsumexp(x, axis=None, keepdims=False):
    return _reduce("ReduceLogSumExp", _float(x), axis, keepdims)


@op
def any(x, axis=None, keepdims=False):  # noqa: A001 - Keras's name
    return cast(max(cast(x, "float32"), axis=axis, keepdims=keepdims), "bool")


@op
def all(x, axis=None, keepdims=False):  # noqa: A001 - Keras's name
    return cast(min(cast(x, "float32"), axis=axis, keepdims=keepdims), "bool")


@op
def var(x, axis=None, keepdims=False):
    m = mean(x, axis=axis, keepdims=True)
    return mean(square(subtract(x, m)), axis=axis, keepdims=keepdims)


@op
def argmax(x, axis=-1, keepdims=False):
    g = graph_of(x)
    t = g.as_tensor(x)
    ax = norm_axis(axis, t.ndim)
    shape = tuple(1 if i == ax else d for i, d in enumerate(t.shape)) if keepdims else \
        tuple(d for i, d in enumerate(t.shape) if i != ax)
    return g.emit("ArgMax", [t], {"axis": ax, "keepdims": int(keepdims)}, [("int64", shape)])[0]


@op
def normalize(x, axis=-1, order=2, epsilon=None):
    """x divided by its L2 norm along `axis` (Keras's `ops.normalize`; the norm is floored at sqrt(epsilon))."""
    if order != 2:
        raise ValueError(f"normalize supports order=2 only, got {order}.")
    eps = 1e-12 if epsilon is None else float(epsilon)
    return multiply(x, rsqrt(maximum(sum(square(x), axis=axis, keepdims=True), eps)))


@op
def batch_dot(a, b, axes):
    """Keras's batch_dot: contract axis axes[0] of `a` with axes[1] of `b`, sample by sample (axis 0 is the batch).

    The result's shape is a's other axes then b's other non-batch axes; a result of rank 1 gets a trailing 1.
    Written with Transpose, MatMul and Reshape-free squeezes for ranks up to 3, and as a broadcast product and sum
    beyond, so every case stays within ops that have gradients.
    """
    from core.ops.array import expand_dims, squeeze, transpose

    g = graph_of(a, b)
    ta, tb = g.as_tensor(a), g.as_tensor(b)
    ax_a, ax_b = norm_axis(axes[0], ta.ndim), norm_axis(axes[1], tb.ndim)
    rest_a = [i for i in range(1, ta.ndim) if i != ax_a]
    rest_b = [i for i in range(1, tb.ndim) if i != ax_b]
    x = transpose(ta, [0] + rest_a + [ax_a])  # (B, a..., K)
    if len(rest_a) <= 1 and len(rest_b) <= 1:
        y = transpose(tb, [0, ax_b] + rest_b)  # (B, K, b...)
        if not rest_a:
            x = expand_dims(x, 1)
        if not rest_b:
            y = expand_dims(y, -1)
        out = matmul(x, y)  # (B, a or 1, b or 1)
        if not rest_a and not rest_b:
            return squeeze(out, [2])  # (B, 1)
        if not rest_a:
            return squeeze(out, [1])
        if not rest_b:
            return squeeze(out, [2])
        return out
    y = transpose(tb, [0] + rest_b + [ax_b])  # (B, b..., K)
    for _ in rest_b:
        x = expand_dims(x, -2)
    for _ in rest_a:
        y = expand_dims(y, 1)
    out = sum(multiply(x, y), axis=-1)
    return out if out.ndim > 1 else expand_dims(out, -1)


# -- preprocessing (issue 15) ------------------------------------------------------------------------------------------
@op
def floor_mod(x, y):
    """Integer remainder whose sign follows the divisor, as Python's `%` and TensorFlow's `floormod`."""
    g, tx, ty = _operands(x, y)
    if not tx.dtype.startswith(("int", "uint")):
        raise TypeError(f"floor_mod takes integer tensors, got {tx.dtype}.")
    return g.emit("Mod", [tx, ty], {"fmod": 0}, [(tx.dtype, broadcast_shapes(tx.shape, ty.shape))])[0]


@op
def digitize(x, bins):
    """numpy's `digitize(x, bins)` for increasing `bins`: how many boundaries are at or below each value (int32)."""
    boundaries = np.asarray(bins, dtype=np.float32).reshape(-1)
    g = graph_of(x)
    t = cast(g.as_tensor(x), "float32")
    if boundaries.size == 0:
        return cast(multiply(t, 0), "int32")
    from core.ops.array import expand_dims

    above = greater_equal(expand_dims(t, -1), g.constant(boundaries))
    return cast(sum(cast(above, "int32"), axis=-1), "int32")

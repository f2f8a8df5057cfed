"""Neural-network ops: activations written once, and the random noise that training adds."""

from __future__ import annotations

import numpy as np

from core.graph import onnx_dtype
from core.ops.dispatch import graph_of, norm_axis, op
from core.ops.math import (_unary, add, cast, divide, exp, log, maximum, minimum, multiply, sigmoid, subtract,
                           tanh)


@op
def softmax(x, axis=-1):
    g = graph_of(x)
    t = g.as_tensor(x)
    return g.emit("Softmax", [t], {"axis": norm_axis(axis, t.ndim)}, [(t.dtype, t.shape)])[0]


@op
def log_softmax(x, axis=-1):
    g = graph_of(x)
    t = g.as_tensor(x)
    return g.emit("LogSoftmax", [t], {"axis": norm_axis(axis, t.ndim)}, [(t.dtype, t.shape)])[0]


@op
def softplus(x): return _unary("Softplus", x)
@op
def softsign(x): return _unary("Softsign", x)


@op
def elu(x, alpha=1.0):
    return _unary("Elu", x, {"alpha": float(alpha)})


@op
def selu(x):
    return _unary("Selu", x, {"alpha": 1.6732632423543772, "gamma": 1.0507009873554805})


@op
def leaky_relu(x, negative_slope=0.2):
    return _unary("LeakyRelu", x, {"alpha": float(negative_slope)})


@op
def relu6(x):
    return minimum(maximum(x, 0.0), 6.0)


@op
def silu(x):
    return multiply(x, sigmoid(x))


swish = silu


@op
def gelu(x, approximate=True):
    """Keras 3's default is the tanh approximation; tf.keras 2's is exact. Both are written out in basic ops."""
    if approximate:
        c = np.float32(np.sqrt(2.0 / np.pi))
        inner = multiply(c, add(x, multiply(0.044715, multiply(x, multiply(x, x)))))
        return multiply(multiply(0.5, x), add(1.0, tanh(inner)))
    from core.ops.math import erf

    return multiply(multiply(0.5, x), add(1.0, erf(divide(x, np.float32(np.sqrt(2.0))))))


@op
def hard_sigmoid(x):
    """Keras 3's hard_sigmoid: relu6(x + 3) / 6 (tf.keras 2 used 0.2 * x + 0.5)."""
    return _unary("HardSigmoid", x, {"alpha": 1.0 / 6.0, "beta": 0.5})


@op
def hard_sigmoid_tf_keras2(x):
    """tf.keras 2's hard_sigmoid: clip(0.2 * x + 0.5, 0, 1)."""
    return _unary("HardSigmoid", x, {"alpha": 0.2, "beta": 0.5})


@op
def hard_silu(x):
    return multiply(x, hard_sigmoid(x))


@op
def mish(x):
    return multiply(x, tanh(_unary("Softplus", x)))


@op
def exponential(x):
    return exp(x)


@op
def log_sigmoid(x):
    return log(sigmoid(x))


@op
def dropout(x, rate, noise_shape=None, seed=None):
    """Inverted dropout (training only: layers call it when training is on).

    With `noise_shape` (SpatialDropout), one Bernoulli draw is broadcast along the axes whose noise size is 1.
    """
    g = graph_of(x)
    t = g.as_tensor(x)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"dropout: rate must be between 0 and 1, got {rate}.")
    if rate == 0:
        return t
    if rate == 1:  # everything dropped; ONNX Dropout wants a ratio below 1
        from core.ops.array import zeros_like

        return zeros_like(t)
    if noise_shape is None:
        ratio = g.constant(np.array(rate, dtype=t.dtype), t.dtype)
        train = g.constant(np.array(True))
        attrs = {} if seed is None else {"seed": int(seed)}
        return g.emit("Dropout", [t, ratio, train], attrs, [(t.dtype, t.shape)])[0]
    keep = bernoulli_like(t, 1.0 - rate, noise_shape, seed)
    return multiply(t, divide(cast(keep, t.dtype), 1.0 - rate))


@op
def bernoulli_like(x, p, noise_shape, seed=None):
    """A bool tensor of `noise_shape` (None = x's dimension there), True with probability p."""
    g = graph_of(x)
    t = g.as_tensor(x)
    from core.ops.array import shape as shape_of, _i64

    full = shape_of(t)
    pieces = []
    for i, d in enumerate(noise_shape):
        pieces.append(None if d is None else int(d))
    if all(d is not None for d in pieces):
        shp = _i64(g, pieces)
    else:
        mask = np.array([d is None for d in pieces])
        fixed = np.array([1 if d is None else d for d in pieces], dtype=np.int64)
        from core.ops.math import where

        shp = where(g.constant(mask), full, g.constant(fixed))
    out_shape = tuple(t.shape[i] if d is None else d for i, d in enumerate(pieces))
    attrs = {"dtype": onnx_dtype(t.dtype)}
    if seed is not None:
        attrs["seed"] = float(seed)
    u = g.emit("RandomUniformLike", [g.emit("ConstantOfShape", [shp], {}, [("float32", out_shape)])[0]],
               attrs, [(t.dtype, out_shape)])[0]
    from core.ops.math import less

    return less(u, p)


@op
def random_normal_like(x, stddev=1.0, seed=None):
    g = graph_of(x)
    t = g.as_tensor(x)
    attrs = {"dtype": onnx_dtype(t.dtype), "mean": 0.0, "scale": float(stddev)}
    if seed is not None:
        attrs["seed"] = float(seed)
    return g.emit("RandomNormalLike", [t], attrs, [(t.dtype, t.shape)])[0]


def moments(x, axes, keepdims=False):
    from core.ops.math import mean, square

    m = mean(x, axis=axes, keepdims=True)
    v = mean(square(subtract(x, m)), axis=axes, keepdims=True)
    if not keepdims:
        from core.ops.array import squeeze

        ax = axes if isinstance(axes, (list, tuple)) else [axes]
        m, v = squeeze(m, ax), squeeze(v, ax)
    return m, v

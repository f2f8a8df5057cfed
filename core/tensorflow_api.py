"""TensorFlow's names for the engine's ops, so that `import core as tf` serves code written for TensorFlow:
`tf.nn.*`, `tf.math.*`, `tf.random.*` and the top-level aliases (`tf.convert_to_tensor`, `tf.gather`, ...).

Each name is a `core.ops` function (recorded on symbolic tensors, run at once on arrays); where TensorFlow's
arguments differ from Keras's (`tf.argmax`'s axis 0, `tf.nn.gelu`'s exact default, `tf.gather`'s axis), a small
wrapper takes TensorFlow's. A name TensorFlow has and the engine does not raises an AttributeError that says so.
"""

from __future__ import annotations

import numpy as np

from core import ops


class _Namespace:
    """A module-like namespace: `names` maps TensorFlow's name to the engine function (or the name of a
    `core.ops` function, looked up when used, so ops added later appear)."""

    def __init__(self, path: str, names: dict):
        self._path = path
        self._names = names

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        target = self._names.get(name)
        if isinstance(target, str):
            target = getattr(ops, target, None)
        if target is None:
            raise AttributeError(f"{self._path}.{name} is not available in Netweaver's engine (no core.ops "
                                 f"function computes it).")
        return target

    def __dir__(self):
        return sorted(self._names)


# -- wrappers taking TensorFlow's arguments ----------------------------------------------------------------------
def argmax(input, axis=None, output_type="int64", name=None):  # noqa: A002 - TensorFlow's name
    return ops.cast(ops.argmax(input, axis=0 if axis is None else axis), output_type)


def gather(params, indices, axis=None, batch_dims=0, name=None):
    if batch_dims:
        raise NotImplementedError("tf.gather with batch_dims is not available in Netweaver's engine.")
    return ops.take(params, indices, axis=0 if axis is None else axis)


def clip_by_value(t, clip_value_min, clip_value_max, name=None):
    return ops.clip(t, clip_value_min, clip_value_max)


def one_hot(indices, depth, on_value=None, off_value=None, axis=None, dtype="float32", name=None):
    if axis not in (None, -1):
        raise NotImplementedError("tf.one_hot with an axis other than -1 is not available in Netweaver's engine.")
    out = ops.one_hot(indices, int(depth), dtype=dtype)
    if on_value is not None or off_value is not None:
        on = 1 if on_value is None else on_value
        off = 0 if off_value is None else off_value
        out = ops.add(ops.multiply(out, on - off), ops.cast(off, dtype) if not np.isscalar(off) else off)
    return out


def pad(tensor, paddings, mode="CONSTANT", constant_values=0, name=None):
    if str(mode).upper() != "CONSTANT":
        raise NotImplementedError(f"tf.pad mode {mode!r} is not available in Netweaver's engine (only CONSTANT).")
    return ops.pad(tensor, [tuple(int(v) for v in p) for p in np.asarray(paddings)],
                   constant_values=constant_values)


def split(value, num_or_size_splits, axis=0, num=None, name=None):
    """Pieces along `axis` (equal pieces for a number, else the given sizes), as `tf.split`."""
    size = value.shape[axis]
    if size is None:
        raise ValueError(f"tf.split needs the size of axis {axis}, which is unknown for shape {value.shape}.")
    if np.isscalar(num_or_size_splits):
        n = int(num_or_size_splits)
        if size % n:
            raise ValueError(f"tf.split: axis {axis} of size {size} does not split into {n} equal pieces.")
        sizes = [size // n] * n
    else:
        sizes = [int(s) for s in num_or_size_splits]
        if sum(sizes) != size:
            raise ValueError(f"tf.split: the sizes {sizes} do not add up to axis {axis}'s size {size}.")
    axis = axis % len(value.shape)
    pieces, start = [], 0
    for s in sizes:
        index = (slice(None),) * axis + (slice(start, start + s),)
        pieces.append(value[index])
        start += s
    return pieces


def reduce_std(input_tensor, axis=None, keepdims=False, name=None):
    return ops.sqrt(ops.var(input_tensor, axis=axis, keepdims=keepdims))


def _eager(value, dtype):
    from core.ops.dispatch import EagerTensor

    return EagerTensor(np.asarray(value, dtype=np.dtype(dtype)))


def ones(shape, dtype="float32", name=None):
    return _eager(np.ones(shape), dtype)


def zeros(shape, dtype="float32", name=None):
    return _eager(np.zeros(shape), dtype)


def fill(dims, value, name=None):
    from core.ops.dispatch import EagerTensor

    return EagerTensor(np.full(dims, value))


def range(start, limit=None, delta=1, dtype=None, name="range"):  # noqa: A001 - TensorFlow's name
    if limit is None:
        start, limit = 0, start
    values = np.arange(start, limit, delta)
    if dtype is None:
        dtype = "float32" if values.dtype.kind == "f" else "int32"
    return _eager(values, dtype)


def shape(input, out_type="int32", name=None):  # noqa: A002
    return ops.shape(input)


def rank(input, name=None):  # noqa: A002
    return len(input.shape)


def identity(input, name=None):  # noqa: A002
    return ops.identity(input)


# -- tf.nn -------------------------------------------------------------------------------------------------------
def softmax(logits, axis=None, name=None):
    return ops.softmax(logits, axis=-1 if axis is None else axis)


def log_softmax(logits, axis=None, name=None):
    return ops.log_softmax(logits, axis=-1 if axis is None else axis)


def leaky_relu(features, alpha=0.2, name=None):
    return ops.leaky_relu(features, negative_slope=alpha)


def gelu(features, approximate=False, name=None):
    return ops.gelu(features, approximate=approximate)


def l2_normalize(x, axis=None, epsilon=1e-12, name=None, dim=None):
    """x / sqrt(max(sum(x^2), epsilon)) along `axis` (all axes when None), as `tf.math.l2_normalize`."""
    axis = dim if axis is None else axis
    total = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return ops.multiply(x, ops.rsqrt(ops.maximum(total, epsilon)))


def dropout(x, rate, noise_shape=None, seed=None, name=None):
    return ops.dropout(x, rate, noise_shape=noise_shape, seed=seed)


def sigmoid_cross_entropy_with_logits(labels=None, logits=None, name=None):
    """max(x, 0) - x*z + log(1 + exp(-|x|)): TensorFlow's stable form."""
    relu_x = ops.relu(logits)
    return ops.add(ops.subtract(relu_x, ops.multiply(logits, labels)),
                   ops.log(ops.add(ops.exp(ops.negative(ops.abs(logits))), 1.0)))


def softmax_cross_entropy_with_logits(labels=None, logits=None, axis=-1, name=None):
    return ops.negative(ops.sum(ops.multiply(labels, ops.log_softmax(logits, axis=axis)), axis=axis))


def sparse_softmax_cross_entropy_with_logits(labels=None, logits=None, name=None):
    depth = logits.shape[-1]
    if depth is None:
        raise ValueError("sparse_softmax_cross_entropy_with_logits needs the number of classes (the logits' last "
                         "axis) to be known.")
    return softmax_cross_entropy_with_logits(ops.one_hot(labels, depth, dtype=logits.dtype), logits)


def embedding_lookup(params, ids, max_norm=None, name=None):
    return ops.take(params, ids, axis=0)


def bias_add(value, bias, data_format=None, name=None):
    return ops.add(value, bias)


def moments(x, axes, shift=None, keepdims=False, name=None):
    return ops.moments(x, axes, keepdims=keepdims)


def _spatial(value, rank, what):
    """TensorFlow's strides/ksize/dilations: one int, one per spatial axis, or one per axis (N, ..., C) with 1 at
    both ends."""
    if value is None:
        return 1
    values = [int(v) for v in np.ravel(value)]
    if len(values) == rank + 2:
        if values[0] != 1 or values[-1] != 1:
            raise ValueError(f"{what} on the batch and channel axes must be 1, got {values}.")
        values = values[1:-1]
    if len(values) == 1:
        return values[0]
    if len(values) != rank:
        raise ValueError(f"{what} must have 1, {rank} or {rank + 2} entries, got {values}.")
    return tuple(values)


def _layout(data_format, rank):
    if data_format is None or data_format in ("NWC", "NHWC", "NDHWC"):
        return "channels_last"
    if data_format in ("NCW", "NCHW", "NCDHW"):
        return "channels_first"
    raise ValueError(f"Unknown data_format {data_format!r} for a {rank}-D convolution.")


def _padding(padding):
    if not isinstance(padding, str) or padding.upper() not in ("VALID", "SAME"):
        raise NotImplementedError(f"Padding {padding!r} is not available in Netweaver's engine (VALID or SAME).")
    return padding.lower()


def _convolution(rank):
    def convolution(input, filters, stride=None, padding="VALID", data_format=None, dilations=None, name=None,
                    strides=None):  # noqa: A002 - TensorFlow's names
        step = strides if strides is not None else stride
        return ops.conv(input, filters, strides=_spatial(step, rank, "strides"), padding=_padding(padding),
                        data_format=_layout(data_format, rank),
                        dilation_rate=_spatial(dilations, rank, "dilations"))

    convolution.__name__ = f"conv{rank}d"
    return convolution


def _pooling(op, rank):
    def pooling(input, ksize, strides, padding, data_format=None, name=None):  # noqa: A002
        return op(input, _spatial(ksize, rank, "ksize"), strides=_spatial(strides, rank, "strides"),
                  padding=_padding(padding), data_format=_layout(data_format, rank))

    return pooling


nn = _Namespace("tf.nn", {
    "conv1d": _convolution(1), "conv2d": _convolution(2), "conv3d": _convolution(3),
    "max_pool1d": _pooling(ops.max_pool, 1), "max_pool2d": _pooling(ops.max_pool, 2),
    "avg_pool1d": _pooling(ops.average_pool, 1), "avg_pool2d": _pooling(ops.average_pool, 2),
    "relu": "relu", "relu6": "relu6", "elu": "elu", "selu": "selu", "sigmoid": "sigmoid", "tanh": "tanh",
    "softplus": "softplus", "softsign": "softsign", "silu": "silu", "swish": "silu", "log_sigmoid": "log_sigmoid",
    "softmax": softmax, "log_softmax": log_softmax, "leaky_relu": leaky_relu, "gelu": gelu,
    "l2_normalize": l2_normalize, "dropout": dropout, "moments": moments, "bias_add": bias_add,
    "embedding_lookup": embedding_lookup, "sigmoid_cross_entropy_with_logits": sigmoid_cross_entropy_with_logits,
    "softmax_cross_entropy_with_logits": softmax_cross_entropy_with_logits,
    "sparse_softmax_cross_entropy_with_logits": sparse_softmax_cross_entropy_with_logits,
})

# Functions TensorFlow has under the same names in tf.math and at the top level.
_ELEMENTWISE = {
    name: name for name in (
        "add", "subtract", "multiply", "divide", "abs", "exp", "log", "sqrt", "rsqrt", "square", "sign", "sin",
        "cos", "floor", "ceil", "round", "sigmoid", "tanh", "maximum", "minimum", "equal", "not_equal", "greater",
        "greater_equal", "less", "less_equal", "logical_and", "logical_or", "logical_not", "reciprocal", "negative",
        "erf", "softplus")
}
_REDUCTIONS = {"reduce_sum": "sum", "reduce_mean": "mean", "reduce_max": "max", "reduce_min": "min",
               "reduce_prod": "prod", "reduce_all": "all", "reduce_any": "any", "reduce_logsumexp": "logsumexp",
               "reduce_variance": "var", "reduce_std": reduce_std}

math = _Namespace("tf.math", {
    **_ELEMENTWISE, **_REDUCTIONS, "pow": "power", "truediv": "divide", "neg": "negative", "argmax": argmax,
    "log_sigmoid": "log_sigmoid", "l2_normalize": l2_normalize, "top_k": None, "cumsum": None,
})


def _set_seed(seed):
    from core.utils import set_random_seed

    set_random_seed(seed)


def _normal(shape, mean=0.0, stddev=1.0, dtype="float32", seed=None, name=None):
    rng = np.random.default_rng(seed) if seed is not None else np.random
    return _eager(rng.normal(mean, stddev, size=shape), dtype)


def _uniform(shape, minval=0, maxval=None, dtype="float32", seed=None, name=None):
    rng = np.random.default_rng(seed) if seed is not None else np.random
    if np.dtype(dtype).kind in "iu":
        if maxval is None:
            raise ValueError("tf.random.uniform needs maxval for an integer dtype.")
        return _eager(rng.integers(minval, maxval, size=shape) if seed is not None else
                      rng.randint(minval, maxval, size=shape), dtype)
    return _eager(rng.uniform(minval, 1.0 if maxval is None else maxval, size=shape), dtype)


random = _Namespace("tf.random", {"set_seed": _set_seed, "normal": _normal, "uniform": _uniform})

dtypes = _Namespace("tf.dtypes", {
    "float16": np.float16, "float32": np.float32, "float64": np.float64, "int8": np.int8, "int16": np.int16,
    "int32": np.int32, "int64": np.int64, "uint8": np.uint8, "bool": np.bool_, "string": np.str_,
    "cast": "cast"})

# The top level: `tf.<name>`.
TOP_LEVEL = {
    **{name: getattr(ops, name) for name in _ELEMENTWISE},
    **{name: (getattr(ops, fn) if isinstance(fn, str) else fn) for name, fn in _REDUCTIONS.items()},
    "pow": ops.power, "truediv": ops.divide, "argmax": argmax, "gather": gather, "clip_by_value": clip_by_value,
    "one_hot": one_hot, "pad": pad, "split": split, "unstack": ops.unstack, "where": ops.where,
    "convert_to_tensor": ops.convert_to_tensor, "identity": identity, "shape": shape, "rank": rank,
    "ones": ones, "zeros": zeros, "fill": fill, "range": range, "ones_like": ops.ones_like,
    "zeros_like": ops.zeros_like, "nn": nn, "math": math, "random": random, "dtypes": dtypes, "newaxis": None,
}

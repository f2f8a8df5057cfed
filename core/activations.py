"""Keras's activations by name or callable, each written with `core.ops` (so each has a gradient)."""

from __future__ import annotations

import contextlib

from core import ops
from core.errors import ConfigError

# While a tf.keras 2 file is read, the name 'hard_sigmoid' means tf.keras 2's function (see `tf_keras2_names`).
_tf_keras2_stack: list[bool] = []


def linear(x):
    return x


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return ops.relu(x)
    y = ops.where(ops.greater_equal(x, threshold), x, ops.multiply(negative_slope, ops.subtract(x, threshold)))
    if max_value is not None:
        y = ops.minimum(y, float(max_value))
    return y


def sigmoid(x): return ops.sigmoid(x)
def tanh(x): return ops.tanh(x)
def softplus(x): return ops.softplus(x)
def softsign(x): return ops.softsign(x)
def elu(x, alpha=1.0): return ops.elu(x, alpha)
def selu(x): return ops.selu(x)
def exponential(x): return ops.exp(x)
def relu6(x): return ops.relu6(x)
def silu(x): return ops.silu(x)
def hard_sigmoid(x): return ops.hard_sigmoid(x)


def hard_sigmoid_tf_keras2(x):
    """tf.keras 2's hard_sigmoid, clip(0.2 x + 0.5, 0, 1); Keras 3 redefined the name as relu6(x + 3) / 6."""
    return ops.hard_sigmoid_tf_keras2(x)
def hard_silu(x): return ops.hard_silu(x)
def mish(x): return ops.mish(x)
def log_sigmoid(x): return ops.log_sigmoid(x)


def leaky_relu(x, negative_slope=0.2):
    return ops.leaky_relu(x, negative_slope)


def gelu(x, approximate=False):
    return ops.gelu(x, approximate=approximate)


def softmax(x, axis=-1):
    return ops.softmax(x, axis=axis)


def log_softmax(x, axis=-1):
    return ops.log_softmax(x, axis=axis)


swish = silu
hard_swish = hard_silu

_BY_NAME = {f.__name__: f for f in (linear, relu, sigmoid, tanh, softplus, softsign, elu, selu, exponential, relu6,
                                     silu, hard_sigmoid, hard_silu, mish, log_sigmoid, leaky_relu, gelu, softmax,
                                     log_softmax, hard_sigmoid_tf_keras2)}
_BY_NAME.update({"swish": silu, "hard_swish": hard_silu, None: linear, "": linear})


def get(identifier):
    """A callable activation from a name, a callable, or None (linear)."""
    if identifier is None or callable(identifier):
        return identifier if identifier is not None else linear
    if isinstance(identifier, dict):  # {'class_name': 'relu', ...} as some configs write it
        identifier = identifier.get("config", {}).get("name") or identifier.get("class_name")
    if isinstance(identifier, str):
        if identifier.lower() == "hard_sigmoid" and _tf_keras2_stack and _tf_keras2_stack[-1]:
            return hard_sigmoid_tf_keras2
        fn = _BY_NAME.get(identifier.lower())
        if fn is not None:
            return fn
        from core.serialization import custom_objects

        custom = custom_objects().get(identifier)
        if custom is not None:
            return custom
    raise ConfigError(f"Unknown activation {identifier!r}. Known activations: "
                      f"{', '.join(sorted(k for k in _BY_NAME if k))}.")


@contextlib.contextmanager
def tf_keras2_names(active: bool = True):
    """Read activation names as tf.keras 2 meant them (only 'hard_sigmoid' differs), while loading its files."""
    _tf_keras2_stack.append(bool(active))
    try:
        yield
    finally:
        _tf_keras2_stack.pop()


def serialize(fn) -> str:
    for name, f in _BY_NAME.items():
        if f is fn and name:
            return name
    return getattr(fn, "__name__", str(fn))


def names() -> list[str]:
    return sorted(k for k in _BY_NAME if k)

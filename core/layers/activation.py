"""Activation layers: ReLU, LeakyReLU, PReLU, ELU, Softmax and tf.keras 2's ThresholdedReLU.

Each computes what Keras 3's layer computes, op for op where a choice changes a number (ReLU's `threshold` keeps
only x > threshold; a masked Softmax adds -1e9 to masked scores and zeroes their outputs).
"""

from __future__ import annotations

import numpy as np

from core import constraints, initializers, ops, regularizers
from core.errors import ConfigError, ShapeError
from core.layers.base import Layer
from core.layers.normalization import _axes

__all__ = ["ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "ThresholdedReLU"]


def _non_negative(layer: str, name: str, value, allow_none: bool = False):
    if value is None and allow_none:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = None
    if number is None or isinstance(value, bool) or not number >= 0.0:
        raise ConfigError(f"{layer}: '{name}' must be a number of 0 or more, got {value!r}.")
    return number


class ReLU(Layer):
    """Rectified linear unit: x above `threshold` (capped at `max_value`), `negative_slope * (x - threshold)` below.

    Args:
        max_value: Largest output value; none means no cap.
        negative_slope: Slope below the threshold (0 or more).
        threshold: Inputs at or below this value are not passed through (0 or more).
    """

    supports_masking = True

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        self.max_value = _non_negative("ReLU", "max_value", max_value, allow_none=True)
        self.negative_slope = _non_negative("ReLU", "negative_slope", negative_slope)
        self.threshold = _non_negative("ReLU", "threshold", threshold)

    def call(self, inputs):
        x = inputs
        if self.negative_slope != 0.0 and self.max_value is None and self.threshold == 0.0:
            return ops.leaky_relu(x, self.negative_slope)
        if self.threshold != 0.0:
            y = ops.where(ops.greater(x, self.threshold), x, 0.0)
        else:
            y = ops.relu(x)
        if self.max_value is not None:
            y = ops.minimum(y, self.max_value)
        if self.negative_slope != 0.0:
            below = ops.relu(ops.subtract(self.threshold, x))
            y = ops.subtract(y, ops.multiply(below, self.negative_slope))
        return y

    def get_config(self):
        config = super().get_config()
        config.update({"max_value": self.max_value, "negative_slope": self.negative_slope,
                       "threshold": self.threshold})
        return config


class LeakyReLU(Layer):
    """`x` for positive inputs, `negative_slope * x` otherwise (tf.keras 2 calls the slope `alpha`).

    Args:
        negative_slope: Slope for negative inputs (0 or more).
    """

    supports_masking = True

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:  # tf.keras 2's name (and Keras 3's deprecated one)
            negative_slope = kwargs.pop("alpha")
        super().__init__(**kwargs)
        self.negative_slope = _non_negative("LeakyReLU", "negative_slope", negative_slope)

    def call(self, inputs):
        return ops.leaky_relu(inputs, self.negative_slope)

    def get_config(self):
        config = super().get_config()
        config["negative_slope"] = self.negative_slope
        return config


class PReLU(Layer):
    """Leaky ReLU whose negative slope `alpha` is learned per feature (`shared_axes` share one slope along axes).

    Args:
        alpha_initializer: Initializer for the learned slopes.
        shared_axes: Axes (1 is the first after the batch) along which one slope is shared, e.g. [1, 2] for
            images so that each channel has one slope.
    """

    supports_masking = True

    def __init__(self, alpha_initializer="Zeros", alpha_regularizer=None, alpha_constraint=None, shared_axes=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        if shared_axes is None:
            self.shared_axes = None
        else:
            axes = list(shared_axes) if isinstance(shared_axes, (list, tuple)) else [shared_axes]
            if not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) and a >= 1 for a in axes):
                raise ConfigError(f"PReLU: 'shared_axes' must be axes of 1 or more (0 is the batch), got "
                                  f"{shared_axes!r}.")
            self.shared_axes = [int(a) for a in axes]

    def build(self, input_shape):
        shape = list(input_shape[1:])
        for a in self.shared_axes or []:
            if a > len(shape):
                raise ShapeError(f"PReLU '{self.name}': shared axis {a} is out of range for inputs of shape "
                                 f"{tuple(input_shape)}.")
            shape[a - 1] = 1
        if any(d is None for d in shape):
            raise ShapeError(f"PReLU '{self.name}' needs a known size on every axis it does not share, got input "
                             f"shape {tuple(input_shape)}; add that axis to shared_axes.")
        self.alpha = self.add_weight(name="alpha", shape=tuple(shape), initializer=self.alpha_initializer,
                                     regularizer=self.alpha_regularizer, constraint=self.alpha_constraint)

    def call(self, inputs):
        if tuple(inputs.shape[1:]) != tuple(self._build_input_shape[1:]):
            expected = tuple(self._build_input_shape)
            fits = len(inputs.shape) == len(expected) and all(
                d is None or d == e or (i in (self.shared_axes or [])) for i, (d, e) in
                enumerate(zip(inputs.shape, expected)) if i > 0)
            if not fits:
                raise ShapeError(f"PReLU '{self.name}' was built for inputs of shape {expected}, got "
                                 f"{tuple(inputs.shape)}.")
        negative = ops.multiply(ops.negative(self.alpha), ops.relu(ops.negative(inputs)))
        return ops.add(ops.relu(inputs), negative)

    def get_config(self):
        config = super().get_config()
        config.update({
            "alpha_initializer": initializers.serialize(self.alpha_initializer),
            "alpha_regularizer": regularizers.serialize(self.alpha_regularizer),
            "alpha_constraint": constraints.serialize(self.alpha_constraint),
            "shared_axes": self.shared_axes,
        })
        return config


class ELU(Layer):
    """Exponential linear unit: x for positive inputs, `alpha * (exp(x) - 1)` otherwise.

    Args:
        alpha: Scale of the negative part.
    """

    supports_masking = True

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        try:
            self.alpha = float(alpha)
        except (TypeError, ValueError):
            raise ConfigError(f"ELU: 'alpha' must be a number, got {alpha!r}.") from None

    def call(self, inputs):
        return ops.elu(inputs, self.alpha)

    def get_config(self):
        # Keras 3 leaves alpha out of its config (so its files always mean 1.0); writing it keeps our value.
        config = super().get_config()
        config["alpha"] = self.alpha
        return config


# Keras 3's stand-in for minus infinity on masked scores (float16 would take -3e4; the engine computes in 32 bits).
_MASKED_SCORE = -1e9


class Softmax(Layer):
    """Softmax over `axis`; where `mask` is False the score counts as -1e9 and the output is 0 (Keras 3).

    Args:
        axis: Axis (or list of axes) the probabilities sum to one along.
    """

    supports_masking = True

    def __init__(self, axis=-1, robust_masking=False, **kwargs):
        super().__init__(**kwargs)
        self.axis = _axes("Softmax", axis)
        if robust_masking:  # tf.keras 2 only: dtype.min instead of -1e9, which changes fully masked rows
            raise ConfigError("Softmax: robust_masking=True (tf.keras 2) is not supported; only Keras 3's -1e9 "
                              "masking is.")

    def call(self, inputs, mask=None):
        return masked_softmax(self, inputs, mask, self.axis)

    def get_config(self):
        config = super().get_config()
        config["axis"] = self.axis
        return config


def masked_softmax(layer, x, mask, axis):
    """Keras 3's Softmax layer: masked scores count as -1e9 and give 0; a list of axes normalizes over all of them."""
    if mask is not None:
        mask = _broadcastable_mask(layer, mask, x)
        x = ops.where(mask, x, _MASKED_SCORE)
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    for a in axes:
        if not -x.ndim <= a < x.ndim:
            raise ShapeError(f"{type(layer).__name__} '{layer.name}': axis {a} is out of range for inputs of shape "
                             f"{x.shape}.")
    if len(axes) > 1:
        out = ops.exp(ops.subtract(x, ops.logsumexp(x, axis=list(axes), keepdims=True)))
    else:
        out = ops.softmax(x, axis=axes[0])
    if mask is not None:
        out = ops.where(mask, out, 0.0)
    return out


def _broadcastable_mask(layer, mask, x):
    """The mask as bool, after checking that it broadcasts against `x` from the right (as Keras requires)."""
    ms, xs = tuple(mask.shape), tuple(x.shape)
    fits = len(ms) <= len(xs) and all(m is None or i is None or m in (1, i) for m, i in zip(ms[::-1], xs[::-1]))
    if not fits:
        raise ShapeError(f"{type(layer).__name__} '{layer.name}': the mask of shape {ms} does not broadcast to the "
                         f"inputs of shape {xs}; each mask dimension must be 1 or the input's, counted from the "
                         f"right.")
    if mask.dtype != "bool":
        mask = ops.greater(mask, 0.5)
    return mask


class ThresholdedReLU(Layer):
    """tf.keras 2's `x if x > theta else 0` (Keras 3 dropped the class; its ReLU(threshold=theta) is the same).

    Args:
        theta: Inputs at or below this value give 0 (0 or more).
    """

    supports_masking = True

    def __init__(self, theta=1.0, **kwargs):
        super().__init__(**kwargs)
        self.theta = _non_negative("ThresholdedReLU", "theta", theta)

    def call(self, inputs):
        return ops.where(ops.greater(inputs, self.theta), inputs, 0.0)

    def get_config(self):
        config = super().get_config()
        config["theta"] = self.theta
        return config

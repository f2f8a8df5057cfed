"""Layers that only act while training: Dropout and its spatial forms, Gaussian noise and dropout, and
ActivityRegularization. At inference each is the identity; all pass masks through."""

from __future__ import annotations

import math

from core import ops, regularizers
from core.errors import ConfigError, ShapeError
from core.layers.base import Layer
from core.layers.core import check_rate


def _check_seed(layer: str, seed):
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ConfigError(f"{layer}: 'seed' must be an integer or None, got {seed!r}.")
    return seed


def _check_noise_shape(layer: str, noise_shape):
    if noise_shape is None:
        return None
    dims = tuple(noise_shape) if isinstance(noise_shape, (list, tuple)) else None
    if dims is None or not all(d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0)
                               for d in dims):
        raise ConfigError(f"{layer}: 'noise_shape' must be a list of positive integers or None, got "
                          f"{noise_shape!r}.")
    return dims


class Dropout(Layer):
    """Sets a fraction `rate` of the inputs to 0 while training and scales the rest by 1 / (1 - rate)."""

    supports_masking = True

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_rate(type(self).__name__, rate)
        self.noise_shape = _check_noise_shape(type(self).__name__, noise_shape)
        self.seed = _check_seed(type(self).__name__, seed)

    def _noise_shape(self, inputs):
        if self.noise_shape is not None and len(self.noise_shape) != inputs.ndim:
            raise ShapeError(f"{type(self).__name__} '{self.name}': noise_shape {self.noise_shape} has "
                             f"{len(self.noise_shape)} dimensions, the input {inputs.shape} has {inputs.ndim}.")
        return self.noise_shape

    def call(self, inputs, training=None):
        noise_shape = self._noise_shape(inputs)
        if not training or self.rate == 0.0:
            return inputs
        if self.rate == 1.0:
            return ops.zeros_like(inputs)
        return ops.dropout(inputs, self.rate, noise_shape=noise_shape, seed=self.seed)

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed,
                       "noise_shape": None if self.noise_shape is None else list(self.noise_shape)})
        return config


class SpatialDropout1D(Dropout):
    """Drops whole channels of (batch, steps, channels) inputs: one draw per sample and channel."""

    rank = 3

    def __init__(self, rate, seed=None, **kwargs):
        kwargs.pop("noise_shape", None)  # tf.keras 2 configs write it (always None): these layers choose their own
        super().__init__(rate, seed=seed, **kwargs)

    def _noise_shape(self, inputs):
        if inputs.ndim != self.rank:
            raise ShapeError(f"{type(self).__name__} '{self.name}' expects inputs of rank {self.rank}, got shape "
                             f"{inputs.shape}.")
        return (None, 1, None)

    def get_config(self):
        config = super().get_config()
        config.pop("noise_shape")
        # Keras 3's SpatialDropout configs have no 'trainable', and its constructors reject one.
        config.pop("trainable", None)
        return config


class _SpatialDropoutND(SpatialDropout1D):
    def __init__(self, rate, data_format=None, seed=None, **kwargs):
        super().__init__(rate, seed=seed, **kwargs)
        data_format = data_format or "channels_last"
        if data_format not in ("channels_last", "channels_first"):
            raise ConfigError(f"{type(self).__name__}: 'data_format' must be 'channels_last' or 'channels_first', "
                              f"got {data_format!r}.")
        self.data_format = data_format

    def _noise_shape(self, inputs):
        super()._noise_shape(inputs)
        ones = (1,) * (self.rank - 2)
        return (None,) + ones + (None,) if self.data_format == "channels_last" else (None, None) + ones

    def get_config(self):
        config = super().get_config()
        config["data_format"] = self.data_format
        return config


class SpatialDropout2D(_SpatialDropoutND):
    rank = 4


class SpatialDropout3D(_SpatialDropoutND):
    rank = 5


class GaussianNoise(Layer):
    """Adds zero-centred Gaussian noise of standard deviation `stddev` while training."""

    supports_masking = True

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.stddev = float(stddev)
        if not 0.0 <= self.stddev <= 1.0:
            raise ConfigError(f"GaussianNoise: 'stddev' must be between 0 and 1, got {self.stddev}.")
        self.seed = _check_seed("GaussianNoise", seed)

    def call(self, inputs, training=None):
        if not training or self.stddev == 0.0:
            return inputs
        return ops.add(inputs, ops.random_normal_like(inputs, stddev=self.stddev, seed=self.seed))

    def get_config(self):
        config = super().get_config()
        config.update({"stddev": self.stddev, "seed": self.seed})
        return config


class GaussianDropout(Layer):
    """Multiplies the inputs by Gaussian noise of mean 1 and variance rate / (1 - rate) while training."""

    supports_masking = True

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_rate("GaussianDropout", rate)
        self.seed = _check_seed("GaussianDropout", seed)

    def call(self, inputs, training=None):
        if not training or not 0.0 < self.rate < 1.0:
            return inputs
        stddev = math.sqrt(self.rate / (1.0 - self.rate))
        return ops.multiply(inputs, ops.add(ops.random_normal_like(inputs, stddev=stddev, seed=self.seed), 1.0))

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config


class ActivityRegularization(Layer):
    """The identity, adding l1 * sum|x| + l2 * sum(x^2) of its output to the training loss."""

    supports_masking = True

    def __init__(self, l1=0.0, l2=0.0, **kwargs):
        kwargs.pop("activity_regularizer", None)  # it is what l1 and l2 say
        try:
            reg = regularizers.L1L2(l1=float(l1), l2=float(l2))
        except (TypeError, ValueError):
            raise ConfigError(f"ActivityRegularization: 'l1' and 'l2' must be non-negative numbers, got l1={l1!r}, "
                              f"l2={l2!r}.") from None
        super().__init__(activity_regularizer=reg, **kwargs)
        self.l1, self.l2 = reg.l1, reg.l2

    def call(self, inputs):
        return inputs

    def get_config(self):
        config = super().get_config()
        config.pop("activity_regularizer", None)
        config.update({"l1": self.l1, "l2": self.l2})
        return config

"""BatchNormalization and LayerNormalization, written out as explicit math so training can differentiate them.

Moving statistics: a BatchNormalization traced with `training=True` computes batch statistics and records each new
moving value on the root graph, as `graph.state_updates`, a list of `(Variable, new_value_tensor)` pairs (see
`state_updates`). The trainer adds those tensors to the training graph's outputs and assigns them to the
variables after each step; an inference graph never has them.
"""

from __future__ import annotations

from core import backend, constraints, initializers, ops, regularizers
from core.errors import ConfigError, ShapeError
from core.graph import GraphBuilder
from core.layers.base import Layer


def state_updates(graph: GraphBuilder) -> list:
    """The (Variable, new value tensor) pairs that non-trainable state (BatchNorm moving stats) asks for."""
    return graph.root.state_updates


def _check_epsilon(layer: str, epsilon) -> float:
    epsilon = float(epsilon)
    if not epsilon > 0:
        raise ConfigError(f"{layer}: 'epsilon' must be positive, got {epsilon}.")
    return epsilon


def _axes(layer: str, axis) -> int | list[int]:
    if isinstance(axis, (list, tuple)):
        if not axis or not all(isinstance(a, int) and not isinstance(a, bool) for a in axis):
            raise ConfigError(f"{layer}: 'axis' must be an integer or a list of integers, got {axis!r}.")
        return list(axis)
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise ConfigError(f"{layer}: 'axis' must be an integer or a list of integers, got {axis!r}.")
    return axis


def _normalized_axes(layer, axis, shape) -> list[int]:
    rank = len(shape)
    out = []
    for a in axis if isinstance(axis, list) else [axis]:
        if not -rank <= a < rank:
            raise ShapeError(f"{type(layer).__name__} '{layer.name}': axis {a} is out of range for inputs of shape "
                             f"{tuple(shape)}.")
        out.append(a % rank)
    for a in out:
        if shape[a] is None:
            raise ShapeError(f"{type(layer).__name__} '{layer.name}' needs a known size on axis {a}, got input shape "
                             f"{tuple(shape)}.")
    return sorted(set(out))


def _broadcast_param(p, axes, rank):
    """A weight of shape (d_axes...) reshaped so it broadcasts against inputs of `rank`."""
    if axes == [rank - 1]:
        return p
    return ops.reshape(p, tuple(p.shape[axes.index(i)] if i in axes else 1 for i in range(rank)))


def _store_gamma_beta_options(layer, beta_initializer, gamma_initializer, beta_regularizer, gamma_regularizer,
                              beta_constraint, gamma_constraint) -> None:
    layer.beta_initializer = initializers.get(beta_initializer)
    layer.gamma_initializer = initializers.get(gamma_initializer)
    layer.beta_regularizer = regularizers.get(beta_regularizer)
    layer.gamma_regularizer = regularizers.get(gamma_regularizer)
    layer.beta_constraint = constraints.get(beta_constraint)
    layer.gamma_constraint = constraints.get(gamma_constraint)


def _add_gamma_beta(layer, shape, scale: bool, center: bool) -> None:
    layer.gamma = layer.beta = None
    if scale:
        layer.gamma = layer.add_weight(name="gamma", shape=shape, initializer=layer.gamma_initializer,
                                       regularizer=layer.gamma_regularizer, constraint=layer.gamma_constraint)
    if center:
        layer.beta = layer.add_weight(name="beta", shape=shape, initializer=layer.beta_initializer,
                                      regularizer=layer.beta_regularizer, constraint=layer.beta_constraint)


def _normalize(layer, inputs, mean, var):
    """(x - mean) / sqrt(var + epsilon) * gamma + beta, as x * inv + (beta - mean * inv) like Keras writes it."""
    rank = inputs.ndim
    inv = ops.rsqrt(ops.add(var, layer.epsilon))
    if layer.gamma is not None:
        inv = ops.multiply(inv, _broadcast_param(layer.gamma, layer._axes, rank))
    shift = ops.negative(ops.multiply(mean, inv))
    if layer.beta is not None:
        shift = ops.add(shift, _broadcast_param(layer.beta, layer._axes, rank))
    return ops.add(ops.multiply(inputs, inv), shift)


def _gamma_beta_config(layer) -> dict:
    return {
        "beta_initializer": initializers.serialize(layer.beta_initializer),
        "gamma_initializer": initializers.serialize(layer.gamma_initializer),
        "beta_regularizer": regularizers.serialize(layer.beta_regularizer),
        "gamma_regularizer": regularizers.serialize(layer.gamma_regularizer),
        "beta_constraint": constraints.serialize(layer.beta_constraint),
        "gamma_constraint": constraints.serialize(layer.gamma_constraint),
    }


class BatchNormalization(Layer):
    """Normalizes with batch statistics when training and with the moving averages otherwise (Keras 3)."""

    supports_masking = True

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 synchronized=False, **kwargs):
        # Keras 3 writes the renorm keys and tf.keras 2 fused/virtual_batch_size/adjustment; only their "off"
        # values can be honoured.
        renorm = kwargs.pop("renorm", False)
        kwargs.pop("renorm_clipping", None)
        kwargs.pop("renorm_momentum", None)
        kwargs.pop("fused", None)
        virtual_batch_size, adjustment = kwargs.pop("virtual_batch_size", None), kwargs.pop("adjustment", None)
        super().__init__(**kwargs)
        self.axis = _axes("BatchNormalization", axis)
        if isinstance(self.axis, list) and len(self.axis) == 1:
            self.axis = self.axis[0]  # tf.keras 2 writes axis=[3]
        self.momentum = float(momentum)
        if not 0.0 <= self.momentum <= 1.0:
            raise ConfigError(f"BatchNormalization: 'momentum' must be between 0 and 1, got {self.momentum}.")
        self.epsilon = _check_epsilon("BatchNormalization", epsilon)
        if renorm or virtual_batch_size is not None or adjustment is not None:
            raise ConfigError("BatchNormalization: renorm, virtual_batch_size and adjustment are not supported.")
        self.center, self.scale = bool(center), bool(scale)
        self.synchronized = bool(synchronized)  # one device: nothing to synchronize
        _store_gamma_beta_options(self, beta_initializer, gamma_initializer, beta_regularizer, gamma_regularizer,
                                  beta_constraint, gamma_constraint)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)

    def build(self, input_shape):
        self._axes = _normalized_axes(self, self.axis, input_shape)
        shape = tuple(input_shape[a] for a in self._axes)
        _add_gamma_beta(self, shape, self.scale, self.center)
        self.moving_mean = self.add_weight(name="moving_mean", shape=shape, initializer=self.moving_mean_initializer,
                                           trainable=False)
        self.moving_variance = self.add_weight(name="moving_variance", shape=shape,
                                               initializer=self.moving_variance_initializer, trainable=False)

    def _moments(self, inputs, mask):
        reduce = [i for i in range(inputs.ndim) if i not in self._axes]
        if mask is None:
            mean = ops.mean(inputs, axis=reduce, keepdims=True)
            return mean, ops.mean(ops.square(ops.subtract(inputs, mean)), axis=reduce, keepdims=True)
        # Keras 3: masked steps do not count towards the statistics.
        w = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        weighted = ops.multiply(inputs, w)
        count = ops.add(ops.sum(w, axis=reduce, keepdims=True), backend.epsilon())
        mean = ops.divide(ops.sum(weighted, axis=reduce, keepdims=True), count)
        sq = ops.square(ops.subtract(weighted, mean))
        return mean, ops.divide(ops.sum(ops.multiply(w, sq), axis=reduce, keepdims=True), count)

    def call(self, inputs, training=None, mask=None):
        if inputs.ndim != len(self._build_input_shape):
            raise ShapeError(f"BatchNormalization '{self.name}' was built for inputs of rank "
                             f"{len(self._build_input_shape)}, got shape {inputs.shape}.")
        for a in self._axes:
            if inputs.shape[a] is not None and inputs.shape[a] != self.moving_mean.shape[self._axes.index(a)]:
                raise ShapeError(f"BatchNormalization '{self.name}' was built for {self.moving_mean.shape} features on "
                                 f"axis {a}, got input shape {inputs.shape}.")
        rank = inputs.ndim
        if training and self.trainable:
            mean, var = self._moments(inputs, mask)
            flat_mean = ops.reshape(mean, self.moving_mean.shape)
            flat_var = ops.reshape(var, self.moving_variance.shape)
            updates = state_updates(inputs.graph)
            m = self.momentum
            updates.append((self.moving_mean, ops.add(ops.multiply(self.moving_mean, m),
                                                      ops.multiply(flat_mean, 1.0 - m))))
            updates.append((self.moving_variance, ops.add(ops.multiply(self.moving_variance, m),
                                                          ops.multiply(flat_var, 1.0 - m))))
        else:
            mean = _broadcast_param(self.moving_mean, self._axes, rank)
            var = _broadcast_param(self.moving_variance, self._axes, rank)
        return _normalize(self, inputs, mean, var)

    def get_config(self):
        config = super().get_config()
        config.update({
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            **_gamma_beta_config(self),
            "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
            "moving_variance_initializer": initializers.serialize(self.moving_variance_initializer),
            "synchronized": self.synchronized,
        })
        return config


class LayerNormalization(Layer):
    """Normalizes each sample over `axis` (Keras 3; `rms_scaling` divides by the root of the variance, as Keras 3's
    deprecated flag does, and drops the offset)."""

    supports_masking = True

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, rms_scaling=False, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.axis = _axes("LayerNormalization", axis)
        self.epsilon = _check_epsilon("LayerNormalization", epsilon)
        self.center, self.scale, self.rms_scaling = bool(center), bool(scale), bool(rms_scaling)
        _store_gamma_beta_options(self, beta_initializer, gamma_initializer, beta_regularizer, gamma_regularizer,
                                  beta_constraint, gamma_constraint)

    def build(self, input_shape):
        self._axes = _normalized_axes(self, self.axis, input_shape)
        shape = tuple(input_shape[a] for a in self._axes)
        _add_gamma_beta(self, shape, self.scale or self.rms_scaling, self.center and not self.rms_scaling)

    def call(self, inputs):
        rank = inputs.ndim
        if rank != len(self._build_input_shape):
            raise ShapeError(f"LayerNormalization '{self.name}' was built for inputs of rank "
                             f"{len(self._build_input_shape)}, got shape {inputs.shape}.")
        mean = ops.mean(inputs, axis=self._axes, keepdims=True)
        var = ops.mean(ops.square(ops.subtract(inputs, mean)), axis=self._axes, keepdims=True)
        if self.rms_scaling:
            out = ops.multiply(inputs, ops.rsqrt(ops.add(var, self.epsilon)))
            return ops.multiply(out, _broadcast_param(self.gamma, self._axes, rank))
        return _normalize(self, inputs, mean, var)

    def get_config(self):
        config = super().get_config()
        config.update({
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "rms_scaling": self.rms_scaling,
            **_gamma_beta_config(self),
        })
        return config

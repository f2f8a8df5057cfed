"""BatchNormalization and LayerNormalization, written out as explicit math so training can differentiate them.

Their gradient is closed-form: the normalization is one `custom_gradient` region (the recorded nodes are the same as
without it), whose gradient takes a few passes over the activations instead of the many that differentiating the
ReduceMean/Sub/Mul/rsqrt nodes one by one would. With xhat = (x - mean) * r, r = 1/sqrt(var + epsilon), N the count
over the reduced axes and dxhat the gradient reaching xhat (dy * gamma):
dx = r * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dgamma = sum(dy * xhat), dbeta = sum(dy).

Moving statistics: a BatchNormalization traced with `training=True` computes batch statistics and records each new
moving value on the root graph, as `graph.state_updates`, a list of `(Variable, new_value_tensor)` pairs (see
`state_updates`). The trainer adds those tensors to the training graph's outputs and assigns them to the
variables after each step; an inference graph never has them.
"""

from __future__ import annotations

import numpy as np

from core import backend, constraints, initializers, ops, regularizers
from core.errors import ConfigError, ShapeError
from core.graph import GraphBuilder, custom_gradient
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
    """(x - mean) / sqrt(var + epsilon) * gamma + beta, as x * inv + (beta - mean * inv) like Keras writes it.
    Returns y, r = 1/sqrt(var + epsilon), inv = r * gamma (r without gamma) and gamma broadcast (or None)."""
    rank = inputs.ndim
    r = inv = ops.rsqrt(ops.add(var, layer.epsilon))
    gamma = None
    if layer.gamma is not None:
        gamma = _broadcast_param(layer.gamma, layer._axes, rank)
        inv = ops.multiply(r, gamma)
    shift = ops.negative(ops.multiply(mean, inv))
    if layer.beta is not None:
        shift = ops.add(shift, _broadcast_param(layer.beta, layer._axes, rank))
    return ops.add(ops.multiply(inputs, inv), shift), r, inv, gamma


def _centered_moments(x, axes):
    """Mean and variance over `axes` (kept as size 1), and x - mean, which the gradient reads again."""
    mean = ops.mean(x, axis=axes, keepdims=True)
    centered = ops.subtract(x, mean)
    return mean, centered, ops.mean(ops.square(centered), axis=axes, keepdims=True)


def _reduced_count(x, axes):
    """How many elements of x each statistic over `axes` reads: a number, or a scalar tensor when a size is only
    known at run time (the batch)."""
    sizes = [x.shape[a] for a in axes]
    if None not in sizes:
        return float(np.prod(sizes))
    return ops.cast(ops.prod(ops.take(ops.shape(x), axes)), x.dtype)


def _param_gradient(grad, weight):
    """A gradient over a layer weight's broadcast shape (kept axes of size 1) in the weight's own shape."""
    return None if weight is None else ops.reshape(grad, weight.shape)


def _gamma_beta_config(layer) -> dict:
    return {
        "beta_initializer": initializers.serialize(layer.beta_initializer),
        "gamma_initializer": initializers.serialize(layer.gamma_initializer),
        "beta_regularizer": regularizers.serialize(layer.beta_regularizer),
        "gamma_regularizer": regularizers.serialize(layer.gamma_regularizer),
        "beta_constraint": constraints.serialize(layer.beta_constraint),
        "gamma_constraint": constraints.serialize(layer.gamma_constraint),
    }


def _per_count(t, n):
    return ops.multiply(t, 1.0 / n) if isinstance(n, float) else ops.divide(t, n)


def _sum_times_gamma(t, gamma, gamma_b, axes):
    """sum(t * gamma) over the normalized axes, kept as size 1. Over the last axis alone it is one product with gamma
    as a column, which reads t once and writes nothing of t's size."""
    if gamma is None:
        return ops.sum(t, axis=axes, keepdims=True)
    if axes == [t.ndim - 1]:
        return ops.matmul(t, ops.reshape(gamma, (-1, 1)))
    return ops.sum(ops.multiply(t, gamma_b), axis=axes, keepdims=True)


def _sum_over_rows(t, per_row, axes, rest):
    """sum(t * per_row) over the axes that are not normalized, in the weights' shape; `per_row` has one value per
    row (the normalized axes kept as size 1). Over the last axis it is one product of the rows with t's rows."""
    if axes == [t.ndim - 1]:
        return ops.matmul(ops.reshape(per_row, (-1,)), ops.reshape(t, (-1, t.shape[-1])))
    return ops.sum(ops.multiply(t, per_row), axis=rest)


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

    def _masked_moments(self, inputs, mask, reduce):
        """Keras 3: masked steps do not count towards the statistics. Returns mean, variance, the weights (the mask
        as 0/1 with the features axis kept) and their count. Keras broadcasts the mask over the features and counts
        every element it keeps, and reads any nonzero mask value as kept."""
        w = ops.expand_dims(ops.cast(ops.cast(mask, "bool"), inputs.dtype), -1)
        weighted = ops.multiply(inputs, w)
        count = ops.sum(w, axis=reduce, keepdims=True)
        if inputs.ndim - 1 in reduce:  # the statistics sum over the features too, along which w is broadcast
            count = ops.multiply(count, _reduced_count(inputs, [inputs.ndim - 1]))
        count = ops.add(count, backend.epsilon())
        mean = ops.divide(ops.sum(weighted, axis=reduce, keepdims=True), count)
        sq = ops.square(ops.subtract(weighted, mean))
        return mean, ops.divide(ops.sum(ops.multiply(w, sq), axis=reduce, keepdims=True), count), w, count

    @staticmethod
    def _closed_form_fits(inputs, mask) -> bool:
        """Whether the closed-form gradient covers this call: without a mask, or with one of the inputs' shape but
        the features axis (Keras's case; the weights then are 0 or 1 on every element, and their count is that of
        the elements kept). Another mask broadcasts in ways the gradient does not follow: its nodes' own rules give
        the gradient."""
        return mask is None or mask.ndim == inputs.ndim - 1

    def _batch_normalized(self, inputs, mask):
        """Training: inputs normalized with the batch's statistics, and those statistics (mean and variance with
        the reduced axes kept)."""
        reduce = [i for i in range(inputs.ndim) if i not in self._axes]
        stats = []

        def normalize(x, gamma, beta, mask):
            if mask is None:
                mean, centered, var = _centered_moments(x, reduce)
                w = count = None
            else:
                mean, var, w, count = self._masked_moments(x, mask, reduce)
                centered = None
            y, r, inv, _ = _normalize(self, x, mean, var)
            stats.extend((mean, var))

            def grad(dy):
                # The statistics reduce over the axes gamma is constant along, so dxhat = dy * gamma is folded
                # into inv = r * gamma, a small tensor: dx = inv * dy - (x - mean) * k - c.
                d = ops.subtract(x, mean) if centered is None else centered  # masked: y reads every position
                n = _reduced_count(x, reduce) if count is None else count
                s1 = ops.sum(dy, axis=reduce, keepdims=True)
                s2 = ops.multiply(ops.sum(ops.multiply(dy, d), axis=reduce, keepdims=True), r)
                inv_n = _per_count(inv, n)
                k = ops.multiply(ops.multiply(inv_n, r), s2)
                c = ops.multiply(inv_n, s1)
                if w is None:
                    dx = ops.subtract(ops.multiply(dy, inv), ops.add(ops.multiply(d, k), c))
                else:
                    # Only weighted positions move the statistics. The epsilon in the count makes
                    # sum(w * (x - mean)) = mean * epsilon, not 0, which the variance's own dependence on the
                    # mean keeps.
                    c = ops.subtract(c, _per_count(ops.multiply(ops.multiply(k, mean), backend.epsilon()), n))
                    dx = ops.subtract(ops.multiply(dy, inv), ops.multiply(w, ops.add(ops.multiply(d, k), c)))
                return dx, _param_gradient(s2, gamma), _param_gradient(s1, beta), None

            return y, grad

        if self._closed_form_fits(inputs, mask):
            y = custom_gradient(normalize)(inputs, self.gamma, self.beta, mask)
        else:
            y = normalize(inputs, self.gamma, self.beta, mask)[0]
        return y, stats[0], stats[1]

    def call(self, inputs, training=None, mask=None):
        if inputs.ndim != len(self._build_input_shape):
            raise ShapeError(f"BatchNormalization '{self.name}' was built for inputs of rank "
                             f"{len(self._build_input_shape)}, got shape {inputs.shape}.")
        for a in self._axes:
            if inputs.shape[a] is not None and inputs.shape[a] != self.moving_mean.shape[self._axes.index(a)]:
                raise ShapeError(f"BatchNormalization '{self.name}' was built for {self.moving_mean.shape} features on "
                                 f"axis {a}, got input shape {inputs.shape}.")
        rank = inputs.ndim
        if not (training and self.trainable):
            mean = _broadcast_param(self.moving_mean, self._axes, rank)
            var = _broadcast_param(self.moving_variance, self._axes, rank)
            return _normalize(self, inputs, mean, var)[0]
        y, mean, var = self._batch_normalized(inputs, mask)
        flat_mean = ops.reshape(mean, self.moving_mean.shape)
        flat_var = ops.reshape(var, self.moving_variance.shape)
        updates = state_updates(inputs.graph)
        m = self.momentum
        updates.append((self.moving_mean, ops.add(ops.multiply(self.moving_mean, m),
                                                  ops.multiply(flat_mean, 1.0 - m))))
        updates.append((self.moving_variance, ops.add(ops.multiply(self.moving_variance, m),
                                                      ops.multiply(flat_var, 1.0 - m))))
        return y

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
        return custom_gradient(self._normalized)(inputs, self.gamma, self.beta)

    def _normalized(self, x, gamma, beta):
        axes = self._axes
        rest = [i for i in range(x.ndim) if i not in axes]
        mean, centered, var = _centered_moments(x, axes)
        if self.rms_scaling:
            r = ops.rsqrt(ops.add(var, self.epsilon))
            normalized = ops.multiply(x, r)
            gamma_b = _broadcast_param(self.gamma, axes, x.ndim)

            def rms_grad(dy):
                # y = x * r * gamma: dx = r * (dy * gamma - (x - mean) * r * sum(dy * gamma * x * r) / N).
                p = ops.multiply(dy, normalized)
                q = _sum_times_gamma(p, gamma, gamma_b, axes)
                k = _per_count(ops.multiply(q, r), _reduced_count(x, axes))
                dx = ops.multiply(ops.subtract(ops.multiply(dy, gamma_b), ops.multiply(centered, k)), r)
                return dx, ops.sum(p, axis=rest), None

            return ops.multiply(normalized, gamma_b), rms_grad
        y, r, inv, gamma_b = _normalize(self, x, mean, var)

        def grad(dy):
            # gamma varies along the normalized axes: dxhat = dy * gamma, and inv = r * gamma from the forward gives
            # r * dxhat in one product. dx = dy * inv - (x - mean) * r^3 * sum(dxhat * (x - mean)) / N
            # - r * sum(dxhat) / N.
            p = ops.multiply(dy, centered)
            s1 = _sum_times_gamma(dy, gamma, gamma_b, axes)
            q = _sum_times_gamma(p, gamma, gamma_b, axes)
            r_n = _per_count(r, _reduced_count(x, axes))
            k = ops.multiply(ops.multiply(ops.multiply(r_n, r), r), q)
            dx = ops.subtract(ops.multiply(dy, inv), ops.add(ops.multiply(centered, k), ops.multiply(r_n, s1)))
            dgamma = None if gamma is None else _sum_over_rows(p, r, axes, rest)
            dbeta = None if beta is None else ops.sum(dy, axis=rest)
            return dx, dgamma, dbeta

        return y, grad

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

"""Keras 3's losses, written with `core.ops` so the same code runs in the training graph and eagerly.

A loss function maps (y_true, y_pred) to one value per sample (the last axis reduced); a `Loss` object adds the
sample weights and the reduction ("sum_over_batch_size": the weighted sum divided by the number of values, as Keras 3
divides, not by the sum of the weights). Crossentropies on the output of a Softmax (Sigmoid) use its logits, as the
TensorFlow backend of Keras does, for the same numbers and stable gradients.
"""

from __future__ import annotations

import math

import numpy as np

from core import ops
from core.backend import epsilon
from core.errors import ConfigError
from core.graph import producer
from core.ops.dispatch import op
from core.serialization import get_object

_EPS = 1e-7


# -- helpers -----------------------------------------------------------------------------------------------------
def _logits_of(y_pred, op_type):
    n = producer(y_pred)
    if n is not None and n.op_type == op_type and len(n.inputs) == 1:
        return y_pred.graph.values[n.inputs[0]]
    return None


def _floats(y_true, y_pred):
    y_pred = ops.convert_to_tensor(y_pred)
    dt = y_pred.dtype if y_pred.dtype.startswith("float") else "float32"
    return ops.cast(y_true, dt), ops.cast(y_pred, dt)


def _mean_last(x):
    return ops.mean(x, axis=-1)


# -- loss functions (one value per sample) --------------------------------------------------------------------------
def mean_squared_error(y_true, y_pred):
    y_true, y_pred = _floats(y_true, y_pred)
    return _mean_last(ops.square(ops.subtract(y_pred, y_true)))


def mean_absolute_error(y_true, y_pred):
    y_true, y_pred = _floats(y_true, y_pred)
    return _mean_last(ops.abs(ops.subtract(y_pred, y_true)))


def mean_absolute_percentage_error(y_true, y_pred):
    y_true, y_pred = _floats(y_true, y_pred)
    diff = ops.abs(ops.divide(ops.subtract(y_true, y_pred), ops.maximum(ops.abs(y_true), epsilon())))
    return ops.multiply(_mean_last(diff), 100.0)


def mean_squared_logarithmic_error(y_true, y_pred):
    y_true, y_pred = _floats(y_true, y_pred)
    first = ops.log(ops.add(ops.maximum(y_pred, epsilon()), 1.0))
    second = ops.log(ops.add(ops.maximum(y_true, epsilon()), 1.0))
    return _mean_last(ops.square(ops.subtract(first, second)))


def huber(y_true, y_pred, delta=1.0):
    y_true, y_pred = _floats(y_true, y_pred)
    delta = float(delta)
    err = ops.subtract(y_pred, y_true)
    abs_err = ops.abs(err)
    quad = ops.multiply(ops.square(err), 0.5)
    lin = ops.subtract(ops.multiply(abs_err, delta), 0.5 * delta * delta)
    return _mean_last(ops.where(ops.less_equal(abs_err, delta), quad, lin))


def log_cosh(y_true, y_pred):
    y_true, y_pred = _floats(y_true, y_pred)
    x = ops.subtract(y_pred, y_true)
    val = ops.subtract(ops.add(x, ops.softplus(ops.multiply(x, -2.0))), math.log(2.0))
    return _mean_last(val)


def _smooth_categorical(y_true, label_smoothing):
    if not label_smoothing:
        return y_true
    n = y_true.shape[-1]
    return ops.add(ops.multiply(y_true, 1.0 - label_smoothing), label_smoothing / n)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    y_true, y_pred = _floats(y_true, y_pred)
    y_true = _smooth_categorical(y_true, label_smoothing)
    if not from_logits:
        logits = _logits_of(y_pred, "Softmax")
        if logits is not None:
            y_pred, from_logits = logits, True
    if from_logits:
        return ops.negative(ops.sum(ops.multiply(y_true, ops.log_softmax(y_pred, axis=axis)), axis=axis))
    out = ops.divide(y_pred, ops.sum(y_pred, axis=axis, keepdims=True))
    out = ops.clip(out, epsilon(), 1.0 - epsilon())
    return ops.negative(ops.sum(ops.multiply(y_true, ops.log(out)), axis=axis))


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1):
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, -1)
    labels = ops.cast(y_true, "int64")
    n = y_pred.shape[-1]
    onehot = ops.one_hot(labels, n, dtype=y_pred.dtype)
    if not from_logits:
        logits = _logits_of(y_pred, "Softmax")
        if logits is not None:
            y_pred, from_logits = logits, True
    if from_logits:
        logp = ops.log_softmax(y_pred, axis=axis)
    else:
        out = ops.divide(y_pred, ops.sum(y_pred, axis=axis, keepdims=True))
        logp = ops.log(ops.clip(out, epsilon(), 1.0 - epsilon()))
    loss = ops.negative(ops.sum(ops.multiply(onehot, logp), axis=axis))
    if ignore_class is not None:
        keep = ops.cast(ops.not_equal(labels, int(ignore_class)), loss.dtype)
        loss = ops.multiply(loss, keep)
    return loss


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    y_true, y_pred = _floats(y_true, y_pred)
    if label_smoothing:
        y_true = ops.add(ops.multiply(y_true, 1.0 - label_smoothing), 0.5 * label_smoothing)
    if not from_logits:
        logits = _logits_of(y_pred, "Sigmoid")
        if logits is not None:
            y_pred, from_logits = logits, True
    if from_logits:
        # max(x, 0) - x z + log(1 + exp(-|x|)): TensorFlow's stable sigmoid cross-entropy.
        x = y_pred
        val = ops.add(ops.subtract(ops.relu(x), ops.multiply(x, y_true)), ops.softplus(ops.negative(ops.abs(x))))
    else:
        out = ops.clip(y_pred, epsilon(), 1.0 - epsilon())
        val = ops.negative(ops.add(ops.multiply(y_true, ops.log(ops.add(out, epsilon()))),
                                   ops.multiply(ops.subtract(1.0, y_true),
                                                ops.log(ops.add(ops.subtract(1.0, out), epsilon())))))
    return ops.mean(val, axis=axis)


def kl_divergence(y_true, y_pred):
    y_true, y_pred = _floats(y_true, y_pred)
    y_true = ops.clip(y_true, epsilon(), 1.0)
    y_pred = ops.clip(y_pred, epsilon(), 1.0)
    return ops.sum(ops.multiply(y_true, ops.log(ops.divide(y_true, y_pred))), axis=-1)


def poisson(y_true, y_pred):
    y_true, y_pred = _floats(y_true, y_pred)
    return _mean_last(ops.subtract(y_pred, ops.multiply(y_true, ops.log(ops.add(y_pred, epsilon())))))


def _hinge_labels(y_true):
    """0/1 labels become -1/1 (Keras checks the whole batch)."""
    is01 = ops.all(ops.logical_or(ops.equal(y_true, 0.0), ops.equal(y_true, 1.0)))
    return ops.where(is01, ops.subtract(ops.multiply(y_true, 2.0), 1.0), y_true)


def hinge(y_true, y_pred):
    y_true, y_pred = _floats(y_true, y_pred)
    y_true = _hinge_labels(y_true)
    return _mean_last(ops.maximum(ops.subtract(1.0, ops.multiply(y_true, y_pred)), 0.0))


def squared_hinge(y_true, y_pred):
    y_true, y_pred = _floats(y_true, y_pred)
    y_true = _hinge_labels(y_true)
    return _mean_last(ops.square(ops.maximum(ops.subtract(1.0, ops.multiply(y_true, y_pred)), 0.0)))


def categorical_hinge(y_true, y_pred):
    y_true, y_pred = _floats(y_true, y_pred)
    pos = ops.sum(ops.multiply(y_true, y_pred), axis=-1)
    neg = ops.max(ops.multiply(ops.subtract(1.0, y_true), y_pred), axis=-1)
    return ops.maximum(ops.add(ops.subtract(neg, pos), 1.0), 0.0)


def _l2_normalize(x, axis):
    sq = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return ops.multiply(x, ops.rsqrt(ops.maximum(sq, 1e-12)))


def cosine_similarity(y_true, y_pred, axis=-1):
    y_true, y_pred = _floats(y_true, y_pred)
    return ops.negative(ops.sum(ops.multiply(_l2_normalize(y_true, axis), _l2_normalize(y_pred, axis)), axis=axis))


# Keras's short names.
mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kullback_leibler_divergence = kl_divergence
logcosh = log_cosh
huber_loss = huber


# -- Loss objects -------------------------------------------------------------------------------------------------------
REDUCTIONS = ("sum_over_batch_size", "sum", "none", "mean", "mean_with_sample_weight", None, "auto")


def _match_rank(values, sample_weight):
    """Squeeze or expand the sample weights to the rank of the per-sample values (Keras's rule)."""
    sw = ops.cast(sample_weight, values.dtype)
    if sw.ndim == values.ndim + 1 and sw.shape[-1] == 1:
        sw = ops.squeeze(sw, -1)
    while sw.ndim < values.ndim:
        sw = ops.expand_dims(sw, -1)
    return sw


def _apply_mask(sample_weight, mask, values, reduction):
    """Keras merges an output mask into the sample weights; for a mean the kept entries weigh total/valid, so the
    mean runs over the unmasked values only."""
    m = ops.cast(mask, values.dtype)
    if reduction in ("mean", "sum_over_batch_size"):
        g = m.graph
        total = ops.cast(g.emit("Size", [m], {}, [("int64", ())])[0], values.dtype)
        valid = ops.sum(m)
        scale = ops.where(ops.equal(valid, 0.0), ops.zeros_like(valid),
                          ops.divide(total, ops.where(ops.equal(valid, 0.0), ops.ones_like(valid), valid)))
        m = ops.multiply(m, scale)
    if sample_weight is None:
        return m
    sw = ops.cast(sample_weight, values.dtype)
    while sw.ndim < m.ndim:
        sw = ops.expand_dims(sw, -1)
    return ops.multiply(sw, m)


def reduce_weighted(values, sample_weight=None, reduction="sum_over_batch_size", mask=None):
    if mask is not None and mask.ndim == values.ndim:
        sample_weight = _apply_mask(sample_weight, mask, values, reduction)
    if sample_weight is not None:
        sw = _match_rank(values, sample_weight)
        values = ops.multiply(values, sw)
    if reduction in (None, "none") or values.ndim == 0:
        return values
    total = ops.sum(values)
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        div = ops.sum(ops.multiply(ops.ones_like(values), sw))
    else:
        g = total.graph
        size = g.emit("Size", [values], {}, [("int64", ())])[0]
        div = ops.cast(size, values.dtype)
    # divide_no_nan: an empty batch gives 0.
    safe = ops.where(ops.equal(div, 0.0), ops.ones_like(div), div)
    return ops.where(ops.equal(div, 0.0), ops.zeros_like(total), ops.divide(total, safe))


@op
def _evaluate_loss(loss, y_true, y_pred, sample_weight=None):
    return reduce_weighted(loss.call(y_true, y_pred), sample_weight, loss.reduction)


class Loss:
    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        if reduction == "auto":
            reduction = "sum_over_batch_size"
        if reduction not in REDUCTIONS:
            raise ConfigError(f"Loss reduction must be one of {[r for r in REDUCTIONS if r]}, got {reduction!r}.")
        from core.backend import snake_case

        self.name = name or snake_case(type(self).__name__)
        self.reduction = reduction
        self.dtype = dtype

    def call(self, y_true, y_pred):
        raise NotImplementedError

    def __call__(self, y_true, y_pred, sample_weight=None):
        args = [np.asarray(a) if isinstance(a, (list, tuple, int, float)) else a for a in (y_true, y_pred)]
        sw = np.asarray(sample_weight) if isinstance(sample_weight, (list, tuple)) else sample_weight
        return _evaluate_loss(self, *args, sample_weight=sw)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class LossFunctionWrapper(Loss):
    def __init__(self, fn, name=None, reduction="sum_over_batch_size", **kwargs):
        super().__init__(name=name or getattr(fn, "__name__", None), reduction=reduction)
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(self._fn_kwargs)
        return config


def _wrapper_class(fn, default_name, params=()):
    """A Keras loss class around `fn` whose extra keyword arguments are `params` (name, default)."""

    def __init__(self, *args, name=default_name, reduction="sum_over_batch_size", dtype=None, **kwargs):
        values = dict(params)
        names = [p for p, _ in params]
        for a, p in zip(args, names):
            values[p] = a
        for k, v in kwargs.items():
            if k not in values:
                raise ConfigError(f"{type(self).__name__} got an unexpected argument '{k}'.")
            values[k] = v
        LossFunctionWrapper.__init__(self, fn, name=name, reduction=reduction, **values)

    return __init__


def _loss_class(cls_name, fn, default_name, params=()):
    return type(cls_name, (LossFunctionWrapper,), {"__init__": _wrapper_class(fn, default_name, params),
                                                   "__doc__": f"Keras's `{cls_name}` (per sample: `{fn.__name__}`)."})


MeanSquaredError = _loss_class("MeanSquaredError", mean_squared_error, "mean_squared_error")
MeanAbsoluteError = _loss_class("MeanAbsoluteError", mean_absolute_error, "mean_absolute_error")
MeanAbsolutePercentageError = _loss_class("MeanAbsolutePercentageError", mean_absolute_percentage_error,
                                          "mean_absolute_percentage_error")
MeanSquaredLogarithmicError = _loss_class("MeanSquaredLogarithmicError", mean_squared_logarithmic_error,
                                          "mean_squared_logarithmic_error")
Huber = _loss_class("Huber", huber, "huber_loss", (("delta", 1.0),))
LogCosh = _loss_class("LogCosh", log_cosh, "log_cosh")
CategoricalCrossentropy = _loss_class("CategoricalCrossentropy", categorical_crossentropy,
                                      "categorical_crossentropy",
                                      (("from_logits", False), ("label_smoothing", 0.0), ("axis", -1)))
SparseCategoricalCrossentropy = _loss_class("SparseCategoricalCrossentropy", sparse_categorical_crossentropy,
                                            "sparse_categorical_crossentropy",
                                            (("from_logits", False), ("ignore_class", None), ("axis", -1)))
BinaryCrossentropy = _loss_class("BinaryCrossentropy", binary_crossentropy, "binary_crossentropy",
                                 (("from_logits", False), ("label_smoothing", 0.0), ("axis", -1)))
KLDivergence = _loss_class("KLDivergence", kl_divergence, "kl_divergence")
Poisson = _loss_class("Poisson", poisson, "poisson")
Hinge = _loss_class("Hinge", hinge, "hinge")
SquaredHinge = _loss_class("SquaredHinge", squared_hinge, "squared_hinge")
CategoricalHinge = _loss_class("CategoricalHinge", categorical_hinge, "categorical_hinge")
CosineSimilarity = _loss_class("CosineSimilarity", cosine_similarity, "cosine_similarity", (("axis", -1),))

_FUNCTIONS = {
    "mean_squared_error": mean_squared_error, "mse": mean_squared_error,
    "mean_absolute_error": mean_absolute_error, "mae": mean_absolute_error,
    "mean_absolute_percentage_error": mean_absolute_percentage_error, "mape": mean_absolute_percentage_error,
    "mean_squared_logarithmic_error": mean_squared_logarithmic_error, "msle": mean_squared_logarithmic_error,
    "huber": huber, "huber_loss": huber, "log_cosh": log_cosh, "logcosh": log_cosh,
    "categorical_crossentropy": categorical_crossentropy,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
    "binary_crossentropy": binary_crossentropy,
    "kl_divergence": kl_divergence, "kld": kl_divergence, "kullback_leibler_divergence": kl_divergence,
    "poisson": poisson, "hinge": hinge, "squared_hinge": squared_hinge, "categorical_hinge": categorical_hinge,
    "cosine_similarity": cosine_similarity,
}
_CLASSES = {c.__name__: c for c in (
    MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredLogarithmicError, Huber, LogCosh,
    CategoricalCrossentropy, SparseCategoricalCrossentropy, BinaryCrossentropy, KLDivergence, Poisson, Hinge,
    SquaredHinge, CategoricalHinge, CosineSimilarity)}


def get(identifier):
    """A Loss object from a name ('mse', 'categorical_crossentropy', 'CategoricalCrossentropy'), a config dict,
    a Loss object or a function of (y_true, y_pred)."""
    if identifier is None:
        return None
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        if identifier in _FUNCTIONS:
            return LossFunctionWrapper(_FUNCTIONS[identifier], name=identifier)
        if identifier in _CLASSES:
            return _CLASSES[identifier]()
        raise ConfigError(f"Unknown loss '{identifier}'. Known: {', '.join(sorted(_FUNCTIONS))}.")
    if isinstance(identifier, dict):
        obj = get_object(identifier, _CLASSES, "loss") if "class_name" in identifier else None
        if obj is None:
            raise ConfigError(f"Cannot read a loss from {identifier!r}.")
        return obj
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        return LossFunctionWrapper(identifier, name=getattr(identifier, "__name__", "loss"))
    raise ConfigError(f"Cannot interpret {identifier!r} as a loss.")


def names() -> list[str]:
    """The loss names `get` takes ('mse', 'categorical_crossentropy', ...), without the short aliases' twins."""
    return sorted(_FUNCTIONS)


def serialize(loss):
    if isinstance(loss, LossFunctionWrapper) and type(loss) is LossFunctionWrapper:
        return loss.name
    return {"module": "keras.losses", "class_name": type(loss).__name__, "config": loss.get_config(),
            "registered_name": None}


def deserialize(config):
    return get(config)


def is_sparse(loss) -> bool:
    fn = getattr(loss, "fn", None)
    return fn is sparse_categorical_crossentropy


def is_categorical(loss) -> bool:
    return getattr(loss, "fn", None) is categorical_crossentropy

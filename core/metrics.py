"""Keras 3's metrics, stateful across batches.

A metric splits into two halves so that training copies out only a few numbers per step: `batch_stats(y_true,
y_pred, sample_weight)` is written with `core.ops` and runs inside the training graph (or eagerly), returning small
tensors (a weighted total and a count; confusion counts per threshold); `merge(stats)` adds them to the state kept
in numpy, and `result()` reads the state. `update_state` runs both halves eagerly, as Keras's API does.
"""

from __future__ import annotations

import numpy as np

from core import losses as losses_module
from core import ops
from core.backend import epsilon
from core.errors import ConfigError
from core.ops.dispatch import op


def _same_rank(values, sample_weight):
    """Keras's `squeeze_or_expand_to_same_rank`: a trailing axis of 1 is squeezed (or a rank-1 weight expanded)
    when the ranks differ by one; other rank differences are left alone."""
    if values.ndim == sample_weight.ndim + 1 and values.shape[-1] == 1:
        if sample_weight.ndim == 1:
            return values, ops.expand_dims(sample_weight, -1)
        return ops.squeeze(values, -1), sample_weight
    if sample_weight.ndim == values.ndim + 1 and sample_weight.shape[-1] == 1:
        if values.ndim == 1:
            return ops.expand_dims(values, -1), sample_weight
        return values, ops.squeeze(sample_weight, -1)
    return values, sample_weight


def _sample_values(values, sample_weight):
    """Keras's Mean (`reduce_to_samplewise_values`): the values are averaged down to the weights' rank and
    weighted; weights and values are then averaged over all but the sample axis. Returns (total, count): the sum
    of the weighted per-sample values and the sum of the per-sample weights (the batch size without weights)."""
    values = ops.cast(values, "float32")
    sw = None
    if sample_weight is not None:
        values, sw = _same_rank(values, ops.cast(sample_weight, values.dtype))
        if values.ndim > sw.ndim:
            values = ops.mean(values, axis=list(range(sw.ndim, values.ndim)))
        while sw.ndim > values.ndim:
            # Keras cannot broadcast these (a metric of one value per sample, or a scalar, under per-timestep
            # weights) and fails; weights averaged down to the values' rank keep the mean meaningful.
            sw = ops.mean(sw, axis=-1)
        sw = ops.multiply(sw, ops.ones_like(values))
        values = ops.multiply(values, sw)
        if sw.ndim > 1:
            sw = ops.mean(sw, axis=list(range(1, sw.ndim)))
    if values.ndim > 1:
        values = ops.mean(values, axis=list(range(1, values.ndim)))
    total = ops.sum(values)
    count = ops.sum(sw if sw is not None else ops.ones_like(values))
    return [total, count]


def _mask_weights(mask, sample_weight):
    """Keras's `apply_mask` with reduction 'sum': the mask as float weights, times the sample weights if any. A
    weight per sample (rank 1) weighs all of its timesteps; Keras needs it shaped (samples, 1) for that."""
    m = ops.cast(mask, "float32")
    if sample_weight is None:
        return m
    m, sw = _same_rank(m, ops.cast(sample_weight, "float32"))
    while sw.ndim < m.ndim:
        sw = ops.expand_dims(sw, -1)
    return ops.multiply(sw, m)


def output_mask(y_pred):
    """The Keras mask a prediction carries (`backend.get_keras_mask`), or None."""
    mask = getattr(y_pred, "_keras_mask", None)
    return mask if hasattr(mask, "graph") else None


@op
def _eager_stats(metric, y_true, y_pred, sample_weight=None):
    return metric.batch_stats(y_true, y_pred, sample_weight)


def _record_in_graph(metric, *args, sample_weight=None) -> bool:
    """A metric updated inside a layer's `call` on traced tensors: its batch statistics join the graph being
    traced (the training or evaluation step outputs them, and the trainer merges them), as Keras tracks metrics
    updated in `call`. Returns False for concrete values, which update at once."""
    from core.graph import SymbolicTensor

    graph = next((a.graph for a in (*args, sample_weight) if isinstance(a, SymbolicTensor)), None)
    if graph is None:
        return False
    from core.graph import graph_scope

    with graph_scope(graph):
        stats = metric.batch_stats(*args, sample_weight)
    graph.root.metric_updates.append((metric, stats))
    return True


class RecordedMetric:
    """What calling a metric on traced tensors returns: the metric, updated when the step runs."""

    def __init__(self, metric):
        self.metric = metric


class Metric:
    def __init__(self, name=None, dtype=None):
        from core.backend import snake_case

        self.name = name or snake_case(type(self).__name__)
        self.dtype = dtype or "float32"
        self.reset_state()

    # graph half
    def batch_stats(self, y_true, y_pred, sample_weight=None) -> list:
        raise NotImplementedError

    # host half
    def reset_state(self):
        self._state = None

    def merge(self, stats) -> None:
        if self._state is None:
            self._state = [np.array(s, dtype=np.float64) for s in stats]
        else:
            for acc, s in zip(self._state, stats):
                acc += s

    def result(self):
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        if _record_in_graph(self, y_true, y_pred, sample_weight=sample_weight):
            return
        args = [np.asarray(a) for a in (y_true, y_pred)]
        sw = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float32)
        self.merge([np.asarray(s) for s in _eager_stats(self, *args, sample_weight=sw)])

    def __call__(self, y_true, y_pred, sample_weight=None):
        if _record_in_graph(self, y_true, y_pred, sample_weight=sample_weight):
            # Inside a traced call the value is only known when the step runs: what comes back stands for this
            # metric, which tf.keras 2's `layer.add_metric(metric(y, p))` then reports under the metric's name.
            return RecordedMetric(self)
        self.update_state(y_true, y_pred, sample_weight)
        return self.result()

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


class Mean(Metric):
    """The weighted mean of values (used for the loss of each batch, weighted by the batch size)."""

    def batch_stats(self, values, _unused=None, sample_weight=None):
        return _sample_values(values, sample_weight)

    def update_state(self, values, sample_weight=None):
        if _record_in_graph(self, values, None, sample_weight=sample_weight):
            return
        values = np.asarray(values, dtype=np.float64)
        if values.ndim > 1:
            values = values.reshape(values.shape[0], -1).mean(axis=1)
        if sample_weight is None:
            self.add(float(values.sum()), values.size if values.ndim else 1)
        else:
            sw = np.broadcast_to(np.asarray(sample_weight, dtype=np.float64), values.shape)
            self.add(float((values * sw).sum()), float(sw.sum()))

    def add(self, total: float, count: float) -> None:
        """Add a weighted sum and its weight (the host's fast path, used for the loss of each step)."""
        if self._state is None:
            self._state = [float(total), float(count)]
        else:
            self._state[0] += total
            self._state[1] += count

    def result(self):
        if self._state is None or self._state[1] == 0:
            return 0.0
        return float(self._state[0] / self._state[1])


class MeanMetricWrapper(Metric):
    """The mean over samples of `fn(y_true, y_pred)`."""

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        self._fn = fn
        self._fn_kwargs = kwargs
        super().__init__(name=name or getattr(fn, "__name__", None), dtype=dtype)

    def batch_stats(self, y_true, y_pred, sample_weight=None):
        # Keras's MeanMetricWrapper folds y_pred's mask into the weights whether or not sample weights were given,
        # so a masked output's metrics (compile's `metrics` as well as `weighted_metrics`) skip masked timesteps.
        # Other metrics (RootMeanSquaredError, the confusion-matrix metrics, AUC) ignore the mask, as Keras's do.
        mask = output_mask(y_pred)
        if mask is not None:
            sample_weight = _mask_weights(mask, sample_weight)
        return _sample_values(self._fn(y_true, y_pred, **self._fn_kwargs), sample_weight)

    def result(self):
        if self._state is None or self._state[1] == 0:
            return 0.0
        return float(self._state[0] / self._state[1])

    def get_config(self):
        config = super().get_config()
        config.update(self._fn_kwargs)
        return config


# -- per-sample functions ------------------------------------------------------------------------------------------
def binary_accuracy(y_true, y_pred, threshold=0.5):
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    pred = ops.cast(ops.greater(y_pred, threshold), y_pred.dtype)
    return ops.mean(ops.cast(ops.equal(y_true, pred), "float32"), axis=-1)


def categorical_accuracy(y_true, y_pred):
    return ops.cast(ops.equal(ops.argmax(y_true, axis=-1), ops.argmax(y_pred, axis=-1)), "float32")


def sparse_categorical_accuracy(y_true, y_pred):
    y_true = ops.convert_to_tensor(y_true)
    y_pred = ops.convert_to_tensor(y_pred)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, -1)
    return ops.cast(ops.equal(ops.cast(y_true, "int64"), ops.argmax(y_pred, axis=-1)), "float32")


def _in_top_k(labels, y_pred, k):
    """Whether the label's score is among the k largest (ties counted in, as tf.math.in_top_k does)."""
    onehot = ops.one_hot(labels, y_pred.shape[-1], dtype=y_pred.dtype)
    label_score = ops.sum(ops.multiply(onehot, y_pred), axis=-1, keepdims=True)
    higher = ops.sum(ops.cast(ops.greater(y_pred, label_score), "float32"), axis=-1)
    return ops.cast(ops.less(higher, float(k)), "float32")


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    return _in_top_k(ops.argmax(y_true, axis=-1), ops.convert_to_tensor(y_pred), k)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    y_true = ops.convert_to_tensor(y_true)
    y_pred = ops.convert_to_tensor(y_pred)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, -1)
    return _in_top_k(ops.cast(y_true, "int64"), y_pred, k)


def _metric_class(cls_name, fn, default_name, params=()):
    def __init__(self, *args, name=default_name, dtype=None, **kwargs):
        values = dict(params)
        for a, (p, _) in zip(args, params):
            values[p] = a
        for k, v in kwargs.items():
            if k not in values:
                raise ConfigError(f"{cls_name} got an unexpected argument '{k}'.")
            values[k] = v
        MeanMetricWrapper.__init__(self, fn, name=name, dtype=dtype, **values)

    return type(cls_name, (MeanMetricWrapper,), {"__init__": __init__,
                                                  "__doc__": f"Keras's `{cls_name}`: the mean of `{fn.__name__}`."})


BinaryAccuracy = _metric_class("BinaryAccuracy", binary_accuracy, "binary_accuracy", (("threshold", 0.5),))
CategoricalAccuracy = _metric_class("CategoricalAccuracy", categorical_accuracy, "categorical_accuracy")
SparseCategoricalAccuracy = _metric_class("SparseCategoricalAccuracy", sparse_categorical_accuracy,
                                          "sparse_categorical_accuracy")
TopKCategoricalAccuracy = _metric_class("TopKCategoricalAccuracy", top_k_categorical_accuracy,
                                        "top_k_categorical_accuracy", (("k", 5),))
SparseTopKCategoricalAccuracy = _metric_class("SparseTopKCategoricalAccuracy", sparse_top_k_categorical_accuracy,
                                              "sparse_top_k_categorical_accuracy", (("k", 5),))
MeanSquaredError = _metric_class("MeanSquaredError", losses_module.mean_squared_error, "mean_squared_error")
MeanAbsoluteError = _metric_class("MeanAbsoluteError", losses_module.mean_absolute_error, "mean_absolute_error")
MeanAbsolutePercentageError = _metric_class("MeanAbsolutePercentageError",
                                            losses_module.mean_absolute_percentage_error,
                                            "mean_absolute_percentage_error")
MeanSquaredLogarithmicError = _metric_class("MeanSquaredLogarithmicError",
                                            losses_module.mean_squared_logarithmic_error,
                                            "mean_squared_logarithmic_error")
CategoricalCrossentropy = _metric_class("CategoricalCrossentropy", losses_module.categorical_crossentropy,
                                        "categorical_crossentropy",
                                        (("from_logits", False), ("label_smoothing", 0.0)))
SparseCategoricalCrossentropy = _metric_class("SparseCategoricalCrossentropy",
                                              losses_module.sparse_categorical_crossentropy,
                                              "sparse_categorical_crossentropy", (("from_logits", False),))
BinaryCrossentropy = _metric_class("BinaryCrossentropy", losses_module.binary_crossentropy, "binary_crossentropy",
                                   (("from_logits", False), ("label_smoothing", 0.0)))
KLDivergence = _metric_class("KLDivergence", losses_module.kl_divergence, "kl_divergence")
Poisson = _metric_class("Poisson", losses_module.poisson, "poisson")
Hinge = _metric_class("Hinge", losses_module.hinge, "hinge")
SquaredHinge = _metric_class("SquaredHinge", losses_module.squared_hinge, "squared_hinge")
LogCoshError = _metric_class("LogCoshError", losses_module.log_cosh, "logcosh")


class CosineSimilarity(MeanMetricWrapper):
    def __init__(self, name="cosine_similarity", dtype=None, axis=-1):
        super().__init__(lambda t, p: ops.negative(losses_module.cosine_similarity(t, p, axis=axis)), name=name,
                         dtype=dtype)


class RootMeanSquaredError(Metric):
    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def batch_stats(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = losses_module._floats(y_true, y_pred)
        return _sample_values(ops.square(ops.subtract(y_pred, y_true)), sample_weight)

    def result(self):
        if self._state is None or self._state[1] == 0:
            return 0.0
        return float(np.sqrt(self._state[0] / self._state[1]))


# -- confusion-matrix metrics ----------------------------------------------------------------------------------------
def _confusion(y_true, y_pred, thresholds, sample_weight):
    """tp, fp, tn, fn per threshold, over every prediction in the batch (prediction > threshold is positive).
    Weights per sample (or per timestep) weigh each of its predictions, as Keras broadcasts them."""
    y_pred = ops.cast(y_pred, "float32")
    w = ops.ones_like(y_pred)
    if sample_weight is not None:
        sw = ops.cast(sample_weight, "float32")
        while sw.ndim < y_pred.ndim:
            sw = ops.expand_dims(sw, -1)
        w = ops.multiply(w, sw)
    label = ops.cast(ops.cast(y_true, "bool"), "float32")
    y_pred, label, w = (ops.reshape(t, (-1,)) for t in (y_pred, label, w))
    th = y_pred.graph.constant(np.asarray(thresholds, dtype=np.float32).reshape(-1, 1))
    pos = ops.cast(ops.greater(ops.expand_dims(y_pred, 0), th), "float32")  # (thresholds, N)
    lw = ops.multiply(label, w)
    nw = ops.multiply(ops.subtract(1.0, label), w)
    tp = ops.sum(ops.multiply(pos, lw), axis=1)
    fp = ops.sum(ops.multiply(pos, nw), axis=1)
    fn = ops.subtract(ops.sum(lw), tp)
    tn = ops.subtract(ops.sum(nw), fp)
    return [tp, fp, tn, fn]


def _div(a, b):
    return np.where(b == 0, 0.0, a / np.where(b == 0, 1.0, b))


class _ThresholdMetric(Metric):
    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        if top_k is not None or class_id is not None:
            raise ConfigError(f"{type(self).__name__}: top_k and class_id are not supported.")
        self.init_thresholds = thresholds
        t = 0.5 if thresholds is None else thresholds
        self.thresholds = [float(v) for v in np.atleast_1d(t)]
        super().__init__(name=name, dtype=dtype)

    def batch_stats(self, y_true, y_pred, sample_weight=None):
        return _confusion(y_true, y_pred, self.thresholds, sample_weight)

    def _counts(self):
        if self._state is None:
            z = np.zeros(len(self.thresholds))
            return z, z, z, z
        return self._state

    def _single(self, v):
        return float(v[0]) if len(self.thresholds) == 1 else v.astype(np.float32)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "thresholds": self.init_thresholds}


class Precision(_ThresholdMetric):
    def result(self):
        tp, fp, _, _ = self._counts()
        return self._single(_div(tp, tp + fp))


class Recall(_ThresholdMetric):
    def result(self):
        tp, _, _, fn = self._counts()
        return self._single(_div(tp, tp + fn))


class TruePositives(_ThresholdMetric):
    def result(self):
        return self._single(self._counts()[0])


class FalsePositives(_ThresholdMetric):
    def result(self):
        return self._single(self._counts()[1])


class TrueNegatives(_ThresholdMetric):
    def result(self):
        return self._single(self._counts()[2])


class FalseNegatives(_ThresholdMetric):
    def result(self):
        return self._single(self._counts()[3])


class AUC(Metric):
    """Area under the ROC or PR curve from confusion counts at `num_thresholds` thresholds (Keras's Riemann sum
    with 'interpolation': trapezoids for ROC, Davis & Goadrich interpolation for PR)."""

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation", name=None, dtype=None,
                 thresholds=None, multi_label=False, num_labels=None, label_weights=None, from_logits=False):
        if multi_label:
            raise ConfigError("AUC: multi_label=True is not supported.")
        self.curve = str(curve).upper()
        if self.curve not in ("ROC", "PR"):
            raise ConfigError(f"AUC: curve must be 'ROC' or 'PR', got {curve!r}.")
        self.summation_method = summation_method
        self.from_logits = from_logits
        if thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
            self.num_thresholds = len(inner) + 2
        else:
            if num_thresholds <= 1:
                raise ConfigError(f"AUC: num_thresholds must be > 1, got {num_thresholds}.")
            self.num_thresholds = int(num_thresholds)
            inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        self.thresholds = [0.0 - epsilon()] + inner + [1.0 + epsilon()]
        super().__init__(name=name, dtype=dtype)

    def batch_stats(self, y_true, y_pred, sample_weight=None):
        if self.from_logits:
            y_pred = ops.sigmoid(y_pred)
        return _confusion(y_true, y_pred, self.thresholds, sample_weight)

    def result(self):
        if self._state is None:
            return 0.0
        tp, fp, tn, fn = self._state
        if self.curve == "PR" and self.summation_method == "interpolation":
            dtp = tp[:-1] - tp[1:]
            p = tp + fp
            dp = p[:-1] - p[1:]
            prec_slope = _div(dtp, np.maximum(dp, 0))
            intercept = tp[1:] - prec_slope * p[1:]
            safe_p_ratio = np.where((p[:-1] > 0) & (p[1:] > 0), _div(p[:-1], np.maximum(p[1:], 0)), np.ones_like(p[1:]))
            pr_auc_increment = _div(prec_slope * (dtp + intercept * np.log(safe_p_ratio)), np.maximum(tp[1:] + fn[1:], 0))
            return float(np.sum(pr_auc_increment))
        recall = _div(tp, tp + fn)
        if self.curve == "ROC":
            x = _div(fp, fp + tn)
            y = recall
        else:
            x = recall
            y = _div(tp, tp + fp)
        if self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        elif self.summation_method == "majoring":
            heights = np.maximum(y[:-1], y[1:])
        else:
            heights = (y[:-1] + y[1:]) / 2.0
        return float(np.sum((x[:-1] - x[1:]) * heights))

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "num_thresholds": self.num_thresholds, "curve": self.curve,
                "summation_method": self.summation_method}


# -- names ------------------------------------------------------------------------------------------------------
_NAMES = {
    "binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mape": MeanAbsolutePercentageError, "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError, "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "rmse": RootMeanSquaredError, "root_mean_squared_error": RootMeanSquaredError,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy, "kl_divergence": KLDivergence, "kld": KLDivergence,
    "poisson": Poisson, "hinge": Hinge, "squared_hinge": SquaredHinge, "logcosh": LogCoshError,
    "cosine_similarity": CosineSimilarity, "auc": AUC, "precision": Precision, "recall": Recall,
}
_CLASSES = {c.__name__: c for c in (
    BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy, TopKCategoricalAccuracy,
    SparseTopKCategoricalAccuracy, MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError, RootMeanSquaredError, CategoricalCrossentropy, SparseCategoricalCrossentropy,
    BinaryCrossentropy, KLDivergence, Poisson, Hinge, SquaredHinge, LogCoshError, CosineSimilarity, AUC, Precision,
    Recall, TruePositives, FalsePositives, TrueNegatives, FalseNegatives, Mean)}


def get(identifier):
    """A Metric from a name, a config dict, a class, an instance or a function (wrapped in a mean)."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        cls = _NAMES.get(identifier) or _CLASSES.get(identifier)
        if cls is None:
            raise ConfigError(f"Unknown metric '{identifier}'. Known: accuracy, {', '.join(sorted(_NAMES))}.")
        m = cls()
        return m
    if isinstance(identifier, dict):
        from core.serialization import get_object

        return get_object(identifier, _CLASSES, "metric")
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier):
        return MeanMetricWrapper(identifier, name=getattr(identifier, "__name__", "metric"))
    raise ConfigError(f"Cannot interpret {identifier!r} as a metric.")


def resolve(identifier, y_true_shape, y_pred_shape, loss=None):
    """Keras's compile-time resolution: 'accuracy'/'acc' becomes binary, sparse categorical or categorical accuracy
    from the shapes of the targets and outputs; a string keeps its name (so 'mae' logs as 'mae')."""
    if str(identifier).lower() in ("accuracy", "acc"):
        is_binary = y_pred_shape[-1] == 1
        is_sparse = len(y_true_shape) == len(y_pred_shape) - 1 or (
            len(y_true_shape) == len(y_pred_shape) and y_true_shape[-1] == 1 and (y_pred_shape[-1] or 2) > 1)
        if is_binary:
            m = BinaryAccuracy(name=str(identifier))
        elif is_sparse:
            m = SparseCategoricalAccuracy(name=str(identifier))
        else:
            m = CategoricalAccuracy(name=str(identifier))
        return m
    m = get(identifier)
    if isinstance(identifier, str):
        m.name = identifier
    return m


def serialize(metric):
    return {"module": "keras.metrics", "class_name": type(metric).__name__, "config": metric.get_config(),
            "registered_name": None}


def deserialize(config):
    return get(config)

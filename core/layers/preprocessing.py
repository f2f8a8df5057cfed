"""Preprocessing layers for numbers and integer categories: Normalization, Rescaling, Discretization,
CategoryEncoding, Hashing and IntegerLookup.

Differences from Keras, each refused with an error rather than computed differently: sparse outputs, salted
hashing (SipHash), hashing strings, and multi_hot/count of inputs of rank 3 or more.

They compute inside the model's ONNX graph, so an exported model takes raw features. What they learn from data
(`adapt`) follows Keras 3's algorithms exactly: Normalization's running mean and variance, Discretization's quantile
summaries, IntegerLookup's vocabulary ordered by count (ties: the larger token first).

`IndexLookup` holds what IntegerLookup shares with StringLookup (core.layers.text_preprocessing, with
TextVectorization): the vocabulary, its special indices, tf_idf weights, adapt and the config.
"""

from __future__ import annotations

import numpy as np

from core import backend, ops
from core.errors import ConfigError, ShapeError
from core.layers.base import Layer

__all__ = ["Normalization", "Rescaling", "Discretization", "CategoryEncoding", "Hashing", "IntegerLookup"]

_ENCODINGS = ("one_hot", "multi_hot", "count")


def _choice(layer: str, name: str, value, allowed):
    if value not in allowed:
        raise ConfigError(f"{layer}: '{name}' must be one of {list(allowed)}, got {value!r}.")
    return value


def _no_sparse(layer: str, sparse) -> None:
    if sparse:
        raise ConfigError(f"{layer}: sparse=True (a TensorFlow SparseTensor output) is not supported; outputs are "
                          f"dense.")


def adapt_batches(data, layer_name: str):
    """The batches `adapt` reads, as numpy arrays: one array, a `core.data.Dataset` (its (x, y) elements give x),
    or any other iterable of batches (a list of arrays, a generator), as Keras 3 reads them."""
    from core.data import Dataset

    if isinstance(data, np.ndarray) or hasattr(data, "_nw_variable") or type(data).__name__ == "EagerTensor":
        return [np.asarray(data)]
    if isinstance(data, Dataset):
        elements = data.as_numpy_iterator()
    elif hasattr(data, "__iter__") and not isinstance(data, (str, bytes)):
        elements = iter(data)
    else:
        raise TypeError(f"Layer '{layer_name}': adapt() takes a numpy array, a core.data.Dataset or an iterable of "
                        f"batches, got {type(data).__name__}.")
    batches = [np.asarray(e[0] if isinstance(e, tuple) else e) for e in elements]
    if not batches:
        raise ValueError(f"Layer '{layer_name}': adapt() got no data (an empty dataset or iterable).")
    return batches


def shapes_only(tensor) -> bool:
    """Whether `tensor` belongs to the scratch graph a Functional call traces only for output shapes, so a layer
    that is adapted later (drawn first, adapted on data afterwards, as Keras allows) can still be wired."""
    graph = getattr(tensor, "graph", None)
    return graph is not None and graph.root.name.endswith(("_shapes", "_shape"))


def encode_categorical(indices, output_mode: str, depth: int, dtype: str = "float32", count_weights=None):
    """Keras 3's `encode_categorical_inputs`: int indices as one_hot, multi_hot or count vectors of length depth.

    one_hot drops a trailing axis of size 1; multi_hot and count reduce the last axis of rank-2 inputs (a rank-1
    input is one sample), as Keras's TensorFlow path does.
    """
    if output_mode == "int":
        return ops.cast(indices, dtype)
    rank = len(indices.shape)
    if rank == 0:
        indices = ops.expand_dims(indices, -1)
        rank = 1
    if output_mode == "one_hot":
        if rank > 1 and indices.shape[-1] == 1:
            indices = ops.squeeze(indices, -1)
        return ops.one_hot(indices, depth, dtype=dtype)
    if rank > 2:
        raise ShapeError(f"{output_mode} encoding takes inputs of rank 1 or 2 (samples of categories), got shape "
                         f"{tuple(indices.shape)}.")
    hot = ops.one_hot(indices, depth, dtype="float32")
    if output_mode == "multi_hot":  # (a sum, not a max: a row of no tokens at all gives zeros)
        return ops.cast(ops.minimum(ops.sum(hot, axis=rank - 1), 1.0), dtype)
    if count_weights is not None:
        hot = ops.multiply(hot, ops.expand_dims(ops.cast(count_weights, "float32"), -1))
    return ops.cast(ops.sum(hot, axis=rank - 1), dtype)


# -- numbers -----------------------------------------------------------------------------------------------------------
class Normalization(Layer):
    """Shifts and scales inputs to mean 0 and variance 1 per feature: `(x - mean) / sqrt(variance)`.

    The mean and variance are given, or learned from data with `adapt(data)` (kept as the non-trainable weights
    'mean', 'variance' and 'count', as Keras 3 keeps them, so files and set_weights carry them). Running it before
    it is adapted (or given statistics by a file or set_weights) is an error, where Keras silently passes inputs
    through unchanged; wiring it into a model first is fine.

    Args:
        axis: The axis (or axes) that keep a separate mean and variance; other axes are averaged over. -1: one per
            feature of the last axis; none: one mean and variance for everything.
        mean: The mean to use instead of adapting (with `variance`).
        variance: The variance to use instead of adapting (with `mean`).
        invert: If true, undo the normalization: `mean + x * sqrt(variance)`.
    """

    supports_masking = True

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        elif isinstance(axis, (int, np.integer)):
            axis = (int(axis),)
        self.axis = tuple(int(a) for a in axis)
        if (mean is None) != (variance is None):
            raise ConfigError(f"Normalization '{self.name}': give both 'mean' and 'variance', or neither (then call "
                              f"adapt()); got mean={mean!r}, variance={variance!r}.")
        if mean is not None:
            if np.shape(mean) != np.shape(variance):
                raise ConfigError(f"Normalization '{self.name}': 'mean' and 'variance' need the same shape, got "
                                  f"{np.shape(mean)} and {np.shape(variance)}.")
            if np.ndim(mean) > len(self.axis):
                raise ConfigError(f"Normalization '{self.name}': 'mean' has rank {np.ndim(mean)}, more than the "
                                  f"{len(self.axis)} axes in axis={list(self.axis)}.")
        self.input_mean = mean
        self.input_variance = variance
        self.invert = bool(invert)

    def build(self, input_shape):
        ndim = len(input_shape)
        if any(a < -ndim or a >= ndim for a in self.axis):
            raise ShapeError(f"Normalization '{self.name}': axis {list(self.axis)} is out of range for inputs of "
                             f"shape {tuple(input_shape)}.")
        self._keep_axis = tuple(sorted(a % ndim for a in self.axis))
        unknown = [a for a in self._keep_axis if input_shape[a] is None]
        if unknown:
            raise ShapeError(f"Normalization '{self.name}': the axes it keeps ({list(self._keep_axis)}) need known "
                             f"sizes, but axis {unknown[0]} of input shape {tuple(input_shape)} is unknown.")
        self._reduce_axis = tuple(d for d in range(ndim) if d not in self._keep_axis)
        self._broadcast_shape = [input_shape[d] if d in self._keep_axis else 1 for d in range(ndim)]
        shape = tuple(input_shape[d] for d in self._keep_axis)
        if self.input_mean is None:
            self.adapt_mean = self.add_weight(name="mean", shape=shape, initializer="zeros", trainable=False)
            self.adapt_variance = self.add_weight(name="variance", shape=shape, initializer="ones", trainable=False)
            self.count = self.add_weight(name="count", shape=(), dtype="int64", initializer="zeros", trainable=False)
        else:
            self._given = [self._broadcast_given(v, ndim) for v in (self.input_mean, self.input_variance)]

    def _broadcast_given(self, value, ndim):
        """A given mean or variance aligned, from the right, with the kept axes, as Keras 3 aligns it."""
        arr = np.asarray(value, dtype=np.float32)
        expanded = [1] * ndim
        for i in range(1, arr.ndim + 1):
            expanded[self._keep_axis[-i]] = arr.shape[-i]
        return np.broadcast_to(arr.reshape(expanded), self._broadcast_shape).astype(np.float32)

    def adapt(self, data):
        """Learn the mean and variance of `data` (a numpy array, a `core.data.Dataset` or an iterable of batches)."""
        batches = adapt_batches(data, self.name)
        if not self.built:
            self._maybe_build_from_shape(batches[0].shape)
        if self.input_mean is not None:
            raise ConfigError(f"Normalization '{self.name}' was given its mean and variance; it cannot adapt.")
        for b in batches:
            for d in self._keep_axis:
                if b.ndim != len(self._broadcast_shape) or b.shape[d] != self._broadcast_shape[d]:
                    raise ShapeError(f"Normalization '{self.name}' was built for inputs shaped "
                                     f"{tuple(self._build_input_shape)}, but adapt() got data shaped {b.shape}.")
        if isinstance(data, np.ndarray):
            mean = np.mean(data, axis=self._reduce_axis)
            var = np.var(data, axis=self._reduce_axis)
        else:  # Keras 3 merges the batches' statistics one by one, in float32
            mean = np.zeros(self.adapt_mean.shape, np.float32)
            var = np.zeros(self.adapt_mean.shape, np.float32)
            total = 0
            for b in batches:
                b = b.astype(np.float32)
                b_mean, b_var = np.mean(b, axis=self._reduce_axis), np.var(b, axis=self._reduce_axis)
                count = int(np.prod([b.shape[d] for d in self._reduce_axis])) if self._reduce_axis else 1
                total += count
                w = np.float32(count / total)
                existing = np.float32(1.0) - w
                new_mean = mean * existing + b_mean * w
                var = (var + (mean - new_mean) ** 2) * existing + (b_var + (b_mean - new_mean) ** 2) * w
                mean = new_mean
        self.adapt_mean.assign(mean)
        self.adapt_variance.assign(var)

    def _maybe_build_from_shape(self, shape):
        self._build_input_shape = (None,) + tuple(shape[1:])
        self.build(self._build_input_shape)
        self.built = True

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        if self.input_mean is None and not shapes_only(inputs) and \
                not (self.adapt_mean._version or self.adapt_variance._version):
            raise ConfigError(f"Normalization '{self.name}' has no statistics yet: call layer.adapt(data) first (or "
                              f"give mean= and variance=, or load weights).")
        if self.input_mean is None:
            mean = ops.reshape(self.adapt_mean, self._broadcast_shape)
            variance = ops.reshape(self.adapt_variance, self._broadcast_shape)
        else:
            mean, variance = self._given
        scale = ops.maximum(ops.sqrt(variance), backend.epsilon())
        if self.invert:
            return ops.add(mean, ops.multiply(x, scale))
        return ops.divide(ops.subtract(x, mean), scale)

    def get_config(self):
        config = super().get_config()
        config.update({"axis": list(self.axis), "invert": self.invert,
                       "mean": np.array(self.input_mean).tolist(), "variance": np.array(self.input_variance).tolist()})
        return config


class Rescaling(Layer):
    """Multiplies inputs by `scale` and adds `offset`: `x * scale + offset` (e.g. scale=1/255 for pixel values).

    Args:
        scale: The factor (a number, or a list that broadcasts against the inputs).
        offset: The amount added after scaling.
    """

    supports_masking = True

    def __init__(self, scale=1.0, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        for key, value in (("scale", scale), ("offset", offset)):
            try:
                np.asarray(value, dtype=np.float32)
            except (TypeError, ValueError):
                raise ConfigError(f"Rescaling: '{key}' must be a number or a list of numbers, got {value!r}.") \
                    from None
        self.scale = scale
        self.offset = offset

    def call(self, inputs):
        scale = np.asarray(self.scale, dtype=np.float32)
        offset = np.asarray(self.offset, dtype=np.float32)
        return ops.add(ops.multiply(ops.cast(inputs, "float32"), scale), offset)

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale, "offset": self.offset})
        return config


class Discretization(Layer):
    """Buckets numbers into ranges: the output is how many `bin_boundaries` are at or below each value.

    Boundaries are given, or learned with `adapt(data)` as `num_bins` quantiles (Keras 3's summary algorithm, with
    tolerance `epsilon`).

    Args:
        bin_boundaries: Increasing boundaries; n boundaries make n + 1 bins.
        num_bins: How many bins adapt() makes (instead of bin_boundaries).
        epsilon: Error tolerance of the quantiles adapt() computes.
        output_mode: 'int' (the bin index), 'one_hot', 'multi_hot' or 'count' (vectors over the bins).
    """

    def __init__(self, bin_boundaries=None, num_bins=None, epsilon=0.01, output_mode="int", sparse=False,
                 dtype=None, name=None, **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        _no_sparse("Discretization", sparse)
        self.output_mode = _choice("Discretization", "output_mode", output_mode, ("int",) + _ENCODINGS)
        if num_bins is not None and (isinstance(num_bins, bool) or not isinstance(num_bins, (int, np.integer))
                                     or num_bins < 0):
            raise ConfigError(f"Discretization: 'num_bins' must be an integer of 0 or more, got {num_bins!r}.")
        if num_bins is not None and bin_boundaries is not None:
            raise ConfigError(f"Discretization: give 'bin_boundaries' or 'num_bins', not both (got "
                              f"bin_boundaries={bin_boundaries!r}, num_bins={num_bins}).")
        if num_bins is None and bin_boundaries is None:
            raise ConfigError("Discretization needs 'bin_boundaries', or 'num_bins' and a call to adapt().")
        if bin_boundaries is not None:
            bin_boundaries = [float(b) for b in bin_boundaries]
            if any(b > a for a, b in zip(bin_boundaries[1:], bin_boundaries)):
                raise ConfigError(f"Discretization: 'bin_boundaries' must be increasing, got {bin_boundaries}.")
        self.bin_boundaries = bin_boundaries
        self.num_bins = num_bins
        self.epsilon = float(epsilon)
        self.sparse = False

    @classmethod
    def from_config(cls, config):
        # An adapted layer's config holds both (its learned boundaries and num_bins), as Keras 3 writes it.
        config = dict(config)
        if config.get("bin_boundaries") is not None and config.get("num_bins") is not None:
            boundaries = config.pop("bin_boundaries")
            layer = cls(**config)
            layer.bin_boundaries = [float(b) for b in boundaries]
            return layer
        return cls(**config)

    def adapt(self, data, steps=None):
        """Learn `num_bins` quantile boundaries from `data` (an array, a `core.data.Dataset` or batches)."""
        if self.num_bins is None:
            raise ConfigError(f"Discretization '{self.name}' was given bin_boundaries; give num_bins instead to "
                              f"adapt it.")
        batches = adapt_batches(data, self.name)
        if steps is not None and not isinstance(data, np.ndarray):
            batches = batches[:steps]
        summary = np.array([[], []], dtype="float32")
        for b in batches:
            summary = _merge_summaries(_summarize(b.astype("float32"), self.epsilon), summary, self.epsilon)
        self.bin_boundaries = _compress_summary(summary, 1.0 / self.num_bins)[0, :-1].tolist()
        self._nw_state_version = getattr(self, "_nw_state_version", 0) + 1  # compiled models rebuild their graph

    def call(self, inputs):
        if self.bin_boundaries is None and not shapes_only(inputs):
            raise ConfigError(f"Discretization '{self.name}' has no bin boundaries yet: call "
                              f"layer.adapt(data) first (or give bin_boundaries).")
        boundaries = self.bin_boundaries if self.bin_boundaries is not None else [0.0] * (self.num_bins - 1)
        indices = ops.digitize(inputs, boundaries)
        depth = len(boundaries) + 1
        return encode_categorical(indices, self.output_mode, depth,
                                  "int32" if self.output_mode == "int" else "float32")

    def get_config(self):
        # Once the boundaries are known they are the config: the Keras constructors (and tf.keras 2's from_config)
        # refuse num_bins beside them.
        num_bins = None if self.bin_boundaries is not None else self.num_bins
        return {"bin_boundaries": self.bin_boundaries, "num_bins": num_bins, "epsilon": self.epsilon,
                "output_mode": self.output_mode, "sparse": False, "name": self.name, "dtype": self.dtype}


# Keras 3's quantile summaries (keras/src/layers/preprocessing/discretization.py), reimplemented for identical bins.
def _summarize(values, epsilon):
    values = np.sort(np.reshape(values, [-1]))
    step = max(np.size(values) / (1.0 / epsilon), 1)
    boundaries = values[int(step - 1)::int(step)]
    return np.stack([boundaries, np.ones_like(boundaries) * step])


def _merge_summaries(prev, new, epsilon):
    merged = np.concatenate((prev, new), axis=1)
    return _compress_summary(np.take(merged, np.argsort(merged[0]), axis=1), epsilon)


def _compress_summary(summary, epsilon):
    if summary.shape[1] * epsilon < 1:
        return summary
    percents = epsilon + np.arange(0.0, 1.0, epsilon)
    cum_weights = summary[1].cumsum()
    cum_percents = cum_weights / cum_weights[-1]
    new_bins = np.interp(percents, cum_percents, summary[0])
    cum_weights = np.interp(percents, cum_percents, cum_weights)
    new_weights = cum_weights - np.concatenate((np.array([0]), cum_weights[:-1]))
    return np.stack((new_bins, new_weights)).astype("float32")


# -- integer categories ------------------------------------------------------------------------------------------------
class CategoryEncoding(Layer):
    """Encodes integer categories (0 to num_tokens - 1) as vectors: one_hot, multi_hot (which categories a sample
    has) or count (how often each occurs; `count_weights` weighs each occurrence).

    Args:
        num_tokens: How many categories there are; inputs must lie in [0, num_tokens).
        output_mode: 'one_hot', 'multi_hot' or 'count'.
    """

    def __init__(self, num_tokens=None, output_mode="multi_hot", sparse=False, **kwargs):
        super().__init__(**kwargs)
        _no_sparse("CategoryEncoding", sparse)
        if output_mode == "binary":  # Keras's old name
            output_mode = "multi_hot"
        self.output_mode = _choice("CategoryEncoding", "output_mode", output_mode, _ENCODINGS)
        if num_tokens is None or isinstance(num_tokens, bool) or not isinstance(num_tokens, (int, np.integer)) \
                or num_tokens < 1:
            raise ConfigError(f"CategoryEncoding: 'num_tokens' must be an integer of 1 or more (use IntegerLookup "
                              f"when the number of categories is not known), got {num_tokens!r}.")
        self.num_tokens = int(num_tokens)
        self.sparse = False

    def call(self, inputs, count_weights=None):
        if count_weights is not None and self.output_mode != "count":
            raise ConfigError(f"CategoryEncoding '{self.name}': count_weights are used only with "
                              f"output_mode='count', not {self.output_mode!r}.")
        return encode_categorical(inputs, self.output_mode, self.num_tokens, "float32", count_weights)

    def get_config(self):
        config = super().get_config()
        config.update({"num_tokens": self.num_tokens, "output_mode": self.output_mode, "sparse": False})
        return config


class Hashing(Layer):
    """Hashes integers into `num_bins` bins exactly as Keras 3 does: FarmHash64 (TensorFlow's
    `to_hash_bucket_fast`) of each value's decimal text, modulo the bins; floats are truncated to integers first.

    Computed with standard ONNX integer ops, so it runs and exports like any layer. Not supported (refused with an
    error rather than giving different bins): string inputs (FarmHash of arbitrary text needs the text's bytes,
    which standard ONNX cannot read) and `salt` (Keras then uses SipHash).

    Args:
        num_bins: How many bins; with mask_value, bin 0 is the mask's and values hash into the other num_bins - 1.
        mask_value: A value that goes to bin 0 (e.g. padding); none: no mask bin.
        output_mode: 'int' (the bin), 'one_hot', 'multi_hot' or 'count' (vectors over the bins).
    """

    def __init__(self, num_bins, mask_value=None, salt=None, output_mode="int", sparse=False, **kwargs):
        if kwargs.get("dtype") is None:
            kwargs["dtype"] = "int64" if output_mode == "int" else None
        super().__init__(**kwargs)
        _no_sparse("Hashing", sparse)
        self.output_mode = _choice("Hashing", "output_mode", output_mode, ("int",) + _ENCODINGS)
        if num_bins is None or isinstance(num_bins, bool) or not isinstance(num_bins, (int, np.integer)) \
                or num_bins <= 0:
            raise ConfigError(f"Hashing: 'num_bins' must be a positive integer, got {num_bins!r}.")
        if salt is not None:
            raise ConfigError(f"Hashing: salt={salt!r} makes Keras hash with SipHash, which is not supported here "
                              f"(only the unsalted FarmHash64 is computed exactly); leave salt unset.")
        if mask_value is not None and (isinstance(mask_value, bool) or not isinstance(mask_value, (int, np.integer))):
            raise ConfigError(f"Hashing: 'mask_value' must be an integer (string inputs are not supported), got "
                              f"{mask_value!r}.")
        self.num_bins = int(num_bins)
        self.mask_value = mask_value
        self.salt = None
        self.sparse = False

    def call(self, inputs):
        dtype = getattr(inputs, "dtype", None)
        if dtype is not None and not str(dtype).startswith(("int", "uint", "float", "bool")):
            raise ConfigError(f"Hashing '{self.name}': {dtype} inputs are not supported; Keras hashes strings with "
                              f"FarmHash64 of their bytes, which standard ONNX cannot compute. Hash integers, or map "
                              f"strings with StringLookup.")
        x = inputs
        if self.output_mode == "one_hot" and len(x.shape) > 1 and x.shape[-1] == 1:
            x = ops.squeeze(x, -1)
        x = ops.cast(x, "int64")  # floats truncate toward zero, as TensorFlow's cast does
        masked = self.mask_value is not None and self.num_bins > 1
        bins = ops.hash_bucket_of_integers(x, self.num_bins - 1 if masked else self.num_bins)
        if masked:
            bins = ops.where(ops.equal(x, np.int64(self.mask_value)), np.int64(0), ops.add(bins, np.int64(1)))
        return encode_categorical(bins, self.output_mode, self.num_bins,
                                  "int64" if self.output_mode == "int" else "float32")

    def get_config(self):
        config = super().get_config()
        config.update({"num_bins": self.num_bins, "salt": self.salt, "mask_value": self.mask_value,
                       "output_mode": self.output_mode, "sparse": False})
        return config


class IndexLookup(Layer):
    """What IntegerLookup and StringLookup share, as Keras 3's IndexLookup: the vocabulary (given, adapted, read
    from a .keras archive's assets), its special indices and tf_idf weights. Subclasses say what a token is
    (`_token`) and compute the lookup in `call`."""

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token=None, vocabulary=None,
                 idf_weights=None, invert=False, output_mode="int", sparse=False, pad_to_max_tokens=False, salt=None,
                 vocabulary_size=None, **kwargs):
        super().__init__(**kwargs)
        name = f"{type(self).__name__} '{self.name}'"
        _no_sparse(name, sparse)
        if output_mode == "binary":
            output_mode = "multi_hot"
        self.output_mode = _choice(name, "output_mode", output_mode, ("int",) + _ENCODINGS + ("tf_idf",))
        if max_tokens is not None and max_tokens <= 1:
            raise ConfigError(f"{name}: 'max_tokens' must be more than 1 when set, got {max_tokens}.")
        if num_oov_indices < 0:
            raise ConfigError(f"{name}: 'num_oov_indices' must be 0 or more, got {num_oov_indices}.")
        if invert and output_mode != "int":
            raise ConfigError(f"{name}: invert=True needs output_mode='int', got {output_mode!r}.")
        if pad_to_max_tokens and max_tokens is None:
            raise ConfigError(f"{name}: pad_to_max_tokens=True needs max_tokens.")
        if salt is not None:
            raise ConfigError(f"{name}: salt={salt!r} makes Keras hash OOV tokens with SipHash, which is not "
                              f"supported here; leave salt unset.")
        self.max_tokens = max_tokens
        self.num_oov_indices = int(num_oov_indices)
        self.mask_token = None if mask_token is None else self._token(mask_token)
        self.oov_token = None if oov_token is None else self._token(oov_token)
        self.invert = bool(invert)
        self.pad_to_max_tokens = bool(pad_to_max_tokens)
        self.salt = None
        self.sparse = False
        vocabulary = self._read_vocabulary(vocabulary)
        self.input_vocabulary = None if vocabulary is None else [self._token(v) for v in vocabulary]
        self.input_idf_weights = None if idf_weights is None else [float(w) for w in idf_weights]
        self._vocabulary = None
        self._idf = None
        self._vocabulary_size_hint = vocabulary_size  # Keras's record of an adapted vocabulary's size
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)

    def _read_vocabulary(self, vocabulary):
        return vocabulary

    def _token(self, value):
        raise NotImplementedError

    def get_config(self):
        config = super().get_config()
        # An adapted vocabulary is written in the config (Keras keeps it in a .keras file's assets), so every file
        # format carries it and both Kerases load it as a given vocabulary.
        vocabulary = self.input_vocabulary if self.input_vocabulary is not None else self._vocabulary
        idf = None
        if self.output_mode == "tf_idf" and self._idf is not None:
            idf = self.input_idf_weights if self.input_idf_weights is not None else \
                self._idf[self._token_start():self._token_start() + len(self._vocabulary)].tolist()
        config.update({"invert": self.invert, "max_tokens": self.max_tokens, "num_oov_indices": self.num_oov_indices,
                       "oov_token": self.oov_token, "mask_token": self.mask_token, "output_mode": self.output_mode,
                       "sparse": False, "pad_to_max_tokens": self.pad_to_max_tokens,
                       "idf_weights": idf, "vocabulary": vocabulary,
                       "vocabulary_size": None if self._vocabulary is None else self.vocabulary_size(),
                       "salt": None})
        return config

    # -- the vocabulary -------------------------------------------------------------------------------------------
    def _oov_start(self) -> int:
        # The mask token takes index 0 only in int mode; vector modes drop it, as Keras 3 does.
        return int(self.mask_token is not None and self.output_mode == "int")

    def _token_start(self) -> int:
        return self._oov_start() + self.num_oov_indices

    def _special_tokens(self) -> list:
        return [self.mask_token] * self._oov_start() + [self.oov_token] * self.num_oov_indices

    def set_vocabulary(self, vocabulary, idf_weights=None):
        """Use `vocabulary` (tokens in index order; a leading mask and OOV token are recognised and dropped)."""
        tokens = [self._token(v) for v in np.asarray(vocabulary, dtype=object).reshape(-1)]
        special = self._special_tokens()
        if special and tokens[:len(special)] == special:
            tokens = tokens[len(special):]
        repeated = sorted({t for t in tokens if tokens.count(t) > 1})
        if repeated:
            raise ConfigError(f"{type(self).__name__} '{self.name}': the vocabulary repeats {repeated}.")
        for token, what in ((self.mask_token, "mask_token"), (self.oov_token, "oov_token")):
            if token is not None and token in tokens and not (what == "oov_token" and self.num_oov_indices == 0):
                raise ConfigError(f"{type(self).__name__} '{self.name}': the vocabulary contains the {what} {token}; leave "
                                  f"it out (its index is reserved).")
        if self.max_tokens is not None and len(tokens) + self._token_start() > self.max_tokens:
            raise ConfigError(f"{type(self).__name__} '{self.name}': a vocabulary of {len(tokens)} tokens plus "
                              f"{self._token_start()} special indices exceeds max_tokens={self.max_tokens}.")
        if self.output_mode == "tf_idf":
            if idf_weights is None:
                raise ConfigError(f"{type(self).__name__} '{self.name}': output_mode='tf_idf' with a given vocabulary "
                                  f"needs idf_weights (one per token).")
            weights = np.asarray(idf_weights, dtype=np.float32).reshape(-1)
            if weights.size == len(tokens) + self._token_start():
                weights = weights[self._token_start():]  # weights that include the special indices
            if weights.size != len(tokens):
                raise ConfigError(f"{type(self).__name__} '{self.name}': {weights.size} idf_weights for {len(tokens)} "
                                  f"tokens.")
            self._idf = self._pad_idf(weights)
        elif idf_weights is not None:
            raise ConfigError(f"{type(self).__name__} '{self.name}': idf_weights are used only with output_mode='tf_idf'.")
        self._check_size_unchanged(tokens)
        self._vocabulary = tokens
        self._nw_state_version = getattr(self, "_nw_state_version", 0) + 1

    def _pad_idf(self, weights):
        """The idf weights at every output index: special indices get the mean weight, as in Keras 3."""
        padded = np.concatenate([np.full(self._token_start(), np.mean(weights) if weights.size else 0.0,
                                         np.float32), weights]).astype(np.float32)
        if self.pad_to_max_tokens:
            padded = np.concatenate([padded, np.zeros(self.max_tokens - padded.size, np.float32)])
        return padded

    def get_vocabulary(self, include_special_tokens=True):
        self._require_vocabulary()
        special = self._special_tokens()
        return (special if include_special_tokens else []) + list(self._vocabulary)

    def vocabulary_size(self) -> int:
        self._require_vocabulary()
        return self._token_start() + len(self._vocabulary)

    def _require_vocabulary(self):
        if self._vocabulary is None:
            raise ConfigError(f"{type(self).__name__} '{self.name}' has no vocabulary yet: call layer.adapt(data) or "
                              f"layer.set_vocabulary(tokens) first (or give vocabulary=...).")

    def adapt(self, data, steps=None):
        """Learn the vocabulary from `data` (an array, a list, a `core.data.Dataset` or batches): the most frequent
        tokens first, ties broken by the larger token, as Keras 3 orders them."""
        if self.input_vocabulary is not None:
            raise ConfigError(f"{type(self).__name__} '{self.name}' was given its vocabulary; it cannot adapt.")
        one_array = isinstance(data, (list, tuple, np.ndarray))
        batches = [data] if one_array else adapt_batches(data, self.name)
        if steps is not None and not one_array:
            batches = batches[:steps]
        self.learn_vocabulary(doc for b in batches for doc in self._documents(b, one_array))

    def _documents(self, batch, one_array: bool):
        """Keras 3's documents (what tf_idf counts in): each value of a rank-1 array, but a whole rank-1 batch of a
        dataset; each row of a rank-2 batch."""
        b = np.asarray([self._token(t) for t in np.asarray(batch, dtype=object).reshape(-1)],
                       dtype=object).reshape(np.shape(batch))
        if b.ndim == 0 or (b.ndim == 1 and not one_array):
            return list(b.reshape(1, -1))
        return list(b.reshape(b.shape[0], -1))

    def learn_vocabulary(self, documents):
        """The vocabulary (and tf_idf's weights) of `documents`, each a sequence of tokens: by count, ties broken
        by the larger token (Keras 3 sorts token bytes; Python's str order is the same as UTF-8's byte order)."""
        counts, doc_counts, n_documents = {}, {}, 0
        for doc in documents:
            for t in doc:
                counts[t] = counts.get(t, 0) + 1
            for t in set(doc):
                doc_counts[t] = doc_counts.get(t, 0) + 1
            n_documents += 1
        for special in (self.mask_token, self.oov_token):
            counts.pop(special, None)
        vocabulary = [t for t, _ in sorted(counts.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)]
        if self.max_tokens:
            vocabulary = vocabulary[:max(self.max_tokens - self._token_start(), 0)]
        if self.output_mode == "tf_idf":
            df = np.array([doc_counts[t] for t in vocabulary], dtype=np.float64)
            self._idf = self._pad_idf(np.log(1 + n_documents / (1 + df)).astype(np.float32))
        self._check_size_unchanged(vocabulary)
        self._vocabulary = vocabulary
        self._nw_state_version = getattr(self, "_nw_state_version", 0) + 1  # compiled models rebuild their graph

    def _check_size_unchanged(self, tokens):
        size = self._token_start() + len(tokens)
        if self.output_mode != "int" and not self.pad_to_max_tokens and self._vocabulary_size_hint is not None \
                and size != self._vocabulary_size_hint:
            raise ConfigError(f"{type(self).__name__} '{self.name}': its {self.output_mode} output was wired "
                              f"{self._vocabulary_size_hint} long, but the new vocabulary makes it {size}; use "
                              f"pad_to_max_tokens=True with max_tokens to change the vocabulary of a wired layer.")

    def keras3_named_variables(self) -> dict:
        """What Keras 3 saves in a .keras archive for this layer besides weights: a tf_idf layer's idf_weights."""
        return {"idf_weights": self._idf} if self.output_mode == "tf_idf" and self._idf is not None else {}

    def load_assets(self, vocabulary_text: str, idf_weights=None):
        """The vocabulary Keras 3 keeps in a .keras archive (assets/.../vocabulary.txt: every index's token, special
        tokens first) and, for tf_idf, the weights of every index."""
        lines = vocabulary_text.splitlines()
        while lines and lines[-1] == "":
            lines.pop()
        tokens = [self._token(line) for line in lines]
        if self.output_mode == "tf_idf":
            if idf_weights is None:
                raise ConfigError(f"{type(self).__name__} '{self.name}': the file has a tf_idf vocabulary but no "
                                  f"idf_weights.")
            weights = np.asarray(idf_weights, dtype=np.float32).reshape(-1)
            self.set_vocabulary(tokens, weights[:len(tokens)])
            self._idf = weights.astype(np.float32)
        else:
            self.set_vocabulary(tokens)

    def compute_mask(self, inputs, mask=None):
        return None


class IntegerLookup(IndexLookup):
    """Maps integer tokens to consecutive indices through a vocabulary, given or learned with `adapt(data)`.

    Indices: the mask token (if set, and only in int mode) is 0, then `num_oov_indices` indices for tokens outside
    the vocabulary (a token t goes to OOV index `t mod num_oov_indices`, or to its FarmHash bucket with
    oov_method='farmhash'), then the vocabulary in order. `invert=True` maps indices back to tokens. Outputs int64
    indices, or one_hot, multi_hot, count (int64, as Keras 3's) or tf_idf (float32) vectors.
    With num_oov_indices=0, a token outside the vocabulary gives -1 where Keras stops with an error (a graph
    cannot raise).

    Args:
        max_tokens: Largest vocabulary size, special tokens included; adapt() keeps the most frequent tokens.
        num_oov_indices: How many indices tokens outside the vocabulary share.
        mask_token: The token that means padding (index 0); none: no mask token.
        oov_token: The token invert=True gives for OOV indices.
        vocabulary: The tokens, in index order (without the mask and OOV tokens).
        idf_weights: For tf_idf with a given vocabulary: one weight per vocabulary token.
        invert: Map indices back to tokens.
        output_mode: 'int', 'one_hot', 'multi_hot', 'count' or 'tf_idf'.
        pad_to_max_tokens: Make vector outputs max_tokens long whatever the vocabulary size.
    """

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token=-1, vocabulary=None,
                 vocabulary_dtype="int64", idf_weights=None, invert=False, output_mode="int", sparse=False,
                 pad_to_max_tokens=False, oov_method="floormod", salt=None, vocabulary_size=None, **kwargs):
        if vocabulary_dtype not in ("int64", "int32"):
            raise ConfigError(f"IntegerLookup: 'vocabulary_dtype' must be 'int64' or 'int32', got "
                              f"{vocabulary_dtype!r}.")
        _choice("IntegerLookup", "oov_method", oov_method, ("floormod", "farmhash"))
        self.vocabulary_dtype = vocabulary_dtype
        self.oov_method = oov_method
        super().__init__(max_tokens=max_tokens, num_oov_indices=num_oov_indices, mask_token=mask_token,
                         oov_token=oov_token, vocabulary=vocabulary, idf_weights=idf_weights, invert=invert,
                         output_mode=output_mode, sparse=sparse, pad_to_max_tokens=pad_to_max_tokens, salt=salt,
                         vocabulary_size=vocabulary_size, **kwargs)

    def _token(self, value):
        return int(value)

    # -- computing ------------------------------------------------------------------------------------------------
    def call(self, inputs):
        if self._vocabulary is None and shapes_only(inputs):
            return self._placeholder(inputs)
        self._require_vocabulary()
        x = ops.cast(inputs, "int64")
        if self.invert:
            return self._invert(x)
        start = self._token_start()
        if self._vocabulary:
            vocab = np.array(self._vocabulary, dtype=np.int64)
            matches = ops.cast(ops.equal(ops.expand_dims(x, -1), vocab), "int64")
            found = ops.greater(ops.sum(matches, axis=-1), 0)
            index = ops.sum(ops.multiply(matches, np.arange(start, start + vocab.size, dtype=np.int64)), axis=-1)
        else:
            found = ops.cast(ops.multiply(x, 0), "bool")
            index = ops.multiply(x, 0)
        oov_start = self._oov_start()
        if self.num_oov_indices == 0:
            oov = ops.add(ops.multiply(x, 0), -1)
        elif self.num_oov_indices == 1:
            oov = ops.add(ops.multiply(x, 0), oov_start)
        elif self.oov_method == "farmhash":
            oov = ops.add(ops.hash_bucket_of_integers(x, self.num_oov_indices), np.int64(oov_start))
        else:
            oov = ops.add(ops.floor_mod(x, np.int64(self.num_oov_indices)), oov_start)
        lookups = ops.where(found, index, oov)
        depth = self.max_tokens if self.pad_to_max_tokens else self.vocabulary_size()
        if self.mask_token is not None:
            # the mask token is index 0 in int mode and counts nowhere in vector modes (an index past the end)
            masked = np.int64(0 if self.output_mode == "int" else depth)
            lookups = ops.where(ops.equal(x, np.int64(self.mask_token)), masked, lookups)
        if self.output_mode == "int":
            return lookups
        if self.output_mode == "tf_idf":
            counts = encode_categorical(lookups, "count", depth, "float32")
            return ops.multiply(counts, self._idf)
        return encode_categorical(lookups, self.output_mode, depth, self.vocabulary_dtype)

    def _placeholder(self, inputs):
        """Output of the right shape and dtype for a layer whose vocabulary comes later (adapt, or a file's
        assets); running it still needs the vocabulary."""
        x = ops.cast(inputs, "int64")
        if self.output_mode == "int":
            return ops.multiply(x, 0)
        depth = self.max_tokens if self.pad_to_max_tokens else self._vocabulary_size_hint
        if depth is None:
            raise ConfigError(f"IntegerLookup '{self.name}' has no vocabulary yet, so the length of its "
                              f"{self.output_mode} output is unknown: call layer.adapt(data) before wiring it (or "
                              f"give vocabulary=..., or max_tokens with pad_to_max_tokens=True).")
        dtype = "float32" if self.output_mode == "tf_idf" else self.vocabulary_dtype
        return encode_categorical(ops.multiply(x, 0), "count", depth, dtype)

    def _invert(self, indices):
        table = np.array(self.get_vocabulary(), dtype=np.int64)
        in_range = ops.logical_and(ops.greater_equal(indices, np.int64(self._token_start())),
                                   ops.less(indices, np.int64(table.size)))
        safe = ops.where(in_range, indices, np.int64(0))
        tokens = ops.take(table, safe, axis=0)
        oov = self.oov_token if self.oov_token is not None else -1
        tokens = ops.where(in_range, tokens, np.int64(oov))
        if self.mask_token is not None:
            tokens = ops.where(ops.equal(indices, np.int64(0)), np.int64(self.mask_token), tokens)
        return tokens

    def get_config(self):
        config = super().get_config()
        config.update({"vocabulary_dtype": self.vocabulary_dtype, "oov_method": self.oov_method})
        return config

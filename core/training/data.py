"""Where fit/evaluate get their batches: numpy arrays (and lists/dicts of them), `core.data.Dataset`s and Python
generators, each yielding (x, y, sample_weight) in the user's structure, one batch at a time."""

from __future__ import annotations

import inspect

import numpy as np

from core.data import Dataset
from core.errors import InputDataError
from core.graph import is_text, is_text_list, text_array


def batch_indices(n: int, batch_size: int, shuffle: bool, steps: int | None = None):
    """Each batch's indices for one epoch: in order, or in one permutation drawn for the epoch; with `steps`, the
    passes repeat (in the same order) until that many batches were given."""
    order = np.random.permutation(n) if shuffle else None
    count = 0
    while True:
        for start in range(0, n, batch_size):
            if steps is not None and count >= steps:
                return
            yield slice(start, start + batch_size) if order is None else order[start:start + batch_size]
            count += 1
        if steps is None or count >= steps:
            return


def _leaves(x):
    if isinstance(x, (list, tuple)):
        return [l for v in x for l in _leaves(v)]
    if isinstance(x, dict):
        return [l for v in x.values() for l in _leaves(v)]
    return [x]


def _slice(x, idx):
    if x is None:
        return None
    if isinstance(x, (list, tuple)):
        return type(x)(_slice(v, idx) for v in x)
    if isinstance(x, dict):
        return {k: _slice(v, idx) for k, v in x.items()}
    return x[idx]


def _as_arrays(x, what, text: bool = False):
    """Numeric arrays in the user's structure; with `text`, texts too (model inputs that take strings)."""
    if x is None:
        return None
    if text and is_text_list(x):
        return text_array(x)
    if isinstance(x, (list, tuple)):
        if x and all(isinstance(v, (int, float, np.number)) for v in x):
            return np.asarray(x)
        return type(x)(_as_arrays(v, what, text) for v in x)
    if isinstance(x, dict):
        return {k: _as_arrays(v, what, text) for k, v in x.items()}
    try:
        arr = np.asarray(x)
    except Exception as exc:
        raise InputDataError(f"{what} could not be read as an array: {exc}") from None
    if text and is_text(arr):
        if arr.ndim == 0:
            raise InputDataError(f"{what} must be an array with a sample axis, got a single text.")
        return text_array(arr)  # for a model whose input takes text; a numeric input refuses it by name
    if arr.dtype == object:
        raise InputDataError(f"{what} could not be read as a numeric array (ragged lists or mixed types?).")
    if arr.dtype.kind not in "biuf":
        raise InputDataError(f"{what} has dtype {arr.dtype}, which cannot be cast to numbers.")
    if arr.ndim == 0:
        raise InputDataError(f"{what} must be an array with a sample axis, got a scalar.")
    return arr


def is_generator(x) -> bool:
    return inspect.isgenerator(x) or (hasattr(x, "__next__") and hasattr(x, "__iter__")
                                      and not isinstance(x, (np.ndarray, list, tuple, dict, Dataset)))


def unpack(batch):
    """(x, y, sample_weight) from a dataset/generator element."""
    if isinstance(batch, tuple):
        if len(batch) == 1:
            return batch[0], None, None
        if len(batch) == 2:
            return batch[0], batch[1], None
        if len(batch) == 3:
            return batch
        raise InputDataError(f"A data element must be x, (x,), (x, y) or (x, y, sample_weight); got a tuple of "
                             f"{len(batch)}.")
    return batch, None, None


class ArraySource:
    def __init__(self, x, y, sample_weight, batch_size, shuffle=False):
        self.x = _as_arrays(x, "x", text=True)
        self.y = _as_arrays(y, "y")
        self.sw = _as_arrays(sample_weight, "sample_weight")
        sizes = {a.shape[0] for a in _leaves(self.x) + (_leaves(self.y) if self.y is not None else [])}
        if len(sizes) > 1:
            raise InputDataError(f"x and y must have the same number of samples, got sizes {sorted(sizes)}.")
        self.n = sizes.pop() if sizes else 0
        if self.n == 0:
            raise InputDataError("fit/evaluate got no samples (empty x).")
        if self.sw is not None:
            for a in _leaves(self.sw):
                if a.shape[0] != self.n:
                    raise InputDataError(f"sample_weight has {a.shape[0]} entries for {self.n} samples.")
        self.batch_size = batch_size
        self.shuffle = shuffle

    def __len__(self):
        return -(-self.n // self.batch_size)

    def split(self, fraction: float):
        """Keras's validation_split: the last `fraction` of the samples, taken before any shuffling."""
        if not 0.0 < fraction < 1.0:
            raise InputDataError(f"validation_split must be between 0 and 1, got {fraction}.")
        cut = int(self.n * (1.0 - fraction))
        if cut == 0 or cut == self.n:
            raise InputDataError(f"validation_split={fraction} leaves no samples for training or validation "
                                 f"({self.n} samples).")
        head, tail = np.arange(cut), np.arange(cut, self.n)
        val = ArraySource(_slice(self.x, tail), _slice(self.y, tail), _slice(self.sw, tail), self.batch_size)
        train = ArraySource(_slice(self.x, head), _slice(self.y, head), _slice(self.sw, head), self.batch_size,
                            self.shuffle)
        return train, val

    def batches(self, epoch: int, steps: int | None = None):
        for idx in batch_indices(self.n, self.batch_size, self.shuffle, steps):
            yield _slice(self.x, idx), _slice(self.y, idx), _slice(self.sw, idx)


class DatasetSource:
    """A `core.data.Dataset` whose elements are batches; each epoch iterates it afresh (reshuffling it), or, with
    `steps`, takes that many batches."""

    def __init__(self, dataset: Dataset, steps=None, what="fit"):
        from core.data import INFINITE_CARDINALITY

        self.dataset = dataset
        if dataset._batched is False:
            raise InputDataError(f"{what} needs a batched Dataset: its elements are single samples. Call "
                                 f".batch(batch_size) on it first.")
        if dataset._cardinality() == INFINITE_CARDINALITY and steps is None:
            raise InputDataError(f"{what} got an infinite Dataset (repeat() without a count): give "
                                 f"{'steps_per_epoch' if what == 'fit' else 'steps'} so an epoch ends.")

    def __len__(self):
        return max(self.dataset._cardinality(), 0)

    def batches(self, epoch: int, steps: int | None = None):
        for i, b in enumerate(self.dataset._elements()):
            if steps is not None and i >= steps:
                return
            yield unpack(b)


class GeneratorSource:
    """A Python generator or iterator of batches; `steps` batches per epoch (all of it when not given)."""

    def __init__(self, gen, steps):
        self.gen = gen
        self.steps = steps
        self.exhausted = False

    def __len__(self):
        return self.steps or 0

    def batches(self, epoch: int, steps: int | None = None):
        steps = steps or self.steps
        i = 0
        while steps is None or i < steps:
            try:
                b = next(self.gen)
            except StopIteration:
                self.exhausted = True
                return
            yield unpack(b)
            i += 1


def is_batch_sequence(x) -> bool:
    """A `keras.utils.Sequence` / `PyDataset` (or any object with `len` and batches by index), not an array."""
    return hasattr(x, "__getitem__") and hasattr(x, "__len__") and not hasattr(x, "shape") and \
        not isinstance(x, (list, tuple, dict, str, bytes, Dataset))


class SequenceSource:
    """Batch i of an epoch is `sequence[i]`; `on_epoch_end` runs after each epoch, as Keras calls it."""

    def __init__(self, sequence):
        self.sequence = sequence

    def __len__(self):
        return len(self.sequence)

    def batches(self, epoch: int, steps: int | None = None):
        count = len(self.sequence) if steps is None else steps
        i = 0
        while i < count:
            for k in range(len(self.sequence)):
                if i >= count:
                    break
                yield unpack(self.sequence[k])
                i += 1
            if len(self.sequence) == 0:
                break
        on_epoch_end = getattr(self.sequence, "on_epoch_end", None)
        if on_epoch_end is not None:
            on_epoch_end()


def make_source(x, y, sample_weight, batch_size, shuffle, steps=None, what="fit"):
    if is_batch_sequence(x):
        if y is not None:
            raise InputDataError(f"{what}: when x is a Sequence, y must not be given (its batches hold it).")
        return SequenceSource(x)
    if isinstance(x, Dataset):
        if y is not None:
            raise InputDataError(f"{what}: when x is a Dataset, y must not be given (the dataset yields it).")
        return DatasetSource(x, steps, what)
    if is_generator(x):
        if y is not None:
            raise InputDataError(f"{what}: when x is a generator, y must not be given (the generator yields it).")
        return GeneratorSource(x, steps)
    if x is None:
        raise InputDataError(f"{what} needs data: x is None.")
    return ArraySource(x, y, sample_weight, batch_size, shuffle)


class PreparedBatch(tuple):
    """A batch already converted and checked as a whole array set: (inputs, targets, sample weights) lists."""


class PreparedArrays:
    """Arrays converted and checked once before training, so a step only slices them."""

    def __init__(self, xs, ys, sws, batch_size, shuffle):
        self.xs, self.ys, self.sws = xs, ys, sws
        self.n = xs[0].shape[0]
        self.batch_size = batch_size
        self.shuffle = shuffle

    def __len__(self):
        return -(-self.n // self.batch_size)

    def batches(self, epoch: int, steps: int | None = None):
        for idx in batch_indices(self.n, self.batch_size, self.shuffle, steps):
            yield PreparedBatch(([a[idx] for a in self.xs], [None if a is None else a[idx] for a in self.ys],
                                 [a[idx] for a in self.sws]))

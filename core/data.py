"""A small `tf.data.Dataset`: enough for the seed guides' `from_tensor_slices(...).shuffle(...).batch(...)`."""

from __future__ import annotations

import numpy as np

from core.errors import InputDataError
from core.layers.base import flatten as _leaves, map_structure


class Dataset:
    """Slices of arrays (a tuple `(x, y)` or `(x, y, sample_weight)`, each part an array, list or dict), optionally
    shuffled and batched. Iterating yields batches in the same structure."""

    def __init__(self, tensors, batch_size: int | None = None, shuffle_buffer: int | None = None, seed=None,
                 repeat_count: int = 1, drop_remainder: bool = False):
        self._tensors = tensors
        self._batch_size = batch_size
        self._shuffle_buffer = shuffle_buffer
        self._seed = seed
        self._repeat = repeat_count
        self._drop_remainder = drop_remainder
        self._epoch = 0

    @classmethod
    def from_tensor_slices(cls, tensors):
        tensors = map_structure(np.asarray, tensors)
        sizes = {a.shape[0] if a.ndim else None for a in _leaves(tensors)}
        if None in sizes or len(sizes) != 1:
            raise InputDataError(f"from_tensor_slices needs arrays with the same first dimension, got sizes {sizes}.")
        return cls(tensors)

    def _copy(self, **changes):
        args = dict(tensors=self._tensors, batch_size=self._batch_size, shuffle_buffer=self._shuffle_buffer,
                    seed=self._seed, repeat_count=self._repeat, drop_remainder=self._drop_remainder)
        args.update(changes)
        return Dataset(**args)

    def batch(self, batch_size: int, drop_remainder: bool = False):
        if int(batch_size) <= 0:
            raise InputDataError(f"batch_size must be positive, got {batch_size}.")
        return self._copy(batch_size=int(batch_size), drop_remainder=drop_remainder)

    def shuffle(self, buffer_size: int, seed=None, reshuffle_each_iteration=True):
        return self._copy(shuffle_buffer=int(buffer_size), seed=seed)

    def repeat(self, count=None):
        return self._copy(repeat_count=count if count is not None else 1)

    def prefetch(self, buffer_size=None):
        return self

    def cache(self, filename=""):
        return self

    @property
    def cardinality_samples(self) -> int:
        return int(_leaves(self._tensors)[0].shape[0])

    def __len__(self) -> int:
        n = self.cardinality_samples
        if self._batch_size is None:
            return n * self._repeat
        full, rest = divmod(n, self._batch_size)
        return (full + (0 if self._drop_remainder or rest == 0 else 1)) * self._repeat

    def __iter__(self):
        n = self.cardinality_samples
        for _ in range(self._repeat):
            order = np.arange(n)
            if self._shuffle_buffer:
                rng = np.random.default_rng(None if self._seed is None else self._seed + self._epoch)
                order = rng.permutation(n)
            self._epoch += 1
            if self._batch_size is None:
                for i in order:
                    yield map_structure(lambda a: a[i], self._tensors)
                continue
            for start in range(0, n, self._batch_size):
                idx = order[start:start + self._batch_size]
                if self._drop_remainder and len(idx) < self._batch_size:
                    break
                yield map_structure(lambda a: a[idx], self._tensors)


def as_input_batches(x):
    """For predict: a Dataset becomes its input arrays (the first element of (x, y) pairs), concatenated."""
    if not isinstance(x, Dataset):
        return x
    batches = list(x)
    if not batches:
        raise InputDataError("The dataset is empty.")
    first = batches[0]
    inputs = [b[0] if isinstance(b, tuple) else b for b in batches] if isinstance(first, tuple) else batches
    if x._batch_size is None:
        return np.stack(inputs)
    head = inputs[0]
    if isinstance(head, (list, tuple)):
        return [np.concatenate([b[i] for b in inputs]) for i in range(len(head))]
    if isinstance(head, dict):
        return {k: np.concatenate([b[k] for b in inputs]) for k in head}
    return np.concatenate(inputs)

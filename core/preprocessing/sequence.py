"""`keras.preprocessing.sequence`: `pad_sequences` (lists of different lengths into one array), and tf.keras 2's
`TimeseriesGenerator`, `skipgrams` and `make_sampling_table`."""

from __future__ import annotations

import json
import random

import numpy as np

from core.errors import InputDataError

__all__ = ["TimeseriesGenerator", "make_sampling_table", "pad_sequences", "skipgrams"]


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0.0):
    """Pad (or truncate) every sequence to `maxlen` (default: the longest), returning (samples, maxlen, ...).

    padding / truncating: 'pre' (at the start, Keras's default) or 'post' (at the end). Items of a sequence may be
    arrays of any fixed shape; every non-empty sequence's items must share that shape.
    """
    if padding not in ("pre", "post"):
        raise InputDataError(f"pad_sequences: padding must be 'pre' or 'post', got {padding!r}.")
    if truncating not in ("pre", "post"):
        raise InputDataError(f"pad_sequences: truncating must be 'pre' or 'post', got {truncating!r}.")
    if not hasattr(sequences, "__len__"):
        raise InputDataError("pad_sequences: `sequences` must be a list of sequences.")
    lengths, sample_shape, found = [], (), False
    for i, s in enumerate(sequences):
        try:
            lengths.append(len(s))
        except TypeError:
            raise InputDataError(f"pad_sequences: `sequences` must be a list of sequences; item {i} is "
                                 f"{s!r}.") from None
        if not found and len(s):
            sample_shape, found = np.asarray(s).shape[1:], True
    if maxlen is None:
        maxlen = max(lengths) if lengths else 0
    maxlen = int(maxlen)
    if maxlen < 0:
        raise InputDataError(f"pad_sequences: maxlen must be >= 0, got {maxlen}.")
    is_str = np.issubdtype(np.dtype(dtype), np.str_)
    if isinstance(value, str) and np.dtype(dtype) != object and not is_str:
        raise InputDataError(f"pad_sequences: dtype {dtype} cannot hold the string padding value {value!r}; use "
                             f"dtype=object.")
    out = np.full((len(lengths), maxlen) + tuple(sample_shape), value, dtype=dtype)
    for i, s in enumerate(sequences):
        if not len(s) or maxlen == 0:
            continue
        kept = np.asarray(s[-maxlen:] if truncating == "pre" else s[:maxlen], dtype=dtype)
        if kept.shape[1:] != tuple(sample_shape):
            raise InputDataError(f"pad_sequences: sequence {i} has items of shape {kept.shape[1:]}, but the first "
                                 f"non-empty sequence's items have shape {tuple(sample_shape)}.")
        if padding == "post":
            out[i, :len(kept)] = kept
        else:
            out[i, -len(kept):] = kept
    return out


def make_sampling_table(size, sampling_factor=1e-5):
    """The probability of keeping the word of each frequency rank (word2vec's subsampling, with Zipf's law for
    the frequencies), as tf.keras 2's `make_sampling_table`."""
    gamma = 0.577
    rank = np.arange(size)
    rank[0] = 1
    inv_fq = rank * (np.log(rank) + gamma) + 0.5 - 1.0 / (12.0 * rank)
    f = sampling_factor * inv_fq
    return np.minimum(1.0, f / np.sqrt(f))


def skipgrams(sequence, vocabulary_size, window_size=4, negative_samples=1.0, shuffle=True, categorical=False,
              sampling_table=None, seed=None):
    """([word, context] couples, labels) from a sequence of word indices (0 is skipped): 1 for words within
    `window_size` of each other, 0 for random negative pairs. Draws from Python's `random` exactly as tf.keras 2
    does, so the same seeds give the same couples."""
    couples, labels = [], []
    for i, wi in enumerate(sequence):
        if not wi:
            continue
        if sampling_table is not None and sampling_table[wi] < random.random():
            continue
        for j in range(max(0, i - window_size), min(len(sequence), i + window_size + 1)):
            if j != i and sequence[j]:
                couples.append([wi, sequence[j]])
                labels.append([0, 1] if categorical else 1)
    if negative_samples > 0:
        count = int(len(labels) * negative_samples)
        words = [c[0] for c in couples]
        random.shuffle(words)
        couples += [[words[i % len(words)], random.randint(1, int(vocabulary_size - 1))] for i in range(count)]
        labels += [[1, 0] if categorical else 0] * count
    if shuffle:
        seed = random.randint(0, int(10e6)) if seed is None else seed
        random.seed(seed)
        random.shuffle(couples)
        random.seed(seed)
        random.shuffle(labels)
    return couples, labels


class TimeseriesGenerator:
    """Batches of (windows of `length` past steps, the target at the step after each window), as tf.keras 2's
    `TimeseriesGenerator`: a `keras.utils.Sequence` that fit, evaluate and predict take."""

    def __init__(self, data, targets, length, sampling_rate=1, stride=1, start_index=0, end_index=None,
                 shuffle=False, reverse=False, batch_size=128):
        if len(data) != len(targets):
            raise InputDataError(f"TimeseriesGenerator: data and targets need the same length, got {len(data)} and "
                                 f"{len(targets)}.")
        self.data, self.targets = data, targets
        self.length, self.sampling_rate, self.stride = length, sampling_rate, stride
        self.start_index = start_index + length
        self.end_index = len(data) - 1 if end_index is None else end_index
        self.shuffle, self.reverse, self.batch_size = shuffle, reverse, batch_size
        if self.start_index > self.end_index:
            raise InputDataError(f"TimeseriesGenerator: start_index + length = {self.start_index} is past end_index "
                                 f"= {self.end_index}, so no step is left to predict.")

    def __len__(self):
        return (self.end_index - self.start_index + self.batch_size * self.stride) // (self.batch_size * self.stride)

    def __getitem__(self, index):
        if self.shuffle:
            rows = np.random.randint(self.start_index, self.end_index + 1, size=self.batch_size)
        else:
            i = self.start_index + self.batch_size * self.stride * index
            rows = np.arange(i, min(i + self.batch_size * self.stride, self.end_index + 1), self.stride)
        samples = np.array([self.data[row - self.length:row:self.sampling_rate] for row in rows])
        targets = np.array([self.targets[row] for row in rows])
        return (samples[:, ::-1, ...], targets) if self.reverse else (samples, targets)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def on_epoch_end(self):
        pass

    def get_config(self):
        def as_json(values, what):
            values = values.tolist() if isinstance(values, np.ndarray) else values
            try:
                return json.dumps(values)
            except TypeError:
                raise InputDataError(f"TimeseriesGenerator: the {what} cannot be written as JSON.") from None

        return {"data": as_json(self.data, "data"), "targets": as_json(self.targets, "targets"),
                "length": self.length, "sampling_rate": self.sampling_rate, "stride": self.stride,
                "start_index": self.start_index, "end_index": self.end_index, "shuffle": self.shuffle,
                "reverse": self.reverse, "batch_size": self.batch_size}

    def to_json(self, **kwargs):
        return json.dumps({"class_name": type(self).__name__, "config": self.get_config()}, **kwargs)

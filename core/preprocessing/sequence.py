"""`pad_sequences`: lists of different lengths into one array, as `keras.preprocessing.sequence.pad_sequences`."""

from __future__ import annotations

import numpy as np

from core.errors import InputDataError

__all__ = ["pad_sequences"]


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

"""`keras.utils`: seeding and small helpers."""

from __future__ import annotations

import random

import numpy as np


def set_random_seed(seed: int) -> None:
    """Seed Python, numpy and the unseeded initializers, as `keras.utils.set_random_seed`."""
    from core import initializers

    random.seed(seed)
    np.random.seed(seed)
    initializers.set_random_seed(seed)


def to_categorical(y, num_classes=None, dtype="float32"):
    y = np.asarray(y, dtype="int64")
    shape = y.shape
    if shape and shape[-1] == 1 and len(shape) > 1:
        shape = shape[:-1]
    y = y.reshape(-1)
    num_classes = int(num_classes or (y.max() + 1 if y.size else 0))
    out = np.zeros((y.shape[0], num_classes), dtype=dtype)
    out[np.arange(y.shape[0]), y] = 1
    return out.reshape(shape + (num_classes,))

"""Netweaver's engine, speaking Keras's API.

Code from the Keras guides runs with only the imports changed: `import core as keras` (or `import core as tf`, then
`tf.keras.Sequential`, `tf.matmul`, `tf.data.Dataset`, `tf.nn.relu`, `tf.math.reduce_sum`; see `tensorflow_api`),
`from core import layers`.
Nothing here imports Qt: the desktop app sits on top (app/), the file formats beside (exporters/).
"""

from __future__ import annotations

import importlib
import sys

import numpy as np

from core import activations, backend, constraints, initializers, ops, regularizers  # noqa: F401
from core import layers  # noqa: F401
from core import models  # noqa: F401
from core import data as _data_module
from core.data import Dataset, TensorSpec  # noqa: F401
from core.layers import Input, InputLayer, Layer  # noqa: F401
from core.models import Functional, Model, Sequential  # noqa: F401
from core.models.model import NETWEAVER_VERSION as __version__  # noqa: F401
from core.ops import EagerTensor  # noqa: F401
from core.serialization import custom_object_scope, register_keras_serializable  # noqa: F401

# `import core as tf` then `tf.keras.X`: the package is its own `keras`.
keras = sys.modules[__name__]

# TensorFlow-style names the seed guides use (tf.matmul, tf.cast, tf.constant, ...).
matmul = ops.matmul
cast = ops.cast
constant = ops.constant
tile = ops.tile
expand_dims = ops.expand_dims
stack = ops.stack
concat = ops.concatenate
reshape = ops.reshape
transpose = ops.transpose
squeeze = ops.squeeze
float32, float64, int32, int64, bool_ = np.float32, np.float64, np.int32, np.int64, np.bool_
float16, int8, int16, uint8 = np.float16, np.int8, np.int16, np.uint8
string = np.str_
# Modules that need more than the core layers load on first use.
_LAZY = {
    "losses": "core.losses",
    "metrics": "core.metrics",
    "optimizers": "core.optimizers",
    "callbacks": "core.callbacks",
    "preprocessing": "core.preprocessing",
    "utils": "core.utils",
    "saving": "core.saving",
    "runtime": "core.runtime",
    "summary": "core.summary",
    "document": "core.document",
}


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        globals()[name] = module
        return module
    raise AttributeError(f"module 'core' has no attribute '{name}'")


class _DataExperimental:
    """`tf.data.experimental`: the cardinality constants and function."""

    INFINITE_CARDINALITY = _data_module.INFINITE_CARDINALITY
    UNKNOWN_CARDINALITY = _data_module.UNKNOWN_CARDINALITY
    AUTOTUNE = -1

    @staticmethod
    def cardinality(dataset):
        return dataset.cardinality()


class _Data:
    """`tf.data`: Dataset, AUTOTUNE and the cardinality constants."""

    Dataset = Dataset
    AUTOTUNE = -1
    INFINITE_CARDINALITY = _data_module.INFINITE_CARDINALITY
    UNKNOWN_CARDINALITY = _data_module.UNKNOWN_CARDINALITY
    experimental = _DataExperimental()


data = _Data()

# tf.nn, tf.math, tf.random, tf.dtypes and the other top-level names (tf.convert_to_tensor, tf.gather, tf.reduce_sum,
# ...). `bool` and `range` are TensorFlow's names too: set last so nothing in this module reads the shadowed builtins.
from core import tensorflow_api as _tensorflow_api  # noqa: E402

globals().update(_tensorflow_api.TOP_LEVEL)
globals()["bool"] = np.bool_

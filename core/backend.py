"""Process-wide Keras state: unique layer names, floatx and epsilon, `clear_session`."""

from __future__ import annotations

import re
from collections import defaultdict

_name_counts: dict[str, int] = defaultdict(int)
_FLOATX = "float32"
_EPSILON = 1e-7


def snake_case(name: str) -> str:
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()  # digits do not split: Conv2D -> conv2d, as Keras


def unique_object_name(base: str) -> str:
    """Keras's naming: the first 'dense', then 'dense_1', 'dense_2', ..."""
    n = _name_counts[base]
    _name_counts[base] += 1
    return base if n == 0 else f"{base}_{n}"


def clear_session() -> None:
    _name_counts.clear()


def floatx() -> str:
    return _FLOATX


def epsilon() -> float:
    return _EPSILON


def set_epsilon(value: float) -> None:
    global _EPSILON
    _EPSILON = float(value)


def function(inputs, outputs, updates=None, name=None, **kwargs):
    """tf.keras 2's `K.function(inputs, outputs)`: a callable from input arrays to output arrays, for intermediate
    outputs (`K.function([model.input], [model.layers[2].output])([x])[0]`). It is the sub-model way,
    `Model(inputs, outputs).predict`, with Keras 2's calling convention: a list of inputs in, and a list of outputs
    out when `outputs` is a list."""
    from core.errors import GraphError
    from core.layers.base import KerasTensor, flatten
    from core.models.functional import Functional

    if updates:
        raise GraphError("backend.function: `updates` (graph-mode variable updates) are not supported.")
    if not all(isinstance(t, KerasTensor) for t in flatten([inputs, outputs])):
        raise GraphError("backend.function takes Functional-API tensors (model.input, layer.output), got "
                         f"{[type(t).__name__ for t in flatten([inputs, outputs])]}.")
    model = Functional(inputs, outputs, name=name or unique_object_name("function"))
    many_outputs = isinstance(outputs, (list, tuple))

    def run(values):
        arrays = list(values) if isinstance(values, (list, tuple)) else [values]
        if isinstance(inputs, (list, tuple)) and len(arrays) != len(inputs):
            raise GraphError(f"backend.function expects {len(inputs)} input array(s), got {len(arrays)}.")
        result = model.predict(arrays if len(arrays) > 1 else arrays[0], verbose=0)
        result = result if isinstance(result, list) else [result]
        return result if many_outputs else result[0]

    return run


def image_data_format() -> str:
    """Where image arrays keep their channels: always 'channels_last' here, Keras's default."""
    return "channels_last"

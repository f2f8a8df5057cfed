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

"""Weight constraints, applied to a weight after each optimizer step (written with `core.ops`)."""

from __future__ import annotations

from core.serialization import get_object, serialize as _serialize


class Constraint:
    def __call__(self, w):
        return w

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class NonNeg(Constraint):
    def __call__(self, w):
        from core import ops

        return ops.multiply(w, ops.cast(ops.greater_equal(w, 0.0), w.dtype))


class MaxNorm(Constraint):
    def __init__(self, max_value=2, axis=0):
        self.max_value, self.axis = max_value, axis

    def __call__(self, w):
        from core import ops

        norms = ops.sqrt(ops.sum(ops.square(w), axis=self.axis, keepdims=True))
        desired = ops.clip(norms, 0.0, float(self.max_value))
        return ops.multiply(w, ops.divide(desired, ops.add(norms, 1e-7)))

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class UnitNorm(Constraint):
    def __init__(self, axis=0):
        self.axis = axis

    def __call__(self, w):
        from core import ops

        return ops.divide(w, ops.add(ops.sqrt(ops.sum(ops.square(w), axis=self.axis, keepdims=True)), 1e-7))

    def get_config(self):
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value, self.max_value, self.rate, self.axis = min_value, max_value, rate, axis

    def __call__(self, w):
        from core import ops

        norms = ops.sqrt(ops.sum(ops.square(w), axis=self.axis, keepdims=True))
        desired = ops.add(ops.multiply(self.rate, ops.clip(norms, float(self.min_value), float(self.max_value))),
                          ops.multiply(1.0 - self.rate, norms))
        return ops.multiply(w, ops.divide(desired, ops.add(norms, 1e-7)))

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}


_REGISTRY = {c.__name__: c for c in (NonNeg, MaxNorm, UnitNorm, MinMaxNorm)}
_ALIASES = {"non_neg": "NonNeg", "nonneg": "NonNeg", "max_norm": "MaxNorm", "unit_norm": "UnitNorm",
            "min_max_norm": "MinMaxNorm"}


def get(identifier):
    return get_object(identifier, _REGISTRY, "constraint", _ALIASES, Constraint)


def serialize(c):
    return _serialize(c, "keras.constraints")

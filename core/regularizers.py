"""Weight and activity regularizers. A regularizer maps a tensor to a scalar penalty written with `core.ops`;
the training graph adds the penalties of every weight to the loss."""

from __future__ import annotations

from core.serialization import get_object, serialize as _serialize


class Regularizer:
    def __call__(self, x):
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class L1L2(Regularizer):
    def __init__(self, l1=0.0, l2=0.0):
        if l1 < 0 or l2 < 0:
            raise ValueError(f"Regularization factors must be non-negative, got l1={l1}, l2={l2}.")
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, x):
        from core import ops

        penalty = None
        if self.l1:
            penalty = ops.multiply(self.l1, ops.sum(ops.abs(x)))
        if self.l2:
            term = ops.multiply(self.l2, ops.sum(ops.square(x)))
            penalty = term if penalty is None else ops.add(penalty, term)
        return penalty if penalty is not None else ops.multiply(ops.sum(x), 0.0)

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    def __init__(self, factor=0.01, mode="rows"):
        self.factor, self.mode = factor, mode

    def __call__(self, x):
        from core import ops

        m = x if self.mode == "rows" else ops.transpose(x)
        m = ops.divide(m, ops.sqrt(ops.add(ops.sum(ops.square(m), axis=1, keepdims=True), 1e-12)))
        prod = ops.matmul(m, ops.transpose(m))
        n = x.shape[0] if self.mode == "rows" else x.shape[1]
        import numpy as np

        off = ops.multiply(prod, np.float32(1.0) - np.eye(n, dtype=np.float32))
        return ops.multiply(self.factor / 2.0, ops.sum(ops.abs(off)))

    def get_config(self):
        return {"factor": self.factor, "mode": self.mode}


def l1(l1=0.01):  # noqa: E741 - Keras's names
    return L1(l1)


def l2(l2=0.01):
    return L2(l2)


def l1_l2(l1=0.01, l2=0.01):  # noqa: E741
    return L1L2(l1=l1, l2=l2)


_REGISTRY = {"L1L2": L1L2, "L1": L1, "L2": L2, "OrthogonalRegularizer": OrthogonalRegularizer}
_ALIASES = {"l1": "L1", "l2": "L2", "l1_l2": "L1L2", "orthogonal_regularizer": "OrthogonalRegularizer"}


def get(identifier):
    return get_object(identifier, _REGISTRY, "regularizer", _ALIASES, Regularizer)


def serialize(reg):
    return _serialize(reg, "keras.regularizers")

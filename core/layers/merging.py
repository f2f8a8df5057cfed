"""Merge layers: elementwise Add, Subtract, Multiply, Average, Maximum, Minimum; Concatenate; Dot.

Each takes a list of tensors. Shapes are checked as Keras checks them (broadcasting from the right, a lower-rank
input expanded at axis 1 to meet the others) so the error names the layer and the shapes that clash. Masks follow
Keras 3: the output mask is the OR of the inputs' masks (when all have one); Multiply, Maximum and Minimum also keep
masked-out values from deciding the result.
"""

from __future__ import annotations

from core import ops
from core.errors import ConfigError, ShapeError
from core.layers.base import Layer


def _shapes_text(inputs) -> str:
    return ", ".join(str(tuple(t.shape)) for t in inputs)


class _Merge(Layer):
    """Base of the elementwise merges: checks shapes, aligns ranks, ANDs the inputs' masks."""

    supports_masking = True
    min_inputs = 1

    def _check_inputs(self, inputs):
        kind = type(self).__name__
        if not isinstance(inputs, (list, tuple)):
            raise ShapeError(f"A {kind} layer takes a list of tensors, e.g. {kind}()([a, b]); got one tensor of "
                             f"shape {tuple(inputs.shape)}.")
        if len(inputs) < self.min_inputs:
            raise ShapeError(f"A {kind} layer needs at least {self.min_inputs} inputs, got {len(inputs)}.")
        batches = {t.shape[0] for t in inputs if t.ndim} - {None}
        if len(batches) > 1:
            raise ShapeError(f"{kind} '{self.name}': the inputs have different batch sizes: {_shapes_text(inputs)}.")
        out = tuple(inputs[0].shape[1:])
        for t in inputs[1:]:
            out = self._elementwise_shape(out, tuple(t.shape[1:]), inputs)
        return out

    def _elementwise_shape(self, a, b, inputs):
        if len(a) < len(b):
            a, b = b, a
        if not b:
            return a
        out = list(a[:-len(b)])
        for i, j in zip(a[-len(b):], b):
            if i is None or j is None:
                out.append(None)
            elif i == 1 or j == 1 or i == j:
                out.append(j if i == 1 else i)
            else:
                raise ShapeError(f"{type(self).__name__} '{self.name}': inputs have incompatible shapes "
                                 f"{_shapes_text(inputs)} ({i} vs {j}); elementwise merges need equal shapes "
                                 f"(or sizes of 1 that broadcast).")
        return tuple(out)

    def call(self, inputs, mask=None):
        self._check_inputs(inputs)
        rank = max(t.ndim for t in inputs)
        aligned = []
        for t in inputs:
            for _ in range(rank - t.ndim):
                t = ops.expand_dims(t, 1)
            aligned.append(t)
        masks = list(mask) if isinstance(mask, (list, tuple)) else [None] * len(inputs)
        masks = [m if m is None or m.ndim == t.ndim else ops.expand_dims(m, -1) for t, m in zip(aligned, masks)]
        return self._merge_function(aligned, masks)

    def _merge_function(self, inputs, masks):
        raise NotImplementedError

    def compute_mask(self, inputs, mask=None):
        """Keras 3: the OR of the inputs' masks when every input has one, else no mask."""
        if not isinstance(mask, (list, tuple)) or any(m is None for m in mask):
            return None
        return _fold(ops.logical_or, list(mask))


def _fold(fn, inputs):
    out = inputs[0]
    for t in inputs[1:]:
        out = fn(out, t)
    return out


def _fold_masked(fn, inputs, masks):
    """Keras 3's Maximum/Minimum: a masked-out value never wins, the other input's value stands in for it."""
    out, out_mask = inputs[0], masks[0]
    for x, m in zip(inputs[1:], masks[1:]):
        if m is not None:
            x = ops.where(m, x, out)
        if out_mask is not None:
            out = ops.where(out_mask, out, x)
        out_mask = ops.logical_or(out_mask, m) if m is not None and out_mask is not None else None
        out = fn(out, x)
    return out


class Add(_Merge):
    def _merge_function(self, inputs, masks):
        return _fold(ops.add, inputs)


class Subtract(_Merge):
    min_inputs = 2

    def _check_inputs(self, inputs):
        if isinstance(inputs, (list, tuple)) and len(inputs) != 2:
            raise ShapeError(f"A Subtract layer takes exactly 2 inputs, got {len(inputs)}.")
        return super()._check_inputs(inputs)

    def _merge_function(self, inputs, masks):
        return ops.subtract(inputs[0], inputs[1])


class Multiply(_Merge):
    def _merge_function(self, inputs, masks):
        # Keras 3: masked-out values count as 1; where no input is valid the product is 0.
        xs = [x if m is None else ops.where(m, x, 1.0) for x, m in zip(inputs, masks)]
        out = _fold(ops.multiply, xs)
        if all(m is not None for m in masks):
            out = ops.where(_fold(ops.logical_or, masks), out, 0.0)
        return out


class Average(_Merge):
    def _merge_function(self, inputs, masks):
        return ops.divide(_fold(ops.add, inputs), float(len(inputs)))


class Maximum(_Merge):
    def _merge_function(self, inputs, masks):
        return _fold_masked(ops.maximum, inputs, masks)


class Minimum(_Merge):
    def _merge_function(self, inputs, masks):
        return _fold_masked(ops.minimum, inputs, masks)


class Concatenate(Layer):
    """Joins tensors along `axis`; all other dimensions must match."""

    supports_masking = True

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise ConfigError(f"Concatenate: 'axis' must be an integer, got {axis!r}.")
        self.axis = axis

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or not inputs:
            raise ShapeError("A Concatenate layer takes a non-empty list of tensors, e.g. Concatenate()([a, b]).")
        ranks = {t.ndim for t in inputs}
        if len(ranks) > 1:
            raise ShapeError(f"Concatenate '{self.name}' needs inputs of the same rank, got shapes "
                             f"{_shapes_text(inputs)}.")
        rank = ranks.pop()
        if not -rank <= self.axis < rank:
            raise ShapeError(f"Concatenate '{self.name}': axis {self.axis} is out of range for inputs of rank {rank} "
                             f"({_shapes_text(inputs)}).")
        axis = self.axis % rank
        for i in range(rank):
            dims = {t.shape[i] for t in inputs} - {None}
            if i != axis and len(dims) > 1:
                raise ShapeError(f"Concatenate '{self.name}' needs inputs with matching shapes except on the "
                                 f"concatenation axis {self.axis}; got {_shapes_text(inputs)} (they differ on axis "
                                 f"{i}).")
        return ops.concatenate(list(inputs), axis=self.axis)

    def compute_mask(self, inputs, mask=None):
        """Keras 3: each input's mask broadcast to the input (all True when it has none), concatenated on `axis`,
        then reduced with `any` over the last axis."""
        if mask is None or not isinstance(mask, (list, tuple)) or all(m is None for m in mask):
            return None
        full = []
        for t, m in zip(inputs, mask):
            nothing = ops.cast(ops.zeros_like(t), "bool")
            if m is None:
                full.append(ops.logical_not(nothing))
            elif m.ndim < t.ndim:
                full.append(ops.logical_or(ops.expand_dims(m, -1), nothing))
            else:
                full.append(m)
        return ops.any(ops.concatenate(full, axis=self.axis), axis=-1)

    def get_config(self):
        config = super().get_config()
        config["axis"] = self.axis
        return config


class Dot(Layer):
    """Batched dot product of two tensors over `axes` (one per input, or one for both); `normalize` makes it the
    cosine similarity. The batch axis is never contracted; a result of rank 1 gets a trailing axis of size 1.
    Masks are accepted and dropped, as in Keras."""

    supports_masking = True

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axes, (list, tuple)):
            if len(axes) != 2 or not all(isinstance(a, int) and not isinstance(a, bool) for a in axes):
                raise ConfigError(f"Dot: 'axes' must be an integer or a pair of integers, got {axes!r}.")
            axes = list(axes)
        elif isinstance(axes, bool) or not isinstance(axes, int):
            raise ConfigError(f"Dot: 'axes' must be an integer or a pair of integers, got {axes!r}.")
        self.axes = axes
        self.normalize = bool(normalize)

    def _resolved_axes(self, a, b):
        pair = self.axes if isinstance(self.axes, list) else [self.axes, self.axes]
        out = []
        for ax, t in zip(pair, (a, b)):
            if not -t.ndim <= ax < t.ndim:
                raise ShapeError(f"Dot '{self.name}': axis {ax} is out of range for an input of shape {t.shape}.")
            ax %= t.ndim
            if ax == 0:
                raise ShapeError(f"Dot '{self.name}' cannot contract the batch axis (axes={self.axes}).")
            out.append(ax)
        return out

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ShapeError("A Dot layer takes a list of exactly 2 tensors, e.g. Dot(axes=1)([a, b]).")
        a, b = inputs
        if a.ndim < 2 or b.ndim < 2:
            raise ShapeError(f"Dot '{self.name}' needs inputs of rank 2 or more (batch first), got shapes "
                             f"{_shapes_text(inputs)}.")
        ax_a, ax_b = self._resolved_axes(a, b)
        da, db = a.shape[ax_a], b.shape[ax_b]
        if da is not None and db is not None and da != db:
            raise ShapeError(f"Dot '{self.name}': the contracted sizes differ: {da} (axis {ax_a} of {a.shape}) != "
                             f"{db} (axis {ax_b} of {b.shape}).")
        if self.normalize:
            a = ops.normalize(a, axis=ax_a)
            b = ops.normalize(b, axis=ax_b)
        return ops.batch_dot(a, b, (ax_a, ax_b))

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        config = super().get_config()
        config.update({"axes": self.axes, "normalize": self.normalize})
        return config


# -- the functional interfaces: `layers.add([a, b])` is `layers.Add()([a, b])`, as in Keras ----------------------
def add(inputs, **kwargs):
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs, axes=-1, **kwargs):
    return Dot(axes=axes, **kwargs)(inputs)

"""Reshaping layers: Flatten, Reshape, Permute, RepeatVector, ZeroPadding, Cropping, UpSampling."""

from __future__ import annotations

import math

from core import ops
from core.errors import ConfigError, ShapeError
from core.layers.base import Layer
from core.layers.convolutional import _is_int, check_rank, layout, normalize_data_format, normalize_tuple


def _pairs(value, rank: int, name: str, layer: str) -> tuple:
    """Keras's padding/cropping forms: an int, `rank` ints (symmetric per axis), or `rank` (before, after) pairs.

    For rank 1 the result is one (before, after) pair; for ranks 2 and 3 a tuple of pairs.
    """
    if _is_int(value):
        pairs = ((int(value), int(value)),) * rank
    elif rank == 1:
        pairs = (normalize_tuple(value, 2, name, layer, allow_zero=True),)
    elif isinstance(value, (list, tuple)) and len(value) == rank:
        pairs = tuple((int(v), int(v)) if _is_int(v) else normalize_tuple(v, 2, name, layer, allow_zero=True)
                      for v in value)
    else:
        raise ConfigError(f"{layer}: '{name}' must be an int, a tuple of {rank} ints or a tuple of {rank} "
                          f"(before, after) pairs, got {value!r}.")
    if any(v < 0 for p in pairs for v in p):
        raise ConfigError(f"{layer}: '{name}' must not be negative, got {value!r}.")
    return pairs[0] if rank == 1 else pairs


def _spatial_axes(rank: int, data_format: str) -> list[int]:
    first = 1 if data_format == "channels_last" else 2
    return list(range(first, first + rank))


class Flatten(Layer):
    """(batch, ...) -> (batch, product of the rest); channels-first inputs are made channels-last first (Keras)."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = normalize_data_format(data_format, "Flatten")

    def call(self, inputs):
        x = inputs
        if self.data_format == "channels_first" and x.ndim > 2:
            x = ops.transpose(x, (0,) + tuple(range(2, x.ndim)) + (1,))
        rest = x.shape[1:]
        if all(d is not None for d in rest):
            return ops.reshape(x, (None, math.prod(rest)))
        return ops.reshape(x, (None, -1))

    def get_config(self):
        config = super().get_config()
        config["data_format"] = self.data_format
        return config


class Reshape(Layer):
    """(batch, ...) -> (batch,) + target_shape; one entry may be -1 (inferred)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        if _is_int(target_shape):
            target_shape = (target_shape,)
        if not isinstance(target_shape, (list, tuple)) or not all(_is_int(d) for d in target_shape):
            raise ConfigError(f"Reshape: 'target_shape' must be a tuple of integers, got {target_shape!r}.")
        target_shape = tuple(int(d) for d in target_shape)
        if any(d == 0 or d < -1 for d in target_shape) or target_shape.count(-1) > 1:
            raise ConfigError(f"Reshape: 'target_shape' takes positive sizes and at most one -1, got "
                              f"{target_shape}.")
        self.target_shape = target_shape

    def call(self, inputs):
        target = self.target_shape
        known = math.prod(d for d in target if d != -1)
        rest = inputs.shape[1:]
        if all(d is not None for d in rest):
            total = math.prod(rest)
            if -1 in target and (known == 0 or total % known) or -1 not in target and total != known:
                raise ShapeError(f"Reshape '{self.name}': cannot reshape an input of shape {tuple(inputs.shape)} "
                                 f"({total} values per sample) to target_shape {target}.")
            if -1 in target:
                target = tuple(total // known if d == -1 else d for d in target)
        return ops.reshape(inputs, (None,) + target)

    def get_config(self):
        config = super().get_config()
        config["target_shape"] = self.target_shape
        return config


class Permute(Layer):
    """Reorders the non-batch axes: `dims` is a permutation of 1..n (the batch axis is 0 and stays)."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(dims, (list, tuple)) or not all(_is_int(d) for d in dims) \
                or sorted(int(d) for d in dims) != list(range(1, len(dims) + 1)):
            raise ConfigError(f"Permute: 'dims' must be a permutation of 1..n (n = the number of non-batch axes), "
                              f"got {dims!r}.")
        self.dims = tuple(int(d) for d in dims)

    def call(self, inputs):
        if inputs.ndim != len(self.dims) + 1:
            raise ShapeError(f"Permute '{self.name}' with dims={self.dims} expects a rank-{len(self.dims) + 1} "
                             f"input, got shape {tuple(inputs.shape)}.")
        return ops.transpose(inputs, (0,) + self.dims)

    def get_config(self):
        config = super().get_config()
        config["dims"] = self.dims
        return config


class RepeatVector(Layer):
    """(batch, features) -> (batch, n, features)."""

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        if not _is_int(n) or int(n) <= 0:
            raise ConfigError(f"RepeatVector: 'n' must be a positive integer, got {n!r}.")
        self.n = int(n)

    def call(self, inputs):
        check_rank(self, inputs, 2, "(batch, features)")
        return ops.tile(ops.expand_dims(inputs, 1), (1, self.n, 1))

    def get_config(self):
        config = super().get_config()
        config["n"] = self.n
        return config


class _ZeroPadding(Layer):
    rank = 0

    def __init__(self, padding, data_format=None, **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.padding = _pairs(padding, self.rank, "padding", cls)
        self.data_format = normalize_data_format(data_format, cls)

    def call(self, inputs):
        check_rank(self, inputs, self.rank + 2, layout(self.rank, self.data_format))
        pairs = [self.padding] if self.rank == 1 else list(self.padding)
        widths = [(0, 0)] * inputs.ndim
        for axis, pair in zip(_spatial_axes(self.rank, self.data_format), pairs):
            widths[axis] = pair
        return ops.pad(inputs, widths)

    def get_config(self):
        config = super().get_config()
        config.update({"padding": self.padding, "data_format": self.data_format})
        return config


class ZeroPadding1D(_ZeroPadding):
    """Adds zeros at the start and end of the time axis: `padding` is an int or (before, after)."""

    rank = 1

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(padding, data_format, **kwargs)


class ZeroPadding2D(_ZeroPadding):
    """Adds rows and columns of zeros: `padding` is an int, (rows, cols), or ((top, bottom), (left, right))."""

    rank = 2

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(padding, data_format, **kwargs)


class ZeroPadding3D(_ZeroPadding):
    """Adds zeros around volumes: `padding` is an int, 3 ints, or 3 (before, after) pairs."""

    rank = 3

    def __init__(self, padding=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(padding, data_format, **kwargs)


class _Cropping(Layer):
    rank = 0
    data_format = "channels_last"

    def __init__(self, cropping, **kwargs):
        super().__init__(**kwargs)
        self.cropping = _pairs(cropping, self.rank, "cropping", type(self).__name__)

    def call(self, inputs):
        check_rank(self, inputs, self.rank + 2, layout(self.rank, self.data_format))
        pairs = [self.cropping] if self.rank == 1 else list(self.cropping)
        key = [slice(None)] * inputs.ndim
        for axis, (before, after) in zip(_spatial_axes(self.rank, self.data_format), pairs):
            size = inputs.shape[axis]
            if size is not None and before + after >= size:
                raise ShapeError(f"{type(self).__name__} '{self.name}': cropping {before} + {after} leaves nothing "
                                 f"of axis {axis} (length {size}) in an input of shape {tuple(inputs.shape)}.")
            key[axis] = slice(before, -after if after else None)
        return inputs[tuple(key)]


class Cropping1D(_Cropping):
    """Removes steps from the start and end of the time axis: `cropping` is an int or (before, after)."""

    rank = 1

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(cropping, **kwargs)

    def get_config(self):
        config = super().get_config()
        config["cropping"] = self.cropping
        return config


class _SpatialCropping(_Cropping):
    """Cropping of images and volumes, which (unlike Cropping1D) take a data_format."""

    def __init__(self, cropping, data_format=None, **kwargs):
        super().__init__(cropping, **kwargs)
        self.data_format = normalize_data_format(data_format, type(self).__name__)

    def get_config(self):
        config = super().get_config()
        config.update({"cropping": self.cropping, "data_format": self.data_format})
        return config


class Cropping2D(_SpatialCropping):
    """Removes rows and columns: `cropping` is an int, (rows, cols), or ((top, bottom), (left, right))."""

    rank = 2

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(cropping, data_format, **kwargs)


class Cropping3D(_SpatialCropping):
    """Removes planes from volumes: `cropping` is an int, 3 ints, or 3 (before, after) pairs."""

    rank = 3

    def __init__(self, cropping=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(cropping, data_format, **kwargs)


class UpSampling1D(Layer):
    """Repeats each time step `size` times."""

    def __init__(self, size=2, **kwargs):
        super().__init__(**kwargs)
        if not _is_int(size) or int(size) <= 0:
            raise ConfigError(f"UpSampling1D: 'size' must be a positive integer, got {size!r}.")
        self.size = int(size)

    def call(self, inputs):
        check_rank(self, inputs, 3, "(batch, steps, features)")
        return ops.repeat(inputs, self.size, axis=1)

    def get_config(self):
        config = super().get_config()
        config["size"] = self.size
        return config


def _linear_upsample(x, size: int, axis: int):
    """Linear interpolation by an integer factor along `axis`, as TensorFlow's bilinear resize: half-pixel centres,
    the edge value repeated past the ends. Output step i * size + r lies (r + 0.5) / size - 0.5 of a step from
    input step i, so each of the `size` phases is a fixed blend of a step and its neighbour."""
    def part(start, stop):
        key = [slice(None)] * x.ndim
        key[axis] = slice(start, stop)
        return x[tuple(key)]

    before = ops.concatenate([part(0, 1), part(None, -1)], axis=axis)  # x[i - 1], edge repeated
    after = ops.concatenate([part(1, None), part(-1, None)], axis=axis)  # x[i + 1], edge repeated
    phases = []
    for r in range(size):
        offset = (r + 0.5) / size - 0.5
        if offset < 0:
            phases.append(ops.add(ops.multiply(before, -offset), ops.multiply(x, 1.0 + offset)))
        elif offset > 0:
            phases.append(ops.add(ops.multiply(x, 1.0 - offset), ops.multiply(after, offset)))
        else:
            phases.append(x)
    return ops.interleave(phases, axis=axis)


class UpSampling2D(Layer):
    """Repeats each row `size[0]` times and each column `size[1]` times ('nearest'), or interpolates between them
    ('bilinear', as Keras's image resize)."""

    interpolations = ("nearest", "bilinear")

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        self.size = normalize_tuple(size, 2, "size", "UpSampling2D")
        self.data_format = normalize_data_format(data_format, "UpSampling2D")
        if interpolation not in self.interpolations:
            raise ConfigError(f"UpSampling2D: 'interpolation' must be one of {', '.join(self.interpolations)}, got "
                              f"{interpolation!r}.")
        self.interpolation = interpolation

    def call(self, inputs):
        check_rank(self, inputs, 4, layout(2, self.data_format))
        x = inputs
        for axis, size in zip(_spatial_axes(2, self.data_format), self.size):
            if size == 1:
                continue
            x = ops.repeat(x, size, axis=axis) if self.interpolation == "nearest" else \
                _linear_upsample(x, size, axis)
        return x

    def get_config(self):
        config = super().get_config()
        config.update({"size": self.size, "data_format": self.data_format, "interpolation": self.interpolation})
        return config


class UpSampling3D(Layer):
    """Repeats each plane, row and column `size[i]` times along its axis."""

    def __init__(self, size=(2, 2, 2), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.size = normalize_tuple(size, 3, "size", "UpSampling3D")
        self.data_format = normalize_data_format(data_format, "UpSampling3D")

    def call(self, inputs):
        check_rank(self, inputs, 5, layout(3, self.data_format))
        x = inputs
        for axis, size in zip(_spatial_axes(3, self.data_format), self.size):
            if size > 1:
                x = ops.repeat(x, size, axis=axis)
        return x

    def get_config(self):
        config = super().get_config()
        config.update({"size": self.size, "data_format": self.data_format})
        return config


__all__ = ["Flatten", "Reshape", "Permute", "RepeatVector", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D",
           "Cropping1D", "Cropping2D", "Cropping3D", "UpSampling1D", "UpSampling2D", "UpSampling3D"]

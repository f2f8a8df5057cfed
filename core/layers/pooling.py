"""Pooling layers: Max/Average pooling 1D/2D and their global variants."""

from __future__ import annotations

import warnings

from core import ops
from core.errors import ConfigError
from core.layers.base import Layer
from core.layers.convolutional import (check_rank, layout, normalize_data_format, normalize_padding,
                                       normalize_tuple, spatial_dims)
from core.ops.conv import spatial_padding


class BasePooling(Layer):
    """A window slid over `rank` spatial axes; strides default to the window (Keras)."""

    rank = 0
    pool_function = None

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.pool_size = normalize_tuple(pool_size, self.rank, "pool_size", cls)
        self.strides = self.pool_size if strides is None else normalize_tuple(strides, self.rank, "strides", cls)
        self.padding = normalize_padding(padding, cls)
        self.data_format = normalize_data_format(data_format, cls)

    def call(self, inputs):
        check_rank(self, inputs, self.rank + 2, layout(self.rank, self.data_format))
        spatial_padding(spatial_dims(inputs.shape, self.data_format), self.pool_size, self.strides,
                        (1,) * self.rank, self.padding, f"{type(self).__name__} '{self.name}'")
        return type(self).pool_function(inputs, self.pool_size, strides=self.strides, padding=self.padding,
                                        data_format=self.data_format)

    def get_config(self):
        config = super().get_config()
        config.update({"pool_size": self.pool_size, "padding": self.padding, "strides": self.strides,
                       "data_format": self.data_format})
        return config


class MaxPooling1D(BasePooling):
    rank = 1
    pool_function = ops.max_pool


class MaxPooling2D(BasePooling):
    rank = 2
    pool_function = ops.max_pool

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class AveragePooling1D(BasePooling):
    """With padding='same' the padded steps are left out of each average, as in Keras."""

    rank = 1
    pool_function = ops.average_pool


class AveragePooling2D(BasePooling):
    rank = 2
    pool_function = ops.average_pool

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class MaxPooling3D(BasePooling):
    rank = 3
    pool_function = ops.max_pool

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class AveragePooling3D(BasePooling):
    rank = 3
    pool_function = ops.average_pool

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class BaseGlobalPooling(Layer):
    """A reduction over all spatial axes; `keepdims` keeps them with length 1."""

    rank = 0

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.data_format = normalize_data_format(data_format, cls)
        if not isinstance(keepdims, bool):
            raise ConfigError(f"{cls}: 'keepdims' must be True or False, got {keepdims!r}.")
        self.keepdims = keepdims

    def _spatial_axes(self) -> list[int]:
        first = 1 if self.data_format == "channels_last" else 2
        return list(range(first, first + self.rank))

    def _check(self, inputs) -> None:
        check_rank(self, inputs, self.rank + 2, layout(self.rank, self.data_format, "features"))

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        config = super().get_config()
        config.update({"data_format": self.data_format, "keepdims": self.keepdims})
        return config


class GlobalAveragePooling1D(BaseGlobalPooling):
    """The mean over time; with a mask, the mean over the unmasked steps only (Keras)."""

    rank = 1

    def call(self, inputs, mask=None):
        self._check(inputs)
        axis = self._spatial_axes()[0]
        if mask is None:
            return ops.mean(inputs, axis=axis, keepdims=self.keepdims)
        # The mask is (batch, steps); put a length-1 feature axis where the features are.
        feature_axis = 2 if self.data_format == "channels_last" else 1
        keep = ops.expand_dims(ops.cast(mask, "bool"), feature_axis)
        total = ops.sum(ops.where(keep, inputs, 0.0), axis=axis, keepdims=self.keepdims)
        count = ops.sum(ops.cast(keep, inputs.dtype), axis=axis, keepdims=self.keepdims)
        return ops.divide(total, count)


class GlobalMaxPooling1D(BaseGlobalPooling):
    """The maximum over time.

    Keras 3 takes no mask here: a mask that reaches this layer is dropped with a warning and every step, masked or
    not, counts in the maximum. Netweaver does the same, so converted models give Keras's numbers.
    """

    rank = 1

    def call(self, inputs, mask=None):
        self._check(inputs)
        if mask is not None:
            warnings.warn(f"Layer '{self.name}' (GlobalMaxPooling1D) was passed an input with a mask attached to "
                          f"it. As in Keras, this layer does not support masking: the masked steps take part in "
                          f"the maximum and the mask stops here.", stacklevel=2)
        return ops.max(inputs, axis=self._spatial_axes()[0], keepdims=self.keepdims)


class _GlobalAverage(BaseGlobalPooling):
    def call(self, inputs):
        self._check(inputs)
        return ops.mean(inputs, axis=self._spatial_axes(), keepdims=self.keepdims)


class _GlobalMax(BaseGlobalPooling):
    def call(self, inputs):
        self._check(inputs)
        return ops.max(inputs, axis=self._spatial_axes(), keepdims=self.keepdims)


class GlobalAveragePooling2D(_GlobalAverage):
    rank = 2


class GlobalMaxPooling2D(_GlobalMax):
    rank = 2


class GlobalAveragePooling3D(_GlobalAverage):
    rank = 3


class GlobalMaxPooling3D(_GlobalMax):
    rank = 3


# Keras's short aliases.
MaxPool1D, MaxPool2D, MaxPool3D = MaxPooling1D, MaxPooling2D, MaxPooling3D
AvgPool1D, AvgPool2D, AvgPool3D = AveragePooling1D, AveragePooling2D, AveragePooling3D
GlobalAvgPool1D, GlobalAvgPool2D, GlobalAvgPool3D = GlobalAveragePooling1D, GlobalAveragePooling2D, \
    GlobalAveragePooling3D
GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D = GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D

__all__ = ["MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
           "GlobalAveragePooling1D", "GlobalMaxPooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
           "GlobalAveragePooling3D", "GlobalMaxPooling3D", "MaxPool1D", "MaxPool2D", "MaxPool3D", "AvgPool1D",
           "AvgPool2D", "AvgPool3D", "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPool3D", "GlobalMaxPool1D",
           "GlobalMaxPool2D", "GlobalMaxPool3D"]

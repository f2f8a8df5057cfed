"""Convolution layers: Conv1D/2D, their transposes, depthwise and separable convolutions (channels-last by
default, as Keras).

The argument checks shared by the convolution, pooling and reshaping layers (`normalize_tuple`, `normalize_padding`,
`normalize_data_format`) live here, as Keras keeps them in its conv utilities.
"""

from __future__ import annotations

import numbers

import numpy as np

from core import activations, constraints, initializers, ops, regularizers
from core.errors import ConfigError, ShapeError
from core.layers.base import Layer
from core.ops.conv import spatial_padding, transpose_padding


def _is_int(value) -> bool:
    """An integer, numpy's included, or a float with an integer value (JSON and GUI fields give both)."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, numbers.Real) and float(value).is_integer()


def normalize_tuple(value, rank: int, name: str, layer: str, *, allow_zero: bool = False) -> tuple[int, ...]:
    """An int or a sequence of `rank` ints as a tuple, each positive (or >= 0 with `allow_zero`)."""
    values = (value,) * rank if _is_int(value) else value
    if not isinstance(values, (list, tuple)) or len(values) != rank or not all(_is_int(v) for v in values):
        raise ConfigError(f"{layer}: '{name}' must be an integer or a tuple of {rank} integers, got {value!r}.")
    values = tuple(int(v) for v in values)
    low = 0 if allow_zero else 1
    if any(v < low for v in values):
        kind = "non-negative" if allow_zero else "positive"
        raise ConfigError(f"{layer}: every value of '{name}' must be {kind}, got {value!r}.")
    return values


def normalize_padding(value, layer: str, allowed=("valid", "same")) -> str:
    padding = value.lower() if isinstance(value, str) else value
    if padding not in allowed:
        raise ConfigError(f"{layer}: 'padding' must be one of {', '.join(repr(a) for a in allowed)}, got {value!r}.")
    return padding


def normalize_data_format(value, layer: str) -> str:
    if value is None:
        return "channels_last"
    fmt = value.lower() if isinstance(value, str) else value
    if fmt not in ("channels_last", "channels_first"):
        raise ConfigError(f"{layer}: 'data_format' must be 'channels_last' or 'channels_first', got {value!r}.")
    return fmt


def channel_axis(data_format: str) -> int:
    return -1 if data_format == "channels_last" else 1


def spatial_dims(shape, data_format: str) -> tuple:
    return tuple(shape[1:-1]) if data_format == "channels_last" else tuple(shape[2:])


_SPATIAL_NAMES = {1: "steps", 2: "rows, cols", 3: "depth, rows, cols"}


def layout(rank: int, data_format: str, channels: str = "channels") -> str:
    """The expected input layout in words, for error messages: '(batch, steps, channels)' and the like."""
    spatial = _SPATIAL_NAMES[rank]
    return f"(batch, {spatial}, {channels})" if data_format == "channels_last" else f"(batch, {channels}, {spatial})"


def check_rank(layer: Layer, inputs, rank: int, layout: str) -> None:
    if inputs.ndim != rank:
        raise ShapeError(f"{type(layer).__name__} '{layer.name}' expects a rank-{rank} input {layout}, got shape "
                         f"{tuple(inputs.shape)}.")


def positive_int(value, name: str, layer: str) -> int:
    if not _is_int(value) or int(value) <= 0:
        raise ConfigError(f"{layer}: '{name}' must be a positive integer, got {value!r}.")
    return int(value)


def _objects(**named) -> dict:
    """A config's initializers, regularizers and constraints, serialized by their kind (from the name's suffix)."""
    out = {}
    for key, obj in named.items():
        kind = key.rsplit("_", 1)[1]
        module = {"initializer": initializers, "regularizer": regularizers, "constraint": constraints}[kind]
        out[key] = module.serialize(obj)
    return out


class BaseWindowConv(Layer):
    """What every convolution shares: a window of `rank` spatial axes (size, strides, padding, dilation, layout),
    a bias and an activation."""

    rank = 0
    paddings = ("valid", "same")
    # Keys tf.keras 2 writes into this layer's config that mean nothing here (it writes its base Conv's config).
    tf_keras2_keys: tuple[str, ...] = ()

    def __init__(self, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1, activation=None,
                 use_bias=True, bias_initializer="zeros", bias_regularizer=None, bias_constraint=None,
                 activity_regularizer=None, **kwargs):
        cls = type(self).__name__
        if kwargs.get("groups", 1) != 1 and "groups" in self.tf_keras2_keys:
            raise ConfigError(f"{cls}: 'groups' must be 1, got {kwargs['groups']!r}.")
        for key in self.tf_keras2_keys:
            kwargs.pop(key, None)
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.kernel_size = normalize_tuple(kernel_size, self.rank, "kernel_size", cls)
        self.strides = normalize_tuple(strides, self.rank, "strides", cls)
        self.padding = normalize_padding(padding, cls, self.paddings)
        self.data_format = normalize_data_format(data_format, cls)
        self.dilation_rate = normalize_tuple(dilation_rate, self.rank, "dilation_rate", cls)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ConfigError(f"{cls}: strides > 1 cannot be combined with dilation_rate > 1 (got strides="
                              f"{self.strides}, dilation_rate={self.dilation_rate}), as in Keras.")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.bias_initializer = initializers.get(bias_initializer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.bias_constraint = constraints.get(bias_constraint)

    def _layout(self) -> str:
        return layout(self.rank, self.data_format)

    def _input_channels(self, input_shape) -> int:
        input_shape = tuple(input_shape)
        if len(input_shape) != self.rank + 2:
            raise ShapeError(f"{type(self).__name__} '{self.name}' expects a rank-{self.rank + 2} input "
                             f"{self._layout()}, got shape {input_shape}.")
        in_ch = input_shape[channel_axis(self.data_format)]
        if in_ch is None:
            raise ShapeError(f"{type(self).__name__} '{self.name}' needs a known number of input channels, got input "
                             f"shape {input_shape}.")
        return in_ch

    def _make_bias(self, size: int) -> None:
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(size,), initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint)
        self.built = True  # Keras marks a layer built by a direct build() call too

    def _check_inputs(self, inputs, built_for: int) -> None:
        check_rank(self, inputs, self.rank + 2, self._layout())
        in_ch = inputs.shape[channel_axis(self.data_format)]
        if in_ch is not None and in_ch != built_for:
            raise ShapeError(f"{type(self).__name__} '{self.name}' was built for {built_for} input channels, got "
                             f"input shape {tuple(inputs.shape)}.")

    def _check_window(self, inputs) -> None:
        """Raise, naming this layer, when the window does not fit a known input length."""
        spatial_padding(spatial_dims(inputs.shape, self.data_format), self.kernel_size, self.strides,
                        self.dilation_rate, self.padding, f"{type(self).__name__} '{self.name}'")

    def _bias_and_activation(self, x):
        if self.use_bias:
            bias = self.bias if self.data_format == "channels_last" else \
                ops.reshape(self.bias, (self.bias.shape[0],) + (1,) * self.rank)
            x = ops.add(x, bias)
        return self.activation(x)

    def get_config(self):
        config = super().get_config()
        config.update({
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            **_objects(bias_initializer=self.bias_initializer, bias_regularizer=self.bias_regularizer,
                       bias_constraint=self.bias_constraint),
        })
        return config


class BaseConv(BaseWindowConv):
    """What Conv1D and Conv2D share: a kernel (k..., in/groups, filters) and a bias."""

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1, groups=1,
                 activation=None, use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, lora_rank=None, **kwargs):
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                         bias_initializer, bias_regularizer, bias_constraint, activity_regularizer, **kwargs)
        cls = type(self).__name__
        self.filters = positive_int(filters, "filters", cls)
        self.groups = positive_int(groups, "groups", cls)
        if self.filters % self.groups:
            raise ConfigError(f"{cls}: 'filters' ({self.filters}) must be divisible by 'groups' ({self.groups}).")
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)

    def build(self, input_shape):
        in_ch = self._input_channels(input_shape)
        if in_ch % self.groups:
            raise ShapeError(f"{type(self).__name__} '{self.name}': the input's {in_ch} channels cannot be split into "
                             f"groups={self.groups} groups.")
        self.kernel = self.add_weight(name="kernel", shape=self.kernel_size + (in_ch // self.groups, self.filters),
                                      initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self._make_bias(self.filters)

    def call(self, inputs):
        self._check_inputs(inputs, self.kernel.shape[-2] * self.groups)
        self._check_window(inputs)
        x = ops.conv(inputs, self.kernel, strides=self.strides, padding=self.padding, data_format=self.data_format,
                     dilation_rate=self.dilation_rate)
        return self._bias_and_activation(x)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "groups": self.groups,
                       **_objects(kernel_initializer=self.kernel_initializer,
                                  kernel_regularizer=self.kernel_regularizer,
                                  kernel_constraint=self.kernel_constraint)})
        return config


class Conv1D(BaseConv):
    """1-D convolution over time: (batch, steps, channels) -> (batch, new_steps, filters).

    padding='causal' pads (kernel_size - 1) * dilation_rate steps on the left only, so output t never sees input
    after t.
    """

    rank = 1
    paddings = ("valid", "same", "causal")


class Conv2D(BaseConv):
    """2-D convolution over images: (batch, rows, cols, channels) -> (batch, new_rows, new_cols, filters)."""

    rank = 2


class Conv3D(BaseConv):
    """3-D convolution over volumes: (batch, depth, rows, cols, channels) -> (batch, ..., filters)."""

    rank = 3


class BaseConvTranspose(BaseWindowConv):
    """Transposed convolution (the gradient of a convolution with respect to its input): kernel (k..., filters, in).

    The output is (in - 1) * stride + kernel long for 'valid' and in * stride for 'same', unless output_padding
    (each value below its stride) says how much longer to make it, as in Keras.
    """

    tf_keras2_keys = ("groups",)

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None, data_format=None,
                 dilation_rate=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                         bias_initializer, bias_regularizer, bias_constraint, activity_regularizer, **kwargs)
        cls = type(self).__name__
        self.filters = positive_int(filters, "filters", cls)
        self.output_padding = None
        if output_padding is not None:
            self.output_padding = normalize_tuple(output_padding, self.rank, "output_padding", cls, allow_zero=True)
            if any(p >= s for p, s in zip(self.output_padding, self.strides)):
                raise ConfigError(f"{cls}: each value of 'output_padding' must be smaller than the stride, got "
                                  f"output_padding={self.output_padding} with strides={self.strides}.")
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)

    def build(self, input_shape):
        in_ch = self._input_channels(input_shape)
        self.kernel = self.add_weight(name="kernel", shape=self.kernel_size + (self.filters, in_ch),
                                      initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self._make_bias(self.filters)

    def call(self, inputs):
        self._check_inputs(inputs, self.kernel.shape[-1])
        transpose_padding(spatial_dims(inputs.shape, self.data_format), self.kernel_size, self.strides,
                          self.dilation_rate, self.padding, self.output_padding, f"{type(self).__name__} '{self.name}'")
        x = ops.conv_transpose(inputs, self.kernel, strides=self.strides, padding=self.padding,
                               output_padding=self.output_padding, data_format=self.data_format,
                               dilation_rate=self.dilation_rate)
        return self._bias_and_activation(x)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "output_padding": self.output_padding,
                       **_objects(kernel_initializer=self.kernel_initializer,
                                  kernel_regularizer=self.kernel_regularizer,
                                  kernel_constraint=self.kernel_constraint)})
        return config


class Conv1DTranspose(BaseConvTranspose):
    rank = 1


class Conv2DTranspose(BaseConvTranspose):
    rank = 2


class Conv3DTranspose(BaseConvTranspose):
    rank = 3


class BaseDepthwiseConv(BaseWindowConv):
    """One filter bank per input channel: kernel (k..., in, depth_multiplier), in * depth_multiplier outputs."""

    tf_keras2_keys = ("groups",)

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                         bias_initializer, bias_regularizer, bias_constraint, activity_regularizer, **kwargs)
        self.depth_multiplier = positive_int(depth_multiplier, "depth_multiplier", type(self).__name__)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)

    def build(self, input_shape):
        in_ch = self._input_channels(input_shape)
        self.kernel = self.add_weight(name="kernel", shape=self.kernel_size + (in_ch, self.depth_multiplier),
                                      initializer=self.depthwise_initializer, regularizer=self.depthwise_regularizer,
                                      constraint=self.depthwise_constraint)
        self._make_bias(in_ch * self.depth_multiplier)

    def call(self, inputs):
        self._check_inputs(inputs, self.kernel.shape[-2])
        self._check_window(inputs)
        x = ops.depthwise_conv(inputs, self.kernel, strides=self.strides, padding=self.padding,
                               data_format=self.data_format, dilation_rate=self.dilation_rate)
        return self._bias_and_activation(x)

    def get_config(self):
        config = super().get_config()
        config.update({"depth_multiplier": self.depth_multiplier,
                       **_objects(depthwise_initializer=self.depthwise_initializer,
                                  depthwise_regularizer=self.depthwise_regularizer,
                                  depthwise_constraint=self.depthwise_constraint)})
        return config


class DepthwiseConv1D(BaseDepthwiseConv):
    rank = 1


class DepthwiseConv2D(BaseDepthwiseConv):
    rank = 2


class BaseSeparableConv(BaseWindowConv):
    """A depthwise convolution (k..., in, depth_multiplier) then a pointwise one (1..., in * depth_multiplier,
    filters)."""

    tf_keras2_keys = ("groups", "kernel_initializer", "kernel_regularizer", "kernel_constraint")

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 depth_multiplier=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 pointwise_initializer="glorot_uniform", bias_initializer="zeros", depthwise_regularizer=None,
                 pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, pointwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                         bias_initializer, bias_regularizer, bias_constraint, activity_regularizer, **kwargs)
        cls = type(self).__name__
        self.filters = positive_int(filters, "filters", cls)
        self.depth_multiplier = positive_int(depth_multiplier, "depth_multiplier", cls)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)
        self.pointwise_constraint = constraints.get(pointwise_constraint)

    def build(self, input_shape):
        in_ch = self._input_channels(input_shape)
        self.depthwise_kernel = self.add_weight(
            name="depthwise_kernel", shape=self.kernel_size + (in_ch, self.depth_multiplier),
            initializer=self.depthwise_initializer, regularizer=self.depthwise_regularizer,
            constraint=self.depthwise_constraint)
        self.pointwise_kernel = self.add_weight(
            name="pointwise_kernel", shape=(1,) * self.rank + (in_ch * self.depth_multiplier, self.filters),
            initializer=self.pointwise_initializer, regularizer=self.pointwise_regularizer,
            constraint=self.pointwise_constraint)
        self._make_bias(self.filters)

    def call(self, inputs):
        self._check_inputs(inputs, self.depthwise_kernel.shape[-2])
        self._check_window(inputs)
        x = ops.separable_conv(inputs, self.depthwise_kernel, self.pointwise_kernel, strides=self.strides,
                               padding=self.padding, data_format=self.data_format, dilation_rate=self.dilation_rate)
        return self._bias_and_activation(x)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "depth_multiplier": self.depth_multiplier,
                       **_objects(depthwise_initializer=self.depthwise_initializer,
                                  pointwise_initializer=self.pointwise_initializer,
                                  depthwise_regularizer=self.depthwise_regularizer,
                                  pointwise_regularizer=self.pointwise_regularizer,
                                  depthwise_constraint=self.depthwise_constraint,
                                  pointwise_constraint=self.pointwise_constraint)})
        return config


class SeparableConv1D(BaseSeparableConv):
    rank = 1


class SeparableConv2D(BaseSeparableConv):
    rank = 2


# Keras's long aliases.
Convolution1D, Convolution2D, Convolution3D = Conv1D, Conv2D, Conv3D
Convolution1DTranspose, Convolution2DTranspose, Convolution3DTranspose = \
    Conv1DTranspose, Conv2DTranspose, Conv3DTranspose
SeparableConvolution1D, SeparableConvolution2D = SeparableConv1D, SeparableConv2D

__all__ = ["Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose", "DepthwiseConv1D",
           "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D", "Convolution1D", "Convolution2D", "Convolution3D",
           "Convolution1DTranspose", "Convolution2DTranspose", "Convolution3DTranspose", "SeparableConvolution1D",
           "SeparableConvolution2D"]

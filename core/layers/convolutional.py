"""Convolution layers: Conv1D, Conv2D (channels-last by default, as Keras).

The argument checks shared by the convolution, pooling and reshaping layers (`normalize_tuple`, `normalize_padding`,
`normalize_data_format`) live here, as Keras keeps them in its conv utilities.
"""

from __future__ import annotations

from core import activations, constraints, initializers, ops, regularizers
from core.errors import ConfigError, ShapeError
from core.layers.base import Layer
from core.ops.conv import spatial_padding


def _is_int(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and value.is_integer()


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


def check_rank(layer: Layer, inputs, rank: int, layout: str) -> None:
    if inputs.ndim != rank:
        raise ShapeError(f"{type(layer).__name__} '{layer.name}' expects a rank-{rank} input {layout}, got shape "
                         f"{tuple(inputs.shape)}.")


class BaseConv(Layer):
    """What Conv1D and Conv2D share: `rank` spatial axes, a kernel (k..., in/groups, filters) and a bias."""

    rank = 0
    paddings = ("valid", "same")

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1, groups=1,
                 activation=None, use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, lora_rank=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        cls = type(self).__name__
        if not _is_int(filters) or int(filters) <= 0:
            raise ConfigError(f"{cls}: 'filters' must be a positive integer, got {filters!r}.")
        self.filters = int(filters)
        self.kernel_size = normalize_tuple(kernel_size, self.rank, "kernel_size", cls)
        self.strides = normalize_tuple(strides, self.rank, "strides", cls)
        self.padding = normalize_padding(padding, cls, self.paddings)
        self.data_format = normalize_data_format(data_format, cls)
        self.dilation_rate = normalize_tuple(dilation_rate, self.rank, "dilation_rate", cls)
        if not _is_int(groups) or int(groups) <= 0:
            raise ConfigError(f"{cls}: 'groups' must be a positive integer, got {groups!r}.")
        self.groups = int(groups)
        if self.filters % self.groups:
            raise ConfigError(f"{cls}: 'filters' ({self.filters}) must be divisible by 'groups' ({self.groups}).")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ConfigError(f"{cls}: strides > 1 cannot be combined with dilation_rate > 1 (got strides="
                              f"{self.strides}, dilation_rate={self.dilation_rate}), as in Keras.")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def _layout(self) -> str:
        spatial = ", ".join(["steps"] if self.rank == 1 else ["rows", "cols"])
        return f"(batch, {spatial}, channels)" if self.data_format == "channels_last" else \
            f"(batch, channels, {spatial})"

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != self.rank + 2:
            raise ShapeError(f"{type(self).__name__} '{self.name}' expects a rank-{self.rank + 2} input "
                             f"{self._layout()}, got shape {input_shape}.")
        in_ch = input_shape[channel_axis(self.data_format)]
        if in_ch is None:
            raise ShapeError(f"{type(self).__name__} '{self.name}' needs a known number of input channels, got input "
                             f"shape {input_shape}.")
        if in_ch % self.groups:
            raise ShapeError(f"{type(self).__name__} '{self.name}': the input's {in_ch} channels cannot be split into "
                             f"groups={self.groups} groups.")
        self.kernel = self.add_weight(name="kernel", shape=self.kernel_size + (in_ch // self.groups, self.filters),
                                      initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint)
        self.built = True  # Keras marks a layer built by a direct build() call too

    def call(self, inputs):
        check_rank(self, inputs, self.rank + 2, self._layout())
        in_ch = inputs.shape[channel_axis(self.data_format)]
        built_for = self.kernel.shape[-2] * self.groups
        if in_ch is not None and in_ch != built_for:
            raise ShapeError(f"{type(self).__name__} '{self.name}' was built for {built_for} input channels, got "
                             f"input shape {tuple(inputs.shape)}.")
        # Checked here so that the message names the layer and the axis length.
        spatial_padding(spatial_dims(inputs.shape, self.data_format), self.kernel_size, self.strides,
                        self.dilation_rate, self.padding, f"{type(self).__name__} '{self.name}'")
        x = ops.conv(inputs, self.kernel, strides=self.strides, padding=self.padding, data_format=self.data_format,
                     dilation_rate=self.dilation_rate)
        if self.use_bias:
            bias = self.bias if self.data_format == "channels_last" else \
                ops.reshape(self.bias, (self.filters,) + (1,) * self.rank)
            x = ops.add(x, bias)
        return self.activation(x)

    def get_config(self):
        config = super().get_config()
        config.update({
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            "groups": self.groups,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
        })
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


# Keras's long aliases.
Convolution1D, Convolution2D = Conv1D, Conv2D

__all__ = ["Conv1D", "Conv2D", "Convolution1D", "Convolution2D"]

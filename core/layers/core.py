"""Core layers: Dense and Activation."""

from __future__ import annotations

from core import activations, constraints, initializers, ops, regularizers
from core.errors import ConfigError, ShapeError
from core.layers.base import Layer


def check_positive_int(layer: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int,)) and not (hasattr(value, "is_integer")
                                                                         and float(value).is_integer()):
        raise ConfigError(f"{layer}: '{name}' must be a positive integer, got {value!r}.")
    value = int(value)
    if value <= 0:
        raise ConfigError(f"{layer}: '{name}' must be a positive integer, got {value}.")
    return value


def check_rate(layer: str, value) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{layer}: 'rate' must be between 0 and 1, got {value}.")
    return value


class Dense(Layer):
    """`output = activation(dot(input, kernel) + bias)`, on the last axis of inputs of any rank."""

    supports_masking = True

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, lora_rank=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = check_positive_int("Dense", "units", units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def build(self, input_shape):
        in_dim = input_shape[-1]
        if in_dim is None:
            raise ShapeError(f"Dense '{self.name}' needs a known last input dimension, got input shape "
                             f"{tuple(input_shape)}.")
        self.kernel = self.add_weight(name="kernel", shape=(in_dim, self.units), initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.units,), initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint)

    def call(self, inputs):
        if inputs.shape[-1] is not None and inputs.shape[-1] != self.kernel.shape[0]:
            raise ShapeError(f"Dense '{self.name}' was built for inputs with last dimension {self.kernel.shape[0]}, "
                             f"got shape {inputs.shape}.")
        x = ops.matmul(inputs, self.kernel)
        if self.use_bias:
            x = ops.add(x, self.bias)
        return self.activation(x)

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
        })
        return config


class Activation(Layer):
    supports_masking = True

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, inputs):
        return self.activation(inputs)

    def get_config(self):
        config = super().get_config()
        config["activation"] = activations.serialize(self.activation)
        return config

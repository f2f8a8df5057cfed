"""Core layers: Dense, Activation, Embedding, Masking, Identity and Lambda."""

from __future__ import annotations

import base64
import builtins
import inspect
import json
import marshal
import types

import numpy as np

from core import activations, constraints, initializers, ops, regularizers
from core.errors import ConfigError, ShapeError
from core.layers.base import Layer
from core.serialization import custom_objects as _custom_objects, in_safe_mode


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


class Embedding(Layer):
    """Looks up a dense vector per integer id (ONNX Gather); `mask_zero` marks id 0 as padding."""

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", embeddings_regularizer=None,
                 embeddings_constraint=None, mask_zero=False, input_length=None, activity_regularizer=None,
                 lora_rank=None, **kwargs):
        # tf.keras 2 configs carry input_length: it fixes the sequence length of the layer's input.
        if input_length is not None:
            input_length = check_positive_int("Embedding", "input_length", input_length)
        if input_length is not None and "input_shape" not in kwargs and "batch_input_shape" not in kwargs:
            kwargs["input_shape"] = (input_length,)
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.input_dim = check_positive_int("Embedding", "input_dim", input_dim)
        self.output_dim = check_positive_int("Embedding", "output_dim", output_dim)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.mask_zero = bool(mask_zero)
        self.input_length = input_length

    def build(self, input_shape):
        self.embeddings = self.add_weight(name="embeddings", shape=(self.input_dim, self.output_dim),
                                          initializer=self.embeddings_initializer,
                                          regularizer=self.embeddings_regularizer,
                                          constraint=self.embeddings_constraint)

    def call(self, inputs):
        ids = inputs if inputs.dtype in ("int32", "int64") else ops.cast(inputs, "int64")
        return ops.take(self.embeddings, ids, axis=0)

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        return ops.not_equal(inputs, 0)

    def get_config(self):
        config = super().get_config()
        if self.input_length is not None and config.get("batch_input_shape") == [None, self.input_length]:
            config.pop("batch_input_shape")  # input_length says it; writing both would repeat it
        config.update({
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
            "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
            "embeddings_constraint": constraints.serialize(self.embeddings_constraint),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "mask_zero": self.mask_zero,
        })
        if self.input_length is not None:
            config["input_length"] = self.input_length
        return config


class Masking(Layer):
    """Masks the timesteps whose features all equal `mask_value`, and zeroes them (as Keras does)."""

    supports_masking = True

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        try:
            self.mask_value = float(mask_value)
        except (TypeError, ValueError):
            raise ConfigError(f"Masking: 'mask_value' must be a number, got {mask_value!r}.") from None

    def call(self, inputs):
        keep = ops.any(ops.not_equal(inputs, self.mask_value), axis=-1, keepdims=True)
        return ops.multiply(inputs, ops.cast(keep, inputs.dtype))

    def compute_mask(self, inputs, mask=None):
        return ops.any(ops.not_equal(inputs, self.mask_value), axis=-1)

    def get_config(self):
        config = super().get_config()
        config["mask_value"] = self.mask_value
        return config


class Identity(Layer):
    supports_masking = True

    def call(self, inputs):
        return inputs


# -- Lambda --------------------------------------------------------------------------------------------------------
# Functions this process serialized, by their serialized form: a config read back in the same process (clone_model,
# undo in the editor) gets the live function again without running any code from the config.
_SERIALIZED_FUNCTIONS: dict[str, object] = {}


def _dump_function(fn):
    """Keras 3's form: a named function by name, a lambda (or closure) as marshalled bytecode."""
    if fn is None or not callable(fn):
        return fn
    # Module-level functions (ops and activations included, which are decorated wrappers) go by name.
    if fn.__name__ != "<lambda>" and "<locals>" not in getattr(fn, "__qualname__", "<locals>"):
        return {"module": fn.__module__, "class_name": "function", "config": fn.__name__,
                "registered_name": fn.__name__}
    code = base64.encodebytes(marshal.dumps(fn.__code__)).decode("ascii")
    closure = tuple(c.cell_contents for c in fn.__closure__) if fn.__closure__ else None
    config = {"code": code, "defaults": fn.__defaults__, "closure": closure}
    _SERIALIZED_FUNCTIONS[_function_key(config)] = fn
    return {"class_name": "__lambda__", "config": config}


def _function_key(config) -> str:
    # JSON-normal (tuples as lists) so a config that went through a JSON or YAML file still finds its function.
    return json.dumps([config.get("code"), config.get("defaults"), config.get("closure")], default=repr)


def _load_function(value, kind: str, layer_name: str, safe_mode: bool, extra_objects):
    """A callable from what `_dump_function` (or tf.keras 2) wrote; bytecode runs only when `safe_mode` is False."""
    if value is None or callable(value):
        return value
    if isinstance(value, (list, tuple)) and kind == "lambda":  # tf.keras 2: (code, defaults, closure)
        value = {"class_name": "__lambda__", "config": {"code": value[0], "defaults": value[1],
                                                         "closure": value[2] if len(value) > 2 else None}}
    if isinstance(value, str):
        value = {"class_name": "function", "config": value}
    if not isinstance(value, dict):
        raise ConfigError(f"Lambda '{layer_name}': cannot read a function from {value!r}.")
    if value.get("class_name") != "__lambda__":
        name = value.get("registered_name") or value.get("config")
        objs = _custom_objects(extra_objects)
        for key in (name, str(name).split(">")[-1]):
            if key in objs:
                return objs[key]
        if hasattr(ops, str(name)):
            return getattr(ops, name)
        raise ConfigError(f"Lambda '{layer_name}' calls the function '{name}', which is not known here. Pass it in "
                          f"custom_objects={{'{name}': {name}}} or register it with register_keras_serializable.")
    config = value.get("config") or {}
    live = _SERIALIZED_FUNCTIONS.get(_function_key(config))
    if live is not None:
        return live
    if safe_mode:
        raise ConfigError(f"Lambda '{layer_name}' holds Python bytecode; loading it would run that code. Only if you "
                          f"trust the file, load it with safe_mode=False.")
    try:
        code = marshal.loads(base64.decodebytes(str(config["code"]).encode("ascii")))
        if not isinstance(code, types.CodeType):
            raise ValueError(f"it holds a {type(code).__name__}, not code")
    except (KeyError, ValueError, EOFError, TypeError) as exc:
        raise ConfigError(f"Lambda '{layer_name}': its bytecode cannot be read by this Python ({exc}); it was "
                          f"probably written by another Python version. Rebuild the Lambda in code.") from None
    closure = config.get("closure")
    cells = tuple(types.CellType(v) for v in closure) if closure else None
    import core

    scope = {"__builtins__": builtins, "ops": ops, "keras": core, "tf": core, "K": ops, "np": np}
    defaults = config.get("defaults")
    return types.FunctionType(code, scope, code.co_name, tuple(defaults) if defaults else None, cells)


class Lambda(Layer):
    """Wraps a function of `core.ops` (or tensor operators) as a layer.

    Its config stores the function the way Keras 3 does: a named function by name, a lambda as marshalled bytecode.
    Reading bytecode back runs code, so `from_config` refuses it unless `safe_mode=False` is passed (or a loader runs
    it inside `core.serialization.safe_mode_scope(False)`); a config made by this same process gets its live
    function back without running anything.
    """

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise ConfigError(f"Lambda '{self.name}': 'function' must be callable, got {function!r}.")
        if arguments is not None and not isinstance(arguments, dict):
            raise ConfigError(f"Lambda '{self.name}': 'arguments' must be a dict of keyword arguments, "
                              f"got {arguments!r}.")
        self.function = function
        self.arguments = dict(arguments or {})
        self.mask = mask
        self.supports_masking = mask is not None
        self._output_shape = output_shape
        try:
            params = inspect.signature(function).parameters
        except (TypeError, ValueError):
            params = {}
        self._fn_takes_mask = "mask" in params
        self._fn_takes_training = "training" in params

    def call(self, inputs, mask=None, training=None):
        kwargs = dict(self.arguments)
        if self._fn_takes_mask:
            kwargs["mask"] = mask
        if self._fn_takes_training:
            kwargs["training"] = training
        return self.function(inputs, **kwargs)

    def compute_mask(self, inputs, mask=None):
        if callable(self.mask):
            return self.mask(inputs, mask)
        return self.mask

    def get_config(self):
        config = super().get_config()
        config["function"] = _dump_function(self.function)
        if self._output_shape is not None:
            out = self._output_shape
            config["output_shape"] = _dump_function(out) if callable(out) else list(out)
        if self.mask is not None:
            config["mask"] = _dump_function(self.mask) if callable(self.mask) else self.mask
        config["arguments"] = dict(self.arguments)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None, safe_mode=None):
        config = dict(config)
        safe = in_safe_mode() if safe_mode is None else bool(safe_mode)
        name = config.get("name", "lambda")
        # tf.keras 2 says what kind each callable is in a companion key.
        kinds = {key: config.pop(f"{key}_type", "lambda" if key == "function" else "raw")
                 for key in ("function", "output_shape", "mask")}
        for key in ("module", "output_shape_module", "mask_module"):
            config.pop(key, None)
        config["function"] = _load_function(config.get("function"), kinds["function"], name, safe, custom_objects)
        for key in ("output_shape", "mask"):
            value = config.get(key)
            if isinstance(value, dict) or kinds[key] in ("lambda", "function"):
                config[key] = _load_function(value, kinds[key], name, safe, custom_objects)
        return cls(**config)

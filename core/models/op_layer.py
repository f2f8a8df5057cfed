"""Op nodes: a `core.ops` function called directly on Functional-API tensors, kept as one node of the model's graph.

Keras 3 records `keras.ops.not_equal(tokens, 0)` on a KerasTensor as an Operation node, and tf.keras 2 records
`tf.math.not_equal(tokens, 0)` as a TFOpLambda layer. Here both are an `OpLayer`: the op's name in `core.ops` and its
non-tensor arguments (an axis, a constant operand, a slice key) are its config, and its tensor arguments are the
inputs of its node. So a model built by a script, a model read from either Keras's file and a node drawn in the editor
hold the same thing, and `core.models.op_nodes` writes it in each Keras's form.
"""

from __future__ import annotations

import inspect

import numpy as np

from core import backend
from core.errors import ConfigError, GraphError
from core.layers.base import KerasTensor, Layer, flatten


def op_function(name: str):
    """The `core.ops` function called `name`, or a ConfigError naming it."""
    from core import ops

    fn = getattr(ops, name, None) if isinstance(name, str) and not name.startswith("_") else None
    if fn is None or not hasattr(fn, "__wrapped__"):
        raise ConfigError(f"core.ops has no op named {name!r}.")
    return fn


# -- arguments as JSON: the encodings Keras 3 uses for slices, Ellipsis and arrays -----------------------------------
def encode_argument(value):
    if isinstance(value, slice):
        return {"class_name": "__slice__", "config": {"start": encode_argument(value.start),
                                                      "stop": encode_argument(value.stop),
                                                      "step": encode_argument(value.step)}}
    if value is Ellipsis:
        return {"class_name": "__ellipsis__", "config": {}}
    if isinstance(value, np.ndarray):
        return {"class_name": "__numpy__", "config": {"value": value.tolist(), "dtype": value.dtype.name}}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [encode_argument(v) for v in value]
    if isinstance(value, dict):
        return {k: encode_argument(v) for k, v in value.items()}
    return value


def decode_argument(value):
    if isinstance(value, dict):
        kind, cfg = value.get("class_name"), value.get("config") or {}
        if kind == "__slice__":
            return slice(decode_argument(cfg.get("start")), decode_argument(cfg.get("stop")),
                         decode_argument(cfg.get("step")))
        if kind == "__ellipsis__":
            return Ellipsis
        if kind in ("__numpy__", "__tensor__"):
            return np.asarray(cfg["value"], dtype=cfg.get("dtype"))
        return {k: decode_argument(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_argument(v) for v in value]
    return value


def _as_key(key):
    """A getitem key as Python indexes it: a list read from JSON is a tuple of per-axis indices."""
    return tuple(key) if isinstance(key, list) else key


class OpLayer(Layer):
    """One call of a `core.ops` function in a Functional model (Keras 3's Operation node, tf.keras 2's TFOpLambda).

    Args:
        function: the op's name in `core.ops` (e.g. "not_equal", "sum", "getitem").
        arguments: the call's arguments that are not tensors, by the op's parameter names.
        tensor_params: where each input tensor goes, in input order: a parameter name, or "name/i" for item i of a
            list parameter (concatenate's tensors).
    """

    # Keras drops a mask that reaches an op (neither Keras's op nodes take one): the output carries none.
    supports_masking = True

    def __init__(self, function: str, arguments: dict | None = None, tensor_params=None, **kwargs):
        from core.models.op_nodes import default_name

        fn = op_function(function)
        if not kwargs.get("name"):
            kwargs["name"] = backend.unique_object_name(default_name(function))
        super().__init__(**kwargs)
        params = list(inspect.signature(fn).parameters)
        self.function = function
        self.arguments = {k: decode_argument(v) for k, v in dict(arguments or {}).items()}
        self.tensor_params = list(tensor_params) if tensor_params else params[:1]
        if "key" in self.arguments:
            self.arguments["key"] = _as_key(self.arguments["key"])
        unknown = [p for p in list(self.arguments) + [t.split("/")[0] for t in self.tensor_params] if p not in params]
        if unknown:
            raise ConfigError(f"Op node '{self.name}': core.ops.{function} takes {params}, not {sorted(set(unknown))}.")

    def call_arguments(self, inputs) -> dict:
        """The op's arguments by parameter name: the stored ones, and the input tensors where they go."""
        tensors = list(inputs) if len(self.tensor_params) > 1 else [inputs]
        if len(tensors) != len(self.tensor_params):
            raise GraphError(f"Op node '{self.name}' ({self.function}) takes {len(self.tensor_params)} tensor(s) "
                             f"({', '.join(self.tensor_params)}), got {len(tensors)}.")
        kwargs = dict(self.arguments)
        for path, t in zip(self.tensor_params, tensors):
            param, _, index = path.partition("/")
            if index:
                items = kwargs.setdefault(param, [])
                items.extend([None] * (int(index) + 1 - len(items)))
                items[int(index)] = t
            else:
                kwargs[param] = t
        return kwargs

    def call(self, inputs):
        from core import ops

        out = op_function(self.function)(**self.call_arguments(inputs))
        # An op that returns its input unchanged (a cast to the same dtype) must still make a tensor of its own: the
        # node's output carries no mask, and the input may carry one that other layers read.
        return ops.identity(out) if any(out is t for t in flatten(inputs)) else out

    def compute_mask(self, inputs, mask=None):
        return None

    @property
    def summary_class_name(self) -> str:
        """Keras 3's summary names an op node by its operation class (`not_equal (NotEqual)`)."""
        from core.models.op_nodes import keras_class_name

        return keras_class_name(self.function)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"function": self.function, "arguments": encode_argument(self.arguments),
                       "tensor_params": list(self.tensor_params)})
        return config


# Ops whose Keras meaning differs from the engine's internal one: on model tensors the Keras one is recorded.
_KERAS_MEANING = {"divide": "true_divide"}


def call_on_keras_tensors(name: str, fn, args: tuple, kwargs: dict):
    """`core.ops.<name>(...)` called with Functional-API tensors: a new op node of the graph, as Keras records it."""
    from core.models import op_nodes

    if name == "shape":  # Keras gives a symbolic tensor's static shape
        return tuple(args[0].shape) if args else tuple(kwargs["x"].shape)
    if name in _KERAS_MEANING:
        name = _KERAS_MEANING[name]
        fn = op_function(name)
    if not op_nodes.has_keras_form(name):
        raise GraphError(f"core.ops.{name} cannot be a node of a Functional model: neither Keras has it as an op "
                         f"that a model file can hold. Call it inside a layer's call() or a Lambda layer.")
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"core.ops.{name}: {exc}") from None
    arguments, tensor_params, tensors = split_tensor_arguments(bound.arguments, f"core.ops.{name}")
    return OpLayer(name, arguments, tensor_params)(tensors[0] if len(tensors) == 1 else tensors)


def split_tensor_arguments(values: dict, where: str):
    """(other arguments, tensor_params, tensors) of an op call given by parameter name: a tensor argument, or a
    list of tensors (concatenate's), goes to the node's inputs; everything else stays in the op's config."""
    arguments, params, tensors = {}, [], []
    for param, value in values.items():
        if isinstance(value, KerasTensor):
            params.append(param)
            tensors.append(value)
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, KerasTensor) for v in value):
            params.extend(f"{param}/{i}" for i in range(len(value)))
            tensors.extend(value)
        elif any(isinstance(v, KerasTensor) for v in flatten([value])):
            raise GraphError(f"{where}: argument '{param}' mixes Functional-API tensors with other values; an op "
                             f"node takes tensors only as whole arguments or lists of tensors.")
        else:
            arguments[param] = value
    if not tensors:
        raise GraphError(f"{where}: the op has no input tensor.")
    return arguments, params, tensors

"""The Keras layer protocol: `Layer`, its weights (`Variable`), and the tensors of the Functional API.

A layer is called three ways, as in Keras:
- on `KerasTensor`s (the Functional API): it records a `Node` and returns KerasTensors with inferred shapes; the
  shapes come from tracing `call` on placeholders of a scratch graph, so every layer's shape logic is its `call`;
- on `SymbolicTensor`s (inside another layer's or a model's call, and when a model is compiled to ONNX): it records
  ONNX nodes into that graph;
- on concrete arrays: it runs at once in ONNX Runtime and returns numpy-backed `EagerTensor`s.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from core import backend
from core.errors import ConfigError, MaskError, ShapeError, WeightsError
from core.graph import (GraphBuilder, SymbolicTensor, TensorOperators, array_dtype_name, dtype_name, graph_scope,
                        is_text, text_array)


# -- nested structures --------------------------------------------------------------------------------------------
def flatten(x) -> list:
    if isinstance(x, (list, tuple)):
        out = []
        for v in x:
            out.extend(flatten(v))
        return out
    if isinstance(x, dict):
        out = []
        for v in x.values():
            out.extend(flatten(v))
        return out
    return [x]


def map_structure(fn, x):
    if isinstance(x, list):
        return [map_structure(fn, v) for v in x]
    if isinstance(x, tuple):
        return tuple(map_structure(fn, v) for v in x)
    if isinstance(x, dict):
        return {k: map_structure(fn, v) for k, v in x.items()}
    return fn(x)


def shape_of_structure(x):
    return map_structure(lambda t: tuple(t.shape), x)


# -- weights ------------------------------------------------------------------------------------------------------
class Variable(TensorOperators):
    """A layer weight: a numpy value plus what Keras keeps with it (trainable, initializer, regularizer).

    In a graph under construction a Variable stands for itself: `GraphBuilder.variable` turns it into an initializer
    (inference) or a graph input (training), named by its path 'layer/weight'.
    """

    _nw_variable = True
    __array_priority__ = 100

    def __init__(self, value, name: str, *, trainable: bool = True, layer=None, initializer=None, regularizer=None,
                 constraint=None, dtype=None):
        self._value = np.array(value, dtype=dtype_name(dtype or np.asarray(value).dtype))
        self.name = name
        self.trainable = trainable
        self.layer = layer
        self.initializer = initializer
        self.regularizer = regularizer
        self.constraint = constraint
        self._version = 0

    @property
    def path(self) -> str:
        return f"{self.layer.name}/{self.name}" if self.layer is not None else self.name

    @property
    def shape(self) -> tuple:
        return self._value.shape

    @property
    def dtype(self) -> str:
        return self._value.dtype.name

    @property
    def ndim(self) -> int:
        return self._value.ndim

    @property
    def value(self) -> np.ndarray:
        return self._value

    def numpy(self) -> np.ndarray:
        return self._value

    def __array__(self, dtype=None, copy=None):
        return self._value if dtype is None else self._value.astype(dtype)

    def assign(self, value) -> None:
        arr = np.asarray(value)
        if arr.shape != self._value.shape:
            raise WeightsError(f"Weight '{self.path}' has shape {self._value.shape}; cannot assign a value of shape "
                               f"{arr.shape}.")
        self._value = arr.astype(self._value.dtype, copy=True)
        self._version += 1

    def __repr__(self) -> str:
        return f"<Variable '{self.path}' shape={self.shape} dtype={self.dtype}>"


# -- the Functional API's tensors ---------------------------------------------------------------------------------
class KerasTensor(TensorOperators):
    """A tensor of the Functional API: a shape, a dtype, where it came from, and whether a mask travels with it.

    Ops on it (`core.ops.*`, and Python's operators and slicing, which call them) become op nodes of the model, as
    Keras records `keras.ops` calls and tf.keras 2 `tf.*` calls on its symbolic tensors (see core.models.op_layer).
    """

    __array_priority__ = 100  # so numpy defers `ndarray * tensor` to us

    def __init__(self, shape, dtype="float32", *, name: str | None = None, mask_shape=None, mask_origin=None):
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = dtype_name(dtype)
        self.name = name
        self._mask_shape = None if mask_shape is None else tuple(mask_shape)
        self._mask_origin = mask_origin  # the name of the layer that made the mask, for error messages
        self._keras_history: tuple[Layer, int, int] | None = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def has_mask(self) -> bool:
        return self._mask_shape is not None

    @property
    def node(self) -> "Node":
        layer, node_index, _ = self._keras_history
        return layer._inbound_nodes[node_index]

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape} dtype={self.dtype} name={self.name}>"

    __hash__ = object.__hash__

    def __iter__(self):  # without this, Python would iterate by indexing: op nodes without end
        raise TypeError(f"A Functional-API tensor of shape {self.shape} cannot be iterated; index it (x[:, 0]) or "
                        f"use ops.unstack inside a layer.")


class Node:
    """One call of a layer in a Functional graph: its arguments (with KerasTensors) and its outputs."""

    def __init__(self, layer: "Layer", call_args: tuple, call_kwargs: dict, outputs: list[KerasTensor]):
        self.layer = layer
        self.call_args = call_args
        self.call_kwargs = call_kwargs
        self.outputs = outputs
        self.input_tensors: list[KerasTensor] = [t for t in flatten([call_args, call_kwargs])
                                                 if isinstance(t, KerasTensor)]

    @property
    def parent_nodes(self) -> list["Node"]:
        return [t.node for t in self.input_tensors]

    @property
    def is_input(self) -> bool:
        return not self.input_tensors


# -- layers --------------------------------------------------------------------------------------------------------
_BASE_KWARGS = {"name", "trainable", "dtype", "input_shape", "batch_input_shape", "batch_size", "input_dim",
                "input_length"}
# Keys that real Keras writes into configs and that change nothing here.
_IGNORED_KWARGS = {"autocast", "dynamic", "quantization_config", "module", "registered_name", "build_config",
                   "weights", "activity_regularizer_config", "seed_generator", "_is_feature_extractor"}


class Layer:
    """Base class of every layer: `__init__` stores the config, `build` makes weights, `call` computes with
    `core.ops`, `get_config` returns what `__init__` took."""

    supports_masking = False

    def __init__(self, *, name: str | None = None, trainable: bool = True, dtype=None, input_shape=None,
                 batch_input_shape=None, batch_size=None, input_dim=None, activity_regularizer=None, **kwargs):
        unknown = {k for k in kwargs if k not in _IGNORED_KWARGS}
        if unknown:
            raise ConfigError(f"{type(self).__name__}: unknown argument(s) {sorted(unknown)}.")
        if not hasattr(self, "_layers"):
            object.__setattr__(self, "_layers", [])
        self._name = name or backend.unique_object_name(backend.snake_case(type(self).__name__))
        self.trainable = bool(trainable)
        self.dtype = dtype_name(dtype or backend.floatx())
        self._trainable_variables: list[Variable] = []
        self._non_trainable_variables: list[Variable] = []
        self._inbound_nodes: list[Node] = []
        self.built = False
        self._build_input_shape = None
        from core import regularizers

        self.activity_regularizer = regularizers.get(activity_regularizer)
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        if batch_input_shape is not None:
            self._batch_input_shape = tuple(batch_input_shape)
        elif input_shape is not None:
            self._batch_input_shape = (batch_size,) + tuple(input_shape)
        else:
            self._batch_input_shape = None

    # -- attributes --------------------------------------------------------------------------------------------
    def __setattr__(self, key, value):
        if not key.startswith("__"):
            if not hasattr(self, "_layers") and key != "_layers":
                object.__setattr__(self, "_layers", [])
            if isinstance(value, Layer) and value is not self:
                if all(l is not value for l in self._layers):
                    self._layers.append(value)
            elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Layer) for v in value):
                for v in value:
                    if all(l is not v for l in self._layers):
                        self._layers.append(v)
        object.__setattr__(self, key, value)

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = value

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"

    # -- weights -----------------------------------------------------------------------------------------------
    def add_weight(self, *args, name: str | None = None, shape=None, dtype=None, initializer=None, regularizer=None,
                   trainable: bool = True, constraint=None, **kwargs) -> Variable:
        """Keras 2's `add_weight(name, shape, ...)` and Keras 3's `add_weight(shape, initializer, ...)`."""
        from core import constraints, initializers, regularizers

        if args:
            if isinstance(args[0], str):
                name = args[0]
                rest = list(args[1:])
                if rest:
                    shape = rest.pop(0)
                if rest:
                    dtype = rest.pop(0)
                if rest:
                    initializer = rest.pop(0)
            else:
                shape = args[0]
                if len(args) > 1:
                    initializer = args[1]
                if len(args) > 2:
                    dtype = args[2]
        shape = tuple(int(d) for d in (shape or ()))
        if any(d < 0 for d in shape):
            raise ShapeError(f"Layer '{self.name}': weight '{name}' has a negative dimension in {shape}.")
        dtype = dtype_name(dtype or self.dtype)
        if initializer is None:
            initializer = "glorot_uniform" if np.dtype(dtype).kind == "f" else "zeros"
        init = initializers.get(initializer)
        value = np.asarray(init(shape, dtype=dtype), dtype=dtype)
        var = Variable(value, name or f"variable_{len(self._trainable_variables) + len(self._non_trainable_variables)}",
                       trainable=trainable, layer=self, initializer=init, regularizer=regularizers.get(regularizer),
                       constraint=constraints.get(constraint), dtype=dtype)
        (self._trainable_variables if trainable else self._non_trainable_variables).append(var)
        return var

    @property
    def trainable_weights(self) -> list[Variable]:
        if not self.trainable:
            return []
        out = list(self._trainable_variables)
        for layer in self._layers:
            out.extend(w for w in layer.trainable_weights if all(w is not o for o in out))
        return out

    @property
    def non_trainable_weights(self) -> list[Variable]:
        if not self.trainable:
            return self.weights
        out = list(self._non_trainable_variables)
        for layer in self._layers:
            out.extend(w for w in layer.non_trainable_weights if all(w is not o for o in out))
        return out

    @property
    def weights(self) -> list[Variable]:
        """Keras 3's order: this layer's trainable then non-trainable weights, then each sublayer's, deduplicated."""
        out = list(self._trainable_variables) + list(self._non_trainable_variables)
        for layer in self._layers:
            out.extend(w for w in layer.weights if all(w is not o for o in out))
        return out

    @property
    def trainable_variables(self):
        return self.trainable_weights

    @property
    def non_trainable_variables(self):
        return self.non_trainable_weights

    @property
    def variables(self):
        return self.weights

    def get_weights(self) -> list[np.ndarray]:
        return [np.array(w.numpy()) for w in self.weights]

    def set_weights(self, weights) -> None:
        """Assign all weights at once; nothing changes unless every array fits."""
        own = self.weights
        weights = list(weights)
        if len(weights) != len(own):
            raise WeightsError(f"Layer '{self.name}' expects {len(own)} weight arrays "
                               f"({', '.join(w.path for w in own) or 'none'}), got {len(weights)}.")
        arrays = []
        for w, value in zip(own, weights):
            arr = np.asarray(value)
            if arr.shape != w.shape:
                raise WeightsError(f"Layer '{self.name}': weight '{w.path}' expects shape {w.shape}, "
                                   f"got {arr.shape}.")
            arrays.append(arr)
        for w, arr in zip(own, arrays):
            w.assign(arr)

    def count_params(self) -> int:
        if not self.built:
            raise ValueError(f"Layer '{self.name}' is not built yet, so it has no weights to count. Call it on an "
                             f"input or give it an input shape first.")
        return int(sum(int(np.prod(w.shape)) for w in self.weights))

    @property
    def losses(self) -> list:
        """The losses this layer and its sublayers added (`add_loss`) during their last eager call, as values."""
        out = list(getattr(self, "_nw_eager_losses", []))
        for layer in self._layers:
            out.extend(layer.losses)
        return out

    def add_loss(self, loss) -> None:
        """Add a loss computed inside `call` (with `core.ops`): training minimises it beside compile()'s loss, and
        evaluate reports it in 'loss', as in Keras. Outside a traced call it is kept as a value in `losses`."""
        if isinstance(loss, KerasTensor):
            raise TypeError(f"Layer '{self.name}': add_loss() got a Functional-API tensor. Compute the loss inside "
                            f"a layer's call() and call self.add_loss() there (the endpoint-layer pattern).")
        if isinstance(loss, SymbolicTensor):
            loss._nw_loss_owner = self  # an eager call hands the value back to this layer's `losses`
            graph_losses(loss.graph).append(loss)
            return
        if callable(loss):
            raise TypeError(f"Layer '{self.name}': add_loss() takes a loss value, not a function (Keras 3 dropped "
                            f"zero-argument callables); call it inside call().")
        self.__dict__.setdefault("_nw_eager_losses", []).append(np.asarray(loss, dtype=np.float32))

    def add_metric(self, value, name=None, aggregation=None):
        """tf.keras 2's `add_metric` inside `call`: a metric's value (`self.add_metric(self.acc(y, p))`) is
        reported under the metric's name; any other tensor is averaged over the epoch under `name`."""
        from core.metrics import Mean, RecordedMetric

        if isinstance(value, RecordedMetric):
            return
        if aggregation not in (None, "mean"):
            raise ConfigError(f"Layer '{self.name}': add_metric supports aggregation='mean' only, got "
                              f"{aggregation!r}.")
        if not name:
            raise ConfigError(f"Layer '{self.name}': add_metric needs a name for a value that is not a metric's.")
        added = self.__dict__.setdefault("_nw_added_metrics", {})
        if name not in added:
            added[name] = Mean(name=name)
        added[name].update_state(value)

    @property
    def metrics(self) -> list:
        """Metrics held as attributes of this layer and its sublayers (those `call` may update), as Keras tracks
        them."""
        from core.metrics import Metric

        out = [v for v in self.__dict__.values() if isinstance(v, Metric)]
        out += list(self.__dict__.get("_nw_added_metrics", {}).values())
        for layer in self._layers:
            out.extend(m for m in layer.metrics if all(m is not o for o in out))
        return out

    # -- the protocol subclasses implement ------------------------------------------------------------------------
    def build(self, input_shape) -> None:
        self.built = True

    def call(self, inputs, *args, **kwargs):
        return inputs

    def compute_mask(self, inputs, mask=None):
        if not self.supports_masking:
            return None
        return mask

    def get_config(self) -> dict:
        config: dict[str, Any] = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype}
        if self._batch_input_shape is not None:
            config["batch_input_shape"] = list(self._batch_input_shape)
        if self.activity_regularizer is not None:
            from core import regularizers

            config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    # -- calling ---------------------------------------------------------------------------------------------
    def _call_params(self) -> dict[str, bool]:
        cache = type(self).__dict__.get("_nw_call_params")
        if cache is None:
            params = inspect.signature(self.call).parameters
            has_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
            cache = {"mask": "mask" in params, "training": "training" in params, "var_kw": has_var_kw}
            setattr(type(self), "_nw_call_params", cache)
        return cache

    def __call__(self, *args, **kwargs):
        if not args and kwargs:
            # The inputs passed by keyword (`layer(logits=x, targets=y)`), as Keras allows: they are call's first
            # argument.
            first = next(iter(inspect.signature(self.call).parameters), None)
            if first in kwargs:
                kwargs = dict(kwargs)
                args = (kwargs.pop(first),)
        flat = flatten([args, kwargs])
        if any(isinstance(t, KerasTensor) for t in flat):
            return self._functional_call(args, kwargs)
        if any(isinstance(t, SymbolicTensor) for t in flat):
            return self._symbolic_call(args, kwargs)
        return self._eager_call(args, kwargs)

    def _maybe_build(self, inputs) -> None:
        if self.built:
            return
        shapes = shape_of_structure(inputs)
        if isinstance(shapes, list) and len(shapes) == 1 and not isinstance(inputs, list):
            shapes = shapes[0]
        self._build_input_shape = shapes
        # Keras passes the batch dimension as None; weights must not depend on it.
        self.build(shapes)
        self.built = True

    def _symbolic_call(self, args, kwargs):
        inputs, rest = args[0], args[1:]
        kwargs = dict(kwargs)
        params = self._call_params()
        in_masks = map_structure(lambda t: getattr(t, "_keras_mask", None), inputs)
        explicit_mask = "mask" in kwargs
        mask = kwargs.pop("mask") if explicit_mask else in_masks
        if all(m is None for m in flatten(mask)):
            mask = None
        if mask is not None and not explicit_mask and not params["mask"] and not self.supports_masking:
            origin = next((getattr(m, "_nw_origin", None) for m in flatten(mask) if m is not None), None)
            src = f"layer '{origin}'" if origin else "an earlier layer"
            raise MaskError(f"Layer '{self.name}' ({type(self).__name__}) does not support masking, but {src} "
                            f"passes it a mask. Remove the mask (mask_zero=False / no Masking layer) or put a layer "
                            f"that consumes the mask (an RNN or a pooling layer) before '{self.name}'.")
        if params["mask"] and mask is not None:
            kwargs["mask"] = mask
        graph = next((t.graph for t in flatten([inputs, kwargs]) if isinstance(t, SymbolicTensor)), None)
        if params["training"] and kwargs.get("training") is None:
            kwargs["training"] = bool(graph.training) if graph is not None else False
        elif not params["training"] and not params["var_kw"]:
            kwargs.pop("training", None)
        self._maybe_build(inputs)
        with graph_scope(graph):
            outputs = self.call(inputs, *rest, **kwargs)
            if self.activity_regularizer is not None and graph.training:
                for o in flatten(outputs):
                    graph_losses(graph).append(self.activity_regularizer(o))
            out_mask = self.compute_mask(inputs, mask)
        # Subclassed models have no Nodes; their summary shows the shapes of the last trace.
        self._nw_last_output_shape = map_structure(
            lambda t: t.shape if isinstance(t, SymbolicTensor) else None, outputs)
        flat_out = flatten(outputs)
        flat_masks = flatten(out_mask) if isinstance(out_mask, (list, tuple)) else [out_mask] * len(flat_out)
        if len(flat_masks) != len(flat_out):
            flat_masks = (flat_masks + [None] * len(flat_out))[:len(flat_out)]
        for o, m in zip(flat_out, flat_masks):
            if isinstance(o, SymbolicTensor):
                if m is not None and isinstance(m, SymbolicTensor) and getattr(m, "_nw_origin", None) is None:
                    m._nw_origin = self.name
                o._keras_mask = m
        return outputs

    def _functional_call(self, args, kwargs):
        scratch = GraphBuilder(f"{self.name}_shapes")
        placeholders: dict[int, SymbolicTensor] = {}

        def to_placeholder(x):
            if not isinstance(x, KerasTensor):
                return x
            p = scratch.add_input(x.name or "x", x.dtype, x.shape)
            if x.has_mask:
                m = scratch.add_input("mask", "bool", x._mask_shape)
                m._nw_origin = x._mask_origin
                p._keras_mask = m
            placeholders[id(p)] = p
            return p

        sym_args = map_structure(to_placeholder, args)
        sym_kwargs = map_structure(to_placeholder, kwargs)
        try:
            outputs = self._symbolic_call(sym_args, sym_kwargs)
        except (ShapeError, MaskError, ConfigError) as exc:
            raise type(exc)(_with_layer(self, exc)) from exc
        node_index = len(self._inbound_nodes)
        flat_outs = []

        def to_keras(o):
            if not isinstance(o, SymbolicTensor):
                return o
            m = o._keras_mask
            kt = KerasTensor(o.shape, o.dtype, name=self.name if not flat_outs else f"{self.name}_{len(flat_outs)}",
                             mask_shape=None if m is None else m.shape,
                             mask_origin=None if m is None else getattr(m, "_nw_origin", self.name))
            kt._keras_history = (self, node_index, len(flat_outs))
            flat_outs.append(kt)
            return kt

        result = map_structure(to_keras, outputs)
        self._inbound_nodes.append(Node(self, args, kwargs, flat_outs))
        return result

    def _eager_call(self, args, kwargs):
        from core.ops.dispatch import evaluate

        g = GraphBuilder(f"{self.name}_eager")
        feeds: dict[str, np.ndarray] = {}

        def to_input(x):
            if isinstance(x, (np.ndarray, list)) and not hasattr(x, "_nw_variable") and _is_array_like(x):
                arr = np.asarray(x)
                if arr.dtype == np.float64:
                    arr = arr.astype(np.float32)
                if is_text(arr):
                    arr = text_array(arr)
                t = g.add_input("x", array_dtype_name(arr), arr.shape)
                feeds[t.name] = arr
                m = getattr(x, "_keras_mask", None)
                if m is not None:
                    mt = g.add_input("mask", "bool", np.shape(m))
                    feeds[mt.name] = np.asarray(m, dtype=bool)
                    t._keras_mask = mt
                return t
            return x

        sym_args = tuple(_map_arrays(to_input, a) for a in args)
        sym_kwargs = {k: _map_arrays(to_input, v) for k, v in kwargs.items()}
        with graph_scope(g):
            try:
                outputs = self._symbolic_call(sym_args, sym_kwargs)
            except (ShapeError, MaskError, ConfigError) as exc:
                raise type(exc)(_with_layer(self, exc)) from exc
        # State that a training call asked to update (BatchNormalization's moving statistics) is assigned at once,
        # as an eager Keras call does; so are the losses and metrics that `call` added or updated.
        updates = g.state_updates
        added = [t for t in g.losses if hasattr(t, "_nw_loss_owner")]
        for layer in [self] + _sublayers(self):
            layer.__dict__.pop("_nw_eager_losses", None)  # each call's losses replace the last call's, as in Keras
        if not updates and not added and not g.metric_updates:
            return evaluate(g, outputs, feeds)
        outputs, new_values, loss_values, stats = evaluate(
            g, [outputs, [value for _, value in updates], added, [s for _, s in g.metric_updates]], feeds)
        for (variable, _), value in zip(updates, new_values):
            variable.assign(value)
        for t, value in zip(added, loss_values):
            t._nw_loss_owner.__dict__.setdefault("_nw_eager_losses", []).append(np.asarray(value))
        for (metric, _), values in zip(g.metric_updates, stats):
            metric.merge([np.asarray(v) for v in values])
        return outputs

    # -- shapes and history ------------------------------------------------------------------------------------
    def compute_output_shape(self, input_shape):
        g = GraphBuilder(f"{self.name}_shape")
        if isinstance(input_shape, list) and input_shape and isinstance(input_shape[0], (list, tuple)):
            inputs = [g.add_input("x", self.dtype, s) for s in input_shape]
        else:
            inputs = g.add_input("x", self.dtype, input_shape)
        out = self._symbolic_call((inputs,), {})
        return map_structure(lambda t: t.shape, out)

    def _node_tensor(self, which: str):
        if not self._inbound_nodes:
            raise AttributeError(f"Layer '{self.name}' has not been called yet, so it has no {which}.")
        node = self._inbound_nodes[0]
        if which == "input":
            ins = node.input_tensors
            return ins[0] if len(ins) == 1 else ins
        outs = node.outputs
        return outs[0] if len(outs) == 1 else outs

    @property
    def input(self):
        return self._node_tensor("input")

    @property
    def output(self):
        return self._node_tensor("output")

    @property
    def input_shape(self):
        return map_structure(lambda t: t.shape, self.input) if self._inbound_nodes else self._build_input_shape

    @property
    def output_shape(self):
        return map_structure(lambda t: t.shape, self.output)


def _sublayers(layer: Layer) -> list[Layer]:
    out = []
    for sub in layer._layers:
        out += [sub] + _sublayers(sub)
    return out


def _is_array_like(x) -> bool:
    try:
        arr = np.asarray(x)
    except Exception:
        return False
    return arr.dtype.kind in "biuf" or is_text(arr)


def _map_arrays(fn, x):
    if isinstance(x, np.ndarray):
        return fn(x)
    if isinstance(x, list):
        if _is_array_like(x) and not any(isinstance(v, (SymbolicTensor, KerasTensor)) for v in flatten(x)) \
                and not any(isinstance(v, np.ndarray) for v in x):
            return fn(np.asarray(x))
        return [_map_arrays(fn, v) for v in x]
    if isinstance(x, tuple):
        return tuple(_map_arrays(fn, v) for v in x)
    return x


def _with_layer(layer: Layer, exc: Exception) -> str:
    msg = str(exc)
    if f"'{layer.name}'" in msg:
        return msg
    return f"Layer '{layer.name}' ({type(layer).__name__}): {msg}"


def graph_losses(graph: GraphBuilder) -> list:
    """The penalty tensors (activity regularizers) that layers added to this graph while tracing it."""
    return graph.root.losses


# -- inputs ----------------------------------------------------------------------------------------------------------
class InputLayer(Layer):
    """The entry of a Functional model. Keras 2 writes `batch_input_shape`, Keras 3 `batch_shape`: both are read."""

    def __init__(self, shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None, input_tensor=None,
                 name=None, input_shape=None, batch_input_shape=None, ragged=None, optional=False, **kwargs):
        if sparse or ragged:
            raise ConfigError(f"InputLayer '{name}': sparse and ragged inputs are not supported.")
        batch_shape = batch_shape if batch_shape is not None else batch_input_shape
        if batch_shape is None:
            shape = shape if shape is not None else input_shape
            if shape is None:
                raise ConfigError(f"InputLayer '{name or ''}' needs a shape (e.g. shape=(32,)).")
            if isinstance(shape, int):
                shape = (shape,)
            batch_shape = (batch_size,) + tuple(shape)
        batch_shape = tuple(None if d is None or d == -1 else int(d) for d in batch_shape)
        if any(d is not None and d <= 0 for d in batch_shape):
            raise ShapeError(f"InputLayer '{name or ''}': dimensions must be positive, got {batch_shape}.")
        super().__init__(name=name or backend.unique_object_name("input_layer"), dtype=dtype, **kwargs)
        self.batch_shape = batch_shape
        self._batch_input_shape = batch_shape
        self.built = True
        kt = KerasTensor(batch_shape, self.dtype, name=self.name)
        kt._keras_history = (self, 0, 0)
        self._inbound_nodes.append(Node(self, (), {}, [kt]))

    def get_config(self) -> dict:
        return {"batch_shape": list(self.batch_shape), "dtype": self.dtype, "sparse": False, "ragged": False,
                "name": self.name}


def Input(shape=None, batch_size=None, name=None, dtype=None, sparse=None, batch_shape=None, tensor=None,
          ragged=None, optional=False) -> KerasTensor:
    """A symbolic input of the Functional API, as `keras.Input`."""
    layer = InputLayer(shape=shape, batch_size=batch_size, name=name, dtype=dtype, sparse=sparse,
                       batch_shape=batch_shape, ragged=ragged)
    return layer.output

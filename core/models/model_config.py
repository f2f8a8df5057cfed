"""Layer and model configs: our objects to Keras-3-form dictionaries and back, reading both Keras generations.

Writing always produces Keras 3's form (`module`, `class_name`, `config`, `registered_name`, `build_config`;
Functional `inbound_nodes` as `{"args": [...], "kwargs": {...}}` with `__keras_tensor__` references);
`exporters.keras_config` rewrites it for tf.keras 2 when that is the target.

Reading accepts both forms:
- tf.keras 2: `inbound_nodes: [[["input_1", 0, 0, {kwargs}], ...]]`, `batch_input_shape`, `input_layers` always a
  list of triples, bare `Functional`/`Model`/`Sequential`, keys only tf.keras 2 writes (LSTM `time_major`, ...);
- Keras 3: dict nodes, `batch_shape`, `input_layers` a single triple or a structure of them, DTypePolicy dtypes.

Keras counts a nested model's own construction as its node 0, so references to a nested model are one higher than
our node index in some places (see `_ref_offset`). Errors: an unknown class is a `ConfigError` naming it; a graph that
cannot be built (cycle, missing layer, bad reference) is a `GraphError`. A failed read leaves nothing behind: layers
are made with their stored names, so no name counter moves, and nothing is registered anywhere.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

from core.errors import ConfigError, GraphError, NetweaverError
from core.layers.base import InputLayer, KerasTensor, Layer, flatten

_ANY = object()
# Keys real Keras writes into a layer's config that our constructors do not take, with the values that change nothing
# here (or _ANY). They are dropped only when the class's `__init__` does not take them; another value is an error
# rather than a silently different model.
_STRIPPABLE_KEYS = {
    # Keras 3
    "quantization_config": (None,), "lora_rank": (None,), "lora_alpha": (None,), "optional": (False,),
    "zero_output_for_mask": (False,), "seed": _ANY,  # seeds only randomness (dropout), never inference
    # tf.keras 2
    "time_major": (False,), "implementation": _ANY,  # a speed choice
    "input_length": _ANY,  # a shape hint; batch_input_shape carries the shape
    "ragged": (False, None), "sparse": (False, None),
}
# Keras 3 initializer arguments our initializers do not take; only their default (None) is accepted.
_INITIALIZER_NONE_KEYS = {"input_axes", "output_axes"}
_MODEL_ALIASES = {"Model": "Functional"}
# What layer code raises on values a damaged config gives it (a string for a number, 10**9 units that cannot be
# allocated, an initializer range numpy cannot draw from); reported as a ConfigError or GraphError naming the layer.
_CALL_ERRORS = (TypeError, ValueError, IndexError, KeyError, AttributeError, MemoryError, OverflowError)
_NESTED_LAYER_KEYS = ("layer", "backward_layer", "forward_layer", "cell")


# -- writing -----------------------------------------------------------------------------------------------------
def _registered_name(cls) -> str | None:
    from core.serialization import _GLOBAL_CUSTOM_OBJECTS

    for key, obj in _GLOBAL_CUSTOM_OBJECTS.items():
        if obj is cls and ">" in key:
            return key
    return None


def _module_of(layer: Layer) -> str:
    from core.models.functional import Functional
    from core.models.sequential import Sequential

    cls = type(layer)
    if cls is Sequential:
        return "keras"
    if cls is Functional:
        return "keras.src.models.functional"
    if cls.__module__.startswith("core.layers"):
        return "keras.layers"
    return cls.__module__


def serialize_layer(layer: Layer) -> dict:
    """`{module, class_name, config, registered_name, [build_config]}` as Keras 3 writes it."""
    from core.models.functional import Functional
    from core.models.sequential import Sequential

    cls = type(layer)
    if not hasattr(layer, "get_config"):
        raise ConfigError(f"{cls.__name__} cannot be serialized: it has no get_config().")
    try:
        config = layer.get_config()
    except NotImplementedError as exc:
        raise ConfigError(f"Layer '{layer.name}' ({cls.__name__}) does not implement get_config(), so it cannot be "
                          f"saved as a config. Write get_config() returning its constructor arguments.") from exc
    registered = _registered_name(cls)
    if cls is Functional:
        registered = "Functional"
    entry: dict[str, Any] = {"module": _module_of(layer), "class_name": cls.__name__, "config": config,
                             "registered_name": registered}
    if isinstance(layer, Sequential) and layer.built:
        entry["build_config"] = {"input_shape": list(layer.inputs[0].shape)}
    elif isinstance(layer, Functional):
        entry["build_config"] = {"input_shape": None}
    elif not isinstance(layer, InputLayer) and layer.built and layer._build_input_shape is not None:
        entry["build_config"] = {"input_shape": _jsonable_shape(layer._build_input_shape)}
    return entry


def _jsonable_shape(shape):
    if shape is None:
        return None
    if isinstance(shape, dict):
        return {k: _jsonable_shape(v) for k, v in shape.items()}
    if isinstance(shape, (list, tuple)) and any(isinstance(s, (list, tuple, dict)) for s in shape):
        return [_jsonable_shape(s) for s in shape]
    return [None if d is None else int(d) for d in shape]


def _node_index_maps(model) -> dict[int, dict[int, int]]:
    """For each layer, its original node index -> its index among the nodes that belong to this model."""
    own = {id(n) for n in model._nodes_in_order}
    maps: dict[int, dict[int, int]] = {}
    for layer in model._graph_layers:
        kept = 0
        m = {}
        for i, node in enumerate(layer._inbound_nodes):
            if id(node) in own:
                m[i] = kept
                kept += 1
        maps[id(layer)] = m
    return maps


def _tensor_ref(t: KerasTensor, maps) -> list:
    layer, node_index, tensor_index = t._keras_history
    return [layer.name, maps.get(id(layer), {}).get(node_index, node_index), tensor_index]


def _serialize_call_value(x, maps):
    if isinstance(x, KerasTensor):
        return {"class_name": "__keras_tensor__",
                "config": {"shape": list(x.shape), "dtype": x.dtype, "keras_history": _tensor_ref(x, maps)}}
    if isinstance(x, (list, tuple)):
        return [_serialize_call_value(v, maps) for v in x]
    if isinstance(x, dict):
        return {k: _serialize_call_value(v, maps) for k, v in x.items()}
    if hasattr(x, "tolist"):
        return x.tolist()
    return x


def _structure_refs(structure, maps, offset_models: bool):
    from core.models.functional import Functional
    from core.models.sequential import Sequential

    def ref(t):
        r = _tensor_ref(t, maps)
        layer = t._keras_history[0]
        if offset_models and isinstance(layer, Functional) and not isinstance(layer, Sequential):
            r[1] += 1  # Keras 3 counts a nested Functional's own construction as node 0 here
        return r

    if isinstance(structure, KerasTensor):
        return ref(structure)
    if isinstance(structure, dict):
        return {k: _structure_refs(v, maps, offset_models) for k, v in structure.items()}
    return [_structure_refs(v, maps, offset_models) for v in structure]


def functional_config(model) -> dict:
    """The Keras 3 config of a Functional model: layers with their inbound nodes, input and output references."""
    from core.models import op_nodes
    from core.models.op_layer import OpLayer

    maps = _node_index_maps(model)
    own = {id(n) for n in model._nodes_in_order}
    layers = []
    for layer in model._graph_layers:
        if isinstance(layer, OpLayer):  # Keras 3's operation node: one call, its arguments in the node
            calls = [n for n in layer._inbound_nodes if id(n) in own]
            if len(calls) != 1:
                raise ConfigError(f"Model '{model.name}': op node '{layer.name}' is called {len(calls)} times; "
                                  f"Keras holds an op node for exactly one call.")
            layers.append(op_nodes.keras3_entry(layer, calls[0], lambda v: _serialize_call_value(v, maps)))
            continue
        entry = serialize_layer(layer)
        entry["name"] = layer.name
        nodes = []
        for node in layer._inbound_nodes:
            if id(node) not in own or node.is_input:
                continue
            nodes.append({"args": _serialize_call_value(list(node.call_args), maps),
                          "kwargs": _serialize_call_value(dict(node.call_kwargs), maps)})
        entry["inbound_nodes"] = nodes
        layers.append(entry)
    return {"name": model.name, "trainable": model.trainable, "layers": layers,
            "input_layers": _structure_refs(model._input_structure, maps, True),
            "output_layers": _structure_refs(model._output_structure, maps, True)}


def sequential_config(model) -> dict:
    layers = []
    if model.built:
        inp = model.inputs[0]._keras_history[0]
        layers.append(serialize_layer(inp))
    elif model._input_layer is not None:
        layers.append(serialize_layer(model._input_layer))
    layers.extend(serialize_layer(layer) for layer in model._stack)
    config: dict[str, Any] = {"name": model.name, "trainable": model.trainable, "dtype": model.dtype,
                              "layers": layers}
    if model.built:
        config["build_input_shape"] = list(model.inputs[0].shape)
    return config


# -- reading -----------------------------------------------------------------------------------------------------
def _resolve_class(entry: dict, custom_objects: dict | None):
    from core.layers import layer_registry
    from core.serialization import custom_objects as all_custom

    class_name = entry.get("class_name")
    if not isinstance(class_name, str) or not class_name:
        raise ConfigError(f"A layer config needs a 'class_name' string, got {class_name!r}.")
    custom = all_custom(custom_objects)
    registered = entry.get("registered_name")
    for key in (registered, class_name, class_name.split(">")[-1]):
        if isinstance(key, str) and key in custom:
            return custom[key]
    registry = layer_registry()
    name = _MODEL_ALIASES.get(class_name, class_name)
    if name in registry:
        return registry[name]
    raise ConfigError(f"Unknown layer class '{class_name}'"
                      f"{' (module ' + repr(entry['module']) + ')' if entry.get('module') else ''}. "
                      f"Netweaver has no such layer; a custom layer must be passed in custom_objects or registered "
                      f"with register_keras_serializable.")


def _accepted_params(cls) -> set[str]:
    """The keyword arguments `cls(...)` takes: its `__init__`'s, and its bases' while each passes **kwargs on."""
    names: set[str] = set()
    for klass in getattr(cls, "__mro__", ()):
        if "__init__" not in vars(klass):
            continue
        try:
            params = inspect.signature(klass.__init__).parameters
        except (TypeError, ValueError):
            break
        names |= {p for p, v in params.items() if p != "self" and v.kind is not inspect.Parameter.VAR_KEYWORD}
        if not any(v.kind is inspect.Parameter.VAR_KEYWORD for v in params.values()) or klass is Layer:
            break
    return names


def _clean_value(value):
    """Nested objects (initializers, regularizers, ...) as Keras 3 writes them, minus what our classes do not take."""
    if isinstance(value, dict):
        out = {k: _clean_value(v) for k, v in value.items()}
        if "class_name" in out and isinstance(out.get("config"), dict) \
                and str(out.get("module", "")).endswith("initializers"):
            cfg = out["config"]
            for key in _INITIALIZER_NONE_KEYS:
                if key in cfg and cfg[key] is None:
                    del cfg[key]
        return out
    if isinstance(value, list):
        return [_clean_value(v) for v in value]
    return value


def clean_layer_config(cls, config: dict, custom_objects=None) -> dict:
    """The config as `cls.__init__` takes it: Keras-only keys dropped, DTypePolicy dicts reduced to their name."""
    from core.models.functional import Functional

    config = _clean_value(dict(config))
    if isinstance(config.get("dtype"), dict):
        policy = config["dtype"]
        config["dtype"] = (policy.get("config") or {}).get("name", "float32")
        if config["dtype"] in ("mixed_float16", "mixed_bfloat16"):
            raise ConfigError(f"Layer '{config.get('name')}': mixed-precision policy {config['dtype']!r} is not "
                              f"supported; Netweaver computes in float32.")
    if isinstance(cls, type) and issubclass(cls, Functional):
        return config
    accepted = _accepted_params(cls)
    for key, harmless in _STRIPPABLE_KEYS.items():
        if key in config and key not in accepted:
            if harmless is not _ANY and config[key] not in harmless:
                raise ConfigError(f"Layer '{config.get('name')}' ({getattr(cls, '__name__', cls)}): {key}="
                                  f"{config[key]!r} is not supported here.")
            del config[key]
    for key in _NESTED_LAYER_KEYS:  # wrappers and RNNs carry inner layer configs: clean those the same way
        inner = config.get(key)
        if isinstance(inner, dict) and "class_name" in inner and isinstance(inner.get("config"), dict):
            inner_cls = _resolve_class(inner, custom_objects)
            config[key] = dict(inner, config=clean_layer_config(inner_cls, inner["config"], custom_objects))
    if "cells" in config and isinstance(config["cells"], list):
        config["cells"] = [dict(c, config=clean_layer_config(_resolve_class(c, custom_objects), c["config"],
                                                              custom_objects))
                           if isinstance(c, dict) and isinstance(c.get("config"), dict) else c
                           for c in config["cells"]]
    return config


def deserialize_layer(config, custom_objects=None, safe_mode: bool | None = None):
    """A layer or model from `{class_name, config, ...}` (either Keras generation).

    `safe_mode=None` inherits the setting of the load in progress (`core.serialization.safe_mode_scope`; safe
    outside any), so wrappers that deserialize their inner layer need not pass it on. In safe mode a Lambda's stored
    bytecode is refused (by `Lambda.from_config`).
    """
    from core.serialization import custom_object_scope, safe_mode_scope

    if safe_mode is not None:
        with safe_mode_scope(safe_mode):
            return deserialize_layer(config, custom_objects)
    if not isinstance(config, dict):
        raise ConfigError(f"A layer config must be a dict with 'class_name' and 'config', got {type(config).__name__}.")
    class_name = config.get("class_name")
    inner = config.get("config", {})
    if inner is None:
        inner = {}
    cls = _resolve_class(config, custom_objects)
    if not isinstance(inner, (dict, list)):
        raise ConfigError(f"The config of '{class_name}' must be a dict, got {type(inner).__name__}.")
    from core.models.functional import Functional

    try:
        with custom_object_scope(custom_objects):
            if isinstance(cls, type) and issubclass(cls, Functional):
                return cls.from_config(copy.deepcopy(inner), custom_objects=custom_objects)
            if not isinstance(inner, dict):
                raise ConfigError(f"The config of '{class_name}' must be a dict, got a list.")
            cleaned = clean_layer_config(cls, inner, custom_objects)
            layer = cls.from_config(cleaned) if hasattr(cls, "from_config") else cls(**cleaned)
    except NetweaverError:
        raise
    except _CALL_ERRORS as exc:
        name = inner.get("name", "?") if isinstance(inner, dict) else "?"
        raise ConfigError(f"Invalid config for layer '{name}' ({class_name}): {exc}") from exc
    if not isinstance(layer, Layer):
        raise ConfigError(f"'{class_name}' is not a layer (got {type(layer).__name__}).")
    return layer


# -- Functional --------------------------------------------------------------------------------------------------
def _is_keras_tensor_ref(x) -> bool:
    return isinstance(x, dict) and x.get("class_name") == "__keras_tensor__"


def _ref_offset(layer, keras3: bool) -> int:
    """How many nodes Keras counted before the first call of `layer` in a model (its own construction node)."""
    from core.models.functional import Functional
    from core.models.sequential import Sequential

    if not isinstance(layer, Functional):
        return 0
    if keras3:
        return 0 if isinstance(layer, Sequential) else 1
    return 1 if layer.built else 0


class _GraphReader:
    def __init__(self, model_name: str, layers: dict[str, Layer], keras3: bool):
        self.model_name = model_name
        self.layers = layers
        self.keras3 = keras3
        self.outputs: dict[str, list[list[KerasTensor]]] = {name: [] for name in layers}
        for name, layer in layers.items():
            if isinstance(layer, InputLayer):
                self.outputs[name].append([layer.output])

    def tensor(self, ref, where: str, *, node_offset: int = 0) -> KerasTensor:
        if not (isinstance(ref, (list, tuple)) and len(ref) >= 3 and isinstance(ref[0], str)):
            raise GraphError(f"Model '{self.model_name}': {where} has a malformed tensor reference {ref!r} "
                             f"(expected [layer_name, node_index, tensor_index]).")
        name, node_index, tensor_index = ref[0], ref[1], ref[2]
        if name not in self.layers:
            raise GraphError(f"Model '{self.model_name}': {where} refers to layer '{name}', which is not in the "
                             f"model's layers.")
        if not isinstance(node_index, int) or not isinstance(tensor_index, int) or isinstance(node_index, bool):
            raise GraphError(f"Model '{self.model_name}': {where} has a malformed tensor reference {ref!r}.")
        node_index -= node_offset
        made = self.outputs[name]
        if node_index < 0:
            raise GraphError(f"Model '{self.model_name}': {where} refers to node {ref[1]} of '{name}', which does "
                             f"not exist.")
        if node_index >= len(made):
            raise _NotYet(name)
        outs = made[node_index]
        if not 0 <= tensor_index < len(outs):
            raise GraphError(f"Model '{self.model_name}': {where} refers to output {tensor_index} of '{name}', "
                             f"which has {len(outs)} output(s).")
        return outs[tensor_index]

    def offset(self, name, keras3: bool = False) -> int:
        """Keras 3 node arguments count a layer's calls in this model from 0; tf.keras 2 references and Keras 3's
        input/output references count a nested model's construction as a call (see `_ref_offset`)."""
        layer = self.layers.get(name)
        return _ref_offset(layer, keras3) if layer is not None else 0

    def _revive_keras3(self, x, where: str):
        if _is_keras_tensor_ref(x):
            hist = (x.get("config") or {}).get("keras_history")
            return self.tensor(hist, where)
        if isinstance(x, list):
            return [self._revive_keras3(v, where) for v in x]
        if isinstance(x, dict):
            return {k: self._revive_keras3(v, where) for k, v in x.items()}
        return x

    def op_call(self, entry: dict, node):
        """(OpLayer, its inputs) for the node of an op entry (Keras 3 operation, tf.keras 2 TFOpLambda)."""
        from core.models import op_nodes

        where = f"Model '{self.model_name}'"
        if isinstance(node, dict):  # Keras 3
            args = self._revive_keras3(list(node.get("args", [])), where)
            kwargs = self._revive_keras3(dict(node.get("kwargs") or {}), where)
            return op_nodes.layer_from_keras3(entry, args, kwargs, where)
        try:
            first_refs, kwargs = op_nodes.tf_keras2_node_parts(node)
        except GraphError as exc:
            raise GraphError(f"{where}: op node '{entry.get('name')}' has a {exc}.") from None

        def revive_first(ref):
            if isinstance(ref, list) and ref and ref[0] == op_nodes.TF_CONSTANT:
                return ref[2]
            if isinstance(ref, list) and len(ref) == 3 and isinstance(ref[0], str):
                return self.tensor(ref, where, node_offset=self.offset(ref[0]))
            return [revive_first(r) for r in ref]

        if not isinstance(kwargs, dict):
            raise GraphError(f"{where}: op node '{entry.get('name')}' has call arguments {kwargs!r} that are not a "
                             f"dict.")
        return op_nodes.layer_from_tf_keras2(entry, revive_first(first_refs), self._keras2_kwargs(kwargs, where),
                                             where)

    def node_call(self, layer: Layer, node) -> tuple[tuple, dict]:
        where = f"an inbound node of layer '{layer.name}'"
        if isinstance(node, dict):  # Keras 3
            args = self._revive_keras3(list(node.get("args", [])), where)
            kwargs = self._revive_keras3(dict(node.get("kwargs") or {}), where)
        elif isinstance(node, list):  # tf.keras 2: [[name, node_index, tensor_index, kwargs], ...]
            tensors, kwargs = [], {}
            for item in node:
                if not isinstance(item, (list, tuple)) or len(item) not in (3, 4):
                    raise GraphError(f"Model '{self.model_name}': {where} has a malformed entry {item!r}.")
                tensors.append(self.tensor(item, where, node_offset=self.offset(item[0])))
                if len(item) == 4 and item[3]:
                    if not isinstance(item[3], dict):
                        raise GraphError(f"Model '{self.model_name}': {where} has call arguments {item[3]!r} "
                                         f"that are not a dict.")
                    kwargs.update(self._keras2_kwargs(item[3], where))
            params = _call_params(layer)
            if len(tensors) > 1 and "initial_state" in params and "initial_state" not in kwargs:
                # tf.keras 2 records `rnn(x, initial_state=[h, c])` as one list of inputs.
                args = [tensors[0]]
                kwargs["initial_state"] = tensors[1:]
            else:
                args = [tensors[0] if len(tensors) == 1 else tensors]
        else:
            raise GraphError(f"Model '{self.model_name}': {where} is neither a Keras 2 nor a Keras 3 node: "
                             f"{node!r}.")
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise GraphError(f"Model '{self.model_name}': {where} has malformed args/kwargs.")
        if not args or not any(isinstance(t, KerasTensor) for t in flatten([args, kwargs])):
            raise GraphError(f"Model '{self.model_name}': {where} has no input tensors.")
        # Keras replays with the caller's training flag; a recorded `training`/`mask=None` would pin it.
        kwargs.pop("training", None)
        if "mask" in kwargs and kwargs["mask"] is None:
            del kwargs["mask"]
        return tuple(args), kwargs

    def _keras2_kwargs(self, kwargs: dict, where: str) -> dict:
        def revive(x):
            if isinstance(x, list) and len(x) == 3 and isinstance(x[0], str) and x[0] in self.layers \
                    and isinstance(x[1], int) and isinstance(x[2], int):
                return self.tensor(x, where, node_offset=self.offset(x[0]))
            if isinstance(x, list):
                return [revive(v) for v in x]
            if isinstance(x, dict):
                return {k: revive(v) for k, v in x.items()}
            return x

        return {k: revive(v) for k, v in kwargs.items()}


class _NotYet(Exception):
    """A node refers to a layer call that has not been replayed yet."""


class _PendingOp:
    """An op entry whose layer is made when its node is replayed: its arguments are in the node."""

    def __init__(self, entry: dict):
        self.entry = entry


def _call_params(layer: Layer) -> set[str]:
    try:
        return set(inspect.signature(layer.call).parameters)
    except (TypeError, ValueError):
        return set()




def _call_layer(model_name: str, layer: Layer, args, kwargs):
    try:
        return layer(*args, **kwargs)
    except NetweaverError:
        raise
    except _CALL_ERRORS as exc:
        raise GraphError(f"Model '{model_name}': calling layer '{layer.name}' ({type(layer).__name__}) on the inputs "
                         f"its config names failed: {type(exc).__name__}: {exc}") from exc


def functional_from_config(config: dict, custom_objects=None, cls=None):
    """Rebuild a Functional model: make every layer, then replay the layer calls until all nodes are done."""
    from core.models import op_nodes
    from core.models.functional import Functional

    cls = cls or Functional
    if not isinstance(config, dict):
        raise ConfigError(f"A Functional config must be a dict, got {type(config).__name__}.")
    model_name = config.get("name") or "model"
    missing = [k for k in ("layers", "input_layers", "output_layers") if k not in config]
    if missing:
        raise ConfigError(f"Functional config of '{model_name}' lacks {missing}.")
    entries = config["layers"]
    if not isinstance(entries, list):
        raise ConfigError(f"Functional config of '{model_name}': 'layers' must be a list.")
    keras3 = any(isinstance(n, dict) for e in entries if isinstance(e, dict)
                 for n in (e.get("inbound_nodes") or []))
    layers: dict[str, Layer] = {}
    order: list[str] = []
    pending: dict[str, list] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise ConfigError(f"Functional config of '{model_name}': each layer must be a dict, got "
                              f"{type(entry).__name__}.")
        if op_nodes.is_op_entry(entry):
            layer = _PendingOp(entry)
            name = entry.get("name") or (entry.get("config") or {}).get("name")
            if not isinstance(entry.get("inbound_nodes"), list) or len(entry["inbound_nodes"]) != 1:
                raise GraphError(f"Model '{model_name}': op node '{name}' ({entry.get('class_name')}) must have "
                                 f"exactly one inbound node (one call), as Keras writes it.")
        else:
            layer_entry = {k: v for k, v in entry.items() if k not in ("inbound_nodes",)}
            layer = deserialize_layer(layer_entry, custom_objects=custom_objects)
            name = entry.get("name") or layer.name
        if name in layers:
            raise GraphError(f"Model '{model_name}': layer name '{name}' appears more than once.")
        layers[name] = layer
        order.append(name)
        nodes = entry.get("inbound_nodes") or []
        if not isinstance(nodes, list):
            raise GraphError(f"Model '{model_name}': inbound_nodes of '{name}' must be a list.")
        pending[name] = list(nodes)

    reader = _GraphReader(model_name, layers, keras3)
    while any(pending.values()):
        progressed = False
        for name in order:
            queue = pending[name]
            while queue:
                try:
                    if isinstance(layers[name], _PendingOp):
                        layers[name], inputs = reader.op_call(layers[name].entry, queue[0])
                        args, kwargs = (inputs,), {}
                    else:
                        args, kwargs = reader.node_call(layers[name], queue[0])
                except _NotYet:
                    break
                out = _call_layer(model_name, layers[name], args, kwargs)
                reader.outputs[name].append([t for t in flatten(out) if isinstance(t, KerasTensor)])
                queue.pop(0)
                progressed = True
        if not progressed:
            stuck = {n: q for n, q in pending.items() if q}
            raise GraphError(f"Model '{model_name}': the layer graph has a cycle or refers to calls that never "
                             f"happen; these layers' inputs can never be computed: {sorted(stuck)}.")

    def tensors(structure, what):
        if isinstance(structure, (list, tuple)) and len(structure) >= 3 and isinstance(structure[0], str):
            name = structure[0]
            try:
                return reader.tensor(structure, what, node_offset=reader.offset(name, keras3))
            except _NotYet:
                raise GraphError(f"Model '{model_name}': {what} refers to call {structure[1]} of '{name}', "
                                 f"which the graph never makes.") from None
        if isinstance(structure, dict):
            return {k: tensors(v, what) for k, v in structure.items()}
        if isinstance(structure, (list, tuple)):
            return [tensors(v, what) for v in structure]
        raise GraphError(f"Model '{model_name}': {what} has a malformed reference {structure!r}.")

    inputs = tensors(config["input_layers"], "input_layers")
    outputs = tensors(config["output_layers"], "output_layers")
    if not keras3:  # tf.keras 2 always writes lists; one tensor means a single-input (output) model
        if isinstance(inputs, list) and len(inputs) == 1:
            inputs = inputs[0]
        if isinstance(outputs, list) and len(outputs) == 1:
            outputs = outputs[0]
    kwargs = {}
    if "trainable" in config and config["trainable"] is not None:
        kwargs["trainable"] = bool(config["trainable"])
    return cls(inputs=inputs, outputs=outputs, name=model_name, **kwargs)


def sequential_from_config(config, custom_objects=None, cls=None):
    from core.models.sequential import Sequential

    cls = cls or Sequential
    if isinstance(config, list):  # very old tf.keras: the config is the list of layers
        config = {"layers": config}
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise ConfigError("A Sequential config must be a dict with a 'layers' list.")
    layers = [deserialize_layer(c, custom_objects=custom_objects) for c in config["layers"]]
    kwargs = {}
    if config.get("name"):
        kwargs["name"] = config["name"]
    if config.get("trainable") is not None:
        kwargs["trainable"] = bool(config["trainable"])
    try:
        model = cls(layers=layers, **kwargs)
        build_shape = config.get("build_input_shape")
        if not model.built and isinstance(build_shape, (list, tuple)) and build_shape \
                and all(d is None or isinstance(d, int) for d in build_shape):
            model.build(tuple(build_shape))
    except NetweaverError:
        raise
    except _CALL_ERRORS as exc:
        raise GraphError(f"Sequential '{kwargs.get('name', '?')}': stacking its layers failed: "
                         f"{type(exc).__name__}: {exc}") from exc
    return model


__all__ = ["serialize_layer", "deserialize_layer", "functional_config", "functional_from_config",
           "sequential_config", "sequential_from_config", "clean_layer_config"]

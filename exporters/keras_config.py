"""Model configs as JSON and YAML, for Keras 3 or tf.keras 2.

The engine serializes to Keras 3's form (`core.models.model_config`). `to_config(model, "tf_keras2")` rewrites that
into what tf.keras 2 writes and reads: InputLayer `batch_input_shape`, nested-list `inbound_nodes`
(`[[["input_1", 0, 0, {}]]]`, an RNN's `initial_state` tensors listed after its input), references to nested models
counted from 1, `input_layers`/`output_layers` always lists of triples, `keras_version`/`backend` beside the
config. Neither Keras reads the other's JSON reliably, so the target picks the dialect.

YAML carries the same dictionary (Keras dropped `to_yaml`): written with `yaml.safe_dump`, read with `yaml.safe_load`,
so a file with Python-object tags is refused instead of executed.
"""

from __future__ import annotations

import copy
import json
import warnings

import numpy as np

from core.errors import ConfigError, FileFormatError, KerasGenerationWarning
from exporters.keras_generation import config_generation
from exporters.weights_io import KERAS_VERSIONS, check_target

_MODEL_CLASSES = {"Functional", "Sequential", "Model"}
# Keras 3 layers whose constructors take no **kwargs, so a config key they do not list (even `trainable`) is an
# error there; found by comparing every class in `layer_registry()` with Keras 3.15's signatures.
_KERAS3_CLOSED_SIGNATURES = {
    "SpatialDropout1D": {"name", "dtype", "rate", "seed"},
    "SpatialDropout2D": {"name", "dtype", "rate", "seed", "data_format"},
    "SpatialDropout3D": {"name", "dtype", "rate", "seed", "data_format"},
}

_ANY = object()
# Keras 3 arguments that tf.keras 2 (2.21) rejects, found by constructing its layers with each key: (classes or None
# for every class, key, the values that mean "nothing to express" and are dropped). Other values cannot be written
# for tf.keras 2 and raise.
_TF_KERAS2_UNKNOWN_KEYS = [
    (None, "quantization_config", (None,)),
    (None, "lora_rank", (None,)),
    (None, "lora_alpha", (None,)),
    (None, "use_cudnn", _ANY),  # a speed choice, not a result
    ({"SimpleRNN"}, "seed", _ANY),  # only seeds recurrent dropout, which inference does not run
    ({"ZeroPadding1D", "Cropping1D", "UpSampling1D"}, "data_format", ("channels_last",)),
    ({"LayerNormalization"}, "rms_scaling", (False,)),
    ({"Attention", "AdditiveAttention", "MultiHeadAttention"}, "seed", _ANY),  # only seeds dropout
    ({"MultiHeadAttention"}, "use_gate", (False,)),
    ({"MultiHeadAttention"}, "sliding_window", (None,)),
    ({"IntegerLookup", "StringLookup"}, "oov_method", ("floormod",)),
    ({"IntegerLookup", "StringLookup"}, "salt", (None,)),
]


def _drop_for_tf_keras2(class_name: str, cfg: dict) -> None:
    for classes, key, droppable in _TF_KERAS2_UNKNOWN_KEYS:
        if key not in cfg or (classes is not None and class_name not in classes):
            continue
        if droppable is not _ANY and cfg[key] not in droppable:
            raise ConfigError(f"Layer '{cfg.get('name')}' ({class_name}) has {key}={cfg[key]!r}, which tf.keras 2 "
                              f"cannot express; save for target 'keras3' instead.")
        del cfg[key]


def _plain(x):
    """JSON-safe values (numpy scalars and arrays, tuples) so both json and yaml.safe_dump take the config."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


def to_config(model, target: str = "keras3") -> dict:
    """The model's `{class_name, config, ...}` dictionary as the target Keras writes it."""
    from core.models.model_config import serialize_layer

    check_target(target)
    config = _plain(serialize_layer(model))
    _name_hard_sigmoid_for(config, target)
    if target == "keras3":
        return _to_keras3(config)
    out = _to_tf_keras2(config)
    out["keras_version"] = KERAS_VERSIONS["tf_keras2"]
    out["backend"] = "tensorflow"
    return out


# -- the one activation whose meaning changed between the generations ------------------------------------------------
_ACTIVATION_KEYS = ("activation", "recurrent_activation")


def _name_hard_sigmoid_for(entry, target: str, layer: str = "") -> None:
    """'hard_sigmoid' is clip(0.2x + 0.5) in tf.keras 2 and relu6(x + 3) / 6 in Keras 3. Write each function under
    the target's name for it, and refuse the one the target cannot name (its file would predict otherwise)."""
    if isinstance(entry, list):
        for e in entry:
            _name_hard_sigmoid_for(e, target, layer)
        return
    if not isinstance(entry, dict):
        return
    cfg = entry.get("config")
    if isinstance(cfg, dict) and isinstance(cfg.get("name"), str):
        layer = cfg["name"]
    for key in _ACTIVATION_KEYS:
        value = entry.get(key)
        if value == "hard_sigmoid_tf_keras2":
            if target == "keras3":
                raise FileFormatError(f"Layer '{layer}' uses tf.keras 2's hard_sigmoid (0.2x + 0.5), which Keras 3 "
                                      f"has under no name; write this model for target 'tf_keras2'.")
            entry[key] = "hard_sigmoid"
        elif value == "hard_sigmoid" and target == "tf_keras2":
            raise FileFormatError(f"Layer '{layer}' uses Keras 3's hard_sigmoid (x / 6 + 0.5), which tf.keras 2 has "
                                  f"under no name; write this model for target 'keras3'.")
    for value in entry.values():
        if isinstance(value, (dict, list)):
            _name_hard_sigmoid_for(value, target, layer)


def _layers_using(entry, value: str, layer: str = "") -> list[str]:
    """Names of the layers in a config whose activation or recurrent_activation is `value`."""
    found = []
    if isinstance(entry, list):
        for e in entry:
            found += _layers_using(e, value, layer)
    elif isinstance(entry, dict):
        if isinstance(entry.get("name"), str) and any(k in entry for k in _ACTIVATION_KEYS):
            layer = entry["name"]
        if any(entry.get(k) == value for k in _ACTIVATION_KEYS):
            found.append(layer or "?")
        for v in entry.values():
            if isinstance(v, (dict, list)):
                found += _layers_using(v, value, layer)
    return list(dict.fromkeys(found))


def _fill_keras2_defaults(entry) -> None:
    """Arguments a Keras 2 config may lack whose Keras 3 default changes the numbers: a GRU written before
    `reset_after` existed (Keras 2.0 to 2.1.2) applied the reset gate before the recurrent product."""
    if isinstance(entry, list):
        for e in entry:
            _fill_keras2_defaults(e)
        return
    if not isinstance(entry, dict):
        return
    cfg = entry.get("config")
    if entry.get("class_name") in ("GRU", "CuDNNGRU") and isinstance(cfg, dict) and "reset_after" not in cfg:
        cfg["reset_after"] = False
    for v in entry.values():
        if isinstance(v, (dict, list)):
            _fill_keras2_defaults(v)


# -- Keras 3 -------------------------------------------------------------------------------------------------------
def _to_keras3(entry: dict) -> dict:
    """Our configs are Keras 3's already, except that Keras 3 layers take no `batch_input_shape` (the InputLayer
    that Sequential and Functional configs carry holds the input shape)."""
    entry = _keras_call_of_attention(dict(entry))
    cfg = entry.get("config")
    if entry.get("class_name") == "ThresholdedReLU" and isinstance(cfg, dict):
        # Keras 3 dropped the class; its ReLU(threshold=theta) computes the same `x if x > theta else 0`.
        entry["class_name"] = "ReLU"
        cfg = {k: v for k, v in cfg.items() if k != "theta"}
        cfg.update({"max_value": None, "negative_slope": 0.0, "threshold": entry["config"].get("theta", 1.0)})
    if isinstance(cfg, dict):
        cfg = dict(cfg)
        if entry.get("class_name") == "MultiHeadAttention":  # tf.keras 2's built shapes; Keras 3 rejects them
            for key in ("query_shape", "value_shape", "key_shape"):
                cfg.pop(key, None)
            shapes = (entry.get("build_config") or {}).get("input_shape")
            if isinstance(shapes, list) and shapes and isinstance(shapes[0], list):
                # Keras 3 builds it from build(query_shape, value_shape, key_shape=None), by name.
                entry["build_config"] = {"shapes_dict": dict(zip(("query_shape", "value_shape", "key_shape"),
                                                                 shapes))}
        if entry.get("class_name") != "InputLayer":
            cfg.pop("batch_input_shape", None)
        allowed = _KERAS3_CLOSED_SIGNATURES.get(entry.get("class_name"))
        if allowed is not None:
            cfg = {k: v for k, v in cfg.items() if k in allowed}
        if isinstance(cfg.get("layers"), list):
            cfg["layers"] = [_to_keras3(e) if isinstance(e, dict) else e for e in cfg["layers"]]
        for key in ("layer", "backward_layer", "forward_layer", "cell"):
            if isinstance(cfg.get(key), dict) and "class_name" in cfg[key]:
                cfg[key] = _to_keras3(cfg[key])
        entry["config"] = cfg
    return entry


def _keras_call_of_attention(entry: dict) -> dict:
    """MultiHeadAttention records its call as one list [query, value(, key)] (the editor wires it like the other
    attention layers); both Kerases want `layer(query, value, key=key)`: Keras 3 as args, tf.keras 2 as kwargs."""
    if entry.get("class_name") != "MultiHeadAttention" or not isinstance(entry.get("inbound_nodes"), list):
        return entry
    nodes = []
    for node in entry["inbound_nodes"]:
        args = node.get("args") if isinstance(node, dict) else None
        if isinstance(args, list) and len(args) == 1 and isinstance(args[0], list) and 2 <= len(args[0]) <= 3:
            kwargs = dict(node.get("kwargs") or {})
            if len(args[0]) == 3:
                kwargs["key"] = args[0][2]
            node = {"args": list(args[0][:2]), "kwargs": kwargs}
        nodes.append(node)
    return {**entry, "inbound_nodes": nodes}


# -- tf.keras 2 -----------------------------------------------------------------------------------------------------
def _to_tf_keras2(entry: dict) -> dict:
    entry = copy.deepcopy(entry)
    cls = entry.get("class_name")
    cfg = entry.get("config")
    if cls in _MODEL_CLASSES:
        entry.pop("module", None)
        entry["registered_name"] = None
    if cls == "InputLayer" and isinstance(cfg, dict) and "batch_shape" in cfg:
        cfg["batch_input_shape"] = cfg.pop("batch_shape")
    if cls == "LeakyReLU" and isinstance(cfg, dict) and "negative_slope" in cfg:
        cfg["alpha"] = cfg.pop("negative_slope")  # tf.keras 2's name for the slope
    if isinstance(cfg, dict):
        _drop_for_tf_keras2(cls, cfg)
        if isinstance(cfg.get("dtype"), dict):
            cfg["dtype"] = (cfg["dtype"].get("config") or {}).get("name", "float32")
        if cls == "TextVectorization":
            cfg["dtype"] = "string"  # tf.keras 2 refuses any other (its dtype is the input's)
        if cls in ("StringLookup", "IntegerLookup") and cfg.get("output_mode") == "int":
            cfg["dtype"] = "int64"  # tf.keras 2's dtype is the output's, and int outputs refuse a float one
        for key in ("layer", "backward_layer", "forward_layer", "cell"):
            if isinstance(cfg.get(key), dict) and "class_name" in cfg[key]:
                cfg[key] = _to_tf_keras2(cfg[key])
        if cls == "Functional" or (cls not in ("Sequential",) and "input_layers" in cfg):
            _functional_to_tf_keras2(cfg)
        elif isinstance(cfg.get("layers"), list):
            cfg["layers"] = [_to_tf_keras2(e) for e in cfg["layers"]]
    return entry


def _functional_to_tf_keras2(cfg: dict) -> None:
    from core.models import op_nodes

    classes = {e.get("name"): e.get("class_name") for e in cfg["layers"]}

    def node_offset(name) -> int:  # tf.keras 2 counts a nested model's construction as its node 0
        return 1 if classes.get(name) in _MODEL_CLASSES else 0

    def ref(history) -> list:
        name, node_index, tensor_index = history[0], history[1], history[2]
        return [name, node_index + node_offset(name), tensor_index]

    def tensor_refs(x) -> list:
        if isinstance(x, dict) and x.get("class_name") == "__keras_tensor__":
            return [ref(x["config"]["keras_history"])]
        if isinstance(x, list):
            return [r for v in x for r in tensor_refs(v)]
        return []

    def kwargs_value(x):
        if isinstance(x, dict) and x.get("class_name") == "__keras_tensor__":
            return ref(x["config"]["keras_history"])
        if isinstance(x, list):
            return [kwargs_value(v) for v in x]
        if isinstance(x, dict):
            return {k: kwargs_value(v) for k, v in x.items()}
        return x

    layers = []
    for e in cfg["layers"]:
        if op_nodes.is_op_entry(e):  # a Keras 3 operation: tf.keras 2's TFOpLambda / SlicingOpLambda
            layers.append(op_nodes.keras3_to_tf_keras2(e, lambda t: ref(t["config"]["keras_history"])))
            continue
        nodes = []
        e = _keras_call_of_attention(e)
        for node in e.get("inbound_nodes", []):
            if not isinstance(node, dict):
                nodes.append(node)
                continue
            args = node.get("args", [])
            kwargs = dict(node.get("kwargs") or {})
            if e.get("class_name") == "MultiHeadAttention" and len(args) >= 2:
                args, kwargs["value"] = args[:1], args[1]  # tf.keras 2 records the value as a call argument
            refs = tensor_refs(args)
            # tf.keras 2 lists an RNN's initial state as further inputs of the same call.
            for key in ("initial_state", "constants"):
                if key in kwargs:
                    refs.extend(tensor_refs(kwargs.pop(key)))
            kwargs = {k: kwargs_value(v) for k, v in kwargs.items() if not (k == "mask" and v is None)}
            # tf.keras 2 writes the call arguments beside every input and reads them from the last one.
            nodes.append([r + [kwargs] for r in refs])
        converted = _to_tf_keras2({k: v for k, v in e.items() if k != "inbound_nodes"})
        converted["inbound_nodes"] = nodes
        layers.append(converted)
    cfg["layers"] = layers

    def io_refs(structure, sequential_offset):
        if isinstance(structure, list) and len(structure) >= 3 and isinstance(structure[0], str):
            name, node_index, tensor_index = structure[:3]
            # Keras 3's form already counts a nested Functional from 1 here, but not a nested Sequential.
            extra = 1 if sequential_offset and classes.get(name) == "Sequential" else 0
            return [[name, node_index + extra, tensor_index]]
        if isinstance(structure, dict):
            return [r for v in structure.values() for r in io_refs(v, sequential_offset)]
        return [r for v in structure for r in io_refs(v, sequential_offset)]

    cfg["input_layers"] = io_refs(cfg["input_layers"], True)
    cfg["output_layers"] = io_refs(cfg["output_layers"], True)


# -- JSON and YAML -------------------------------------------------------------------------------------------------
def to_json(model, target: str = "keras3", **json_kwargs) -> str:
    return json.dumps(to_config(model, target), **json_kwargs)


def to_yaml(model, target: str = "keras3", **yaml_kwargs) -> str:
    import yaml

    yaml_kwargs.setdefault("sort_keys", False)
    return yaml.safe_dump(to_config(model, target), **yaml_kwargs)


def model_from_dict(config, custom_objects=None, safe_mode: bool = True, source: str = "config",
                    keras_version: str | None = None):
    """A model from a parsed `{class_name, config}` dictionary of either Keras generation. `keras_version` is what the
    file around the config says wrote it (an .h5 attribute, a .keras archive's metadata); the model remembers the
    generation, and saving it writes for that generation unless the caller names a target."""
    from core.models import Model
    from core.models.model_config import deserialize_layer

    if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
        keys = sorted(config)[:8] if isinstance(config, dict) else type(config).__name__
        raise FileFormatError(f"{source} is not a Keras model config: expected an object with 'class_name' and "
                              f"'config', got {keys}.")
    from core.activations import tf_keras2_names

    generation = config_generation(config, keras_version, source)
    if generation.evidence is None:
        ambiguous = _layers_using(config, "hard_sigmoid")
        if ambiguous:
            warnings.warn(f"{source}: nothing in it says which Keras wrote it, and layer(s) "
                          f"{', '.join(repr(n) for n in ambiguous)} use 'hard_sigmoid', which is x / 6 + 0.5 in "
                          f"Keras 3 and 0.2x + 0.5 in Keras 2. Read as Keras 3's; if Keras 2 wrote it, pass "
                          f"keras_version='2' (the predictions differ).", KerasGenerationWarning, stacklevel=3)
    if generation.name == "tf_keras2":
        config = copy.deepcopy(config)
        _fill_keras2_defaults(config)
    with tf_keras2_names(generation.name == "tf_keras2"):
        model = deserialize_layer(config, custom_objects=custom_objects, safe_mode=safe_mode)
    if not isinstance(model, Model):
        raise FileFormatError(f"{source} describes a single {config['class_name']} layer, not a model.")
    model.keras_generation = generation.name
    return model


def model_from_json(json_string, custom_objects=None, safe_mode: bool = True):
    if isinstance(json_string, bytes):
        json_string = json_string.decode("utf8", errors="replace")
    if not isinstance(json_string, str):
        raise FileFormatError(f"model_from_json needs a JSON string, got {type(json_string).__name__}.")
    try:
        config = json.loads(json_string)
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"Not valid JSON: {exc}") from exc
    return model_from_dict(config, custom_objects, safe_mode, source="The JSON")


def model_from_yaml(yaml_string, custom_objects=None, safe_mode: bool = True):
    import yaml

    if isinstance(yaml_string, bytes):
        yaml_string = yaml_string.decode("utf8", errors="replace")
    try:
        config = yaml.safe_load(yaml_string)
    except yaml.constructor.ConstructorError as exc:
        raise FileFormatError(f"The YAML holds a tag that Netweaver will not construct (Python objects are never "
                              f"loaded from YAML): {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise FileFormatError(f"Not valid YAML: {exc}") from exc
    return model_from_dict(config, custom_objects, safe_mode, source="The YAML")

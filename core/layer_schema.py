"""Each layer class's config schema, read from its `__init__` signature, defaults and docstring.

The editor's inspector and palette are generated from this, so a layer added to `core.layers` appears in the app with
a working inspector and no GUI code. A field's kind comes from its name and default (`*_initializer` is an
initializer, a bool default is a check box, `rate` is a float in [0, 1], ...); the few required arguments without a
default get a palette default so a freshly dropped layer is valid.
"""

from __future__ import annotations

import functools
import inspect
import re
from dataclasses import dataclass, field, replace
from typing import Any

from core import activations, constraints, initializers, regularizers

# Keyword arguments every layer takes from `Layer.__init__`; edited elsewhere (name by renaming) or meaningless in a
# drawn graph (input_shape: the graph's InputLayers give shapes).
_HIDDEN = {"name", "dtype", "weights", "input_shape", "batch_input_shape", "batch_size", "input_dim_", "kwargs", "self",
           "input_length", "autocast", "lora_rank", "lora_alpha", "seed_generator", "ragged", "sparse",
           "input_tensor", "optional", "batch_shape", "module", "registered_name",
           # accepted for compatibility with Keras files, but with nothing to choose here
           "time_major", "use_cudnn", "implementation", "unroll", "stateful",
           # tf.keras 2's record of MultiHeadAttention's built shapes, a kernel choice (flash_attention) and options
           # of which only the "off" value is supported
           "query_shape", "key_shape", "value_shape", "flash_attention", "softmax_robust_masking",
           "robust_masking", "causal", "gptq_unpacked_column_size", "quantization_config",
           # a lookup's vocabulary size follows from its vocabulary
           "vocabulary_size"}

# Values for required arguments (no default in `__init__`) so a layer dropped from the palette builds at once.
PALETTE_DEFAULTS: dict[str, Any] = {
    "units": 32, "filters": 32, "kernel_size": 3, "rate": 0.5, "activation": "relu", "input_dim": 1000,
    "output_dim": 64, "n": 4, "target_shape": [-1], "dims": [2, 1], "shape": [32], "axes": -1, "stddev": 0.1,
    "function": None, "size": 2, "pool_size": 2, "cropping": 1, "padding": 1,
    "layer": {"class_name": "LSTM", "config": {"units": 32}},
    "cell": {"class_name": "LSTMCell", "config": {"units": 32}},
    # attention: two heads of 16; an EinsumDense that acts as a Dense on the last axis of inputs of any rank
    "num_heads": 2, "key_dim": 16, "equation": "...b,bc->...c", "output_shape": [32],
    "num_bins": 8,  # Hashing
}
# Layers whose Keras defaults leave nothing to compute with (a choice between two optional arguments): what a
# freshly dropped one starts with.
PALETTE_CONFIGS: dict[str, dict] = {"CategoryEncoding": {"num_tokens": 10}, "Discretization": {"num_bins": 4}}

CHOICES: dict[str, list] = {
    "padding": ["valid", "same", "causal"],
    "data_format": ["channels_last", "channels_first"],
    "merge_mode": ["concat", "sum", "mul", "ave", None],
    "interpolation": ["nearest", "bilinear"],
    "implementation": [1, 2],
    "dtype": ["float32", "float64", "int32", "int64", "bool", "string"],
    "score_mode": ["dot", "concat"],
    "output_mode": ["int", "one_hot", "multi_hot", "count", "tf_idf"],
    "vocabulary_dtype": ["int64", "int32"],
    "standardize": ["lower_and_strip_punctuation", "lower", "strip_punctuation", None],
    "split": ["whitespace", None],
}
# Where one layer allows fewer choices than the shared list (TextVectorization has no one_hot output).
_CLASS_CHOICES: dict[str, dict[str, list]] = {"TextVectorization": {"output_mode": ["int", "multi_hot", "count",
                                                                                    "tf_idf"]}}
_UNIT_INTERVAL = {"rate", "dropout", "recurrent_dropout", "momentum"}
_POSITIVE_INT = {"units", "filters", "input_dim", "output_dim", "n", "depth_multiplier", "groups", "num_heads",
                 "key_dim", "num_tokens"}

# Palette groups by the module a layer lives in; anything from elsewhere (user code) is Custom.
GROUP_ORDER = ["Inputs", "Preprocessing", "Core", "Activations", "Attention", "Recurrent", "Convolution", "Pooling",
               "Merging", "Normalization", "Regularization", "Reshaping", "Wrappers", "Custom"]
_MODULE_GROUPS = {"core.layers.base": "Inputs", "core.layers.core": "Core", "core.layers.recurrent": "Recurrent",
                  "core.layers.convolutional": "Convolution", "core.layers.pooling": "Pooling",
                  "core.layers.merging": "Merging", "core.layers.normalization": "Normalization",
                  "core.layers.regularization": "Regularization", "core.layers.reshaping": "Reshaping",
                  "core.layers.wrappers": "Wrappers", "core.layers.activation": "Activations",
                  "core.layers.attention": "Attention", "core.layers.rnn_cells": "Recurrent",
                  "core.layers.preprocessing": "Preprocessing", "core.layers.text_preprocessing": "Preprocessing"}
_GROUP_OVERRIDES = {"Masking": "Inputs", "Embedding": "Core"}

# Keras's own words for arguments many layers share, for fields whose layer docstring does not describe them.
COMMON_DOCS = {
    "units": "Dimensionality of the output space (positive integer).",
    "activation": "Activation function applied to the output; none means linear (a(x) = x).",
    "use_bias": "Whether the layer adds a bias vector.",
    "kernel_initializer": "Initializer for the kernel weights matrix.",
    "bias_initializer": "Initializer for the bias vector.",
    "recurrent_initializer": "Initializer for the recurrent kernel weights matrix.",
    "kernel_regularizer": "Regularizer function applied to the kernel weights matrix.",
    "bias_regularizer": "Regularizer function applied to the bias vector.",
    "recurrent_regularizer": "Regularizer function applied to the recurrent kernel weights matrix.",
    "activity_regularizer": "Regularizer function applied to the output of the layer (its activation).",
    "kernel_constraint": "Constraint function applied to the kernel weights matrix.",
    "bias_constraint": "Constraint function applied to the bias vector.",
    "recurrent_constraint": "Constraint function applied to the recurrent kernel weights matrix.",
    "rate": "Fraction of the input units to drop, between 0 and 1.",
    "dropout": "Fraction of the units to drop for the linear transformation of the inputs (0 to 1).",
    "recurrent_dropout": "Fraction of the units to drop for the linear transformation of the recurrent state.",
    "return_sequences": "Whether to return the last output in the output sequence, or the full sequence.",
    "return_state": "Whether to return the last state in addition to the output.",
    "go_backwards": "If true, process the input sequence backwards and return the reversed sequence.",
    "stateful": "If true, the last state of each sample is used as the initial state of the next batch.",
    "unroll": "If true, the network is unrolled (faster for short sequences, more memory).",
    "filters": "Dimensionality of the output space (the number of filters in the convolution).",
    "kernel_size": "Length (or size) of the convolution window.",
    "strides": "Stride length of the window.",
    "padding": "'valid' means no padding; 'same' pads evenly so the output has the input's length; 'causal' "
               "pads only on the left (Conv1D).",
    "data_format": "channels_last: inputs are (batch, steps, channels); channels_first: (batch, channels, steps).",
    "dilation_rate": "Dilation rate of the convolution.",
    "pool_size": "Size of the pooling window.",
    "input_dim": "Size of the vocabulary, i.e. maximum integer index + 1.",
    "output_dim": "Dimension of the dense embedding.",
    "mask_zero": "Whether the input value 0 is a special padding value to be masked out.",
    "axis": "The axis the layer works along.",
    "epsilon": "Small float added to the variance to avoid dividing by zero.",
    "momentum": "Momentum for the moving average.",
    "merge_mode": "How the forward and backward outputs are combined; none returns them as a list.",
    "layer": "The wrapped layer (its class and its config).",
    "target_shape": "Target shape, without the batch axis.",
    "trainable": "Whether training updates this layer's weights.",
    "mask_value": "Time steps whose features all equal this value are masked (skipped).",
}

OP_CLASS = "OpLayer"  # a core.ops call on model tensors (Keras 3 op node, tf.keras 2 TFOpLambda)
MERGE_CLASSES = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot"}
_TWO_INPUT_MERGES = {"Subtract", "Dot"}
# Layers called on a list [query, value] or [query, value, key]: drawn like merges, with named ports.
ATTENTION_PORTS = {"Attention": ("query", "value", "key"), "AdditiveAttention": ("query", "value", "key"),
                   "MultiHeadAttention": ("query", "value", "key")}


@dataclass(frozen=True)
class FieldSpec:
    """One editable config entry. kind: int, float, bool, choice, str, shape, activation, initializer,
    regularizer, constraint, layer, or json (anything else, edited as a JSON literal)."""

    name: str
    kind: str
    default: Any = None
    required: bool = False
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    optional: bool = False  # None is a valid value (e.g. an unset regularizer)
    doc: str = ""


@dataclass(frozen=True)
class PortSpec:
    name: str
    kind: str  # 'tensor' or 'state'


@dataclass
class LayerSchema:
    class_name: str
    group: str
    doc: str
    fields: list[FieldSpec] = field(default_factory=list)

    def field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)


def _docstring_args(cls) -> dict[str, str]:
    """'name: text' entries of the Args sections of the class and `__init__` docstrings (Keras's style)."""
    out: dict[str, str] = {}
    for text in (cls.__doc__ or "", cls.__init__.__doc__ or ""):
        current = None
        for line in inspect.cleandoc(text).splitlines():
            m = re.match(r"^\s{0,8}([A-Za-z_][A-Za-z0-9_]*)\s*(?:\([^)]*\))?:\s*(.*)$", line)
            if m and m.group(1) not in ("Args", "Arguments", "Returns", "Example", "Examples", "Input", "Output"):
                current = m.group(1)
                out[current] = m.group(2).strip()
            elif current and line.startswith(" ") and line.strip():
                out[current] += " " + line.strip()
            elif not line.strip():
                current = None
    return out


def _kind_of(name: str, default) -> tuple[str, dict]:
    extra: dict[str, Any] = {}
    if name == "activation" or name.endswith("_activation"):
        return "activation", {"choices": tuple(activations.names())}
    for suffix, kind, module in (("_initializer", "initializer", initializers),
                                 ("_regularizer", "regularizer", regularizers),
                                 ("_constraint", "constraint", constraints)):
        if name.endswith(suffix) or name == kind:
            return kind, {}
    if name == "layer":
        return "layer", {}
    if name in CHOICES:
        return "choice", {"choices": tuple(CHOICES[name])}
    if isinstance(default, bool):
        return "bool", {}
    if name in _UNIT_INTERVAL:
        return "float", {"minimum": 0.0, "maximum": 1.0}
    if isinstance(default, int) and not isinstance(default, bool) or name in _POSITIVE_INT:
        if name in _POSITIVE_INT:
            extra["minimum"] = 1
        return "int", extra
    if isinstance(default, float):
        return "float", extra
    if name in ("shape", "target_shape", "dims", "noise_shape"):
        return "shape", {}
    if isinstance(default, str):
        return "str", {}
    return "json", {}


@functools.lru_cache(maxsize=None)
def _schema_for_class(cls) -> LayerSchema:
    docs = _docstring_args(cls)
    fields: list[FieldSpec] = []
    if cls.__name__ == "InputLayer":
        fields = [FieldSpec("shape", "shape", [32], True, doc="Shape of one sample, without the batch axis; "
                            "null for an unknown size, e.g. [null, 100]."),
                  FieldSpec("dtype", "choice", "float32", choices=tuple(CHOICES["dtype"]),
                            doc="Element type of the input (int32 for token ids).")]
    else:
        own_init = None  # the class whose __init__ the user calls
        for klass in cls.__mro__:  # **kwargs forwarded to a base (Keras's RNN layers) still name real fields
            if "__init__" not in klass.__dict__ or klass.__name__ == "Layer":
                continue
            own_init = own_init or klass
            for p in inspect.signature(klass.__init__).parameters.values():
                if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or p.name in _HIDDEN:
                    continue
                if any(f.name == p.name for f in fields):
                    continue
                required = p.default is inspect.Parameter.empty
                if required and klass is not own_init:
                    continue  # a base's required argument is the subclass's business (e.g. RNN cell_kwargs)
                default = PALETTE_DEFAULTS.get(p.name) if required else p.default
                kind, extra = _kind_of(p.name, default)
                fields.append(FieldSpec(p.name, kind, default, required, optional=default is None,
                                        doc=docs.get(p.name) or COMMON_DOCS.get(p.name, ""), **extra))
            if not any(p.kind is p.VAR_KEYWORD for p in inspect.signature(klass.__init__).parameters.values()):
                break
        fields += _fields_from_config(cls, fields, docs)
        if not any(f.name == "trainable" for f in fields):
            fields.append(FieldSpec("trainable", "bool", True, doc="Whether training updates this layer's weights."))
    narrowed = _CLASS_CHOICES.get(cls.__name__, {})
    fields = [replace(f, choices=tuple(narrowed[f.name])) if f.name in narrowed else f for f in fields]
    group = _GROUP_OVERRIDES.get(cls.__name__) or _MODULE_GROUPS.get(cls.__module__, "Custom")
    doc = inspect.cleandoc(cls.__doc__ or "").split("\n\n")[0]
    return LayerSchema(cls.__name__, group, doc, fields)


def _fields_from_config(cls, fields: list[FieldSpec], docs: dict[str, str]) -> list[FieldSpec]:
    """Config keys a layer forwards to an inner object (an RNN's cell arguments) appear only in `get_config`."""
    required = {f.name: f.default for f in fields if f.required}
    try:
        config = cls(**required, name="probe").get_config()
    except Exception:
        return []
    known = {f.name for f in fields}
    extra = []
    for key, value in config.items():
        if key in known or key in _HIDDEN or key == "trainable":
            continue
        kind, more = _kind_of(key, value)
        extra.append(FieldSpec(key, kind, value, optional=value is None,
                               doc=docs.get(key) or COMMON_DOCS.get(key, ""), **more))
    return extra


_registry_cache: dict[str, type] = {}


def layer_class(class_name: str):
    """The layer class for a Keras class name (built-in, or registered as a custom object)."""
    cls = _registry_cache.get(class_name)
    if cls is not None:
        return cls
    from core.layers import layer_registry
    from core.serialization import lookup

    _registry_cache.update(layer_registry())  # re-read on a miss: layers added since the last call appear
    from core.models.op_layer import OpLayer

    _registry_cache.setdefault(OP_CLASS, OpLayer)  # op nodes of imported models; not in the palette
    cls = lookup(class_name, _registry_cache, "layer")
    return cls


def schema(class_name: str) -> LayerSchema:
    return _schema_for_class(layer_class(class_name))


def default_config(class_name: str, name: str | None = None) -> dict:
    """The config of a freshly created layer: palette defaults for required fields, Keras's for the rest."""
    s = schema(class_name)
    config = {f.name: f.default for f in s.fields if f.required}
    config.update(PALETTE_CONFIGS.get(class_name, {}))
    if class_name == "InputLayer":
        config = {"shape": [32], "dtype": "float32"}
    if name:
        config["name"] = name
    return config


def palette() -> dict[str, list[str]]:
    """Group -> class names, for every registered layer that can be created from its palette defaults."""
    from core.layers import Layer, layer_registry
    from core.models import Model

    from core.serialization import custom_objects

    groups: dict[str, list[str]] = {g: [] for g in GROUP_ORDER}
    candidates = dict(layer_registry())
    candidates.update({k: v for k, v in custom_objects().items() if ">" not in k})  # registered custom layers
    for cls_name, cls in sorted(candidates.items()):
        if not isinstance(cls, type) or not issubclass(cls, Layer) or issubclass(cls, Model) or cls is Layer:
            continue
        if cls_name.startswith("_") or cls_name.endswith(("Cell", "Cells")) or inspect.isabstract(cls):
            continue
        if not _creatable(cls_name):
            continue
        groups.setdefault(_schema_for_class(cls).group, []).append(cls_name)
    return {g: names for g, names in groups.items() if names}


@functools.lru_cache(maxsize=None)
def _creatable(class_name: str) -> bool:
    try:
        layer_class(class_name).from_config(default_config(class_name, name="probe"))
        return True
    except Exception:  # a base class or one needing arguments the palette cannot guess
        return False


# -- ports ----------------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def is_merge(class_name: str) -> bool:
    try:
        cls = layer_class(class_name)
    except Exception:
        return class_name in MERGE_CLASSES
    return class_name in MERGE_CLASSES or class_name in ATTENTION_PORTS or \
        any(k.__name__ in ("Merge", "_Merge") for k in cls.__mro__[1:])


def max_merge_inputs(class_name: str) -> int | None:
    if class_name in ATTENTION_PORTS:
        return len(ATTENTION_PORTS[class_name])
    return 2 if class_name in _TWO_INPUT_MERGES else None


def _has_return_state(class_name: str) -> bool:
    try:
        return schema(class_name).field("return_state") is not None
    except Exception:
        return False


def _recurrent_config(class_name: str, config: dict) -> tuple[str, dict] | None:
    """(class name, config with return_state filled in) of the recurrent layer inside a Bidirectional, or of this
    one, if it is recurrent (its schema has return_state)."""
    if class_name == "Bidirectional":
        inner = config.get("layer")
        if not isinstance(inner, dict):
            return None
        class_name, config = inner.get("class_name", ""), inner.get("config") or {}
    if "return_state" not in config and not _has_return_state(class_name):
        return None
    return class_name, {"return_state": False, **config}


def state_count(class_name: str, config: dict) -> int:
    """How many state tensors a recurrent layer returns (and takes as initial_state); 0 when not recurrent."""
    rec = _recurrent_config(class_name, config)
    if rec is None:
        return 0
    if rec[0] == "RNN":
        return _cell_state_count(rec[1].get("cell"))
    per_direction = 2 if "LSTM" in rec[0] else 1
    return per_direction * (2 if class_name == "Bidirectional" else 1)


def is_op(class_name: str) -> bool:
    return class_name == OP_CLASS


def kind_label(class_name: str, config: dict) -> str:
    """What a node is, as its drawing names it: the class, or for an op node the op it calls ('ops.not_equal')."""
    if is_op(class_name) and isinstance(config.get("function"), str):
        return f"ops.{config['function']}"
    return class_name


def _cell_state_count(cell) -> int:
    """How many states a generic RNN's cell has (a custom cell is asked through its state_size)."""
    if isinstance(cell, list):
        return sum(_cell_state_count(c) for c in cell)
    if not isinstance(cell, dict):
        return 1
    name, config = cell.get("class_name"), cell.get("config") or {}
    if name == "StackedRNNCells":
        return _cell_state_count(config.get("cells") or [])
    if name in ("LSTMCell", "GRUCell", "SimpleRNNCell"):
        return 2 if name == "LSTMCell" else 1
    try:
        from core.layers.base import flatten
        from core.models.model_config import deserialize_layer

        return len(flatten([deserialize_layer(cell).state_size]))
    except Exception:  # an unknown or broken cell: its layer's trace reports why
        return 1


NESTED_MODEL_CLASSES = ("Functional", "Sequential")


def is_nested_model(class_name: str) -> bool:
    """A model used as a layer (Keras calls it on tensors like any layer); the editor draws it as a group node."""
    return class_name in NESTED_MODEL_CLASSES


def takes_arguments(class_name: str) -> bool:
    """A node whose ports are the call's tensor arguments, in order (an op node, a nested model): one tensor goes
    in alone, several as a list."""
    return is_op(class_name) or is_nested_model(class_name)


def nested_port_names(config: dict, key: str) -> list[str]:
    """The inner layers a nested Functional model's `input_layers` / `output_layers` name, in order (Keras 3 writes
    one triple for a single tensor, a list of triples otherwise; tf.keras 2 always a list)."""
    refs = config.get(key)
    if isinstance(refs, dict):
        refs = list(refs.values())
    if not refs:
        return []
    if isinstance(refs[0], str):
        refs = [refs]
    return [str(r[0]) for r in refs if isinstance(r, (list, tuple)) and r]


def input_ports(class_name: str, config: dict, connected: int = 0) -> list[PortSpec]:
    """A merge layer grows one free port per wire; a recurrent layer takes optional initial_state inputs; an op node
    has one port per tensor argument, named after it; a nested model one per input of its inner graph."""
    if class_name == "InputLayer":
        return []
    if class_name == "Functional":
        return [PortSpec(n, "tensor") for n in nested_port_names(config, "input_layers") or ["input"]]
    if is_op(class_name):
        params = config.get("tensor_params") or ["x"]
        return [PortSpec(str(p), "tensor") for p in params]
    if is_merge(class_name):
        n = max(2, connected + 1)
        cap = max_merge_inputs(class_name)
        if cap:
            n = min(n, cap)
        names = ATTENTION_PORTS.get(class_name) or [f"input {i}" for i in range(n)]
        return [PortSpec(names[i], "tensor") for i in range(n)]
    ports = [PortSpec("input", "tensor")]
    n_states = state_count(class_name, config)
    ports += [PortSpec(f"initial_state {i}", "state") for i in range(n_states)]
    return ports


def output_ports(class_name: str, config: dict) -> list[PortSpec]:
    if class_name == "Functional":
        return [PortSpec(n, "tensor") for n in nested_port_names(config, "output_layers") or ["output"]]
    ports = [PortSpec("output", "tensor")]
    rec = _recurrent_config(class_name, config)
    if rec is not None and rec[1].get("return_state"):
        names = ["h", "c"] if "LSTM" in rec[0] else ["h"]
        if rec[0] == "RNN":
            n = _cell_state_count(rec[1].get("cell"))
            names = ["h", "c"] if n == 2 and "LSTM" in str(rec[1].get("cell")) else [str(i) for i in range(n)]
        if class_name == "Bidirectional":
            names = [f"forward {n}" for n in names] + [f"backward {n}" for n in names]
        ports += [PortSpec(f"state {n}", "state") for n in names]
    return ports


@functools.lru_cache(maxsize=None)
def takes_mask(class_name: str) -> bool:
    """Whether a mask-carrying tensor may enter this layer (it propagates or consumes the mask). Keras layers often
    set `supports_masking` in `__init__`, so an instance is asked."""
    try:
        cls = layer_class(class_name)
        layer = cls.from_config(default_config(class_name, name="probe"))
    except Exception:
        return True
    return bool(layer.supports_masking) or "mask" in inspect.signature(cls.call).parameters


# -- initializers, regularizers, constraints -------------------------------------------------------------------------
def object_module(kind: str):
    return {"initializer": initializers, "regularizer": regularizers, "constraint": constraints}[kind]


def object_choices(kind: str) -> list[str]:
    """Class names the inspector offers for an initializer/regularizer/constraint field (Keras's class names)."""
    registry = getattr(object_module(kind), "_REGISTRY", {})
    return sorted(name for name, cls in registry.items()
                  if isinstance(cls, type) and name == cls.__name__)


# -- optimizers (the training panel's form) ----------------------------------------------------------------------
_OPTIMIZER_HIDDEN = {"self", "name", "learning_rate", "loss_scale_factor", "ema_overwrite_frequency"}


def optimizer_fields(class_name: str) -> list[FieldSpec]:
    """The arguments of an optimizer other than its learning rate: its own first, then the clipping, weight decay,
    EMA and accumulation arguments every Keras 3 optimizer takes."""
    from core import optimizers

    cls = type(optimizers.get(class_name))
    docs = _docstring_args(cls)
    fields: list[FieldSpec] = []
    for klass in (cls, optimizers.Optimizer):
        for p in inspect.signature(klass.__init__).parameters.values():
            if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or p.name in _OPTIMIZER_HIDDEN:
                continue
            if any(f.name == p.name for f in fields):
                continue
            kind, extra = _kind_of(p.name, p.default)
            if p.default is None:
                kind = "float" if p.name in ("clipnorm", "clipvalue", "global_clipnorm", "weight_decay") else "int"
                extra = {"minimum": 0.0} if kind == "float" else {"minimum": 1}
            fields.append(FieldSpec(p.name, kind, p.default, optional=p.default is None,
                                    doc=docs.get(p.name, ""), **extra))
    return fields

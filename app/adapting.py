"""Adapting a drawn preprocessing layer on the training data, with no Qt (the inspector's and the canvas menu's
"Adapt on training data", and the training panel's check before a run).

A layer is adaptable when its class has `adapt` (Keras's preprocessing layers: Normalization, Discretization,
IntegerLookup, StringLookup, TextVectorization, and any custom layer that learns from data the same way). It learns
from the training part of the data panel's data as it reaches the layer's input: the input's array for a layer wired
to an Input, or that array run through the layers before it (with the document's weights) for a deeper one. What
it learned is its config (a vocabulary, bin boundaries) and its weights (a mean and variance): one undoable command
sets both, so the project saves them and undo puts back what was there before.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from core import commands, layer_schema
from core.document import Document, TensorSpec
from core.errors import ConfigError, NetweaverError
from core.graph import is_text


def is_adaptable(class_name: str) -> bool:
    """Whether a layer class learns state from data with `adapt`."""
    try:
        return callable(getattr(layer_schema.layer_class(class_name), "adapt", None))
    except NetweaverError:
        return False


# The config keys in which Keras's preprocessing layers keep what adapt learned (or what was given instead): while
# one is set, the layer refuses to adapt, as in Keras.
LEARNED_KEYS = ("vocabulary", "idf_weights", "bin_boundaries", "mean", "variance")


def learned_keys(doc: Document, node_id: str) -> list[str]:
    """The keys of a layer's config that hold a learned (or given) state, which adapting again would replace."""
    config = doc.nodes[node_id].config
    return [key for key in LEARNED_KEYS if config.get(key) is not None]


@dataclass
class Adapted:
    """The outcome of adapting one layer: the command that puts it into the document, and what it learned."""

    command: commands.Command
    summary: str


def _layer_of(doc: Document, node_id: str, spec: TensorSpec | None, weights=True, forget_learned=False):
    """The layer of a node built from its config (and called on its input's shape, so its weights exist), with the
    document's weights when it has them; with `forget_learned`, without the state an earlier adapt left in its
    config."""
    from core.layers.base import KerasTensor

    node = doc.nodes[node_id]
    config = copy.deepcopy(node.config)
    if forget_learned:
        config.update({key: None for key in learned_keys(doc, node_id)})
    layer = layer_schema.layer_class(node.class_name).from_config(config)
    if spec is not None:
        layer(KerasTensor(spec.shape, spec.dtype, name="in0"))
        if weights and node.weights is not None:
            layer.set_weights(node.weights)
    return layer


def _input_spec(doc: Document, node_id: str) -> TensorSpec | None:
    wire = next((w for w in doc.wires_into(node_id) if w.dst_port == 0), None)
    return None if wire is None else doc.output_spec(wire.src, wire.src_port)


def not_ready(doc: Document, node_id: str) -> str | None:
    """Why an adaptable layer cannot compute yet (the engine's words: it has not been adapted, or given its
    vocabulary), or None when it can (or its input has no shape yet, which the canvas already says)."""
    from core.graph import GraphBuilder, graph_scope

    spec = _input_spec(doc, node_id)
    if spec is None:
        return None
    try:
        layer = _layer_of(doc, node_id, spec)
        g = GraphBuilder(f"{doc.nodes[node_id].name}_ready")
        x = g.add_input("x", spec.dtype, spec.shape)
        with graph_scope(g):
            layer(x)
    except Exception as exc:  # noqa: BLE001 - whatever the engine refuses is what the user must fix
        return str(exc) or type(exc).__name__
    return None


def unadapted_layers(doc: Document) -> list[str]:
    """A message for each adaptable layer that cannot compute yet (in graph order), saying how to adapt it."""
    problems, seen = [], set()
    for nid in doc.topological_order():
        node = doc.nodes[nid]
        if node.layer_key in seen or not is_adaptable(node.class_name):
            continue
        seen.add(node.layer_key)
        reason = not_ready(doc, nid)
        if reason:
            problems.append(f"{reason} Select '{node.name}' and press \"Adapt on training data\" in the inspector.")
    return problems


def summary_of(layer) -> str:
    """What an adapted layer holds, in a line: a vocabulary's size and first tokens, the bins, or the mean and
    variance."""
    if callable(getattr(layer, "get_vocabulary", None)):
        try:
            vocab = layer.get_vocabulary()
        except NetweaverError:
            return "no vocabulary yet"
        shown = ", ".join(repr(t) for t in vocab[:8])
        return f"vocabulary of {len(vocab):,} tokens ({shown}{', …' if len(vocab) > 8 else ''})"
    boundaries = getattr(layer, "bin_boundaries", None)
    if isinstance(boundaries, list):
        return f"{len(boundaries) + 1} bins, boundaries {_numbers(boundaries)}"
    named = {w.name: np.asarray(w.value) for w in getattr(layer, "weights", [])}
    if "mean" in named and "variance" in named:
        return f"mean {_numbers(named['mean'])}, variance {_numbers(named['variance'])}"
    return "adapted"


def _numbers(values, shown: int = 4) -> str:
    flat = np.asarray(values, dtype=np.float64).ravel()
    text = ", ".join(f"{v:.4g}" for v in flat[:shown])
    return f"[{text}{', …' if flat.size > shown else ''}]" + (f" ({flat.size} values)" if flat.size > shown else "")


def state_text(doc: Document, node_id: str) -> str:
    """The inspector's line about an adaptable layer: what it learned, or that it still needs adapting."""
    reason = not_ready(doc, node_id)
    if reason:
        return "Not adapted yet: press \"Adapt on training data\" to learn from the Data panel's training data."
    spec = _input_spec(doc, node_id)
    try:
        return "Adapted: " + summary_of(_layer_of(doc, node_id, spec))
    except Exception as exc:  # noqa: BLE001
        return str(exc)


# -- the data that reaches a layer -------------------------------------------------------------------------------
def _data_kind(a: np.ndarray) -> str:
    return "raw text (strings)" if is_text(a) else f"{a.dtype} numbers"


def data_reaching(doc: Document, node_id: str, data) -> np.ndarray:
    """The training data as it reaches the layer's main input: an Input's array, or the arrays run through the
    layers before it. Raises ConfigError naming the layer and what is missing."""
    node = doc.nodes[node_id]
    where = f"Cannot adapt '{node.name}'"
    wire = next((w for w in doc.wires_into(node_id) if w.dst_port == 0), None)
    if wire is None:
        raise ConfigError(f"{where}: its input is not wired; wire it to an Input (or a layer after one) first.")
    info = doc.analyze()
    trained = [doc.nodes[nid] for nid in doc.topological_order()
               if nid in _ancestors(doc, wire.src) and (info[nid].trainable_params or 0) > 0]
    if trained:
        names = ", ".join(f"'{n.name}' ({n.class_name})" for n in trained)
        raise ConfigError(f"{where}: the data reaches it through {names}, whose weights training changes, so what "
                          f"it learned now would not fit what reaches it then. Put preprocessing layers before the "
                          f"trainable ones (right after the Input), as Keras models do.")
    if data is None:
        raise ConfigError(f"{where}: no training data is loaded. Choose the data on the Data panel first; the layer "
                          f"learns from its training part.")
    inputs = doc.input_node_ids()
    if len(data.x) != len(inputs):
        raise ConfigError(f"{where}: the data gives {len(data.x)} input array(s), the model has {len(inputs)} "
                          f"input(s).")
    source = doc.nodes[wire.src]
    if source.class_name == "InputLayer":
        array = np.asarray(data.x[inputs.index(wire.src)])
        spec = doc.output_spec(wire.src, wire.src_port)
        if spec is not None and is_text(array) != (str(spec.dtype) == "string"):
            raise ConfigError(f"{where}: its input '{source.name}' takes {spec.dtype} values, but the data for it "
                              f"gives {_data_kind(array)}. Choose data that fits '{source.name}' on the Data panel "
                              f"(or change the input's dtype).")
        return array
    ancestors = _ancestors(doc, wire.src)
    for nid in doc.topological_order():
        if nid in ancestors and is_adaptable(doc.nodes[nid].class_name):
            reason = not_ready(doc, nid)
            if reason:
                raise ConfigError(f"{where}: the data reaches it through '{doc.nodes[nid].name}', which is not "
                                  f"adapted yet ({reason.rstrip('.')}). Adapt '{doc.nodes[nid].name}' first.")
    try:
        model = doc.to_model(outputs=[(wire.src, wire.src_port)])
        return np.asarray(model.predict(list(data.x), batch_size=256, verbose=0))
    except Exception as exc:  # noqa: BLE001 - the engine's reason, said with the layer it was for
        raise ConfigError(f"{where}: running the layers before it on the training data failed: {exc}") from exc


def _ancestors(doc: Document, node_id: str) -> set[str]:
    found, stack = set(), [node_id]
    while stack:
        nid = stack.pop()
        if nid in found:
            continue
        found.add(nid)
        stack += [w.src for w in doc.wires_into(nid)]
    return found


def adapt_node(doc: Document, node_id: str, data, replace: bool = False) -> Adapted:
    """Adapt a layer of the document on the training part of `data` (`exporters.datasets.LoadedData`); the
    command to push holds its new config and weights. Nothing in the document changes here. With `replace`, what
    its config holds from an earlier adapt (or was given) is replaced; without, such a layer is refused, as Keras
    refuses it."""
    node = doc.nodes[node_id]
    if not is_adaptable(node.class_name):
        raise ConfigError(f"'{node.name}' ({node.class_name}) does not learn from data: only layers with adapt() "
                          f"(Normalization, Discretization, IntegerLookup, StringLookup, TextVectorization, ...) can "
                          f"be adapted.")
    array = data_reaching(doc, node_id, data)
    spec = _input_spec(doc, node_id)
    layer = _layer_of(doc, node_id, None, forget_learned=replace)
    try:
        layer.adapt(array)
        if spec is not None and not layer.built:
            from core.layers.base import KerasTensor

            layer(KerasTensor(spec.shape, spec.dtype, name="in0"))  # its weights, in the order a model's layer has
    except Exception as exc:  # noqa: BLE001 - the engine's reason, said with the layer it was for
        text = str(exc) or type(exc).__name__
        if not isinstance(exc, NetweaverError):
            text = f"{type(exc).__name__}: {text}"
        if f"'{node.name}'" not in text:
            text = f"Cannot adapt '{node.name}' ({node.class_name}) on data of shape {array.shape}: {text}"
        if isinstance(exc, ConfigError) and not_ready(doc, node_id) is None:
            # Keras too refuses to adapt a layer given its vocabulary or bins, and an adapted layer's config gives them
            text += (" The state in its config (given, or learned by an earlier adapt) stops it adapting again: adapt "
                     "it again from the window, which asks to replace it, or clear it in the inspector first.")
        raise ConfigError(text) from exc
    config = layer.get_config()
    config["name"] = node.name
    weights = [np.array(w) for w in layer.get_weights()] or None
    summary = summary_of(layer)
    parts: list[commands.Command] = []
    if config != node.config:
        parts.append(commands.SetConfig(doc, node_id, config))
    if weights is not None:
        parts.append(commands.SetWeights(doc, {node_id: weights}))
    source = doc.wires_into(node_id)[0].src
    if doc.nodes[source].class_name != "InputLayer":
        summary += f" (from the outputs of '{doc.nodes[source].name}')"
    text = f"Adapt '{node.name}' on the training data"
    return Adapted(commands.Macro(text, parts), f"'{node.name}' adapted on {len(array):,} samples: {summary}")

"""`model.summary()`: Keras's table, and the same rows as data for the GUI's summary panel."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.layers.base import Layer


@dataclass
class SummaryRow:
    name: str
    class_name: str
    output_shape: str
    params: int | None  # None: not built yet
    connected_to: list[str] = field(default_factory=list)
    trainable: bool = True
    layer: Layer | None = None


def format_shape(shape) -> str:
    if isinstance(shape, list):
        return "[" + ", ".join(format_shape(s) for s in shape) + "]"
    if shape is None:
        return "?"
    inner = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def _layer_output_shape(layer: Layer, model) -> str:
    nodes = [n for n in layer._inbound_nodes if _node_in_model(n, model)] or layer._inbound_nodes
    if nodes:
        outs = nodes[0].outputs
        return format_shape([o.shape for o in outs]) if len(outs) > 1 else format_shape(outs[0].shape)
    last = getattr(layer, "_nw_last_output_shape", None)
    return format_shape(last) if last is not None else "?"


def _node_in_model(node, model) -> bool:
    nodes = getattr(model, "_nodes_in_order", None)
    return nodes is None or any(n is node for n in nodes)


def _connections(layer: Layer, model) -> list[str]:
    out = []
    for node in layer._inbound_nodes:
        if not _node_in_model(node, model):
            continue
        for t in node.input_tensors:
            src, node_index, tensor_index = t._keras_history
            out.append(f"{src.name}[{node_index}][{tensor_index}]")
    return out


def summary_rows(model) -> list[SummaryRow]:
    functional = hasattr(model, "_nodes_in_order") and type(model).__name__ != "Sequential"
    rows = []
    for layer in model.layers:
        params = layer.count_params() if layer.built else None
        rows.append(SummaryRow(layer.name, getattr(layer, "summary_class_name", type(layer).__name__), _layer_output_shape(layer, model), params,
                               _connections(layer, model) if functional else [], layer.trainable, layer))
    return rows


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024.0
    return f"{n:.2f} GB"


def _count(weights) -> int:
    return int(sum(int(np.prod(w.shape)) for w in weights))


def sequential_like(model) -> bool:
    """Whether Keras prints this model's summary as a Sequential's (no "Connected to" column): a Sequential, or a
    functional model that is one chain (one input, every call takes one tensor that no other call takes, no layer
    called twice), as Keras's `print_summary` decides from the nodes by depth."""
    nodes = getattr(model, "_nodes_in_order", None)
    if nodes is None or type(model).__name__ == "Sequential":
        return True
    if len(model.inputs) != 1:
        return False
    consumed: set[int] = set()
    calls: set[int] = set()
    for node in nodes:
        if node.is_input:
            continue
        if len(node.input_tensors) != 1 or id(node.input_tensors[0]) in consumed or id(node.layer) in calls:
            return False
        consumed.add(id(node.input_tensors[0]))
        calls.add(id(node.layer))
    return True


def print_summary(model, line_length=None, positions=None, print_fn=None, show_trainable=False) -> None:
    print_fn = print_fn or print
    rows = summary_rows(model)
    functional = not sequential_like(model)
    headers = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if functional else [])
    line_length = line_length or (98 if functional else 65)
    positions = positions or ([0.33, 0.55, 0.67, 1.0] if functional else [0.45, 0.85, 1.0])
    if positions[-1] <= 1:
        positions = [int(line_length * p) for p in positions]

    def line(fields):
        text = ""
        for i, f in enumerate(fields):
            if i > 0:
                text = text[:positions[i - 1] - 1] + " "
            text += str(f)
            text = text[:positions[i]].ljust(positions[i])
        return text.rstrip()

    print_fn(f'Model: "{model.name}"')
    print_fn("_" * line_length)
    print_fn(line(headers))
    print_fn("=" * line_length)
    for i, r in enumerate(rows):
        params = "0" if r.params is None else f"{r.params:,}" if r.params >= 1000 else str(r.params)
        conns = r.connected_to or [""]
        print_fn(line([f"{r.name} ({r.class_name})", r.output_shape, params] + ([conns[0]] if functional else [])))
        for c in conns[1:]:
            print_fn(line(["", "", "", c]))
        print_fn(("=" if i == len(rows) - 1 else "_") * line_length)
    weights = model.weights if model.built else []
    total = _count(weights)
    trainable = _count(model.trainable_weights) if model.built else 0
    itemsize = 4
    print_fn(f"Total params: {total:,} ({_human_bytes(total * itemsize)})")
    print_fn(f"Trainable params: {trainable:,} ({_human_bytes(trainable * itemsize)})")
    print_fn(f"Non-trainable params: {total - trainable:,} ({_human_bytes((total - trainable) * itemsize)})")
    print_fn("_" * line_length)



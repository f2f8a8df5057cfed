"""The model document the editor works on, with no Qt: layer nodes, wires between their ports, and what the engine
says about them.

A node is {id, class_name, config, position} (+ the weights of an imported layer); a wire joins an output port of one
node to an input port of another. A node is one call of a layer: the calls of a shared layer are several nodes with
the same `layer` key, whose config and weights change together. A Model or Sequential used as a layer is one node
whose config holds its inner graph (`inner_document()` opens it as a document of its own). Observers hear every change as an event (Orange's scheme does the same), so the
canvas only mirrors the document and every change can go through an undoable command (`core.commands`).

`analyze()` asks the engine itself: it builds each layer from its config and calls it on Functional-API tensors of
its inputs' shapes, so the shapes, parameter counts and errors shown are the engine's. Results are cached per
(class, config, input shapes), so an edit re-traces only the layers it can affect.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from core import layer_schema
from core.errors import ConfigError, GraphError
from core.summary import format_shape


@dataclass
class LayerNode:
    id: str
    class_name: str
    config: dict
    position: tuple[float, float] = (0.0, 0.0)
    weights: list | None = None  # arrays of an imported layer, in `layer.weights` order
    # A call of a shared layer names the layer it calls (the id of its first call); None for a layer of its own.
    # Every call of one layer holds the same config and weights (`Document` keeps them equal), as Keras's calls of
    # one layer object share both.
    layer: str | None = None

    @property
    def name(self) -> str:
        return self.config.get("name", self.id)

    @property
    def layer_key(self) -> str:
        return self.layer or self.id

    def to_dict(self) -> dict:
        out = {"id": self.id, "class_name": self.class_name, "config": copy.deepcopy(self.config),
               "position": [float(self.position[0]), float(self.position[1])]}
        if self.layer is not None:
            out["layer"] = self.layer
        return out


@dataclass(frozen=True)
class Wire:
    src: str
    src_port: int
    dst: str
    dst_port: int

    def to_dict(self) -> dict:
        return {"src": self.src, "src_port": self.src_port, "dst": self.dst, "dst_port": self.dst_port}

    @classmethod
    def from_dict(cls, d: dict) -> "Wire":
        return cls(str(d["src"]), int(d.get("src_port", 0)), str(d["dst"]), int(d.get("dst_port", 0)))


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple
    dtype: str = "float32"
    mask_shape: tuple | None = None

    @property
    def masked(self) -> bool:
        return self.mask_shape is not None

    def label(self) -> str:
        return format_shape(self.shape)


@dataclass
class NodeInfo:
    """What the engine says about one node. status: 'ok'; 'error' (its inputs or config do not fit: `error` says
    why); 'incomplete' (an input port is not wired yet); 'waiting' (an upstream node has no result)."""

    status: str
    outputs: list[TensorSpec] = field(default_factory=list)
    params: int | None = None
    error: str = ""
    trainable_params: int | None = None
    weight_shapes: tuple | None = None  # of the layer built by this call: a shared layer's calls must agree


@dataclass
class DocumentSummaryRow:
    node_id: str
    name: str
    class_name: str
    output_shape: str
    params: int | None
    connected_to: list[str]
    trainable_params: int | None = None


class Document:
    """A Functional model being drawn. Mutators emit events: node_added, node_removed, node_moved, config_changed,
    weights_changed, wire_added, wire_removed, reset, training_changed, datasets_changed, runs_changed."""

    def __init__(self, name: str = "model"):
        self.name = name
        self.nodes: dict[str, LayerNode] = {}
        self.wires: list[Wire] = []
        self.training: dict = {}   # compile and fit settings, kept for the training panel and the project file
        self.datasets: list = []   # dataset references
        self.runs: list = []       # finished training runs (`core.training_run.TrainingRun`), oldest first
        self.extra: dict = {}      # project fields this version does not know, kept on re-save
        self.keras_generation: str | None = None  # 'keras3' or 'tf_keras2' for a model imported from a Keras file
        # The model's inputs and outputs in the order an imported model had them (node id, port); sinks drawn
        # later are appended.
        self.input_order: list[str] = []
        self.output_order: list[tuple[str, int]] = []
        self.revision = 0
        self._next_id = 1
        self._observers: list[Callable[[str, object], None]] = []
        self._analysis: dict[str, NodeInfo] | None = None
        self._analysis_revision = -1
        self._cache: dict[tuple, tuple[list[TensorSpec], int, int]] = {}

    # -- observers ---------------------------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[str, object], None]) -> None:
        self._observers.append(callback)

    def unsubscribe(self, callback) -> None:
        self._observers = [c for c in self._observers if c != callback]

    def _emit(self, event: str, payload=None) -> None:
        self.revision += 1
        for callback in list(self._observers):
            callback(event, payload)

    # -- ids and names -----------------------------------------------------------------------------------------
    def new_node_id(self) -> str:
        # an id still naming a shared layer (its first call deleted) is not reused, or a new node would join it
        used = set(self.nodes) | {n.layer for n in self.nodes.values() if n.layer}
        while f"n{self._next_id}" in used:
            self._next_id += 1
        nid = f"n{self._next_id}"
        self._next_id += 1
        return nid

    def unique_name(self, class_name_or_base: str, taken: set[str] | None = None) -> str:
        """Keras's naming ('dense', 'dense_1', ...), unique in this document."""
        from core.backend import snake_case

        base = snake_case(class_name_or_base) if class_name_or_base[:1].isupper() else class_name_or_base
        if class_name_or_base == "InputLayer":
            base = "input_layer"
        names = {n.name for n in self.nodes.values()} | (taken or set())
        if base not in names:
            return base
        i = 1
        while f"{base}_{i}" in names:
            i += 1
        return f"{base}_{i}"

    def node_by_name(self, name: str) -> LayerNode | None:
        return next((n for n in self.nodes.values() if n.name == name), None)

    def _name_taken(self, name: str, node: LayerNode) -> bool:
        """Whether another layer (not another call of `node`'s layer) has this name."""
        return any(n.name == name and n.id != node.id and n.layer_key != node.layer_key for n in self.nodes.values())

    # -- shared layers -----------------------------------------------------------------------------------------
    def calls_of(self, node_id: str) -> list[str]:
        """The nodes that call the same layer as this one (itself included), in document order."""
        key = self._node(node_id).layer_key
        return [nid for nid, n in self.nodes.items() if n.layer_key == key]

    def is_shared(self, node_id: str) -> bool:
        return len(self.calls_of(node_id)) > 1

    def call_indices(self) -> dict[str, int]:
        """Each node's call index within its layer (Keras's node index): calls are numbered in the order the model
        makes them, which is the graph's topological order."""
        seen: dict[str, int] = {}
        out = {}
        for nid in self.topological_order():
            key = self.nodes[nid].layer_key
            out[nid] = seen.get(key, 0)
            seen[key] = out[nid] + 1
        return out

    # -- mutators (commands call these; each emits one event) -------------------------------------------------
    def add_node(self, node: LayerNode, index: int | None = None) -> None:
        if node.id in self.nodes:
            raise GraphError(f"Node id '{node.id}' is already in the document.")
        if self._name_taken(node.name, node):
            raise GraphError(f"A layer named '{node.name}' already exists; layer names must be unique.")
        calls = [n for n in self.nodes.values() if node.layer is not None and n.layer_key == node.layer]
        if calls and (calls[0].class_name != node.class_name or calls[0].config != node.config):
            raise GraphError(f"'{node.name}' is a call of the shared layer '{calls[0].name}', so it must have "
                             f"that layer's class and config.")
        items = list(self.nodes.items())
        index = len(items) if index is None else index
        items.insert(index, (node.id, node))
        self.nodes = dict(items)
        self._emit("node_added", node)

    def remove_node(self, node_id: str) -> LayerNode:
        node = self._node(node_id)
        attached = [w for w in self.wires if w.src == node_id or w.dst == node_id]
        if attached:
            raise GraphError(f"Layer '{node.name}' still has {len(attached)} wire(s); remove them first.")
        del self.nodes[node_id]
        self._emit("node_removed", node)
        return node

    def move_node(self, node_id: str, position) -> None:
        node = self._node(node_id)
        node.position = (float(position[0]), float(position[1]))
        self._emit("node_moved", node)

    def set_config(self, node_id: str, config: dict) -> None:
        """Change a layer's config: every call of a shared layer changes with it."""
        node = self._node(node_id)
        new_name = config.get("name", node.name)
        if self._name_taken(new_name, node):
            raise ConfigError(f"A layer named '{new_name}' already exists; layer names must be unique.")
        for nid in self.calls_of(node_id):
            self.nodes[nid].config = copy.deepcopy(config)
            self._emit("config_changed", self.nodes[nid])

    def set_layer(self, node_id: str, layer: str | None) -> None:
        """Make a node a call of the shared layer `layer` (or a layer of its own with None). Its config must
        already be that layer's."""
        node = self._node(node_id)
        calls = [n for n in self.nodes.values() if layer is not None and n.layer_key == layer and n.id != node_id]
        if calls and (calls[0].class_name != node.class_name or calls[0].config != node.config):
            raise GraphError(f"'{node.name}' cannot call the layer '{calls[0].name}': its class or config differ.")
        node.layer = layer
        self._emit("config_changed", node)

    def set_weights(self, node_id: str, weights) -> None:
        """Give a layer weights: every call of a shared layer has them."""
        self._node(node_id)
        for nid in self.calls_of(node_id):
            node = self.nodes[nid]
            node.weights = None if weights is None else [np.array(w) for w in weights]
            self._emit("weights_changed", node)

    def set_training(self, settings: dict) -> None:
        self.training = copy.deepcopy(settings)
        self._emit("training_changed", self.training)

    def set_datasets(self, datasets: list) -> None:
        self.datasets = copy.deepcopy(datasets)
        self._emit("datasets_changed", self.datasets)

    def add_run(self, run) -> None:
        self.runs.append(run)
        self._emit("runs_changed", self.runs)

    def remove_run(self, run) -> None:
        self.runs.remove(run)
        self._emit("runs_changed", self.runs)

    def structure(self) -> str:
        """The graph without node positions: equal exactly when the drawn model is the same model."""
        return structure_of(self.graph_dict())

    def add_wire(self, wire: Wire, index: int | None = None) -> None:
        reason = self.check_wire(wire.src, wire.src_port, wire.dst, wire.dst_port)
        if reason:
            raise GraphError(reason)
        self.wires.insert(len(self.wires) if index is None else index, wire)
        self._emit("wire_added", wire)

    def remove_wire(self, wire: Wire) -> int:
        index = self.wires.index(wire)
        del self.wires[index]
        self._emit("wire_removed", wire)
        return index

    def clear(self) -> None:
        self.nodes, self.wires = {}, []
        self._emit("reset", None)

    def _node(self, node_id: str) -> LayerNode:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise GraphError(f"No node '{node_id}' in the document.") from None

    # -- graph queries -----------------------------------------------------------------------------------------
    def wires_into(self, node_id: str) -> list[Wire]:
        return sorted((w for w in self.wires if w.dst == node_id), key=lambda w: w.dst_port)

    def wires_from(self, node_id: str) -> list[Wire]:
        return [w for w in self.wires if w.src == node_id]

    def input_ports(self, node_id: str) -> list[layer_schema.PortSpec]:
        node = self._node(node_id)
        return layer_schema.input_ports(node.class_name, node.config, len(self.wires_into(node_id)))

    def output_ports(self, node_id: str) -> list[layer_schema.PortSpec]:
        node = self._node(node_id)
        return layer_schema.output_ports(node.class_name, node.config)

    def port_slot(self, wire: Wire) -> int:
        """Where a wire lands on its node's drawn ports: merge inputs are packed in wire order."""
        if layer_schema.is_merge(self.nodes[wire.dst].class_name):
            return [w.dst_port for w in self.wires_into(wire.dst)].index(wire.dst_port)
        return wire.dst_port

    def free_merge_port(self, node_id: str) -> int:
        ports = [w.dst_port for w in self.wires_into(node_id)]
        return max(ports) + 1 if ports else 0

    def reaches(self, start: str, goal: str) -> list[str] | None:
        """The path of node ids from start to goal along wires, or None."""
        children: dict[str, list[str]] = {}
        for w in self.wires:
            children.setdefault(w.src, []).append(w.dst)
        parents = {start: None}
        stack = [start]
        while stack:
            nid = stack.pop()
            if nid == goal:
                path = []
                while nid is not None:
                    path.append(nid)
                    nid = parents[nid]
                return path[::-1]
            for child in children.get(nid, ()):
                if child not in parents:
                    parents[child] = nid
                    stack.append(child)
        return None

    def check_wire(self, src: str, src_port: int, dst: str, dst_port: int) -> str | None:
        """Why this wire cannot be drawn, or None when it fits."""
        if src not in self.nodes or dst not in self.nodes:
            return "A wire must join two layers of this model."
        s, d = self.nodes[src], self.nodes[dst]
        if src == dst:
            return f"'{s.name}' cannot feed itself."
        outs = layer_schema.output_ports(s.class_name, s.config)
        if not 0 <= src_port < len(outs):
            return f"'{s.name}' ({s.class_name}) has no output port {src_port}."
        merge = layer_schema.is_merge(d.class_name)
        existing = self.wires_into(dst)
        if merge:
            cap = layer_schema.max_merge_inputs(d.class_name)
            if cap and len(existing) >= cap:
                return f"'{d.name}' ({d.class_name}) takes exactly {cap} inputs; it already has {len(existing)}."
            if any(w.dst_port == dst_port for w in existing):
                return f"Input {dst_port} of '{d.name}' is already wired."
            if dst_port < 0:
                return f"'{d.name}' has no input port {dst_port}."
            in_kind = "tensor"
        else:
            ins = layer_schema.input_ports(d.class_name, d.config, len(existing))
            if not ins:
                return f"'{d.name}' is an input of the model; nothing can be wired into it."
            if not 0 <= dst_port < len(ins):
                return f"'{d.name}' ({d.class_name}) has no input port {dst_port}."
            if any(w.dst_port == dst_port for w in existing):
                return (f"Input '{ins[dst_port].name}' of '{d.name}' is already wired; delete that wire first or use "
                        f"a merge layer (Add, Concatenate, ...) to combine tensors.")
            in_kind = ins[dst_port].kind
        if in_kind == "state":
            reason = self._state_misfit(s, src, src_port, d, ins[dst_port].name)
            if reason:
                return reason
        path = self.reaches(dst, src)
        if path is not None:
            names = " -> ".join(self.nodes[n].name for n in path + [dst])
            return f"This wire would close a cycle ({names}); a model's graph must be acyclic."
        if self.is_shared(dst):
            reason = self._shared_misfit(Wire(src, src_port, dst, dst_port))
            if reason:
                return reason
        if in_kind == "tensor" and not layer_schema.takes_mask(d.class_name):
            spec = self.output_spec(src, src_port)
            if spec is not None and spec.masked:
                return (f"'{s.name}' output carries a mask, and '{d.name}' ({d.class_name}) cannot take a mask. "
                        f"Put a layer that consumes it (an RNN or a pooling layer) in between.")
        return None

    def _state_misfit(self, s: LayerNode, src: str, src_port: int, d: LayerNode, port_name: str) -> str | None:
        """Keras takes any tensor as an initial state (a state output, a Dense output, ...) whose shape is
        (batch, units); why this one does not fit, or None (also when its shape is not known yet)."""
        units = state_units(d.class_name, d.config)
        spec = self.output_spec(src, src_port)
        if units is None or spec is None:
            return None
        want = f"(None, {units})"
        if len(spec.shape) != 2 or spec.shape[-1] != units:
            return (f"'{d.name}' input '{port_name}' takes a state of shape {want} (batch, units={units}), but "
                    f"'{s.name}' output has shape {spec.label()}.")
        return None

    def _shared_misfit(self, wire: Wire) -> str | None:
        """Why this wire would give a call of a shared layer inputs that its other calls' weights do not fit, or
        None (also while the shapes are not known yet)."""
        node = self.nodes[wire.dst]
        specs = []
        for w in self.wires_into(wire.dst) + [wire]:
            spec = self.output_spec(w.src, w.src_port)
            if spec is None:
                return None
            specs.append((w.dst_port, spec))
        specs.sort(key=lambda ps: ps[0])
        merge = layer_schema.is_merge(node.class_name) or layer_schema.takes_arguments(node.class_name)
        try:
            shapes = _trace_layer(node, specs, merge)[3]
        except Exception:  # noqa: BLE001 - the node shows the engine's error once wired; no sharing conflict here
            return None
        info = self.analyze()
        for other in self.calls_of(wire.dst):
            oi = info.get(other)
            if other == wire.dst or oi is None or oi.status != "ok" or oi.weight_shapes == shapes:
                continue
            theirs = [self.output_spec(w.src, w.src_port) for w in self.wires_into(other)]
            return _shared_shapes_text(node.name, [s for s in theirs if s], [s for _, s in specs])
        return None

    def topological_order(self) -> list[str]:
        """Node ids, inputs first; ties keep document order. Raises GraphError on a cycle (from a foreign file)."""
        indegree = {nid: 0 for nid in self.nodes}
        children: dict[str, list[str]] = {}
        for w in self.wires:
            indegree[w.dst] += 1
            children.setdefault(w.src, []).append(w.dst)
        ready = [nid for nid, d in indegree.items() if d == 0]
        order = []
        position = {nid: i for i, nid in enumerate(self.nodes)}
        while ready:
            ready.sort(key=position.__getitem__, reverse=True)
            nid = ready.pop()
            order.append(nid)
            for child in children.get(nid, ()):
                indegree[child] -= 1
                if indegree[child] == 0:
                    ready.append(child)
        if len(order) != len(self.nodes):
            stuck = [self.nodes[n].name for n in self.nodes if n not in order]
            raise GraphError(f"The graph has a cycle through {', '.join(stuck)}.")
        return order

    # -- what the engine says ----------------------------------------------------------------------------------
    def output_spec(self, node_id: str, port: int) -> TensorSpec | None:
        info = self.analyze().get(node_id)
        if info is None or port >= len(info.outputs):
            return None
        return info.outputs[port]

    def analyze(self) -> dict[str, NodeInfo]:
        if self._analysis is not None and self._analysis_revision == self.revision:
            return self._analysis
        result: dict[str, NodeInfo] = {}
        used_cache: dict[tuple, tuple[list[TensorSpec], int, int]] = {}
        incoming: dict[str, list[Wire]] = {nid: [] for nid in self.nodes}
        for w in self.wires:
            incoming[w.dst].append(w)
        first_call: dict[str, str] = {}  # shared layer -> the call whose weights the later calls must fit
        for nid in self.topological_order():
            node = self.nodes[nid]
            wires = sorted(incoming[nid], key=lambda w: w.dst_port)
            info = self._analyze_node(node, wires, result, used_cache)
            if info.status == "ok" and node.layer_key in first_call:
                ref = first_call[node.layer_key]
                if result[ref].weight_shapes != info.weight_shapes:
                    def inputs_of(n):
                        return [result[w.src].outputs[w.src_port] for w in sorted(incoming[n], key=lambda w: w.dst_port)]
                    info = NodeInfo("error", error=_shared_shapes_text(node.name, inputs_of(ref), inputs_of(nid)))
            elif info.status == "ok":
                first_call[node.layer_key] = nid
            result[nid] = info
        self._cache = used_cache
        self._analysis, self._analysis_revision = result, self.revision
        return result

    def _analyze_node(self, node: LayerNode, wires: list[Wire], done: dict[str, NodeInfo], used_cache) -> NodeInfo:
        ports = layer_schema.input_ports(node.class_name, node.config, len(wires))
        merge = layer_schema.is_merge(node.class_name)
        if ports and not wires:
            return NodeInfo("incomplete", error=f"'{node.name}' has no input yet: wire a layer's output into it.")
        specs = []
        for w in wires:
            info = done[w.src]
            if info.status != "ok" or w.src_port >= len(info.outputs):
                return NodeInfo("waiting", error=f"Waiting for '{self.nodes[w.src].name}', which has no output shape.")
            specs.append((w.dst_port, info.outputs[w.src_port]))
        if merge and len(specs) < 2 and ports:
            return NodeInfo("incomplete", error=f"'{node.name}' ({node.class_name}) merges two or more tensors; "
                                                f"wire at least one more input.")
        op = layer_schema.takes_arguments(node.class_name)
        if op and len(specs) < len(ports):
            missing = [p.name for i, p in enumerate(ports) if all(port != i for port, _ in specs)]
            what = node.config.get("function") or node.class_name
            return NodeInfo("incomplete", error=f"'{node.name}' ({what}) needs its tensor "
                                                f"input(s) {', '.join(missing)} wired.")
        if not merge and ports and not any(p == 0 for p, _ in specs):
            return NodeInfo("incomplete", error=f"'{node.name}' has initial states but no main input.")
        n_states = sum(1 for p in ports if p.kind == "state")
        state_specs = [s for p, s in specs if p > 0] if not (merge or op) else []
        if state_specs and len(state_specs) != n_states:
            return NodeInfo("error", error=f"'{node.name}' ({node.class_name}) takes all {n_states} initial states "
                                           f"or none; {len(state_specs)} are wired.")
        key = (node.class_name, _config_key(node.config), tuple(s for _, s in specs))
        hit = self._cache.get(key) or used_cache.get(key)
        if hit is None:
            try:
                hit = _trace_layer(node, specs, merge or op)
            except Exception as exc:  # the engine's own message is what the user needs to see
                return NodeInfo("error", error=_error_text(node, exc))
        used_cache[key] = hit
        return NodeInfo("ok", outputs=hit[0], params=hit[1], trainable_params=hit[2], weight_shapes=hit[3])

    # -- summary -----------------------------------------------------------------------------------------------
    def output_node_ports(self) -> list[tuple[str, int]]:
        """The model's outputs: every layer whose outputs feed nothing (inputs excluded), in the imported model's
        order and then document order."""
        feeding = {w.src for w in self.wires}
        consumed = {(w.src, w.src_port) for w in self.wires}
        sinks = [nid for nid, n in self.nodes.items() if n.class_name != "InputLayer" and nid not in feeding]
        # an imported model's outputs stay outputs while nothing consumes them (a state output, say)
        kept = [(nid, p) for nid, p in self.output_order if nid in self.nodes and (nid, p) not in consumed]
        return kept + [(nid, 0) for nid in sinks if all(nid != k for k, _ in kept)]

    def input_node_ids(self) -> list[str]:
        inputs = [nid for nid, n in self.nodes.items() if n.class_name == "InputLayer"]
        kept = [nid for nid in self.input_order if nid in inputs]
        return kept + [nid for nid in inputs if nid not in kept]

    def keras_layer_order(self) -> list[str]:
        """Node ids in the order Keras lists a Functional model's layers (by depth from the outputs, then first
        discovery walking back from the outputs); nodes not reaching an output come last."""
        index: dict[str, int] = {}
        order: list[str] = []
        done: set[str] = set()
        incoming: dict[str, list[Wire]] = {nid: [] for nid in self.nodes}
        for w in self.wires:
            incoming[w.dst].append(w)

        def visit(nid: str):
            stack = [(nid, False)]
            while stack:
                cur, expanded = stack.pop()
                index.setdefault(cur, len(index))
                if expanded:
                    if cur not in done:
                        done.add(cur)
                        order.append(cur)
                    continue
                if cur in done:
                    continue
                stack.append((cur, True))
                for w in reversed(sorted(incoming[cur], key=lambda w: w.dst_port)):
                    if w.src not in done:
                        stack.append((w.src, False))

        for nid, _ in self.output_node_ports():
            visit(nid)
        for nid, n in self.nodes.items():
            if n.class_name == "InputLayer":
                visit(nid)
        depth: dict[str, int] = {}
        for nid in reversed(order):
            d = depth.setdefault(nid, 0)
            for w in incoming[nid]:
                depth[w.src] = max(depth.get(w.src, 0), d + 1)
        ranked = sorted(order, key=lambda n: (-depth[n], index[n]))
        return ranked + [n for n in self.nodes if n not in done]

    def summary_order(self) -> list[str]:
        """Keras's layer order once every layer has a result; while the graph is incomplete or wrong, the order on
        the canvas (left to right, then top to bottom), which is how the user reads it."""
        info = self.analyze()
        if self.nodes and all(i.status == "ok" for i in info.values()):
            return self.keras_layer_order()
        return sorted(self.nodes, key=lambda nid: (self.nodes[nid].position[0], self.nodes[nid].position[1]))

    def summary_rows(self) -> list[DocumentSummaryRow]:
        """One row per layer, as Keras prints them: a shared layer once, with every call's inputs in "Connected
        to" (in call order) and the output shape of its first call."""
        info = self.analyze()
        try:
            index = self.call_indices()
        except GraphError:
            index = {}
        rows = []
        listed: set[str] = set()
        for nid in self.summary_order():
            node = self.nodes[nid]
            if node.layer_key in listed:
                continue
            listed.add(node.layer_key)
            calls = sorted(self.calls_of(nid), key=lambda c: index.get(c, 0))
            first = info[calls[0]]
            if first.outputs:
                labels = [s.shape for s in first.outputs]
                shape = format_shape(labels if len(labels) > 1 else labels[0])
            else:
                shape = "?"
            conns = [f"{self.nodes[w.src].name}[{index.get(w.src, 0)}][{w.src_port}]"
                     for c in calls for w in self.wires_into(c)]
            ni = next((info[c] for c in calls if info[c].params is not None), first)
            rows.append(DocumentSummaryRow(calls[0], node.name, _summary_class(node), shape, ni.params, conns,
                                           ni.trainable_params))
        return rows

    def total_params(self) -> int:
        """Parameters of the model: a shared layer's are counted once."""
        counted: dict[str, int] = {}
        for nid, i in self.analyze().items():
            counted[self.nodes[nid].layer_key] = max(counted.get(self.nodes[nid].layer_key, 0), i.params or 0)
        return sum(counted.values())

    def errors(self) -> list[tuple[str, str]]:
        return [(nid, i.error) for nid, i in self.analyze().items() if i.status == "error"]

    # -- to and from the engine's models ----------------------------------------------------------------------
    def to_model(self, outputs: list[tuple[str, int]] | None = None):
        """A `core` Functional model of this graph, with the imported weights where they still fit; `outputs`
        (node, port) overrides the model's outputs (a collapsed selection's, some of which feed layers inside)."""
        from core.layers.base import InputLayer, flatten
        from core.models import Functional

        problems = [f"{self.nodes[nid].name}: {i.error}" for nid, i in self.analyze().items()
                    if i.status in ("error", "incomplete")]
        if problems:
            raise GraphError("The model is not complete: " + " ".join(problems))
        tensors: dict[tuple[str, int], object] = {}
        layers = {}  # one layer object per layer: the calls of a shared layer call the same one
        for nid in self.topological_order():
            node = self.nodes[nid]
            first_call = node.layer_key not in layers
            if first_call:
                cls = layer_schema.layer_class(node.class_name)
                layers[node.layer_key] = cls.from_config(copy.deepcopy(node.config))
            layer = layers[node.layer_key]
            if isinstance(layer, InputLayer):
                outs = [layer.output]
            else:
                wires = self.wires_into(nid)
                merge = layer_schema.is_merge(node.class_name)
                if layer_schema.takes_arguments(node.class_name):  # several tensors go in as a list, in port order
                    merge = len(wires) > 1
                main = [tensors[(w.src, w.src_port)] for w in wires if merge or w.dst_port == 0]
                states = [tensors[(w.src, w.src_port)] for w in wires if not merge and w.dst_port > 0]
                x = main if merge else main[0]
                result = layer(x, initial_state=states) if states else layer(x)
                outs = flatten(result)
            for i, t in enumerate(outs):
                tensors[(nid, i)] = t
            if first_call and node.weights is not None:
                try:
                    layer.set_weights(node.weights)
                except ValueError:
                    pass  # the config changed the weights' shapes since import: keep the fresh initial values
        outputs = [tensors[p] for p in (outputs or self.output_node_ports())]
        inputs = [tensors[(nid, 0)] for nid in self.input_node_ids()]
        if not outputs:
            raise GraphError("The model has no output: add a layer after an input.")
        model = Functional(inputs if len(inputs) > 1 else inputs[0], outputs if len(outputs) > 1 else outputs[0],
                           name=self.name)
        model.keras_generation = self.keras_generation
        return model

    @classmethod
    def from_model(cls, model) -> "Document":
        """A document drawing a Functional (or built Sequential) model, keeping its weights."""
        from core.layers.base import InputLayer

        doc = cls(getattr(model, "name", "model"))
        doc.keras_generation = getattr(model, "keras_generation", None)
        nodes = getattr(model, "_nodes_in_order", None)
        if nodes is None:
            raise GraphError(f"Model '{model.name}' is a subclassed model: its graph lives in Python code, so it "
                             f"cannot be drawn. Build it with the Functional API or Sequential.")
        node_ids: dict[tuple[int, int], str] = {}  # (layer, its call's node index) -> node id
        listed = {id(l) for l in model.layers}
        hidden_inputs = [n.layer for n in nodes if n.is_input and id(n.layer) not in listed]  # Sequential's
        for layer in hidden_inputs + list(model.layers):
            calls = [n for n in nodes if n.layer is layer]
            config = layer.get_config()
            if isinstance(layer, InputLayer):
                config = _input_config(config)
            weights = [np.array(w) for w in layer.get_weights()] or None
            first = None
            # a shared layer is one node per call, in Keras's call order, all calls of one layer
            for call in sorted(calls, key=lambda n: _node_index(layer, n)) or [None]:
                node = LayerNode(doc.new_node_id(), type(layer).__name__, copy.deepcopy(config),
                                 weights=weights, layer=first)
                doc.nodes[node.id] = node
                first = first or node.id
                node_ids[(id(layer), _node_index(layer, call) if call is not None else 0)] = node.id
            if len(calls) > 1:
                doc.nodes[first].layer = first
        for n in nodes:
            if n.is_input:
                continue
            dst = node_ids[(id(n.layer), _node_index(n.layer, n))]
            merge = layer_schema.is_merge(type(n.layer).__name__) or layer_schema.takes_arguments(type(n.layer).__name__)
            main_args = n.call_args[0] if n.call_args else None
            state_args = n.call_kwargs.get("initial_state") or []
            if not merge and isinstance(main_args, (list, tuple)):  # RNN called as layer([x, h, c])
                main_args, state_args = main_args[0], list(main_args[1:])
            mains = list(main_args) if isinstance(main_args, (list, tuple)) else [main_args]
            states = list(state_args) if isinstance(state_args, (list, tuple)) else [state_args]
            for port, t in enumerate(mains + states):
                src_layer, node_index, tensor_index = t._keras_history
                doc.wires.append(Wire(node_ids[(id(src_layer), node_index)], tensor_index, dst, port))
        doc.input_order = [node_ids[(id(t._keras_history[0]), t._keras_history[1])] for t in model.inputs]
        doc.output_order = [(node_ids[(id(t._keras_history[0]), t._keras_history[1])], t._keras_history[2])
                            for t in model.outputs]
        doc.topological_order()  # a foreign graph with a cycle is refused here, with the layers named
        for nid, pos in layered_layout(doc).items():
            doc.nodes[nid].position = pos
        return doc

    # -- nested models -----------------------------------------------------------------------------------------
    def inner_document(self, node_id: str) -> "Document":
        """The graph inside a nested model's node, as a document of its own with the node's weights. When the
        node's call fails on the shapes wired into it, the inner inputs take those shapes, so the inner graph shows
        which of its layers fails on them."""
        node = self._node(node_id)
        if not layer_schema.is_nested_model(node.class_name):
            raise GraphError(f"'{node.name}' ({node.class_name}) is a layer, not a nested model; it has no inner graph.")
        try:
            model = layer_schema.layer_class(node.class_name).from_config(copy.deepcopy(node.config))
        except Exception:  # noqa: BLE001 - an inner layer's config is wrong: draw the graph so that layer shows red
            inner = _document_from_config(node.class_name, node.config)
            for nid, pos in layered_layout(inner).items():
                inner.nodes[nid].position = pos
            return inner
        if node.weights is not None:
            try:
                model.set_weights(node.weights)
            except ValueError:
                pass  # the weights no longer fit the inner graph: it opens with fresh ones, as to_model() would
        inner = Document.from_model(model)
        inner.name = node.name
        if self.analyze()[node_id].status == "error":
            for nid, w in zip(inner.input_node_ids(), self.wires_into(node_id)):
                spec = self.output_spec(w.src, w.src_port)
                if spec is not None:
                    inner.nodes[nid].config["shape"] = list(spec.shape[1:])
        return inner

    def as_nested_model(self, class_name: str = "Functional", outputs: list[tuple[str, int]] | None = None):
        """This graph as a model to use as a layer: (config, weights) for a `class_name` node. A Sequential stays
        one only while its graph is a chain from one input."""
        from core.layers.base import Input
        from core.models import Sequential

        model = self.to_model(outputs)
        if class_name == "Sequential":
            chain = [n for n in self.topological_order() if self.nodes[n].class_name != "InputLayer"]
            if len(self.input_node_ids()) != 1 or len(model.outputs) != 1 or any(
                    [w.src for w in self.wires_into(b)] != [a] for a, b in zip(
                        self.input_node_ids() + chain, chain)):
                raise GraphError(f"'{self.name}' is a Sequential model, so its graph must stay one chain of layers "
                                 f"from one input; use a Functional model for branches.")
            first = self.nodes[self.input_node_ids()[0]]
            model = Sequential([Input(**{k: v for k, v in first.config.items() if k in ("shape", "batch_size", "dtype", "name")})]
                               + [model.get_layer(self.nodes[n].name) for n in chain], name=self.name)
        return model.get_config(), [np.array(w) for w in model.get_weights()] or None

    # -- fragments (copy/paste, project files) -----------------------------------------------------------------
    def fragment(self, node_ids) -> dict:
        """The given nodes and the wires among them, as JSON-able data."""
        ids = [nid for nid in self.nodes if nid in set(node_ids)]
        return {"format": "netweaver-fragment", "nodes": [self.nodes[nid].to_dict() for nid in ids],
                "wires": [w.to_dict() for w in self.wires if w.src in ids and w.dst in ids]}

    def graph_dict(self) -> dict:
        return {"name": self.name, "nodes": [n.to_dict() for n in self.nodes.values()],
                "wires": [w.to_dict() for w in self.wires], "inputs": list(self.input_order),
                "outputs": [[nid, port] for nid, port in self.output_order]}

    def load_graph_dict(self, graph: dict) -> None:
        """Replace the graph with one read from a file; every reference is checked before anything changes."""
        try:
            nodes = [LayerNode(str(n["id"]), str(n["class_name"]), dict(n.get("config") or {}),
                               tuple(float(v) for v in n.get("position", (0, 0)))[:2],
                               layer=str(n["layer"]) if n.get("layer") is not None else None)
                     for n in graph["nodes"]]
            wires = [Wire.from_dict(w) for w in graph.get("wires", [])]
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"The graph is malformed: {exc!r} (each node needs id, class_name and config; each "
                              f"wire src, src_port, dst, dst_port).") from exc
        ids = [n.id for n in nodes]
        if len(set(ids)) != len(ids):
            raise ConfigError("The graph has two nodes with the same id.")
        for n in nodes:
            layer_schema.layer_class(n.class_name)  # unknown class -> ConfigError naming it and the known ones
            n.config.setdefault("name", n.id)
        for w in wires:
            if w.src not in ids or w.dst not in ids:
                raise ConfigError(f"A wire refers to a node that does not exist: {w}.")
        layers: dict[str, LayerNode] = {}
        for n in nodes:
            first = layers.setdefault(n.layer_key, n)
            if first.class_name != n.class_name or first.config != n.config:
                raise ConfigError(f"Nodes '{first.id}' and '{n.id}' are calls of one shared layer but differ in "
                                  f"class or config; the calls of a layer must have the same ones.")
        names = [n.name for n in layers.values()]
        if len(set(names)) != len(names):
            raise ConfigError(f"Layer names must be unique; repeated: {sorted({x for x in names if names.count(x) > 1})}.")
        trial = Document(self.name)
        trial.nodes = {n.id: n for n in nodes}
        trial.wires = wires
        trial.topological_order()
        self.name = str(graph.get("name", self.name))
        self.nodes, self.wires = trial.nodes, wires
        self.input_order = [str(n) for n in graph.get("inputs", []) if n in trial.nodes]
        self.output_order = [(str(o[0]), int(o[1])) for o in graph.get("outputs", []) if o[0] in trial.nodes]
        self._next_id = 1
        self._emit("reset", None)


def structure_of(graph: dict) -> str:
    """A graph dict (`Document.graph_dict()`) without node positions, as comparable text."""
    nodes = [{k: v for k, v in node.items() if k != "position"} for node in graph.get("nodes", [])]
    return json.dumps(dict(graph, nodes=nodes), sort_keys=True, default=str)


def _summary_class(node: LayerNode) -> str:
    """The class a summary row shows: Keras 3's operation class for an op node, as `model.summary()` does."""
    if layer_schema.is_op(node.class_name) and isinstance(node.config.get("function"), str):
        from core.models.op_nodes import keras_class_name

        return keras_class_name(node.config["function"])
    return node.class_name


def _document_from_config(class_name: str, config: dict) -> "Document":
    """A nested model's graph read from its config without building it (one of its layers cannot be built): a node
    per layer call, wired as the config's inbound nodes say (Keras 3's and tf.keras 2's forms; a Sequential's layers
    in a chain), so the document's analysis names the layer that fails."""
    doc = Document(str(config.get("name", "model")))
    calls: dict[tuple[str, int], str] = {}
    inbound: list[tuple[str, object]] = []
    previous = None
    for entry in config.get("layers", []):
        entry_config = dict(entry.get("config") or {})
        cls = str(entry.get("class_name"))
        if cls == "InputLayer":
            entry_config = _input_config(entry_config)
        nodes = entry.get("inbound_nodes") or [None]
        first = None
        for index, call in enumerate(nodes):
            node = LayerNode(doc.new_node_id(), cls, copy.deepcopy(entry_config),
                             layer=first if len(nodes) > 1 else None)
            first = first or node.id
            doc.nodes[node.id] = node
            calls[(node.name, index)] = node.id
            inbound.append((node.id, call))
        if len(nodes) > 1:
            doc.nodes[first].layer = first
        if class_name == "Sequential" and previous is not None:
            doc.wires.append(Wire(previous, 0, first, 0))
        previous = first
    for nid, call in inbound:
        for port, (name, index, tensor) in enumerate(_tensor_refs(call)):
            if (name, index) in calls:
                doc.wires.append(Wire(calls[(name, index)], tensor, nid, port))
    return doc


def _tensor_refs(value) -> list[tuple[str, int, int]]:
    """(layer name, node index, tensor index) of every tensor an inbound-node entry refers to, in argument order."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            name, index, tensor = value["config"]["keras_history"]
            return [(str(name), int(index), int(tensor))]
        return [r for v in value.values() for r in _tensor_refs(v)]
    if isinstance(value, (list, tuple)):
        if len(value) >= 3 and isinstance(value[0], str) and isinstance(value[1], int):  # tf.keras 2's [name, i, j, {}]
            return [(value[0], value[1], int(value[2]))]
        return [r for v in value for r in _tensor_refs(v)]
    return []


def _node_index(layer, node) -> int:
    """Keras's index of one call of a layer (what `_keras_history` names)."""
    return next(i for i, n in enumerate(layer._inbound_nodes) if n is node)


def _input_config(config: dict) -> dict:
    """InputLayer configs (Keras 3 `batch_shape`, tf.keras 2 `batch_input_shape`) as the editor's shape field."""
    batch = config.get("batch_shape") or config.get("batch_input_shape")
    out = {"name": config.get("name"), "dtype": config.get("dtype", "float32")}
    if batch is not None:
        out["shape"] = list(batch[1:])
        if batch[0] is not None:
            out["batch_size"] = batch[0]
    else:
        out["shape"] = list(config.get("shape") or [])
    return out


def state_units(class_name: str, config: dict) -> int | None:
    """The size of each state of a recurrent layer (its `units`; a Bidirectional's inner layer's), or None."""
    if not layer_schema.state_count(class_name, config):
        return None
    inner = config.get("layer", {}).get("config", {}) if class_name == "Bidirectional" else config
    units = inner.get("units")
    return units if isinstance(units, int) else None


def _config_key(config: dict) -> str:
    return json.dumps(config, sort_keys=True, default=repr)


def _trace_layer(node: LayerNode, specs, merge: bool):
    """Build the layer from its config and call it on Functional-API tensors of the input specs."""
    from core.layers.base import KerasTensor, flatten

    cls = layer_schema.layer_class(node.class_name)
    layer = cls.from_config(copy.deepcopy(node.config))
    if not specs:
        outs = flatten(layer.output)
    else:
        tensors = [(port, KerasTensor(s.shape, s.dtype, name=f"in{port}", mask_shape=s.mask_shape,
                                      mask_origin="upstream")) for port, s in specs]
        if merge:
            ts = [t for _, t in tensors]
            result = layer(ts[0] if len(ts) == 1 and layer_schema.takes_arguments(node.class_name) else ts)
        else:
            main = next(t for p, t in tensors if p == 0)
            states = [t for p, t in tensors if p > 0]
            result = layer(main, initial_state=states) if states else layer(main)
        outs = flatten(result)
    out_specs = [TensorSpec(tuple(t.shape), t.dtype, t._mask_shape) for t in outs]
    params = layer.count_params() if layer.built else 0
    trainable = int(sum(int(np.prod(w.shape)) for w in layer.trainable_weights)) if layer.built else 0
    weight_shapes = tuple(tuple(w.shape) for w in layer.weights) if layer.built else ()
    return out_specs, params, trainable, weight_shapes


def _shared_shapes_text(name: str, first: list[TensorSpec], other: list[TensorSpec]) -> str:
    def shapes(specs):
        return ", ".join(s.label() for s in specs) or "nothing"

    return (f"'{name}' is a shared layer: one call takes {shapes(first)} and this one would take {shapes(other)}, "
            f"but its calls share one set of weights, so their inputs must fit the same weights.")


def _error_text(node: LayerNode, exc: Exception) -> str:
    msg = str(exc) or type(exc).__name__
    from core.errors import NetweaverError

    if not isinstance(exc, NetweaverError):
        msg = f"{type(exc).__name__}: {msg}"
    return msg


def layered_layout(doc: Document, dx: float = 260.0, dy: float = 120.0, sizes: dict | None = None) -> dict:
    """Left-to-right layered drawing of the DAG: a node's column is its longest path from an input; rows inside a
    column follow the mean row of the node's parents (one barycentre sweep), which keeps chains straight."""
    order = doc.topological_order()
    incoming: dict[str, list[str]] = {nid: [] for nid in doc.nodes}
    for w in doc.wires:
        incoming[w.dst].append(w.src)
    column: dict[str, int] = {}
    for nid in order:
        column[nid] = max((column[p] + 1 for p in incoming[nid]), default=0)
    # A layer sits just before its nearest consumer, so its wire does not run behind the layers of the columns
    # between them (the decoder's embedding beside the encoder, not beside the encoder's embedding). Inputs stay left.
    consumers: dict[str, list[str]] = {nid: [] for nid in doc.nodes}
    for w in doc.wires:
        consumers[w.src].append(w.dst)
    for nid in reversed(order):
        if incoming[nid] and consumers[nid]:
            column[nid] = max(column[nid], min(column[c] for c in consumers[nid]) - 1)
    columns: dict[int, list[str]] = {}
    for nid in order:
        columns.setdefault(column[nid], []).append(nid)
    row: dict[str, float] = {}
    positions = {}
    for c in sorted(columns):
        members = columns[c]
        members.sort(key=lambda n: (sum(row[p] for p in incoming[n]) / len(incoming[n])) if incoming[n] else 0.0)
        y = 0.0
        taken = -1e9
        for nid in members:
            want = (sum(row[p] for p in incoming[nid]) / len(incoming[nid])) if incoming[nid] else y
            h = (sizes or {}).get(nid, (0, dy * 0.8))[1]
            pos = max(want, taken)
            row[nid] = pos
            taken = pos + max(dy, h + dy * 0.25)
            y = taken
            positions[nid] = (c * dx, pos)
    return positions

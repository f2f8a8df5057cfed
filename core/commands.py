"""Undoable edits of a `Document`, and the stack that runs them, with no Qt.

Every change the editor makes is one of these commands, so undo/redo is exact and testable without a window. A
command keeps what it needs to put the document back (a removed node keeps its wires and its place in the order).
"""

from __future__ import annotations

import copy
import re
from typing import Callable

from core.document import Document, LayerNode, Wire
from core.errors import ConfigError


class Command:
    text = "Edit"

    def do(self, doc: Document) -> None:
        raise NotImplementedError

    def undo(self, doc: Document) -> None:
        raise NotImplementedError


class AddNode(Command):
    def __init__(self, node: LayerNode):
        self.node = node
        self.text = f"Add {node.class_name} '{node.name}'"

    def do(self, doc):
        doc.add_node(copy.deepcopy(self.node))

    def undo(self, doc):
        doc.remove_node(self.node.id)


class RemoveNodes(Command):
    """Delete nodes with every wire touching them; undo restores both at their old places."""

    def __init__(self, doc: Document, node_ids):
        ids = [nid for nid in doc.nodes if nid in set(node_ids)]
        self.node_ids = ids
        self.text = f"Delete {len(ids)} layer(s)" if len(ids) != 1 else f"Delete '{doc.nodes[ids[0]].name}'"
        self._removed: list[tuple[int, LayerNode]] = []
        self._wires: list[tuple[int, Wire]] = []

    def do(self, doc):
        order = list(doc.nodes)
        self._removed = [(order.index(nid), doc.nodes[nid]) for nid in self.node_ids]
        self._wires = [(i, w) for i, w in enumerate(doc.wires) if w.src in self.node_ids or w.dst in self.node_ids]
        for _, w in reversed(self._wires):
            doc.remove_wire(w)
        for _, node in reversed(self._removed):
            doc.remove_node(node.id)

    def undo(self, doc):
        for index, node in self._removed:
            doc.add_node(node, index)
        for index, w in self._wires:
            doc.add_wire(w, index)


class AddWire(Command):
    def __init__(self, wire: Wire):
        self.wire = wire
        self.text = "Connect"

    def do(self, doc):
        doc.add_wire(self.wire)

    def undo(self, doc):
        doc.remove_wire(self.wire)


class RemoveWire(Command):
    def __init__(self, wire: Wire):
        self.wire = wire
        self.text = "Disconnect"
        self._index = 0

    def do(self, doc):
        self._index = doc.remove_wire(self.wire)

    def undo(self, doc):
        doc.add_wire(self.wire, self._index)


class MoveNodes(Command):
    def __init__(self, moves: dict[str, tuple[tuple[float, float], tuple[float, float]]], text: str = "Move"):
        self.moves = moves  # id -> (old, new)
        self.text = text

    def do(self, doc):
        for nid, (_, new) in self.moves.items():
            doc.move_node(nid, new)

    def undo(self, doc):
        for nid, (old, _) in self.moves.items():
            doc.move_node(nid, old)


class SetConfig(Command):
    """Change a layer's config (a property edit or a rename). The new config is checked by building the layer, so
    an impossible value is refused with the engine's reason and the document stays as it was."""

    def __init__(self, doc: Document, node_id: str, config: dict, text: str | None = None):
        node = doc.nodes[node_id]
        self.node_id = node_id
        self.old = copy.deepcopy(node.config)
        self.new = copy.deepcopy(config)
        validate_config(node.class_name, self.new)
        changed = [k for k in set(self.old) | set(self.new) if self.old.get(k) != self.new.get(k)]
        if text is None:
            if changed == ["name"]:
                text = f"Rename '{self.old.get('name')}' to '{self.new.get('name')}'"
            else:
                text = f"Change {', '.join(sorted(changed)) or 'nothing'} of '{node.name}'"
        self.text = text

    def do(self, doc):
        doc.set_config(self.node_id, self.new)

    def undo(self, doc):
        doc.set_config(self.node_id, self.old)


class CallAgain(Command):
    """A new call of an existing layer (Keras: calling one layer object on another tensor): a new node, unwired,
    that shares the layer's config and weights, so an edit through any call changes them all."""

    def __init__(self, doc: Document, node_id: str, position: tuple[float, float]):
        node = doc.nodes[node_id]
        if node.class_name == "InputLayer":
            raise ConfigError(f"'{node.name}' is an input of the model; an input is not a layer that can be called "
                              f"again. Add another Input instead.")
        self.source = node_id
        self.old_layer = node.layer
        self.node = LayerNode(doc.new_node_id(), node.class_name, copy.deepcopy(node.config),
                              (float(position[0]), float(position[1])), layer=node.layer_key,
                              weights=None if node.weights is None else [w.copy() for w in node.weights])
        self.text = f"Call '{node.name}' again"

    def do(self, doc):
        doc.set_layer(self.source, self.node.layer)
        try:
            doc.add_node(copy.deepcopy(self.node))
        except Exception:
            doc.set_layer(self.source, self.old_layer)
            raise

    def undo(self, doc):
        doc.remove_node(self.node.id)
        doc.set_layer(self.source, self.old_layer)


class SetTrainingSettings(Command):
    """Replace the compile and fit settings (`Document.training`) the training panel edits."""

    def __init__(self, doc: Document, settings: dict, text: str = "Change training settings"):
        self.old = copy.deepcopy(doc.training)
        self.new = copy.deepcopy(settings)
        self.text = text

    def do(self, doc):
        doc.set_training(self.new)

    def undo(self, doc):
        doc.set_training(self.old)


class SetDataset(Command):
    """Replace the dataset training uses (`Document.datasets[0]`), keeping any others."""

    def __init__(self, doc: Document, spec: dict | None, text: str = "Change the data"):
        self.old = copy.deepcopy(doc.datasets)
        self.new = ([copy.deepcopy(spec)] if spec is not None else []) + copy.deepcopy(doc.datasets[1:])
        self.text = text

    def do(self, doc):
        doc.set_datasets(self.new)

    def undo(self, doc):
        doc.set_datasets(self.old)


class SetWeights(Command):
    """Give some layers new weights at once ({node id: arrays in `layer.get_weights()` order}); undo puts back what
    each had before (None for a layer that had its initial values)."""

    def __init__(self, doc: Document, weights: dict[str, list], text: str = "Load weights"):
        self.new = {nid: [w.copy() for w in ws] for nid, ws in weights.items() if nid in doc.nodes}
        self.old = {nid: doc.nodes[nid].weights for nid in self.new}
        self.text = text

    def do(self, doc):
        for nid, ws in self.new.items():
            doc.set_weights(nid, ws)

    def undo(self, doc):
        for nid, ws in self.old.items():
            doc.set_weights(nid, ws)


class RecordRun(Command):
    """A finished training run becomes the document's: the layers take its weights and the run joins the list.
    Undo puts back the weights from before the run and drops it."""

    def __init__(self, doc: Document, run, weights: dict[str, list], text: str | None = None):
        self.run = run
        self.weights = SetWeights(doc, weights)
        self.text = text or f"Train ({run.outcome}, {run.epochs_done} epoch(s))"

    def do(self, doc):
        self.weights.do(doc)
        if self.weights.new:
            self.run.weights = self.weights.new
        doc.add_run(self.run)

    def undo(self, doc):
        doc.remove_run(self.run)
        self.weights.undo(doc)


class RestoreRun(Command):
    """Put a run's model (as drawn when it ran) and the weights it ended with back on the canvas."""

    def __init__(self, doc: Document, run, text: str | None = None):
        if run.model is None:
            raise ConfigError("This run kept no copy of its model, so it cannot be restored.")
        self.run = run
        self.old_graph, self.old_weights = doc.graph_dict(), {nid: n.weights for nid, n in doc.nodes.items()}
        self.text = text or f"Restore the run of {run.started or 'an earlier session'}"

    def do(self, doc):
        doc.load_graph_dict(copy.deepcopy(self.run.model))
        for nid, ws in (self.run.weights or {}).items():
            if nid in doc.nodes:
                doc.set_weights(nid, ws)

    def undo(self, doc):
        doc.load_graph_dict(copy.deepcopy(self.old_graph))
        for nid, ws in self.old_weights.items():
            if ws is not None and nid in doc.nodes:
                doc.set_weights(nid, ws)


class Macro(Command):
    """Several commands as one undo step (paste, delete a selection, auto-layout)."""

    def __init__(self, text: str, commands: list[Command]):
        self.text = text
        self.commands = list(commands)

    def do(self, doc):
        done = []
        try:
            for c in self.commands:
                c.do(doc)
                done.append(c)
        except Exception:
            for c in reversed(done):
                c.undo(doc)
            raise

    def undo(self, doc):
        for c in reversed(self.commands):
            c.undo(doc)


def validate_config(class_name: str, config: dict) -> None:
    """Raise ConfigError with the layer's own reason if `config` cannot make a layer (units=0, rate=-1, ...)."""
    from core import layer_schema

    cls = layer_schema.layer_class(class_name)
    try:
        cls.from_config(copy.deepcopy(config))
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{class_name} '{config.get('name', '')}': {exc}") from exc
    name = config.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ConfigError(f"A layer name must be a non-empty string, got {name!r}.")


def paste_command(doc: Document, fragment: dict, offset=(40.0, 40.0)) -> Macro:
    """Commands that add a copied fragment with fresh ids and names (Keras-style suffixes), shifted by offset."""
    if not isinstance(fragment, dict) or fragment.get("format") != "netweaver-fragment":
        raise ConfigError("The clipboard does not hold Netweaver layers.")
    id_map: dict[str, str] = {}
    taken: set[str] = set()
    commands: list[Command] = []
    reserved = set(doc.nodes)
    for nd in fragment.get("nodes", []):
        from core import layer_schema

        layer_schema.layer_class(nd["class_name"])
        nid = doc.new_node_id()
        while nid in reserved:
            nid = doc.new_node_id()
        reserved.add(nid)
        id_map[str(nd["id"])] = nid
        config = copy.deepcopy(nd.get("config") or {})
        base = config.get("name") or nd["class_name"]
        if doc.node_by_name(base) is None and base not in taken:
            name = base
        else:  # 'dense_1' copied next to itself becomes 'dense_2', as Keras would name a new one
            name = doc.unique_name(re.sub(r"_\d+$", "", base) or base, taken)
        taken.add(name)
        config["name"] = name
        x, y = nd.get("position", (0, 0))
        commands.append(AddNode(LayerNode(nid, nd["class_name"], config, (x + offset[0], y + offset[1]))))
    for wd in fragment.get("wires", []):
        w = Wire.from_dict(wd)
        if w.src in id_map and w.dst in id_map:
            commands.append(AddWire(Wire(id_map[w.src], w.src_port, id_map[w.dst], w.dst_port)))
    return Macro(f"Paste {len(id_map)} layer(s)", commands)


class CommandStack:
    """Undo/redo history with a clean (saved) index. Listeners hear 'changed' after every push, undo, redo."""

    def __init__(self, doc: Document):
        self.doc = doc
        self._commands: list[Command] = []
        self._index = 0
        self._clean_index: int | None = 0
        self._listeners: list[Callable[[], None]] = []

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def _changed(self) -> None:
        for cb in list(self._listeners):
            cb()

    def push(self, command: Command) -> Command:
        """Run a command and record it; if it raises, nothing is recorded and the document is unchanged."""
        command.do(self.doc)
        del self._commands[self._index:]
        if self._clean_index is not None and self._clean_index > self._index:
            self._clean_index = None  # the saved state can no longer be reached by undo/redo
        self._commands.append(command)
        self._index += 1
        self._changed()
        return command

    def can_undo(self) -> bool:
        return self._index > 0

    def can_redo(self) -> bool:
        return self._index < len(self._commands)

    def undo_text(self) -> str:
        return self._commands[self._index - 1].text if self.can_undo() else ""

    def redo_text(self) -> str:
        return self._commands[self._index].text if self.can_redo() else ""

    def undo(self) -> None:
        if not self.can_undo():
            return
        self._index -= 1
        self._commands[self._index].undo(self.doc)
        self._changed()

    def redo(self) -> None:
        if not self.can_redo():
            return
        self._commands[self._index].do(self.doc)
        self._index += 1
        self._changed()

    def is_clean(self) -> bool:
        return self._clean_index == self._index

    def set_clean(self) -> None:
        self._clean_index = self._index
        self._changed()

    def set_dirty(self) -> None:
        """The document differs from every saved state (recovered work)."""
        self._clean_index = None
        self._changed()

    def clear(self) -> None:
        self._commands, self._index, self._clean_index = [], 0, 0
        self._changed()


# -- nested models -----------------------------------------------------------------------------------------------
def set_inner_graph_command(doc: Document, node_id: str, inner: Document) -> Macro:
    """Write an edited inner graph back into its nested-model node (config and weights, for every call of it):
    one undo step. Raises GraphError when the inner graph is not a complete model."""
    node = doc.nodes[node_id]
    config, weights = inner.as_nested_model(node.class_name)
    config["name"] = node.name
    return Macro(f"Edit the nested model '{node.name}'",
                 [SetConfig(doc, node_id, config, text="Edit nested model"), SetWeights(doc, {node_id: weights or []})])


def collapse_command(doc: Document, node_ids, name: str | None = None) -> Macro:
    """Turn the selected layers into one nested Functional model called where they were: tensors wired in from
    outside become its inputs, tensors used outside (or model outputs) its outputs, in the graph's order."""
    order = doc.topological_order()
    chosen = [nid for nid in order if nid in set(node_ids)]
    if not chosen:
        raise ConfigError("Select the layers to turn into a nested model.")
    names = ", ".join(f"'{doc.nodes[n].name}'" for n in chosen if doc.nodes[n].class_name == "InputLayer")
    if names:
        raise ConfigError(f"The model's inputs ({names}) stay outside a nested model; select the layers after them.")
    split = [doc.nodes[n].name for n in chosen if any(c not in chosen for c in doc.calls_of(n))]
    if split:
        raise ConfigError(f"The shared layer(s) {', '.join(sorted(set(split)))} have calls outside the selection; a "
                          f"nested model would split their weights. Select every call or none.")
    inside = set(chosen)
    ext_in: list[tuple[str, int]] = []
    for nid in chosen:
        for w in doc.wires_into(nid):
            if w.src not in inside and (w.src, w.src_port) not in ext_in:
                ext_in.append((w.src, w.src_port))
    outer_outputs = set(doc.output_node_ports())
    ext_out = [(nid, p) for nid in chosen for p in range(len(doc.output_ports(nid)))
               if (nid, p) in outer_outputs or any(w.src_port == p and w.dst not in inside for w in doc.wires_from(nid))]
    if not ext_in or not ext_out:
        raise ConfigError("A nested model needs a tensor coming in and one going out: select layers between an "
                          "input and a later layer.")
    name = name or doc.unique_name("functional")
    inner = Document(name)
    input_ids = []
    for i, (src, port) in enumerate(ext_in):
        spec = doc.output_spec(src, port)
        if spec is None:
            raise ConfigError(f"'{doc.nodes[src].name}' has no output shape yet; wire it up before nesting the "
                              f"layers it feeds.")
        nid = f"in{i}"
        inner.nodes[nid] = LayerNode(nid, "InputLayer", {"name": inner.unique_name(f"{name}_input"),
                                                         "shape": list(spec.shape[1:]), "dtype": spec.dtype})
        input_ids.append(nid)
    for nid in chosen:
        node = doc.nodes[nid]
        inner.nodes[nid] = LayerNode(nid, node.class_name, copy.deepcopy(node.config), node.position,
                                     weights=node.weights, layer=node.layer)
    for nid in chosen:
        for w in doc.wires_into(nid):
            src = w.src if w.src in inside else input_ids[ext_in.index((w.src, w.src_port))]
            inner.wires.append(Wire(src, w.src_port if w.src in inside else 0, nid, w.dst_port))
    inner.input_order = input_ids
    config, weights = inner.as_nested_model("Functional", ext_out)
    xs = [doc.nodes[n].position[0] for n in chosen]
    ys = [doc.nodes[n].position[1] for n in chosen]
    group = LayerNode(doc.new_node_id(), "Functional", config, (sum(xs) / len(xs), sum(ys) / len(ys)),
                      weights=weights)
    parts: list[Command] = [RemoveNodes(doc, chosen), AddNode(group)]
    parts += [AddWire(Wire(src, port, group.id, i)) for i, (src, port) in enumerate(ext_in)]
    parts += [AddWire(Wire(group.id, ext_out.index((w.src, w.src_port)), w.dst, w.dst_port))
              for w in doc.wires if w.src in inside and w.dst not in inside]
    return Macro(f"Nest {len(chosen)} layer(s) as '{name}'", parts)


def expand_command(doc: Document, node_id: str) -> Macro:
    """Put a nested model's layers in its place, wired as they were inside it (the inverse of collapse)."""
    node = doc.nodes[node_id]
    if doc.is_shared(node_id):
        raise ConfigError(f"The nested model '{node.name}' is called {len(doc.calls_of(node_id))} times; expanding "
                          f"one call would give it weights of its own. Its calls share one set of weights.")
    inner = doc.inner_document(node_id)
    if doc.analyze()[node_id].status == "error":
        raise ConfigError(f"The nested model '{node.name}' does not fit its inputs; open it to see the failing layer.")
    inputs = inner.input_node_ids()
    outer_in = {w.dst_port: (w.src, w.src_port) for w in doc.wires_into(node_id)}
    ids: dict[str, str] = {}
    taken = {n.name for nid, n in doc.nodes.items() if nid != node_id}
    reserved = set(doc.nodes)
    layer_keys: dict[str, str] = {}
    new_nodes = []
    x0 = min((n.position[0] for n in inner.nodes.values()), default=0.0)
    y0 = min((n.position[1] for n in inner.nodes.values()), default=0.0)
    for nid, inner_node in inner.nodes.items():
        if nid in inputs:
            continue
        new_id = doc.new_node_id()
        while new_id in reserved:
            new_id = doc.new_node_id()
        reserved.add(new_id)
        ids[nid] = new_id
        base = inner_node.name
        if inner_node.layer_key in layer_keys:
            new_name = next(n.name for n in new_nodes if n.layer_key == layer_keys[inner_node.layer_key])
        else:
            new_name = base if base not in taken else doc.unique_name(re.sub(r"_\d+$", "", base) or base, taken)
        taken.add(new_name)
        layer = None
        if inner.is_shared(nid):
            layer = layer_keys.setdefault(inner_node.layer_key, new_id)
        config = dict(copy.deepcopy(inner_node.config), name=new_name)
        pos = (node.position[0] + inner_node.position[0] - x0, node.position[1] + inner_node.position[1] - y0)
        new_nodes.append(LayerNode(new_id, inner_node.class_name, config, pos, weights=inner_node.weights,
                                   layer=layer))

    def outer_source(src: str, port: int) -> tuple[str, int] | None:
        if src in inputs:
            return outer_in.get(inputs.index(src))
        return ids[src], port

    parts: list[Command] = [RemoveNodes(doc, [node_id])] + [AddNode(n) for n in new_nodes]
    for w in inner.wires:
        src = outer_source(w.src, w.src_port)
        if src is not None:
            parts.append(AddWire(Wire(src[0], src[1], ids[w.dst], w.dst_port)))
    for w in doc.wires_from(node_id):
        src = outer_source(*inner.output_order[w.src_port])
        if src is not None:
            parts.append(AddWire(Wire(src[0], src[1], w.dst, w.dst_port)))
    return Macro(f"Expand the nested model '{node.name}'", parts)

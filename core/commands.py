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

"""The editing controller: turns canvas gestures and menu actions into commands on the document.

It owns the document and its command stack; the scene, inspector and summary panel only show them. Everything here
goes through `core.commands`, so every edit can be undone, and a refused edit (a wire that does not fit, an
impossible config) leaves the document as it was and says why through `statusMessage`.
"""

from __future__ import annotations

import json

from PySide6.QtCore import QObject, QPointF, QTimer, Signal

from app.canvas import COLUMN_GAP, NODE_WIDTH, GraphScene, node_height
from app.theme import Theme
from core import commands, layer_schema
from core.document import Document, LayerNode, Wire, layered_layout
from core.errors import NetweaverError

CLIPBOARD_MIME = "application/x-netweaver-fragment"


class Editor(QObject):
    statusMessage = Signal(str)
    refreshed = Signal()          # shapes, counts, errors and summary are current
    documentReplaced = Signal()
    cleanChanged = Signal()
    nestingChanged = Signal()     # a nested model's graph was opened or closed (the breadcrumb changes)

    def __init__(self, theme: Theme, parent=None):
        super().__init__(parent)
        self.doc = Document()
        self.stack = commands.CommandStack(self.doc)
        self.stack.subscribe(self._stack_changed)
        self.scene = GraphScene(self.doc, theme, self)
        self.scene.wireRequested.connect(self.request_wire)
        self.scene.nodesMoved.connect(self.move_nodes)
        self.scene.layerDropped.connect(self._layer_dropped)
        self.scene.statusMessage.connect(self.statusMessage)
        self.scene.wireDetached.connect(self.remove_wire)
        self.scene.openRequested.connect(self.open_nested)
        # The documents above an opened nested model: (document, its command stack, the nested model's node id).
        self._nesting: list[tuple[Document, commands.CommandStack, str]] = []
        self.scene.wire_checker = self.wire_problem
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(0)
        self._refresh_timer.timeout.connect(self.refresh)
        self._was_clean = True
        self.paste_count = 0

    # -- document lifetime -----------------------------------------------------------------------------------
    def set_document(self, doc: Document) -> None:
        had_nesting = bool(self._nesting)
        self._nesting = []
        self.doc.unsubscribe(self.scene.on_document_event)
        self.doc = doc
        self.stack = commands.CommandStack(doc)
        self.stack.subscribe(self._stack_changed)
        self.scene.set_document(doc)
        self._was_clean = True
        self.documentReplaced.emit()
        self.refresh()
        self.cleanChanged.emit()
        if had_nesting:
            self.nestingChanged.emit()

    # -- nested models ------------------------------------------------------------------------------------------
    def breadcrumb(self) -> list[str]:
        """The names from the model down to the nested model whose graph is shown."""
        return [d.name for d, _, _ in self._nesting] + [self.doc.name]

    def _show(self, doc: Document, stack: commands.CommandStack) -> None:
        self.doc.unsubscribe(self.scene.on_document_event)
        self.doc, self.stack = doc, stack
        self.scene.set_document(doc)
        self.refresh()
        self.nestingChanged.emit()

    def open_nested(self, node_id: str) -> bool:
        """Show a nested model's own graph, editable with the same tools; a failing inner layer is selected."""
        try:
            inner = self.doc.inner_document(node_id)
        except NetweaverError as exc:
            self.statusMessage.emit(str(exc))
            return False
        self._nesting.append((self.doc, self.stack, node_id))
        stack = commands.CommandStack(inner)
        if not self.stack.is_clean():
            stack.set_dirty()  # the window keeps saying the model has unsaved changes while inside
        stack.subscribe(self._stack_changed)
        self._show(inner, stack)
        errors = inner.errors()
        if errors:
            self.scene.select_nodes([errors[0][0]])
            self.statusMessage.emit(f"Inside '{inner.name}': {errors[0][1]}")
        return True

    def close_nested(self) -> bool:
        """Back to the graph around the open nested model; its edits become one undo step there. Refused (with the
        reason) while the inner graph is not a complete model."""
        if not self._nesting:
            return True
        parent, parent_stack, node_id = self._nesting[-1]
        command = None
        if self.stack.can_undo():
            try:
                command = commands.set_inner_graph_command(parent, node_id, self.doc)
            except NetweaverError as exc:
                self.statusMessage.emit(f"'{self.doc.name}' cannot be closed yet: {exc}")
                return False
        self._nesting.pop()
        self._show(parent, parent_stack)
        if command is not None:
            self.push(command)
        self.scene.select_nodes([node_id])
        return True

    def leave_nested(self, depth: int = 0) -> bool:
        """Close nested graphs until `depth` levels stay open (0: the model itself); False if one refused."""
        while len(self._nesting) > depth:
            if not self.close_nested():
                return False
        return True

    def collapse_selection(self, name: str | None = None) -> str | None:
        """Turn the selected layers into one nested model (one undo step); returns its node id."""
        ids = self.scene.selected_node_ids()
        new = self.push_selecting_new(lambda: commands.collapse_command(self.doc, ids, name))
        return new[0] if new else None

    def expand_selection(self) -> list[str]:
        """Put the selected nested model's layers in its place (one undo step); returns their node ids."""
        ids = [nid for nid in self.scene.selected_node_ids()
               if layer_schema.is_nested_model(self.doc.nodes[nid].class_name)]
        if len(ids) != 1:
            self.statusMessage.emit("Select one nested model to expand it.")
            return []
        return self.push_selecting_new(lambda: commands.expand_command(self.doc, ids[0]))

    def _stack_changed(self) -> None:
        self._refresh_timer.start()  # coalesce: many commands in one event-loop turn give one analysis
        if self.stack.is_clean() != self._was_clean:
            self._was_clean = self.stack.is_clean()
            self.cleanChanged.emit()

    def refresh(self) -> None:
        """Ask the engine for shapes, parameter counts and errors and show them."""
        self._refresh_timer.stop()
        self.scene.apply_analysis()
        self.refreshed.emit()

    def push(self, command) -> bool:
        try:
            self.stack.push(command)
            return True
        except NetweaverError as exc:
            self.statusMessage.emit(str(exc))
            return False

    # -- creating and wiring ------------------------------------------------------------------------------------
    def add_layer(self, class_name: str, pos=(0.0, 0.0), config: dict | None = None) -> str | None:
        try:
            base = layer_schema.default_config(class_name)
        except NetweaverError as exc:
            self.statusMessage.emit(str(exc))
            return None
        base.update(config or {})
        base["name"] = base.get("name") or self.doc.unique_name(class_name)
        node = LayerNode(self.doc.new_node_id(), class_name, base, (float(pos[0]), float(pos[1])))
        if self.push(commands.AddNode(node)):
            self.scene.select_nodes([node.id])
            return node.id
        return None

    def _layer_dropped(self, class_name: str, pos: QPointF) -> None:
        self.add_layer(class_name, (pos.x() - NODE_WIDTH / 2, pos.y() - 20))

    def resolve_port(self, src: str, src_port: int, dst: str, slot: int) -> int | str:
        """The document port for a drop on a drawn slot (-1: anywhere on the node); or why there is none."""
        doc = self.doc
        if dst not in doc.nodes:
            return "No such layer."
        node = doc.nodes[dst]
        if layer_schema.is_merge(node.class_name):
            wired = len(doc.wires_into(dst))
            if slot != -1 and slot < wired:
                return f"Input {slot} of '{node.name}' is already wired; drop on its free port (the last one)."
            return doc.free_merge_port(dst)
        ports = doc.input_ports(dst)
        if slot != -1:
            return slot
        taken = {w.dst_port for w in doc.wires_into(dst)}
        out_kind = doc.output_ports(src)[src_port].kind if src in doc.nodes and src_port < len(
            doc.output_ports(src)) else "tensor"
        for i, p in enumerate(ports):
            if i not in taken and (p.kind == "tensor" or out_kind == "state"):
                return i
        return 0 if ports else f"'{node.name}' takes no inputs."

    def wire_problem(self, src: str, src_port: int, dst: str, slot: int) -> str | None:
        """Why a wire dropped on this drawn slot would be refused, or None."""
        port = self.resolve_port(src, src_port, dst, slot)
        return port if isinstance(port, str) else self.doc.check_wire(src, src_port, dst, port)

    def request_wire(self, src: str, src_port: int, dst: str, slot: int) -> str | None:
        """Wire src's output to dst; returns None when done, else the reason it was refused (also shown)."""
        reason = self.wire_problem(src, src_port, dst, slot)
        port = self.resolve_port(src, src_port, dst, slot)
        if reason:
            self.statusMessage.emit(f"Wire refused: {reason}")
            return reason
        self.push(commands.AddWire(Wire(src, src_port, dst, port)))
        return None

    def remove_wire(self, wire: Wire) -> None:
        self.push(commands.RemoveWire(wire))

    # -- editing the selection ---------------------------------------------------------------------------------
    def delete_selection(self) -> None:
        nodes = self.scene.selected_node_ids()
        wires = [w for w in self.scene.selected_wires() if w.src not in nodes and w.dst not in nodes]
        parts = [commands.RemoveWire(w) for w in wires]
        if nodes:
            parts.append(commands.RemoveNodes(self.doc, nodes))
        if parts:
            self.push(parts[0] if len(parts) == 1 else commands.Macro(f"Delete {len(parts)} item(s)", parts))

    def call_again(self) -> str | None:
        """A new call of the one selected layer (its layer shared between the calls), placed below it and
        selected so it can be wired; returns the new node's id."""
        ids = self.scene.selected_node_ids()
        if len(ids) != 1:
            self.statusMessage.emit("Select one layer to call it again (its calls share one set of weights).")
            return None
        node = self.doc.nodes[ids[0]]
        want = (node.position[0], node.position[1] + node_height(self.doc, node.id) + 40)
        try:
            command = commands.CallAgain(self.doc, node.id, self.scene.free_spot(want, node.class_name))
        except NetweaverError as exc:
            self.statusMessage.emit(str(exc))
            return None
        if not self.push(command):
            return None
        self.scene.select_nodes([command.node.id])
        self.statusMessage.emit(f"'{node.name}' is now called {len(self.doc.calls_of(node.id))} times; wire the new "
                                f"call's input. Its calls share one config and one set of weights.")
        return command.node.id

    def move_nodes(self, moves: dict) -> None:
        self.push(commands.MoveNodes(moves))

    def set_config(self, node_id: str, config: dict) -> str | None:
        """Apply a config edit; returns the engine's reason when the config is impossible (nothing changes)."""
        try:
            command = commands.SetConfig(self.doc, node_id, config)
            self.stack.push(command)
        except NetweaverError as exc:
            self.statusMessage.emit(str(exc))
            return str(exc)
        return None

    def rename(self, node_id: str, name: str) -> str | None:
        config = dict(self.doc.nodes[node_id].config)
        config["name"] = name
        return self.set_config(node_id, config)

    def copy_fragment(self) -> dict | None:
        ids = self.scene.selected_node_ids()
        return self.doc.fragment(ids) if ids else None

    def paste_fragment(self, fragment: dict) -> list[str]:
        self.paste_count += 1
        offset = (40.0 * self.paste_count, 40.0 * self.paste_count)
        return self.push_selecting_new(lambda: commands.paste_command(self.doc, fragment, offset))

    def push_selecting_new(self, make_command) -> list[str]:
        """Make a command and run it; the nodes it adds become the selection. A refusal (when making or running
        it) is shown and changes nothing. Returns the new nodes' ids."""
        before = set(self.doc.nodes)
        try:
            command = make_command()
        except NetweaverError as exc:
            self.statusMessage.emit(str(exc))
            return []
        if not self.push(command):
            return []
        new = [nid for nid in self.doc.nodes if nid not in before]
        self.scene.select_nodes(new)
        return new

    def duplicate(self) -> list[str]:
        fragment = self.copy_fragment()
        return self.paste_fragment(fragment) if fragment else []

    def auto_layout(self) -> None:
        if not self.doc.nodes:
            return
        sizes = {nid: (NODE_WIDTH, node_height(self.doc, nid)) for nid in self.doc.nodes}
        try:
            layout = layered_layout(self.doc, dx=NODE_WIDTH + COLUMN_GAP, dy=60, sizes=sizes)
        except NetweaverError as exc:
            self.statusMessage.emit(str(exc))
            return
        moves = {nid: (self.doc.nodes[nid].position, pos) for nid, pos in layout.items()
                 if tuple(self.doc.nodes[nid].position) != tuple(pos)}
        if moves:
            self.push(commands.MoveNodes(moves, "Auto-layout"))


def fragment_to_text(fragment: dict) -> str:
    return json.dumps(fragment)


def fragment_from_text(text: str) -> dict | None:
    try:
        data = json.loads(text)
    except (ValueError, TypeError):
        return None
    return data if isinstance(data, dict) and data.get("format") == "netweaver-fragment" else None

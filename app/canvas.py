"""The node editor: a QGraphicsScene that mirrors a `Document`, and the view that zooms and pans it.

The scene never changes the document itself: it turns gestures (drop a layer, drag a wire, move nodes, delete) into
requests the `Editor` makes into commands, and rebuilds its items from the document's events. Nodes and wires paint
themselves (no child widgets), which keeps a 300-node scene fast to build and to repaint.
"""

from __future__ import annotations

import bisect

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPainterPathStroker, QPen,
                           QPolygonF)
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QGraphicsScene, QGraphicsView

from app.theme import Theme
from core import layer_schema
from core.document import Document, NodeInfo, Wire, state_units

LAYER_MIME = "application/x-netweaver-layer"
NODE_WIDTH = 190.0
HEADER = 38.0
PORT_ROW = 18.0
FOOTER = 20.0
PORT_R = 5.5
COLUMN_GAP = 150.0        # between auto-layout columns: room for a wire label such as "(None, None, 64)"
LABEL_HEIGHT = 18.0
LABEL_PAD = 12.0          # around the text: hinting at a zoomed scale draws text a little wider than measured
LABEL_CLEARANCE = PORT_R + 3.0   # a label keeps this far from every layer's edge, so it never covers a port
ROUTE_CLEARANCE = 12.0    # a wire routed around layers passes them this far off
# where along its wire a label may sit (fractions of the wire's length), the middle first
LABEL_SPOTS = (0.5, 0.44, 0.56, 0.38, 0.62, 0.32, 0.68, 0.26, 0.74, 0.2, 0.8, 0.15, 0.85)
_GRID = 200.0             # cell size of the spatial hash that keeps label placement fast on large graphs
# The calls of one shared layer wear one of these (a stripe, a badge and the link between them); readable on both
# themes and apart from the layer-group header colours.
SHARED_COLORS = ("#d6336c", "#1c7ed6", "#2b8a3e", "#e8590c", "#7048e8", "#0c8599", "#a61e4d", "#5c940d")


def spec_text(spec, dtype: bool = False) -> str:
    """A tensor's shape as a wire shows it; raw text (dtype string) always says so, as the shape alone reads like
    numbers. `dtype`: name the dtype whatever it is (tooltips)."""
    text = spec.label()
    return f"{text} {spec.dtype}" if dtype or str(spec.dtype) == "string" else text


def _height(in_ports, out_ports) -> float:
    return HEADER + max(len(in_ports), len(out_ports), 1) * PORT_ROW + FOOTER


def node_height(doc: Document, node_id: str) -> float:
    return _height(doc.input_ports(node_id), doc.output_ports(node_id))


def new_node_height(class_name: str) -> float:
    """The drawn height of a fresh layer of this class (its default config's ports)."""
    config = layer_schema.default_config(class_name)
    return _height(layer_schema.input_ports(class_name, config), layer_schema.output_ports(class_name, config))


def wire_path(a: QPointF, b: QPointF, obstacles=()) -> QPainterPath:
    """A wire from output port a to input port b: one S-curve, or, when that would pass behind a layer (a rect in
    `obstacles`), a run along a free horizontal lane with a bend at each end."""
    dx = max(40.0, abs(b.x() - a.x()) * 0.5)
    curve = QPainterPath(a)
    curve.cubicTo(a + QPointF(dx, 0), b - QPointF(dx, 0), b)
    bend = min(40.0, (b.x() - a.x()) / 4)
    blocking = [r for r in obstacles if r.left() < b.x() - bend and r.right() > a.x() + bend]
    if bend < 15.0 or not blocking or not _hits(curve, blocking):
        return curve
    lane = _free_lane(a.y(), b.y(), blocking)
    path = QPainterPath(a)
    path.cubicTo(QPointF(a.x() + bend, a.y()), QPointF(a.x() + bend, lane), QPointF(a.x() + 2 * bend, lane))
    path.lineTo(QPointF(b.x() - 2 * bend, lane))
    path.cubicTo(QPointF(b.x() - bend, lane), QPointF(b.x() - bend, b.y()), b)
    return path


def _hits(path: QPainterPath, rects, samples: int = 32) -> bool:
    points = [path.pointAtPercent(i / samples) for i in range(1, samples)]
    return any(r.contains(p) for r in rects for p in points)


def _free_lane(ya: float, yb: float, rects) -> float:
    """The y nearest both ends at which a horizontal run clears every rect by ROUTE_CLEARANCE."""
    blocked = sorted((r.top() - ROUTE_CLEARANCE, r.bottom() + ROUTE_CLEARANCE) for r in rects)
    merged: list[list[float]] = []
    for top, bottom in blocked:
        if merged and top <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], bottom)
        else:
            merged.append([top, bottom])
    candidates = [ya, yb, (ya + yb) / 2] + [y for span in merged for y in span]
    free = [y for y in candidates if not any(top < y < bottom for top, bottom in merged)]
    return min(free, key=lambda y: abs(y - ya) + abs(y - yb))


class _RectGrid:
    """Rects bucketed by a coarse grid: 'does this rect hit any of them' looks at a few, not all."""

    def __init__(self):
        self.cells: dict[tuple[int, int], list[QRectF]] = {}

    def _keys(self, r: QRectF):
        for i in range(int(r.left() // _GRID), int(r.right() // _GRID) + 1):
            for j in range(int(r.top() // _GRID), int(r.bottom() // _GRID) + 1):
                yield i, j

    def add(self, r: QRectF) -> None:
        for k in self._keys(r):
            self.cells.setdefault(k, []).append(r)

    def hits(self, r: QRectF) -> bool:
        return any(other.intersects(r) for k in self._keys(r) for other in self.cells.get(k, ()))


class NodeItem(QGraphicsItem):
    def __init__(self, scene: "GraphScene", node_id: str):
        super().__init__()
        self.graph_scene = scene
        self.node_id = node_id
        self.info: NodeInfo | None = None
        self.wires: list[WireItem] = []
        self.shared: tuple[int, int, QColor] | None = None  # (this call's number, calls in all, colour) when shared
        self.setFlags(QGraphicsItem.ItemIsMovable | QGraphicsItem.ItemIsSelectable
                      | QGraphicsItem.ItemSendsGeometryChanges)
        self.setAcceptHoverEvents(True)
        self.setZValue(1)
        # Repaints (panning, selection elsewhere, a status change of another node) blit the cached picture
        # instead of calling paint() in Python for every node.
        self.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.sync()

    # -- geometry -------------------------------------------------------------------------------------------------
    def sync(self) -> None:
        doc = self.graph_scene.doc
        node = doc.nodes[self.node_id]
        self.name, self.class_name = node.name, node.class_name
        self.kind_label = layer_schema.kind_label(node.class_name, node.config)
        self.nested = layer_schema.is_nested_model(node.class_name)
        if self.nested:
            inner = [entry for entry in node.config.get("layers", []) if entry.get("class_name") != "InputLayer"]
            self.kind_label = f"{node.class_name} model · {len(inner)} layer{'s' if len(inner) != 1 else ''}"
        self.in_ports = doc.input_ports(self.node_id)
        self.out_ports = doc.output_ports(self.node_id)
        self.group = layer_schema.schema(node.class_name).group if node.class_name else "Custom"
        self.prepareGeometryChange()
        self.height = node_height(doc, self.node_id)
        self.setPos(QPointF(*node.position))
        self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(-PORT_R - 2, -2, NODE_WIDTH + 2 * PORT_R + 4, self.height + 4)

    def body_rect(self) -> QRectF:
        """The drawn body in scene coordinates (ports stick out of it by PORT_R)."""
        return QRectF(self.pos().x(), self.pos().y(), NODE_WIDTH, self.height)

    def port_pos(self, side: str, slot: int) -> QPointF:
        """A port's centre in item coordinates; side 'in' (left) or 'out' (right)."""
        y = HEADER + (slot + 0.5) * PORT_ROW
        return QPointF(0.0 if side == "in" else NODE_WIDTH, y)

    def port_scene_pos(self, side: str, slot: int) -> QPointF:
        return self.mapToScene(self.port_pos(side, slot))

    def port_at(self, scene_pos: QPointF, slack: float = 9.0):
        """('in'|'out', slot) of the port under a scene point, or None."""
        p = self.mapFromScene(scene_pos)
        for side, ports in (("in", self.in_ports), ("out", self.out_ports)):
            for i in range(len(ports)):
                c = self.port_pos(side, i)
                if abs(p.x() - c.x()) <= slack and abs(p.y() - c.y()) <= slack:
                    return side, i
        return None

    # -- painting ---------------------------------------------------------------------------------------------
    def paint(self, painter: QPainter, option, widget=None) -> None:
        theme = self.graph_scene.theme
        status = self.info.status if self.info else "incomplete"
        rect = QRectF(0, 0, NODE_WIDTH, self.height)
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        if lod < 0.4:  # too small to read: a coloured block keeps the structure visible and the repaint fast
            painter.setPen(QPen(theme.error if status == "error" else (
                theme.selection if self.isSelected() else theme.node_border), 0))
            painter.setBrush(theme.group_color(self.group))
            painter.drawRect(rect)
            if self.shared is not None:  # the shared layer's colour still tells its calls apart
                painter.fillRect(QRectF(0, 0, NODE_WIDTH, HEADER / 2), self.shared[2])
            return
        painter.setRenderHint(QPainter.Antialiasing, True)
        border = theme.error if status == "error" else (theme.selection if self.isSelected() else theme.node_border)
        painter.setPen(QPen(border, 2.4 if status == "error" or self.isSelected() else 1.2))
        painter.setBrush(theme.node_error_fill if status == "error" else theme.node_fill)
        painter.drawRoundedRect(rect, 7, 7)
        if self.nested:  # a group: a second outline says there is a graph inside (double-click opens it)
            painter.setBrush(Qt.NoBrush)
            painter.drawRoundedRect(rect.adjusted(3, 3, -3, -3), 5, 5)
        header = QPainterPath()
        header.addRoundedRect(QRectF(1, 1, NODE_WIDTH - 2, HEADER - 2), 6, 6)
        painter.fillPath(header, theme.group_color(self.group))
        painter.setPen(theme.header_text)
        painter.setFont(self.graph_scene.title_font)
        painter.drawText(QRectF(9, 3, NODE_WIDTH - 18, 18), Qt.AlignLeft | Qt.AlignVCenter, self.name)
        painter.setFont(self.graph_scene.small_font)
        painter.drawText(QRectF(9, 19, NODE_WIDTH - 18, 16), Qt.AlignLeft | Qt.AlignVCenter, self.kind_label)
        outs = self.info.outputs if self.info else []
        for i, port in enumerate(self.in_ports):
            self._paint_port(painter, theme, "in", i, port.kind, masked=False)
            painter.setPen(theme.text_dim)
            painter.drawText(QRectF(10, HEADER + i * PORT_ROW, NODE_WIDTH / 2, PORT_ROW), Qt.AlignVCenter,
                             port.name)
        for i, port in enumerate(self.out_ports):
            masked = i < len(outs) and outs[i].masked
            self._paint_port(painter, theme, "out", i, port.kind, masked)
            painter.setPen(theme.text_dim)
            painter.drawText(QRectF(NODE_WIDTH / 2, HEADER + i * PORT_ROW, NODE_WIDTH / 2 - 10, PORT_ROW),
                             Qt.AlignVCenter | Qt.AlignRight, "masked" if masked and port.name == "output" else port.name)
        painter.setPen(theme.error if status == "error" else theme.text_dim)
        footer = QRectF(9, self.height - FOOTER, NODE_WIDTH - 18, FOOTER - 2)
        painter.drawText(footer, Qt.AlignVCenter | Qt.AlignLeft, self.footer_text())
        if self.shared is not None:
            self._paint_shared_badge(painter)

    def _paint_shared_badge(self, painter: QPainter) -> None:
        """A stripe along the body and a 'shared k/n' badge in the header, in the layer's own colour."""
        number, total, color = self.shared
        painter.setPen(Qt.NoPen)
        painter.setBrush(color)
        painter.drawRoundedRect(QRectF(2, HEADER, 4, self.height - HEADER - 3), 2, 2)
        text = f"shared {number}/{total}"
        width = self.graph_scene.small_metrics.horizontalAdvance(text) + 10
        badge = QRectF(NODE_WIDTH - width - 6, 21, width, 14)
        painter.drawRoundedRect(badge, 7, 7)
        painter.setPen(QColor("#ffffff"))
        painter.setFont(self.graph_scene.small_font)
        painter.drawText(badge, Qt.AlignCenter, text)

    def set_shared(self, shared: tuple[int, int, QColor] | None) -> None:
        if shared != self.shared:
            self.shared = shared
            self.setToolTip(self.node_tip())
            self.update()

    def footer_text(self) -> str:
        info = self.info
        if info is None or info.status in ("incomplete", "waiting"):
            return "not connected" if info is None or info.status == "incomplete" else "waiting for inputs"
        if info.status == "error":
            return "error: hover for details"
        if self.shared is not None:
            return f"{info.params:,} params (shared)"
        return f"{info.params:,} params"

    def _paint_port(self, painter, theme, side, slot, kind, masked) -> None:
        c = self.port_pos(side, slot)
        color = theme.state_port if kind == "state" else (theme.mask_port if masked else theme.tensor_port)
        painter.setPen(QPen(theme.node_border, 1))
        painter.setBrush(color)
        if kind == "state":  # a diamond: states are not ordinary data tensors
            painter.drawPolygon(QPolygonF([c + QPointF(0, -PORT_R - 1), c + QPointF(PORT_R + 1, 0),
                                           c + QPointF(0, PORT_R + 1), c + QPointF(-PORT_R - 1, 0)]))
        else:
            painter.drawEllipse(c, PORT_R, PORT_R)

    def set_info(self, info: NodeInfo) -> None:
        # Every refresh re-applies the whole analysis; a node it leaves as it was is not touched, since setting a
        # graphics item's tooltip costs about a millisecond (the end of a training run refreshes every node).
        changed = info != self.info
        self.info = info
        tip = self.node_tip()
        if tip != self.toolTip():
            self.setToolTip(tip)
        if changed:
            self.update()

    def node_tip(self) -> str:
        info = self.info
        tip = f"{self.name} ({self.kind_label})"
        if info is not None and info.status == "ok":
            shapes = ", ".join(spec_text(s, dtype=True) for s in info.outputs)
            tip += f"\noutput: {shapes}\n{info.params:,} parameters"
        elif info is not None and info.error:
            tip += f"\n{info.error}"
        if self.nested:
            tip += "\na nested model: double-click to open its graph"
        if self.shared is not None:
            tip += (f"\ncall {self.shared[0]} of {self.shared[1]} of the shared layer '{self.name}': its calls share "
                    f"one config and one set of weights")
        return tip

    def port_tip(self, side: str, slot: int) -> str:
        if side == "out":
            port = self.out_ports[slot]
            outs = self.info.outputs if self.info and self.info.status == "ok" else []
            shape = f" {spec_text(outs[slot], dtype=True)}" if slot < len(outs) else ""
            mask = ", carries a mask" if slot < len(outs) and outs[slot].masked else ""
            return f"{port.name}{shape}{mask} — drag to an input to wire it"
        port = self.in_ports[slot]
        if port.kind != "state":
            return f"{port.name}: takes a tensor"
        node = self.graph_scene.doc.nodes[self.node_id]
        units = state_units(node.class_name, node.config)
        shape = f" of shape (None, {units})" if units is not None else ""
        return f"{port.name}: takes an initial state, any tensor{shape} (a state output or a layer's output)"

    def hoverEnterEvent(self, event):
        self.graph_scene.show_share_links(self.node_id)
        super().hoverEnterEvent(event)

    def hoverLeaveEvent(self, event):
        self.graph_scene.show_share_links(None)
        super().hoverLeaveEvent(event)

    def hoverMoveEvent(self, event):
        port = self.port_at(event.scenePos())
        self.setToolTip(self.port_tip(*port) if port is not None else self.node_tip())
        super().hoverMoveEvent(event)

    def itemChange(self, change, value):
        if change == QGraphicsItem.ItemPositionHasChanged:
            for w in self.wires:
                w.update_path()
            # other wires across where this node was or is now may need a new route, and labels a new place
            x = self.pos().x()
            last = getattr(self, "_laid_out_x", x)
            self._laid_out_x = x
            self.graph_scene.schedule_wire_layout((min(x, last), max(x, last) + NODE_WIDTH))
            if self.shared is not None:
                self.graph_scene.update_share_links()
        return super().itemChange(change, value)

    def mouseDoubleClickEvent(self, event):
        if event.pos().y() < HEADER:
            self.graph_scene.renameRequested.emit(self.node_id)
            event.accept()
            return
        if self.nested:
            self.graph_scene.openRequested.emit(self.node_id)
            event.accept()
            return
        super().mouseDoubleClickEvent(event)


class WireItem(QGraphicsPathItem):
    def __init__(self, scene: "GraphScene", wire: Wire):
        super().__init__()
        self.graph_scene = scene
        self.wire = wire
        self.label = ""
        self.label_rect: QRectF | None = None  # where the shape label is drawn (scene coords); None: no room, on hover
        self.masked = False
        self.setFlags(QGraphicsItem.ItemIsSelectable)
        self.setZValue(0)
        self.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.update_path()

    def endpoints(self) -> tuple[QPointF, QPointF]:
        items = self.graph_scene.node_items
        src, dst = items[self.wire.src], items[self.wire.dst]
        return (src.port_scene_pos("out", self.wire.src_port),
                dst.port_scene_pos("in", self.graph_scene.doc.port_slot(self.wire)))

    def update_path(self) -> None:
        a, b = self.endpoints()
        self._a, self._b = a, b
        self.prepareGeometryChange()
        self.setPath(wire_path(a, b, self.graph_scene.obstacles_between(a, b, self.wire)))
        self._update_bounds()

    def set_spec(self, spec) -> bool:
        """Show the tensor's shape; True when the label's text changed (it needs a place)."""
        label = spec_text(spec) if spec is not None else ""
        changed = label != self.label
        self.label = label
        self.masked = bool(spec is not None and spec.masked)
        self.setToolTip((spec_text(spec, dtype=True) if spec is not None else "") +
                        (" — carries a mask" if self.masked else ""))
        self.update()
        return changed

    def label_size(self) -> tuple[float, float]:
        return self.graph_scene.small_metrics.horizontalAdvance(self.label) + 2 * LABEL_PAD, LABEL_HEIGHT

    def set_label_rect(self, rect: QRectF | None) -> None:
        if rect != self.label_rect:
            self.prepareGeometryChange()
            self.label_rect = rect
            self._update_bounds()
            self.update()

    def _update_bounds(self) -> None:
        # kept, not computed per call: Qt asks every visible item for its bounds several times per repaint
        rect = super().boundingRect().adjusted(-2, -2, 2, 2)
        self._bounds = rect.united(self.label_rect.adjusted(-2, -2, 2, 2)) if self.label_rect is not None else rect

    def boundingRect(self) -> QRectF:
        return self._bounds

    def shape(self) -> QPainterPath:
        stroker = QPainterPathStroker()
        stroker.setWidth(10)
        return stroker.createStroke(self.path())

    def paint(self, painter: QPainter, option, widget=None) -> None:
        theme = self.graph_scene.theme
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        if lod < 0.4:  # zoomed far out: a straight hairline reads the same and costs far less than a curve
            painter.setPen(QPen(theme.selection if self.isSelected() else theme.wire, 0))
            painter.drawLine(self._a, self._b)
            return
        painter.setRenderHint(QPainter.Antialiasing, True)
        color = theme.selection if self.isSelected() else (theme.mask_wire if self.masked else theme.wire)
        pen = QPen(color, 2.6 if self.isSelected() else 1.8)
        if self.masked:
            pen.setStyle(Qt.DashLine)
        painter.setPen(pen)
        painter.setBrush(Qt.NoBrush)
        painter.drawPath(self.path())
        if self.label and self.label_rect is not None:
            box = self.label_rect
            painter.setPen(Qt.NoPen)
            painter.setBrush(theme.label_fill)
            painter.drawRoundedRect(box, 4, 4)
            painter.setPen(theme.mask_wire if self.masked else theme.text)
            painter.setFont(self.graph_scene.small_font)
            # never clipped to the box: a scaled, hinted font can come out wider than the metrics said
            painter.drawText(box, Qt.AlignCenter | Qt.TextDontClip, self.label)


class GraphScene(QGraphicsScene):
    """Mirrors the document; user gestures become the signals below, which the Editor turns into commands."""

    wireRequested = Signal(str, int, str, int)   # src id, src port, dst id, dst slot (drawn position)
    nodesMoved = Signal(dict)                     # id -> ((old x, y), (new x, y))
    layerDropped = Signal(str, QPointF)           # class name, scene position
    renameRequested = Signal(str)
    wireDetached = Signal(object)                 # a wire pulled off its input port (to drop elsewhere)
    statusMessage = Signal(str)
    contextMenuRequested = Signal(object)         # screen position (QPoint); the selection is what it acts on
    openRequested = Signal(str)                   # a nested model's node: show its inner graph

    def __init__(self, doc: Document, theme: Theme, parent=None):
        super().__init__(parent)
        self.theme = theme
        self.title_font = QFont()
        self.title_font.setBold(True)
        self.title_font.setPointSizeF(9.5)
        self.small_font = QFont()
        self.small_font.setPointSizeF(8.0)
        self.small_metrics = QFontMetricsF(self.small_font)
        self.node_items: dict[str, NodeItem] = {}
        self.wire_items: dict[Wire, WireItem] = {}
        self._drag_wire: QGraphicsPathItem | None = None
        self._drag_from = None
        self._press_positions: dict[str, tuple[float, float]] = {}
        self.wire_checker = None  # (src, port, dst, slot) -> reason or None; the Editor sets it
        self.setBackgroundBrush(theme.canvas)
        # Routes and labels depend on every node's place: redone once per event-loop turn after nodes move.
        self._wire_layout_timer = QTimer(self)
        self._wire_layout_timer.setSingleShot(True)
        self._wire_layout_timer.setInterval(0)
        self._wire_layout_timer.timeout.connect(self.layout_wires)
        self._reroute_all = True
        self._reroute_spans: list[tuple[float, float]] = []  # x ranges where layers moved since the last layout
        self._bodies_by_x = None
        self._share_links: list[QGraphicsPathItem] = []  # lines between the calls of a hovered or selected layer
        self._hovered: str | None = None
        self.selectionChanged.connect(self.update_share_links)
        self.set_document(doc)

    # -- document events ------------------------------------------------------------------------------------
    def set_document(self, doc: Document) -> None:
        self.doc = doc
        doc.subscribe(self.on_document_event)
        self.rebuild()

    def rebuild(self) -> None:
        self.clear()
        self.node_items, self.wire_items = {}, {}
        self._drag_wire = None
        self._share_links, self._hovered = [], None
        for nid in self.doc.nodes:
            self._add_node_item(nid)
        for w in self.doc.wires:
            self._add_wire_item(w)
        self.schedule_wire_layout()

    def _add_node_item(self, nid: str) -> None:
        item = NodeItem(self, nid)
        self.node_items[nid] = item
        self.addItem(item)

    def _add_wire_item(self, w: Wire) -> None:
        item = WireItem(self, w)
        self.wire_items[w] = item
        self.node_items[w.src].wires.append(item)
        self.node_items[w.dst].wires.append(item)
        self.addItem(item)

    def on_document_event(self, event: str, payload) -> None:
        if event != "weights_changed":
            self.schedule_wire_layout()
        if event == "node_added":
            self._add_node_item(payload.id)
        elif event == "node_removed":
            item = self.node_items.pop(payload.id)
            self.removeItem(item)
            if self._hovered == payload.id:
                self._hovered = None
            self.update_share_links()
        elif event == "node_moved":
            item = self.node_items[payload.id]
            if (item.pos().x(), item.pos().y()) != payload.position:
                item.setPos(QPointF(*payload.position))
        elif event == "config_changed":
            item = self.node_items[payload.id]
            item.sync()
            for w in item.wires:
                w.update_path()
        elif event == "wire_added":
            self._add_wire_item(payload)
            self._resync_ports(payload.dst)
        elif event == "wire_removed":
            item = self.wire_items.pop(payload)
            for nid in (payload.src, payload.dst):
                node_item = self.node_items.get(nid)
                if node_item is not None and item in node_item.wires:
                    node_item.wires.remove(item)
            self.removeItem(item)
            if payload.dst in self.node_items:
                self._resync_ports(payload.dst)
        elif event == "reset":
            self.rebuild()

    def _resync_ports(self, nid: str) -> None:
        """A merge node grows or shrinks a port with each wire."""
        item = self.node_items[nid]
        if layer_schema.is_merge(item.class_name):
            item.sync()
            for w in item.wires:
                w.update_path()

    def apply_analysis(self) -> None:
        """Show the engine's shapes, parameter counts and errors on nodes and wires."""
        info = self.doc.analyze()
        shared = self.shared_marks()
        for nid, item in self.node_items.items():
            item.set_shared(shared.get(nid))
            item.set_info(info[nid])
        self.update_share_links()
        relabelled = []
        for w, item in self.wire_items.items():
            src = info.get(w.src)
            if item.set_spec(src.outputs[w.src_port] if src and src.status == "ok" and w.src_port < len(src.outputs)
                             else None):
                relabelled.append(item)
        if relabelled:
            self.layout_labels(relabelled)

    # -- shared layers --------------------------------------------------------------------------------------------
    def shared_marks(self) -> dict[str, tuple[int, int, QColor]]:
        """For each call of a shared layer: its number among the layer's calls, how many there are, and the
        layer's colour (shared layers take the palette in document order)."""
        groups: dict[str, list[str]] = {}
        for nid, node in self.doc.nodes.items():
            groups.setdefault(node.layer_key, []).append(nid)
        marks = {}
        shared = [calls for calls in groups.values() if len(calls) > 1]
        for i, calls in enumerate(shared):
            color = QColor(SHARED_COLORS[i % len(SHARED_COLORS)])
            for k, nid in enumerate(calls):
                marks[nid] = (k + 1, len(calls), color)
        return marks

    def show_share_links(self, node_id: str | None) -> None:
        """Link the calls of the layer under the pointer (None: the pointer left it)."""
        self._hovered = node_id
        self.update_share_links()

    def update_share_links(self) -> None:
        """Draw a dashed line through the calls of each shared layer that is hovered or selected."""
        for item in self._share_links:
            self.removeItem(item)
        self._share_links = []
        chosen = [nid for nid in [self._hovered] + self.selected_node_ids() if nid in self.node_items]
        done = set()
        for nid in chosen:
            item = self.node_items[nid]
            key = self.doc.nodes[nid].layer_key
            if item.shared is None or key in done:
                continue
            done.add(key)
            calls = [self.node_items[c] for c in self.doc.calls_of(nid) if c in self.node_items]
            path = QPainterPath()
            for a, b in zip(calls, calls[1:]):
                pa = a.mapToScene(QPointF(NODE_WIDTH / 2, HEADER / 2))
                pb = b.mapToScene(QPointF(NODE_WIDTH / 2, HEADER / 2))
                path.moveTo(pa)
                path.lineTo(pb)
            link = QGraphicsPathItem(path)
            link.setPen(QPen(item.shared[2], 2.5, Qt.DashLine))
            link.setZValue(2.5)  # above the nodes, so the line reads as joining them
            link.setData(0, self.doc.nodes[nid].name)
            self.addItem(link)
            self._share_links.append(link)

    def share_link_layers(self) -> list[str]:
        """Names of the layers whose calls are linked now (for tests and the status bar)."""
        return [link.data(0) for link in self._share_links]

    # -- wire routes and labels -------------------------------------------------------------------------------
    def schedule_wire_layout(self, span: tuple[float, float] | None = None) -> None:
        """Route and label again on the next event-loop turn: every wire, or (while a layer is dragged) only the
        wires crossing the x range `span`, so a drag on a large graph stays smooth."""
        if span is None:
            self._reroute_all = True
        else:
            self._reroute_spans.append(span)
        self._wire_layout_timer.start()

    def obstacles_between(self, a: QPointF, b: QPointF, wire: Wire) -> list[QRectF]:
        """The bodies of the layers (other than the wire's own) standing between two x positions. Only a layout
        pass (`layout_wires`) routes: elsewhere (a wire drawn, a layer dragged) the plain curve is drawn at once and
        routed on the next event-loop turn. Querying the scene instead made Qt re-index every item per wire."""
        if self._bodies_by_x is None or b.x() <= a.x():
            return []
        lefts, bodies = self._bodies_by_x
        first = bisect.bisect_left(lefts, a.x() - NODE_WIDTH)
        last = bisect.bisect_right(lefts, b.x())
        return [rect for rect, nid in bodies[first:last] if nid not in (wire.src, wire.dst)]

    def layout_wires(self) -> None:
        """Re-route the wires around the layers where they are now, then place the labels."""
        self._wire_layout_timer.stop()
        everything, spans = self._reroute_all, self._reroute_spans
        self._reroute_all, self._reroute_spans = False, []
        bodies = sorted(((item.body_rect(), nid) for nid, item in self.node_items.items()), key=lambda b: b[0].x())
        self._bodies_by_x = ([rect.x() for rect, _ in bodies], bodies)
        try:
            for item in self.wire_items.values():
                if everything or any(item._a.x() <= right and item._b.x() >= left for left, right in spans):
                    item.update_path()
        finally:
            self._bodies_by_x = None
        self.layout_labels()

    def layout_labels(self, only: list[WireItem] | None = None) -> None:
        """Put each wire's shape label on its wire where it covers no layer (nor its ports) and no other label:
        the middle if free, else the free spot nearest the middle; a label with no free spot is shown on hover.
        `only`: place just these labels (their text changed) around the others where they are."""
        taken = _RectGrid()
        for item in self.node_items.values():
            taken.add(item.body_rect().adjusted(-LABEL_CLEARANCE, -LABEL_CLEARANCE, LABEL_CLEARANCE,
                                                LABEL_CLEARANCE))
        placing = list(self.wire_items.values()) if only is None else only
        if only is not None:
            moving = {id(w) for w in only}
            for w in self.wire_items.values():
                if w.label_rect is not None and id(w) not in moving:
                    taken.add(w.label_rect.adjusted(-2, -2, 2, 2))
        labelled = [w for w in placing if w.label]
        for w in placing:
            if not w.label:
                w.set_label_rect(None)
        # short wires have the fewest spots: they choose first
        widths: dict[str, float] = {}
        for w in sorted(labelled, key=lambda w: abs(w._b.x() - w._a.x()) + abs(w._b.y() - w._a.y())):
            if w.label not in widths:
                widths[w.label] = w.label_size()[0]
            width, height = widths[w.label], LABEL_HEIGHT
            path = w.path()
            chosen = None
            for t in LABEL_SPOTS:
                p = path.pointAtPercent(t)
                rect = QRectF(p.x() - width / 2, p.y() - height / 2, width, height)
                if not taken.hits(rect):
                    chosen = rect
                    break
            if chosen is not None:
                taken.add(chosen.adjusted(-2, -2, 2, 2))  # a little air between neighbouring labels
            w.set_label_rect(chosen)

    def free_spot(self, want: tuple[float, float], class_name: str) -> tuple[float, float]:
        """The top-left nearest `want` where a new layer of this class covers no other layer (with a margin)."""
        height = new_node_height(class_name)
        bodies = [item.body_rect().adjusted(-20, -20, 20, 20) for item in self.node_items.values()]
        step = 30.0
        for ring in range(60):
            spots = sorted(((i, j) for i in range(-ring, ring + 1) for j in range(-ring, ring + 1)
                            if max(abs(i), abs(j)) == ring), key=lambda ij: (abs(ij[0]) + abs(ij[1]), -ij[1], -ij[0]))
            for i, j in spots:
                rect = QRectF(want[0] + i * step, want[1] + j * step, NODE_WIDTH, height)
                if not any(r.intersects(rect) for r in bodies):
                    return rect.x(), rect.y()
        return want

    def selected_node_ids(self) -> list[str]:
        return [i.node_id for i in self.selectedItems() if isinstance(i, NodeItem)]

    def selected_wires(self) -> list[Wire]:
        return [i.wire for i in self.selectedItems() if isinstance(i, WireItem)]

    def select_nodes(self, ids) -> None:
        ids = set(ids)
        self.blockSignals(True)
        self.clearSelection()
        for nid in ids:
            if nid in self.node_items:
                self.node_items[nid].setSelected(True)
        self.blockSignals(False)
        self.selectionChanged.emit()

    # -- gestures ------------------------------------------------------------------------------------------
    def node_at(self, scene_pos: QPointF) -> NodeItem | None:
        for item in self.items(scene_pos):
            if isinstance(item, NodeItem):
                return item
        # ports stick out of the node's body by their radius
        for item in self.items(QRectF(scene_pos.x() - 10, scene_pos.y() - 10, 20, 20)):
            if isinstance(item, NodeItem) and item.port_at(scene_pos) is not None:
                return item
        return None

    def mousePressEvent(self, event):
        if event.button() == Qt.LeftButton:
            item = self.node_at(event.scenePos())
            port = item.port_at(event.scenePos()) if item is not None else None
            if port is not None and port[0] == "out":
                self._start_wire_drag(item.node_id, port[1])
                event.accept()
                return
            if port is not None and port[0] == "in":  # pull an existing wire off its input to rewire it
                attached = [w for w in item.wires if w.wire.dst == item.node_id
                            and self.doc.port_slot(w.wire) == port[1]]
                if attached:
                    wire = attached[0].wire
                    self.wireDetached.emit(wire)
                    self._start_wire_drag(wire.src, wire.src_port)
                event.accept()
                return
        super().mousePressEvent(event)
        self._press_positions = {i.node_id: (i.pos().x(), i.pos().y()) for i in self.selectedItems()
                                 if isinstance(i, NodeItem)}

    def _start_wire_drag(self, src: str, port: int) -> None:
        self._drag_from = (src, port, self.node_items[src].port_scene_pos("out", port))
        self._drag_wire = QGraphicsPathItem()
        self._drag_wire.setPen(QPen(self.theme.selection, 2, Qt.DashLine))
        self._drag_wire.setZValue(3)
        self.addItem(self._drag_wire)

    def _drop_feedback(self, scene_pos: QPointF) -> None:
        """While dragging a wire over an input port: green if it would fit, red with the reason if not."""
        color = self.theme.selection
        target = self.node_at(scene_pos)
        hit = target.port_at(scene_pos, slack=12) if target is not None else None
        if hit is not None and hit[0] == "in" and self.wire_checker is not None:
            reason = self.wire_checker(self._drag_from[0], self._drag_from[1], target.node_id, hit[1])
            color = self.theme.error if reason else self.theme.ok
            if reason:
                self.statusMessage.emit(reason)
        self._drag_wire.setPen(QPen(color, 2, Qt.DashLine))

    def mouseMoveEvent(self, event):
        if self._drag_wire is not None:
            self._drop_feedback(event.scenePos())
            a = self._drag_from[2]
            b = event.scenePos()
            dx = max(40.0, abs(b.x() - a.x()) * 0.5)
            path = QPainterPath(a)
            path.cubicTo(a + QPointF(dx, 0), b - QPointF(dx, 0), b)
            self._drag_wire.setPath(path)
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event):
        if self._drag_wire is not None:
            self.removeItem(self._drag_wire)
            self._drag_wire = None
            src, port, _ = self._drag_from
            target = self.node_at(event.scenePos())
            hit = target.port_at(event.scenePos(), slack=12) if target is not None else None
            if hit is not None and hit[0] == "in":
                self.wireRequested.emit(src, port, target.node_id, hit[1])
            elif target is not None and target.node_id != src and target.in_ports:
                # dropped on a node body: its first free input
                self.wireRequested.emit(src, port, target.node_id, -1)
            else:
                self.statusMessage.emit("Drop the wire on an input port (left side of a layer).")
            event.accept()
            return
        super().mouseReleaseEvent(event)
        moves = {}
        for nid, old in self._press_positions.items():
            item = self.node_items.get(nid)
            if item is not None and (item.pos().x(), item.pos().y()) != old:
                moves[nid] = (old, (item.pos().x(), item.pos().y()))
        self._press_positions = {}
        if moves:
            self.nodesMoved.emit(moves)

    def cancel_wire_drag(self) -> bool:
        """Abandon the wire being drawn (Escape); True if there was one."""
        if self._drag_wire is None:
            return False
        self.removeItem(self._drag_wire)
        self._drag_wire = None
        return True

    def contextMenuEvent(self, event):
        """Right-click on a layer: it joins (or makes) the selection, then the window shows its menu."""
        item = self.node_at(event.scenePos())
        if item is not None and not item.isSelected():
            self.select_nodes([item.node_id])
        self.contextMenuRequested.emit(event.screenPos())
        event.accept()

    # -- drops from the palette ------------------------------------------------------------------------------
    def dragEnterEvent(self, event):
        if event.mimeData().hasFormat(LAYER_MIME):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event):
        if event.mimeData().hasFormat(LAYER_MIME):
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event):
        if event.mimeData().hasFormat(LAYER_MIME):
            class_name = bytes(event.mimeData().data(LAYER_MIME)).decode("utf-8")
            self.layerDropped.emit(class_name, event.scenePos())
            event.acceptProposedAction()
        else:
            super().dropEvent(event)


class GraphView(QGraphicsView):
    """Zoom around the cursor (wheel), pan (middle button drag or the scroll bars), rubber-band selection."""

    def __init__(self, scene: GraphScene, parent=None):
        super().__init__(scene, parent)
        self.setRenderHints(QPainter.Antialiasing | QPainter.TextAntialiasing)
        self.setDragMode(QGraphicsView.RubberBandDrag)
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)
        self.setViewportUpdateMode(QGraphicsView.MinimalViewportUpdate)
        self.setAcceptDrops(True)
        self.setSceneRect(-100000, -100000, 200000, 200000)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)  # a canvas pans by dragging; bars only clutter it
        self.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self._panning = None

    def zoom(self, factor: float, anchor=None) -> None:
        current = self.transform().m11()
        factor = max(0.1 / current, min(4.0 / current, factor))
        if anchor is None:  # keyboard zoom: around the view's centre
            anchor = self.viewport().rect().center()
        before = self.mapToScene(anchor)
        self.setTransformationAnchor(QGraphicsView.NoAnchor)
        self.scale(factor, factor)
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)
        drift = self.mapFromScene(before) - anchor  # keep the scene point under the cursor where it was
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + drift.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + drift.y())

    def wheelEvent(self, event):
        self.zoom(1.0015 ** event.angleDelta().y(), event.position().toPoint())
        event.accept()

    def fit(self) -> None:
        items = self.scene().items()
        if not items:
            self.resetTransform()
            self.centerOn(0, 0)
            return
        rect = self.scene().itemsBoundingRect().adjusted(-40, -40, 40, 40)
        self.fitInView(rect, Qt.KeepAspectRatio)
        if self.transform().m11() > 1.2:  # a small graph stays at a readable size instead of filling the screen
            self.resetTransform()
            self.scale(1.2, 1.2)
            self.centerOn(rect.center())

    def keyPressEvent(self, event):
        if event.key() == Qt.Key_Escape and self.scene().cancel_wire_drag():
            event.accept()
            return
        super().keyPressEvent(event)

    def mousePressEvent(self, event):
        if event.button() == Qt.MiddleButton:
            self._panning = event.position()
            self.setCursor(Qt.ClosedHandCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event):
        if self._panning is not None:
            delta = event.position() - self._panning
            self._panning = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(delta.y()))
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event):
        if event.button() == Qt.MiddleButton and self._panning is not None:
            self._panning = None
            self.unsetCursor()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        super().drawBackground(painter, rect)
        theme = self.scene().theme
        step = 24.0
        if self.transform().m11() < 0.45:
            return  # a grid finer than a few pixels is noise
        left = int(rect.left() // step) * step
        top = int(rect.top() // step) * step
        painter.setPen(QPen(theme.grid, 0))
        lines = []
        from PySide6.QtCore import QLineF

        x = left
        while x < rect.right():
            lines.append(QLineF(x, rect.top(), x, rect.bottom()))
            x += step
        y = top
        while y < rect.bottom():
            lines.append(QLineF(rect.left(), y, rect.right(), y))
            y += step
        painter.drawLines(lines)


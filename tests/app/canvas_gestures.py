"""Driving the canvas like a user: mouse gestures in view coordinates."""

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication


def view_point(win, scene_point: QPointF) -> QPoint:
    return win.view.mapFromScene(scene_point)


def _send(widget, kind, pos: QPoint, button, buttons):
    event = QMouseEvent(kind, QPointF(pos), QPointF(widget.mapToGlobal(pos)), button, buttons,
                        Qt.NoModifier)
    QApplication.sendEvent(widget, event)


def drag(win, start: QPointF, end: QPointF, steps: int = 5) -> None:
    """Press at a scene point, move in steps, release at another, as a mouse drag does."""
    vp = win.view.viewport()
    a, b = view_point(win, start), view_point(win, end)
    _send(vp, QMouseEvent.MouseButtonPress, a, Qt.LeftButton, Qt.LeftButton)
    for i in range(1, steps + 1):
        p = a + (b - a) * (i / steps)
        _send(vp, QMouseEvent.MouseMove, p, Qt.NoButton, Qt.LeftButton)
    _send(vp, QMouseEvent.MouseButtonRelease, b, Qt.LeftButton, Qt.NoButton)
    QApplication.processEvents()


def wire(win, src_id, dst_id, src_port=0, dst_slot=0) -> None:
    items = win.editor.scene.node_items
    drag(win, items[src_id].port_scene_pos("out", src_port), items[dst_id].port_scene_pos("in", dst_slot))
    win.editor.refresh()


def drop_layer(win, class_name: str, view_pos: QPoint) -> None:
    from PySide6.QtCore import QMimeData
    from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent

    from app.canvas import LAYER_MIME

    mime = QMimeData()
    mime.setData(LAYER_MIME, class_name.encode())
    vp = win.view.viewport()
    pos = QPointF(view_pos)
    for event in (QDragEnterEvent(view_pos, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier),
                  QDragMoveEvent(view_pos, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier),
                  QDropEvent(pos, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)):
        QApplication.sendEvent(vp, event)
    QApplication.processEvents()
    win.editor.refresh()


def select(win, ids) -> None:
    """Select nodes and let the event loop run the (coalesced) inspector and summary updates."""
    win.editor.scene.select_nodes(ids)
    QApplication.processEvents()

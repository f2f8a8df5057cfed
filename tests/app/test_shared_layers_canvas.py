"""Shared layers on the canvas: "Call again" from the context menu and its shortcut, the calls drawn as one layer,
an edit through any call changing them all in one undo step."""

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QAction, QContextMenuEvent, QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMenu

from canvas_gestures import select, view_point, wire
from core.document import Wire


def two_inputs_and_a_dense(win):
    ed = win.editor
    a = ed.add_layer("InputLayer", (0, 0), {"shape": [4]})
    b = ed.add_layer("InputLayer", (0, 300), {"shape": [4]})
    d = ed.add_layer("Dense", (320, 0), {"units": 3})
    ed.refresh()
    win.view.fit()
    wire(win, a, d)
    return a, b, d


def test_no_two_actions_share_a_shortcut(window):
    seen = {}
    for action in window.findChildren(QAction):
        for seq in action.shortcuts():
            key = seq.toString()
            if key:
                assert key not in seen, f"'{action.text()}' and '{seen[key]}' both use {key}"
                seen[key] = action.text()
    assert window.call_again_action.shortcut() == QKeySequence("Ctrl+Shift+D")


def test_call_again_by_shortcut_wire_edit_through_the_second_call_and_undo(window, qtbot):
    a, b, d = two_inputs_and_a_dense(window)
    doc = window.editor.doc
    select(window, [d])
    window.activateWindow()
    QTest.keyClick(window.view.viewport(), Qt.Key_D, Qt.ControlModifier | Qt.ShiftModifier)
    assert len(doc.calls_of(d)) == 2, window.statusBar().currentMessage()
    d2 = doc.calls_of(d)[1]
    assert window.editor.scene.selected_node_ids() == [d2] and doc.nodes[d2].name == "dense"
    window.editor.refresh()
    wire(window, b, d2)
    assert Wire(b, 0, d2, 0) in doc.wires
    items = window.editor.scene.node_items
    assert items[d].shared[:2] == (1, 2) and items[d2].shared[:2] == (2, 2)
    assert items[d].shared[2] == items[d2].shared[2]  # one colour for the layer's calls
    assert window.editor.scene.share_link_layers() == ["dense"]  # the selected call links to the other
    select(window, [a])
    assert window.editor.scene.share_link_layers() == []

    select(window, [d2])
    window.inspector.editors["units"].widget.setValue(7)
    window.editor.refresh()
    assert doc.nodes[d].config["units"] == doc.nodes[d2].config["units"] == 7
    rows = window.summary.row_texts()
    assert [r[0] for r in rows].count("dense (Dense)") == 1  # the layer is listed once, its parameters once
    assert doc.total_params() == 4 * 7 + 7
    window.undo()
    assert doc.nodes[d].config["units"] == doc.nodes[d2].config["units"] == 3


def test_call_again_from_the_context_menu(window, qtbot):
    a, b, d = two_inputs_and_a_dense(window)
    item = window.editor.scene.node_items[d]
    pos = view_point(window, item.body_rect().center())
    vp = window.view.viewport()
    QApplication.sendEvent(vp, QContextMenuEvent(QContextMenuEvent.Mouse, pos, vp.mapToGlobal(pos)))
    menu = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QMenu) and w.objectName() == "canvasMenu"
                and w.isVisible())
    assert window.editor.scene.selected_node_ids() == [d]
    next(act for act in menu.actions() if act.text().startswith("Call")).trigger()
    menu.close()
    assert len(window.editor.doc.calls_of(d)) == 2


def test_a_wire_that_breaks_the_sharing_is_refused_with_the_shapes(window, qtbot):
    a, b, d = two_inputs_and_a_dense(window)
    ed = window.editor
    wide = ed.add_layer("InputLayer", (0, 600), {"shape": [9]})
    select(window, [d])
    d2 = ed.call_again()
    ed.refresh()
    reason = ed.request_wire(wide, 0, d2, 0)
    assert "'dense' is a shared layer" in reason and "(None, 4)" in reason and "(None, 9)" in reason
    assert "(None, 9)" in window.statusBar().currentMessage()
    assert not ed.doc.wires_into(d2)


def test_deleting_a_call_keeps_the_layer_and_its_badge_goes(window, qtbot):
    a, b, d = two_inputs_and_a_dense(window)
    select(window, [d])
    d2 = window.editor.call_again()
    window.editor.refresh()
    select(window, [d])
    window.editor.delete_selection()
    window.editor.refresh()
    assert list(window.editor.doc.nodes)[-1] == d2 and window.editor.scene.node_items[d2].shared is None

"""Shared layers and nested models on the canvas: "Call again" from the context menu and its shortcut, the calls
drawn as one layer, an edit through any call changing them all in one undo step; a nested model opened by
double-click, edited inside and closed through the breadcrumb; a selection nested and expanded."""

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


def test_nest_a_selection_open_it_edit_inside_and_back_out_then_expand(window, qtbot):
    from core.document import Document
    from tests.interop.test_keras_interop import _nested_shared_model

    ed = window.editor
    ed.set_document(Document.from_model(_nested_shared_model()))
    doc = ed.doc
    by_name = {}
    for nid, node in doc.nodes.items():
        by_name.setdefault(node.name, []).append(nid)
    assert not window.breadcrumb.isVisible()
    # double-click the body of the first call of the nested model 'inner' (the header renames)
    item = ed.scene.node_items[by_name["inner"][0]]
    assert item.nested and item.kind_label == "Functional model · 1 layer"
    window.view.centerOn(item)
    QTest.mouseDClick(window.view.viewport(), Qt.LeftButton, Qt.NoModifier,
                      view_point(window, item.mapToScene(item.boundingRect().center() + QPoint(0, 12))))
    assert ed.breadcrumb() == ["outer", "inner"] and window.breadcrumb.isVisible()
    inner = ed.doc
    dense = next(n for n, node in inner.nodes.items() if node.name == "idense")
    select(window, [dense])
    window.inspector.editors["units"].widget.setValue(4)
    ed.refresh()
    window.breadcrumb.buttons[0].click()  # back out: the edit becomes one undo step of the outer model
    assert ed.breadcrumb() == ["outer"] and ed.doc is doc
    assert doc.analyze()[by_name["inner"][1]].outputs[0].shape == (None, 4)  # both calls changed
    window.undo()
    assert doc.analyze()[by_name["inner"][1]].outputs[0].shape == (None, 3)

    select(window, by_name["shared"] + by_name["seqm"])
    window.collapse_action.trigger()
    group = ed.scene.selected_node_ids()
    assert len(group) == 1 and doc.nodes[group[0]].class_name == "Functional" and not doc.errors()
    window.expand_action.trigger()
    assert sorted(doc.nodes[n].name for n in ed.scene.selected_node_ids()) == ["seqm", "shared", "shared"]
    window.undo()
    window.undo()
    assert sorted(n.name for n in doc.nodes.values()) == sorted(sum(([k] * len(v) for k, v in by_name.items()), []))


def test_a_nested_model_that_fails_is_red_and_opens_on_its_failing_layer(window, qtbot):
    import core as keras
    from core import layers
    from core.document import Document

    inner_in = keras.Input((4,), name="inner_in")
    inner = keras.Model(inner_in, layers.Reshape((2, 2), name="square")(inner_in), name="inner")
    x = keras.Input((4,), name="x")
    ed = window.editor
    ed.set_document(Document.from_model(keras.Model(x, inner(x), name="outer")))
    doc = ed.doc
    x_id = next(n for n, node in doc.nodes.items() if node.name == "x")
    group = next(n for n, node in doc.nodes.items() if node.name == "inner")
    ed.set_config(x_id, dict(doc.nodes[x_id].config, shape=[5]))
    ed.refresh()
    item = ed.scene.node_items[group]
    assert item.info.status == "error" and item.footer_text() == "error: hover for details"
    assert ed.open_nested(group)
    failing = ed.scene.selected_node_ids()
    assert [ed.doc.nodes[n].name for n in failing] == ["square"]
    assert ed.scene.node_items[failing[0]].info.status == "error"
    assert "Inside 'inner'" in window.statusBar().currentMessage()
    assert ed.close_nested()  # nothing edited inside: back out without a change
    assert ed.breadcrumb() == ["outer"] and ed.stack.undo_text() == "Change shape of 'x'"  # no step added

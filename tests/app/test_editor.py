"""The node editor driven like a user, offscreen: create, wire, refuse, undo/redo, edit, copy/paste, rename."""

import json

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QGuiApplication

from canvas_gestures import drag, drop_layer, select, view_point, wire
from core.document import Wire


def make_mlp(win):
    """Input(20) -> Dense(16) -> Dense(3), created the way a user does (palette double-click, wire drags)."""
    i = win.add_layer_at_centre("InputLayer")
    win.editor.set_config(i, dict(win.editor.doc.nodes[i].config, shape=[20]))
    a = win.editor.add_layer("Dense", (300, 0), {"units": 16})
    b = win.editor.add_layer("Dense", (600, 0), {"units": 3})
    win.editor.stack.push(__import__("core.commands", fromlist=["MoveNodes"]).MoveNodes(
        {i: (win.editor.doc.nodes[i].position, (0.0, 0.0))}))
    win.editor.refresh()
    win.view.fit()
    wire(win, i, a)
    wire(win, a, b)
    return i, a, b


def test_drag_from_palette_creates_a_node_where_it_is_dropped(window, qtbot):
    drop_layer(window, "Dense", QPoint(300, 200))
    qtbot.waitUntil(lambda: window.inspector.node_id is not None, timeout=2000)
    doc = window.editor.doc
    assert [n.class_name for n in doc.nodes.values()] == ["Dense"]
    node = next(iter(doc.nodes.values()))
    dropped = window.view.mapToScene(QPoint(300, 200))
    assert abs(node.position[0] + 95 - dropped.x()) < 1 and abs(node.position[1] + 20 - dropped.y()) < 1
    assert window.editor.scene.node_items[node.id].isSelected()
    assert window.inspector.title.text().startswith("dense")


def test_palette_search_and_double_click(window, qtbot):
    window.palette.search.setText("dens")
    assert window.palette.visible_layers() == ["Dense", "EinsumDense"]
    window.palette.search.setText("")
    assert {"InputLayer", "Dense", "Activation"} <= set(window.palette.visible_layers())
    tree = window.palette.tree
    item = tree.findItems("Activation", Qt.MatchExactly | Qt.MatchRecursive)[0]
    tree.itemActivated.emit(item, 0)
    assert [n.class_name for n in window.editor.doc.nodes.values()] == ["Activation"]


def test_wiring_by_dragging_shows_shapes_and_param_counts(window, qtbot):
    i, a, b = make_mlp(window)
    doc = window.editor.doc
    assert set(doc.wires) == {Wire(i, 0, a, 0), Wire(a, 0, b, 0)}
    scene = window.editor.scene
    assert scene.wire_items[Wire(a, 0, b, 0)].label == "(None, 16)"
    assert scene.node_items[a].footer_text() == "336 params"
    assert window.summary.row_texts()[1][:3] == ["dense (Dense)", "(None, 16)", "336"]
    assert "Total params: 387" in window.summary.totals.text()


def test_a_wire_that_does_not_fit_is_refused_with_a_status_message(window, qtbot):
    i, a, b = make_mlp(window)
    before = list(window.editor.doc.wires)
    items = window.editor.scene.node_items
    drag(window, items[b].port_scene_pos("out", 0), items[a].port_scene_pos("in", 0))
    assert window.editor.doc.wires == before
    assert "already wired" in window.statusBar().currentMessage()
    window.editor.stack.push(__import__("core.commands", fromlist=["RemoveWire"]).RemoveWire(Wire(i, 0, a, 0)))
    drag(window, items[b].port_scene_pos("out", 0), items[a].port_scene_pos("in", 0))
    assert "cycle" in window.statusBar().currentMessage()
    assert Wire(b, 0, a, 0) not in window.editor.doc.wires


def test_undo_redo_of_every_command_type_through_the_edit_menu(window, qtbot):
    doc = window.editor.doc
    i, a, b = make_mlp(window)
    history = []
    snap = lambda: json.dumps(doc.graph_dict(), sort_keys=True)  # noqa: E731
    history.append(snap())
    item = window.editor.scene.node_items[b]
    start = item.mapToScene(QPointF(60, 10))
    drag(window, start, start + QPointF(80, 120))  # move
    assert doc.nodes[b].position != (600.0, 0.0)
    history.append(snap())
    window.editor.set_config(b, dict(doc.nodes[b].config, units=5))  # property change
    history.append(snap())
    select(window, [b])
    window.editor.delete_selection()  # delete (node and its wire)
    history.append(snap())
    for expected in reversed(history[:-1]):
        window.undo()
        assert snap() == expected
    for _ in range(7):  # the wires, the nodes, the shape edit: back to an empty canvas
        window.undo()
    assert doc.nodes == {}
    while window.editor.stack.can_redo():
        window.redo()
    assert snap() == history[-1]
    window.editor.refresh()
    assert window.undo_action.isEnabled() and not window.redo_action.isEnabled()


def test_property_edit_updates_shapes_and_summary(window, qtbot):
    i, a, b = make_mlp(window)
    select(window, [a])
    spin = window.inspector.editors["units"].widget
    spin.setValue(40)
    window.editor.refresh()
    assert window.editor.scene.wire_items[Wire(a, 0, b, 0)].label == "(None, 40)"
    rows = window.summary.row_texts()
    assert rows[1][:3] == ["dense (Dense)", "(None, 40)", "840"] and rows[2][2] == "123"
    assert "Output: (None, 40)" in window.inspector.status_label.text()


def test_impossible_config_is_refused_by_the_inspector_with_the_reason(window, qtbot):
    i, a, b = make_mlp(window)
    select(window, [a])
    window.inspector._field_edited("units", 0)  # what a file or a typed value can hold; the spin box stops at 1
    assert "'units' must be a positive integer, got 0" in window.inspector.error_label.text()
    assert window.inspector.error_label.isVisibleTo(window.inspector)
    assert window.editor.doc.nodes[a].config["units"] == 16
    assert window.inspector.editors["units"].widget.value() == 16
    name_edit = window.inspector.name_edit
    name_edit.setText("dense_1")  # taken by the other Dense
    name_edit.editingFinished.emit()
    assert "unique" in window.inspector.error_label.text()
    seed = window.inspector.editors["kernel_initializer"].widget.args["seed"]
    seed.setText("{{nope")
    seed.editingFinished.emit()
    assert "is not a value" in window.inspector.error_label.text()


def test_inspector_generated_fields_and_tooltips(window, qtbot):
    i, a, b = make_mlp(window)
    select(window, [a])
    editors = window.inspector.editors
    assert editors["units"].widget.minimum() == 1
    assert "Dimensionality of the output space" in editors["units"].toolTip()
    combo = editors["activation"].widget
    combo.setCurrentText("tanh")
    assert window.editor.doc.nodes[a].config["activation"] == "tanh"
    init = editors["kernel_initializer"].widget
    init.combo.setCurrentText("RandomNormal")
    init = window.inspector.editors["kernel_initializer"].widget
    assert window.editor.doc.nodes[a].config["kernel_initializer"]["class_name"] == "RandomNormal"
    assert "stddev" in init.args
    reg = window.inspector.editors["kernel_regularizer"].widget
    reg.combo.setCurrentText("L2")
    assert window.editor.doc.nodes[a].config["kernel_regularizer"]["class_name"] == "L2"
    window.undo()
    assert window.editor.doc.nodes[a].config.get("kernel_regularizer") is None


def test_node_with_bad_inputs_is_red_with_the_engine_error(window, qtbot):
    i, a, b = make_mlp(window)
    window.editor.set_config(i, dict(window.editor.doc.nodes[i].config, shape=[None]))
    window.editor.refresh()
    item = window.editor.scene.node_items[a]
    assert item.info.status == "error" and "known last input dimension" in item.toolTip()
    select(window, [a])
    assert "known last input dimension" in window.statusBar().currentMessage()
    assert window.validate()[0].startswith("dense:")


def test_copy_paste_within_and_between_windows_and_duplicate(window, qtbot):
    from app.main_window import MainWindow

    i, a, b = make_mlp(window)
    select(window, [a, b])
    assert window.copy()
    data = json.loads(QGuiApplication.clipboard().text())
    assert data["format"] == "netweaver-fragment" and len(data["nodes"]) == 2
    new = window.paste()
    doc = window.editor.doc
    assert len(new) == 2 and len(doc.nodes) == 5 and len(doc.wires) == 3
    assert sorted(doc.nodes[n].name for n in new) == ["dense_2", "dense_3"]
    window.undo()
    assert len(doc.nodes) == 3
    select(window, [b])
    assert len(window.duplicate()) == 1 and len(doc.nodes) == 4
    other = MainWindow()
    qtbot.addWidget(other)
    other.ask_unsaved = lambda: "discard"
    select(window, [a, b])
    window.copy()
    pasted = other.paste()
    assert [other.editor.doc.nodes[n].name for n in pasted] == ["dense", "dense_1"]
    assert len(other.editor.doc.wires) == 1
    select(window, [b])
    window.cut()
    assert b not in doc.nodes


def test_rename_by_double_click(window, qtbot):
    i, a, b = make_mlp(window)
    item = window.editor.scene.node_items[a]
    pos = view_point(window, item.mapToScene(QPointF(40, 10)))
    qtbot.mouseDClick(window.view.viewport(), Qt.LeftButton, pos=pos)
    edit = window._rename_edit
    assert edit is not None and edit.text() == "dense"
    edit.setText("hidden")
    qtbot.keyClick(edit, Qt.Key_Return)
    assert window.editor.doc.nodes[a].name == "hidden"
    qtbot.waitUntil(lambda: window.summary.row_texts()[2][3] == "hidden[0][0]", timeout=2000)


def test_selection_rubber_band_select_all_and_summary_row(window, qtbot):
    i, a, b = make_mlp(window)
    window.select_all()
    assert set(window.editor.scene.selected_node_ids()) == {i, a, b}
    window.editor.scene.clearSelection()
    rect_items = [window.editor.scene.node_items[n] for n in (i, a)]
    top_left = rect_items[0].sceneBoundingRect().topLeft() - QPointF(20, 20)
    bottom_right = rect_items[1].sceneBoundingRect().bottomRight() + QPointF(20, 20)
    drag(window, top_left, bottom_right)
    assert set(window.editor.scene.selected_node_ids()) == {i, a}
    window.summary.table.selectRow(2)
    assert window.editor.scene.selected_node_ids() == [b]
    ctrl_point = view_point(window, window.editor.scene.node_items[i].mapToScene(QPointF(60, 60)))
    qtbot.mouseClick(window.view.viewport(), Qt.LeftButton, Qt.ControlModifier, ctrl_point)
    assert set(window.editor.scene.selected_node_ids()) == {i, b}


def test_zoom_fit_and_auto_layout(window, qtbot):
    i, a, b = make_mlp(window)
    window.editor.stack.push(__import__("core.commands", fromlist=["MoveNodes"]).MoveNodes(
        {a: (window.editor.doc.nodes[a].position, (50.0, 900.0))}))
    scale = window.view.transform().m11()
    under_cursor = window.view.mapToScene(QPoint(100, 100))
    window.view.zoom(1.25, QPoint(100, 100))
    assert abs(window.view.transform().m11() - scale * 1.25) < 1e-6
    after = window.view.mapToScene(QPoint(100, 100))
    assert abs(after.x() - under_cursor.x()) < 2 and abs(after.y() - under_cursor.y()) < 2  # zoom about the cursor
    window.auto_layout()
    xs = [window.editor.doc.nodes[n].position[0] for n in (i, a, b)]
    assert xs == sorted(xs) and len(set(xs)) == 3
    window.undo()
    assert window.editor.doc.nodes[a].position == (50.0, 900.0)
    window.view.fit()
    visible = window.view.mapToScene(window.view.viewport().rect()).boundingRect()
    assert all(visible.contains(it.sceneBoundingRect()) for it in window.editor.scene.node_items.values())


def test_theme_switch_and_title_shows_unsaved_state(window, qtbot):
    assert window.windowTitle() == "Untitled — Netweaver"
    window.add_layer_at_centre("Dense")
    window.editor.refresh()
    assert window.windowTitle() == "Untitled* — Netweaver"
    window.apply_theme("dark")
    assert "#23272e" in window.styleSheet() and window.dark_action.isChecked()
    assert not window.windowIcon().isNull()
    window.apply_theme("light")
    assert window.light_action.isChecked()


def test_wires_are_deleted_and_pulled_off_to_rewire(window, qtbot):
    i, a, b = make_mlp(window)
    scene = window.editor.scene
    scene.clearSelection()
    scene.wire_items[Wire(a, 0, b, 0)].setSelected(True)
    window.editor.delete_selection()
    assert Wire(a, 0, b, 0) not in window.editor.doc.wires and b in window.editor.doc.nodes
    window.undo()
    assert Wire(a, 0, b, 0) in window.editor.doc.wires
    c = window.editor.add_layer("Dense", (600, 250), {"units": 2})
    window.editor.refresh()
    # drag the wire's end from b's input to c's input
    drag(window, scene.node_items[b].port_scene_pos("in", 0), scene.node_items[c].port_scene_pos("in", 0))
    window.editor.refresh()
    wires = window.editor.doc.wires
    assert Wire(a, 0, c, 0) in wires and Wire(a, 0, b, 0) not in wires
    assert scene.node_items[b].info.status == "incomplete"


def test_dragged_wire_turns_red_over_a_port_that_refuses_it(window, qtbot):
    from canvas_gestures import _send
    from PySide6.QtGui import QMouseEvent

    i, a, b = make_mlp(window)
    scene = window.editor.scene
    vp = window.view.viewport()
    start = view_point(window, scene.node_items[b].port_scene_pos("out", 0))
    over = view_point(window, scene.node_items[i].port_scene_pos("out", 0) + QPointF(-190, 20))
    _send(vp, QMouseEvent.MouseButtonPress, start, Qt.LeftButton, Qt.LeftButton)
    _send(vp, QMouseEvent.MouseMove, view_point(window, scene.node_items[a].port_scene_pos("in", 0)),
          Qt.NoButton, Qt.LeftButton)
    assert scene._drag_wire.pen().color() == window.theme.error
    assert "already wired" in window.statusBar().currentMessage()
    _send(vp, QMouseEvent.MouseMove, over, Qt.NoButton, Qt.LeftButton)
    _send(vp, QMouseEvent.MouseButtonRelease, over, Qt.LeftButton, Qt.NoButton)
    assert scene._drag_wire is None and len(window.editor.doc.wires) == 2


def test_summary_sorts_by_parameter_count_as_numbers(window, qtbot):
    i = window.editor.add_layer("InputLayer", (0, 0), {"shape": [300]})
    big = window.editor.add_layer("Dense", (300, 0), {"units": 40})     # 12,040 params
    small = window.editor.add_layer("Dense", (600, 0), {"units": 9})    # 369 params
    window.editor.request_wire(i, 0, big, 0)
    window.editor.request_wire(big, 0, small, 0)
    window.editor.refresh()
    table = window.summary.table
    assert [r[0] for r in window.summary.row_texts()] == ["input_layer (InputLayer)", "dense (Dense)",
                                                          "dense_1 (Dense)"]  # Keras's order until sorted
    table.sortByColumn(2, Qt.DescendingOrder)
    assert [r[2] for r in window.summary.row_texts()] == ["12,040", "369", "0"]
    table.selectRow(1)
    assert window.editor.scene.selected_node_ids() == [small]


def test_input_shape_typed_in_the_inspector_flows_downstream(window, qtbot):
    i, a, b = make_mlp(window)
    select(window, [i])
    edit = window.inspector.editors["shape"].widget
    edit.setText("None, 7, 20")
    edit.editingFinished.emit()
    window.editor.refresh()
    assert window.editor.doc.nodes[i].config["shape"] == [None, 7, 20]
    assert window.editor.scene.wire_items[Wire(a, 0, b, 0)].label == "(None, None, 7, 16)"  # batch axis first
    edit = window.inspector.editors["shape"].widget
    edit.setText("7, x")
    edit.editingFinished.emit()
    assert "'x' is not a dimension" in window.inspector.error_label.text()
    assert window.editor.doc.nodes[i].config["shape"] == [None, 7, 20]


def test_escape_cancels_rename_and_wire_drag_and_middle_button_pans(window, qtbot):
    from canvas_gestures import _send
    from PySide6.QtGui import QMouseEvent

    i, a, b = make_mlp(window)
    window.start_rename(a)
    edit = window._rename_edit
    edit.setText("never")
    qtbot.keyClick(edit, Qt.Key_Escape)
    assert window._rename_edit is None and window.editor.doc.nodes[a].name == "dense"
    scene = window.editor.scene
    vp = window.view.viewport()
    _send(vp, QMouseEvent.MouseButtonPress, view_point(window, scene.node_items[a].port_scene_pos("out", 0)),
          Qt.LeftButton, Qt.LeftButton)
    assert scene._drag_wire is not None
    qtbot.keyClick(window.view, Qt.Key_Escape)
    assert scene._drag_wire is None
    _send(vp, QMouseEvent.MouseButtonRelease, QPoint(5, 5), Qt.LeftButton, Qt.NoButton)
    assert len(window.editor.doc.wires) == 2
    before = window.view.mapToScene(QPoint(200, 200))
    _send(vp, QMouseEvent.MouseButtonPress, QPoint(200, 200), Qt.MiddleButton, Qt.MiddleButton)
    _send(vp, QMouseEvent.MouseMove, QPoint(260, 230), Qt.NoButton, Qt.MiddleButton)
    _send(vp, QMouseEvent.MouseButtonRelease, QPoint(260, 230), Qt.MiddleButton, Qt.NoButton)
    after = window.view.mapToScene(QPoint(260, 230))
    assert abs(after.x() - before.x()) < 2 and abs(after.y() - before.y()) < 2  # the canvas moved with the mouse

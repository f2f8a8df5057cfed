"""What got in a new user's way (issue 17), each checked the way they met it."""

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QFileDialog

from canvas_gestures import select
from core.document import Wire

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "resources" / "examples"


def add(win, cls, x, y=0, **config):
    return win.editor.add_layer(cls, (x, y), config)


def body(item):
    """A layer's drawn body in scene coordinates."""
    from PySide6.QtCore import QRectF

    from app.canvas import NODE_WIDTH

    return QRectF(item.pos().x(), item.pos().y(), NODE_WIDTH, item.height)


def settle(win):
    """Let the coalesced refresh, selection and layout timers run, as the event loop does between user actions."""
    for _ in range(3):
        QApplication.processEvents()


# -- shortcuts --------------------------------------------------------------------------------------------------------
def test_no_two_actions_share_a_shortcut(window):
    owners = {}
    for action in window.findChildren(QAction):
        for key in action.shortcuts():
            text = key.toString(QKeySequence.PortableText)
            if text:
                owners.setdefault(text, []).append(action.text().replace("&", ""))
    shared = {key: names for key, names in owners.items() if len(names) > 1}
    assert shared == {}
    assert owners[QKeySequence(QKeySequence.SaveAs).toString(QKeySequence.PortableText)] == ["Save As…"]


# -- status bar ---------------------------------------------------------------------------------------------------------
def test_the_status_bar_describes_the_document_as_it_is_now(window, qtbot):
    status = window.statusBar().currentMessage
    assert status().startswith("Drag a layer from the palette")
    i = add(window, "InputLayer", 0, shape=[20])
    d = add(window, "Dense", 300, units=4)
    window.editor.request_wire(i, 0, d, 0)
    settle(window)
    assert status() == "2 layers, 84 parameters."  # the start-up hint is gone once there is a model
    r = add(window, "Reshape", 600, target_shape=[3])
    window.editor.request_wire(d, 0, r, 0)
    settle(window)
    select(window, [r])
    error = window.editor.doc.analyze()[r].error
    assert error and status() == error
    window.undo()  # the wire that caused the error
    settle(window)
    assert status() == "Not connected: reshape"
    window.undo()  # the layer itself
    settle(window)
    assert status() == "2 layers, 84 parameters."


# -- export -------------------------------------------------------------------------------------------------------------
@pytest.mark.expect_problems(1)
def test_export_checks_the_model_before_asking_for_a_path(window, qtbot):
    asked = []
    window.ask_save_path = lambda *a, **k: asked.append(a) or None
    d = add(window, "Dense", 300, units=4)
    settle(window)
    assert window.export_actions and not any(a.isEnabled() for a in window.export_actions)
    assert all("Not connected: dense" in a.toolTip() for a in window.export_actions)
    window.export_dialog("onnx", "ONNX (*.onnx)")
    assert asked == [] and "Not connected: dense" in window.problems[0]
    i = add(window, "InputLayer", 0, shape=[3])
    window.editor.request_wire(i, 0, d, 0)
    settle(window)
    assert all(a.isEnabled() and "Cannot export" not in a.toolTip() for a in window.export_actions)
    window.export_dialog("onnx", "ONNX (*.onnx)")
    assert len(asked) == 1


# -- file dialogs ---------------------------------------------------------------------------------------------------------
def test_file_dialogs_start_in_the_last_folder_and_exports_take_the_project_name(window, qtbot, tmp_path,
                                                                                    monkeypatch):
    seen = []

    def fake_save(parent, title, start, filters):
        seen.append(start)
        return answers.pop(0), ""

    def fake_open(parent, title, start, filters):
        seen.append(start)
        return answers.pop(0), ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", fake_save)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", fake_open)
    (tmp_path / "projects").mkdir()
    (tmp_path / "exports").mkdir()
    i = add(window, "InputLayer", 0, shape=[3])
    d = add(window, "Dense", 300, units=2)
    window.editor.request_wire(i, 0, d, 0)
    settle(window)

    answers = [str(tmp_path / "projects" / "tagger.nwproj")]
    assert window.save_as()
    assert Path(seen[-1]).parent == Path.home()  # nothing chosen yet: the home folder, not where the app started
    answers = [str(tmp_path / "exports" / "tagger.onnx")]
    window.export_dialog("onnx", "ONNX (*.onnx)")
    assert seen[-1] == str(tmp_path / "projects" / "tagger.onnx")  # the project's name, beside the project
    qtbot.waitUntil(lambda: (tmp_path / "exports" / "tagger.onnx").exists(), timeout=30000)
    answers = [""]
    window.export_dialog("h5", "HDF5 (*.h5)")
    assert seen[-1] == str(tmp_path / "exports" / "tagger.h5")  # the folder last exported to

    from app.main_window import MainWindow

    fresh = MainWindow()  # a later session remembers the folders too
    qtbot.addWidget(fresh)
    answers = [""]
    fresh.open_dialog()
    assert seen[-1] == str(tmp_path / "projects")


# -- wire labels and routes -----------------------------------------------------------------------------------------------
def _label_overlaps(scene):
    from app.canvas import PORT_R

    bodies = {nid: body(item).adjusted(-PORT_R, -PORT_R, PORT_R, PORT_R)
              for nid, item in scene.node_items.items()}
    labels = [(w, item.label_rect) for w, item in scene.wire_items.items() if item.label]
    problems = []
    for w, rect in labels:
        if rect is None:
            problems.append(f"{w}: no label shown")
            continue
        problems += [f"{w} label over {nid}" for nid, body in bodies.items() if body.intersects(rect)]
        problems += [f"{w} label over {v}'s" for v, other in labels if v != w and other and other.intersects(rect)]
    return problems


def test_encoder_decoder_labels_are_whole_and_cover_no_port_or_other_label(window, qtbot):
    assert window.open_path(str(EXAMPLES / "encoder_decoder.nwproj"), wait=True, as_example=True)
    window.auto_layout()
    settle(window)
    scene = window.editor.scene
    assert _label_overlaps(scene) == []
    metrics = scene.small_metrics
    for item in scene.wire_items.values():
        assert item.label_rect.width() >= metrics.horizontalAdvance(item.label) + 8
        assert item.boundingRect().contains(item.label_rect)  # never cut off by the item's cached picture
    # nodes pushed close together: labels move along their wires or wait for a hover, never overlap
    items = scene.node_items
    enc = window.editor.doc.node_by_name("encoder").id
    dec = window.editor.doc.node_by_name("decoder").id
    items[dec].setPos(items[enc].pos().x() + 230, items[enc].pos().y() + 30)
    settle(window)
    assert [p for p in _label_overlaps(scene) if "no label" not in p] == []


def test_labels_are_drawn_whole_at_any_zoom(window, qtbot):
    """The text is never clipped to its box: a hinted font at a zoomed scale can be wider than measured."""
    i = add(window, "InputLayer", 0, shape=[32, 64])
    d = add(window, "Dense", 400, units=8)
    window.editor.request_wire(i, 0, d, 0)
    settle(window)
    window.view.fit()
    item = window.editor.scene.wire_items[Wire(i, 0, d, 0)]
    assert item.label == "(None, 32, 64)"
    label_fill = window.theme.label_fill.rgb() & 0xFFFFFF
    for zoom in (0.45, 0.7, 1.0, 1.9):
        window.view.resetTransform()
        window.view.scale(zoom, zoom)
        window.view.centerOn(item.label_rect.center())
        settle(window)
        image = window.view.viewport().grab().toImage()
        box = window.view.mapFromScene(item.label_rect).boundingRect()
        inked = set()
        off = max(2, round(3 * zoom))
        for y in (box.center().y() - off, box.center().y() + off):  # above and below the wire, through the text
            row = [image.pixel(x, y) & 0xFFFFFF for x in range(box.left() + 1, box.right())]
            inked |= {x for x, colour in enumerate(row) if colour != label_fill and sum(
                (colour >> s) & 255 for s in (0, 8, 16)) < 3 * 190}
        assert inked, f"no text drawn at zoom {zoom}"
        assert min(inked) >= 2 and max(inked) <= len(row) - 3, f"text touches its box's edge at zoom {zoom}"


def test_a_long_wire_routes_around_the_layers_in_its_way(window, qtbot):
    i = add(window, "InputLayer", 0, 0, shape=[8])
    a = add(window, "Dense", 340, 0, units=8)
    b = add(window, "Dense", 680, 0, units=8)
    m = add(window, "Add", 1020, 0)
    for src, dst, slot in ((i, a, 0), (a, b, 0), (b, m, 0), (i, m, 1)):
        window.editor.request_wire(src, 0, dst, slot)
    settle(window)
    scene = window.editor.scene
    path = scene.wire_items[Wire(i, 0, m, 1)].path()
    for nid in (a, b):
        rect = body(scene.node_items[nid])
        assert not any(rect.contains(path.pointAtPercent(k / 100)) for k in range(101)), nid
    assert _label_overlaps(scene) == []


# -- palette double-click ---------------------------------------------------------------------------------------------------
def test_palette_double_click_places_a_layer_on_a_free_spot(window, qtbot):
    from PySide6.QtCore import Qt

    tree = window.palette.tree
    dense = tree.findItems("Dense", Qt.MatchExactly | Qt.MatchRecursive)[0]
    for _ in range(4):
        window.editor.scene.select_nodes([])
        tree.itemActivated.emit(dense, 0)
        settle(window)
    first = next(iter(window.editor.doc.nodes))
    window.editor.scene.select_nodes([first])
    tree.itemActivated.emit(dense, 0)  # with a layer selected: beside it, where its consumer goes
    settle(window)
    items = window.editor.scene.node_items
    rects = {nid: body(item) for nid, item in items.items()}
    for nid, rect in rects.items():
        assert not any(rect.intersects(other) for o, other in rects.items() if o != nid), nid
    newest = list(window.editor.doc.nodes)[-1]
    assert rects[newest].left() > rects[first].right() and abs(rects[newest].top() - rects[first].top()) < 100


# -- summary order -------------------------------------------------------------------------------------------------------
def test_summary_follows_the_canvas_until_the_model_builds(window, qtbot):
    d = add(window, "Dense", 300, 0, units=4)
    i = add(window, "InputLayer", 0, 0, shape=[3])
    e = add(window, "Dense", 300, 150, units=2)
    settle(window)
    assert [r[0] for r in window.summary.row_texts()] == ["input_layer (InputLayer)", "dense (Dense)",
                                                         "dense_1 (Dense)"]
    window.editor.request_wire(i, 0, e, 0)
    window.editor.request_wire(e, 0, d, 0)
    settle(window)
    # built: Keras's order (the model's layers from input to output), whatever the canvas says
    assert [r[0] for r in window.summary.row_texts()] == ["input_layer (InputLayer)", "dense_1 (Dense)",
                                                         "dense (Dense)"]


# -- initial_state -----------------------------------------------------------------------------------------------------------
def test_initial_state_takes_any_tensor_of_the_state_shape(window, qtbot):
    x = add(window, "InputLayer", 0, 0, shape=[5, 3])
    z = add(window, "InputLayer", 0, 200, shape=[4])
    h = add(window, "Dense", 300, 200, units=6)
    c = add(window, "Dense", 300, 350, units=6)
    wrong = add(window, "Dense", 300, 500, units=8)
    lstm = add(window, "LSTM", 600, 0, units=6)
    for src, dst in ((x, lstm), (z, h), (z, c), (z, wrong)):
        window.editor.request_wire(src, 0, dst, 0)
    settle(window)
    reason = window.editor.request_wire(wrong, 0, lstm, 1)
    assert reason == ("'lstm' input 'initial_state 0' takes a state of shape (None, 6) (batch, units=6), but "
                      "'dense_2' output has shape (None, 8).")
    assert window.editor.request_wire(h, 0, lstm, 1) is None
    assert window.editor.request_wire(c, 0, lstm, 2) is None
    settle(window)
    window.editor.stack.push(__import__("core.commands", fromlist=["RemoveNodes"]).RemoveNodes(
        window.editor.doc, [wrong]))
    settle(window)
    info = window.editor.doc.analyze()
    assert info[lstm].status == "ok" and info[lstm].outputs[0].shape == (None, 6)
    # Keras: LSTM(6) on 3 features 4*(3*6+6*6+6) = 240, two Dense(4->6) 30 each
    assert window.editor.doc.to_model().count_params() == 300


# -- opening a file that is not a project ---------------------------------------------------------------------------------------
@pytest.mark.expect_problems(2)
def test_opening_an_onnx_file_says_what_it_is_and_what_opens(window, qtbot, tmp_path):
    import core as keras
    from core import layers

    inputs = keras.Input((3,))
    keras.Model(inputs, layers.Dense(2)(inputs)).to_onnx(str(tmp_path / "model.onnx"))
    assert not window.open_path(str(tmp_path / "model.onnx"), wait=True)
    text = window.problems[-1]
    assert text.startswith("Cannot open model.onnx: it is an ONNX model") and "utf-8" not in text
    assert ".nwproj" in text and ".keras" in text and "File > Export" in text
    (tmp_path / "data.bin").write_bytes(bytes(range(200, 256)) * 4)
    assert not window.open_path(str(tmp_path / "data.bin"), wait=True)
    assert window.problems[-1].startswith("Cannot open data.bin: it is not a Netweaver project (it is not JSON text)")
    assert "utf-8" not in window.problems[-1]


# -- start-up on a plain Linux desktop --------------------------------------------------------------------------------------------
def test_a_failed_platform_plugin_prints_the_apt_get_line(capsys):
    from PySide6.QtCore import QtMsgType

    from app import launcher

    missing = launcher.missing_xcb_packages(lambda lib: lib not in ("libxcb-icccm.so.4", "libxcb-keysyms.so.1"))
    assert missing == ["libxcb-icccm4", "libxcb-keysyms1"]
    text = launcher.platform_help(missing, ":0")
    assert "\n    sudo apt-get install libxcb-icccm4 libxcb-keysyms1\n" in text
    assert "DISPLAY is not set" in launcher.platform_help([], None)
    # Qt's fatal message (after which it aborts) is followed by the fix
    launcher._qt_message(QtMsgType.QtFatalMsg, None, 'Could not load the Qt platform plugin "xcb" in "" even '
                                                     'though it was found.')
    err = capsys.readouterr().err
    assert err.startswith('Could not load the Qt platform plugin "xcb"') and "Netweaver cannot open a window" in err
    launcher._qt_message(QtMsgType.QtWarningMsg, None, "an ordinary warning")
    assert capsys.readouterr().err == "an ordinary warning\n"


def test_the_readme_lists_the_system_packages_after_its_first_two_commands():
    from app.launcher import system_packages

    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    commands = [line for line in lines if line.startswith(("python ", "sudo "))]
    assert commands[0].startswith("python -m pip install -e . && python main.py")
    assert commands[1].startswith('python -m pip install -e ".[test,keras]" && python -m pytest')
    assert commands[2] == "sudo apt-get install " + " ".join(system_packages())


# -- exporting and importing without freezing the window -------------------------------------------------------------------------
def test_export_builds_the_model_only_on_the_worker(window, qtbot, tmp_path, monkeypatch):
    from core import document

    threads = []
    real_to_model, real_trace = document.Document.to_model, document._trace_layer
    monkeypatch.setattr(document.Document, "to_model",
                        lambda self: threads.append(threading.current_thread()) or real_to_model(self))
    monkeypatch.setattr(document, "_trace_layer",
                        lambda *a: threads.append(threading.current_thread()) or real_trace(*a))
    from exporters import project

    drawn = document.Document("small")
    drawn.load_graph_dict({"nodes": [
        {"id": "i", "class_name": "InputLayer", "config": {"name": "x", "shape": [3]}},
        {"id": "d", "class_name": "Dense", "config": {"name": "d", "units": 2}}],
        "wires": [{"src": "i", "src_port": 0, "dst": "d", "dst_port": 0}]})
    project.save_project(drawn, str(tmp_path / "small.nwproj"))
    threads.clear()
    window.open_path(str(tmp_path / "small.nwproj"))
    qtbot.waitUntil(lambda: window.statusBar().currentMessage().startswith("Opened"), timeout=30000)
    window.export(str(tmp_path / "small.h5"), "h5")
    qtbot.waitUntil(lambda: "Exported small.h5" in window.statusBar().currentMessage() or bool(window.problems),
                    timeout=30000)
    assert window.problems == []
    window.open_path(str(tmp_path / "small.h5"))
    qtbot.waitUntil(lambda: window.statusBar().currentMessage().startswith("Opened small.h5"), timeout=30000)
    assert threads and threading.main_thread() not in threads


def test_no_library_is_first_loaded_while_an_export_runs():
    """Loading a library's C extension (onnx, h5py, yaml...) holds the GIL throughout; on the export worker that froze
    the window for up to 0.9 s. A fresh interpreter shows what an export loads that the window had not."""
    script = r"""
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtWidgets import QApplication
from app.main_window import MainWindow, export_model, load_any
from core.document import Document
app = QApplication([])
window = MainWindow()
doc = Document("small")
doc.load_graph_dict({"nodes": [
    {"id": "i", "class_name": "InputLayer", "config": {"name": "x", "shape": [3, 2]}},
    {"id": "r", "class_name": "LSTM", "config": {"name": "r", "units": 2}}],
    "wires": [{"src": "i", "src_port": 0, "dst": "r", "dst_port": 0}]})
doc.analyze()
before = set(sys.modules)
for fmt, suffix in (("onnx", "onnx"), ("h5", "h5"), ("yaml", "yaml")):
    export_model(doc, os.path.join(sys.argv[1], "m." + suffix), fmt)
load_any(os.path.join(sys.argv[1], "m.h5"))
files = {m: getattr(sys.modules[m], "__file__", "") or "" for m in set(sys.modules) - before}
print(sorted(m for m, f in files.items() if f.endswith(".so") and "-packages" in f))
"""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", script, tmp], cwd=ROOT, capture_output=True, text=True,
                             timeout=120, env={**__import__("os").environ, "NETWEAVER_DATA": tmp})
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1].replace("'", '"')) == []


def test_the_app_keeps_blas_to_one_thread_unless_told_otherwise(monkeypatch):
    """OpenBLAS's pool threads spin after each call; on two cores they took the GUI thread's core while an export
    built its layers (stalls of 0.1-0.7 s at random)."""
    from app.launcher import limit_blas_threads

    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    limit_blas_threads()
    import os

    assert os.environ["OPENBLAS_NUM_THREADS"] == "1" and os.environ["OMP_NUM_THREADS"] == "4"


def test_selecting_another_layer_replaces_the_last_ones_error(window, qtbot):
    i = add(window, "InputLayer", 0, shape=[20])
    d = add(window, "Dense", 300, units=4)
    r = add(window, "Reshape", 600, target_shape=[3])
    window.editor.request_wire(i, 0, d, 0)
    window.editor.request_wire(d, 0, r, 0)
    settle(window)
    select(window, [r])
    assert window.statusBar().currentMessage() == window.editor.doc.analyze()[r].error
    select(window, [d])
    assert window.statusBar().currentMessage() == "reshape: " + window.editor.doc.analyze()[r].error

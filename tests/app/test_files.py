"""The window's files: save and reopen, broken files, unsaved changes, crash recovery, Keras import, screenshot."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


ROOT = Path(__file__).resolve().parents[2]


def build(win):
    i = win.editor.add_layer("InputLayer", (0, 0), {"shape": [12]})
    d = win.editor.add_layer("Dense", (300, 0), {"units": 5, "activation": "relu"})
    assert win.editor.request_wire(i, 0, d, 0) is None
    win.editor.refresh()
    return i, d


def test_save_and_reopen(window, qtbot, tmp_path):
    from app.main_window import MainWindow

    build(window)
    target = tmp_path / "model"
    window.ask_save_path = lambda *a: str(target)
    assert window.save()
    saved = tmp_path / "model.nwproj"
    assert saved.exists() and window.windowTitle() == "model.nwproj — Netweaver"
    other = MainWindow()
    qtbot.addWidget(other)
    with qtbot.waitSignal(other.editor.documentReplaced, timeout=10000):
        other.open_path(str(saved))  # loads on a worker thread
    assert other.editor.doc.graph_dict() == window.editor.doc.graph_dict()
    assert other.summary.row_texts() == window.summary.row_texts()
    assert other.windowTitle() == "model.nwproj — Netweaver"
    assert str(saved.resolve()) in other.recent_files()
    assert other.recent_menu.actions()[0].text() == "model.nwproj"


@pytest.mark.expect_problems(2)
def test_broken_file_shows_a_dialog_and_keeps_the_document(window, qtbot, tmp_path):
    build(window)
    before = window.editor.doc.graph_dict()
    bad = tmp_path / "broken.nwproj"
    bad.write_text('{"format": "netweaver-project", "schema_version": 7, "graph": {"nodes": []}}')
    window.open_path(str(bad))
    qtbot.waitUntil(lambda: bool(window.problems), timeout=10000)
    assert "broken.nwproj" in window.problems[0] and "newer Netweaver" in window.problems[0]
    assert window.editor.doc.graph_dict() == before
    foreign = tmp_path / "photo.nwproj"
    foreign.write_bytes(b"\x89PNG\r\n\x1a\n")
    window.open_path(str(foreign))
    qtbot.waitUntil(lambda: len(window.problems) == 2, timeout=10000)
    assert "not JSON" in window.problems[1]


def test_closing_with_unsaved_changes_asks(window, qtbot):
    build(window)
    asked = []
    window.ask_unsaved = lambda: asked.append(1) or "cancel"
    assert not window.close()
    assert asked and window.isVisible()
    window.ask_unsaved = lambda: "discard"
    assert window.close()


def test_crash_leaves_an_autosave_offered_at_next_start(window, qtbot):
    from app.main_window import MainWindow

    i, d = build(window)
    window.autosave_now()  # the timer's work; then the process "crashes": the window is never closed
    graph = window.editor.doc.graph_dict()
    fresh = MainWindow()
    qtbot.addWidget(fresh)
    fresh.ask_unsaved = lambda: "discard"
    fresh.ask_recover = lambda names: True
    assert fresh.offer_recovery()
    assert fresh.editor.doc.graph_dict() == graph
    assert fresh.windowTitle().startswith("Untitled*")
    declined = MainWindow()
    qtbot.addWidget(declined)
    assert not declined.offer_recovery()  # recovered copies are gone


@pytest.mark.parametrize("name, suffix", [("seed_mlp", "h5"), ("seed_functional", "keras"), ("seed_seq2seq", "h5"),
                                          ("seed_bidirectional", "keras"), ("seed_conv1d", "h5"),
                                          ("seed_mask_zero", "json")])
def test_import_keras_fixture_lays_out_keeps_weights_and_summarises_like_the_engine(window, qtbot, fixtures_dir, name,
                                                                                    suffix):
    """The document imported from a Keras file has the engine's summary rows for that file (the rows that
    tests/interop compares with the table real Keras prints), Keras's parameter count and, with weights, its
    predictions."""
    from core import models
    from core.summary import summary_rows

    path = fixtures_dir / "keras3" / f"{name}.{suffix}"
    window.open_path(str(path))
    qtbot.waitUntil(lambda: bool(window.problems or window.editor.doc.nodes), timeout=30000)
    assert window.problems == []
    doc = window.editor.doc
    manifest = json.loads((fixtures_dir / "keras3" / "manifest.json").read_text())["models"][name]
    params = manifest.get("params", manifest.get("count_params"))
    assert doc.total_params() == params
    keras_model = models.load_model(str(fixtures_dir / "keras3" / f"{name}.h5"), compile=False)
    ours = [(r.name, r.class_name, r.output_shape, r.params) for r in doc.summary_rows()
            if r.class_name != "InputLayer" or type(keras_model).__name__ != "Sequential"]
    assert ours == [(r.name, r.class_name, r.output_shape, r.params) for r in summary_rows(keras_model)]
    xs = {n.position for n in doc.nodes.values()}
    assert len(xs) == len(doc.nodes)  # laid out: no two nodes on top of each other
    if suffix == "json":  # an architecture without weights
        assert all(n.weights is None for n in doc.nodes.values())
        return
    io = np.load(fixtures_dir / "keras3" / f"{name}_io.npz")
    inputs = [io[k] for k in sorted(io.files) if k.startswith("input_")]
    outputs = [io[k] for k in sorted(io.files) if k.startswith("output_")]
    got = doc.to_model().predict(inputs if len(inputs) > 1 else inputs[0])
    for g, want in zip(got if isinstance(got, list) else [got], outputs):
        np.testing.assert_allclose(g, want, atol=1e-5)
    assert window.path is None and window.windowTitle() == "Untitled — Netweaver"


@pytest.mark.expect_problems(1)
def test_importing_a_foreign_file_names_the_problem(window, qtbot, tmp_path):
    build(window)
    before = window.editor.doc.graph_dict()
    fake = tmp_path / "model.h5"
    fake.write_text("this is not HDF5")
    window.open_path(str(fake))
    qtbot.waitUntil(lambda: bool(window.problems), timeout=10000)
    assert "model.h5" in window.problems[0]
    assert window.editor.doc.graph_dict() == before


def test_files_load_on_a_worker_and_results_arrive_in_the_gui_thread(window, qtbot, tmp_path):
    from PySide6.QtCore import QThread

    from exporters import project

    build(window)
    path = project.save_project(window.editor.doc, tmp_path / "w.nwproj")
    threads = []
    original = window._opened
    window._opened = lambda *a: threads.append(QThread.currentThread()) or original(*a)
    window.open_path(str(path))
    assert window.tasks.busy() or threads  # returned at once; the load runs elsewhere
    qtbot.waitUntil(lambda: bool(threads), timeout=10000)
    assert threads == [window.thread()]
    window.tasks.wait_all()
    assert not window.tasks.busy()


def test_none_refcount_does_not_drift():
    """PySide6 6.12.0 dropped a reference to None on every void call until Python aborted (DESIGN.md §5)."""
    from PySide6.QtCore import QObject

    obj = QObject()
    before = sys.getrefcount(None)
    for _ in range(5000):
        obj.setObjectName("x")
        obj.blockSignals(False)
    drift = sys.getrefcount(None) - before
    assert abs(drift) < 100, f"None's refcount drifted by {drift} over 10,000 void calls: a broken PySide6 build"


def test_screenshot_command_writes_the_window(tmp_path):
    out = tmp_path / "shot.png"
    env = {"QT_QPA_PLATFORM": "offscreen", "NETWEAVER_DATA": str(tmp_path / "data"), "PATH": "/usr/bin:/bin",
           "HOME": str(tmp_path)}
    example = ROOT / "resources" / "examples" / "functional_mlp.nwproj"
    res = subprocess.run([sys.executable, "main.py", "--screenshot", str(out), str(example), "--size", "1000x700"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    from PySide6.QtGui import QImage

    image = QImage(str(out))
    assert (image.width(), image.height()) == (1000, 700)
    colours = {image.pixel(x, y) for x in range(0, 1000, 37) for y in range(0, 700, 29)}
    assert len(colours) > 10  # a drawn window, not a blank one


@pytest.mark.parametrize("fmt, suffix", [("onnx", "onnx"), ("keras", "keras"), ("h5_tf2", "h5"), ("json", "json"),
                                         ("py", "py")])
def test_export_runs_off_the_gui_thread_and_reloads(window, qtbot, tmp_path, fmt, suffix):
    from app.main_window import load_any

    build(window)
    out = tmp_path / f"model.{suffix}"
    window.export(str(out), fmt)
    qtbot.waitUntil(lambda: f"Exported model.{suffix}" in window.statusBar().currentMessage() or
                    bool(window.problems), timeout=30000)
    assert window.problems == []
    if fmt == "onnx":
        import onnx

        assert len(onnx.load(str(out)).graph.output) == 1
    elif fmt == "py":
        assert "layers.Dense(" in out.read_text()
    else:  # what we wrote, we read back as the same graph
        again = load_any(str(out))
        assert [(r.class_name, r.output_shape, r.params) for r in again.summary_rows()] == \
            [(r.class_name, r.output_shape, r.params) for r in window.editor.doc.summary_rows()]


@pytest.mark.expect_problems(1)
def test_export_of_an_incomplete_model_names_the_problem(window, qtbot, tmp_path):
    window.editor.add_layer("Dense", (0, 0))
    window.editor.refresh()
    window.export(str(tmp_path / "x.onnx"), "onnx")
    assert window.problems and "Not connected: dense" in window.problems[0]
    assert not (tmp_path / "x.onnx").exists()


def test_new_from_example_menu_opens_an_untitled_copy(window, qtbot):
    actions = window.examples_menu.actions()
    titles = [a.text() for a in actions]
    assert "Encoder–decoder (encoder LSTM states start the decoder)" in titles and len(actions) >= 9
    action = actions[titles.index("Encoder–decoder (encoder LSTM states start the decoder)")]
    action.trigger()
    qtbot.waitUntil(lambda: len(window.editor.doc.nodes) == 7, timeout=10000)
    assert window.path is None and window.editor.doc.total_params() == 258_698
    assert window.validate() == []

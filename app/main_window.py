"""The main window: canvas in the centre, layer palette left, inspector right, summary below; menus; files.

Dialogs go through `ask_*`/`show_problem` methods so tests can answer them; file loading, importing and exporting
run on worker threads (`app.workers`) and the window stays responsive.
"""

from __future__ import annotations

import atexit
import json
import os
from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, Qt, QTimer, Slot
from PySide6.QtGui import QAction, QActionGroup, QGuiApplication, QIcon, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QLineEdit, QMainWindow, QMenu, QMessageBox, QVBoxLayout,
                               QWidget)

from app import adapting
from app.breadcrumb_bar import BreadcrumbBar
from app.canvas import COLUMN_GAP, NODE_WIDTH, GraphView, NodeItem
from app.curves_panel import CurvesPanel
from app.data_panel import DataPanel
from app.evaluation_panel import EvaluationPanel, evaluation_data
from app.editor import CLIPBOARD_MIME, Editor, fragment_from_text, fragment_to_text
from app.inspector import Inspector
from app.palette import LayerPalette
from app.runs_panel import RunsPanel
from app.summary_panel import SummaryPanel
from app.theme import Theme
from app.training_panel import TrainingPanel
from app.training_session import TrainingSession, private_copy
from app.weights_panel import WeightsPanel
from app.workers import TaskRunner
from core import commands
from core.document import Document, structure_of
from exporters import project

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
EXAMPLES = RESOURCES / "examples"
KERAS_SUFFIXES = (".h5", ".hdf5", ".json", ".yaml", ".yml", ".keras")
AUTOSAVE_MS = 30_000


OPENABLE = "a Netweaver project (.nwproj) or a Keras model (.keras, .h5, .hdf5, .json, .yaml)"
# Files people reach for that are not models the editor can draw: what each one is, and where it belongs instead.
NOT_OPENABLE = {
    ".onnx": "an ONNX model: ONNX keeps the computation, not the Keras layers, so it cannot be drawn and edited "
             "(File > Export writes ONNX from a project)",
    ".py": "a Python script: Netweaver writes scripts (File > Export) but does not run them to read a model back",
    ".npz": "a NumPy archive (weights or data), not a model",
    ".npy": "a NumPy array (data), not a model",
    ".csv": "a CSV table (data), not a model",
    ".pb": "a TensorFlow SavedModel graph, which holds no Keras layer configs Netweaver can read",
}


def load_any(path: str) -> Document:
    """A document from a project file or a Keras model file (runs on a worker thread: no Qt here)."""
    p = Path(path)
    if p.suffix.lower() in KERAS_SUFFIXES:
        doc = import_keras(path)
    else:
        refuse_unopenable(p)
        doc = project.load_project(path)
    doc.analyze()  # shapes and counts traced here, off the GUI thread; the editor reuses them while nothing changes
    return doc


def refuse_unopenable(p: Path) -> None:
    """A clear error for a file that is not a project, named by what it is (its suffix, or its first bytes)."""
    from core.errors import FileFormatError

    what = NOT_OPENABLE.get(p.suffix.lower())
    if what is None:
        try:
            with open(p, "rb") as f:
                head = f.read(8)
        except OSError:
            return  # the project loader reports a missing or unreadable file itself
        if head.startswith(b"\x89HDF"):
            what = "an HDF5 file; if it is a Keras model, give it the .h5 suffix or use File > Import Keras Model"
        elif head.startswith(b"PK"):
            what = "a zip archive; if it is a Keras 3 model, give it the .keras suffix or use File > Import Keras Model"
        elif head and head.removeprefix(b"\xef\xbb\xbf").lstrip()[:1] not in (b"{", b"[", b""):
            what = "not a Netweaver project (it is not JSON text)"
    if what is not None:
        raise FileFormatError(f"it is {what}. Netweaver opens {OPENABLE}.")


def import_keras(path: str) -> Document:
    from core import models

    p = Path(path)
    suffix = p.suffix.lower()
    try:
        if suffix == ".json":
            model = models.model_from_json(p.read_text(encoding="utf-8"))
        elif suffix in (".yaml", ".yml"):
            model = models.model_from_yaml(p.read_text(encoding="utf-8"))
        else:
            model = models.load_model(str(p), compile=False)
    except (ImportError, AttributeError) as exc:
        raise RuntimeError(f"This build cannot read Keras {suffix} files yet ({exc}).") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise RuntimeError(f"Cannot read '{p.name}': {exc}") from exc
    doc = Document.from_model(model)
    doc.name = getattr(model, "name", p.stem)
    if suffix in (".json", ".yaml", ".yml"):  # an architecture only: its weights are fresh initial values
        for node in doc.nodes.values():
            node.weights = None
    return doc


def export_model(doc: Document, path: str, fmt: str) -> str:
    """Write the drawn model in one format (runs on a worker thread). fmt: onnx, json, yaml, h5, keras, py, and
    h5_tf2/json_tf2 for tf.keras 2."""
    model = doc.to_model()
    base, _, target = fmt.partition("_")
    target = "tf_keras2" if target == "tf2" else "keras3"
    if base == "onnx":
        model.to_onnx(path)
    elif base == "json":
        Path(path).write_text(model.to_json(target=target), encoding="utf-8")
    elif base == "yaml":
        Path(path).write_text(model.to_yaml(target=target), encoding="utf-8")
    elif base in ("h5", "keras"):
        model.save(path, target=target)
    elif base == "py":
        from exporters.python_source import export_python_source

        export_python_source(model, path, target=target)
    else:
        raise ValueError(f"Unknown export format '{fmt}'.")
    return path


def available_exports() -> list[tuple[str, str, str]]:
    """(format, menu text, file filter) for each format this build's engine can write."""
    from core.models import Model

    formats = [("onnx", "ONNX model (.onnx)…", "ONNX (*.onnx)")]
    if hasattr(Model, "save"):
        formats += [("keras", "Keras 3 archive (.keras)…", "Keras archive (*.keras)"),
                    ("h5", "Keras HDF5 for Keras 3 (.h5)…", "HDF5 (*.h5)"),
                    ("h5_tf2", "Keras HDF5 for tf.keras 2 (.h5)…", "HDF5 (*.h5)")]
    if hasattr(Model, "to_json"):
        formats += [("json", "Keras JSON (.json)…", "Keras JSON (*.json)"),
                    ("json_tf2", "Keras JSON for tf.keras 2 (.json)…", "Keras JSON (*.json)")]
    if hasattr(Model, "to_yaml"):
        formats.append(("yaml", "Keras YAML (.yaml)…", "YAML (*.yaml)"))
    try:
        import exporters.python_source  # noqa: F401

        formats.append(("py", "Python script (.py)…", "Python (*.py)"))
    except ImportError:
        pass
    return formats


# What exports and imports load on first use. Initialising a C extension module (onnx with ml_dtypes, h5py, PyYAML's
# C loader, protobuf) holds the GIL from start to end, so doing it first on the worker thread froze the window for
# 0.2-0.9 s (measured with py-spy); loaded while the window is built, before the event loop runs, it costs nothing
# visible later. The first Train loads ONNX Runtime's extension the same way (1.1-1.5 s with the GIL held).
FORMAT_MODULES = ("onnx", "onnx.helper", "onnx.numpy_helper", "h5py", "yaml", "numpy.linalg", "numpy.random",
                  "exporters.onnx_export", "exporters.keras_config", "exporters.keras_model", "exporters.weights_io",
                  "exporters.python_source", "core.training", "onnxruntime", "core.training_run",
                  "exporters.datasets")


def preload_file_formats() -> None:
    import gc
    import importlib

    for name in FORMAT_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # a format this build lacks says so when it is used
    # What is loaded by now lives as long as the app; kept out of the cyclic collector, it is not walked again by
    # each full collection, which took 30-100 ms (timed with gc.callbacks) and held up the window at random, on
    # whichever thread happened to trigger it.
    gc.freeze()


def data_dir() -> Path:
    return project.autosave_dir().parent


class MainWindow(QMainWindow):
    def __init__(self, theme: str = "light"):
        super().__init__()
        preload_file_formats()
        self.theme = Theme(theme)
        self.setWindowIcon(QIcon(str(RESOURCES / "icons" / "netweaver.svg")))
        self.editor = Editor(self.theme, self)
        self.path: str | None = None
        self.base_dir: Path | None = None  # where the document's relative data paths are read from
        self.opened_from: str | None = None  # the example or Keras file an untitled document was opened from
        self.untitled_key = f"untitled-{os.getpid()}-{id(self):x}"
        self.tasks = TaskRunner(self)
        self._pending_open: dict | None = None

        self.view = GraphView(self.editor.scene)
        self.breadcrumb = BreadcrumbBar(self.editor)
        canvas = QWidget()
        canvas_layout = QVBoxLayout(canvas)
        canvas_layout.setContentsMargins(0, 0, 0, 0)
        canvas_layout.setSpacing(0)
        canvas_layout.addWidget(self.breadcrumb)
        canvas_layout.addWidget(self.view)
        self.setCentralWidget(canvas)
        self.palette = LayerPalette()
        self.inspector = Inspector()
        self.summary = SummaryPanel()
        self.data_panel = DataPanel()
        self.training_panel = TrainingPanel()
        self.curves = CurvesPanel()
        self.evaluation = EvaluationPanel()
        self.runs_panel = RunsPanel()
        self.training = TrainingSession(self)
        self._start_weights: dict = {}
        self._training_panels_key = None  # (revision, document) the training panels last showed
        self._data_panel_key = None       # what the Data panel last read and checked
        self._train_when_read = False     # Train was pressed while the data was still being read
        # the layer "Adapt on training data" waits for the data to adapt, and whether it replaces what it holds
        self._adapt_when_read: tuple[str, bool] | None = None
        self._adapting: tuple | None = None  # (document, its revision, node id) of an adapt running on a worker
        # The summary's and the curves' area spans the window's width: curves side by side need it more than the
        # palette needs its full height. (Set before any dock is placed: set later, Qt leaves a stale tab bar.)
        self.setCorner(Qt.BottomLeftCorner, Qt.BottomDockWidgetArea)
        self.setCorner(Qt.BottomRightCorner, Qt.BottomDockWidgetArea)
        self.palette_dock = self._dock("Layers", self.palette, Qt.LeftDockWidgetArea)
        self.inspector_dock = self._dock("Inspector", self.inspector, Qt.RightDockWidgetArea)
        self.data_dock = self._dock("Data", self.data_panel, Qt.RightDockWidgetArea, scroll=True)
        self.training_dock = self._dock("Training", self.training_panel, Qt.RightDockWidgetArea)
        self.tabifyDockWidget(self.inspector_dock, self.data_dock)
        self.tabifyDockWidget(self.data_dock, self.training_dock)
        self.weights_panel = WeightsPanel(self.editor)
        self.weights_dock = self._dock("Weights", self.weights_panel, Qt.RightDockWidgetArea)
        self.tabifyDockWidget(self.training_dock, self.weights_dock)
        self.inspector_dock.raise_()
        self.summary_dock = self._dock("Summary", self.summary, Qt.BottomDockWidgetArea)
        self.curves_dock = self._dock("Curves", self.curves, Qt.BottomDockWidgetArea)
        # Side by side, not tabbed: Qt (6.8-6.11) leaves a stale, visible tab bar behind when a window that is not
        # shown yet gets a second group of tabbed docks.
        self.splitDockWidget(self.summary_dock, self.curves_dock, Qt.Horizontal)
        self.summary.setMinimumWidth(240)  # side by side, their natural minimums would make the window 1,026 px wide
        self.curves.setMinimumWidth(420)
        self.evaluation_dock = self._dock("Evaluation", self.evaluation, Qt.BottomDockWidgetArea)
        self.evaluation.setMinimumHeight(160)  # its tables scroll; their natural minimum would set the window's
        self.runs_dock = self._dock("Runs", self.runs_panel, Qt.BottomDockWidgetArea)
        for dock in (self.evaluation_dock, self.runs_dock):
            dock.hide()  # until they join the Curves tab (showEvent); side by side they would widen the window
        self._bottom_tabbed = False  # Curves and Evaluation are tabbed once the window shows (see showEvent)
        self.resizeDocks([self.palette_dock, self.inspector_dock], [200, 380], Qt.Horizontal)
        self.resizeDocks([self.summary_dock, self.curves_dock], [300, 300], Qt.Vertical)
        self.resizeDocks([self.summary_dock, self.curves_dock], [560, 940], Qt.Horizontal)

        self.palette.layerActivated.connect(self.add_layer_at_centre)
        self.inspector.configEdited.connect(self._config_edited)
        self.inspector.invalidInput.connect(self.show_status)
        self.inspector.adaptRequested.connect(self.adapt_layer)
        self.summary.nodeSelected.connect(self._summary_selected)
        self.editor.statusMessage.connect(self.show_status)
        self.editor.refreshed.connect(self._refreshed)
        self.editor.cleanChanged.connect(self.update_title)
        self.editor.documentReplaced.connect(self._document_replaced)
        self.editor.scene.renameRequested.connect(self.start_rename)
        self.editor.scene.contextMenuRequested.connect(self.show_canvas_menu)
        self.editor.scene.selectionChanged.connect(self._selection_timer_start)
        self.data_panel.specChanged.connect(self._dataset_edited)
        self.data_panel.dataShown.connect(self._data_shown)
        self.data_dock.visibilityChanged.connect(self._data_dock_shown)
        self.training_panel.settingsChanged.connect(self._training_settings_edited)
        self.training_panel.trainRequested.connect(self.train)
        self.training_panel.continueRequested.connect(self.continue_training)
        self.training_panel.stopRequested.connect(self.training.stop)
        self.training_panel.pauseToggled.connect(self._pause_toggled)
        self.training.started.connect(self._run_started)
        self.training.progressed.connect(self._run_progressed)
        self.training.finished.connect(self._run_finished)
        self.training.failed.connect(self._run_failed)
        self.curves.message.connect(self.show_status)
        self.evaluation.message.connect(self.show_status)
        self.evaluation.evaluate_button.clicked.connect(self.evaluate)
        self.runs_panel.selectionChanged.connect(self._runs_selected)
        self.runs_panel.diffChanged.connect(self._runs_diffed)
        self.runs_panel.restoreRequested.connect(self.restore_run)
        self.weights_panel.message.connect(self.show_status)
        # Selection updates the inspector once per event-loop turn: a script or paste that selects many times
        # builds one form, not hundreds.
        self._selection_timer = QTimer(self)
        self._selection_timer.setSingleShot(True)
        self._selection_timer.setInterval(0)
        self._selection_timer.timeout.connect(self._selection_changed)

        self._build_menus()
        self.apply_theme(theme)
        # when a passing message (a refused wire, "Saved") times out, the bar goes back to the document's state
        self.statusBar().messageChanged.connect(self._status_message_changed)
        self._status_state = None  # (document, revision) the status bar last described
        self._document_status_shown = ""
        self._autosave_timer = QTimer(self)
        self._autosave_timer.setInterval(AUTOSAVE_MS)
        self._autosave_timer.timeout.connect(self.autosave_now)
        self._autosave_timer.start()
        self._rename_edit: QLineEdit | None = None
        self.update_title()
        self._refreshed()

    # -- layout -------------------------------------------------------------------------------------------------
    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._bottom_tabbed:
            self._bottom_tabbed = True
            # a timer the window owns: a window closed before it fires takes it along (a bare singleShot would call
            # into a deleted window)
            timer = QTimer(self)
            timer.setSingleShot(True)
            timer.timeout.connect(self._tabify_bottom)
            timer.start(0)

    @Slot()
    def _tabify_bottom(self) -> None:
        """A second group of tabbed docks made before the window shows leaves Qt (6.8-6.11) with a stale tab bar
        drawn over the palette; made once it shows, it is right."""
        self.tabifyDockWidget(self.curves_dock, self.evaluation_dock)
        self.tabifyDockWidget(self.evaluation_dock, self.runs_dock)
        for dock in (self.evaluation_dock, self.runs_dock):
            dock.show()
        self.curves_dock.raise_()

    def _dock(self, title: str, widget, area, scroll: bool = False) -> QDockWidget:
        """A dock holding `widget`; `scroll` puts a tall panel in a scroll area, so it does not set the window's
        minimum height."""
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        if scroll:
            from PySide6.QtWidgets import QScrollArea

            area_widget = QScrollArea()
            area_widget.setWidgetResizable(True)
            area_widget.setFrameShape(QScrollArea.NoFrame)
            area_widget.setWidget(widget)
            widget = area_widget
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        return dock

    def _action(self, menu, text, slot, shortcut=None, checkable=False) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        f = bar.addMenu("&File")
        self._action(f, "&New", self.new_document, QKeySequence.New)
        self.examples_menu = f.addMenu("New from &Example")
        for path in sorted(EXAMPLES.glob("*.nwproj")):
            action = QAction(_example_title(path), self)
            action.setData(str(path))
            action.triggered.connect(self._example_chosen)
            self.examples_menu.addAction(action)
        self._action(f, "&Open…", self.open_dialog, QKeySequence.Open)
        self.recent_menu = f.addMenu("Open &Recent")
        self._fill_recent()
        f.addSeparator()
        self._action(f, "&Save", self.save, QKeySequence.Save)
        self._action(f, "Save &As…", self.save_as, QKeySequence.SaveAs)
        f.addSeparator()
        self._action(f, "&Import Keras Model…", self.import_dialog, "Ctrl+I")
        self._action(f, "Export &Model…", self.open_export_dialog, "Ctrl+E")
        self.export_menu = f.addMenu("&Export")
        self.export_menu.setToolTipsVisible(True)  # a disabled export says why in its tooltip
        self.export_actions: list[QAction] = []
        for fmt, text, filt in available_exports():
            action = QAction(text, self)
            action.setData((fmt, filt))
            action.triggered.connect(self._export_chosen)
            self.export_menu.addAction(action)
            self.export_actions.append(action)
        f.addSeparator()
        self._action(f, "&Quit", self.close, QKeySequence.Quit)

        e = bar.addMenu("&Edit")
        self.undo_action = self._action(e, "&Undo", self.undo, QKeySequence.Undo)
        self.redo_action = self._action(e, "&Redo", self.redo, QKeySequence.Redo)
        e.addSeparator()
        self._action(e, "Cu&t", self.cut, QKeySequence.Cut)
        self._action(e, "&Copy", self.copy, QKeySequence.Copy)
        self._action(e, "&Paste", self.paste, QKeySequence.Paste)
        self.duplicate_action = self._action(e, "&Duplicate", self.duplicate, "Ctrl+D")
        self.call_again_action = self._action(e, "Call &Again (shared layer)", self.editor.call_again,
                                              "Ctrl+Shift+D")
        self.collapse_action = self._action(e, "&Nest Selection as a Model",
                                            lambda: self.editor.collapse_selection(), "Ctrl+G")
        self.expand_action = self._action(e, "E&xpand Nested Model", self.editor.expand_selection, "Ctrl+Shift+G")
        self.back_out_action = self._action(e, "&Back Out of Nested Model", self.editor.close_nested, "Alt+Up")
        self.delete_action = self._action(e, "De&lete", self.editor.delete_selection, QKeySequence.Delete)
        self.delete_action.setShortcuts([QKeySequence(QKeySequence.Delete), QKeySequence(Qt.Key_Backspace)])
        e.addSeparator()
        self._action(e, "Select &All", self.select_all, QKeySequence.SelectAll)

        v = bar.addMenu("&View")
        self._action(v, "Zoom &In", lambda: self.view.zoom(1.25), QKeySequence.ZoomIn)
        self._action(v, "Zoom &Out", lambda: self.view.zoom(0.8), QKeySequence.ZoomOut)
        self._action(v, "&Fit", self.view.fit, "Ctrl+0")
        self._action(v, "&Auto-layout", self.auto_layout, "Ctrl+L")
        v.addSeparator()
        group = QActionGroup(self)
        self.light_action = self._action(v, "&Light Theme", lambda: self.apply_theme("light"), checkable=True)
        self.dark_action = self._action(v, "&Dark Theme", lambda: self.apply_theme("dark"), checkable=True)
        group.addAction(self.light_action)
        group.addAction(self.dark_action)

        m = bar.addMenu("&Model")
        self._action(m, "&Validate", self.validate, "Ctrl+Shift+V")
        self._action(m, "&Summary", self.show_summary, "Ctrl+Shift+M")

    # -- dialogs (tests replace these) -------------------------------------------------------------------------
    def ask_open_path(self, title: str, filters: str) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self, title, self.dialog_folder("project"), filters)
        if path:
            self.remember_folder("project", path)
        return path or None

    def ask_save_path(self, title: str, filters: str, suggested: str = "", kind: str = "project") -> str | None:
        """`suggested` is a file name; the dialog opens in the folder last used for this kind of file."""
        start = str(Path(self.dialog_folder(kind)) / suggested) if suggested else self.dialog_folder(kind)
        path, _ = QFileDialog.getSaveFileName(self, title, start, filters)
        if path:
            self.remember_folder(kind, path)
        return path or None

    def dialog_folder(self, kind: str) -> str:
        """Where a file dialog starts: the folder last used for this kind of file ('project' or 'export'), else
        the open project's folder, else the home folder (never the folder the app happened to start in)."""
        candidates = [_saved_folders().get(kind)]
        if self.path:
            candidates.append(str(Path(self.path).resolve().parent))
        candidates += [_saved_folders().get("project"), str(Path.home())]
        return next((c for c in candidates if c and Path(c).is_dir()), os.getcwd())

    def remember_folder(self, kind: str, chosen_path: str) -> None:
        folders = _saved_folders()
        folders[kind] = str(Path(chosen_path).resolve().parent)
        try:
            data_dir().mkdir(parents=True, exist_ok=True)
            (data_dir() / "folders.json").write_text(json.dumps(folders), encoding="utf-8")
        except OSError:
            pass  # a read-only home only forgets the folder

    def export_stem(self) -> str:
        """The default name of an export: the project's file name, else the example or Keras file it came from."""
        source = self.path or self.opened_from
        return Path(source).stem if source else self.editor.doc.name

    def ask_unsaved(self) -> str:
        """'save', 'discard' or 'cancel'."""
        box = QMessageBox(QMessageBox.Warning, "Unsaved changes",
                          f"'{self.display_name()}' has unsaved changes. Save them?",
                          QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, self)
        answer = box.exec()
        return {QMessageBox.Save: "save", QMessageBox.Discard: "discard"}.get(answer, "cancel")

    def ask_recover(self, names: list[str]) -> bool:
        answer = QMessageBox.question(self, "Recover unsaved work",
                                      "Netweaver did not close cleanly last time. Recover the autosaved copy of "
                                      + ", ".join(names) + "?")
        return answer == QMessageBox.Yes

    def show_problem(self, title: str, text: str) -> None:
        self.show_status(text)
        QMessageBox.warning(self, title, text)

    # -- status, title, theme ------------------------------------------------------------------------------------
    @Slot(str)
    def show_status(self, text: str) -> None:
        """A passing message about what just happened; the document's own state comes back after it."""
        self.statusBar().showMessage(text, 12000)
        # newer than the document's last change: the refresh of that change must not cover it
        self._status_state = (id(self.editor.doc), self.editor.doc.revision)

    def document_status(self) -> str:
        """One line on the document as it is now: how to start, the selected layer's problem, the model's first
        problem, or its size."""
        doc = self.editor.doc
        if not doc.nodes:
            return "Drag a layer from the palette onto the canvas to start (or double-click one)."
        if self._selected_error():
            return doc.analyze()[self.editor.scene.selected_node_ids()[0]].error
        problems = self.model_problems()
        if problems:
            return problems[0]
        return f"{len(doc.nodes)} layers, {doc.total_params():,} parameters."

    def _show_document_status(self) -> None:
        self._document_status_shown = self.document_status()
        self.statusBar().showMessage(self._document_status_shown)

    @Slot(str)
    def _status_message_changed(self, text: str) -> None:
        if not text:
            self._show_document_status()

    def display_name(self) -> str:
        return Path(self.path).name if self.path else "Untitled"

    def update_title(self) -> None:
        dirty = "" if self.editor.stack.is_clean() else "*"
        self.setWindowTitle(f"{self.display_name()}{dirty} — Netweaver")

    def apply_theme(self, name: str) -> None:
        self.theme.__init__(name)  # the scene and items hold this object: recolour in place
        self.setStyleSheet(self.theme.stylesheet())
        self.editor.scene.setBackgroundBrush(self.theme.canvas)
        for item in self.editor.scene.items():
            item.update()  # drops each item's cached picture in the old colours
        (self.dark_action if name == "dark" else self.light_action).setChecked(True)

    # -- reacting to the document -----------------------------------------------------------------------------
    def _refreshed(self) -> None:
        self.summary.update_from(self.editor.doc)
        self.inspector.refresh_if_changed()
        selected = self.editor.scene.selected_node_ids()
        self.summary.select_node(selected[0] if len(selected) == 1 else None)
        self.undo_action.setEnabled(self.editor.stack.can_undo())
        self.redo_action.setEnabled(self.editor.stack.can_redo())
        self.undo_action.setText(f"&Undo {self.editor.stack.undo_text()}".strip())
        self.redo_action.setText(f"&Redo {self.editor.stack.redo_text()}".strip())
        self._update_export_actions()
        state = (id(self.editor.doc), self.editor.doc.revision)
        if state != self._status_state:  # the document changed: an older message (an error since undone) is stale
            self._status_state = state
            self._show_document_status()
        self._refresh_training_panels()
        self.update_title()

    def _update_export_actions(self) -> None:
        problems = self.model_problems()
        reason = "Cannot export: " + "; ".join(problems) if problems else ""
        for action in self.export_actions:
            action.setEnabled(not problems)
            action.setToolTip(reason or action.text().rstrip("…"))

    def _document_replaced(self) -> None:
        self.inspector.show_node(self.editor.doc, None)
        # Train starts from the weights the model came with (a file's, or none: its initializers), every time, so
        # runs with different settings start alike; Continue goes on from where the last run ended.
        self._start_weights = {nid: n.weights for nid, n in self.editor.doc.nodes.items() if n.weights}
        self.training.model = None
        self.curves.clear()
        self.curves.prepare(self.editor.doc.training)
        for run in self.editor.doc.runs:  # the project's earlier runs, to compare against
            self.curves.show_recorded(run)
        self._refresh_training_panels(force=True)

    def _refresh_training_panels(self, force: bool = False) -> None:
        doc = self.editor.doc
        key = (doc.revision, id(doc))
        if not force and key == self._training_panels_key:
            return
        self._training_panels_key = key
        names = [doc.nodes[nid].name for nid, _ in doc.output_node_ports()]
        if not self.training_panel.settings_match(doc.training, names):
            self.training_panel.show_settings(doc.training, names)
            self.curves.prepare(doc.training)
        if not self.data_dock.visibleRegion().isEmpty():  # a tab behind another reports isVisible() all the same
            self.load_training_data(force)
        self.runs_panel.show_runs(doc.runs)
        if not self.training.is_running():
            self.training_panel.set_running(False, self.training.can_continue(doc))
            self.training_panel.show_stale(self._stale_weights_notice(doc))

    def load_training_data(self, force: bool = False) -> None:
        """Bring the Data panel up to date with the document: read its dataset and check it against the drawn model.
        That builds the model on this thread, so it is done only while the panel shows, and before a run or an
        evaluation; not for every edit, and not while a file opens or exports."""
        doc = self.editor.doc
        data_key = (id(doc), doc.structure(), json.dumps(doc.datasets, sort_keys=True, default=str), self.base_dir)
        if force or data_key != self._data_panel_key:
            self._data_panel_key = data_key
            self.data_panel.show_document(doc, self.base_dir)

    @Slot(bool)
    def _data_dock_shown(self, visible: bool) -> None:
        if visible:
            self.load_training_data()

    @staticmethod
    def _stale_weights_notice(doc: Document) -> str:
        trained = [r for r in doc.runs if r.model is not None]
        if trained and structure_of(trained[-1].model) != doc.structure():
            return ("The drawing changed since the last run: its weights no longer fit what is drawn (layers whose "
                    "weights still fit keep them; the others start fresh at the next Train).")
        return ""

    # -- training ---------------------------------------------------------------------------------------------
    def _training_settings_edited(self, settings: dict) -> None:
        if settings != self.editor.doc.training:
            self.editor.push(commands.SetTrainingSettings(self.editor.doc, settings))

    def _dataset_edited(self, spec) -> None:
        current = self.editor.doc.datasets[0] if self.editor.doc.datasets else None
        if spec != current:
            self.editor.push(commands.SetDataset(self.editor.doc, spec))

    def _pause_toggled(self, paused: bool) -> None:
        (self.training.pause if paused else self.training.resume)()
        self.show_status("Training paused." if paused else "Training resumed.")

    def training_problems(self) -> list[str]:
        """Why Train cannot start now (the model, the settings, the data), or []."""
        doc = self.editor.doc
        problems = self.model_problems()
        if problems:
            return problems
        if not doc.training.get("loss"):
            return ["Choose a loss on the Training panel."]
        if self.data_panel.loaded() is None:
            return [self.data_panel.problems()[0] if self.data_panel.problems() else
                    "Choose the training data on the Data panel."]
        if self._adapting is not None:
            return [f"'{self._adapting[0].nodes[self._adapting[2]].name}' is still adapting on the training data."]
        return list(self.data_panel.problems()) or adapting.unadapted_layers(doc)

    @Slot()
    def _data_shown(self) -> None:
        if self._adapt_when_read is not None:
            (node_id, replace), self._adapt_when_read = self._adapt_when_read, None
            if node_id in self.editor.doc.nodes:
                self._adapt_on_loaded_data(node_id, replace)
        if self._train_when_read:
            self._train_when_read = False
            self.train()

    @Slot(str)
    def adapt_layer(self, node_id: str | None = None) -> bool:
        """Adapt a preprocessing layer (the selected one by default) on the Data panel's training data: one undo
        step. Data still being read adapts it when read."""
        doc = self.editor.doc
        if node_id is None:
            ids = self.editor.scene.selected_node_ids()
            node_id = ids[0] if len(ids) == 1 else None
        if node_id is None or node_id not in doc.nodes:
            self.show_status("Select one preprocessing layer to adapt it on the training data.")
            return False
        name = doc.nodes[node_id].name
        problem = None
        if len(self.editor.breadcrumb()) > 1:
            problem = (f"Cannot adapt '{name}' inside a nested model: the training data feeds the model itself. "
                       f"Go back to the model (the breadcrumb above the canvas) and adapt it there.")
        elif self.training.is_running():
            problem = f"Cannot adapt '{name}' while training runs: stop the run first."
        elif self._adapting is not None:
            problem = f"Cannot adapt '{name}' yet: '{self._adapting[0].nodes[self._adapting[2]].name}' is adapting."
        if problem is not None:
            return self._show_adapt_problem(problem)
        replace = bool(adapting.learned_keys(doc, node_id))
        if replace and not self.ask_replace_learned(name, adapting.state_text(doc, node_id).removeprefix("Adapted: ")):
            self.show_status(f"'{name}' keeps what it holds.")
            return False
        self.load_training_data()
        if self.data_panel.busy():
            self._adapt_when_read = (node_id, replace)
            self.show_status(f"Reading the data: '{name}' is adapted when it is read.")
            return True
        return self._adapt_on_loaded_data(node_id, replace)

    def ask_replace_learned(self, name: str, state: str) -> bool:
        answer = QMessageBox.question(self, "Adapt again",
                                      f"'{name}' holds a state it was given or learned before: {state}. Replace it "
                                      f"with what it learns from the training data now? (Undo puts it back.)")
        return answer == QMessageBox.Yes

    def _show_adapt_problem(self, problem: str) -> bool:
        self.inspector.show_adapt_result(problem, error=True)
        self.show_status(problem)
        return False

    def _adapt_on_loaded_data(self, node_id: str, replace: bool = False) -> bool:
        doc = self.editor.doc
        data = self.data_panel.loaded()
        if data is None and self.data_panel.problems():
            return self._show_adapt_problem(f"Cannot adapt '{doc.nodes[node_id].name}': the training data cannot be "
                                            f"read: {self.data_panel.problems()[0]}")
        # Learning a vocabulary from many texts (or running the layers before a deep one) takes a while: it runs on a
        # worker, on a private copy of the drawing, and comes back as one command.
        snapshot = private_copy(doc, {nid: n.weights for nid, n in doc.nodes.items() if n.weights})
        self._adapting = (doc, doc.revision, node_id)
        self.inspector.adapt_button.setEnabled(False)
        self.show_status(f"Adapting '{doc.nodes[node_id].name}' on the training data…")
        self.tasks.start(adapting.adapt_node, (snapshot, node_id, data, replace), self._adapt_done,
                         self._adapt_failed)
        return True

    def is_adapting(self) -> bool:
        return self._adapting is not None

    @Slot(object)
    def _adapt_done(self, adapted) -> None:
        doc, revision, node_id = self._adapting
        self._adapting = None
        self.inspector.update_status()
        if doc is not self.editor.doc or doc.revision != revision:
            self._show_adapt_problem(f"'{doc.nodes[node_id].name if node_id in doc.nodes else node_id}' was not "
                                     f"adapted: the drawing changed while it learned. Adapt it again.")
            return
        if self.editor.push(adapted.command):
            # Continue would go on with the last run's model, which holds what the layer knew before
            self.training.model = None
            self.training_panel.set_running(False, False)
            self.inspector.show_adapt_result(adapted.summary)
            self.show_status(adapted.summary)

    @Slot(str)
    def _adapt_failed(self, text: str) -> None:
        self._adapting = None
        self.inspector.update_status()
        self._show_adapt_problem(text)

    def train(self) -> bool:
        """Start a run of the drawn model on the data panel's data with the training panel's settings. Data still
        being read (a text folder, a large file) starts the run when it is read."""
        if not self.editor.leave_nested():  # whole-model work needs the open nested model written back
            return False
        self.load_training_data()
        if self.data_panel.busy() and not self.model_problems():
            self._train_when_read = True
            self.training_panel.show_notice("Reading the data: training starts when it is read.")
            return True
        problems = self.training_problems()
        if problems:
            self.training_panel.show_notice("Cannot train: " + problems[0], error=True)
            self.show_status("Cannot train: " + problems[0])
            return False
        self._autosave_before_run()
        # What a preprocessing layer learned with adapt (a mean and variance) is its state, not a training result:
        # a run starts from it as it is now.
        start = dict(self._start_weights)
        start.update({nid: n.weights for nid, n in self.editor.doc.nodes.items()
                      if n.weights and adapting.is_adaptable(n.class_name)})
        try:
            self.training.start(self.editor.doc, self.editor.doc.training, self.data_panel.loaded(), start)
        except Exception as exc:  # settings the engine refuses: said on the panel, nothing started
            self.training_panel.show_notice(f"Cannot train: {exc}", error=True)
            return False
        return True

    def continue_training(self) -> bool:
        if not self.editor.leave_nested():  # whole-model work needs the open nested model written back
            return False
        if not self.training.can_continue(self.editor.doc):
            self.training_panel.show_notice("There is no run to continue with the model as drawn.", error=True)
            return False
        self.load_training_data()
        data = self.data_panel.loaded()
        if data is None:
            self.training_panel.show_notice("Cannot continue: choose the training data first.", error=True)
            return False
        self._autosave_before_run()
        try:
            self.training.continue_run(self.editor.doc, self.editor.doc.training, data)
        except Exception as exc:
            self.training_panel.show_notice(f"Cannot continue: {exc}", error=True)
            return False
        return True

    @Slot(object)
    def _runs_selected(self, runs) -> None:
        self.curves.show_only(runs)

    @Slot(object)
    def _runs_diffed(self, layer_names) -> None:
        """The layers that changed between two runs' models are selected on the canvas (those still drawn)."""
        if not layer_names:
            return
        doc = self.editor.doc
        ids = [n.id for n in doc.nodes.values() if n.name in set(layer_names)]
        self.editor.scene.select_nodes(ids)

    @Slot(object)
    def restore_run(self, run) -> bool:
        if self.training.is_running():
            self.show_status("Stop the running training before restoring a run.")
            return False
        try:
            command = commands.RestoreRun(self.editor.doc, run)
        except Exception as exc:
            self.show_status(str(exc))
            return False
        if self.editor.push(command):
            self.training.model = None  # Continue would go on from another model than the one now drawn
            self.view.fit()
            self.show_status(f"Restored the run of {run.started or 'an earlier session'} (undo puts back what was "
                             f"drawn).")
            return True
        return False

    def evaluate(self) -> bool:
        """Evaluate the drawn model, with the document's weights, on the chosen data (the Evaluation panel)."""
        if not self.editor.leave_nested():  # whole-model work needs the open nested model written back
            return False
        from core.training_run import check_settings, compile_model

        doc = self.editor.doc
        problems = self.model_problems()
        if not problems:
            self.load_training_data()
        loaded = self.data_panel.loaded()
        if not problems and not doc.training.get("loss"):
            problems = ["Choose a loss on the Training panel: evaluate reports the compiled loss and metrics."]
        if not problems and loaded is None:
            problems = ["Choose the data on the Data panel first."]
        if problems:
            self.evaluation.show_problem("Cannot evaluate: " + problems[0])
            return False
        which = self.evaluation.source.currentData()
        try:
            if which == "file":
                from app.evaluation_panel import load_test_data

                path = self.evaluation.ask_open_path("Test data", "Data files (*.csv *.npz *.npy)")
                if not path:
                    return False
                data = load_test_data(self.data_panel.spec(), path, self.base_dir, loaded)
                where = f"test file {Path(path).name}"
            else:
                data = evaluation_data(loaded, which)
                where = f"{which} data"
            settings = check_settings(doc.training)
            model = doc.to_model()
            compile_model(model, settings)
            from exporters.datasets import LoadedData, check_fits

            mismatch = check_fits(LoadedData(data[0], data[1]), model)
        except Exception as exc:  # a file or settings that do not fit: said on the panel
            self.evaluation.show_problem(f"Cannot evaluate: {exc}")
            return False
        if mismatch:
            self.evaluation.show_problem("Cannot evaluate: " + mismatch[0])
            return False
        self.evaluation_dock.raise_()
        return self.evaluation.start(model, data, int(settings["batch_size"]), settings["loss"], where)

    def _autosave_before_run(self) -> None:
        """Even a hard crash of the runtime then loses nothing that was drawn."""
        try:
            project.autosave(self.editor.doc, self.path, self.untitled_key)
        except (OSError, ValueError, TypeError) as exc:
            self.show_status(f"Autosave before training failed: {exc}")

    @Slot(object)
    def _run_started(self, run) -> None:
        self.training_panel.set_running(True, False)
        self.training_panel.run_started(run)
        self.curves.run_started(run)
        self.show_status(f"Training {run.label}…")

    @Slot(object)
    def _run_progressed(self, progress) -> None:
        self.training_panel.progressed(progress)
        self.curves.progressed(progress)

    @Slot(object)
    def _run_finished(self, run) -> None:
        doc = self.editor.doc
        self.curves.run_ended(run)
        self.training_panel.run_ended(run)
        if run.epochs_done or run.outcome in ("stopped", "nan"):
            if self.training.model_structure == doc.structure():
                # a NaN run is recorded for its curves, but its weights would spoil the model: they stay out
                weights = {} if run.outcome == "nan" else self.training.trained_weights(doc)
                self.editor.push(commands.RecordRun(doc, run, weights))
            else:
                self.training.model = None
                self.training_panel.show_notice("The drawing changed during the run, so its weights were not put "
                                                "into the model.", error=True)
        self.training_panel.set_running(False, self.training.can_continue(doc))
        self.show_status(run.message)

    @Slot(object)
    def _run_failed(self, result) -> None:
        run, message = result
        self.curves.run_ended(run)
        self.training_panel.run_ended(run)
        self.training_panel.set_running(False, False)
        self.training_panel.show_notice(f"Training failed: {message}", error=True)
        self.show_status(f"Training failed: {message}")

    @Slot()
    def _selection_timer_start(self) -> None:
        self._selection_timer.start()

    def _selection_changed(self) -> None:
        self._selection_timer.stop()
        ids = self.editor.scene.selected_node_ids()
        self.inspector.show_node(self.editor.doc, ids[0] if len(ids) == 1 else None)
        self.summary.select_node(ids[0] if len(ids) == 1 else None)
        self.weights_panel.show_node(ids[0] if len(ids) == 1 else None)
        # the selected layer's error, or no longer its error; a passing message ("Opened ...") stays unless the
        # newly selected layer has an error to show
        showing_document = self.statusBar().currentMessage() in ("", self._document_status_shown)
        if showing_document or self._selected_error():
            self._show_document_status()

    def _selected_error(self) -> bool:
        ids = self.editor.scene.selected_node_ids()
        info = self.editor.doc.analyze().get(ids[0]) if len(ids) == 1 else None
        return info is not None and info.status == "error"

    def _summary_selected(self, node_id: str) -> None:
        self.editor.scene.select_nodes([node_id])
        item = self.editor.scene.node_items.get(node_id)
        if item is not None:
            self.view.ensureVisible(item)

    def _config_edited(self, node_id: str, config: dict) -> None:
        reason = self.editor.set_config(node_id, config)
        if reason:
            self.inspector.show_error(reason)

    # -- editing ---------------------------------------------------------------------------------------------
    def add_layer_at_centre(self, class_name: str) -> str | None:
        """A palette double-click: the new layer goes right of the selected one (where its consumer belongs), or at
        the view's centre, moved to the nearest spot where it covers no other layer."""
        selected = self.editor.scene.selected_node_ids()
        if len(selected) == 1:
            x, y = self.editor.doc.nodes[selected[0]].position
            want = (x + NODE_WIDTH + COLUMN_GAP, y)
        else:
            centre = self.view.mapToScene(self.view.viewport().rect().center())
            want = (centre.x() - NODE_WIDTH / 2, centre.y() - 40)
        node_id = self.editor.add_layer(class_name, self.editor.scene.free_spot(want, class_name))
        if node_id is not None:
            self.view.ensureVisible(self.editor.scene.node_items[node_id], 40, 40)
        return node_id

    def undo(self) -> None:
        self.editor.stack.undo()

    def redo(self) -> None:
        self.editor.stack.redo()

    def copy(self) -> bool:
        _release_clipboard_before_exit()
        fragment = self.editor.copy_fragment()
        if not fragment:
            return False
        text = fragment_to_text(fragment)
        mime = QMimeData()
        mime.setData(CLIPBOARD_MIME, text.encode("utf-8"))
        mime.setText(text)  # plain JSON too, so another window or a text editor can take it
        QGuiApplication.clipboard().setMimeData(mime)
        self.editor.paste_count = 0
        return True

    def cut(self) -> None:
        if self.copy():
            self.editor.delete_selection()

    def paste(self) -> list[str]:
        mime = QGuiApplication.clipboard().mimeData()
        text = bytes(mime.data(CLIPBOARD_MIME)).decode("utf-8") if mime.hasFormat(CLIPBOARD_MIME) else mime.text()
        fragment = fragment_from_text(text)
        if fragment is None:
            self.show_status("The clipboard holds no Netweaver layers.")
            return []
        return self.editor.paste_fragment(fragment)

    def duplicate(self) -> list[str]:
        return self.editor.duplicate()

    def canvas_menu(self) -> QMenu:
        """The canvas's context menu: the Edit menu's actions on the selected layers."""
        menu = QMenu(self)
        menu.setObjectName("canvasMenu")
        for action in (self.call_again_action, self.collapse_action, self.expand_action, self.duplicate_action,
                       self.delete_action):
            menu.addAction(action)
        ids = self.editor.scene.selected_node_ids()
        if len(ids) == 1 and adapting.is_adaptable(self.editor.doc.nodes[ids[0]].class_name):
            menu.addSeparator()
            adapt = menu.addAction("Adapt on training data")
            adapt.setObjectName("adaptAction")
            adapt.triggered.connect(self._adapt_selected)
        return menu

    @Slot()
    def _adapt_selected(self) -> None:
        self.adapt_layer()

    def show_canvas_menu(self, screen_pos) -> None:
        self.canvas_menu().popup(screen_pos)

    def select_all(self) -> None:
        self.editor.scene.select_nodes(list(self.editor.doc.nodes))

    def auto_layout(self) -> None:
        self.editor.auto_layout()
        QTimer.singleShot(0, self.view.fit)

    def start_rename(self, node_id: str) -> None:
        """Rename in place: a line edit over the node's title."""
        item: NodeItem = self.editor.scene.node_items[node_id]
        top_left = self.view.mapFromScene(item.mapToScene(QPointF(6, 3)))
        edit = QLineEdit(item.name, self.view.viewport())
        edit.setObjectName("renameEdit")
        edit.move(top_left)
        edit.resize(int(170 * self.view.transform().m11()), 22)
        edit.selectAll()
        edit.show()
        edit.setFocus()
        self._rename_edit = edit
        self._rename_node = node_id
        edit.editingFinished.connect(self._finish_rename)
        cancel = QAction(edit)
        cancel.setShortcut(QKeySequence(Qt.Key_Escape))
        cancel.setShortcutContext(Qt.WidgetShortcut)
        cancel.triggered.connect(self._cancel_rename)
        edit.addAction(cancel)

    @Slot()
    def _cancel_rename(self) -> None:
        edit, self._rename_edit = self._rename_edit, None
        if edit is not None:
            self._drop_rename_edit(edit)

    def _drop_rename_edit(self, edit: QLineEdit) -> None:
        # hidden at once so its Escape shortcut and focus go with it; deleted when control returns to Qt
        edit.hide()
        self.view.setFocus()
        edit.deleteLater()

    @Slot()
    def _finish_rename(self) -> None:
        edit = self._rename_edit
        if edit is None:
            return
        self._rename_edit = None
        name = edit.text().strip()
        self._drop_rename_edit(edit)
        if name and name != self.editor.doc.nodes[self._rename_node].name:
            reason = self.editor.rename(self._rename_node, name)
            if reason:
                self.show_status(reason)

    def model_problems(self) -> list[str]:
        """Why the drawn model cannot be built, from the engine's analysis (cheap: no model is built)."""
        doc = self.editor.doc
        if not doc.nodes:
            return ["The model is empty: add an input and a layer."]
        problems = [f"{doc.nodes[nid].name}: {err}" for nid, err in doc.errors()]
        incomplete = [doc.nodes[nid].name for nid, i in doc.analyze().items() if i.status == "incomplete"]
        if incomplete:
            problems.append("Not connected: " + ", ".join(incomplete))
        if not problems and not doc.output_node_ports():
            problems.append("The model has no output: add a layer after an input.")
        return problems

    def validate(self, select: bool = True) -> list[str]:
        problems = self.model_problems()
        if not problems:
            try:
                self.editor.doc.to_model()
            except Exception as exc:
                problems.append(str(exc))
        if select:
            self.show_status("The model is valid." if not problems else problems[0])
        if problems and select:
            self.editor.scene.select_nodes([nid for nid, _ in self.editor.doc.errors()])
        return problems

    def show_summary(self) -> None:
        self.summary_dock.show()
        self.summary_dock.raise_()

    # -- files ---------------------------------------------------------------------------------------------
    def maybe_save(self) -> bool:
        """True when it is fine to drop the current document (saved, discarded, or already clean)."""
        if not self.editor.leave_nested():
            return False
        if self.editor.stack.is_clean():
            return True
        answer = self.ask_unsaved()
        if answer == "save":
            return self.save()
        return answer == "discard"

    def new_document(self) -> None:
        if not self.maybe_save():
            return
        self._discard_autosave()
        self.path = self.opened_from = None
        self.base_dir = None
        self.editor.set_document(Document())

    def _example_chosen(self) -> None:
        self.open_example(self.sender().data())

    def open_example(self, path: str) -> None:
        if not self.maybe_save():
            return
        self._start_open(path, as_example=True)

    def open_dialog(self) -> None:
        path = self.ask_open_path("Open project", "Netweaver projects (*.nwproj);;Keras models (*.h5 *.keras *.json "
                                                  "*.yaml);;All files (*)")
        if path and self.maybe_save():
            self._start_open(path)

    def import_dialog(self) -> None:
        path = self.ask_open_path("Import Keras model", "Keras models (*.h5 *.hdf5 *.keras *.json *.yaml *.yml)")
        if path and self.maybe_save():
            self._start_open(path, as_example=True)

    def open_path(self, path: str, wait: bool = False, as_example: bool = False) -> bool:
        """Open a project or Keras file; `wait` loads it before returning (screenshots, scripts); an example or a
        Keras file opens as a new untitled model, so saving never overwrites it."""
        if not wait:
            self._start_open(path, as_example)
            return True
        try:
            doc = load_any(path)
        except Exception as exc:
            self.show_problem("Cannot open", f"Cannot open {Path(path).name}: {exc}")
            return False
        self._opened(doc, path, as_example or Path(path).suffix.lower() in KERAS_SUFFIXES)
        return True

    def _start_open(self, path: str, as_example: bool = False) -> None:
        self._pending_open = {"path": path, "as_example": as_example or Path(path).suffix.lower() in KERAS_SUFFIXES}
        self.show_status(f"Opening {Path(path).name}…")
        self.tasks.start(load_any, (path,), self._open_done, self._open_failed)

    @Slot(object)
    def _open_done(self, doc: Document) -> None:
        pending, self._pending_open = self._pending_open, None
        self._opened(doc, pending["path"], pending["as_example"])

    @Slot(str)
    def _open_failed(self, message: str) -> None:
        pending, self._pending_open = self._pending_open, None
        name = Path(pending["path"]).name if pending else "the file"
        self.show_problem("Cannot open", f"Cannot open {name}: {message}")

    def _opened(self, doc: Document, path: str, untitled: bool) -> None:
        self._discard_autosave()
        self.path = None if untitled else path
        self.base_dir = Path(path).resolve().parent  # an example's data lies beside it too
        self.opened_from = path
        bundled = EXAMPLES in Path(path).resolve().parents
        if Path(path).suffix.lower() in KERAS_SUFFIXES or bundled:  # a bundled example too: with today's node
            self._lay_out_with_drawn_sizes(doc)                      # sizes, its wires have room for their labels
        self.editor.set_document(doc)
        if not untitled:
            self._add_recent(path)
        self.view.fit()
        self.show_status(f"Opened {Path(path).name}: {len(doc.nodes)} layers, {doc.total_params():,} parameters.")

    def _lay_out_with_drawn_sizes(self, doc: Document) -> None:
        """An imported model is laid out once more with its nodes' drawn heights (part of loading, not an edit)."""
        from app.canvas import node_height
        from core.document import layered_layout

        sizes = {nid: (NODE_WIDTH, node_height(doc, nid)) for nid in doc.nodes}
        for nid, pos in layered_layout(doc, dx=NODE_WIDTH + COLUMN_GAP, dy=60, sizes=sizes).items():
            doc.nodes[nid].position = pos

    def save(self) -> bool:
        if not self.path:
            return self.save_as()
        return self._save_to(self.path)

    def save_as(self) -> bool:
        path = self.ask_save_path("Save project", "Netweaver projects (*.nwproj)",
                                  f"{self.editor.doc.name}.nwproj")
        if not path:
            return False
        if not path.endswith(".nwproj"):
            path += ".nwproj"
        return self._save_to(path)

    def _save_to(self, path: str) -> bool:
        if not self.editor.leave_nested():  # whole-model work needs the open nested model written back
            return False
        from exporters.datasets import rebase_spec

        doc = self.editor.doc
        new_base = Path(path).resolve().parent
        if self.base_dir is not None and new_base != self.base_dir:  # relative data paths follow the project
            doc.datasets = [rebase_spec(spec, self.base_dir, new_base) for spec in doc.datasets]
        try:
            project.save_project(doc, path)
        except (OSError, ValueError, TypeError) as exc:
            self.show_problem("Cannot save", f"Cannot save {Path(path).name}: {exc}")
            return False
        self._discard_autosave()
        self.path = path
        self.base_dir = new_base
        self.editor.stack.set_clean()
        self._add_recent(path)
        self.update_title()
        self.show_status(f"Saved {Path(path).name}.")
        return True

    def open_export_dialog(self):
        """The export dialog (formats, Keras target, verified write) for the drawn model and the loaded data."""
        if not self.editor.leave_nested():  # whole-model work needs the open nested model written back
            return False
        from app.export_dialog import ExportDialog

        folder = str(Path(self.path).parent) if self.path else None
        self.export_dialog = ExportDialog(self.editor.doc, self.data_panel.loaded(), folder, self)
        self.export_dialog.show()
        return self.export_dialog

    def _export_chosen(self) -> None:
        self.export_dialog(*self.sender().data())

    def export_dialog(self, fmt: str, filt: str) -> None:
        """Check the model, then ask where to write it (never a path first and the model's problems after)."""
        if not self._refuse_export_of_a_broken_model():
            path = self.ask_save_path("Export model", filt, f"{self.export_stem()}.{fmt.partition('_')[0]}",
                                      kind="export")
            if path:
                self.export(path, fmt)

    def _refuse_export_of_a_broken_model(self) -> bool:
        problems = self.model_problems()
        if problems:
            self.show_problem("Cannot export", "The model has problems: " + "; ".join(problems))
        return bool(problems)

    def export(self, path: str, fmt: str) -> None:
        if not self.editor.leave_nested():  # whole-model work needs the open nested model written back
            return
        # The analysis decides here; building the model is the worker's job (it reports what the analysis missed):
        # building it on the GUI thread froze the window.
        if self._refuse_export_of_a_broken_model():
            return
        # The worker gets its own copy: later edits must not race with the export.
        doc = Document()
        doc.load_graph_dict(json.loads(json.dumps(self.editor.doc.graph_dict())))
        for nid, node in self.editor.doc.nodes.items():
            doc.nodes[nid].weights = node.weights
        self.show_status(f"Exporting {Path(path).name}…")
        self.tasks.start(export_model, (doc, path, fmt), self._export_done, self._export_failed)

    @Slot(object)
    def _export_done(self, path) -> None:
        self.show_status(f"Exported {Path(path).name}.")

    @Slot(str)
    def _export_failed(self, message: str) -> None:
        self.show_problem("Export failed", message)

    # -- recent files -----------------------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        try:
            data = json.loads((data_dir() / "recent.json").read_text(encoding="utf-8"))
            return [str(p) for p in data][:10] if isinstance(data, list) else []
        except (OSError, ValueError):
            return []

    def _add_recent(self, path: str) -> None:
        path = str(Path(path).resolve())
        items = [path] + [p for p in self.recent_files() if p != path]
        try:
            data_dir().mkdir(parents=True, exist_ok=True)
            (data_dir() / "recent.json").write_text(json.dumps(items[:10]), encoding="utf-8")
        except OSError:
            return  # a read-only home only loses the recent list
        self._fill_recent()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.recent_files():
            action = QAction(Path(path).name, self)
            action.setData(path)
            action.setToolTip(path)
            action.triggered.connect(self._recent_chosen)
            self.recent_menu.addAction(action)
        self.recent_menu.setEnabled(bool(self.recent_menu.actions()))

    def _recent_chosen(self) -> None:
        if self.maybe_save():
            self._start_open(self.sender().data())

    # -- autosave and recovery --------------------------------------------------------------------------------
    def autosave_now(self) -> None:
        if self.editor.stack.is_clean() or self.editor.breadcrumb()[1:]:
            return  # inside a nested model the document is not the whole model: the next autosave takes it
        try:
            project.autosave(self.editor.doc, self.path, self.untitled_key)
        except (OSError, ValueError, TypeError) as exc:
            self.show_status(f"Autosave failed: {exc}")

    def _discard_autosave(self) -> None:
        try:
            project.discard_autosave(self.path, self.untitled_key)
        except OSError:
            pass

    def offer_recovery(self) -> bool:
        """At start: if a crash left autosaved copies, offer the most recent one."""
        candidates = project.autosave_candidates()
        if not candidates:
            return False
        newest = max(candidates, key=lambda p: p.stat().st_mtime)
        if not self.ask_recover([newest.name.replace(".autosave", "")]):
            for c in candidates:
                project.remove_autosave_file(c)
            return False
        try:
            doc, origin = project.load_autosave(newest)
        except Exception as exc:
            self.show_problem("Cannot recover", f"The autosaved copy is damaged: {exc}")
            return False
        self.path = origin if origin and Path(origin).exists() else None
        self.base_dir = Path(self.path).resolve().parent if self.path else None
        self.editor.set_document(doc)
        # the recovered work is not saved anywhere yet: mark it dirty so closing asks
        self.editor.stack.set_dirty()
        project.remove_autosave_file(newest)
        self.view.fit()
        self.show_status("Recovered the autosaved copy; save it to keep it.")
        return True

    def closeEvent(self, event) -> None:
        if self._rename_edit is not None:
            self._finish_rename()
        if not self.maybe_save():
            event.ignore()
            return
        if self.training.is_running():
            self.training.stop()
            self.training.wait()
        self._autosave_timer.stop()
        self._discard_autosave()
        # every worker thread of every panel (data reads, evaluations, exports) ends before the window goes: a
        # QThread destroyed while it runs takes the process down
        for runner in self.findChildren(TaskRunner):
            runner.wait_all()
        event.accept()


def _saved_folders() -> dict:
    try:
        data = json.loads((data_dir() / "folders.json").read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _example_title(path: Path) -> str:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data.get("title") or path.stem.replace("_", " ")
    except (OSError, ValueError):
        return path.stem


_clipboard_hook_installed = False


def _release_clipboard_before_exit() -> None:
    """Qt deletes the clipboard's data in a static destructor that runs after Python has shut down; a QMimeData made in
    Python then calls back into the dead interpreter and the process ends in a segfault. Clearing the clipboard from
    an atexit hook deletes it while Python still runs."""
    global _clipboard_hook_installed
    if _clipboard_hook_installed:
        return
    _clipboard_hook_installed = True

    def clear():
        app = QGuiApplication.instance()
        if app is not None:
            app.clipboard().clear()

    atexit.register(clear)

"""The weights panel: each weight of the selected layer as a heat map with its statistics and histogram, how far it
moved since the start of the last run (a heat map of the difference and its L2 norm per epoch), recurrent kernels
split into their labelled gates, and loading a saved weights file into the drawn model.

The values shown are the document's (`LayerNode.weights`: imported or trained) or, for a layer that has none, the
initial values a freshly built model gives it; the header says which. A weight of more than two axes is drawn with
its last axis across and all the others stacked down (a Conv2D kernel (3, 3, 8, 16) as 72 x 16).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSizePolicy, \
    QVBoxLayout, QWidget

from core import commands
from core.document import Document
from core.errors import NetweaverError

# Keras's gate order along the last axis of a recurrent layer's kernel, recurrent kernel and bias.
GATES = {"LSTM": [("i", "input"), ("f", "forget"), ("c", "cell"), ("o", "output")],
         "GRU": [("z", "update"), ("r", "reset"), ("h", "candidate")]}
HISTOGRAM_BINS = 50
WEIGHT_FILES = "Weights (*.weights.h5 *.h5 *.hdf5 *.npz);;All files (*)"


def gates_of(class_name: str, config: dict) -> tuple[list[tuple[str, str]], int] | None:
    """(gates, units) for a gated recurrent layer (or a Bidirectional wrapping one), else None."""
    if class_name == "Bidirectional" and isinstance(config.get("layer"), dict):
        return gates_of(config["layer"].get("class_name", ""), config["layer"].get("config") or {})
    if class_name in GATES and isinstance(config.get("units"), int):
        return GATES[class_name], config["units"]
    return None


def as_matrix(array: np.ndarray) -> np.ndarray:
    """What the heat map draws: rows down, the last axis across."""
    a = np.asarray(array, dtype=np.float64)
    if a.ndim == 0:
        return a.reshape(1, 1)
    if a.ndim == 1:
        return a.reshape(1, -1)
    return a.reshape(-1, a.shape[-1])


def weight_name(path: str, layer_name: str) -> str:
    """'kernel', or 'forward_lstm/kernel' inside a Bidirectional: the path without the layer's own name and cells."""
    parts = path.split("/")
    if len(parts) > 1 and parts[0] == layer_name:
        parts = parts[1:]
    return "/".join([p for p in parts[:-1] if not p.endswith("_cell")] + parts[-1:])


def statistics(array: np.ndarray) -> dict[str, float]:
    a = np.asarray(array, dtype=np.float64)
    if a.size == 0:
        return {"mean": 0.0, "std": 0.0, "min": 0.0, "max": 0.0, "zeros": 0.0}
    return {"mean": float(a.mean()), "std": float(a.std()), "min": float(a.min()), "max": float(a.max()),
            "zeros": float(np.mean(a == 0))}


class WeightsPanel(QWidget):
    """Observes the editor's document; the window calls `show_node` when the selection changes."""

    message = Signal(str)

    def __init__(self, editor, parent=None):
        super().__init__(parent)
        self.editor = editor
        self.node_id: str | None = None
        self.names: list[str] = []      # each weight's name, in get_weights() order
        self.arrays: list[np.ndarray] = []
        self.source = ""                # 'document' or 'initial'
        self._shown_key = None
        self._fresh_cache: tuple | None = None  # (structure, model) of the last fresh build

        self.title = QLabel("Select a layer on the canvas or in the summary to see its weights.")
        self.title.setWordWrap(True)
        self.weight_choice = QComboBox()
        self.weight_choice.setSizeAdjustPolicy(QComboBox.AdjustToContents)
        self.weight_choice.currentIndexChanged.connect(self._draw)
        self.gate_choice = QComboBox()
        self.gate_choice.currentIndexChanged.connect(self._draw)
        self.load_button = QPushButton("Load weights…")
        self.load_button.setToolTip("Load a saved weights file (.weights.h5, .h5, .npz) into the drawn model; "
                                    "nothing changes unless every layer fits.")
        self.load_button.clicked.connect(self.load_dialog)
        self.stats = QLabel()
        self.stats.setWordWrap(True)
        self.change_note = QLabel()
        self.change_note.setWordWrap(True)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #b00020;")
        self.problem.hide()

        pg.setConfigOptions(antialias=True)
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setBackground("w")
        self.plots.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.heat_plot, self.image, self.colour_bar = self._heat_map(0, "Values", "viridis")
        self.hist_plot = self.plots.addPlot(row=1, col=0, title="Histogram")
        self.hist_plot.setLabel("left", "count")
        self.hist_curve = self.hist_plot.plot([0, 1], [0], stepMode="center", fillLevel=0,
                                              brush=(31, 119, 180, 120), pen=pg.mkPen("#1f77b4"))
        self.diff_plot, self.diff_image, self.diff_bar = self._heat_map(2, "Change since the run's start", "CET-D1")
        self.norm_plot = self.plots.addPlot(row=1, col=1, title="‖change‖ per epoch")
        self.norm_plot.setLabel("bottom", "epoch")
        self.norm_plot.setLabel("left", "L2 distance from start")
        self.norm_curve = self.norm_plot.plot([], [], pen=pg.mkPen("#d62728", width=2), symbol="o", symbolSize=5,
                                              symbolBrush="#d62728")
        self.plots.setMinimumHeight(660)  # three rows of plots; the dock scrolls when it is shorter
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.NoFrame)
        scroll.setWidget(self.plots)
        self._gate_marks: list = []

        choices = QHBoxLayout()
        choices.addWidget(QLabel("Weight"))
        choices.addWidget(self.weight_choice, 1)
        choices.addWidget(QLabel("Gate"))
        choices.addWidget(self.gate_choice)
        choices.addWidget(self.load_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addLayout(choices)
        layout.addWidget(self.stats)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.change_note)
        layout.addWidget(self.problem)
        editor.refreshed.connect(self._document_changed)
        editor.documentReplaced.connect(self._document_replaced)
        self._set_enabled(False)

    def _heat_map(self, row: int, title: str, colours: str):
        plot = self.plots.addPlot(row=row, col=0, colspan=2, title=title)
        plot.invertY(True)
        plot.setLabel("bottom", "last axis")
        plot.setLabel("left", "rows")
        image = pg.ImageItem()
        plot.addItem(image)
        bar = pg.ColorBarItem(colorMap=pg.colormap.get(colours), interactive=False, width=12)
        bar.setImageItem(image, insert_in=plot)
        return plot, image, bar

    # -- what to show -----------------------------------------------------------------------------------------
    @property
    def doc(self) -> Document:
        return self.editor.doc

    def show_node(self, node_id: str | None) -> None:
        """Show the weights of this node (None: nothing selected, or several)."""
        self.node_id = node_id if node_id in self.doc.nodes else None
        self._shown_key = None
        if self.isVisible():
            self.refresh()

    def showEvent(self, event) -> None:  # refreshed only while shown: a fresh build is not free
        super().showEvent(event)
        self.refresh()

    def _document_changed(self) -> None:
        if self.node_id is not None and self.node_id not in self.doc.nodes:
            self.node_id = None
        if self.isVisible():
            self.refresh()

    def _document_replaced(self) -> None:
        self._fresh_cache = None
        self.show_node(None)

    def refresh(self) -> None:
        key = (id(self.doc), self.doc.revision, self.node_id)
        if key == self._shown_key:
            return
        self._shown_key = key
        self.problem.hide()
        node = self.doc.nodes.get(self.node_id) if self.node_id else None
        if node is None:
            self._show_nothing("Select a layer on the canvas or in the summary to see its weights.")
            return
        try:
            layer = self._fresh_model().get_layer(node.name)
        except (NetweaverError, ValueError, KeyError) as exc:
            self._show_nothing(f"'{node.name}' ({node.class_name}): its weights cannot be shown until the model "
                               f"is complete ({exc}).")
            return
        self.names = [weight_name(w.path, layer.name) for w in layer.weights]
        fresh = layer.get_weights()
        if node.weights is not None and [np.shape(w) for w in node.weights] == [w.shape for w in fresh]:
            self.arrays = [np.asarray(w) for w in node.weights]
            self.source = "document"
            said = "the model's own (imported, loaded or trained)"
        else:
            self.arrays = fresh
            self.source = "initial"
            said = ("fresh initial values drawn by its initializers: " +
                    ("its weights no longer fit its changed configuration" if node.weights is not None else
                     "it has not been imported, loaded or trained yet") + ", and Train draws its own")
        if not self.arrays:
            self._show_nothing(f"'{node.name}' ({node.class_name}) has no weights.")
            return
        self.title.setText(f"<b>{node.name}</b> ({node.class_name}): {len(self.arrays)} weight(s), {said}.")
        current = self.weight_choice.currentIndex()
        self.weight_choice.blockSignals(True)
        self.weight_choice.clear()
        for name, a in zip(self.names, self.arrays):
            self.weight_choice.addItem(f"{name} {tuple(a.shape)}")
        self.weight_choice.setCurrentIndex(current if 0 <= current < len(self.arrays) else 0)
        self.weight_choice.blockSignals(False)
        self._set_enabled(True)
        self._draw()

    def _fresh_model(self):
        """The drawn model as built now; rebuilt only when the graph changes, so a layer without weights keeps
        showing the same initial values. (Not seeded here: seeding is global and a run may be drawing numbers.)"""
        key = self.doc.structure()
        if self._fresh_cache is None or self._fresh_cache[0] != key:
            self._fresh_cache = (key, self.doc.to_model())
        return self._fresh_cache[1]

    def _show_nothing(self, text: str) -> None:
        self.title.setText(text)
        self.names, self.arrays, self.source = [], [], ""
        self.weight_choice.blockSignals(True)
        self.weight_choice.clear()
        self.weight_choice.blockSignals(False)
        self.gate_choice.clear()
        self.stats.setText("")
        self.change_note.setText("")
        for image in (self.image, self.diff_image):
            image.clear()
        self.hist_curve.setData([0, 1], [0])
        self.norm_curve.setData([], [])
        self._clear_gate_marks()
        self._set_enabled(False)

    def _set_enabled(self, on: bool) -> None:
        self.weight_choice.setEnabled(on)
        self.gate_choice.setEnabled(on and self.gate_choice.count() > 1)
        self.load_button.setEnabled(bool(self.doc.nodes))

    # -- drawing ----------------------------------------------------------------------------------------------
    def current_index(self) -> int:
        return max(self.weight_choice.currentIndex(), 0)

    def current_array(self) -> np.ndarray | None:
        """The selected weight as the document (or the fresh build) holds it."""
        return self.arrays[self.current_index()] if self.arrays else None

    def _gate_slices(self, array: np.ndarray) -> list[tuple[str, slice]]:
        """[('i (input)', columns), ...] when this weight's last axis holds the layer's gates."""
        node = self.doc.nodes[self.node_id]
        found = gates_of(node.class_name, node.config)
        if found is None or array.ndim == 0:
            return []
        gates, units = found
        if array.shape[-1] != len(gates) * units:
            return []
        return [(f"{g} ({word})", slice(i * units, (i + 1) * units)) for i, (g, word) in enumerate(gates)]

    def _update_gate_choice(self, slices) -> None:
        labels = ["All"] + [label for label, _ in slices]
        if [self.gate_choice.itemText(i) for i in range(self.gate_choice.count())] != labels:
            self.gate_choice.blockSignals(True)
            self.gate_choice.clear()
            self.gate_choice.addItems(labels)
            self.gate_choice.blockSignals(False)
        self.gate_choice.setEnabled(len(labels) > 1)

    def _draw(self) -> None:
        array = self.current_array()
        if array is None:
            return
        slices = self._gate_slices(array)
        self._update_gate_choice(slices)
        gate = self.gate_choice.currentIndex() - 1
        columns = slices[gate][1] if 0 <= gate < len(slices) else slice(None)
        shown = as_matrix(array)[:, columns]
        self.image.setImage(shown.T, autoLevels=False)  # ImageItem's first axis runs across
        lo, hi = (float(shown.min()), float(shown.max())) if shown.size else (0.0, 1.0)
        self.colour_bar.setLevels((lo, hi if hi > lo else lo + 1e-12))
        self.heat_plot.setTitle(f"{self.names[self.current_index()]} "
                                f"{'(' + self.gate_choice.currentText() + ')' if gate >= 0 else ''}")
        self._clear_gate_marks()
        s = statistics(shown)
        note = "" if array.ndim <= 2 else f" (drawn as {shown.shape[0]} x {shown.shape[1]})"
        self.stats.setText(f"shape {tuple(array.shape)}{note} · mean {s['mean']:.4g} · std {s['std']:.4g} · "
                           f"min {s['min']:.4g} · max {s['max']:.4g} · zeros {100 * s['zeros']:.1f}%")
        counts, edges = np.histogram(shown, bins=HISTOGRAM_BINS) if shown.size else (np.zeros(1), np.arange(2))
        self.hist_curve.setData(edges, counts)
        self._draw_change(columns)
        if gate < 0 and slices:
            self._mark_gates(slices)

    def _mark_gates(self, slices) -> None:
        """A line between gates and each gate's letter under its columns, on both heat maps."""
        ticks = [((cols.start + cols.stop) / 2, label.split(" ")[0]) for label, cols in slices]
        for plot in (self.heat_plot, self.diff_plot) if self.diff_image.image is not None else (self.heat_plot,):
            for _, cols in slices[1:]:
                line = pg.InfiniteLine(pos=cols.start, angle=90, pen=pg.mkPen("k", width=1.5))
                plot.addItem(line)
                self._gate_marks.append((plot, line))
            plot.getAxis("bottom").setTicks([ticks, []])
            plot.setLabel("bottom", "gates (Keras's order)")

    def _clear_gate_marks(self) -> None:
        for plot, item in self._gate_marks:
            plot.removeItem(item)
        self._gate_marks = []
        for plot in (self.heat_plot, self.diff_plot):
            plot.getAxis("bottom").setTicks(None)
            plot.setLabel("bottom", "last axis")

    def last_run_of_layer(self):
        """The latest run that recorded this layer, or None."""
        name = self.doc.nodes[self.node_id].name
        return next((r for r in reversed(self.doc.runs) if name in r.weight_distances), None)

    def change_since_start(self) -> np.ndarray | None:
        """The selected weight minus its value at the start of the last run (None when that is not known)."""
        run = self.last_run_of_layer() if self.source == "document" else None
        start = run.start_weights.get(self.doc.nodes[self.node_id].name) if run is not None else None
        i = self.current_index()
        if not start or i >= len(start) or start[i].shape != self.arrays[i].shape:
            return None
        return np.asarray(self.arrays[i], np.float64) - start[i]

    def _draw_change(self, columns) -> None:
        run = self.last_run_of_layer()
        i = self.current_index()
        if run is None:
            self.diff_image.clear()
            self.norm_curve.setData([], [])
            self.change_note.setText("No training run has changed this layer yet.")
            return
        number = self.doc.runs.index(run) + 1
        norms = [epoch[i] for epoch in run.weight_distances[self.doc.nodes[self.node_id].name] if i < len(epoch)]
        # The run's start is a distance of 0, at epoch `initial_epoch` (epochs finished before it).
        self.norm_curve.setData(np.arange(run.initial_epoch, run.initial_epoch + 1 + len(norms)), [0.0] + norms)
        diff = self.change_since_start()
        if diff is None:
            self.diff_image.clear()
            self.change_note.setText(f"Run {number}: the L2 distance per epoch is shown; its start values are kept "
                                     f"only in the session that trained it, so the difference map is not.")
            return
        shown = as_matrix(diff)[:, columns]
        self.diff_image.setImage(shown.T, autoLevels=False)
        bound = float(np.abs(shown).max()) if shown.size else 0.0
        self.diff_bar.setLevels((-bound or -1e-12, bound or 1e-12))
        self.change_note.setText(f"Change since the start of run {number} ({run.label}): ‖Δ‖ = "
                                 f"{np.linalg.norm(diff):.4g} over {len(norms)} epoch(s).")

    # -- loading a weights file -------------------------------------------------------------------------------
    def ask_open_path(self) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self, "Load weights into the drawn model", "", WEIGHT_FILES)
        return path or None

    def load_dialog(self) -> None:
        path = self.ask_open_path()
        if path:
            self.load_file(path)

    def load_file(self, path: str) -> bool:
        """Load a weights file into the drawn model as one undoable step; a file that does not fit changes nothing
        and the panel names every layer that does not fit."""
        from pathlib import Path

        from exporters.document_weights import weights_from_file

        self.problem.hide()
        try:
            weights = weights_from_file(self.doc, path)
        except (NetweaverError, OSError) as exc:
            self.problem.setText(str(exc))
            self.problem.show()
            self.message.emit(f"Weights not loaded: {str(exc).splitlines()[0]}")
            return False
        name = Path(path).name
        if not self.editor.push(commands.SetWeights(self.doc, weights, f"Load weights from {name}")):
            return False
        self.editor.refresh()
        self.message.emit(f"Loaded the weights of {len(weights)} layer(s) from {name}.")
        return True

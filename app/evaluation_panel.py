"""The evaluation panel: how good the drawn model (with the document's weights) is on the validation data or a test
file, with every compiled metric as `evaluate` returns them, and where it goes wrong.

A classifier gets a confusion matrix shown as a heat map (counts, or each row divided by its true class's count),
per-class precision, recall and F1, and a table of predictions that sorts by confidence and by loss, to find the hard
and the mislabelled samples; selecting a row shows the sample. A regressor gets predicted against true, and the
residuals. The numbers come from `core.evaluation`; `evaluate` and `predict` run on a worker thread.
"""

from __future__ import annotations

import copy

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QCheckBox, QComboBox, QHBoxLayout, QLabel, QPlainTextEdit, \
    QPushButton, QSplitter, QStackedWidget, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from app.workers import TaskRunner
from core import evaluation

PREDICTION_ROWS = 2000  # the table lists at most this many samples (sorted by the chosen key first)


class _Number(QTableWidgetItem):
    """Sorts by its number, not its text."""

    def __init__(self, value: float, text: str | None = None):
        super().__init__(text if text is not None else f"{value:.4f}")
        self.value = float(value)
        self.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)

    def __lt__(self, other):
        return self.value < getattr(other, "value", 0.0)


def evaluate_model(model, x: list, y: list, batch_size: int, output: int = 0, loss=None, class_names=None):
    """(evaluate's logs, the report of one output) — runs on the worker thread."""
    xs = x[0] if len(x) == 1 else list(x)
    ys = y[0] if len(y) == 1 else list(y)
    logs = model.evaluate(xs, ys, batch_size=batch_size, verbose=0, return_dict=True)
    predictions = model.predict(xs, batch_size=batch_size, verbose=0)
    predictions = predictions if isinstance(predictions, list) else [predictions]
    return logs, evaluation.report(y[output], predictions[output], loss, class_names)


class EvaluationPanel(QWidget):
    message = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.tasks = TaskRunner(self)
        self.source = QComboBox()
        self.source.addItem("Validation data", "validation")
        self.source.addItem("Training data", "training")
        self.source.addItem("Test file…", "file")
        self.evaluate_button = QPushButton("Evaluate")
        self.normalized = QCheckBox("Row-normalized")
        self.normalized.toggled.connect(self._show_confusion)
        self.metrics = QLabel("Train a model, then evaluate it here.")
        self.metrics.setWordWrap(True)
        self.metrics.setTextInteractionFlags(Qt.TextSelectableByMouse)

        self.confusion = QTableWidget()
        self.confusion.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.per_class = QTableWidget(0, 4)
        self.per_class.setHorizontalHeaderLabels(["precision", "recall", "F1", "support"])
        self.per_class.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.predictions = QTableWidget(0, 5)
        self.predictions.setHorizontalHeaderLabels(["sample", "true", "predicted", "confidence", "loss"])
        self.predictions.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.predictions.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.predictions.setSelectionMode(QAbstractItemView.SingleSelection)
        self.predictions.setSortingEnabled(True)
        self.predictions.itemSelectionChanged.connect(self._show_sample)
        self.sample = QPlainTextEdit()
        self.sample.setReadOnly(True)
        self.sample.setPlaceholderText("Select a prediction to see its sample.")

        classifier = QSplitter(Qt.Horizontal)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.normalized)
        ll.addWidget(self.confusion, 1)
        ll.addWidget(self.per_class, 1)
        for table in (self.confusion, self.per_class, self.predictions):
            table.setMinimumHeight(60)
        right = QSplitter(Qt.Vertical)
        right.addWidget(self.predictions)
        right.addWidget(self.sample)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 1)
        classifier.addWidget(left)
        classifier.addWidget(right)

        self.scatter = pg.PlotWidget(title="predicted against true")
        self.scatter.setBackground("w")
        self.scatter.setLabel("bottom", "true")
        self.scatter.setLabel("left", "predicted")
        self.residuals = pg.PlotWidget(title="residuals (predicted - true)")
        self.residuals.setBackground("w")
        self.residuals.setLabel("bottom", "true")
        regression = QSplitter(Qt.Horizontal)
        regression.addWidget(self.scatter)
        regression.addWidget(self.residuals)

        self.views = QStackedWidget()
        self.views.addWidget(QLabel(""))
        self.views.addWidget(classifier)
        self.views.addWidget(regression)

        bar = QHBoxLayout()
        bar.addWidget(QLabel("Evaluate on"))
        bar.addWidget(self.source)
        bar.addWidget(self.evaluate_button)
        bar.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.metrics)
        layout.addWidget(self.views, 1)

        self.report = None
        self.logs: dict = {}
        self._samples = None  # (features or texts) of the evaluated data, for the sample view
        self._feature_names = None
        self._pending = False

    # -- dialogs (tests replace these) ----------------------------------------------------------------------------
    def ask_open_path(self, title: str, filters: str) -> str | None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self, title, "", filters)
        return path or None

    # -- running ---------------------------------------------------------------------------------------------------
    def busy(self) -> bool:
        return self.tasks.busy()

    def start(self, model, data, batch_size: int = 32, loss=None, where: str = "validation data") -> bool:
        """Evaluate `model` (compiled) on `data` = (x list, y list), showing the results when the worker is done."""
        if self.tasks.busy():
            return False
        x, y, samples, class_names, feature_names = data
        self._samples, self._feature_names, self._class_names = samples, feature_names, class_names
        self._where = where
        self.metrics.setText(f"Evaluating on the {where}…")
        self.evaluate_button.setEnabled(False)
        self.tasks.start(evaluate_model, (model, x, y, batch_size, 0, loss, class_names), self._done, self._failed)
        return True

    @Slot(object)
    def _done(self, result) -> None:
        self.evaluate_button.setEnabled(True)
        self.logs, self.report = result
        shown = " - ".join(f"{k}: {v:.4f}" for k, v in self.logs.items())
        n = len(self.report.true)
        self.metrics.setText(f"On the {self._where} ({n:,} samples): {shown}")
        if isinstance(self.report, evaluation.ClassificationReport):
            self.views.setCurrentIndex(1)
            self._show_confusion()
            self._show_per_class()
            self._show_predictions()
        else:
            self.views.setCurrentIndex(2)
            self._show_regression()
        self.message.emit(f"Evaluated: {shown}")

    @Slot(str)
    def _failed(self, text: str) -> None:
        self.evaluate_button.setEnabled(True)
        self.metrics.setText(f"Cannot evaluate: {text}")
        self.message.emit(f"Cannot evaluate: {text}")

    def show_problem(self, text: str) -> None:
        self.metrics.setText(text)

    # -- classifier views --------------------------------------------------------------------------------------------
    def _show_confusion(self) -> None:
        r = self.report
        if not isinstance(r, evaluation.ClassificationReport):
            return
        k = len(r.classes)
        self.confusion.setRowCount(k)
        self.confusion.setColumnCount(k)
        self.confusion.setHorizontalHeaderLabels([f"→ {c}" for c in r.classes])
        self.confusion.setVerticalHeaderLabels(r.classes)
        share = r.normalized()
        for i in range(k):
            for j in range(k):
                text = f"{share[i, j]:.2f}" if self.normalized.isChecked() else f"{r.confusion[i, j]:,}"
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignCenter)
                # the heat: a row's share of its true class, blue on the diagonal and red off it
                strength = int(40 + 200 * share[i, j])
                colour = QColor(66, 133, 244, strength) if i == j else QColor(219, 68, 55, strength if share[i, j]
                                                                                     else 0)
                item.setBackground(colour)
                self.confusion.setItem(i, j, item)
        self.confusion.resizeColumnsToContents()

    def _show_per_class(self) -> None:
        r = self.report
        self.per_class.setRowCount(len(r.classes))
        self.per_class.setVerticalHeaderLabels(r.classes)
        for i in range(len(r.classes)):
            for j, v in enumerate((r.precision[i], r.recall[i], r.f1[i])):
                self.per_class.setItem(i, j, _Number(v, f"{v:.3f}"))
            self.per_class.setItem(i, 3, _Number(r.support[i], f"{int(r.support[i]):,}"))

    def _show_predictions(self) -> None:
        r = self.report
        order = np.argsort(-r.loss)[:PREDICTION_ROWS]  # the worst first: where mistakes and bad labels are
        table = self.predictions
        table.setSortingEnabled(False)
        table.setRowCount(len(order))
        for row, i in enumerate(order):
            table.setItem(row, 0, _Number(i, str(i)))
            table.setItem(row, 1, QTableWidgetItem(r.classes[r.true[i]]))
            table.setItem(row, 2, QTableWidgetItem(r.classes[r.predicted[i]]))
            table.setItem(row, 3, _Number(r.confidence[i]))
            table.setItem(row, 4, _Number(r.loss[i]))
            if r.true[i] != r.predicted[i]:
                for c in range(5):
                    table.item(row, c).setForeground(QColor("#b00020"))
        table.setSortingEnabled(True)
        table.sortItems(4, Qt.DescendingOrder)

    def _show_sample(self) -> None:
        rows = self.predictions.selectionModel().selectedRows()
        if not rows or self._samples is None:
            return
        index = int(self.predictions.item(rows[0].row(), 0).value)
        sample = self._samples[index] if index < len(self._samples) else None
        if isinstance(sample, str):
            self.sample.setPlainText(sample)
        elif sample is not None:
            values = np.asarray(sample).reshape(-1)
            names = self._feature_names if self._feature_names and len(self._feature_names) == len(values) else \
                [f"[{i}]" for i in range(len(values))]
            self.sample.setPlainText("\n".join(f"{n}: {v:.6g}" for n, v in list(zip(names, values))[:200]))

    # -- regression views --------------------------------------------------------------------------------------------
    def _show_regression(self) -> None:
        r = self.report
        true, pred = r.true.reshape(-1), r.predicted.reshape(-1)
        self.scatter.clear()
        self.residuals.clear()
        self.scatter.plot(true, pred, pen=None, symbol="o", symbolSize=5, symbolBrush=(31, 119, 180, 120))
        lo, hi = float(min(true.min(), pred.min())), float(max(true.max(), pred.max()))
        self.scatter.plot([lo, hi], [lo, hi], pen=pg.mkPen("#888", style=Qt.DashLine))
        self.residuals.plot(true, pred - true, pen=None, symbol="o", symbolSize=5, symbolBrush=(214, 39, 40, 120))
        self.residuals.addLine(y=0, pen=pg.mkPen("#888", style=Qt.DashLine))


def evaluation_data(loaded, which: str):
    """(x, y, samples, class names, feature names) of the data panel's LoadedData: its validation or training part."""
    if which == "validation":
        if loaded.validation is None:
            raise ValueError("The data has no validation part: set a validation split or file on the Data panel, "
                             "or evaluate on the training data or a test file.")
        x, y = loaded.validation
        samples = None if loaded.texts is not None else x[0]
    else:
        x, y = loaded.x, loaded.y
        samples = loaded.texts if loaded.texts is not None else x[0]
    return list(x), list(y), samples, loaded.class_names, loaded.feature_names


def test_file_spec(spec: dict, path: str) -> dict:
    """The data panel's spec read from another file: the same columns and conversions, nothing held out."""
    out = copy.deepcopy(spec)
    out["path"] = path
    out.pop("validation", None)
    out.pop("validation_split", None)
    out["name"] = f"test: {path}"
    return out


def load_test_data(spec: dict | None, path: str, base, training):
    """A test file read the way the training data was: the same columns and conversions, with the training part's
    standardization and class order (a test file that lacks a class still numbers the others as training did)."""
    from exporters import datasets

    if spec is None:
        raise ValueError("Choose the training data first: a test file is read the way it was.")
    if spec.get("kind") == "text" and spec.get("texts_as") != "strings":
        raise ValueError("A text test file fed as token ids would need the training data's Tokenizer vocabulary, which "
                         "is not kept; evaluate on the validation data instead (a model with a string Input and "
                         "TextVectorization keeps its vocabulary, so its test files are read as raw text).")
    test_spec = test_file_spec(spec, path)
    if test_spec.get("standardize"):
        test_spec["standardize"] = False
    loaded = datasets.load_dataset(test_spec, base)
    x = list(loaded.x)
    if spec.get("standardize") and training.standardization is not None:
        mean, std = training.standardization
        x[0] = ((x[0] - mean) / std).astype(x[0].dtype)
    y = list(loaded.y)
    if training.class_names and loaded.class_names and loaded.class_names != training.class_names:
        unknown = [c for c in loaded.class_names if c not in training.class_names]
        if unknown:
            raise ValueError(f"The test file has classes the training data had not: {', '.join(unknown[:5])}.")
        remap = np.array([training.class_names.index(c) for c in loaded.class_names])
        if spec.get("label_mode") == "one_hot":
            full = np.zeros((len(y[0]), len(training.class_names)), dtype=y[0].dtype)
            full[:, remap] = y[0]
            y[0] = full
        else:
            y[0] = remap[y[0]]
    samples = loaded.texts if loaded.texts is not None else x[0]
    return x, y, samples, training.class_names, loaded.feature_names

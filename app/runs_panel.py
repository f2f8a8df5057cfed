"""The runs table: every training run the project keeps (when, settings, best and last metrics, duration, device,
outcome). Selecting rows shows only those runs' curves; two selected show what changed between their models, and
the changed layers are selected on the canvas; Restore puts a run's model and weights back (one undoable step)."""

from __future__ import annotations

import datetime

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QAbstractItemView, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QTableWidget, \
    QTableWidgetItem, QVBoxLayout, QWidget

from core.model_diff import diff_models

COLUMNS = ["#", "started", "settings", "epochs", "best val_loss", "last loss", "last metrics", "duration", "device",
           "outcome"]


def _seconds(run) -> float | None:
    try:
        return (datetime.datetime.fromisoformat(run.ended) - datetime.datetime.fromisoformat(run.started)).total_seconds()
    except (TypeError, ValueError):
        return None


class RunsPanel(QWidget):
    selectionChanged = Signal(object)   # the selected runs (a list; empty for none)
    restoreRequested = Signal(object)   # the run to restore
    diffChanged = Signal(object)        # the names of the layers that changed between the two selected runs

    def __init__(self, parent=None):
        super().__init__(parent)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.restore_button = QPushButton("Restore run")
        self.restore_button.setToolTip("Put the selected run's model and the weights it ended with back on the canvas")
        self.diff = QPlainTextEdit()
        self.diff.setReadOnly(True)
        self.diff.setPlaceholderText("Select two runs to see what changed between their models.")
        self.diff.setMaximumHeight(120)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Select runs to compare their curves; two to compare their models."))
        bar.addStretch(1)
        bar.addWidget(self.restore_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.diff)
        self.runs: list = []
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.restore_button.clicked.connect(self._restore_clicked)
        self._selection_changed()

    def show_runs(self, runs: list) -> None:
        if [id(r) for r in runs] == [id(r) for r in self.runs] and self.table.rowCount() == len(runs):
            return
        self.runs = list(runs)
        self.table.blockSignals(True)
        self.table.setRowCount(len(runs))
        for row, run in enumerate(runs):
            history = run.history
            best = min(history["val_loss"]) if history.get("val_loss") else None
            last_loss = history["loss"][-1] if history.get("loss") else None
            metrics = {k: v[-1] for k, v in history.items() if k not in ("loss", "val_loss") and v}
            seconds = _seconds(run)
            cells = [str(row + 1), (run.started or "").replace("T", " "), run.label,
                     f"{run.initial_epoch + 1}–{run.initial_epoch + run.epochs_done}" if run.epochs_done else "0",
                     "" if best is None else f"{best:.4f}", "" if last_loss is None else f"{last_loss:.4f}",
                     ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()),
                     "" if seconds is None else f"{seconds:.1f} s", run.device or "", run.outcome.replace("_", " ")]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(run.message if col == len(cells) - 1 else text)
                self.table.setItem(row, col, item)
        self.table.resizeColumnsToContents()
        self.table.blockSignals(False)
        self._selection_changed()

    def selected_runs(self) -> list:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self.runs[r] for r in rows if r < len(self.runs)]

    def _selection_changed(self) -> None:
        chosen = self.selected_runs()
        self.restore_button.setEnabled(len(chosen) == 1 and chosen[0].model is not None)
        changed = []
        if len(chosen) == 2 and all(r.model is not None for r in chosen):
            changes = diff_models(chosen[0].model, chosen[1].model)
            a, b = (self.runs.index(r) + 1 for r in chosen)
            self.diff.setPlainText(f"Run {a} → run {b}: " + ("the same model." if not changes else "\n" +
                                   "\n".join(str(c) for c in changes)))
            changed = [c.layer for c in changes]
        else:
            self.diff.clear()
        self.selectionChanged.emit(chosen)
        self.diffChanged.emit(changed)

    def _restore_clicked(self) -> None:
        chosen = self.selected_runs()
        if len(chosen) == 1:
            self.restoreRequested.emit(chosen[0])

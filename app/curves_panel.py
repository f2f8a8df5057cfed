"""Live training curves (pyqtgraph): loss and each metric, training and validation, per batch and per epoch, and the
learning rate, for every run of the session, overlaid with a legend that names each run by its settings.

One plot per quantity (loss, each metric, the learning rate). Per batch, the running value fit logs is drawn faint
with an exponential moving average over it; per epoch, a line with a marker at each finished epoch (x = epochs
finished, as Keras's History counts them). Validation curves are dashed. The curves are exported as PNG (the plots as
shown) and CSV (every run's per-epoch history).
"""

from __future__ import annotations

import csv

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QGraphicsItem, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout,
                               QWidget)

from core.training_run import TrainingRun

SMOOTHING = 0.6  # weight of the previous smoothed value (TensorBoard's default)
RUN_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
PLOTS_PER_ROW = 3
REDRAW_MS = 400
MARKED_EPOCHS = 40


def smooth(values) -> np.ndarray:
    """An exponential moving average, debiased at the start as TensorBoard does."""
    out = np.empty(len(values))
    acc, weight = 0.0, 0.0
    for i, v in enumerate(values):
        acc = SMOOTHING * acc + (1 - SMOOTHING) * v
        weight = SMOOTHING * weight + (1 - SMOOTHING)
        out[i] = acc / weight
    return out


def quantity(key: str) -> str:
    """The plot a log belongs on: 'val_accuracy' and 'accuracy' share the 'accuracy' plot."""
    return key[4:] if key.startswith("val_") else key


class _RunCurves:
    """The plotted state of one run: per-batch x and logs, per-epoch x and logs. They are copies of what the
    progress reports carried, since the run's own history grows on the training thread."""

    def __init__(self, run: TrainingRun, number: int, colour: str):
        self.run, self.number, self.colour = run, number, colour
        self.batch_x: list[float] = []
        self.batch_logs: dict[str, list[float]] = {}
        self.epoch_x: list[float] = []
        self.epoch_logs: dict[str, list[float]] = {}
        self.items: dict[tuple[str, str], pg.PlotDataItem] = {}

    def load_history(self) -> None:
        """Per-epoch curves from a finished run (one that was recorded, or one whose reports ended)."""
        run = self.run
        self.epoch_x = [float(run.initial_epoch + i + 1) for i in range(run.epochs_done)]
        self.epoch_logs = {k: list(v) for k, v in run.history.items()}
        if run.learning_rates:
            self.epoch_logs["learning_rate"] = list(run.learning_rates)

    @property
    def name(self) -> str:
        return f"Run {self.number}: {self.run.label}"


class CurvesPanel(QWidget):
    """Observes a `TrainingSession`: `run_started`, `progressed` and `run_ended` are connected by the window."""

    message = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        pg.setConfigOptions(antialias=True)
        self.layout_widget = pg.GraphicsLayoutWidget()
        self.layout_widget.setBackground("w")
        self.log_scale = QCheckBox("Log scale")
        self.log_scale.toggled.connect(self._apply_log_scale)
        self.show_batches = QCheckBox("Per batch")
        self.show_batches.setChecked(True)
        self.show_batches.toggled.connect(self._redraw_all)
        self.export_png_button = QPushButton("Export PNG…")
        self.export_csv_button = QPushButton("Export CSV…")
        self.export_png_button.clicked.connect(self._export_png_clicked)
        self.export_csv_button.clicked.connect(self._export_csv_clicked)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Forget the session's earlier runs (the project keeps them)")
        self.clear_button.clicked.connect(self.clear)
        self.status = QLabel("No run yet: set the data and press Train.")
        key = QLabel("solid: train · dashed: validation · faint: batches")
        key.setToolTip(key.text())
        key.setStyleSheet("color: gray;")
        for label in (self.status, key):  # long texts elide rather than widen the window
            label.setMinimumWidth(40)
            label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        bar = QHBoxLayout()
        for w in (self.log_scale, self.show_batches):
            bar.addWidget(w)
        bar.addWidget(self.status, 3)
        bar.addWidget(key, 2)
        for w in (self.clear_button, self.export_png_button, self.export_csv_button):
            bar.addWidget(w)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.layout_widget, 1)
        self.plots: dict[str, pg.PlotItem] = {}
        self.runs: list[_RunCurves] = []
        self._lr_top = None
        self._running = False
        self._x_end = 0.0
        # Progress arrives up to 30 times a second, but pyqtgraph repaints every axis of every plot on each change
        # (most of the GUI thread's time while training, measured with py-spy): redraw at most this often.
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(REDRAW_MS)
        self._redraw_timer.timeout.connect(self._redraw_pending)
        self._pending: set[int] = set()
        # What waits for its turn of the event loop (`_next_turn`): lines a starting run will draw, as (curves, plot,
        # key, role), and plots to redraw, as (curves, plot), the latter fitted to what they show if in `_to_fit`.
        self._to_make: list[tuple] = []
        self._plots_to_redraw: list[tuple[_RunCurves, str]] = []
        self._to_fit: set[str] = set()
        self._turn_timer = QTimer(self)
        self._turn_timer.setSingleShot(True)
        self._turn_timer.setInterval(0)
        self._turn_timer.timeout.connect(self._next_turn)
        self._update_buttons()

    # -- runs ------------------------------------------------------------------------------------------------------
    def run_started(self, run: TrainingRun) -> None:
        curves = _RunCurves(run, len(self.runs) + 1, RUN_COLOURS[len(self.runs) % len(RUN_COLOURS)])
        self.runs.append(curves)
        self._running = True
        planned = run.initial_epoch + int(run.settings.get("epochs") or 0)
        self._x_end = float(max([planned] + [c.run.initial_epoch + c.run.epochs_done for c in self.runs]))
        # The lines this run will draw are made now, before its first step, one per turn of the event loop: making a
        # pyqtgraph item (and the legend's entry) takes several milliseconds each, which would otherwise hold up
        # the window as a whole, either as the run starts or mid-run.
        names = ["loss"] + [m for m in (run.settings.get("metrics") or []) if isinstance(m, str)]
        validated = bool(run.settings.get("validation_split")) or bool(
            isinstance(run.dataset, dict) and (run.dataset.get("validation") or run.dataset.get("validation_split")))
        for key in names + ([f"val_{k}" for k in names] if validated else []):
            self._to_make.append((curves, quantity(key), key, "epoch"))
            if not key.startswith("val_"):
                self._to_make.append((curves, quantity(key), key, "batch_raw"))
                self._to_make.append((curves, quantity(key), key, "batch_smooth"))
        self._to_make.append((curves, "learning_rate", "learning_rate", "epoch"))
        self._turn_timer.start()
        self.status.setText(f"{curves.name}: starting…")
        self._update_buttons()

    def prepare(self, settings: dict) -> None:
        """Make the plots a run with these settings will draw on (loss, each named metric, the learning rate) ahead
        of Train: making a pyqtgraph plot takes about 30 ms, which would otherwise hold up the window as the run
        starts."""
        names = ["loss"] + [m for m in (settings.get("metrics") or []) if isinstance(m, str)] + ["learning_rate"]
        for name in names:
            self._plot(quantity(name))

    def show_recorded(self, run: TrainingRun) -> None:
        """A run the project kept from an earlier session: its per-epoch curves, for comparison."""
        self.run_started(run)
        self._running = False
        self.runs[-1].load_history()
        self._redraw(self.runs[-1])
        self.status.setText(f"{len(self.runs)} earlier run(s) of this project")
        self._update_buttons()

    def progressed(self, progress) -> None:
        curves = self._curves_of(progress.run)
        if curves is None:
            return
        steps = progress.steps or 1
        for index, logs in progress.batches:
            curves.batch_x.append(progress.run.initial_epoch + (index + 1) / steps)
            for key, value in logs.items():
                curves.batch_logs.setdefault(key, []).append(float(value))
        for epoch, logs, lr in progress.epoch_logs:
            curves.epoch_x.append(float(epoch + 1))
            for key, value in logs.items():
                curves.epoch_logs.setdefault(key, []).append(float(value))
            if lr is not None:
                curves.epoch_logs.setdefault("learning_rate", []).append(float(lr))
        self._pending.add(id(curves))
        if not self._redraw_timer.isActive():
            self._redraw_timer.start()
        if progress.epochs:
            self.status.setText(f"{curves.name}: epoch {progress.epoch + 1}/{progress.epochs}")

    def _redraw_pending(self) -> None:
        """The plots of the runs that reported since the last redraw wait for their turns."""
        for curves in self.runs:
            if id(curves) in self._pending:
                for name in dict.fromkeys(map(quantity, [*curves.epoch_logs, *curves.batch_logs])):
                    if (curves, name) not in self._plots_to_redraw:
                        self._plots_to_redraw.append((curves, name))
        self._pending.clear()
        self._next_turn()

    def _next_turn(self) -> None:
        """One piece of drawing per turn of the event loop: making one line (several ms each, with its legend
        entry), or redrawing one plot (a plot whose axes move draws its ticks, grid and labels again, about 10 ms
        by cProfile; all plots in one turn held the window up for 40-60 ms)."""
        if self._to_make:
            self._item(*self._to_make.pop(0))
        elif self._plots_to_redraw:
            curves, name = self._plots_to_redraw.pop(0)
            self._redraw(curves, name)
            if name in self._to_fit and not self._running:  # the run is over: fit the axes to what they show
                self._to_fit.discard(name)
                self.plots[name].enableAutoRange(x=True, y=name != "learning_rate" or self.log_scale.isChecked())
        if self._to_make or self._plots_to_redraw:
            self._turn_timer.start()

    def run_ended(self, run: TrainingRun) -> None:
        """The run's whole history is drawn and every plot fitted to what it holds, one plot per turn of the event
        loop (fitting them all at once held the window up for 50-90 ms)."""
        curves = self._curves_of(run)
        self._running = False
        if curves is not None:
            curves.load_history()
            self._pending.discard(id(curves))
            self._plots_to_redraw = [(c, n) for c, n in self._plots_to_redraw if c is not curves]
            self._plots_to_redraw += [(curves, name) for name in self.plots]
            self._to_fit.update(self.plots)
            self._redraw_timer.stop()
            self._turn_timer.start()
            self.status.setText(f"{curves.name}: {run.outcome.replace('_', ' ')}")
        self._update_buttons()

    def flush(self) -> None:
        """Draw now what is waiting for its turn (before reading the curves back or exporting them)."""
        self._redraw_timer.stop()
        self._redraw_pending()
        while self._to_make or self._plots_to_redraw:
            self._next_turn()
        self._turn_timer.stop()

    def show_only(self, runs) -> None:
        """Draw only these runs (the runs table's selection); None or empty: every run."""
        chosen = {id(r) for r in runs or []}
        for curves in self.runs:
            visible = not chosen or id(curves.run) in chosen
            for item in curves.items.values():
                item.setVisible(visible)

    def clear(self) -> None:
        self._pending.clear()
        self._plots_to_redraw.clear()
        self._to_fit.clear()
        self._to_make.clear()
        self._lr_top = None
        self.runs = []
        self.layout_widget.clear()
        self.plots = {}
        self.status.setText("No run yet: set the data and press Train.")
        self._update_buttons()

    def _curves_of(self, run) -> _RunCurves | None:
        return next((c for c in self.runs if c.run is run), None)

    def _update_buttons(self) -> None:
        has = any(c.epoch_x or c.batch_x for c in self.runs)
        for b in (self.export_png_button, self.export_csv_button):
            b.setEnabled(has)
        self.clear_button.setEnabled(bool(self.runs))

    # -- drawing ---------------------------------------------------------------------------------------------------
    def _plot(self, name: str) -> pg.PlotItem:
        plot = self.plots.get(name)
        if plot is None:
            index = len(self.plots)
            plot = self.layout_widget.addPlot(row=index // PLOTS_PER_ROW, col=index % PLOTS_PER_ROW,
                                              title=name.replace("_", " "))
            plot.showGrid(x=True, y=True, alpha=0.25)
            plot.setLabel("bottom", "epoch")
            plot.getAxis("left").setWidth(58)  # room for '0.0005': a narrower axis drops such labels
            if index == 0:  # one legend names the runs; the other plots use the same colours
                legend = plot.addLegend(offset=(-5, 5), labelTextSize="8pt")
                legend.setBrush(pg.mkBrush(255, 255, 255, 200))
            plot.setLogMode(y=self.log_scale.isChecked())
            for side in ("left", "bottom"):
                # An axis draws its grid across the plot, so each new point repainted every axis's ticks, grid and
                # labels (three quarters of a repaint, by cProfile). Cached as a pixmap, an axis is drawn again
                # only when its range or size changes, which the held axes of a running run rarely do.
                plot.getAxis(side).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="peak")
            self.plots[name] = plot
        return plot

    def _item(self, curves: _RunCurves, plot_name: str, key: str, role: str) -> pg.PlotDataItem:
        """One line of a run: role 'epoch', 'batch_raw' or 'batch_smooth' of log `key`."""
        item = curves.items.get((key, role))
        if item is None:
            colour = pg.mkColor(curves.colour)
            style = Qt.DashLine if key.startswith("val_") else Qt.SolidLine
            if key == "learning_rate":
                style = Qt.SolidLine
            if role == "batch_raw":
                colour.setAlpha(55)
                item = pg.PlotDataItem(pen=pg.mkPen(colour, width=1))
            elif role == "batch_smooth":
                colour.setAlpha(150)
                item = pg.PlotDataItem(pen=pg.mkPen(colour, width=1.5))
            else:
                named = not key.startswith("val_") and key != "learning_rate"
                item = pg.PlotDataItem(pen=pg.mkPen(colour, width=2, style=style), symbol="o", symbolSize=6,
                                       symbolBrush=colour, symbolPen=None, name=curves.name if named else None)
            self._plot(plot_name).addItem(item)
            curves.items[(key, role)] = item
        return item

    def _redraw(self, curves: _RunCurves, only: str | None = None) -> None:
        """Set a run's lines from its logs: those of every plot, or `only` that plot's."""
        bounds: dict[str, list[float]] = {}

        def seen(plot: str, ys: np.ndarray) -> None:
            finite = ys[np.isfinite(ys)]
            if finite.size:
                lo, hi = bounds.get(plot, [np.inf, -np.inf])
                bounds[plot] = [min(lo, float(finite.min())), max(hi, float(finite.max()))]

        def wanted(key: str) -> bool:
            return only is None or quantity(key) == only

        for key, values in curves.epoch_logs.items():
            if not wanted(key):
                continue
            n = min(len(values), len(curves.epoch_x))
            item = self._item(curves, quantity(key), key, "epoch")
            ys = np.asarray(values[:n], dtype=float)
            item.setData(np.asarray(curves.epoch_x[:n]), ys)
            # markers come when the run ends (pyqtgraph builds their atlas on first use, a pause mid-run), and past
            # MARKED_EPOCHS they would only crowd the line
            item.setSymbol("o" if n <= MARKED_EPOCHS and not self._running else None)
            seen(quantity(key), ys)
        if wanted("learning_rate"):
            self._fit_learning_rate_axis()
        show = self.show_batches.isChecked()
        for key, values in curves.batch_logs.items():
            if not wanted(key):
                continue
            n = min(len(values), len(curves.batch_x))
            raw = self._item(curves, quantity(key), key, "batch_raw")
            smooth_item = self._item(curves, quantity(key), key, "batch_smooth")
            if show and n:
                ys = np.asarray(values[:n], dtype=float)
                raw.setData(np.asarray(curves.batch_x[:n]), ys)
                smooth_item.setData(np.asarray(curves.batch_x[:n]), smooth(ys))
                seen(quantity(key), ys)
            else:
                raw.setData([], [])
                smooth_item.setData([], [])
        if self._running:
            self._hold_axes(bounds, only)

    def _hold_axes(self, bounds: dict, only: str | None = None) -> None:
        """While a run reports, the axes move only when the data leave them: the x axis spans the planned epochs, a
        y axis grows by a margin when a value falls outside it. pyqtgraph redraws an axis's ticks and labels
        whenever its range changes, which an auto-ranged plot does on every report (most of the GUI thread's
        time while training, by py-spy)."""
        for name, plot in self.plots.items():
            if only is not None and name != only:
                continue
            if self._x_end and plot.getViewBox().viewRange()[0] != [0.0, self._x_end]:
                plot.setXRange(0.0, self._x_end, padding=0)
            if name == "learning_rate" or self.log_scale.isChecked() or name not in bounds:
                continue
            lo, hi = bounds[name]
            view_lo, view_hi = plot.getViewBox().viewRange()[1]
            auto_y = plot.getViewBox().autoRangeEnabled()[1] is not False  # still auto-ranged: take over once
            if auto_y or lo < view_lo or hi > view_hi:
                margin = max((hi - lo) * 0.15, abs(hi) * 0.05, 1e-6)
                plot.setYRange(lo - margin, hi + margin, padding=0)

    def _fit_learning_rate_axis(self) -> None:
        """A learning rate that stays constant would get an axis of ±0.5 around it: start the axis at 0 instead."""
        plot = self.plots.get("learning_rate")
        if plot is None:
            return
        if self.log_scale.isChecked():
            self._lr_top = None
            plot.enableAutoRange(y=True)
            return
        top = max((max(c.epoch_logs.get("learning_rate") or [0.0]) for c in self.runs), default=0.0)
        if top > 0 and top != self._lr_top:
            self._lr_top = top
            plot.setYRange(0.0, top * 1.25, padding=0)

    def _redraw_all(self) -> None:
        for curves in self.runs:
            self._redraw(curves)

    def _apply_log_scale(self, on: bool) -> None:
        for plot in self.plots.values():
            plot.setLogMode(y=on)
        self._fit_learning_rate_axis()

    # -- reading back (tests, export) -------------------------------------------------------------------------------
    def epoch_curve(self, run_number: int, key: str) -> tuple[np.ndarray, np.ndarray]:
        """The plotted per-epoch points of run `run_number` (1-based) for log `key`."""
        self.flush()
        item = self.runs[run_number - 1].items.get((key, "epoch"))
        if item is None:
            return np.array([]), np.array([])
        x, y = item.getData()
        return (np.array([]), np.array([])) if x is None else (np.asarray(x), np.asarray(y))

    def legend_names(self, plot: str = "loss") -> list[str]:
        legend = self.plots[plot].legend
        return [label.text for _, label in legend.items] if legend is not None else []

    # -- export ------------------------------------------------------------------------------------------------------
    def ask_save_path(self, title: str, filters: str, suggested: str) -> str | None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(self, title, suggested, filters)
        return path or None

    def _export_png_clicked(self) -> None:
        path = self.ask_save_path("Export curves", "PNG image (*.png)", "curves.png")
        if path:
            self.export_png(path)

    def _export_csv_clicked(self) -> None:
        path = self.ask_save_path("Export curves", "CSV table (*.csv)", "curves.csv")
        if path:
            self.export_csv(path)

    def export_png(self, path: str) -> None:
        self.flush()
        if not self.layout_widget.grab().save(path):
            self.message.emit(f"Could not write {path}.")
            return
        self.message.emit(f"Wrote the curves to {path}.")

    def export_csv(self, path: str) -> None:
        """One row per run and epoch: run, its settings, epoch, learning rate and every log."""
        keys = sorted({k for c in self.runs for k in c.epoch_logs if k != "learning_rate"})
        try:
            with open(path, "w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow(["run", "settings", "epoch", "learning_rate"] + keys)
                for c in self.runs:
                    for i, x in enumerate(c.epoch_x):
                        row = [c.number, c.run.label, int(x)]
                        for k in ["learning_rate"] + keys:
                            values = c.epoch_logs.get(k, [])
                            row.append(values[i] if i < len(values) else "")
                        writer.writerow(row)
        except OSError as exc:
            self.message.emit(f"Could not write {path}: {exc}")
            return
        self.message.emit(f"Wrote the curves to {path}.")

"""Training in the window: one run at a time on a worker thread, reported to the GUI in batches.

`TrainingSession` lives in the GUI thread. `start` copies what the run needs (the drawn graph, the weights it starts
from, the data arrays, the settings) and hands it to a `TrainingWorker` in its own QThread, which carries the run out
with `core.training_run.execute_run` exactly as `python main.py train` does. The worker gathers the run's batch and
epoch logs and log lines and emits them at most about 30 times a second (`Progress`), so a fast model cannot flood
the event loop. Stop, Pause and Resume go through a `RunControl`, which the worker checks after every batch.

PySide6 runs a slot that is a plain function in the emitting thread, so the worker's signals connect only to methods
of this QObject, which lives in the GUI thread (see DESIGN.md, section 5).
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from core.document import Document
from core.training_run import RunControl, RunObserver, TrainingRun, build_model, check_settings, execute_run

EMIT_INTERVAL = 1 / 30  # seconds between progress reports at most


@dataclass
class Progress:
    """What happened since the last report."""

    run: TrainingRun
    epoch: int = 0            # the epoch running (0-based, counted from the run's first epoch)
    batch: int = 0            # batches finished in that epoch
    steps: int | None = None  # batches per epoch
    epochs: int = 0           # the epoch count fit was given (initial epoch + the run's epochs)
    batches: list = field(default_factory=list)  # (global batch index, logs) of each batch finished
    epoch_logs: list = field(default_factory=list)  # (epoch, logs, learning rate) of each epoch finished
    lines: list = field(default_factory=list)  # fit(verbose=1)'s lines
    elapsed: float = 0.0      # seconds since the run started
    epoch_started: float = 0.0  # seconds since the running epoch started


@dataclass
class TrainingJob:
    """Everything a run needs, copied off the document so later edits cannot race with it."""

    doc: Document             # a private copy of the drawn graph with the weights the run starts from
    run: TrainingRun
    x: list
    y: list
    validation: tuple | None
    model: object = None      # the model to keep training (Continue), with its optimizer state


class _Reporter(RunObserver):
    """Collects the run's progress on the training thread; the worker sends it at most every EMIT_INTERVAL."""

    def __init__(self, worker: "TrainingWorker", run: TrainingRun):
        self.worker, self.run = worker, run
        self.lock = threading.Lock()
        self.pending = Progress(run)
        self.started = time.perf_counter()
        self.epoch_started = self.started
        self.last_emit = 0.0
        self.total_batches = 0

    def on_start(self, run, epochs, steps):
        with self.lock:
            self.pending.epochs, self.pending.steps = epochs, steps
            self.pending.epoch = run.initial_epoch

    def on_batch(self, epoch, batch, logs):
        with self.lock:
            p = self.pending
            p.epoch, p.batch = epoch, batch + 1
            p.batches.append((self.total_batches, dict(logs)))
            self.total_batches += 1
        self.flush()

    def on_epoch(self, epoch, logs):
        with self.lock:
            lr = self.run.learning_rates[-1] if self.run.learning_rates else None
            self.pending.epoch_logs.append((epoch, dict(logs), lr))
        self.flush(force=True)

    def on_log(self, line):
        with self.lock:
            self.pending.lines.append(line)
            if line.startswith("Epoch "):
                self.epoch_started = time.perf_counter()

    def flush(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last_emit < EMIT_INTERVAL:
            return
        with self.lock:
            report, p = self.pending, self.pending
            self.pending = Progress(self.run, p.epoch, p.batch, p.steps, p.epochs)
        report.elapsed = now - self.started
        report.epoch_started = now - self.epoch_started
        self.last_emit = now
        self.worker.progressed.emit(report)


class TrainingWorker(QObject):
    progressed = Signal(object)  # Progress
    finished = Signal(object)    # (run, model)
    failed = Signal(object)      # (run, message)

    def __init__(self, job: TrainingJob, control: RunControl):
        super().__init__()
        self.job, self.control = job, control

    @Slot()
    def run(self) -> None:
        job = self.job
        reporter = _Reporter(self, job.run)
        try:
            model = job.model if job.model is not None else build_model(job.doc, job.run.settings)
            execute_run(model, job.run, job.x, job.y, job.validation, control=self.control, observer=reporter)
        except Exception as exc:  # shown on the panel; the app and the drawing carry on
            from core.errors import NetweaverError

            text = str(exc) or type(exc).__name__
            if not isinstance(exc, (NetweaverError, OSError, RuntimeError)):
                text = f"{type(exc).__name__}: {text}"
            job.run.outcome, job.run.message = "error", text
            reporter.flush(force=True)
            self.failed.emit((job.run, text))
            return
        reporter.flush(force=True)
        self.finished.emit((job.run, model))


class TrainingSession(QObject):
    """The window's training: at most one run at a time; keeps this session's runs for the curves to overlay."""

    started = Signal(object)     # TrainingRun
    progressed = Signal(object)  # Progress
    finished = Signal(object)    # TrainingRun (finished, stopped, early-stopped or NaN)
    failed = Signal(object)      # (TrainingRun, message)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.runs: list[TrainingRun] = []
        self.model = None            # the last run's model, for Continue (its optimizer state is kept)
        self.model_structure = None  # Document.structure() of the graph that model was built from
        self.control: RunControl | None = None
        self._thread: QThread | None = None
        self._worker: TrainingWorker | None = None

    # -- state --------------------------------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self._thread is not None

    def can_continue(self, doc: Document) -> bool:
        return not self.is_running() and self.model is not None and self.model_structure == doc.structure()

    # -- starting ------------------------------------------------------------------------------------------------
    def start(self, doc: Document, settings: dict, data, start_weights: dict | None = None) -> TrainingRun:
        """A new run of the drawn model from `start_weights` ({node id: arrays}; a layer without any starts from
        its initializers, seeded by the settings' seed). `data` is the data panel's LoadedData."""
        settings = check_settings(settings)
        copy_doc = private_copy(doc, start_weights or {})
        run = TrainingRun(settings=copy.deepcopy(settings), dataset=copy.deepcopy(doc.datasets[0])
                          if doc.datasets else None, model=doc.graph_dict())
        self.model_structure = doc.structure()
        self.model = None
        return self._launch(TrainingJob(copy_doc, run, list(data.x), list(data.y), data.validation))

    def continue_run(self, doc: Document, settings: dict, data) -> TrainingRun:
        """More epochs of the last run's model, from where it ended, with its optimizer state."""
        if not self.can_continue(doc):
            raise RuntimeError("There is no run to continue: the drawing changed since the last run, or none ran.")
        last = self.runs[-1]
        settings = check_settings(settings)
        run = TrainingRun(settings=copy.deepcopy(settings), dataset=copy.deepcopy(last.dataset),
                          model=doc.graph_dict(), initial_epoch=last.initial_epoch + last.epochs_done,
                          continues=len(doc.runs) - 1 if doc.runs else None)
        from core.training_run import compile_model

        if _compile_part(settings) != _compile_part(last.settings):
            compile_model(self.model, settings)  # as Keras's compile: the same weights, a fresh optimizer
        return self._launch(TrainingJob(None, run, list(data.x), list(data.y), data.validation, model=self.model))

    def _launch(self, job: TrainingJob) -> TrainingRun:
        if self.is_running():
            raise RuntimeError("A run is already going on; stop it first.")
        self.control = RunControl()
        thread = QThread()
        worker = TrainingWorker(job, self.control)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.progressed.connect(self._progressed)
        worker.finished.connect(self._finished)
        worker.failed.connect(self._failed)
        worker.finished.connect(thread.quit)
        worker.failed.connect(thread.quit)
        self._thread, self._worker = thread, worker
        self.runs.append(job.run)
        thread.start()
        self.started.emit(job.run)
        return job.run

    # -- controls ------------------------------------------------------------------------------------------------
    def stop(self) -> None:
        if self.control is not None:
            self.control.stop()

    def pause(self) -> None:
        if self.control is not None:
            self.control.pause()

    def resume(self) -> None:
        if self.control is not None:
            self.control.resume()

    @property
    def paused(self) -> bool:
        return self.control is not None and self.control.paused and self.is_running()

    def wait(self, ms: int = 60000) -> bool:
        """Block until the running run ends (tests and closing the window)."""
        if self._thread is None:
            return True
        return self._thread.wait(ms)

    # -- reports from the worker (GUI thread) -------------------------------------------------------------------
    @Slot(object)
    def _progressed(self, progress: Progress) -> None:
        self.progressed.emit(progress)

    @Slot(object)
    def _finished(self, result) -> None:
        run, model = result
        self._reap()
        self.model = model
        self.finished.emit(run)

    @Slot(object)
    def _failed(self, result) -> None:
        self._reap()
        self.model = None
        self.failed.emit(result)

    def _reap(self) -> None:
        thread, worker = self._thread, self._worker
        self._thread = self._worker = None
        if thread is not None:
            thread.quit()
            thread.wait()
            worker.deleteLater()
            thread.deleteLater()

    def trained_weights(self, doc: Document) -> dict[str, list]:
        """The last run's weights per node id of `doc` (the layers carry the nodes' names)."""
        if self.model is None:
            return {}
        out = {}
        for nid, node in doc.nodes.items():
            if node.class_name == "InputLayer":
                continue
            try:
                weights = self.model.get_layer(node.name).get_weights()
            except ValueError:
                continue
            out[nid] = [np.array(w) for w in weights] or None
        return {k: v for k, v in out.items() if v}


def _compile_part(settings: dict) -> dict:
    keys = ("optimizer", "learning_rate", "loss", "metrics", "loss_weights", "weighted_metrics")
    return {k: settings.get(k) for k in keys}


def private_copy(doc: Document, weights: dict) -> Document:
    """The drawn graph with the given weights ({node id: arrays}), as a document of its own for a worker thread."""
    copy_doc = Document()
    copy_doc.load_graph_dict(copy.deepcopy(doc.graph_dict()))
    for nid, node in copy_doc.nodes.items():
        node.weights = [np.array(w) for w in weights[nid]] if weights.get(nid) else None
    return copy_doc

"""The training panel: compile and fit settings, the run's controls and progress, and fit's log.

The settings form is generated as the inspector's is: the optimizer's own arguments come from its signature
(`core.layer_schema.optimizer_fields`). Every edit is sent whole (`settingsChanged`); the window stores it in the
document through an undoable command, so the project keeps it and `python main.py train` uses the same settings.
The buttons only ask (`trainRequested`, `continueRequested`, `stopRequested`, `pauseToggled`); the window's
`TrainingSession` runs the training and this panel shows what it reports.
"""

from __future__ import annotations

import copy

from PySide6.QtCore import Signal
from PySide6.QtGui import QFontDatabase, QTextCursor
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, \
    QLineEdit, QPlainTextEdit, QProgressBar, QPushButton, QScrollArea, QSpinBox, QVBoxLayout, QWidget

from app.inspector import FieldEditor
from core import layer_schema, losses, optimizers
from core.callbacks import _format_time
from core.training_run import FIT_DEFAULTS

DEFAULT_SETTINGS = {"optimizer": "adam", "loss": "mse", "metrics": [], **FIT_DEFAULTS}
MONITORS = ("val_loss", "loss", "val_accuracy", "accuracy")
LOG_LINES = 2000


def _optimizer_parts(value) -> tuple[str, dict]:
    """(name, arguments other than the learning rate) of a settings' optimizer (a name or a Keras config)."""
    if isinstance(value, dict):
        name = str(value.get("class_name", "adam")).lower()
        config = dict(value.get("config") or {})
        config.pop("name", None)
        config.pop("learning_rate", None)
        return name, config
    return str(value or "rmsprop").lower(), {}


class TrainingPanel(QWidget):
    settingsChanged = Signal(object)  # the whole new settings dict
    trainRequested = Signal()
    continueRequested = Signal()
    stopRequested = Signal()
    pauseToggled = Signal(bool)       # True: pause

    def __init__(self, parent=None):
        super().__init__(parent)
        self._loading = False
        self._settings: dict = dict(DEFAULT_SETTINGS)
        self._outputs: list[str] = []
        self._optimizer_args: dict = {}
        self._shown_metrics: tuple = ("", [])
        self._shown_losses: dict[int, tuple] = {}

        # -- settings ------------------------------------------------------------------------------------------
        self.optimizer = QComboBox()
        self.optimizer.addItems(optimizers.names())
        self.learning_rate = QDoubleSpinBox()
        self.learning_rate.setDecimals(6)
        self.learning_rate.setRange(1e-6, 10.0)
        self.learning_rate.setSingleStep(0.0001)
        self.learning_rate.setToolTip("The optimizer's learning rate")
        self.optimizer_args = QGroupBox("Optimizer arguments")
        self.optimizer_args.setCheckable(True)
        self.optimizer_args.setChecked(False)
        self.optimizer_args_body = QWidget()  # shown only while the arguments are in use
        self.optimizer_args_form = QFormLayout(self.optimizer_args_body)
        QVBoxLayout(self.optimizer_args).addWidget(self.optimizer_args_body)
        self.optimizer_args.toggled.connect(self.optimizer_args_body.setVisible)
        self.optimizer_args_body.setVisible(False)
        self.loss_form = QFormLayout()
        self.loss_boxes: list[QComboBox] = []
        self.metrics = QLineEdit()
        self.metrics.setPlaceholderText("e.g. accuracy, mae")
        self.metrics.setToolTip("Metrics to compute, separated by commas (Keras's names)")
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 1_000_000)
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 1 << 20)
        self.shuffle = QCheckBox("Shuffle each epoch")
        self.use_seed = QCheckBox("Seed")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.use_seed.setToolTip("Fix the initial weights and the shuffling, so a run can be repeated exactly")
        self.validation_split = QDoubleSpinBox()
        self.validation_split.setRange(0.0, 0.9)
        self.validation_split.setSingleStep(0.05)
        self.validation_split.setToolTip("The last fraction of the training data held out for validation (used when "
                                         "the data panel gives no validation data of its own)")
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
        self.device_note = QLabel(_device_note())
        self.device_note.setWordWrap(True)

        self.early = QCheckBox("Early stopping")
        self.early_monitor = QComboBox()
        self.early_monitor.addItems(MONITORS)
        self.early_monitor.setEditable(True)
        self.early_patience = QSpinBox()
        self.early_patience.setRange(0, 10000)
        self.early_restore = QCheckBox("Restore best weights")
        self.plateau = QCheckBox("Reduce LR on plateau")
        self.plateau_factor = QDoubleSpinBox()
        self.plateau_factor.setRange(0.01, 0.99)
        self.plateau_factor.setSingleStep(0.05)
        self.plateau_patience = QSpinBox()
        self.plateau_patience.setRange(0, 10000)
        self.checkpoint = QCheckBox("Save best weights to")
        self.checkpoint_path = QLineEdit()
        self.checkpoint_path.setPlaceholderText("best.weights.h5")
        self.decay = QCheckBox("Exponential LR decay, rate per epoch")
        self.decay_rate = QDoubleSpinBox()
        self.decay_rate.setRange(0.01, 1.0)
        self.decay_rate.setSingleStep(0.01)

        compile_box = QGroupBox("Compile")
        cf = QFormLayout(compile_box)
        cf.addRow("Optimizer", self.optimizer)
        cf.addRow("Learning rate", self.learning_rate)
        cf.addRow(self.optimizer_args)
        cf.addRow(self.loss_form)
        cf.addRow("Metrics", self.metrics)
        fit_box = QGroupBox("Fit")
        ff = QFormLayout(fit_box)
        ff.addRow("Epochs", self.epochs)
        ff.addRow("Batch size", self.batch_size)
        ff.addRow(self.shuffle)
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.use_seed)
        seed_row.addWidget(self.seed, 1)
        ff.addRow(seed_row)
        ff.addRow("Validation split", self.validation_split)
        ff.addRow("Device", self.device)
        ff.addRow(self.device_note)
        callbacks_box = QGroupBox("Callbacks")
        cb = QFormLayout(callbacks_box)
        cb.addRow(self.early)
        cb.addRow("  monitor", self.early_monitor)
        cb.addRow("  patience", self.early_patience)
        cb.addRow(self.early_restore)
        cb.addRow(self.plateau)
        cb.addRow("  factor", self.plateau_factor)
        cb.addRow("  patience", self.plateau_patience)
        cb.addRow(self.checkpoint, self.checkpoint_path)
        cb.addRow(self.decay, self.decay_rate)

        form = QWidget()
        form_layout = QVBoxLayout(form)
        form_layout.setContentsMargins(0, 0, 0, 0)
        for box in (compile_box, fit_box, callbacks_box):
            form_layout.addWidget(box)
        form_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.NoFrame)
        scroll.setWidget(form)

        # -- controls, progress, log -------------------------------------------------------------------------------
        self.train_button = QPushButton("Train")
        self.train_button.setObjectName("trainButton")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.stop_button = QPushButton("Stop")
        self.continue_button = QPushButton("Continue")
        self.continue_button.setToolTip("Train the last run's model for more epochs, keeping its optimizer state")
        buttons = QHBoxLayout()
        for b in (self.train_button, self.pause_button, self.stop_button, self.continue_button):
            buttons.addWidget(b)
        self.epoch_bar = QProgressBar()
        self.epoch_bar.setFormat("Epoch %v/%m")
        self.batch_bar = QProgressBar()
        self.batch_bar.setFormat("Batch %v/%m")
        self.eta = QLabel("")
        self.notice = QLabel("")
        self.notice.setWordWrap(True)
        self.notice.setObjectName("trainingNotice")
        self.stale_notice = QLabel("")  # whether the document's trained weights still fit the drawing
        self.stale_notice.setWordWrap(True)
        self.stale_notice.setStyleSheet("color: #9a6700;")
        self.stale_notice.hide()
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(LOG_LINES)
        self.log.setFont(QFontDatabase.systemFont(QFontDatabase.FixedFont))
        self.log.setLineWrapMode(QPlainTextEdit.NoWrap)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(scroll, 3)
        layout.addLayout(buttons)
        layout.addWidget(self.epoch_bar)
        layout.addWidget(self.batch_bar)
        layout.addWidget(self.eta)
        layout.addWidget(self.notice)
        layout.addWidget(self.stale_notice)
        layout.addWidget(self.log, 2)

        self.train_button.clicked.connect(self.trainRequested)
        self.continue_button.clicked.connect(self.continueRequested)
        self.stop_button.clicked.connect(self.stopRequested)
        self.pause_button.toggled.connect(self._pause_toggled)
        self.optimizer.currentTextChanged.connect(self._optimizer_changed)
        self.optimizer_args.toggled.connect(self._edited)
        for w in (self.learning_rate, self.validation_split, self.plateau_factor, self.decay_rate):
            w.valueChanged.connect(self._edited)
        for w in (self.epochs, self.batch_size, self.seed, self.early_patience, self.plateau_patience):
            w.valueChanged.connect(self._edited)
        for w in (self.shuffle, self.use_seed, self.early, self.early_restore, self.plateau, self.checkpoint,
                  self.decay):
            w.toggled.connect(self._edited)
        for w in (self.device, self.early_monitor):
            w.currentTextChanged.connect(self._edited)
        for w in (self.metrics, self.checkpoint_path):
            w.editingFinished.connect(self._edited)
        self.set_running(False, can_continue=False)
        self.show_settings(DEFAULT_SETTINGS, ["output"])

    # -- from the document --------------------------------------------------------------------------------------
    def show_settings(self, settings: dict, outputs: list[str]) -> None:
        """Fill the form from the document's settings; `outputs` names the model's outputs (one loss each)."""
        self._loading = True
        try:
            s = dict(DEFAULT_SETTINGS, **(settings or {}))
            self._settings = copy.deepcopy(s)
            name, args = _optimizer_parts(s.get("optimizer"))
            self.optimizer.setCurrentText(name if name in optimizers.names() else "adam")
            self._optimizer_args = args
            self._build_optimizer_args()
            self.optimizer_args.setChecked(bool(args))
            lr = s.get("learning_rate")
            if not isinstance(lr, (int, float)):
                lr = optimizers.get(self.optimizer.currentText()).learning_rate
            self.learning_rate.setValue(float(lr))
            self._build_losses(s.get("loss"), outputs)
            metrics = s.get("metrics") or []
            if isinstance(metrics, dict):
                metrics = sorted({m for ms in metrics.values() for m in (ms if isinstance(ms, list) else [ms])})
            self.metrics.setText(", ".join(m if isinstance(m, str) else str(m.get("class_name", m))
                                           if isinstance(m, dict) else str(m) for m in metrics))
            self._shown_metrics = (self.metrics.text(), copy.deepcopy(s.get("metrics") or []))
            self.epochs.setValue(int(s["epochs"]))
            self.batch_size.setValue(int(s["batch_size"]))
            self.shuffle.setChecked(bool(s["shuffle"]))
            self.use_seed.setChecked(s.get("seed") is not None)
            self.seed.setValue(int(s.get("seed") or 0))
            self.validation_split.setValue(float(s.get("validation_split") or 0.0))
            self.device.setCurrentText(s.get("device", "auto"))
            self._show_callbacks(s.get("callbacks") or [])
        finally:
            self._loading = False

    def settings_match(self, settings: dict, outputs: list[str]) -> bool:
        """Whether the form already shows these settings for these outputs (no rebuild needed)."""
        return list(outputs or ["output"]) == self._outputs and \
            dict(DEFAULT_SETTINGS, **(settings or {})) == self._settings

    def _build_losses(self, loss, outputs: list[str]) -> None:
        while self.loss_form.rowCount():
            self.loss_form.removeRow(0)
        self.loss_boxes = []
        self._shown_losses: dict[int, tuple] = {}
        self._outputs = list(outputs) or ["output"]
        for i, out in enumerate(self._outputs):
            if isinstance(loss, dict) and "class_name" not in loss:
                value = loss.get(out)
            elif isinstance(loss, list):
                value = loss[i] if i < len(loss) else None
            else:
                value = loss
            box = QComboBox()
            box.setEditable(True)
            box.addItems(losses.names())
            text = value if isinstance(value, str) else value.get("class_name", "mse") if isinstance(value, dict) \
                else "mse"
            box.setCurrentText(text)
            self._shown_losses[i] = (text, value)  # a config's arguments survive while its name is unchanged
            box.setToolTip(f"The loss of output '{out}'")
            box.currentTextChanged.connect(self._edited)
            self.loss_boxes.append(box)
            self.loss_form.addRow("Loss" if len(self._outputs) == 1 else f"Loss of {out}", box)

    def _build_optimizer_args(self) -> None:
        while self.optimizer_args_form.rowCount():
            self.optimizer_args_form.removeRow(0)
        for spec in layer_schema.optimizer_fields(self.optimizer.currentText()):
            editor = FieldEditor(spec, self._optimizer_args.get(spec.name, spec.default))
            editor.edited.connect(self._optimizer_arg_edited)
            self.optimizer_args_form.addRow(spec.name, editor)

    def _show_callbacks(self, specs: list) -> None:
        by_name = {s.get("class_name"): s.get("config") or {} for s in specs if isinstance(s, dict)}
        early = by_name.get("EarlyStopping")
        self.early.setChecked(early is not None)
        self.early_monitor.setCurrentText((early or {}).get("monitor", "val_loss"))
        self.early_patience.setValue(int((early or {}).get("patience", 3)))
        self.early_restore.setChecked(bool((early or {}).get("restore_best_weights", True)))
        plateau = by_name.get("ReduceLROnPlateau")
        self.plateau.setChecked(plateau is not None)
        self.plateau_factor.setValue(float((plateau or {}).get("factor", 0.5)))
        self.plateau_patience.setValue(int((plateau or {}).get("patience", 2)))
        checkpoint = by_name.get("ModelCheckpoint")
        self.checkpoint.setChecked(checkpoint is not None)
        self.checkpoint_path.setText((checkpoint or {}).get("filepath", ""))
        schedule = (by_name.get("LearningRateScheduler") or {}).get("schedule")
        self.decay.setChecked(schedule is not None)
        self.decay_rate.setValue(float(((schedule or {}).get("config") or {}).get("decay_rate", 0.9)))

    # -- to the document ----------------------------------------------------------------------------------------
    def settings(self) -> dict:
        """The form as a settings dict (`core.training_run`)."""
        s = {k: v for k, v in self._settings.items() if k not in ("optimizer", "learning_rate", "loss", "metrics",
                                                                    "seed", "callbacks")}
        name = self.optimizer.currentText()
        if self.optimizer_args.isChecked() and self._optimizer_args:
            s["optimizer"] = {"class_name": type(optimizers.get(name)).__name__, "config": dict(self._optimizer_args)}
        else:
            s["optimizer"] = name
        s["learning_rate"] = float(self.learning_rate.value())
        chosen = []
        for i, box in enumerate(self.loss_boxes):
            text, original = self._shown_losses.get(i, (None, None))
            chosen.append(original if box.currentText().strip() == text and original else box.currentText().strip())
        s["loss"] = chosen[0] if len(chosen) == 1 else dict(zip(self._outputs, chosen))
        if self.metrics.text() != self._shown_metrics[0]:
            s["metrics"] = [m.strip() for m in self.metrics.text().split(",") if m.strip()]
        else:
            s["metrics"] = copy.deepcopy(self._shown_metrics[1])  # per-output or config metrics kept as they were
        s.update(epochs=self.epochs.value(), batch_size=self.batch_size.value(), shuffle=self.shuffle.isChecked(),
                 validation_split=round(self.validation_split.value(), 4), device=self.device.currentText())
        if self.use_seed.isChecked():
            s["seed"] = self.seed.value()
        callbacks = []
        if self.early.isChecked():
            callbacks.append({"class_name": "EarlyStopping", "config": {
                "monitor": self.early_monitor.currentText(), "patience": self.early_patience.value(),
                "restore_best_weights": self.early_restore.isChecked()}})
        if self.plateau.isChecked():
            callbacks.append({"class_name": "ReduceLROnPlateau", "config": {
                "monitor": self.early_monitor.currentText(), "factor": round(self.plateau_factor.value(), 4),
                "patience": self.plateau_patience.value()}})
        if self.checkpoint.isChecked() and self.checkpoint_path.text().strip():
            callbacks.append({"class_name": "ModelCheckpoint", "config": {
                "filepath": self.checkpoint_path.text().strip(), "monitor": self.early_monitor.currentText(),
                "save_best_only": True, "save_weights_only": True}})
        if self.decay.isChecked():
            callbacks.append({"class_name": "LearningRateScheduler", "config": {"schedule": {
                "class_name": "ExponentialDecay", "config": {
                    "initial_learning_rate": float(self.learning_rate.value()), "decay_steps": 1,
                    "decay_rate": round(self.decay_rate.value(), 4)}}}})
        if callbacks:
            s["callbacks"] = callbacks
        return s

    def _edited(self, *_) -> None:
        if self._loading:
            return
        new = self.settings()
        if new != self._settings:
            self._settings = copy.deepcopy(new)
            self.settingsChanged.emit(new)

    def _optimizer_changed(self, name: str) -> None:
        if self._loading:
            return
        self._optimizer_args = {}
        self._loading = True
        try:
            self._build_optimizer_args()
            self.learning_rate.setValue(float(optimizers.get(name).learning_rate))
        finally:
            self._loading = False
        self._edited()

    def _optimizer_arg_edited(self, key: str, value) -> None:
        if key == "__error__":
            self.show_notice(str(value), error=True)
            return
        self._optimizer_args[key] = value
        self.optimizer_args.setChecked(True)
        self._edited()

    # -- the run ------------------------------------------------------------------------------------------------
    def _pause_toggled(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pauseToggled.emit(paused)

    def set_running(self, running: bool, can_continue: bool) -> None:
        self.train_button.setEnabled(not running)
        self.continue_button.setEnabled(not running and can_continue)
        self.stop_button.setEnabled(running)
        self.pause_button.setEnabled(running)
        if not running and self.pause_button.isChecked():
            self.pause_button.blockSignals(True)
            self.pause_button.setChecked(False)
            self.pause_button.setText("Pause")
            self.pause_button.blockSignals(False)
        for w in (self.optimizer, self.learning_rate, self.optimizer_args, self.metrics, self.epochs,
                  self.batch_size, self.device):
            w.setEnabled(not running)
        for b in self.loss_boxes:
            b.setEnabled(not running)

    def run_started(self, run) -> None:
        self.log.appendPlainText(f"— Run: {run.label} —")
        self.epoch_bar.setRange(0, int(run.settings["epochs"]))
        self.epoch_bar.setValue(0)
        self.batch_bar.setRange(0, 1)
        self.batch_bar.setValue(0)
        self.eta.setText("Starting…")
        self.show_notice("")

    def progressed(self, progress) -> None:
        run = progress.run
        if progress.lines:
            self.log.appendPlainText("\n".join(progress.lines))
            self.log.moveCursor(QTextCursor.End)
            self.log.moveCursor(QTextCursor.StartOfLine)  # the newest line, seen from its start
            self.log.ensureCursorVisible()
        if progress.epochs:
            self.epoch_bar.setRange(0, progress.epochs - run.initial_epoch)
        self.epoch_bar.setValue(run.epochs_done)
        if progress.steps:
            self.batch_bar.setRange(0, progress.steps)
            self.batch_bar.setValue(progress.batch)
        if progress.steps and progress.batch:
            per_batch = progress.epoch_started / max(progress.batch, 1)
            left_in_epoch = per_batch * (progress.steps - progress.batch)
            epochs_left = max(0, (progress.epochs - run.initial_epoch) - run.epochs_done - 1)
            eta = left_in_epoch + epochs_left * per_batch * progress.steps
            self.eta.setText(f"{_format_time(progress.elapsed)} elapsed — about {_format_time(eta)} left")

    def run_ended(self, run) -> None:
        self.eta.setText(f"{run.outcome.replace('_', ' ').capitalize()} after {run.epochs_done} epoch(s).")
        self.show_notice(run.message, error=run.outcome in ("nan", "error"))
        if run.outcome in ("nan", "error"):
            self.log.appendPlainText(run.message)

    def show_stale(self, text: str) -> None:
        self.stale_notice.setText(text)
        self.stale_notice.setVisible(bool(text))

    def show_notice(self, text: str, error: bool = False) -> None:
        self.notice.setText(text)
        self.notice.setStyleSheet("color: #b00020;" if error else "")


def _device_note() -> str:
    from core import runtime

    providers = runtime.available_providers()
    if "CUDAExecutionProvider" not in providers:
        return "This machine: CPU only (auto uses the CPU)."
    return "This machine lists CUDA; auto tries it and falls back to the CPU with a notice if it cannot start."

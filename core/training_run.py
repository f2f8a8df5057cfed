"""A training run: what was trained, on what data, with which settings, and how it ended.

Both front ends (the window's Train button and `python main.py train`) describe a run with `TrainingRun` and carry it
out with `execute_run`, so the same document, data, seed and settings give the same History from either. The project
file stores the settings (`Document.training`) and the finished runs (`Document.runs`, as `TrainingRun.to_dict()`).

Settings (`Document.training`), all optional but `loss`:
    optimizer: a name ("adam") or a Keras config {"class_name", "config"}; learning_rate: overrides the optimizer's
    loss: a name, a config, or one per output (list or {output name: loss}); metrics; loss_weights;
    epochs, batch_size, shuffle, seed, validation_split;
    callbacks: [{"class_name": "EarlyStopping" | "ReduceLROnPlateau" | "ModelCheckpoint" | "LearningRateScheduler",
                 "config": {...}}] (LearningRateScheduler takes a Keras schedule config as its "schedule");
    device: "auto" | "cpu" | "cuda".
"""

from __future__ import annotations

import copy
import datetime
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from core.callbacks import Callback, Progbar
from core.errors import InputDataError

FIT_DEFAULTS = {"epochs": 10, "batch_size": 32, "shuffle": True, "validation_split": 0.0}
OUTCOMES = ("running", "finished", "stopped", "early_stopped", "nan", "error")
CALLBACKS = ("EarlyStopping", "ReduceLROnPlateau", "ModelCheckpoint", "LearningRateScheduler")
_SETTING_KEYS = {"optimizer", "learning_rate", "loss", "metrics", "loss_weights", "weighted_metrics", "epochs",
                 "batch_size", "shuffle", "seed", "validation_split", "callbacks", "device"}


def _now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


@dataclass
class TrainingRun:
    """One run. `history` is what fit's History holds: one value per finished epoch for each log (loss, metrics,
    val_*); `learning_rates` the optimizer's learning rate at the end of each of those epochs."""

    settings: dict
    dataset: dict | None = None
    model: dict | None = None  # the graph as drawn when the run started (`Document.graph_dict()`)
    history: dict = field(default_factory=dict)
    learning_rates: list = field(default_factory=list)
    epoch_seconds: list = field(default_factory=list)  # how long each finished epoch took (validation included)
    initial_epoch: int = 0
    started: str | None = None
    ended: str | None = None
    outcome: str = "running"
    message: str = ""
    device: str | None = None
    continues: int | None = None  # index of the run this one continued, in `Document.runs`
    weights: dict | None = field(default=None, repr=False)  # {node id: arrays} it ended with (the project's sidecar)
    # {layer name: [[L2 distance of each of its weights from its value at the run's start] per finished epoch]}
    weight_distances: dict = field(default_factory=dict)
    batch_history: dict = field(default_factory=dict, repr=False)  # per-batch logs; kept in memory only
    start_weights: dict = field(default_factory=dict, repr=False)  # {layer name: arrays}; kept in memory only

    @property
    def epochs_done(self) -> int:
        return len(next(iter(self.history.values()), []))

    @property
    def label(self) -> str:
        """What tells this run from others in a legend: optimizer, learning rate, batch size, seed."""
        s = self.settings
        opt = s.get("optimizer", "rmsprop")
        opt = opt.get("class_name", "?") if isinstance(opt, dict) else str(opt)
        parts = [opt.lower()]
        lr = s.get("learning_rate")
        if isinstance(lr, (int, float)):
            parts.append(f"lr {lr:g}")
        elif isinstance(lr, dict):
            parts.append(str(lr.get("class_name", "schedule")))
        parts.append(f"batch {s.get('batch_size', FIT_DEFAULTS['batch_size'])}")
        if s.get("seed") is not None:
            parts.append(f"seed {s['seed']}")
        return ", ".join(parts)

    def to_dict(self) -> dict:
        return {"settings": self.settings, "dataset": self.dataset, "model": self.model,
                "history": {k: [float(v) for v in vs] for k, vs in self.history.items()},
                "learning_rates": [float(v) for v in self.learning_rates],
                "epoch_seconds": [round(float(v), 4) for v in self.epoch_seconds],
                "initial_epoch": self.initial_epoch, "started": self.started, "ended": self.ended,
                "outcome": self.outcome, "message": self.message, "device": self.device,
                "continues": self.continues,
                "weight_distances": {k: [[float(d) for d in ds] for ds in v] for k, v in self.weight_distances.items()}}

    @classmethod
    def from_dict(cls, data, where: str = "run") -> "TrainingRun":
        if not isinstance(data, dict) or not isinstance(data.get("settings"), dict):
            raise InputDataError(f"{where}: a run must be an object with 'settings', got {type(data).__name__}.")
        history = data.get("history") or {}
        if not isinstance(history, dict) or not all(isinstance(v, list) for v in history.values()):
            raise InputDataError(f"{where}: 'history' must map each log name to a list of numbers.")
        outcome = data.get("outcome", "finished")
        if outcome not in OUTCOMES:
            raise InputDataError(f"{where}: outcome {outcome!r} is not one of {', '.join(OUTCOMES)}.")
        return cls(settings=data["settings"], dataset=data.get("dataset"), model=data.get("model"),
                   history={k: [float(x) for x in v] for k, v in history.items()},
                   learning_rates=[float(x) for x in data.get("learning_rates") or []],
                   epoch_seconds=[float(x) for x in data.get("epoch_seconds") or []],
                   initial_epoch=int(data.get("initial_epoch", 0)), started=data.get("started"),
                   ended=data.get("ended"), outcome=outcome, message=str(data.get("message", "")),
                   device=data.get("device"), continues=data.get("continues"),
                   weight_distances=_weight_distances(data.get("weight_distances"), where))


def _weight_distances(data, where: str) -> dict:
    if data is None:
        return {}
    try:
        return {str(k): [[float(d) for d in ds] for ds in v] for k, v in data.items()}
    except (AttributeError, TypeError, ValueError):
        raise InputDataError(f"{where}: 'weight_distances' must map each layer name to a list (one per epoch) of "
                             f"lists of numbers.") from None


# -- settings -------------------------------------------------------------------------------------------------------
def check_settings(settings) -> dict:
    """The settings with fit's defaults filled in; raises InputDataError naming the first bad field."""
    if not isinstance(settings, dict):
        raise InputDataError(f"The training settings must be an object, got {type(settings).__name__}.")
    unknown = sorted(set(settings) - _SETTING_KEYS)
    if unknown:
        raise InputDataError(f"Unknown training setting(s) {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(_SETTING_KEYS))}.")
    if not settings.get("loss"):
        raise InputDataError("The training settings have no loss: choose one for each output.")
    out = dict(FIT_DEFAULTS, **settings)
    for key in ("epochs", "batch_size"):
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (0 if key == "epochs" else 1):
            raise InputDataError(f"{key} must be a {'non-negative' if key == 'epochs' else 'positive'} integer, "
                                 f"got {v!r}.")
    split = out["validation_split"]
    if isinstance(split, bool) or not isinstance(split, (int, float)) or not 0.0 <= split < 1.0:
        raise InputDataError(f"validation_split must be a number in [0, 1), got {split!r}.")
    lr = out.get("learning_rate")
    if lr is not None and not isinstance(lr, dict) and (isinstance(lr, bool) or not isinstance(lr, (int, float))
                                                        or not lr > 0):
        raise InputDataError(f"learning_rate must be a positive number or a schedule config, got {lr!r}.")
    seed = out.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise InputDataError(f"seed must be an integer, got {seed!r}.")
    if out.get("device", "auto") not in ("auto", "cpu", "cuda"):
        raise InputDataError(f"device must be auto, cpu or cuda, got {out.get('device')!r}.")
    for i, spec in enumerate(out.get("callbacks") or []):
        if not isinstance(spec, dict) or spec.get("class_name") not in CALLBACKS:
            raise InputDataError(f"callbacks[{i}]: expected {{'class_name': one of {', '.join(CALLBACKS)}, "
                                 f"'config': {{...}}}}, got {spec!r}.")
    return out


def make_optimizer(settings: dict):
    from core import optimizers

    opt = optimizers.get(copy.deepcopy(settings.get("optimizer", "rmsprop")))
    if settings.get("learning_rate") is not None:
        opt.learning_rate = copy.deepcopy(settings["learning_rate"])  # a number or a schedule's config
    return opt


def make_callbacks(settings: dict) -> list:
    """Keras callbacks from the settings' `callbacks` specs (a ModelCheckpoint's path is the user's own)."""
    from core import callbacks as cb

    made = []
    for i, spec in enumerate(settings.get("callbacks") or []):
        config = dict(spec.get("config") or {})
        name = spec["class_name"]
        try:
            if name == "LearningRateScheduler":
                made.append(cb.LearningRateScheduler(_schedule(config.pop("schedule", None), i), **config))
            else:
                made.append(getattr(cb, name)(**config))
        except TypeError as exc:
            raise InputDataError(f"callbacks[{i}] ({name}): {exc}") from None
    return made


def _schedule(config, index: int):
    """A per-epoch schedule from a Keras LearningRateSchedule config ({"class_name": "ExponentialDecay", ...});
    the schedule's step is the epoch."""
    from core.errors import NetweaverError
    from core.optimizers import schedules

    if not isinstance(config, dict):
        raise InputDataError(f"callbacks[{index}] (LearningRateScheduler): 'schedule' must be a learning-rate "
                             f"schedule config such as {{'class_name': 'ExponentialDecay', 'config': {{...}}}}.")
    try:
        schedule = schedules.deserialize(config)
    except NetweaverError as exc:
        raise InputDataError(f"callbacks[{index}] (LearningRateScheduler): {exc}") from None
    return lambda epoch, lr: float(schedule(epoch))


# -- controlling a run from another thread --------------------------------------------------------------------------
class RunControl:
    """Stop, pause and resume a run from another thread (the window's buttons). A stop ends the run after the
    batch that is running, so the weights are those of the last finished step."""

    def __init__(self):
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # a paused run wakes up to stop

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_while_paused(self) -> None:
        while not self._running.wait(0.1):
            pass


class RunObserver:
    """What a front end hears during a run (on the training thread). Override what you need."""

    def on_start(self, run: TrainingRun, epochs: int, steps: int | None) -> None: pass
    def on_batch(self, epoch: int, batch: int, logs: dict) -> None: pass
    def on_epoch(self, epoch: int, logs: dict) -> None: pass
    def on_log(self, line: str) -> None: pass


class _RunCallback(Callback):
    """Tells the observer, writes fit(verbose=1)'s epoch lines to it, obeys the control, and stops on a NaN loss."""

    def __init__(self, run: TrainingRun, control: RunControl, observer: RunObserver):
        super().__init__()
        self.run, self.control, self.observer = run, control, observer
        self.epoch = 0
        self.bar = None
        self.nan_at = None

    def on_train_begin(self, logs=None):
        self.run.start_weights = {layer.name: [np.array(w) for w in layer.get_weights()]
                                  for layer in self.model.layers if layer.weights}
        self.observer.on_start(self.run, self.params.get("epochs", 0), self.params.get("steps"))

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.epoch_started = time.perf_counter()
        self.observer.on_log(f"Epoch {epoch + 1}/{self.params.get('epochs')}")
        self.bar = Progbar(self.params.get("steps"), verbose=2, stream=_LineSink(self.observer))

    def on_train_batch_end(self, batch, logs=None):
        logs = dict(logs or {})
        self.bar.update(batch + 1, logs)
        for k, v in logs.items():
            self.run.batch_history.setdefault(k, []).append(float(v))
        self.observer.on_batch(self.epoch, batch, logs)
        loss = logs.get("loss")
        if loss is not None and not np.isfinite(loss):
            self.nan_at = (self.epoch, batch)
            self.model.cancel_training()
            return
        self.control.wait_while_paused()
        if self.control.stopped:
            self.model.cancel_training()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        self.bar.update(getattr(self.bar, "seen", 0), logs, finalize=True)
        for k, v in logs.items():
            self.run.history.setdefault(k, []).append(float(v))
        self.run.learning_rates.append(float(self.model.optimizer.learning_rate))
        self.run.epoch_seconds.append(time.perf_counter() - self.epoch_started)
        for name, start in self.run.start_weights.items():
            now = self.model.get_layer(name).get_weights()
            self.run.weight_distances.setdefault(name, []).append(
                [float(np.linalg.norm(np.asarray(w, np.float64) - s)) for w, s in zip(now, start)])
        self.observer.on_epoch(epoch, logs)


class _LineSink:
    """A stream that hands each finished line to the observer."""

    def __init__(self, observer: RunObserver):
        self.observer, self.buffer = observer, ""

    def write(self, text: str) -> None:
        self.buffer += text
        while "\n" in self.buffer:
            line, self.buffer = self.buffer.split("\n", 1)
            self.observer.on_log(line)

    def flush(self) -> None:
        pass


# -- carrying a run out ---------------------------------------------------------------------------------------------
def build_model(doc, settings: dict):
    """The document's model, compiled with the settings. The seed is set before the model is built, since its
    initial weights come from it."""
    if settings.get("seed") is not None:
        from core.utils import set_random_seed

        set_random_seed(int(settings["seed"]))
    model = doc.to_model()
    compile_model(model, settings)
    return model


def compile_model(model, settings: dict) -> None:
    model.compile(optimizer=make_optimizer(settings), loss=settings["loss"], metrics=settings.get("metrics"),
                  loss_weights=settings.get("loss_weights"), weighted_metrics=settings.get("weighted_metrics"))


def execute_run(model, run: TrainingRun, x, y, validation=None, *, control: RunControl | None = None,
                observer: RunObserver | None = None, callbacks=(), verbose: int = 0) -> TrainingRun:
    """Fit a compiled model as the run's settings say, recording the run's history and outcome; returns the run.

    `x`/`y` are lists of arrays (one per model input/output); `validation` is (x list, y list) or None (then the
    settings' validation_split applies). A run that continues another passes the same model (its optimizer state
    kept) and `run.initial_epoch`. Errors in the data or settings raise before the first step; an error during
    training ends the run with outcome 'error' and is raised again."""
    from core import runtime

    settings = check_settings(run.settings)
    control = control or RunControl()
    observer = observer or RunObserver()
    device = runtime.check_device(settings.get("device", "auto"))
    watcher = _RunCallback(run, control, observer)
    all_callbacks = [watcher, *make_callbacks(settings), *callbacks]
    early = [c for c in all_callbacks if type(c).__name__ == "EarlyStopping"]
    kwargs = dict(batch_size=int(settings["batch_size"]), epochs=run.initial_epoch + int(settings["epochs"]),
                  initial_epoch=run.initial_epoch, shuffle=bool(settings["shuffle"]), verbose=verbose,
                  device=device, callbacks=all_callbacks)
    if validation is not None:
        kwargs["validation_data"] = (_one_or_list(validation[0]), _one_or_list(validation[1]))
    elif settings["validation_split"]:
        kwargs["validation_split"] = float(settings["validation_split"])
    run.started = run.started or _now()
    run.device = "cpu" if device == "cpu" or not runtime.cuda_usable() else "cuda"
    run.outcome, run.message = "running", ""
    fallback = ""
    if device == "cuda" and run.device == "cpu":
        fallback = "CUDA was asked for but could not be started here (no usable GPU or CUDA libraries): the run " \
                   "trains on the CPU."
        observer.on_log(fallback)
    started = time.perf_counter()
    try:
        model.fit(_one_or_list(x), _one_or_list(y), **kwargs)
    except BaseException as exc:
        run.outcome = "error"
        run.message = str(exc) or type(exc).__name__
        run.ended = _now()
        raise
    run.ended = _now()
    seconds = time.perf_counter() - started
    if watcher.nan_at is not None:
        epoch, batch = watcher.nan_at
        run.outcome = "nan"
        run.message = (f"The loss became NaN or infinite in epoch {epoch + 1}, batch {batch + 1}; the run stopped. "
                       f"Lower the learning rate, clip gradients, or check the data.")
    elif control.stopped:
        run.outcome = "stopped"
        run.message = f"Stopped after {run.epochs_done} finished epoch(s); the weights are the last step's."
    elif any(getattr(c, "stopped_epoch", 0) for c in early):
        run.outcome = "early_stopped"
        run.message = f"EarlyStopping ended the run after {run.epochs_done} epoch(s)."
    else:
        run.outcome = "finished"
        run.message = f"Finished {run.epochs_done} epoch(s) in {seconds:.1f} s on {run.device}."
    if fallback:
        run.message = f"{run.message} {fallback}"
    observer.on_log(run.message)
    return run


def _one_or_list(arrays):
    arrays = list(arrays) if isinstance(arrays, (list, tuple)) else [arrays]
    return arrays[0] if len(arrays) == 1 else arrays


__all__ = ["TrainingRun", "RunControl", "RunObserver", "check_settings", "make_optimizer", "make_callbacks",
           "build_model", "compile_model", "execute_run", "FIT_DEFAULTS", "OUTCOMES", "CALLBACKS"]

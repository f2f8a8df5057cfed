"""Keras's callbacks: hooks that `fit`, `evaluate` and `predict` call at the start and end of training, epochs and
batches, with the logs (loss and metrics) of the moment."""

from __future__ import annotations

import csv
import math
import os
import shutil
import sys
import time
import warnings

import numpy as np

from core.errors import ConfigError


class Callback:
    def __init__(self):
        self.model = None
        self.params = {}
        self.validation_data = None

    def set_params(self, params):
        self.params = params

    def set_model(self, model):
        self.model = model

    # training
    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_batch_begin(self, batch, logs=None): self.on_batch_begin(batch, logs)
    def on_train_batch_end(self, batch, logs=None): self.on_batch_end(batch, logs)
    def on_batch_begin(self, batch, logs=None): pass
    def on_batch_end(self, batch, logs=None): pass
    # evaluation
    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass
    def on_test_batch_begin(self, batch, logs=None): pass
    def on_test_batch_end(self, batch, logs=None): pass
    # prediction
    def on_predict_begin(self, logs=None): pass
    def on_predict_end(self, logs=None): pass
    def on_predict_batch_begin(self, batch, logs=None): pass
    def on_predict_batch_end(self, batch, logs=None): pass


class CallbackList(Callback):
    """Calls every callback's hook in order."""

    def __init__(self, callbacks=None, model=None, add_history=False, add_progbar=False, **params):
        super().__init__()
        self.callbacks = list(callbacks or [])
        for c in self.callbacks:
            if not isinstance(c, Callback):
                raise ConfigError(f"callbacks must be keras.callbacks.Callback instances, got {type(c).__name__}.")
        if add_progbar and not any(isinstance(c, ProgbarLogger) for c in self.callbacks):
            self.callbacks.insert(0, ProgbarLogger())
        self.history = None
        if add_history:
            self.history = next((c for c in self.callbacks if isinstance(c, History)), None)
            if self.history is None:
                self.history = History()
                self.callbacks.append(self.history)
        if model is not None:
            self.set_model(model)
        if params:
            self.set_params(params)

    def append(self, callback):
        self.callbacks.append(callback)

    def set_params(self, params):
        self.params = params
        for c in self.callbacks:
            c.set_params(params)

    def set_model(self, model):
        self.model = model
        for c in self.callbacks:
            c.set_model(model)

    def _call(self, hook, *args):
        for c in self.callbacks:
            getattr(c, hook)(*args)

    def on_train_begin(self, logs=None): self._call("on_train_begin", logs)
    def on_train_end(self, logs=None): self._call("on_train_end", logs)
    def on_epoch_begin(self, epoch, logs=None): self._call("on_epoch_begin", epoch, logs)
    def on_epoch_end(self, epoch, logs=None): self._call("on_epoch_end", epoch, logs)
    def on_train_batch_begin(self, batch, logs=None): self._call("on_train_batch_begin", batch, logs)
    def on_train_batch_end(self, batch, logs=None): self._call("on_train_batch_end", batch, logs)
    def on_test_begin(self, logs=None): self._call("on_test_begin", logs)
    def on_test_end(self, logs=None): self._call("on_test_end", logs)
    def on_test_batch_begin(self, batch, logs=None): self._call("on_test_batch_begin", batch, logs)
    def on_test_batch_end(self, batch, logs=None): self._call("on_test_batch_end", batch, logs)
    def on_predict_begin(self, logs=None): self._call("on_predict_begin", logs)
    def on_predict_end(self, logs=None): self._call("on_predict_end", logs)
    def on_predict_batch_begin(self, batch, logs=None): self._call("on_predict_batch_begin", batch, logs)
    def on_predict_batch_end(self, batch, logs=None): self._call("on_predict_batch_end", batch, logs)


class History(Callback):
    """What `fit` returns: `history` maps each log name to its per-epoch values; `epoch` lists the epochs run."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
        if self.model is not None:
            self.model.history = self


# -- progress bar --------------------------------------------------------------------------------------------------
def _format_time(seconds: float) -> str:
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{int(round(seconds))}s"


def _format_per_step(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


def _format_logs(logs) -> str:
    parts = []
    for k, v in (logs or {}).items():
        try:
            v = float(v)
        except (TypeError, ValueError):
            continue
        parts.append(f"{k}: {v:.4f}" if abs(v) >= 1e-3 or v == 0 else f"{k}: {v:.4e}")
    return " - ".join(parts)


class Progbar:
    """Keras 3's progress line: `12/32 ━━━━━━━━━━━━━━━━━━━━ 1s 30ms/step - loss: 2.3012`, with an ETA while
    running; redrawn at most every `interval` seconds."""

    def __init__(self, target, width=20, verbose=1, interval=0.05, stream=None):
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.stream = stream or sys.stdout
        self.start = time.time()
        self._last = 0.0
        self._last_len = 0

    def update(self, current, logs=None, finalize=False):
        self.seen = current
        now = time.time()
        if not finalize and now - self._last < self.interval:
            return
        self._last = now
        elapsed = now - self.start
        per_step = elapsed / max(current, 1)
        if self.target:
            filled = int(self.width * current / self.target)
            bar = "━" * filled + "─" * (self.width - filled)
            head = f"{current:>{len(str(self.target))}}/{self.target} {bar}"
        else:
            head = f"{current}/Unknown"
        if finalize or not self.target:
            timing = f"{_format_time(elapsed)} {_format_per_step(per_step)}"
        else:
            timing = f"ETA: {_format_time(per_step * (self.target - current))}"
        logs_s = _format_logs(logs)
        line = f"{head} {timing}" + (f" - {logs_s}" if logs_s else "")
        if self.verbose == 1:
            pad = max(0, self._last_len - len(line))
            self.stream.write("\r" + line + " " * pad + ("\n" if finalize else ""))
            self._last_len = len(line)
            self.stream.flush()
        elif finalize:
            self.stream.write(line + "\n")
            self.stream.flush()


class ProgbarLogger(Callback):
    def __init__(self, count_mode="steps", stateful_metrics=None):
        super().__init__()
        self.bar = None
        self.epochs = 1

    def on_train_begin(self, logs=None):
        self.epochs = self.params.get("epochs", 1)

    def on_epoch_begin(self, epoch, logs=None):
        verbose = self.params.get("verbose", 1)
        if verbose:
            print(f"Epoch {epoch + 1}/{self.epochs}")
            self.bar = Progbar(self.params.get("steps"), verbose=verbose)

    def on_train_batch_end(self, batch, logs=None):
        if self.bar is not None:
            self.bar.update(batch + 1, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.bar is not None:
            self.bar.update(getattr(self.bar, "seen", 0), logs, finalize=True)
            self.bar = None


class EvaluateProgbar(Callback):
    """evaluate's progress line (a bar for verbose=1, one summary line for verbose=2)."""

    def __init__(self, steps, verbose=1):
        super().__init__()
        self.steps, self.verbose, self.bar = steps, verbose, None

    def on_test_begin(self, logs=None):
        self.bar = Progbar(self.steps, verbose=self.verbose)

    def on_test_batch_end(self, batch, logs=None):
        self.bar.update(batch + 1, logs)

    def on_test_end(self, logs=None):
        self.bar.update(self.bar.seen, logs, finalize=True)


# -- early stopping and learning-rate control -----------------------------------------------------------------------
def _monitor_op(mode, monitor, name):
    if mode not in ("auto", "min", "max"):
        raise ConfigError(f"{name}: mode must be 'auto', 'min' or 'max', got {mode!r}.")
    if mode == "min":
        return np.less
    if mode == "max":
        return np.greater
    if monitor.endswith("acc") or monitor.endswith("accuracy") or monitor.endswith("auc") or \
            monitor.endswith("precision") or monitor.endswith("recall"):
        return np.greater
    return np.less


class EarlyStopping(Callback):
    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self.monitor = monitor
        self.patience = int(patience)
        self.verbose = verbose
        self.baseline = baseline
        self.min_delta = abs(min_delta)
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.monitor_op = _monitor_op(mode, monitor, "EarlyStopping")
        if self.monitor_op is np.less:
            self.min_delta *= -1
        self.stopped_epoch = 0
        self.best_weights = None

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = np.inf if self.monitor_op is np.less else -np.inf
        self.best_weights = None
        self.best_epoch = 0

    def _improved(self, current, reference):
        return self.monitor_op(current - self.min_delta, reference)

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None:
            warnings.warn(f"EarlyStopping is conditioned on '{self.monitor}', which is not in the logs "
                          f"(available: {', '.join(logs or {})}).", stacklevel=2)
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
        self.wait += 1
        if self._improved(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improved(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class LearningRateScheduler(Callback):
    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        opt = self.model.optimizer
        try:
            lr = self.schedule(epoch, float(opt.learning_rate))
        except TypeError:
            lr = self.schedule(epoch)
        lr = float(lr)
        if not math.isfinite(lr):
            raise ConfigError(f"LearningRateScheduler: the schedule returned {lr} for epoch {epoch}.")
        opt.learning_rate = lr
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class ReduceLROnPlateau(Callback):
    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0, **kwargs):
        super().__init__()
        if factor >= 1.0:
            raise ConfigError(f"ReduceLROnPlateau does not support a factor >= 1.0, got {factor}.")
        self.monitor = monitor
        self.factor = factor
        self.min_lr = min_lr
        self.min_delta = min_delta
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.mode = mode
        op = _monitor_op(mode, monitor, "ReduceLROnPlateau")
        if op is np.less:
            self.monitor_op = lambda a, b: np.less(a, b - self.min_delta)
            self.best = np.inf
        else:
            self.monitor_op = lambda a, b: np.greater(a, b + self.min_delta)
            self.best = -np.inf
        self._init_best = self.best
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs=None):
        self.best = self._init_best
        self.cooldown_counter = 0
        self.wait = 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["learning_rate"] = float(self.model.optimizer.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"ReduceLROnPlateau is conditioned on '{self.monitor}', which is not in the logs "
                          f"(available: {', '.join(logs)}).", stacklevel=2)
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.monitor_op(current, self.best):
            self.best = current
            self.wait = 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = float(self.model.optimizer.learning_rate)
                if old > np.float32(self.min_lr):
                    new = max(old * self.factor, self.min_lr)
                    self.model.optimizer.learning_rate = new
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


class TerminateOnNaN(Callback):
    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class LambdaCallback(Callback):
    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, on_batch_begin=None, on_batch_end=None,
                 **kwargs):
        super().__init__()
        hooks = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_train_begin=on_train_begin,
                     on_train_end=on_train_end, on_train_batch_begin=on_train_batch_begin or on_batch_begin,
                     on_train_batch_end=on_train_batch_end or on_batch_end)
        hooks.update(kwargs)
        for name, fn in hooks.items():
            if fn is None:
                continue
            if not hasattr(Callback, name):
                raise ConfigError(f"LambdaCallback: unknown hook '{name}'.")
            setattr(self, name, fn)


# -- files ------------------------------------------------------------------------------------------------------------
class CSVLogger(Callback):
    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = append
        self.keys = None
        self._file = None
        self._writer = None

    def on_train_begin(self, logs=None):
        exists = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._append_header = not exists
        self.keys = None
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch"] + self.keys, delimiter=self.sep)
            if self._append_header:
                self._writer.writeheader()
        row = {"epoch": epoch}
        for k in self.keys:
            v = logs.get(k, "NA")
            row[k] = v
        self._writer.writerow(row)
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None


class ModelCheckpoint(Callback):
    """Save the model (or only its weights) at the end of each epoch, or only when `monitor` improved.
    The formats come from the model's own `save` / `save_weights` (.h5, .keras, .weights.h5)."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__()
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        if save_freq != "epoch":
            raise ConfigError("ModelCheckpoint: only save_freq='epoch' is supported.")
        if save_weights_only and not (self.filepath.endswith(".weights.h5") or self.filepath.endswith(".h5")):
            raise ConfigError(f"ModelCheckpoint: with save_weights_only=True the filepath must end in "
                              f".weights.h5 (or .h5), got '{self.filepath}'.")
        self.monitor_op = _monitor_op(mode, monitor, "ModelCheckpoint")
        self.best = initial_value_threshold if initial_value_threshold is not None else \
            (np.inf if self.monitor_op is np.less else -np.inf)

    def _path(self, epoch, logs):
        try:
            return self.filepath.format(epoch=epoch + 1, **(logs or {}))
        except KeyError as exc:
            raise ConfigError(f"ModelCheckpoint: the filepath '{self.filepath}' names {exc}, which is not in the "
                              f"logs ({', '.join(logs or {})}).") from None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self._path(epoch, logs)
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                warnings.warn(f"ModelCheckpoint: can save best model only with '{self.monitor}' available in the "
                              f"logs; skipping.", stacklevel=2)
                return
            if not self.monitor_op(current, self.best):
                if self.verbose > 0:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
                return
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to {current:.5f}, "
                      f"saving model to {path}")
            self.best = current
        elif self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path, overwrite=True)
        else:
            self.model.save(path, overwrite=True)


class BackupAndRestore(Callback):
    """Back up the weights, the optimizer state and the epoch at each epoch end, so that a run killed part way
    resumes from the last finished epoch when `fit` is called again with the same callback directory."""

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True, double_checkpoint=False):
        super().__init__()
        if not backup_dir:
            raise ConfigError("BackupAndRestore: backup_dir is required.")
        if save_freq != "epoch":
            raise ConfigError("BackupAndRestore: only save_freq='epoch' is supported.")
        self.backup_dir = os.fspath(backup_dir)
        self.delete_checkpoint = delete_checkpoint
        self._file = os.path.join(self.backup_dir, "backup.npz")

    def on_train_begin(self, logs=None):
        if not os.path.exists(self._file):
            return
        with np.load(self._file, allow_pickle=False) as data:
            n_w = int(data["n_weights"])
            weights = [data[f"w{i}"] for i in range(n_w)]
            n_o = int(data["n_optimizer"])
            opt = [data[f"o{i}"] for i in range(n_o)]
            epoch = int(data["epoch"])
        self.model.set_weights(weights)
        if opt:
            self.model.optimizer.build(self.model.trainable_weights)
            self.model.optimizer.set_weights(opt)
        self.model._initial_epoch = epoch + 1

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.backup_dir, exist_ok=True)
        arrays = {f"w{i}": w for i, w in enumerate(self.model.get_weights())}
        opt = self.model.optimizer.get_weights() if self.model.optimizer is not None else []
        arrays.update({f"o{i}": w for i, w in enumerate(opt)})
        tmp = self._file + ".tmp.npz"
        np.savez(tmp, n_weights=len(arrays) - len(opt), n_optimizer=len(opt), epoch=epoch, **arrays)
        os.replace(tmp, self._file)  # a kill during the write leaves the previous backup intact

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and not getattr(self.model, "_training_interrupted", False) and \
                os.path.isdir(self.backup_dir):
            shutil.rmtree(self.backup_dir, ignore_errors=True)


class TensorBoard(Callback):
    """Scalar summaries per epoch (`epoch_loss`, `epoch_accuracy`, ...) in `log_dir/train` and `log_dir/validation`,
    written with the `tensorboard` package's event writer."""

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True, write_images=False, write_steps_per_second=False,
                 update_freq="epoch", profile_batch=0, embeddings_freq=0, embeddings_metadata=None, **kwargs):
        super().__init__()
        try:
            from tensorboard.compat.proto.event_pb2 import Event  # noqa: F401
            from tensorboard.summary.writer.event_file_writer import EventFileWriter  # noqa: F401
        except ImportError:
            raise ImportError("The TensorBoard callback needs the 'tensorboard' package to write event files: "
                              "pip install tensorboard") from None
        self.log_dir = os.fspath(log_dir)
        self.update_freq = update_freq
        self._writers = {}

    def _writer(self, which):
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        w = self._writers.get(which)
        if w is None:
            w = self._writers[which] = EventFileWriter(os.path.join(self.log_dir, which))
        return w

    def _scalar(self, which, tag, value, step):
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        summary = Summary(value=[Summary.Value(tag=tag, simple_value=float(value))])
        self._writer(which).add_event(Event(wall_time=time.time(), step=int(step), summary=summary))

    def on_epoch_end(self, epoch, logs=None):
        for k, v in (logs or {}).items():
            try:
                v = float(v)
            except (TypeError, ValueError):
                continue
            if k.startswith("val_"):
                self._scalar("validation", f"epoch_{k[4:]}", v, epoch)
            else:
                self._scalar("train", f"epoch_{k}", v, epoch)
        for w in self._writers.values():
            w.flush()

    def on_train_end(self, logs=None):
        for w in self._writers.values():
            w.close()
        self._writers = {}

"""Callbacks: the hooks fit calls and each built-in callback's effect."""

import csv
import sys

import numpy as np
import pytest

import core
from core import callbacks, layers

RNG = np.random.default_rng(11)
X = RNG.standard_normal((48, 4)).astype(np.float32)
Y = RNG.standard_normal((48, 2)).astype(np.float32)


def _model(optimizer="adam"):
    core.utils.set_random_seed(0)
    m = core.Sequential([core.Input((4,)), layers.Dense(6, activation="tanh"), layers.Dense(2)])
    m.compile(optimizer=optimizer, loss="mse", metrics=["mae"])
    return m


class Recorder(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def __getattribute__(self, name):
        if name.startswith("on_"):
            calls = object.__getattribute__(self, "calls")
            return lambda *args: calls.append((name,) + tuple(a for a in args if isinstance(a, int)))
        return object.__getattribute__(self, name)


class Scripted(callbacks.Callback):
    """Overwrites a log value with a scripted sequence, so monitor-based callbacks see known numbers."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values = key, values

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]


def test_hook_order():
    rec = Recorder()
    m = _model()
    m.fit(X, Y, batch_size=16, epochs=2, verbose=0, validation_data=(X[:16], Y[:16]), callbacks=[rec])
    names = [c[0] for c in rec.calls]
    assert names[0] == "on_train_begin" and names[-1] == "on_train_end"
    assert rec.calls[1:8] == [("on_epoch_begin", 0), ("on_train_batch_begin", 0), ("on_train_batch_end", 0),
                              ("on_train_batch_begin", 1), ("on_train_batch_end", 1),
                              ("on_train_batch_begin", 2), ("on_train_batch_end", 2)]
    assert rec.calls[8:12] == [("on_test_begin",), ("on_test_batch_begin", 0), ("on_test_batch_end", 0),
                               ("on_test_end",)]
    assert rec.calls[12] == ("on_epoch_end", 0)
    assert rec.params["epochs"] == 2 and rec.params["steps"] == 3 and rec.model is m


def test_early_stopping_restores_best_weights():
    m = _model()
    seen = {}
    keep = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.__setitem__(e, m.get_weights()))
    stop = callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    h = m.fit(X, Y, epochs=10, verbose=0, validation_data=(X, Y),
              callbacks=[Scripted("val_loss", [3.0, 2.0, 2.5, 2.6, 2.7, 1.0]), keep, stop])
    assert h.epoch == [0, 1, 2, 3] and stop.stopped_epoch == 3
    for a, b in zip(m.get_weights(), seen[1]):
        np.testing.assert_array_equal(a, b)
    # Training goes on from the restored weights.
    assert m.evaluate(X, Y, verbose=0)[0] == pytest.approx(_eval_with(seen[1]))


def _eval_with(weights):
    m = _model()
    m.set_weights(weights)
    return m.evaluate(X, Y, verbose=0)[0]


def test_model_checkpoint_calls_the_models_savers(tmp_path, monkeypatch):
    m = _model()
    saved = []
    monkeypatch.setattr(m, "save_weights", lambda path, overwrite=True: saved.append(("weights", path)),
                        raising=False)
    monkeypatch.setattr(m, "save", lambda path, overwrite=True: saved.append(("model", path)), raising=False)
    best = callbacks.ModelCheckpoint(str(tmp_path / "best.weights.h5"), monitor="val_loss", save_best_only=True,
                                     save_weights_only=True)
    every = callbacks.ModelCheckpoint(str(tmp_path / "ckpt_{epoch:02d}.h5"))
    m.fit(X, Y, epochs=4, verbose=0, validation_data=(X, Y),
          callbacks=[Scripted("val_loss", [3.0, 2.0, 2.5, 1.0]), best, every])
    assert [p for kind, p in saved if kind == "weights"] == [str(tmp_path / "best.weights.h5")] * 3
    assert [p for kind, p in saved if kind == "model"] == [str(tmp_path / f"ckpt_{i:02d}.h5") for i in (1, 2, 3, 4)]
    with pytest.raises(core.errors.ConfigError, match="weights.h5"):
        callbacks.ModelCheckpoint("x.keras", save_weights_only=True)


def test_learning_rate_scheduler_and_reduce_on_plateau():
    m = _model(optimizer=core.optimizers.SGD(0.1))
    sched = callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch else lr)
    h = m.fit(X, Y, epochs=3, verbose=0, callbacks=[sched])
    np.testing.assert_allclose(h.history["learning_rate"], [0.1, 0.05, 0.025], rtol=1e-6)
    # The learning rate really changed the steps: the same run with SGD at those rates by hand.
    ref = _model(optimizer=core.optimizers.SGD(0.1))
    for lr in (0.1, 0.05, 0.025):
        ref.optimizer.learning_rate = lr
        ref.fit(X, Y, epochs=1, verbose=0)
    for a, b in zip(m.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)

    m = _model(optimizer=core.optimizers.SGD(0.1))
    plateau = callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1, min_lr=0.02)
    h = m.fit(X, Y, epochs=5, verbose=0, validation_data=(X, Y),
              callbacks=[Scripted("val_loss", [1.0, 1.0, 1.0, 0.5, 0.5]), plateau])
    np.testing.assert_allclose(h.history["learning_rate"], [0.1, 0.1, 0.05, 0.025, 0.025], rtol=1e-6)
    assert m.optimizer.learning_rate == pytest.approx(0.02)


def test_csv_logger_and_lambda_callback(tmp_path):
    m = _model()
    counts = {"begin": 0, "batch": 0, "end": 0}
    lam = callbacks.LambdaCallback(on_train_begin=lambda logs: counts.__setitem__("begin", counts["begin"] + 1),
                                   on_batch_end=lambda b, logs: counts.__setitem__("batch", counts["batch"] + 1),
                                   on_epoch_end=lambda e, logs: counts.__setitem__("end", counts["end"] + 1))
    path = tmp_path / "log.csv"
    h = m.fit(X, Y, batch_size=16, epochs=3, verbose=0, callbacks=[callbacks.CSVLogger(str(path)), lam])
    assert counts == {"begin": 1, "batch": 9, "end": 3}
    rows = list(csv.DictReader(path.open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    np.testing.assert_allclose([float(r["loss"]) for r in rows], h.history["loss"], rtol=1e-6)
    m.fit(X, Y, epochs=1, verbose=0, callbacks=[callbacks.CSVLogger(str(path), append=True)])
    assert len(list(csv.DictReader(path.open()))) == 4


class Crash(callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise RuntimeError("killed")


def test_backup_and_restore_resumes_a_killed_run(tmp_path):
    full = _model()
    w0 = full.get_weights()
    ref = full.fit(X, Y, batch_size=16, epochs=4, shuffle=False, verbose=0)

    m = _model()
    m.set_weights(w0)
    backup = callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(RuntimeError, match="killed"):
        m.fit(X, Y, batch_size=16, epochs=4, shuffle=False, verbose=0, callbacks=[backup, Crash()])
    # A new process: a fresh model and optimizer, the same backup directory.
    m2 = _model()
    h = m2.fit(X, Y, batch_size=16, epochs=4, shuffle=False, verbose=0,
               callbacks=[callbacks.BackupAndRestore(str(tmp_path / "backup"))])
    assert h.epoch == [2, 3]
    np.testing.assert_allclose(h.history["loss"], ref.history["loss"][2:], rtol=1e-6)
    for a, b in zip(m2.get_weights(), full.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert not (tmp_path / "backup").exists()


def test_tensorboard_without_its_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard.summary.writer.event_file_writer", None)
    with pytest.raises(ImportError, match="pip install tensorboard"):
        callbacks.TensorBoard(log_dir="logs")


def test_bad_callbacks():
    m = _model()
    with pytest.raises(core.errors.ConfigError, match="Callback instances"):
        m.fit(X, Y, verbose=0, callbacks=[object()])
    with pytest.raises(core.errors.ConfigError, match="mode"):
        callbacks.EarlyStopping(mode="sideways")


def test_model_checkpoint_writes_files_that_load(tmp_path):
    m = _model()
    best = callbacks.ModelCheckpoint(str(tmp_path / "best.weights.h5"), monitor="loss", save_best_only=True,
                                     save_weights_only=True)
    every = callbacks.ModelCheckpoint(str(tmp_path / "model_{epoch:02d}.h5"))
    m.fit(X, Y, epochs=2, verbose=0, callbacks=[best, every])
    assert (tmp_path / "best.weights.h5").exists() and (tmp_path / "model_02.h5").exists()
    fresh = _model()
    fresh.load_weights(str(tmp_path / "best.weights.h5"))
    for a, b in zip(fresh.get_weights(), m.get_weights()):
        np.testing.assert_array_equal(a, b)
    loaded = core.models.load_model(str(tmp_path / "model_02.h5"))
    np.testing.assert_allclose(loaded.predict(X, verbose=0), m.predict(X, verbose=0), rtol=1e-6)
    assert isinstance(loaded.optimizer, core.optimizers.Adam)
    assert loaded.evaluate(X, Y, verbose=0) == pytest.approx(m.evaluate(X, Y, verbose=0), rel=1e-6)


def test_evaluate_prints_a_progress_line(capsys):
    m = _model()
    m.evaluate(X, Y, batch_size=16)
    out = capsys.readouterr().out
    assert "3/3" in out and "loss:" in out and "mae:" in out
    m.evaluate(X, Y, verbose=0)
    assert capsys.readouterr().out == ""

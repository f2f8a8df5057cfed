"""core.training_run: settings checked with the field named, callbacks from their specs, the outcome of a run
(finished, early-stopped, stopped from another thread, NaN), and a run's record surviving JSON."""

import json
import threading

import numpy as np
import pytest

import core as keras
from core import layers
from core.errors import InputDataError
from core.training_run import RunControl, RunObserver, TrainingRun, check_settings, compile_model, execute_run

X = np.random.default_rng(0).random((64, 4)).astype("float32")
Y = (X.sum(axis=1) > 2).astype("int64")


def _model(settings):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, layers.Dense(2, activation="softmax")(layers.Dense(8, activation="relu")(inputs)))
    compile_model(model, check_settings(settings))
    return model


BASE = {"optimizer": "adam", "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"], "epochs": 3,
        "batch_size": 16}


@pytest.mark.parametrize("change, message", [
    ({"loss": None}, "no loss"),
    ({"epochs": -1}, "epochs must be a non-negative integer"),
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"validation_split": 1.5}, "validation_split must be a number in"),
    ({"learning_rate": -1}, "learning_rate must be a positive number"),
    ({"seed": "x"}, "seed must be an integer"),
    ({"device": "tpu"}, "device must be auto, cpu or cuda"),
    ({"callbacks": [{"class_name": "Nope"}]}, r"callbacks\[0\]: expected"),
    ({"epoch": 3}, "Unknown training setting"),
])
def test_bad_settings_are_named(change, message):
    with pytest.raises(InputDataError, match=message):
        check_settings({**BASE, **change})


def test_a_run_records_fits_history_learning_rates_and_times():
    run = TrainingRun(settings=dict(BASE, learning_rate=0.01))
    lines = []

    class Lines(RunObserver):
        def on_log(self, line):
            lines.append(line)

    model = _model(run.settings)
    execute_run(model, run, [X], [Y], observer=Lines())
    assert run.outcome == "finished" and run.epochs_done == 3
    assert set(run.history) == {"loss", "accuracy"}
    assert run.learning_rates == pytest.approx([0.01] * 3)
    assert len(run.epoch_seconds) == 3 and run.started <= run.ended
    assert lines[0] == "Epoch 1/3" and lines[1].startswith("4/4 ━") and "loss:" in lines[1]
    assert run.label == "adam, lr 0.01, batch 16"
    again = TrainingRun.from_dict(json.loads(json.dumps(run.to_dict())))
    assert again.history == run.history and again.learning_rates == run.learning_rates


def test_callbacks_from_their_specs_early_stopping_and_a_learning_rate_schedule():
    settings = dict(BASE, epochs=40, learning_rate=0.05, callbacks=[
        {"class_name": "EarlyStopping", "config": {"monitor": "loss", "patience": 0, "min_delta": 10.0}},
        {"class_name": "LearningRateScheduler", "config": {"schedule": {
            "class_name": "ExponentialDecay", "config": {"initial_learning_rate": 0.05, "decay_steps": 1,
                                                         "decay_rate": 0.5}}}}])
    run = TrainingRun(settings=settings)
    execute_run(_model(settings), run, [X], [Y])
    assert run.outcome == "early_stopped" and run.epochs_done == 2  # no epoch improves the loss by 10
    assert run.learning_rates == pytest.approx([0.05, 0.025])
    with pytest.raises(InputDataError, match=r"callbacks\[0\] \(LearningRateScheduler\): 'schedule' must be"):
        execute_run(_model(BASE), TrainingRun(settings=dict(BASE, callbacks=[
            {"class_name": "LearningRateScheduler", "config": {}}])), [X], [Y])


def test_a_stop_from_another_thread_ends_the_run_after_the_running_batch():
    control = RunControl()
    batches = []

    class StopAtThree(RunObserver):
        def on_batch(self, epoch, batch, logs):
            batches.append(batch)
            if len(batches) == 3:
                threading.Thread(target=control.stop).start()

    run = TrainingRun(settings=dict(BASE, epochs=100, batch_size=4))
    model = _model(run.settings)
    execute_run(model, run, [X], [Y], control=control, observer=StopAtThree())
    assert run.outcome == "stopped" and len(batches) <= 5 and run.epochs_done == 0
    assert model.optimizer.iterations == len(batches)  # the weights are those of the last finished step


def test_a_nan_loss_ends_the_run_naming_epoch_and_batch():
    run = TrainingRun(settings=dict(BASE, optimizer="sgd", learning_rate=1e38))
    with pytest.warns(RuntimeWarning, match="NaN or infinite"):
        execute_run(_model(run.settings), run, [X], [Y])
    assert run.outcome == "nan"
    assert "epoch 1, batch" in run.message


def test_an_error_in_fit_ends_the_run_as_error_and_is_raised():
    run = TrainingRun(settings=BASE)
    with pytest.raises(Exception):
        execute_run(_model(BASE), run, [X[:, :3]], [Y])  # three features for a model of four
    assert run.outcome == "error" and run.message

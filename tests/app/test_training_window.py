"""Training in the window: open an example, press Train, and the curves, the History of a headless run and the
command line's agree; Stop, Pause/Resume and Continue; a NaN loss, a failing worker, stale weights and undo."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from app.train_command import train as train_command
from core import commands
from exporters.project import load_project, save_project
from training_helpers import open_for_training, press_and_wait

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "resources" / "examples" / "mlp.nwproj"


def _open(window, qtbot, settings: dict, example: Path = EXAMPLE):
    return open_for_training(window, qtbot, example, settings)


def _train(window, qtbot, button="train_button", timeout=60000):
    return press_and_wait(window, qtbot, button, timeout)


def test_curves_equal_the_history_of_a_headless_fit_and_of_the_command_line(window, qtbot, tmp_path):
    settings = {"epochs": 3, "seed": 11, "shuffle": True, "batch_size": 50}
    doc = _open(window, qtbot, settings)
    run = _train(window, qtbot)
    assert run.outcome == "finished", run.message
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        x, y = window.curves.epoch_curve(1, key)
        assert list(x) == [1.0, 2.0, 3.0], key  # one point per epoch
        np.testing.assert_allclose(y, run.history[key], rtol=0, atol=0)

    # The same project, seed and settings from the command line give the same History.
    project = tmp_path / "mlp.nwproj"
    for f in EXAMPLE.parent.glob("mlp*"):
        if f.suffix in (".nwproj", ".npz"):
            shutil.copy(f, tmp_path / f.name)
    cli_doc = load_project(project)
    cli_doc.training = dict(cli_doc.training, **settings)
    save_project(cli_doc, project)
    result = train_command(project, device="cpu", verbose=0)
    assert set(result.history.history) == set(run.history)
    for key, values in result.history.history.items():
        np.testing.assert_allclose(run.history[key], values, rtol=1e-6, atol=1e-7, err_msg=key)

    # The trained weights are the document's: its model predicts what the trained model predicts.
    x_val, _ = window.data_panel.loaded().validation
    np.testing.assert_allclose(doc.to_model().predict(x_val[0], verbose=0),
                               window.training.model.predict(x_val[0], verbose=0), atol=1e-6)
    assert doc.runs[-1] is run and window.editor.stack.undo_text().startswith("Train")
    window.editor.stack.undo()  # takes the run and its weights back
    assert doc.runs == [] and all(n.weights is None for n in doc.nodes.values())
    assert window.problems == []


def test_stop_ends_the_run_within_a_batch_and_keeps_the_last_steps_weights(window, qtbot):
    doc = _open(window, qtbot, {"epochs": 1000, "batch_size": 4, "seed": 1})
    batches = []
    window.training.progressed.connect(lambda p: batches.extend(p.batches))
    window.training_panel.train_button.click()
    qtbot.waitUntil(lambda: len(batches) >= 3, timeout=30000)
    window.training_panel.stop_button.click()
    qtbot.waitUntil(lambda: not window.training.is_running(), timeout=10000)
    run = window.training.runs[-1]
    assert run.outcome == "stopped" and run.epochs_done < 1000
    trained = window.training.model.get_weights()
    drawn = [w for nid in doc.topological_order() for w in (doc.nodes[nid].weights or [])]
    assert len(drawn) == len(trained)
    for a, b in zip(drawn, trained):
        np.testing.assert_array_equal(a, b)
    assert "Stopped" in window.training_panel.notice.text()


def test_pause_holds_the_run_and_resume_finishes_it(window, qtbot):
    _open(window, qtbot, {"epochs": 40, "batch_size": 8, "seed": 2})
    batches = []
    window.training.progressed.connect(lambda p: batches.extend(p.batches))
    window.training_panel.train_button.click()
    qtbot.waitUntil(lambda: len(batches) >= 2, timeout=30000)
    window.training_panel.pause_button.click()
    assert window.training_panel.pause_button.text() == "Resume"
    qtbot.wait(300)
    held = len(batches)
    qtbot.wait(400)
    assert len(batches) <= held + 1  # at most the batch that was running when Pause came
    assert window.training.is_running()
    window.training_panel.pause_button.click()
    qtbot.waitUntil(lambda: not window.training.is_running(), timeout=60000)
    assert window.training.runs[-1].outcome == "finished"


def test_continue_trains_on_from_where_the_run_ended(window, qtbot):
    """Two epochs, then two more with the optimizer state kept, give the history of four epochs in one run."""
    _open(window, qtbot, {"epochs": 2, "seed": 5, "shuffle": False})
    first = _train(window, qtbot)
    assert window.training_panel.continue_button.isEnabled()
    second = _train(window, qtbot, button="continue_button")
    assert second.initial_epoch == 2 and second.epochs_done == 2
    x, _ = window.curves.epoch_curve(2, "loss")
    assert list(x) == [3.0, 4.0]
    _open(window, qtbot, {"epochs": 4, "seed": 5, "shuffle": False})
    whole = _train(window, qtbot)
    for key in whole.history:
        np.testing.assert_allclose(first.history[key] + second.history[key], whole.history[key], rtol=1e-5,
                                   err_msg=key)


def test_a_nan_loss_stops_the_run_naming_epoch_and_batch(window, qtbot):
    doc = _open(window, qtbot, {"epochs": 3, "optimizer": "sgd", "learning_rate": 1e38, "seed": 3})
    run = _train(window, qtbot)
    assert run.outcome == "nan"
    assert "epoch 1, batch" in run.message and "NaN" in run.message
    assert "NaN" in window.training_panel.notice.text()
    assert all(n.weights is None for n in doc.nodes.values())  # a NaN run's weights stay out of the model


def test_an_exception_in_the_worker_is_shown_and_the_app_stays_usable(window, qtbot, monkeypatch):
    import app.training_session as session

    def broken(*args, **kwargs):
        raise RuntimeError("the runtime broke")

    monkeypatch.setattr(session, "execute_run", broken)
    doc = _open(window, qtbot, {"epochs": 1})
    before = doc.graph_dict()
    run = _train(window, qtbot)
    assert run.outcome == "error"
    assert "the runtime broke" in window.training_panel.notice.text()
    assert doc.graph_dict() == before and doc.runs == []
    assert window.training_panel.train_button.isEnabled()
    window.add_layer_at_centre("Dense")  # the editor still works
    assert len(doc.nodes) == len(before["nodes"]) + 1


def test_changing_the_graph_after_a_run_says_its_weights_no_longer_fit(window, qtbot):
    doc = _open(window, qtbot, {"epochs": 1, "seed": 4})
    _train(window, qtbot)
    assert window.training_panel.stale_notice.isHidden()
    dense = next(n for n in doc.nodes.values() if n.class_name == "Dense")
    window.editor.set_config(dense.id, dict(dense.config, units=dense.config["units"] + 1))
    qtbot.waitUntil(lambda: "no longer fit" in window.training_panel.stale_notice.text(), timeout=5000)
    assert not window.training_panel.stale_notice.isHidden()
    assert not window.training_panel.continue_button.isEnabled()


def test_train_is_refused_with_the_reason_when_the_model_is_incomplete(window, qtbot):
    doc = _open(window, qtbot, {"epochs": 1})
    window.add_layer_at_centre("Dense")  # not connected
    window.editor.refresh()
    assert window.train() is False
    assert "Cannot train" in window.training_panel.notice.text() and "Not connected" in \
        window.training_panel.notice.text()
    assert not window.training.is_running() and doc.runs == []


def test_the_project_is_autosaved_before_a_run(window, qtbot, monkeypatch):
    from exporters import project

    saved = []
    monkeypatch.setattr(project, "autosave", lambda doc, path, key: saved.append(time.monotonic()))
    _open(window, qtbot, {"epochs": 1})
    _train(window, qtbot)
    assert saved


def test_device_cuda_trains_on_cuda_or_falls_back_to_the_cpu_with_a_notice(window, qtbot):
    """On a machine where CUDA starts, the run is on CUDA and says nothing of a fallback; where it cannot start
    (no GPU, no CUDA libraries), the run trains on the CPU and the panel says so."""
    from core import runtime

    _open(window, qtbot, {"epochs": 1, "device": "cuda"})
    run = _train(window, qtbot)
    assert run.outcome == "finished"
    if runtime.cuda_usable():
        assert run.device == "cuda" and "could not be started" not in window.training_panel.notice.text()
    else:
        assert run.device == "cpu" and "CUDA" in window.training_panel.notice.text()


def test_runs_overlay_with_a_legend_naming_their_settings_and_export_as_png_and_csv(window, qtbot, tmp_path):
    import csv

    _open(window, qtbot, {"epochs": 2, "seed": 1, "batch_size": 50})
    _train(window, qtbot)
    doc = window.editor.doc
    window.editor.push(commands.SetTrainingSettings(doc, dict(doc.training, optimizer="sgd", learning_rate=0.05)))
    window.editor.refresh()
    _train(window, qtbot)
    assert window.curves.legend_names("loss") == ["Run 1: adam, batch 50, seed 1",
                                                  "Run 2: sgd, lr 0.05, batch 50, seed 1"]
    window.curves.export_png(str(tmp_path / "curves.png"))
    window.curves.export_csv(str(tmp_path / "curves.csv"))
    assert (tmp_path / "curves.png").stat().st_size > 1000
    with open(tmp_path / "curves.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["run"], r["epoch"]) for r in rows] == [("1", "1"), ("1", "2"), ("2", "1"), ("2", "2")]
    assert float(rows[3]["loss"]) == pytest.approx(window.training.runs[1].history["loss"][1])
    window.curves.log_scale.setChecked(True)
    assert window.curves.plots["loss"].ctrl.logYCheck.isChecked()


def test_data_that_does_not_fit_is_refused_before_training_naming_the_input_and_both_shapes(window, qtbot):
    doc = _open(window, qtbot, {"epochs": 1})  # the MLP takes 32 features
    iris = {"kind": "csv", "name": "iris", "path": "sample:iris.csv",
            "features": ["sepal_length", "sepal_width", "petal_length", "petal_width"], "label": "species",
            "label_mode": "int", "validation_split": 0.2}
    window.editor.push(commands.SetDataset(doc, iris))
    window.editor.refresh()
    window.load_training_data()
    qtbot.waitUntil(lambda: not window.data_panel.busy() and window.data_panel.loaded() is not None, timeout=20000)
    assert window.train() is False
    notice = window.training_panel.notice.text()
    assert "Cannot train" in notice and "(None, 32)" in notice and "4" in notice
    assert not window.training.is_running() and doc.runs == []

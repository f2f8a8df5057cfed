"""Evaluate a trained example in the window (the confusion matrix equals one computed from predict), the runs
table (curves of the selected runs, two runs' models diffed on the canvas), restoring a run and undoing it, and runs
with their weights kept in the project file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QTableWidgetSelectionRange

from app.runs_panel import COLUMNS
from exporters.project import load_project
from training_helpers import open_for_training, press_and_wait

ROOT = Path(__file__).resolve().parents[2]
IRIS = ROOT / "resources" / "examples" / "iris_mlp.nwproj"


def _open_and_train(window, qtbot, settings: dict, example: Path = IRIS):
    doc = open_for_training(window, qtbot, example, settings)
    return doc, press_and_wait(window, qtbot)


def _train(window, qtbot):
    return press_and_wait(window, qtbot)


def test_evaluation_matches_evaluate_and_a_confusion_matrix_made_from_predict(window, qtbot):
    doc, run = _open_and_train(window, qtbot, {"epochs": 15, "seed": 3})
    assert run.outcome == "finished"
    assert window.evaluate()
    qtbot.waitUntil(lambda: window.evaluation.report is not None and not window.evaluation.busy(), timeout=30000)
    x_val, y_val = window.data_panel.loaded().validation
    model = doc.to_model()
    probs = model.predict(x_val[0], verbose=0)
    want = np.zeros((3, 3), dtype=int)
    np.add.at(want, (y_val[0].astype(int), probs.argmax(axis=1)), 1)
    report = window.evaluation.report
    np.testing.assert_array_equal(report.confusion, want)
    assert report.classes == window.data_panel.loaded().class_names
    assert set(window.evaluation.logs) == {"loss", "accuracy"}
    assert window.evaluation.logs["accuracy"] == np.float32(np.mean(probs.argmax(axis=1) == y_val[0]))
    assert window.evaluation.confusion.rowCount() == 3
    table = window.evaluation.predictions
    assert table.rowCount() == len(y_val[0])
    losses = [table.item(r, 4).value for r in range(table.rowCount())]
    assert losses == sorted(losses, reverse=True)  # the hardest samples first
    table.selectRow(0)
    assert "sepal" in window.evaluation.sample.toPlainText()  # the sample's features, by name
    window.evaluation.normalized.setChecked(True)
    row = [float(window.evaluation.confusion.item(0, j).text()) for j in range(3)]
    assert abs(sum(row) - 1.0) < 0.02
    assert window.problems == []


def test_evaluate_without_training_data_says_what_to_do(window, qtbot):
    window.new_document()
    assert window.evaluate() is False
    assert "Cannot evaluate" in window.evaluation.metrics.text()


def test_runs_table_diff_restore_and_undo(window, qtbot):
    doc, first = _open_and_train(window, qtbot, {"epochs": 2, "seed": 1})
    hidden = next(n for n in doc.nodes.values() if n.class_name == "Dense" and n.name == "dense")
    window.editor.set_config(hidden.id, dict(hidden.config, units=24))
    window.editor.refresh()
    second = _train(window, qtbot)
    assert second.outcome == "finished"
    panel = window.runs_panel
    qtbot.waitUntil(lambda: panel.table.rowCount() == 2, timeout=5000)
    assert panel.table.item(1, 9).text() == "finished"

    panel.table.selectRow(0)
    assert [c.run for c in window.curves.runs if c.items[("loss", "epoch")].isVisible()] == [first]
    panel.table.setRangeSelected(QTableWidgetSelectionRange(0, 0, 1, len(COLUMNS) - 1), True)
    assert "units 16 → 24" in panel.diff.toPlainText()
    assert window.editor.scene.selected_node_ids() == [hidden.id]  # the changed layer, selected on the canvas

    panel.table.clearSelection()
    panel.table.selectRow(0)
    trained_second = [np.array(w) for w in doc.nodes[hidden.id].weights]
    panel.restore_button.click()
    assert doc.nodes[hidden.id].config["units"] == 16
    for a, b in zip(doc.nodes[hidden.id].weights, first.weights[hidden.id]):
        np.testing.assert_array_equal(a, b)
    window.editor.stack.undo()
    assert doc.nodes[hidden.id].config["units"] == 24
    for a, b in zip(doc.nodes[hidden.id].weights, trained_second):
        np.testing.assert_array_equal(a, b)


def test_a_saved_project_keeps_its_runs_and_the_weights_each_ended_with(window, qtbot, tmp_path):
    doc, run = _open_and_train(window, qtbot, {"epochs": 2, "seed": 2})
    path = tmp_path / "iris.nwproj"
    window._save_to(str(path))
    again = load_project(path)
    assert len(again.runs) == 1
    kept = again.runs[0]
    assert kept.history == run.history and kept.settings == run.settings and kept.model == run.model
    for nid, ws in run.weights.items():
        for a, b in zip(kept.weights[nid], ws):
            np.testing.assert_array_equal(a, b)
    # the copied sample dataset is found again from the project's new folder
    assert again.datasets[0]["path"].startswith("sample:")


def test_a_raw_text_test_file_is_read_as_the_training_texts_were(tmp_path):
    import pytest

    from app.evaluation_panel import load_test_data
    from exporters.datasets import load_dataset, sample_datasets

    austen = next(s["spec"] for s in sample_datasets() if s["name"] == "austen_passages")
    raw = dict(austen, texts_as="strings")
    (tmp_path / "test.csv").write_text('text,novel\n"Anne walked to the Cobb.",Persuasion\n"Emma smiled.",Emma\n')
    x, y, samples, names, _ = load_test_data(raw, str(tmp_path / "test.csv"), None, load_dataset(raw))
    assert x[0].dtype == object and x[0][:, 0].tolist() == ["Anne walked to the Cobb.", "Emma smiled."]
    assert names == ["Emma", "Persuasion", "Pride and Prejudice"] and y[0].tolist() == [1, 0]  # the training order
    assert samples == ["Anne walked to the Cobb.", "Emma smiled."]
    with pytest.raises(ValueError, match="fed as token ids would need the training data's Tokenizer vocabulary"):
        load_test_data(austen, str(tmp_path / "test.csv"), None, load_dataset(austen))

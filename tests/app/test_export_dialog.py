"""The export dialog: every format written and verified (green), a failed verification in red naming the output and
keeping the file, the Keras target defaulting to the model's own generation, and a training script."""

from __future__ import annotations

import numpy as np
import pytest

import core as keras
from core import layers
from core import commands
from core.document import Document, LayerNode
from exporters.datasets import LoadedData
from exporters.model_export import FORMATS
from app.export_dialog import FAIL_COLOUR, OK_COLOUR


def _doc():
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    h = layers.LSTM(5, name="lstm")(layers.Embedding(30, 4, name="emb")(tokens))
    return Document.from_model(keras.Model(tokens, layers.Dense(3, activation="softmax", name="label")(h),
                                           name="tagger"))


def _export(dialog, qtbot):
    assert dialog.export()
    qtbot.waitUntil(lambda: dialog.result is not None or "failed" in dialog.status.text(), timeout=30000)
    return dialog.result


CASES = [(f, t) for f in FORMATS for t in (("keras3", "tf_keras2") if FORMATS[f].has_target else ("keras3",))]


@pytest.mark.parametrize("fmt,target", CASES)
def test_each_format_is_written_and_verified(window, qtbot, tmp_path, fmt, target):
    window.editor.set_document(_doc())
    dialog = window.open_export_dialog()
    qtbot.addWidget(dialog)
    dialog.set_format(fmt, target)
    chosen = tmp_path / f"model-{fmt}-{target}"
    dialog.ask_save_path = lambda title, filters, suggested: str(chosen.with_name(chosen.name + "." +
                                                                                   suggested.rpartition(".")[2]))
    dialog.browse_button.click()
    path, verification = _export(dialog, qtbot)
    assert path.exists() and path.parent == tmp_path
    assert verification.ok, verification.message
    assert OK_COLOUR in dialog.status.text() and "Largest difference" in dialog.status.text()
    assert "token ids below 30" in verification.inputs


def test_a_failed_verification_is_red_names_the_output_and_keeps_the_file(window, qtbot, tmp_path, monkeypatch):
    from exporters import verify

    real = verify.read_back
    monkeypatch.setattr(verify, "read_back", lambda *a: [r + 0.125 for r in real(*a)])
    window.editor.set_document(_doc())
    dialog = window.open_export_dialog()
    qtbot.addWidget(dialog)
    dialog.set_format("onnx")
    dialog.path_edit.setText(str(tmp_path / "t.onnx"))
    path, verification = _export(dialog, qtbot)
    assert not verification.ok and verification.output == "label"
    text = dialog.status.text()
    assert FAIL_COLOUR in text and "FAILED" in text and "0.125" in text and "'label'" in text and "kept at" in text
    assert path.exists()


def test_the_target_defaults_to_the_generation_the_model_came_from(window, qtbot, fixtures_dir):
    from app.main_window import import_keras

    window.editor.set_document(import_keras(str(fixtures_dir / "keras2" / "seed_functional.h5")))
    dialog = window.open_export_dialog()
    qtbot.addWidget(dialog)
    assert dialog.target == "tf_keras2" and "tf.keras 2" in dialog.target_note.text()
    window.editor.set_document(_doc())
    other = window.open_export_dialog()
    qtbot.addWidget(other)
    assert other.target == "keras3"


def test_a_training_script_with_the_projects_data_verifies(window, qtbot, tmp_path):
    doc = _doc()
    doc.training = {"optimizer": "adam", "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"],
                    "epochs": 2, "batch_size": 8}
    window.editor.set_document(doc)
    ids = np.arange(120).reshape(20, 6) % 30
    from app.export_dialog import ExportDialog

    dialog = ExportDialog(doc, LoadedData(x=[ids], y=[np.arange(20) % 3]), str(tmp_path), window)
    qtbot.addWidget(dialog)
    dialog.set_format("py")
    assert dialog.training_script.isEnabled()
    dialog.training_script.setChecked(True)
    path, verification = _export(dialog, qtbot)
    assert verification.ok, verification.message
    assert verification.inputs == "16 training samples of the project's data"
    assert "model.fit(x, y, batch_size=8, epochs=epochs)" in path.read_text()
    assert (tmp_path / "tagger_data.npz").exists()


def test_an_incomplete_model_is_not_exported_and_says_why(window, qtbot, tmp_path):
    doc = _doc()
    window.editor.set_document(doc)
    window.editor.push(commands.RemoveNodes(doc, [doc.node_by_name("label").id]))
    window.editor.push(commands.AddNode(LayerNode("dangling", "Dense", {"name": "dangling", "units": 2})))
    dialog = window.open_export_dialog()
    qtbot.addWidget(dialog)
    dialog.set_format("onnx")
    dialog.path_edit.setText(str(tmp_path / "x.onnx"))
    assert not dialog.export()
    assert FAIL_COLOUR in dialog.status.text() and "dangling" in dialog.status.text()
    assert not (tmp_path / "x.onnx").exists()

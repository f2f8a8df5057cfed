"""Raw text in the app: an Input of dtype string drawn and shown, the Data panel's texts fed as strings to it and its
checks, TextVectorization adapted on them from the inspector (undo, save, reload), and the bundled raw-text example
opened and trained."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import core as keras
from app import adapting
from core import layers
from core.document import Document, Wire
from exporters.datasets import LoadedData, check_fits, load_dataset, sample_datasets
from exporters.project import load_project, save_project
from training_helpers import open_for_training, press_and_wait

EXAMPLE = Path(__file__).resolve().parents[2] / "resources" / "examples" / "austen_raw_text.nwproj"
AUSTEN = next(s["spec"] for s in sample_datasets() if s["name"] == "austen_passages")
RAW = dict(AUSTEN, texts_as="strings")


def _text_doc(datasets=(RAW,)) -> Document:
    """text (string) -> TextVectorization 'vectorize' -> Embedding -> GlobalAveragePooling1D -> Dense 'novel'."""
    inputs = keras.Input(shape=(1,), dtype="string", name="text")
    x = layers.TextVectorization(max_tokens=2000, output_sequence_length=40, name="vectorize")(inputs)
    x = layers.Embedding(2000, 16)(x)
    x = layers.GlobalAveragePooling1D()(x)
    outputs = layers.Dense(3, activation="softmax", name="novel")(x)
    doc = Document.from_model(keras.Model(inputs, outputs, name="austen_words"))
    for node in doc.nodes.values():
        node.weights = None
    doc.training = {"optimizer": "adam", "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"],
                    "batch_size": 32, "epochs": 1, "seed": 2, "shuffle": True, "validation_split": 0.0}
    doc.datasets = [dict(d) for d in datasets]
    return doc


def test_a_string_input_is_chosen_in_the_inspector_and_its_wire_says_string(window, qtbot):
    window.editor.add_layer("InputLayer")
    window.editor.add_layer("Dense")
    doc = window.editor.doc
    inp, dense = list(doc.nodes)
    assert window.editor.request_wire(inp, 0, dense, 0) is None
    window.editor.scene.select_nodes([inp])
    qtbot.waitUntil(lambda: window.inspector.node_id == inp, timeout=5000)
    combo = window.inspector.editors["dtype"].widget
    assert combo.findText("string") >= 0
    window.inspector.editors["shape"].widget.setText("1")
    window.inspector.editors["shape"].widget.editingFinished.emit()
    combo.setCurrentText("string")
    assert doc.nodes[inp].config["dtype"] == "string"
    window.editor.refresh()
    assert doc.output_spec(inp, 0).dtype == "string"
    assert window.editor.scene.wire_items[Wire(inp, 0, dense, 0)].label == "(None, 1) string"


def test_numbers_into_a_string_input_and_strings_into_it_are_checked():
    model = _text_doc().to_model()
    texts = load_dataset(RAW)
    assert texts.x[0].shape == (720, 1) and check_fits(texts, model) == []
    flat = LoadedData([texts.x[0][:, 0]], texts.y)  # (n,) texts for an Input of shape (1,): Keras adds the axis
    assert check_fits(flat, model) == []
    ids = load_dataset(AUSTEN)
    assert check_fits(ids, model) == [
        "input 'text' expects text (dtype string), the data gives int32 numbers. Choose text data fed as raw text "
        "(Data panel, Texts as: raw text), or give the input a number dtype."]


def test_text_vectorization_adapts_on_raw_text_from_the_inspector_and_trains(window, qtbot, tmp_path):
    path = save_project(_text_doc(), tmp_path / "austen_words.nwproj")
    assert window.open_path(str(path), wait=True)
    doc = window.editor.doc
    vectorize = doc.node_by_name("vectorize").id
    window.editor.scene.select_nodes([vectorize])
    qtbot.waitUntil(lambda: window.inspector.node_id == vectorize, timeout=5000)
    assert window.inspector.adapt_label.text().startswith("Not adapted yet")
    window.load_training_data()
    qtbot.waitUntil(lambda: not window.data_panel.busy(), timeout=20000)
    assert window.train() is False
    assert "TextVectorization 'vectorize'" in window.training_panel.notice.text()
    assert "Adapt on training data" in window.training_panel.notice.text()
    window.inspector.adapt_button.click()
    qtbot.waitUntil(lambda: doc.nodes[vectorize].config.get("vocabulary") is not None, timeout=20000)
    texts = window.data_panel.loaded().x[0]
    reference = layers.TextVectorization(max_tokens=2000, output_sequence_length=40)
    reference.adapt(texts)
    vocabulary = reference.get_vocabulary()
    assert window.statusBar().currentMessage().startswith(
        f"'vectorize' adapted on 720 samples: vocabulary of {len(vocabulary):,} tokens ('', '[UNK]', 'the'")
    np.testing.assert_array_equal(doc.to_model().get_layer("vectorize")(texts[:5]), reference(texts[:5]))

    window.editor.stack.undo()
    assert adapting.not_ready(doc, vectorize) is not None
    window.editor.stack.redo()
    saved = tmp_path / "saved.nwproj"
    assert window._save_to(str(saved))
    assert load_project(saved).to_model().get_layer("vectorize").get_vocabulary() == vocabulary
    run = press_and_wait(window, qtbot)
    assert run.outcome == "finished" and run.epochs_done == 1, run.message


def test_the_raw_text_example_opens_adapted_and_trains(window, qtbot):
    doc = open_for_training(window, qtbot, EXAMPLE, {"epochs": 1})
    assert adapting.unadapted_layers(doc) == [] and window.data_panel.problems() == []
    assert window.data_panel.loaded().x[0].dtype == object
    run = press_and_wait(window, qtbot)
    assert run.outcome == "finished", run.message
    probabilities = doc.to_model().predict(np.array([["Mr. Darcy and Elizabeth walked to Pemberley."]],
                                                    dtype=object), verbose=0)
    assert probabilities.shape == (1, 3) and abs(float(probabilities.sum()) - 1.0) < 1e-5


def test_the_raw_text_example_exports_to_onnx_that_takes_text_and_verifies(tmp_path):
    from exporters.onnx_export import run_onnx
    from exporters.verify import sample_inputs, verify_export

    model = load_project(EXAMPLE).to_model()
    path = tmp_path / "austen_raw_text.onnx"
    model.to_onnx(path)
    texts = np.array([["Mr. Darcy bowed."], ["Anne Elliot, at Kellynch!"]], dtype=object)
    np.testing.assert_allclose(run_onnx(path, [texts])[0], model.predict(texts, verbose=0), atol=1e-6)
    xs, what = sample_inputs(model)  # no data given: random sentences, some of unknown words
    assert xs[0].dtype == object and xs[0].shape == (16, 1) and what == "16 random samples (random texts for 'text')"
    assert verify_export(model, path, "onnx").ok


def test_the_text_sample_chosen_for_a_string_input_is_fed_as_raw_text(qtbot):
    from app.data_panel import DataPanel

    panel = DataPanel()
    qtbot.addWidget(panel)
    panel.show_document(_text_doc(datasets=()))
    with qtbot.waitSignal(panel.dataShown, timeout=10000):
        panel.sample_box.setCurrentIndex(panel.sample_box.findData("austen_passages"))
    assert panel.spec() == RAW and panel.texts_as_box.currentData() == "strings"
    assert panel.loaded().x[0].dtype == object and panel.problems() == []
    assert "fits model 'austen_words'" in panel.problems_label.text()
    panel.wait()

"""Adapting a drawn preprocessing layer on the Data panel's training data: the inspector's button and the canvas
menu, one undo step that the project saves, Train naming a layer not adapted yet, and the refusals (no data, a layer
behind one not adapted, text into a number input, a layer that does not adapt)."""

from __future__ import annotations

import numpy as np
import pytest

import core as keras
from app import adapting
from core import commands, layers
from core.document import Document, LayerNode, Wire
from core.errors import ConfigError
from exporters.datasets import LoadedData, load_dataset, sample_datasets
from exporters.project import load_project, save_project
from training_helpers import press_and_wait

IRIS = dict(next(s["spec"] for s in sample_datasets() if s["name"] == "iris"), standardize=False)
AUSTEN = next(s["spec"] for s in sample_datasets() if s["name"] == "austen_passages")
SETTINGS = {"optimizer": "adam", "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"],
            "batch_size": 16, "epochs": 2, "seed": 3, "shuffle": True, "validation_split": 0.0}


def _iris_doc(after_norm=None, datasets=(IRIS,)) -> Document:
    """measurements -> Normalization 'norm' [-> after_norm] -> Dense 'species', on the Iris sample (raw features)."""
    inputs = keras.Input(shape=(4,), name="measurements")
    x = layers.Normalization(name="norm")(inputs)
    if after_norm is not None:
        x = after_norm(x)
    outputs = layers.Dense(3, activation="softmax", name="species")(x)
    doc = Document.from_model(keras.Model(inputs, outputs, name="iris_norm"))
    for node in doc.nodes.values():
        node.weights = None  # as drawn: nothing adapted or trained yet
    doc.training = dict(SETTINGS)
    doc.datasets = [dict(d) for d in datasets]
    return doc


def _node(doc: Document, name: str) -> str:
    return doc.node_by_name(name).id


def _open(window, qtbot, tmp_path, doc: Document) -> Document:
    path = save_project(doc, tmp_path / "iris_norm.nwproj")
    assert window.open_path(str(path), wait=True)
    window.load_training_data()
    qtbot.waitUntil(lambda: not window.data_panel.busy(), timeout=20000)
    return window.editor.doc


def _wait_adapted(window, qtbot) -> None:
    """Adapting runs on a worker thread; its command is pushed (or its refusal shown) when it ends."""
    qtbot.waitUntil(lambda: not window.is_adapting(), timeout=20000)


def _select(window, qtbot, node_id: str) -> None:
    window.editor.scene.select_nodes([node_id])
    qtbot.waitUntil(lambda: window.inspector.node_id == node_id, timeout=5000)


def test_train_names_the_layer_to_adapt_then_adapt_undo_redo_save_and_train(window, qtbot, tmp_path):
    doc = _open(window, qtbot, tmp_path, _iris_doc())
    norm = _node(doc, "norm")
    assert window.train() is False and not window.training.is_running()
    notice = window.training_panel.notice.text()
    assert "Normalization 'norm' has no statistics yet" in notice and "Adapt on training data" in notice

    _select(window, qtbot, norm)
    inspector = window.inspector
    assert inspector.adapt_box.isVisible() and inspector.adapt_button.isEnabled()
    assert inspector.adapt_label.text().startswith("Not adapted yet")
    inspector.adapt_button.click()
    _wait_adapted(window, qtbot)
    x = window.data_panel.loaded().x[0]  # the training part: 120 of Iris's 150 rows
    assert x.shape == (120, 4)
    mean, variance, _count = doc.nodes[norm].weights
    np.testing.assert_allclose(mean, x.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(variance, x.var(axis=0), rtol=1e-5)
    assert "'norm' adapted on 120 samples: mean [" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: inspector.adapt_label.text().startswith("Adapted: mean ["), timeout=5000)
    assert window.editor.stack.undo_text() == "Adapt 'norm' on the training data"

    window.editor.stack.undo()
    assert doc.nodes[norm].weights is None
    qtbot.waitUntil(lambda: inspector.adapt_label.text().startswith("Not adapted yet"), timeout=5000)
    window.editor.stack.redo()
    np.testing.assert_allclose(doc.nodes[norm].weights[0], x.mean(axis=0), rtol=1e-6)

    saved = tmp_path / "saved.nwproj"
    assert window._save_to(str(saved))
    reloaded = load_project(saved)
    np.testing.assert_allclose(reloaded.nodes[norm].weights[1], x.var(axis=0), rtol=1e-5)
    assert adapting.unadapted_layers(reloaded) == []

    # Train starts from what adapt learned (the file it was opened from had none), and keeps it.
    run = press_and_wait(window, qtbot)
    assert run.outcome == "finished" and run.epochs_done == 2, run.message
    np.testing.assert_allclose(window.training.model.get_layer("norm").get_weights()[0], x.mean(axis=0), rtol=1e-6)

    # Adapting again after the run: Continue would go on with the run's model and what 'norm' knew then
    assert window.training.can_continue(doc) and window.training_panel.continue_button.isEnabled()
    inspector.adapt_button.click()
    _wait_adapted(window, qtbot)
    assert window.editor.stack.undo_text() == "Adapt 'norm' on the training data"
    assert not window.training.can_continue(doc) and not window.training_panel.continue_button.isEnabled()


def test_the_canvas_menu_offers_adapt_for_a_preprocessing_layer_only(window, qtbot, tmp_path):
    doc = _open(window, qtbot, tmp_path, _iris_doc())
    _select(window, qtbot, _node(doc, "species"))
    assert window.canvas_menu().findChild(type(window.call_again_action), "adaptAction") is None
    assert not window.inspector.adapt_box.isVisible()
    _select(window, qtbot, _node(doc, "norm"))
    action = window.canvas_menu().findChild(type(window.call_again_action), "adaptAction")
    assert action is not None and action.text() == "Adapt on training data"
    action.trigger()
    _wait_adapted(window, qtbot)
    assert doc.nodes[_node(doc, "norm")].weights is not None


def test_adapting_without_data_names_the_layer_and_the_data_panel(window, qtbot, tmp_path):
    doc = _open(window, qtbot, tmp_path, _iris_doc(datasets=()))
    norm = _node(doc, "norm")
    _select(window, qtbot, norm)
    window.inspector.adapt_button.click()
    _wait_adapted(window, qtbot)
    text = window.inspector.error_label.text()
    assert text == ("Cannot adapt 'norm': no training data is loaded. Choose the data on the Data panel first; the "
                    "layer learns from its training part.")
    assert window.inspector.error_label.isVisible() and doc.nodes[norm].weights is None
    assert not window.editor.stack.can_undo()


def test_a_deeper_layer_learns_from_the_layers_before_it_once_they_are_adapted():
    doc = _iris_doc(after_norm=layers.Discretization(num_bins=4, name="bins"))
    data = load_dataset(IRIS)
    with pytest.raises(ConfigError) as err:
        adapting.adapt_node(doc, _node(doc, "bins"), data)
    assert str(err.value).startswith("Cannot adapt 'bins': the data reaches it through 'norm', which is not adapted "
                                     "yet (Normalization 'norm' has no statistics yet")
    assert str(err.value).endswith("Adapt 'norm' first.")

    adapted = adapting.adapt_node(doc, _node(doc, "norm"), data)
    doc_commands = [adapted.command]
    adapted.command.do(doc)
    adapted = adapting.adapt_node(doc, _node(doc, "bins"), data)
    doc_commands.append(adapted.command)
    adapted.command.do(doc)
    x = data.x[0]
    expected = layers.Discretization(num_bins=4)
    expected.adapt((x - x.mean(axis=0)) / np.sqrt(x.var(axis=0)))  # what reaches 'bins': the normalized features
    np.testing.assert_allclose(doc.nodes[_node(doc, "bins")].config["bin_boundaries"], expected.bin_boundaries,
                               rtol=1e-5, atol=1e-6)
    assert adapted.summary.startswith("'bins' adapted on 120 samples: 4 bins, boundaries [")
    assert "from the outputs of 'norm'" in adapted.summary
    assert adapting.unadapted_layers(doc) == []
    for command in reversed(doc_commands):
        command.undo(doc)
    assert doc.nodes[_node(doc, "bins")].config.get("bin_boundaries") is None
    assert len(adapting.unadapted_layers(doc)) == 2


def test_text_into_a_number_input_and_layers_that_cannot_adapt_are_refused():
    doc = _iris_doc()
    texts = load_dataset(dict(AUSTEN, texts_as="strings"))
    with pytest.raises(ConfigError) as err:
        adapting.adapt_node(doc, _node(doc, "norm"), texts)
    assert str(err.value) == ("Cannot adapt 'norm': its input 'measurements' takes float32 values, but the data for "
                              "it gives raw text (strings). Choose data that fits 'measurements' on the Data panel "
                              "(or change the input's dtype).")
    with pytest.raises(ConfigError, match="'species' \\(Dense\\) does not learn from data"):
        adapting.adapt_node(doc, _node(doc, "species"), load_dataset(IRIS))

    lone = Document("m")
    lone.add_node(LayerNode("n1", "IntegerLookup", {"name": "lookup"}))
    with pytest.raises(ConfigError, match="Cannot adapt 'lookup': its input is not wired"):
        adapting.adapt_node(lone, "n1", LoadedData([np.zeros((3, 1))], [np.zeros(3)]))


def test_integer_lookup_learns_a_vocabulary_that_its_config_keeps():
    doc = Document("ids")
    doc.add_node(LayerNode("n1", "InputLayer", {"name": "ids", "shape": [3], "dtype": "int64"}))
    doc.add_node(LayerNode("n2", "IntegerLookup", {"name": "lookup"}))
    doc.add_wire(Wire("n1", 0, "n2", 0))
    data = LoadedData([np.array([[7, 7, 3], [3, 9, 7]])], [np.zeros(2)])
    assert adapting.state_text(doc, "n2").startswith("Not adapted yet")
    adapted = adapting.adapt_node(doc, "n2", data)
    adapted.command.do(doc)
    reference = layers.IntegerLookup()
    reference.adapt(data.x[0])
    assert doc.nodes["n2"].config["vocabulary"] == reference.get_vocabulary(include_special_tokens=False) == [7, 3, 9]
    assert adapting.state_text(doc, "n2") == "Adapted: vocabulary of 4 tokens (-1, 7, 3, 9)"
    adapted.command.undo(doc)
    assert doc.nodes["n2"].config.get("vocabulary") is None


def test_data_still_being_read_adapts_the_layer_once_it_is_read(window, qtbot, tmp_path):
    inputs = keras.Input(shape=(50,), dtype="int32", name="tokens")
    x = layers.IntegerLookup(mask_token=0, name="lookup")(inputs)
    x = layers.Embedding(input_dim=6000, output_dim=8)(x)
    x = layers.GlobalAveragePooling1D()(x)
    outputs = layers.Dense(3, activation="softmax", name="novel")(x)
    doc = Document.from_model(keras.Model(inputs, outputs, name="austen_lookup"))
    doc.datasets = [AUSTEN]  # token ids from a Tokenizer: a text sample, read on a worker thread
    path = save_project(doc, tmp_path / "austen_lookup.nwproj")
    assert window.open_path(str(path), wait=True)
    doc = window.editor.doc
    lookup = _node(doc, "lookup")
    _select(window, qtbot, lookup)
    assert window.adapt_layer(lookup)
    assert window.statusBar().currentMessage() == "Reading the data: 'lookup' is adapted when it is read."
    qtbot.waitUntil(lambda: doc.nodes[lookup].config.get("vocabulary") is not None, timeout=20000)
    ids = window.data_panel.loaded().x[0]
    reference = layers.IntegerLookup(mask_token=0)
    reference.adapt(ids)
    assert doc.nodes[lookup].config["vocabulary"] == reference.get_vocabulary(include_special_tokens=False)
    assert window.statusBar().currentMessage().startswith("'lookup' adapted on 720 samples: vocabulary of ")
    assert window.inspector.adapt_label.text().startswith("Adapted: vocabulary of ")


def test_adapting_again_says_how_once_the_config_holds_what_was_learned():
    doc = Document("ids")
    doc.add_node(LayerNode("n1", "InputLayer", {"name": "ids", "shape": [3], "dtype": "int64"}))
    doc.add_node(LayerNode("n2", "IntegerLookup", {"name": "lookup"}))
    doc.add_wire(Wire("n1", 0, "n2", 0))
    first = LoadedData([np.array([[7, 7, 3]])], [np.zeros(1)])
    adapting.adapt_node(doc, "n2", first).command.do(doc)
    second = LoadedData([np.array([[5, 5, 5], [4, 4, 9]])], [np.zeros(2)])
    with pytest.raises(ConfigError) as err:
        adapting.adapt_node(doc, "n2", second)
    assert str(err.value) == ("IntegerLookup 'lookup' was given its vocabulary; it cannot adapt. The state in its "
                              "config (given, or learned by an earlier adapt) stops it adapting again: adapt it again "
                              "from the window, which asks to replace it, or clear it in the inspector first.")
    replaced = adapting.adapt_node(doc, "n2", second, replace=True)
    assert replaced.command.text == "Adapt 'lookup' on the training data"
    cleared = dict(doc.nodes["n2"].config, vocabulary=None)
    commands.SetConfig(doc, "n2", cleared).do(doc)  # what clearing the field in the inspector sends
    adapting.adapt_node(doc, "n2", second).command.do(doc)
    assert doc.nodes["n2"].config["vocabulary"] == [5, 4, 9]


def test_an_edit_while_the_layer_learns_on_its_worker_drops_the_result(window, qtbot, tmp_path):
    doc = _open(window, qtbot, tmp_path, _iris_doc())
    norm = _node(doc, "norm")
    assert window.adapt_layer(norm) and window.is_adapting()
    assert window.train() is False
    assert window.training_panel.notice.text() == "Cannot train: 'norm' is still adapting on the training data."
    x, y = doc.nodes[norm].position
    window.editor.push(commands.MoveNodes({norm: ((x, y), (x + 40, y))}))  # before the worker's result comes back
    _wait_adapted(window, qtbot)
    assert doc.nodes[norm].weights is None and window.editor.stack.undo_text() == "Move"
    assert window.inspector.error_label.text() == ("'norm' was not adapted: the drawing changed while it learned. "
                                                   "Adapt it again.")


def test_a_layer_behind_trainable_weights_is_refused_by_name():
    inputs = keras.Input(shape=(4,), name="measurements")
    x = layers.Dense(8, name="hidden")(inputs)
    x = layers.Normalization(name="late_norm")(x)
    doc = Document.from_model(keras.Model(inputs, layers.Dense(3, name="species")(x), name="late"))
    with pytest.raises(ConfigError) as err:
        adapting.adapt_node(doc, _node(doc, "late_norm"), None)  # said before any data is needed
    assert str(err.value) == ("Cannot adapt 'late_norm': the data reaches it through 'hidden' (Dense), whose weights "
                              "training changes, so what it learned now would not fit what reaches it then. Put "
                              "preprocessing layers before the trainable ones (right after the Input), as Keras "
                              "models do.")


def test_adapting_again_in_the_window_asks_then_replaces_what_was_learned(window, qtbot, tmp_path):
    doc = Document("ids")
    doc.add_node(LayerNode("n1", "InputLayer", {"name": "ids", "shape": [3], "dtype": "int64"}))
    doc.add_node(LayerNode("n2", "IntegerLookup", {"name": "lookup", "vocabulary": [7, 3]}))
    doc.add_node(LayerNode("n3", "Dense", {"name": "out", "units": 1}))
    doc.add_wire(Wire("n1", 0, "n2", 0))
    doc.add_wire(Wire("n2", 0, "n3", 0))
    np.savez(tmp_path / "ids.npz", x=np.array([[5, 5, 5], [4, 4, 9]]), y=np.zeros((2, 1), "float32"))
    doc.datasets = [{"kind": "npz", "name": "ids", "path": str(tmp_path / "ids.npz"), "x": ["x"], "y": ["y"],
                     "validation_split": 0.0}]
    doc = _open(window, qtbot, tmp_path, doc)
    questions = []
    window.ask_replace_learned = lambda name, state: questions.append((name, state)) or answer
    answer = False
    assert window.adapt_layer("n2") is False
    assert questions == [("lookup", "vocabulary of 3 tokens (-1, 7, 3)")]
    assert doc.nodes["n2"].config["vocabulary"] == [7, 3]
    assert window.statusBar().currentMessage() == "'lookup' keeps what it holds."
    answer = True
    assert window.adapt_layer("n2")
    _wait_adapted(window, qtbot)
    assert doc.nodes["n2"].config["vocabulary"] == [5, 4, 9]
    window.editor.stack.undo()
    assert doc.nodes["n2"].config["vocabulary"] == [7, 3]

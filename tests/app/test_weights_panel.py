"""The weights panel: a selected layer's weights as get_weights() gives them, gates split and labelled, the change
since a run's start, and a weights file loaded into the drawn model whole (a mismatch refused, naming the layers;
undo restores)."""

from __future__ import annotations

import numpy as np
import pytest

import core as keras
from core import commands, layers
from core.document import Document
from core.training_run import TrainingRun
from app.weights_panel import as_matrix


def _model(units=4, name="m"):
    tokens = keras.Input((5, 3), name="x")
    seq = layers.LSTM(units, return_sequences=True, name="lstm")(tokens)
    gru = layers.GRU(units, name="gru")(seq)
    return keras.Model(tokens, layers.Dense(2, name="out")(gru), name=name)


def _show(window, qtbot, doc, layer):
    window.editor.set_document(doc)
    window.weights_dock.raise_()
    window.editor.scene.select_nodes([doc.node_by_name(layer).id])  # as a click on the canvas does
    panel = window.weights_panel
    qtbot.waitUntil(lambda: panel.node_id == doc.node_by_name(layer).id and len(panel.arrays) > 0, timeout=5000)
    return panel


def _shown_image(panel):
    return np.asarray(panel.image.image).T  # the ImageItem holds the matrix transposed (its first axis runs across)


def test_the_selected_layers_weights_equal_get_weights_split_into_labelled_gates(window, qtbot):
    model = _model()
    doc = Document.from_model(model)
    panel = _show(window, qtbot, doc, "lstm")
    expected = model.get_layer("lstm").get_weights()
    assert panel.source == "document" and "the model's own" in panel.title.text()
    assert [panel.weight_choice.itemText(i) for i in range(panel.weight_choice.count())] == \
        ["kernel (3, 16)", "recurrent_kernel (4, 16)", "bias (16,)"]
    for i, w in enumerate(expected):
        panel.weight_choice.setCurrentIndex(i)
        np.testing.assert_array_equal(panel.current_array(), w)
        np.testing.assert_allclose(_shown_image(panel), as_matrix(w), rtol=0, atol=0)
        assert f"mean {w.mean():.4g}" in panel.stats.text() and f"max {w.max():.4g}" in panel.stats.text()
    panel.weight_choice.setCurrentIndex(1)
    gates = [panel.gate_choice.itemText(i) for i in range(panel.gate_choice.count())]
    assert gates == ["All", "i (input)", "f (forget)", "c (cell)", "o (output)"]
    assert [t for _, t in panel.heat_plot.getAxis("bottom")._tickLevels[0]] == ["i", "f", "c", "o"]
    panel.gate_choice.setCurrentIndex(2)  # the forget gate: columns units..2*units, as Keras orders them
    np.testing.assert_array_equal(_shown_image(panel), expected[1][:, 4:8])
    counts, _ = np.histogram(expected[1][:, 4:8], bins=50)
    np.testing.assert_array_equal(panel.hist_curve.getData()[1], counts)

    # The summary's row selects the same way; a GRU's gates are z, r, h (its bias is (2, 3 * units)).
    window.summary.nodeSelected.emit(doc.node_by_name("gru").id)
    qtbot.waitUntil(lambda: panel.node_id == doc.node_by_name("gru").id, timeout=5000)
    panel.weight_choice.setCurrentIndex(2)
    np.testing.assert_array_equal(panel.current_array(), model.get_layer("gru").get_weights()[2])
    assert [panel.gate_choice.itemText(i) for i in range(panel.gate_choice.count())] == \
        ["All", "z (update)", "r (reset)", "h (candidate)"]


def test_a_layer_without_weights_shows_fresh_initial_values_and_says_so(window, qtbot):
    doc = Document.from_model(_model())
    for node in doc.nodes.values():
        node.weights = None
    panel = _show(window, qtbot, doc, "out")
    assert panel.source == "initial" and "fresh initial values" in panel.title.text()
    np.testing.assert_array_equal(panel.current_array(), panel._fresh_model().get_layer("out").get_weights()[0])
    assert np.abs(panel.current_array()).max() > 0  # Glorot-uniform values, not zeros


def test_the_change_since_the_runs_start_and_its_norm_per_epoch(window, qtbot):
    model = _model()
    doc = Document.from_model(model)
    nid = doc.node_by_name("out").id
    start = [w - 0.5 for w in doc.nodes[nid].weights]
    run = TrainingRun({"loss": "mse"}, history={"loss": [1.0, 0.5, 0.25]},
                      weight_distances={"out": [[0.1, 0.01], [0.2, 0.02], [0.3, 0.03]]},
                      start_weights={"out": start})
    doc.runs.append(run)
    panel = _show(window, qtbot, doc, "out")
    np.testing.assert_allclose(np.asarray(panel.diff_image.image).T, as_matrix(np.full((4, 2), 0.5)), atol=1e-6)
    x, y = panel.norm_curve.getData()
    assert list(x) == [0, 1, 2, 3] and list(y) == [0.0, 0.1, 0.2, 0.3]  # from the run's start, 0 there
    panel.weight_choice.setCurrentIndex(1)
    assert list(panel.norm_curve.getData()[1]) == [0.0, 0.01, 0.02, 0.03]
    assert "run 1" in panel.change_note.text()
    run.start_weights = {}  # a run read from a project file keeps the norms, not its start values
    panel.show_node(nid)
    assert panel.diff_image.image is None and "kept only in the session" in panel.change_note.text()


@pytest.mark.parametrize("suffix", [".weights.h5", ".h5", ".npz"])
def test_a_weights_file_loads_whole_and_undo_restores(window, qtbot, tmp_path, suffix):
    doc = Document.from_model(_model())
    panel = _show(window, qtbot, doc, "lstm")
    before = {nid: [w.copy() for w in n.weights] for nid, n in doc.nodes.items() if n.weights}
    other = _model()
    path = tmp_path / f"other{suffix}"
    other.save_weights(path)
    panel.ask_open_path = lambda: str(path)
    panel.load_button.click()
    assert panel.problem.isHidden()
    for layer in ("lstm", "gru", "out"):
        for a, b in zip(doc.node_by_name(layer).weights, other.get_layer(layer).get_weights()):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(panel.current_array(), other.get_layer("lstm").get_weights()[0])
    assert window.editor.stack.undo_text() == f"Load weights from other{suffix}"
    window.editor.stack.undo()
    for nid, ws in before.items():
        for a, b in zip(doc.nodes[nid].weights, ws):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("suffix", [".weights.h5", ".h5", ".npz"])
def test_a_mismatching_file_is_refused_whole_naming_the_layers(window, qtbot, tmp_path, suffix):
    doc = Document.from_model(_model(units=4))
    panel = _show(window, qtbot, doc, "lstm")
    before = {nid: [w.copy() for w in n.weights] for nid, n in doc.nodes.items() if n.weights}
    path = tmp_path / f"wider{suffix}"
    _model(units=6).save_weights(path)  # LSTM, GRU and the Dense after them differ; nothing may load
    assert not panel.load_file(str(path))
    text = panel.problem.text()
    assert not panel.problem.isHidden() and "nothing was loaded" in text
    for layer in ("lstm", "gru", "out"):
        assert f"'{layer}'" in text, text
    for nid, ws in before.items():
        for a, b in zip(doc.nodes[nid].weights, ws):
            np.testing.assert_array_equal(a, b)
    assert not window.editor.stack.can_undo()


def test_a_projects_weights_sidecar_loads_into_the_same_drawing(window, qtbot, tmp_path):
    from exporters.project import save_project

    doc = Document.from_model(_model())
    save_project(doc, tmp_path / "p.nwproj")
    fresh = Document.from_model(_model())
    panel = _show(window, qtbot, fresh, "out")
    assert panel.load_file(str(tmp_path / "p.weights.npz"))
    for nid, node in doc.nodes.items():
        for a, b in zip(fresh.nodes[nid].weights or [], node.weights or []):
            np.testing.assert_array_equal(a, b)
    window.editor.push(commands.RemoveNodes(fresh, [fresh.node_by_name("out").id]))
    assert not panel.load_file(str(tmp_path / "p.weights.npz"))
    assert "no layer of this model" in panel.problem.text()


def test_weights_that_no_longer_fit_a_changed_layer_are_not_shown_as_its_own(window, qtbot):
    doc = Document.from_model(_model())
    panel = _show(window, qtbot, doc, "out")
    node = doc.node_by_name("out")
    window.editor.push(commands.SetConfig(doc, node.id, dict(node.config, units=5)))
    window.editor.refresh()
    assert panel.source == "initial" and "no longer fit" in panel.title.text()
    assert panel.current_array().shape == (4, 5)


def test_a_bidirectional_layers_weights_are_named_by_direction_with_gates(window, qtbot):
    x = keras.Input((5, 3), name="x")
    model = keras.Model(x, layers.Bidirectional(layers.GRU(2, name="g"), name="bi")(x), name="m")
    panel = _show(window, qtbot, Document.from_model(model), "bi")
    names = [panel.weight_choice.itemText(i).split(" ")[0] for i in range(panel.weight_choice.count())]
    assert names == ["forward_g/kernel", "forward_g/recurrent_kernel", "forward_g/bias",
                     "backward_g/kernel", "backward_g/recurrent_kernel", "backward_g/bias"]
    panel.weight_choice.setCurrentIndex(4)
    np.testing.assert_array_equal(panel.current_array(), model.get_layer("bi").get_weights()[4])
    assert panel.gate_choice.count() == 4  # All, z, r, h

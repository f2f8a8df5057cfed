"""Shared layers in the document: one layer, several calls, each call a node (Keras's layer called on several
tensors)."""

import numpy as np
import pytest

import core as keras
from core import commands, layers
from core.document import Document, Wire
from core.errors import ConfigError, GraphError
from core.summary import summary_rows
from tests.core.test_document import add


def siamese_doc():
    """Two inputs through one Dense (called twice), merged by Add."""
    doc = Document("siamese")
    a = add(doc, "InputLayer", shape=[4], name="a")
    b = add(doc, "InputLayer", shape=[4], name="b")
    d = add(doc, "Dense", units=3, name="shared")
    stack = commands.CommandStack(doc)
    d2 = stack.push(commands.CallAgain(doc, d, (100.0, 100.0))).node.id
    m = add(doc, "Add", name="add")
    for w in (Wire(a, 0, d, 0), Wire(b, 0, d2, 0), Wire(d, 0, m, 0), Wire(d2, 0, m, 1)):
        doc.add_wire(w)
    return doc, stack, (a, b, d, d2, m)


def shared_keras_model():
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    shared = layers.Dense(3, name="shared")
    return keras.Model([a, b], layers.Add(name="add")([shared(a), shared(b)]))


def test_call_again_makes_a_second_call_of_one_layer_and_undo_removes_it():
    doc = Document()
    d = add(doc, "Dense", units=3, name="shared")
    stack = commands.CommandStack(doc)
    new = stack.push(commands.CallAgain(doc, d, (0.0, 0.0))).node.id
    assert doc.calls_of(d) == [d, new] and doc.nodes[new].name == "shared" and doc.is_shared(new)
    stack.undo()
    assert list(doc.nodes) == [d] and not doc.is_shared(d) and doc.nodes[d].layer is None
    stack.redo()
    assert doc.calls_of(new) == [d, new]


def test_an_input_cannot_be_called_again():
    doc = Document()
    i = add(doc, "InputLayer", shape=[4])
    with pytest.raises(ConfigError, match="input of the model"):
        commands.CallAgain(doc, i, (0.0, 0.0))


def test_editing_one_call_edits_the_layer_for_every_call_in_one_undo_step():
    doc, stack, (_, _, d, d2, _) = siamese_doc()
    config = dict(doc.nodes[d2].config, units=5)
    stack.push(commands.SetConfig(doc, d2, config))
    assert doc.nodes[d].config["units"] == doc.nodes[d2].config["units"] == 5
    assert doc.analyze()[d].outputs[0].shape == (None, 5)
    stack.undo()
    assert doc.nodes[d].config["units"] == doc.nodes[d2].config["units"] == 3


def test_renaming_a_call_renames_the_layer_and_other_layers_keep_names_unique():
    doc, stack, (_, _, d, d2, m) = siamese_doc()
    stack.push(commands.SetConfig(doc, d, dict(doc.nodes[d].config, name="tower")))
    assert doc.nodes[d2].name == "tower"
    with pytest.raises(ConfigError, match="already exists"):
        doc.set_config(m, dict(doc.nodes[m].config, name="tower"))


def test_deleting_one_call_keeps_the_layer_while_another_remains():
    doc, stack, (_, b, d, d2, m) = siamese_doc()
    stack.push(commands.RemoveNodes(doc, [d]))
    assert d2 in doc.nodes and doc.nodes[d2].name == "shared" and doc.calls_of(d2) == [d2]
    new = doc.new_node_id()
    assert new != d  # the deleted first call's id still names the layer: a new node does not join it
    stack.undo()
    assert doc.calls_of(d) == [d, d2]


def test_summary_lists_a_shared_layer_once_with_every_call_as_keras_prints_it():
    doc, _, _ = siamese_doc()
    rows = {r.name: r for r in doc.summary_rows()}
    assert [r.name for r in doc.summary_rows()] == ["a", "b", "shared", "add"]
    model = shared_keras_model()
    expected = {r.name: r for r in summary_rows(model)}
    assert rows["shared"].connected_to == expected["shared"].connected_to == ["a[0][0]", "b[0][0]"]
    assert rows["add"].connected_to == expected["add"].connected_to == ["shared[0][0]", "shared[1][0]"]
    assert rows["shared"].params == 15 and doc.total_params() == 15 == model.count_params()


def test_to_model_calls_one_layer_twice_and_shares_its_weights():
    doc, _, (_, _, d, d2, _) = siamese_doc()
    model = doc.to_model()
    shared = model.get_layer("shared")
    assert len(shared._inbound_nodes) == 2 and model.count_params() == 15
    x = np.random.default_rng(0).normal(size=(2, 4)).astype("float32")
    k, bias = shared.get_weights()
    np.testing.assert_allclose(model.predict([x, x], verbose=0), 2 * (x @ k + bias), atol=1e-5)


def test_from_model_draws_each_call_of_a_shared_layer_and_rebuilds_the_same_model():
    model = shared_keras_model()
    doc = Document.from_model(model)
    calls = [nid for nid, n in doc.nodes.items() if n.name == "shared"]
    assert len(calls) == 2 and doc.calls_of(calls[0]) == calls
    rebuilt = doc.to_model()
    assert rebuilt.get_config() == model.get_config()
    x = np.random.default_rng(1).normal(size=(3, 4)).astype("float32")
    y = x[::-1].copy()
    np.testing.assert_allclose(rebuilt.predict([x, y], verbose=0), model.predict([x, y], verbose=0), atol=1e-6)


def test_a_wire_that_makes_the_calls_disagree_on_shapes_is_refused_naming_layer_and_shapes():
    doc, _, (a, b, d, d2, m) = siamese_doc()
    doc.remove_wire(Wire(b, 0, d2, 0))
    wide = add(doc, "InputLayer", shape=[7], name="wide")
    reason = doc.check_wire(wide, 0, d2, 0)
    assert "'shared'" in reason and "(None, 4)" in reason and "(None, 7)" in reason
    with pytest.raises(GraphError, match="shared layer"):
        doc.add_wire(Wire(wide, 0, d2, 0))
    assert doc.check_wire(b, 0, d2, 0) is None


def test_a_later_change_upstream_that_breaks_the_sharing_marks_the_call_as_an_error():
    doc, _, (a, b, d, d2, m) = siamese_doc()
    doc.set_config(b, dict(doc.nodes[b].config, shape=[6]))
    info = doc.analyze()
    assert info[d].status == "ok" and info[d2].status == "error"
    assert "(None, 4)" in info[d2].error and "(None, 6)" in info[d2].error


def test_graph_dict_round_trips_the_calls_and_refuses_calls_that_differ():
    doc, _, (_, _, d, d2, _) = siamese_doc()
    graph = doc.graph_dict()
    again = Document()
    again.load_graph_dict(graph)
    assert again.calls_of(d) == [d, d2] and again.structure() == doc.structure()
    graph["nodes"][3]["config"]["units"] = 9
    with pytest.raises(ConfigError, match="calls of one shared layer"):
        Document().load_graph_dict(graph)


def test_the_siamese_text_example_shares_its_embedding_and_lstm_between_both_inputs():
    from pathlib import Path

    from exporters.project import load_project

    doc = load_project(Path(__file__).resolve().parents[2] / "resources" / "examples" / "siamese_text.nwproj")
    names = [n.name for n in doc.nodes.values()]
    assert names.count("shared_embedding") == 2 and names.count("shared_lstm") == 2
    model = doc.to_model()
    assert len(model.get_layer("shared_lstm")._inbound_nodes) == 2
    assert doc.total_params() == model.count_params() == 41_377  # 32,000 + 8,320 + 1,040 + 17: each layer once

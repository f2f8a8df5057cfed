"""Nested models in the document: a Model or Sequential used as a layer is one node whose inner graph can be opened,
edited and written back, and a selection can be nested and expanded again (one undo step each)."""

import json

import numpy as np
import pytest

import core as keras
from core import commands, layers
from core.document import Document, Wire
from core.errors import ConfigError
from tests.core.test_document import add, chain
from tests.interop.test_keras_interop import _nested_shared_model as nested_keras_model  # keras_runner's model


def predict_same(m1, m2, *shapes):
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(3,) + s).astype("float32") for s in shapes]
    np.testing.assert_allclose(m1.predict(xs if len(xs) > 1 else xs[0], verbose=0),
                               m2.predict(xs if len(xs) > 1 else xs[0], verbose=0), atol=1e-5)


def test_a_model_with_nested_and_shared_layers_round_trips_through_the_document():
    model = nested_keras_model()
    doc = Document.from_model(model)
    kinds = sorted(n.class_name for n in doc.nodes.values())
    assert kinds.count("Functional") == 2 and kinds.count("Sequential") == 1  # 'inner' is called twice
    rebuilt = doc.to_model()
    assert rebuilt.get_config() == model.get_config()
    predict_same(rebuilt, model, (4,))


def test_a_nested_model_with_two_inputs_and_two_outputs_has_a_port_for_each():
    p, q = keras.Input((3,), name="p"), keras.Input((2,), name="q")
    both = layers.Concatenate(name="cat")([p, q])
    inner = keras.Model([p, q], [layers.Dense(4, name="d4")(both), layers.Dense(1, name="d1")(both)], name="two")
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    y4, y1 = inner([a, b])
    model = keras.Model([a, b], layers.Concatenate(name="out")([y4, y1]))
    doc = Document.from_model(model)
    nid = next(n for n, node in doc.nodes.items() if node.name == "two")
    assert [p.name for p in doc.input_ports(nid)] == ["p", "q"]
    assert [p.name for p in doc.output_ports(nid)] == ["d4", "d1"]
    assert [s.shape for s in doc.analyze()[nid].outputs] == [(None, 4), (None, 1)]
    predict_same(doc.to_model(), model, (3,), (2,))


def test_the_inner_graph_opens_is_edited_and_written_back_in_one_undo_step():
    doc = Document.from_model(nested_keras_model())
    calls = [n for n, node in doc.nodes.items() if node.name == "inner"]
    inner = doc.inner_document(calls[0])
    dense = next(n for n, node in inner.nodes.items() if node.name == "idense")
    inner.set_config(dense, dict(inner.nodes[dense].config, units=5))
    stack = commands.CommandStack(doc)
    stack.push(commands.set_inner_graph_command(doc, calls[0], inner))
    assert doc.analyze()[calls[1]].outputs[0].shape == (None, 5)  # both calls of the nested model changed
    shared = [n for n, node in doc.nodes.items() if node.name == "shared"]
    # the shared Dense now takes (None, 5) in its first call and its own (None, 3) output in the second
    assert doc.analyze()[shared[0]].status == "ok" and "(None, 5)" in doc.analyze()[shared[1]].error
    stack.undo()
    assert doc.analyze()[calls[1]].outputs[0].shape == (None, 3) and not doc.errors()


def test_a_nested_model_that_does_not_fit_its_input_is_red_and_opens_on_the_failing_layer():
    doc = Document("outer")
    x = add(doc, "InputLayer", shape=[4], name="x")
    inner_in = keras.Input((4,), name="inner_in")
    inner = keras.Model(inner_in, layers.Reshape((2, 2), name="square")(inner_in), name="inner")
    from core.document import LayerNode

    doc.add_node(LayerNode("g", "Functional", inner.get_config()))
    doc.add_wire(Wire(x, 0, "g", 0))
    assert doc.analyze()["g"].status == "ok"
    doc.set_config(x, dict(doc.nodes[x].config, shape=[5]))
    assert doc.analyze()["g"].status == "error"
    opened = doc.inner_document("g")
    failing = [opened.nodes[n].name for n, _ in opened.errors()]
    assert failing == ["square"]


def test_collapse_a_selection_into_a_nested_model_and_expand_it_back():
    doc = Document("m")
    i = add(doc, "InputLayer", shape=[6], name="i")
    a = add(doc, "Dense", units=5, name="a")
    b = add(doc, "Dense", units=4, name="b")
    c = add(doc, "Dense", units=2, name="c")
    chain(doc, i, a, b, c)
    before = doc.to_model()
    for nid in (a, b, c):  # the drawn layers keep the weights the comparison model has
        doc.set_weights(nid, before.get_layer(doc.nodes[nid].name).get_weights())
    structure = doc.structure()
    stack = commands.CommandStack(doc)
    stack.push(commands.collapse_command(doc, [a, b], name="block"))
    group = next(n for n, node in doc.nodes.items() if node.class_name == "Functional")
    assert sorted(node.name for node in doc.nodes.values()) == ["block", "c", "i"]
    assert doc.analyze()[group].params == 6 * 5 + 5 + 5 * 4 + 4
    predict_same(doc.to_model(), before, (6,))  # the same weights, now inside the nested model
    inner = doc.inner_document(group)
    assert [inner.nodes[n].name for n in inner.keras_layer_order()] == ["block_input", "a", "b"]
    stack.undo()
    assert doc.structure() == structure
    stack.redo()
    stack.push(commands.expand_command(doc, group))
    assert sorted(node.name for node in doc.nodes.values()) == ["a", "b", "c", "i"]
    predict_same(doc.to_model(), before, (6,))
    stack.undo()
    assert any(node.class_name == "Functional" for node in doc.nodes.values())


def test_collapse_refuses_inputs_and_split_shared_layers_and_expand_refuses_a_shared_nested_model():
    doc = Document.from_model(nested_keras_model())
    by_name = {}
    for nid, node in doc.nodes.items():
        by_name.setdefault(node.name, []).append(nid)
    with pytest.raises(ConfigError, match="inputs"):
        commands.collapse_command(doc, by_name["x"] + by_name["pre"])
    with pytest.raises(ConfigError, match="calls outside the selection"):
        commands.collapse_command(doc, by_name["shared"][:1])
    with pytest.raises(ConfigError, match="called 2 times"):
        commands.expand_command(doc, by_name["inner"][0])
    model = doc.to_model()
    stack = commands.CommandStack(doc)
    stack.push(commands.collapse_command(doc, by_name["shared"] + by_name["seqm"], name="head"))
    predict_same(doc.to_model(), model, (4,))
    head = next(n for n, node in doc.nodes.items() if node.name == "head")
    stack.push(commands.expand_command(doc, head))
    predict_same(doc.to_model(), model, (4,))
    assert len([n for n in doc.nodes.values() if n.name == "shared"]) == 2


def test_a_nested_model_whose_inner_layer_config_is_broken_opens_on_that_layer():
    doc = Document.from_model(nested_keras_model())
    group = next(n for n, node in doc.nodes.items() if node.name == "seqm")
    config = json.loads(json.dumps(doc.nodes[group].config))
    config["layers"][-1]["config"]["units"] = 0  # what a hand-edited or damaged project file can hold
    doc.nodes[group].config = config
    doc.move_node(group, doc.nodes[group].position)  # a change event: the analysis runs again
    assert doc.analyze()[group].status == "error"
    inner = doc.inner_document(group)
    assert [inner.nodes[n].name for n, _ in inner.errors()] == ["sdense"]
    assert "units" in inner.errors()[0][1]
    assert [(inner.nodes[w.src].class_name, inner.nodes[w.dst].name) for w in inner.wires] == [("InputLayer", "sdense")]


def test_a_broken_nested_functional_is_drawn_from_its_config_with_every_call_and_wire():
    i = keras.Input((4,), name="i")
    dense = layers.Dense(3, name="d")
    inner = keras.Model(i, layers.Add(name="a")([dense(i), dense(i)]), name="inner")
    x = keras.Input((4,), name="x")
    doc = Document.from_model(keras.Model(x, inner(x), name="outer"))
    group = next(n for n, node in doc.nodes.items() if node.name == "inner")
    config = json.loads(json.dumps(doc.nodes[group].config))
    config["layers"][1]["config"]["activation"] = "no_such_activation"
    doc.set_config(group, config)  # set directly: the command would refuse it, a file need not
    inner_doc = doc.inner_document(group)
    d_calls = [n for n, node in inner_doc.nodes.items() if node.name == "d"]
    assert len(d_calls) == 2 and inner_doc.calls_of(d_calls[0]) == d_calls
    assert sorted(inner_doc.nodes[n].name for n, _ in inner_doc.errors()) == ["d", "d"]
    add_id = next(n for n, node in inner_doc.nodes.items() if node.name == "a")
    assert [w.src for w in inner_doc.wires_into(add_id)] == d_calls

"""The editor's Qt-free document: nodes, wires, refusals, the engine's analysis, conversion to and from models."""

import numpy as np
import pytest

import core as keras
from core import layer_schema, layers
from core.document import Document, LayerNode, Wire, layered_layout
from core.errors import ConfigError, GraphError
from core.summary import summary_rows


def add(doc, class_name, **config):
    cfg = layer_schema.default_config(class_name, config.pop("name", None) or doc.unique_name(class_name))
    cfg.update(config)
    node = LayerNode(doc.new_node_id(), class_name, cfg)
    doc.add_node(node)
    return node.id


def chain(doc, *ids):
    for a, b in zip(ids, ids[1:]):
        doc.add_wire(Wire(a, 0, b, 0))


def mlp_doc():
    doc = Document("mlp")
    i = add(doc, "InputLayer", shape=[20])
    a = add(doc, "Dense", units=16, activation="relu")
    b = add(doc, "Dense", units=3, activation="softmax")
    chain(doc, i, a, b)
    return doc, (i, a, b)


def test_analysis_gives_engine_shapes_and_param_counts():
    doc, (i, a, b) = mlp_doc()
    info = doc.analyze()
    assert info[i].outputs[0].shape == (None, 20)
    assert info[a].outputs[0].shape == (None, 16) and info[a].params == 20 * 16 + 16
    assert info[b].outputs[0].shape == (None, 3) and info[b].params == 16 * 3 + 3
    assert doc.total_params() == 336 + 51


def test_events_are_emitted_for_every_change():
    doc = Document()
    seen = []
    doc.subscribe(lambda event, payload: seen.append(event))
    i = add(doc, "InputLayer")
    d = add(doc, "Dense")
    doc.add_wire(Wire(i, 0, d, 0))
    doc.move_node(d, (10, 20))
    cfg = dict(doc.nodes[d].config, units=5)
    doc.set_config(d, cfg)
    doc.remove_wire(Wire(i, 0, d, 0))
    doc.remove_node(d)
    assert seen == ["node_added", "node_added", "wire_added", "node_moved", "config_changed", "wire_removed",
                    "node_removed"]


def test_unconnected_node_is_incomplete_not_an_error():
    doc = Document()
    d = add(doc, "Dense")
    info = doc.analyze()[d]
    assert info.status == "incomplete" and "no input" in info.error
    assert doc.errors() == []


def test_shape_error_marks_the_node_with_the_engine_message():
    doc = Document()
    i = add(doc, "InputLayer", shape=[None])  # unknown last dimension: Dense cannot build
    d = add(doc, "Dense")
    after = add(doc, "Dense")
    chain(doc, i, d, after)
    info = doc.analyze()
    assert info[d].status == "error" and "known last input dimension" in info[d].error
    assert info[after].status == "waiting"
    assert [nid for nid, _ in doc.errors()] == [d]


def test_cycle_is_refused_naming_the_path():
    doc = Document()
    i = add(doc, "InputLayer")
    a = add(doc, "Dense")
    b = add(doc, "Dense")
    chain(doc, i, a, b)
    reason = doc.check_wire(b, 0, a, 0)
    assert reason is not None and "already wired" in reason
    doc.remove_wire(Wire(i, 0, a, 0))
    reason = doc.check_wire(b, 0, a, 0)
    assert "cycle" in reason and "dense -> dense_1 -> dense" in reason
    with pytest.raises(GraphError, match="cycle"):
        doc.add_wire(Wire(b, 0, a, 0))
    assert doc.wires == [Wire(a, 0, b, 0)]


@pytest.mark.parametrize("case, expected", [
    ("self", "cannot feed itself"),
    ("into_input", "input of the model"),
    ("bad_src_port", "no output port"),
    ("bad_dst_port", "no input port"),
    ("duplicate", "already wired"),
])
def test_wires_that_do_not_fit_are_refused_with_a_reason(case, expected):
    doc = Document()
    i = add(doc, "InputLayer")
    d = add(doc, "Dense")
    doc.add_wire(Wire(i, 0, d, 0))
    args = {"self": (d, 0, d, 0), "into_input": (d, 0, i, 0), "bad_src_port": (i, 3, d, 0),
            "bad_dst_port": (i, 0, d, 5), "duplicate": (i, 0, d, 0)}[case]
    assert expected in doc.check_wire(*args)


def test_summary_rows_match_the_engine_models_summary():
    doc, _ = mlp_doc()
    model = doc.to_model()
    ours = [(r.name, r.class_name, r.output_shape, r.params, r.connected_to) for r in doc.summary_rows()]
    engine = [(r.name, r.class_name, r.output_shape, r.params, r.connected_to) for r in summary_rows(model)]
    assert ours == engine


def test_to_model_predicts_and_from_model_keeps_weights_and_summary():
    inputs = keras.Input(shape=(8,), name="x")
    h = layers.Dense(5, activation="tanh", name="hidden")(inputs)
    out = layers.Dense(2, name="out")(h)
    model = keras.Model(inputs, out, name="small")
    data = np.random.default_rng(0).normal(size=(4, 8)).astype("float32")
    expected = model.predict(data)
    doc = Document.from_model(model)
    assert [n.name for n in doc.nodes.values()] == ["x", "hidden", "out"]
    assert [(r.name, r.output_shape, r.params) for r in doc.summary_rows()] == \
        [(r.name, r.output_shape, r.params) for r in summary_rows(model)]
    rebuilt = doc.to_model()
    np.testing.assert_allclose(rebuilt.predict(data), expected, rtol=1e-6, atol=1e-6)
    xs = [p[0] for p in (doc.nodes[n].position for n in doc.nodes)]
    assert xs == sorted(xs) and len(set(xs)) == 3  # laid out left to right


def test_to_model_refuses_an_incomplete_graph():
    doc = Document()
    add(doc, "Dense")
    with pytest.raises(GraphError, match="not complete"):
        doc.to_model()


def test_unique_names_follow_keras():
    doc = Document()
    add(doc, "Dense")
    add(doc, "Dense")
    assert doc.unique_name("Dense") == "dense_2"
    with pytest.raises(GraphError, match="unique"):
        doc.add_node(LayerNode("zz", "Dense", {"name": "dense", "units": 2}))
    with pytest.raises(ConfigError, match="unique"):
        doc.set_config(list(doc.nodes)[1], {"name": "dense", "units": 2})


def test_fragment_and_graph_dict_round_trip():
    doc, (i, a, b) = mlp_doc()
    frag = doc.fragment([a, b])
    assert [n["id"] for n in frag["nodes"]] == [a, b] and frag["wires"] == [Wire(a, 0, b, 0).to_dict()]
    copy = Document()
    copy.load_graph_dict(doc.graph_dict())
    assert copy.summary_rows() == doc.summary_rows()


@pytest.mark.parametrize("graph, message", [
    ({"nodes": [{"id": "a", "class_name": "NoSuchLayer", "config": {}}]}, "Unknown layer 'NoSuchLayer'"),
    ({"nodes": [{"id": "a"}]}, "malformed"),
    ({"nodes": [{"id": "a", "class_name": "Dense", "config": {"units": 2}}],
      "wires": [{"src": "a", "src_port": 0, "dst": "b", "dst_port": 0}]}, "does not exist"),
    ({"nodes": [{"id": "a", "class_name": "Dense", "config": {"units": 2}},
                {"id": "b", "class_name": "Dense", "config": {"units": 2}}],
      "wires": [{"src": "a", "src_port": 0, "dst": "b", "dst_port": 0},
                {"src": "b", "src_port": 0, "dst": "a", "dst_port": 0}]}, "cycle"),
])
def test_bad_graphs_are_refused_and_leave_the_document_unchanged(graph, message):
    doc, _ = mlp_doc()
    before = doc.graph_dict()
    with pytest.raises((ConfigError, GraphError), match=message):
        doc.load_graph_dict(graph)
    assert doc.graph_dict() == before


def test_layered_layout_puts_each_node_right_of_its_inputs():
    doc = Document()
    i = add(doc, "InputLayer")
    ids = [add(doc, "Dense") for _ in range(5)]
    chain(doc, i, *ids)
    pos = layered_layout(doc)
    xs = [pos[n][0] for n in [i] + ids]
    assert xs == sorted(xs) and len(set(xs)) == 6


def test_property_change_retraces_only_what_it_affects():
    doc = Document()
    prev = add(doc, "InputLayer", shape=[16])
    for _ in range(30):
        nxt = add(doc, "Dense", units=8)
        chain(doc, prev, nxt)
        prev = nxt
    doc.analyze()
    mid = list(doc.nodes)[10]
    doc.set_config(mid, dict(doc.nodes[mid].config, units=4))
    info = doc.analyze()
    assert info[mid].outputs[0].shape == (None, 4)
    assert info[list(doc.nodes)[11]].params == 4 * 8 + 8


def test_imported_state_outputs_stay_model_outputs():
    inputs = keras.Input(shape=(4, 3), name="seq")
    out, h, c = layers.LSTM(5, return_state=True, name="enc")(inputs)
    head = layers.Dense(2, name="head")(out)
    model = keras.Model(inputs, [head, h, c], name="with_states")
    doc = Document.from_model(model)
    enc = doc.node_by_name("enc").id
    assert doc.output_node_ports() == [(doc.node_by_name("head").id, 0), (enc, 1), (enc, 2)]
    rebuilt = doc.to_model()
    assert [t.shape for t in rebuilt.outputs] == [(None, 2), (None, 5), (None, 5)]
    x = np.random.default_rng(1).normal(size=(2, 4, 3)).astype("float32")
    for a, b in zip(rebuilt.predict(x), model.predict(x)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

"""Op nodes without real Keras: scripts that call core.ops on model tensors, both file forms, errors, the document."""

import json

import numpy as np
import pytest

import core as keras
from core import layers, ops
from core.document import Document, Wire
from core.errors import ConfigError, GraphError
from exporters.keras_config import model_from_json, to_json

TOKENS = np.array([[3, 1, 0, 2, 0], [0, 4, 4, 1, 2]], dtype="int32")
FEATURES = np.random.default_rng(0).random((2, 5, 3)).astype("float32")


def _script_model():
    keras.backend.clear_session()
    tok = keras.Input((5,), dtype="int32", name="tok")
    x = keras.Input((5, 3), name="x")
    keep = ops.cast(ops.not_equal(tok, 0), "float32")
    total = ops.sum(x, axis=-1) * keep + 1.0
    joined = ops.concatenate([ops.expand_dims(total, -1), x[:, :, 1:]], axis=-1)
    return keras.Model([tok, x], [joined, 2.0 - x[..., None, ::2]], name="script")


def _expected():
    keep = (TOKENS != 0).astype("float32")
    total = FEATURES.sum(-1) * keep + 1.0
    return [np.concatenate([total[..., None], FEATURES[:, :, 1:]], -1), 2.0 - FEATURES[..., None, ::2]]


def test_ops_and_operators_on_model_tensors_become_op_nodes():
    model = _script_model()
    nodes = {l.name: l for l in model.layers if type(l).__name__ == "OpLayer"}
    assert nodes["not_equal"].arguments == {"b": 0} and nodes["not_equal"].tensor_params == ["a"]
    assert nodes["concatenate"].tensor_params == ["xs/0", "xs/1"]
    assert nodes["get_item"].arguments["key"] == (slice(None), slice(None), slice(1, None))
    assert nodes["subtract"].arguments == {"a": 2.0}  # a constant first operand stays in its place
    for mine, want in zip(model.predict([TOKENS, FEATURES], verbose=0), _expected()):
        np.testing.assert_allclose(mine, want, rtol=1e-6)


@pytest.mark.parametrize("target", ["keras3", "tf_keras2"])
def test_op_nodes_survive_both_file_forms(target):
    model = _script_model()
    config = json.loads(to_json(model, target))
    classes = {e["class_name"] for e in config["config"]["layers"]}
    if target == "keras3":
        assert {"NotEqual", "Cast", "Sum", "GetItem", "Concatenate", "Subtract"} <= classes
    else:
        assert {"TFOpLambda", "SlicingOpLambda"} <= classes
    again = model_from_json(json.dumps(config))
    for mine, want in zip(again.predict([TOKENS, FEATURES], verbose=0), _expected()):
        np.testing.assert_allclose(mine, want, rtol=1e-6)


def _keras3_config():
    return json.loads(to_json(_script_model(), "keras3"))


def _entry(config, name):
    return next(e for e in config["config"]["layers"] if e["name"] == name)


def test_a_keras3_op_we_lack_is_named():
    config = _keras3_config()
    entry = _entry(config, "sum")
    entry.update(class_name="Cumsum", registered_name="Cumsum")
    entry["config"] = {"name": "sum", "axis": -1}
    with pytest.raises(GraphError, match=r"op node 'sum' \(keras\.src\.ops\.numpy\.Cumsum\).*no twin"):
        model_from_json(json.dumps(config))


def test_a_tf_function_we_lack_is_named():
    config = json.loads(to_json(_script_model(), "tf_keras2"))
    _entry(config, "sum")["config"]["function"] = "math.cumsum"
    with pytest.raises(GraphError, match=r"op node 'sum' \(TFOpLambda tf\.math\.cumsum\).*no twin"):
        model_from_json(json.dumps(config))


def test_an_argument_that_changes_the_result_is_refused_not_dropped():
    config = _keras3_config()
    entry = _entry(config, "sum")
    entry.update(class_name="Max", registered_name="Max")
    entry["config"] = {"name": "sum", "axis": -1, "keepdims": False, "initial": 5.0}
    with pytest.raises(ConfigError, match=r"'sum'.*initial=5\.0 is not supported"):
        model_from_json(json.dumps(config))


def test_an_op_node_called_twice_is_refused():
    config = _keras3_config()
    entry = _entry(config, "sum")
    entry["inbound_nodes"] = entry["inbound_nodes"] * 2
    with pytest.raises(GraphError, match="op node 'sum'.*exactly one inbound node"):
        model_from_json(json.dumps(config))


def test_an_op_without_a_keras_form_cannot_be_a_model_node():
    x = keras.Input((4, 3))
    with pytest.raises(GraphError, match=r"core\.ops\.batch_dot cannot be a node"):
        ops.batch_dot(x, x, axes=(2, 2))


def test_a_mask_stops_at_an_op_and_stays_on_its_input():
    """Keras drops a mask that reaches an op; the op's input keeps it for the layers that read it."""
    keras.backend.clear_session()
    tok = keras.Input((5,), dtype="int32")
    emb = layers.Embedding(6, 3, mask_zero=True, name="emb")(tok)
    same = ops.cast(emb, "float32")  # returns its input's values: must still be a node of its own
    # the op's output comes first, so it is replayed before the LSTM reads the embedding's mask
    model = keras.Model(tok, [layers.GlobalAveragePooling1D()(same), layers.LSTM(2, name="lstm")(emb)])
    assert same._mask_shape is None and emb.has_mask
    pooled, lstm_out = model.predict(TOKENS, verbose=0)
    table = model.get_layer("emb").get_weights()[0]
    np.testing.assert_allclose(pooled, table[TOKENS].mean(1), rtol=1e-6)  # unmasked mean
    only_lstm = keras.Model(tok, model.get_layer("lstm")(model.get_layer("emb")(tok)))
    np.testing.assert_allclose(lstm_out, only_lstm.predict(TOKENS, verbose=0), rtol=1e-6)


def test_document_draws_op_nodes_and_rebuilds_the_model():
    model = _script_model()
    doc = Document.from_model(model)
    ops_nodes = {n.name: n for n in doc.nodes.values() if n.class_name == "OpLayer"}
    assert ops_nodes["not_equal"].config["function"] == "not_equal"
    assert [p.name for p in doc.input_ports(ops_nodes["concatenate"].id)] == ["xs/0", "xs/1"]
    assert [p.name for p in doc.input_ports(ops_nodes["multiply"].id)] == ["a", "b"]
    assert doc.errors() == []
    assert doc.analyze()[ops_nodes["concatenate"].id].outputs[0].shape == (None, 5, 3)
    reopened = Document()
    reopened.load_graph_dict(json.loads(json.dumps(doc.graph_dict())))  # the project file's round trip
    rebuilt = reopened.to_model()
    for mine, want in zip(rebuilt.predict([TOKENS, FEATURES], verbose=0), _expected()):
        np.testing.assert_allclose(mine, want, rtol=1e-6)


def test_document_waits_for_every_tensor_argument_of_an_op():
    doc = Document.from_model(_script_model())
    multiply = next(n for n in doc.nodes.values() if n.name == "multiply")
    wire = next(w for w in doc.wires_into(multiply.id) if w.dst_port == 1)
    doc.remove_wire(wire)
    info = doc.analyze()[multiply.id]
    assert info.status == "incomplete" and "b" in info.error
    doc.add_wire(Wire(wire.src, wire.src_port, wire.dst, wire.dst_port))
    assert doc.analyze()[multiply.id].status == "ok"

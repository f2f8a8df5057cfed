"""A Keras file whose functional graph calls ops directly opens in the window, drawn with one node per op call."""

import numpy as np

import core as keras
from core import ops


def test_op_nodes_open_as_nodes_with_their_op_and_ports(window, qtbot, tmp_path):
    keras.backend.clear_session()
    tok = keras.Input((5,), dtype="int32", name="tok")
    x = keras.Input((5, 3), name="x")
    keep = ops.expand_dims(ops.cast(ops.not_equal(tok, 0), "float32"), -1)
    model = keras.Model([tok, x], keras.layers.Dense(2, name="head")(ops.concatenate([x * keep, x[:, :, :1]], -1)))
    model.save(str(tmp_path / "ops.keras"))
    window.open_path(str(tmp_path / "ops.keras"))
    qtbot.waitUntil(lambda: bool(window.problems or window.editor.doc.nodes), timeout=30000)
    assert window.problems == []
    doc = window.editor.doc
    items = window.editor.scene.node_items
    labels = {doc.nodes[nid].name: item.kind_label for nid, item in items.items()}
    assert labels["not_equal"] == "ops.not_equal" and labels["get_item"] == "ops.getitem"
    assert labels["head"] == "Dense"
    concat = next(n for n in doc.nodes.values() if n.name == "concatenate")
    assert [p.name for p in items[concat.id].in_ports] == ["xs/0", "xs/1"]
    assert doc.errors() == []
    window.editor.scene.select_nodes([concat.id])
    qtbot.waitUntil(lambda: window.inspector.node_id == concat.id, timeout=2000)
    assert {"function", "arguments", "tensor_params"} <= set(window.inspector.editors)
    inputs = [np.array([[1, 0, 2, 0, 3]], dtype="int32"), np.ones((1, 5, 3), "float32")]
    np.testing.assert_allclose(doc.to_model().predict(inputs, verbose=0), model.predict(inputs, verbose=0), rtol=1e-6)

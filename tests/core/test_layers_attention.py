"""Attention layers without real Keras: bad inputs and masks (named with both shapes), the palette, inspector and
ports, the document's live shapes and its round trip through a model, ONNX export and training in ONNX Runtime
(the comparisons with Keras are in tests/interop/test_activation_attention_keras.py)."""

import numpy as np
import pytest

import core as keras
from core import layer_schema, layers
from core.document import Document, LayerNode, Wire
from core.errors import ConfigError, ShapeError

RNG = np.random.default_rng(6)
Q = RNG.normal(size=(2, 4, 6)).astype("float32")
V = RNG.normal(size=(2, 5, 6)).astype("float32")


@pytest.mark.parametrize("make, inputs, kwargs, words", [
    (lambda: layers.Attention(name="att"), [Q, V[..., :5]], {},
     r"'att'.*query has shape \(2, 4, 6\) and the key \(2, 5, 5\).*last dimensions must match"),
    (lambda: layers.Attention(name="att"), [Q, V, V[:, :3]], {},
     r"'att'.*value has shape \(2, 5, 6\) and the key \(2, 3, 6\).*same number of steps"),
    (lambda: layers.AdditiveAttention(name="add"), [Q, V], {"mask": [np.ones((2, 5), bool), None]},
     r"'add'.*query mask has shape \(2, 5\).*query of shape \(2, 4, 6\)"),
    (lambda: layers.Attention(name="att"), [Q, V], {"mask": [None, np.ones((2, 4), bool)]},
     r"'att'.*value mask has shape \(2, 4\).*value of shape \(2, 5, 6\)"),
    (lambda: layers.Attention(name="att"), Q, {}, r"'att' takes a list \[query, value\]"),
    (lambda: layers.MultiHeadAttention(2, 3, name="mha"), [Q, V, V[:, :3]], {},
     r"'mha'.*value has shape \(2, 5, 6\) and the key \(2, 3, 6\)"),
    (lambda: layers.MultiHeadAttention(2, 3, name="mha"), [Q, V], {"attention_mask": np.ones((2, 5, 4), bool)},
     r"'mha'.*attention_mask has shape \(2, 5, 4\).*query of shape \(2, 4, 6\).*value of shape \(2, 5, 6\)"),
    (lambda: layers.MultiHeadAttention(2, 3, name="mha"), [Q, V], {"value_mask": np.ones((2, 4), bool)},
     r"'mha'.*value mask has shape \(2, 4\).*value of shape \(2, 5, 6\)"),
    (lambda: layers.MultiHeadAttention(2, 3, name="mha"), [Q[:, 0], V[:, 0]], {}, r"'mha'.*query must have"),
    (lambda: layers.EinsumDense("abc,cd->abd", (None, 4), name="ed"), Q[:, 0], {}, r"'ed'.*does not fit inputs"),
    (lambda: layers.EinsumDense("abc,cd->abd", (5, 4), name="ed"), Q, {}, r"'ed'.*gives index 'b' size 5"),
])
def test_bad_inputs_and_masks_name_the_layer_and_both_shapes(make, inputs, kwargs, words):
    layer = make()
    with pytest.raises(ShapeError, match=words):
        if isinstance(layer, layers.MultiHeadAttention):
            layer(*inputs, **kwargs)
        else:
            layer(inputs, **kwargs)


def test_bad_input_in_a_functional_model_names_the_layer():
    q, v = keras.Input((4, 6), name="q"), keras.Input((5, 3), name="v")
    with pytest.raises(ShapeError, match=r"'dot'.*\(None, 4, 6\).*\(None, 5, 3\)"):
        layers.Attention(name="dot")([q, v])
    mha = layers.MultiHeadAttention(2, 3, name="mha")
    mha(q, v)
    with pytest.raises(ShapeError, match=r"'mha' was built for a value of shape \(None, 5, 3\), got \(None, 5, 4\)"):
        mha(q, keras.Input((5, 4)))


@pytest.mark.parametrize("make, words", [
    (lambda: layers.Attention(score_mode="sum"), "score_mode"), (lambda: layers.Attention(dropout=2), "rate"),
    (lambda: layers.MultiHeadAttention(0, 3), "num_heads"), (lambda: layers.MultiHeadAttention(2, -1), "key_dim"),
    (lambda: layers.MultiHeadAttention(2, 3, output_shape="wide"), "output_shape"),
    (lambda: layers.MultiHeadAttention(2, 3, attention_axes="time"), "attention_axes"),
    (lambda: layers.EinsumDense("ab,bc", 4), "equation"),
    (lambda: layers.EinsumDense("ab,bc->ac", "x"), "output_shape"),
])
def test_bad_arguments_are_named(make, words):
    with pytest.raises(ConfigError, match=words):
        make()


def test_explicit_query_mask_is_refused_not_ignored():
    with pytest.raises(ConfigError, match="ignores a query_mask"):
        layers.MultiHeadAttention(2, 3)(Q, V, query_mask=np.ones((2, 4), bool))


def test_multi_head_attention_is_recorded_as_one_list_call_whichever_way_it_is_called():
    q, v = keras.Input((4, 6)), keras.Input((5, 6))
    a, b = layers.MultiHeadAttention(2, 3), layers.MultiHeadAttention(2, 3)
    a(q, v)
    b([q, v])
    for layer in (a, b):
        (recorded,) = layer._inbound_nodes[0].call_args
        assert isinstance(recorded, list) and len(recorded) == 2 and recorded[0] is q and recorded[1] is v
    assert [w.path for w in a.weights] == ["query/kernel", "query/bias", "key/kernel", "key/bias", "value/kernel",
                                           "value/bias", "attention_output/kernel", "attention_output/bias"]


def test_palette_ports_and_inspector():
    groups = layer_schema.palette()
    assert {"Attention", "AdditiveAttention", "MultiHeadAttention", "EinsumDense"} <= set(groups["Attention"])
    assert [p.name for p in layer_schema.input_ports("MultiHeadAttention", {}, 0)] == ["query", "value"]
    assert [p.name for p in layer_schema.input_ports("Attention", {}, 2)] == ["query", "value", "key"]
    assert [p.name for p in layer_schema.input_ports("Attention", {}, 3)] == ["query", "value", "key"]
    mha = layer_schema.schema("MultiHeadAttention")
    names = [f.name for f in mha.fields]
    assert names[:3] == ["num_heads", "key_dim", "value_dim"]
    assert not {"query_shape", "flash_attention", "softmax_robust_masking"} & set(names)
    assert mha.field("dropout").maximum == 1.0 and mha.field("num_heads").minimum == 1
    assert mha.field("key_dim").doc and mha.field("use_causal_mask") is None  # a call argument, not a setting
    assert layer_schema.schema("Attention").field("score_mode").choices == ("dot", "concat")
    assert layer_schema.schema("AdditiveAttention").field("score_mode") is None


def _add(doc, cls, **config):
    cfg = layer_schema.default_config(cls, doc.unique_name(cls))
    cfg.update(config)
    node = LayerNode(doc.new_node_id(), cls, cfg)
    doc.add_node(node)
    return node.id


def test_document_draws_self_attention_with_live_shapes_and_errors():
    doc = Document("attn")
    x = _add(doc, "InputLayer", shape=[7, 8])
    m = _add(doc, "MultiHeadAttention", num_heads=2, key_dim=4)
    doc.add_wire(Wire(x, 0, m, 0))
    assert doc.analyze()[m].status == "incomplete"  # a value is still missing
    doc.add_wire(Wire(x, 0, m, 1))
    info = doc.analyze()[m]
    assert info.status == "ok" and info.outputs[0].shape == (None, 7, 8)
    assert info.params == 3 * (8 * 2 * 4 + 2 * 4) + (2 * 4 * 8 + 8)
    y = _add(doc, "InputLayer", shape=[5, 3])
    a = _add(doc, "Attention")
    doc.add_wire(Wire(x, 0, a, 0))
    doc.add_wire(Wire(y, 0, a, 1))
    assert doc.analyze()[a].status == "error"
    assert "query has shape (None, 7, 8) and the key (None, 5, 3)" in doc.analyze()[a].error
    for w in doc.wires_into(a):
        doc.remove_wire(w)
    doc.remove_node(a)
    doc.remove_node(y)
    model = doc.to_model()
    assert model.get_layer(doc.nodes[m].name).output.shape == (None, 7, 8)


def _encoder_model():
    inp = keras.Input((6, 8), name="tokens")
    h = layers.MultiHeadAttention(2, 4, name="mha")(inp, inp)
    h = layers.LayerNormalization(name="ln")(layers.Add(name="res")([inp, h]))
    s = layers.AdditiveAttention(name="pool_att")([h, h])
    e = layers.EinsumDense("abc,cd->abd", (6, 3), bias_axes="d", activation="relu", name="ed")(s)
    return keras.Model(inp, layers.Dense(2, activation="softmax")(layers.Flatten()(e)))


def test_document_round_trip_keeps_query_value_wires():
    from core.document import Document as Doc

    model = _encoder_model()
    doc = Doc.from_model(model)
    mha = next(n for n in doc.nodes.values() if n.class_name == "MultiHeadAttention")
    assert sorted(w.dst_port for w in doc.wires_into(mha.id)) == [0, 1]
    rebuilt = doc.to_model()
    x = RNG.normal(size=(3, 6, 8)).astype("float32")
    rebuilt.set_weights(model.get_weights())
    np.testing.assert_allclose(rebuilt.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_onnx_export_predicts_like_the_model(tmp_path):
    from exporters.onnx_export import export_onnx, run_onnx

    model = _encoder_model()
    x = RNG.normal(size=(3, 6, 8)).astype("float32")
    export_onnx(model, tmp_path / "enc.onnx")
    np.testing.assert_allclose(run_onnx(tmp_path / "enc.onnx", [x])[0], model.predict(x, verbose=0), atol=1e-5)


def test_training_lowers_the_loss():
    model = _encoder_model()
    x = RNG.normal(size=(32, 6, 8)).astype("float32")
    y = np.eye(2, dtype="float32")[RNG.integers(0, 2, 32)]
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, batch_size=8, epochs=4, verbose=0).history["loss"]
    assert history[-1] < history[0]
    assert all(not np.allclose(a, b) for a, b in zip(before, model.get_weights()) if a.ndim > 1)


def test_causal_and_sliding_window_masks_with_unknown_lengths_train_and_match_known_ones():
    """Unknown sequence lengths build the causal and sliding-window masks at run time (Range); they give what the
    constant masks of known lengths give (those are checked against Keras), and they train."""
    def build(steps):
        inp = keras.Input((steps, 6))
        h = layers.MultiHeadAttention(2, 3, sliding_window=2, name="mha")(inp, inp, use_causal_mask=True)
        h = layers.Attention(use_scale=True, name="att")([h, h], use_causal_mask=True)
        return keras.Model(inp, layers.GlobalAveragePooling1D()(h))

    known, unknown = build(5), build(None)
    unknown.set_weights(known.get_weights())
    x = RNG.normal(size=(4, 5, 6)).astype("float32")
    np.testing.assert_allclose(unknown.predict(x, verbose=0), known.predict(x, verbose=0), atol=1e-6)
    unknown.compile(optimizer="adam", loss="mse")
    history = unknown.fit(x, RNG.normal(size=(4, 6)).astype("float32"), epochs=3, verbose=0).history["loss"]
    assert history[-1] < history[0]

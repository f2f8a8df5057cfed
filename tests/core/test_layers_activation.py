"""Activation layers without real Keras: formulas, configs, bad arguments, the palette and inspector, the document's
live shapes, ONNX export and training in ONNX Runtime (the comparisons with Keras are in tests/interop)."""

import numpy as np
import pytest

import core as keras
from core import layer_schema, layers
from core.document import Document, LayerNode, Wire
from core.errors import ConfigError, ShapeError

RNG = np.random.default_rng(2)
ACTIVATION_LAYERS = ["ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "ThresholdedReLU"]


def test_formulas():
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 1.0, 3.0]], "float32")
    np.testing.assert_allclose(layers.ReLU(max_value=2.0, negative_slope=0.5, threshold=1.0)(x),
                               [[-1.5, -0.75, -0.5, -0.25, 0.0, 2.0]])
    np.testing.assert_allclose(layers.LeakyReLU()(x), np.where(x > 0, x, 0.3 * x), rtol=1e-6)
    np.testing.assert_allclose(layers.LeakyReLU(alpha=0.1)(x), np.where(x > 0, x, 0.1 * x), rtol=1e-6)
    np.testing.assert_allclose(layers.ELU(alpha=2.0)(x), np.where(x > 0, x, 2.0 * np.expm1(x)), rtol=1e-6)
    np.testing.assert_allclose(layers.ThresholdedReLU(theta=0.5)(x), [[0, 0, 0, 0, 1.0, 3.0]])
    s = layers.Softmax()(x)
    np.testing.assert_allclose(s, np.exp(x) / np.exp(x).sum(), rtol=1e-6)


def test_prelu_weights_follow_shared_axes():
    p = layers.PReLU(shared_axes=[1, 2])
    p(np.zeros((2, 5, 6, 3), "float32"))
    assert [w.name for w in p.weights] == ["alpha"] and p.alpha.shape == (1, 1, 3)
    p.set_weights([np.array([[[0.1, 0.2, 0.3]]], "float32")])
    x = -np.ones((1, 5, 6, 3), "float32")
    np.testing.assert_allclose(np.asarray(p(x))[0, 2, 3], [-0.1, -0.2, -0.3], rtol=1e-6)
    assert layers.PReLU(shared_axes=1).shared_axes == [1]


def test_configs_round_trip():
    for layer in (layers.ReLU(max_value=3.0, negative_slope=0.1, threshold=0.5), layers.LeakyReLU(0.05),
                  layers.PReLU(alpha_initializer="ones", shared_axes=[1]), layers.ELU(alpha=0.4),
                  layers.Softmax(axis=[1, 2]), layers.ThresholdedReLU(theta=0.2)):
        config = layer.get_config()
        assert type(layer).from_config(config).get_config() == config


@pytest.mark.parametrize("make, words", [
    (lambda: layers.ReLU(max_value=-1), "max_value"), (lambda: layers.ReLU(negative_slope=-0.1), "negative_slope"),
    (lambda: layers.ReLU(threshold=None), "threshold"), (lambda: layers.LeakyReLU(negative_slope=-1), "negative_slope"),
    (lambda: layers.PReLU(shared_axes=[0]), "shared_axes"), (lambda: layers.ELU(alpha="big"), "alpha"),
    (lambda: layers.Softmax(axis="last"), "axis"), (lambda: layers.ThresholdedReLU(theta=-1), "theta"),
])
def test_bad_arguments_are_named(make, words):
    with pytest.raises(ConfigError, match=words):
        make()


def test_bad_shapes_and_masks_are_named():
    with pytest.raises(ShapeError, match="prelu.*unknown|known size"):
        layers.PReLU(name="prelu")(keras.Input((None, 4)))
    x = keras.Input((3, 4))
    with pytest.raises(ShapeError, match="axis 3 is out of range"):
        layers.Softmax(axis=3)(x)
    with pytest.raises(ShapeError, match=r"'sm'.*mask of shape \(2, 3\).*inputs of shape \(2, 3, 4\)"):
        layers.Softmax(name="sm")(np.ones((2, 3, 4), "float32"), mask=np.ones((2, 3), bool))


def test_palette_groups_and_generated_inspector():
    groups = layer_schema.palette()
    assert set(ACTIVATION_LAYERS) <= set(groups["Activations"])
    relu = layer_schema.schema("ReLU")
    assert [f.name for f in relu.fields][:3] == ["max_value", "negative_slope", "threshold"]
    assert relu.field("negative_slope").kind == "float" and relu.field("max_value").optional
    prelu = layer_schema.schema("PReLU")
    assert prelu.field("alpha_initializer").kind == "initializer" and prelu.field("shared_axes").kind == "json"
    assert "slope" in prelu.doc.lower() and prelu.field("shared_axes").doc


def test_document_traces_activation_layers_live():
    doc = Document("acts")
    ids = []
    for cls, config in [("InputLayer", {"shape": [7, 5]}), ("PReLU", {"shared_axes": [1]}), ("ReLU", {}),
                        ("Softmax", {"axis": 1})]:
        cfg = layer_schema.default_config(cls, doc.unique_name(cls))
        cfg.update(config)
        node = LayerNode(doc.new_node_id(), cls, cfg)
        doc.add_node(node)
        ids.append(node.id)
    for a, b in zip(ids, ids[1:]):
        doc.add_wire(Wire(a, 0, b, 0))
    info = doc.analyze()
    assert info[ids[-1]].outputs[0].shape == (None, 7, 5)
    assert info[ids[1]].params == 5  # one slope per feature, shared along the steps
    doc.set_config(ids[3], {**doc.nodes[ids[3]].config, "axis": 4})
    assert doc.analyze()[ids[3]].status == "error" and "axis 4" in doc.analyze()[ids[3]].error


def _activation_model():
    inp = keras.Input((6,))
    h = layers.ThresholdedReLU(theta=0.1)(layers.Dense(8)(inp))
    h = layers.PReLU(alpha_initializer=keras.initializers.Constant(0.3))(layers.Dense(8)(h))
    h = layers.ReLU(max_value=2.0, negative_slope=0.1, threshold=0.2)(h)
    h = layers.LeakyReLU()(layers.ELU(0.5)(h))
    return keras.Model(inp, layers.Softmax()(layers.Dense(3)(h)))


def test_onnx_export_predicts_like_the_model(tmp_path):
    from exporters.onnx_export import export_onnx, run_onnx

    model = _activation_model()
    x = RNG.normal(size=(4, 6)).astype("float32")
    export_onnx(model, tmp_path / "acts.onnx")
    np.testing.assert_allclose(run_onnx(tmp_path / "acts.onnx", [x])[0], model.predict(x, verbose=0), atol=1e-6)


def test_training_moves_prelu_slopes_and_lowers_the_loss():
    model = _activation_model()
    x = RNG.normal(size=(32, 6)).astype("float32")
    y = np.eye(3, dtype="float32")[RNG.integers(0, 3, 32)]
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="categorical_crossentropy")
    history = model.fit(x, y, batch_size=8, epochs=5, verbose=0).history["loss"]
    assert history[-1] < history[0]
    assert not np.allclose(model.get_layer("p_re_lu").get_weights()[0], 0.3)

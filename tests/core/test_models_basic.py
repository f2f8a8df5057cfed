import numpy as np
import pytest

import core as keras
from core import layers
from core.errors import GraphError, InputDataError, ShapeError


def _mlp_functional():
    inputs = keras.Input(shape=(32,))
    x = layers.Dense(64, activation="relu")(inputs)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs=inputs, outputs=outputs)


def _numpy_forward(model, x):
    for layer in model.layers:
        if isinstance(layer, layers.Dense):
            k, b = layer.get_weights()
            x = x @ k + b
            if layer.activation is keras.activations.relu:
                x = np.maximum(x, 0)
            elif layer.activation is keras.activations.softmax:
                e = np.exp(x - x.max(-1, keepdims=True))
                x = e / e.sum(-1, keepdims=True)
    return x


def test_functional_mlp_predicts_like_numpy():
    model = _mlp_functional()
    x = np.random.default_rng(0).random((70, 32)).astype("float32")
    y = model.predict(x, batch_size=32)
    assert y.shape == (70, 10)
    np.testing.assert_allclose(y, _numpy_forward(model, x), atol=1e-5)
    assert model.count_params() == 6922


def test_sequential_deferred_build_and_add():
    model = keras.Sequential()
    model.add(layers.Dense(64, activation="relu"))
    model.add(layers.Dense(10, activation="softmax"))
    assert not model.built
    y = model.predict(np.ones((5, 32)))
    assert y.shape == (5, 10) and model.built
    assert model.count_params() == 32 * 64 + 64 + 64 * 10 + 10


def test_summary_lists_layers_and_totals():
    lines = []
    _mlp_functional().summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "dense (Dense)" in text and "(None, 64)" in text and "Total params: 6,922" in text
    # one chain of layers: Keras prints it without the Connected-to column; a branch brings the column
    assert "Connected to" not in text
    inputs = keras.Input((4,))
    branched = keras.Model(inputs, layers.Add()([layers.Dense(2)(inputs), layers.Dense(2)(inputs)]))
    lines = []
    branched.summary(print_fn=lines.append)
    assert "Connected to" in "\n".join(lines) and f"{branched.layers[0].name}[0][0]" in "\n".join(lines)


def test_predict_rejects_wrong_shape_and_dtype():
    model = _mlp_functional()
    with pytest.raises(InputDataError, match=r"expects shape \(None, 32\)"):
        model.predict(np.ones((4, 31)))
    with pytest.raises(InputDataError, match="expects numbers"):
        model.predict(np.array([["a"] * 32]))


def test_incompatible_dense_input_names_layer():
    d = layers.Dense(4, name="head")
    d(keras.Input(shape=(3,)))
    with pytest.raises(ShapeError, match="head"):
        d(keras.Input(shape=(5,)))


def test_output_not_reachable_from_inputs():
    a = keras.Input(shape=(3,), name="a")
    b = keras.Input(shape=(3,), name="b")
    out = layers.Dense(2)(b)
    with pytest.raises(GraphError, match="'b'"):
        keras.Model(a, out)


def test_eager_layer_call_on_arrays():
    d = layers.Dense(3, kernel_initializer="ones")
    y = d(np.ones((2, 4), dtype="float32"))
    np.testing.assert_allclose(y.numpy(), np.full((2, 3), 4.0))


def test_to_onnx_passes_full_check(tmp_path):
    import onnx

    model = _mlp_functional()
    path = tmp_path / "m.onnx"
    model.to_onnx(path)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version >= 18

"""The Functional API's shapes of graph: several inputs and outputs, shared layers, nested models, residuals,
intermediate outputs, subclassed models, and the errors bad graphs and weights get."""

import numpy as np
import pytest

import core as keras
from core import layers
from core.errors import GraphError, WeightsError


def _two_tower():
    a = keras.Input(shape=(8,), name="a")
    b = keras.Input(shape=(8,), name="b")
    shared = layers.Dense(8, activation="tanh", name="shared")
    ha, hb = shared(a), shared(b)
    inner_in = keras.Input(shape=(8,))
    inner = keras.Model(inner_in, layers.Dense(4, name="inner_dense")(inner_in), name="inner")
    return keras.Model([a, b], [inner(ha), layers.Dense(2, name="o2")(hb)], name="two_tower"), shared, inner


def test_multi_io_shared_and_nested_models_compute_the_right_values():
    model, shared, inner = _two_tower()
    rng = np.random.default_rng(1)
    xa, xb = rng.random((5, 8), dtype=np.float32), rng.random((5, 8), dtype=np.float32)
    y1, y2 = model.predict([xa, xb])
    k, b = shared.get_weights()
    ik, ib = inner.get_layer("inner_dense").get_weights()
    ok, ob = model.get_layer("o2").get_weights()
    np.testing.assert_allclose(y1, np.tanh(xa @ k + b) @ ik + ib, atol=1e-5)
    np.testing.assert_allclose(y2, np.tanh(xb @ k + b) @ ok + ob, atol=1e-5)
    by_name = model.predict({"a": xa, "b": xb})
    np.testing.assert_allclose(by_name[0], y1)
    assert model.count_params() == 72 + 36 + 18


def test_summary_shows_shared_layer_connections_in_keras_notation():
    model, _, _ = _two_tower()
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "shared[0][0]" in text and "shared[1][0]" in text and "inner (Functional)" in text


def test_residual_connection_and_intermediate_output_submodel():
    inp = keras.Input(shape=(6,))
    h = layers.Dense(6, activation="relu", name="h")(inp)
    out = layers.Activation("linear", name="act")(h)
    model = keras.Model(inp, out)
    sub = keras.Model(model.inputs, model.get_layer("h").output)
    x = np.random.default_rng(2).random((3, 6), dtype=np.float32)
    np.testing.assert_allclose(sub.predict(x), model.predict(x), atol=1e-6)


def test_layer_order_matches_keras_for_the_seed_encoder_decoder_shape_of_graph():
    """tf.keras orders layers by depth, ties by discovery from the outputs (the seed's seq2seq summary)."""

    class Decoder(layers.Layer):
        def call(self, inputs, initial_state=None):
            return inputs + initial_state

    enc_in = keras.Input(shape=(4,), name="input_1")
    enc = layers.Dense(3, name="embedding_2")(enc_in)
    enc = layers.Dense(3, name="encoder")(enc)
    dec_in = keras.Input(shape=(4,), name="input_2")
    dec = layers.Dense(3, name="embedding_3")(dec_in)
    dec = Decoder(name="decoder")(dec, initial_state=enc)
    model = keras.Model([enc_in, dec_in], layers.Dense(2, name="dense")(dec))
    assert [l.name for l in model.layers] == ["input_1", "input_2", "embedding_2", "embedding_3", "encoder",
                                              "decoder", "dense"]


def test_subclassed_model_predicts_and_counts_params():
    class MyModel(keras.Model):
        def __init__(self, num_classes=10):
            super().__init__(name="my_model")
            self.dense_1 = layers.Dense(32, activation="relu")
            self.dense_2 = layers.Dense(num_classes, activation="sigmoid")

        def call(self, inputs):
            return self.dense_2(self.dense_1(inputs))

    model = MyModel(num_classes=10)
    y = model.predict(np.random.default_rng(3).random((7, 32)))
    assert y.shape == (7, 10) and np.all((y > 0) & (y < 1))
    assert model.count_params() == 32 * 32 + 32 + 32 * 10 + 10
    lines = []
    model.summary(print_fn=lines.append)
    assert "(None, 32)" in "\n".join(lines)


def test_duplicate_layer_names_are_refused():
    inp = keras.Input(shape=(3,))
    x = layers.Dense(3, name="same")(inp)
    with pytest.raises(GraphError, match="same"):
        keras.Model(inp, layers.Dense(3, name="same")(x))


def test_set_weights_checks_everything_before_assigning():
    model, shared, _ = _two_tower()
    before = model.get_weights()
    bad = [np.zeros_like(w) for w in before]
    bad[-1] = np.zeros((3,))
    with pytest.raises(WeightsError, match=r"expects shape \(2,\), got \(3,\)"):
        model.set_weights(bad)
    for w0, w1 in zip(before, model.get_weights()):
        np.testing.assert_array_equal(w0, w1)
    with pytest.raises(WeightsError, match="expects 6 weight arrays"):
        model.set_weights(before[:-1])


def test_set_weights_changes_predictions():
    model, _, _ = _two_tower()
    x = [np.ones((2, 8), np.float32)] * 2
    model.predict(x)
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    y1, y2 = model.predict(x)
    assert np.all(y1 == 0) and np.all(y2 == 0)


def test_lambda_code_from_another_process_is_refused_unless_safe_mode_is_off():
    import subprocess
    import sys

    from core import models
    from core.errors import ConfigError

    code = ("import core as keras; from core import layers; inp = keras.Input(shape=(4,)); "
            "print(keras.Model(inp, layers.Lambda(lambda t: t * 2)(inp)).to_json())")
    root = __import__("pathlib").Path(__file__).resolve().parents[2]
    js = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                        check=True).stdout.strip().splitlines()[-1]
    with pytest.raises(ConfigError, match="safe_mode"):
        models.model_from_json(js)
    model = models.model_from_json(js, safe_mode=False)
    np.testing.assert_allclose(model.predict(np.ones((1, 4), np.float32)), np.full((1, 4), 2.0))

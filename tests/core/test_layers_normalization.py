"""BatchNormalization and LayerNormalization against numpy and real Keras 3 (same weights, same inputs)."""

import numpy as np
import pytest

import core as keras
from core import layers
from core.errors import ConfigError, ShapeError
from core.graph import GraphBuilder, graph_scope
from core.layers.normalization import state_updates
from core.ops.dispatch import evaluate
from keras_reference import keras3  # noqa: F401  (the real-Keras fixture)


RNG = np.random.default_rng(3)


def _random_weights(layer, positive_from=None):
    """Random values for every weight; variances (index >= positive_from) kept positive."""
    out = []
    for i, w in enumerate(layer.get_weights()):
        v = RNG.normal(size=w.shape).astype("float32")
        out.append(np.abs(v) + 0.5 if positive_from is not None and i >= positive_from else v)
    return out


def _pair(keras3, name, x, **kwargs):
    ours, ref = getattr(layers, name)(**kwargs), getattr(keras3.layers, name)(**kwargs)
    ref.build(x.shape)
    ours(x)
    return ours, ref


# -- BatchNormalization -----------------------------------------------------------------------------------------------
def test_batchnorm_weights_in_keras_order(keras3):
    bn = layers.BatchNormalization()
    bn(np.ones((2, 4), "float32"))
    assert [w.name for w in bn.weights] == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert [w.name for w in bn.trainable_weights] == ["gamma", "beta"]
    assert [w.name for w in bn.non_trainable_weights] == ["moving_mean", "moving_variance"]
    no_affine = layers.BatchNormalization(center=False, scale=False)
    no_affine(np.ones((2, 4), "float32"))
    assert [w.name for w in no_affine.weights] == ["moving_mean", "moving_variance"]
    assert set(bn.get_config()) == set(keras3.layers.BatchNormalization().get_config()) - {
        "renorm", "renorm_clipping", "renorm_momentum"}


@pytest.mark.parametrize("shape, kwargs", [((6, 5), {}), ((4, 3, 5), {}), ((2, 3, 4, 5), {"axis": 1}),
                                           ((2, 3, 4, 5), {"axis": -1, "center": False}),
                                           ((3, 4, 5), {"scale": False, "epsilon": 0.1})])
def test_batchnorm_inference_and_training_match_keras3(keras3, shape, kwargs):
    x = RNG.normal(size=shape).astype("float32") * 3 + 1
    ours, ref = _pair(keras3, "BatchNormalization", x, **kwargs)
    n_affine = int(kwargs.get("center", True)) + int(kwargs.get("scale", True))
    weights = _random_weights(ref, positive_from=n_affine)
    ref.set_weights(weights)
    ours.set_weights(weights)
    np.testing.assert_allclose(ours(x).numpy(), np.asarray(ref(x, training=False)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours(x, training=True).numpy(), np.asarray(ref(x, training=True)),
                               rtol=1e-4, atol=1e-4)


def _trace_training(layer, x, **call_kwargs):
    """Trace `layer` into a training graph and return (output, [new moving values]) for data `x`."""
    g = GraphBuilder("train", training=True)
    t = g.add_input("x", "float32", (None,) + x.shape[1:])
    feeds = {t.name: x}
    for key, value in call_kwargs.items():
        m = g.add_input(key, "bool", (None,) + value.shape[1:])
        feeds[m.name] = value
        call_kwargs[key] = m
    with graph_scope(g):
        y = layer(t, **call_kwargs)
    updates = state_updates(g)
    assert [v for v, _ in updates] == [layer.moving_mean, layer.moving_variance]
    result = evaluate(g, [y] + [u for _, u in updates], feeds)
    return result[0], result[1:]


def test_batchnorm_training_graph_records_moving_stat_updates_like_keras3(keras3):
    x = RNG.normal(size=(8, 3, 4)).astype("float32") * 2 - 1
    ours, ref = _pair(keras3, "BatchNormalization", x, momentum=0.9)
    weights = _random_weights(ref, positive_from=2)
    ref.set_weights(weights)
    ours.set_weights(weights)
    out, (new_mean, new_var) = _trace_training(ours, x)
    ref_out = ref(x, training=True)
    np.testing.assert_allclose(out, np.asarray(ref_out), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(new_mean, ref.moving_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_var, ref.moving_variance.numpy(), rtol=1e-5, atol=1e-6)
    batch_mean, batch_var = x.mean((0, 1)), x.var((0, 1))
    np.testing.assert_allclose(new_mean, weights[2] * 0.9 + batch_mean * 0.1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_var, weights[3] * 0.9 + batch_var * 0.1, rtol=1e-5, atol=1e-6)
    # The inference graph never carries updates; a frozen layer uses its moving statistics even when training.
    inp = keras.Input(shape=(3, 4))
    model = keras.Model(inp, ours(inp))
    assert not getattr(model.inference_graph(), "state_updates", [])
    ours.trainable = False
    np.testing.assert_allclose(ours(x, training=True).numpy(), ours(x).numpy(), atol=1e-6)


def test_batchnorm_masked_statistics_like_keras3(keras3):
    x = RNG.normal(size=(4, 5, 3)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 0, 0, 0]], bool)
    ours, ref = _pair(keras3, "BatchNormalization", x)
    out, (new_mean, new_var) = _trace_training(ours, x, mask=mask)
    ref_out = ref(x, training=True, mask=mask)
    np.testing.assert_allclose(out, np.asarray(ref_out), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(new_mean, ref.moving_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_var, ref.moving_variance.numpy(), rtol=1e-5, atol=1e-6)


def test_batchnorm_passes_mask_through():
    ids = np.array([[1, 2, 0]])
    emb = layers.Embedding(5, 4, mask_zero=True)(ids)
    np.testing.assert_array_equal(layers.BatchNormalization()(emb)._keras_mask, ids != 0)


def test_batchnorm_config_round_trip_and_tf_keras2_keys():
    bn = layers.BatchNormalization(axis=1, momentum=0.9, epsilon=1e-5, center=False, gamma_regularizer="l2",
                                   name="bn")
    cfg = bn.get_config()
    assert cfg["axis"] == 1 and cfg["momentum"] == 0.9 and cfg["epsilon"] == 1e-5 and cfg["center"] is False
    assert layers.BatchNormalization.from_config(cfg).get_config() == cfg
    # tf.keras 2 writes axis as a list and adds keys that change nothing here.
    old = layers.BatchNormalization.from_config({"name": "b2", "axis": [3], "momentum": 0.99, "epsilon": 0.001,
                                                 "fused": None, "trainable": True})
    assert old.axis == 3


@pytest.mark.parametrize("kwargs, what", [({"momentum": 1.5}, "momentum"), ({"epsilon": 0}, "epsilon"),
                                          ({"epsilon": -1e-3}, "epsilon"), ({"axis": "last"}, "axis"),
                                          ({"renorm": True}, "renorm")])
def test_batchnorm_rejects_bad_config(kwargs, what):
    with pytest.raises(ConfigError, match=what):
        layers.BatchNormalization(**kwargs)


def test_batchnorm_shape_errors():
    with pytest.raises(ShapeError, match=r"'bn_axis'.*axis 3.*\(None, 4\)"):
        layers.BatchNormalization(axis=3, name="bn_axis")(keras.Input(shape=(4,)))
    with pytest.raises(ShapeError, match="known size"):
        layers.BatchNormalization()(keras.Input(shape=(4, None)))
    bn = layers.BatchNormalization(name="bn_feat")
    bn(keras.Input(shape=(4,)))
    with pytest.raises(ShapeError, match="bn_feat"):
        bn(keras.Input(shape=(5,)))


# -- LayerNormalization -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape, kwargs", [((4, 6), {}), ((2, 3, 6), {}), ((2, 3, 4, 5), {"axis": [1, 2]}),
                                           ((2, 3, 4, 5), {"axis": [1, 2, 3]}), ((2, 3, 4, 5), {"axis": 2}),
                                           ((2, 3, 6), {"center": False}), ((2, 3, 6), {"scale": False}),
                                           ((2, 3, 6), {"rms_scaling": True}), ((2, 3, 6), {"epsilon": 0.5})])
@pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`")
def test_layernorm_matches_keras3(keras3, shape, kwargs):
    x = RNG.normal(size=shape).astype("float32") * 2 + 3
    ours, ref = _pair(keras3, "LayerNormalization", x, **kwargs)
    assert [w.name for w in ours.weights] == [w.name for w in ref.weights]
    weights = _random_weights(ref)
    ref.set_weights(weights)
    ours.set_weights(weights)
    np.testing.assert_allclose(ours(x).numpy(), np.asarray(ref(x)), rtol=1e-4, atol=1e-4)
    inp = keras.Input(shape=shape[1:])
    np.testing.assert_allclose(keras.Model(inp, ours(inp)).predict(x), np.asarray(ref(x)), rtol=1e-4, atol=1e-4)


def test_layernorm_numpy_reference_and_config(keras3):
    x = RNG.normal(size=(3, 7)).astype("float32")
    out = layers.LayerNormalization(epsilon=1e-5)(x).numpy()
    want = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    ln = layers.LayerNormalization(axis=[1, 2], rms_scaling=True, name="ln")
    cfg = ln.get_config()
    assert cfg["axis"] == [1, 2] and cfg["rms_scaling"] is True
    assert set(cfg) == set(keras3.layers.LayerNormalization().get_config())
    assert layers.LayerNormalization.from_config(cfg).get_config() == cfg


def test_layernorm_errors():
    with pytest.raises(ConfigError, match="epsilon"):
        layers.LayerNormalization(epsilon=0.0)
    with pytest.raises(ConfigError, match="axis"):
        layers.LayerNormalization(axis=[1, "x"])
    with pytest.raises(ShapeError, match=r"'ln_bad'.*axis 2"):
        layers.LayerNormalization(axis=2, name="ln_bad")(keras.Input(shape=(4,)))


def test_batchnorm_eager_training_calls_update_moving_stats_like_keras3(keras3):
    x = RNG.normal(size=(16, 4)).astype("float32") * 3 + 2
    ours, ref = _pair(keras3, "BatchNormalization", x, momentum=0.8)
    for batch in (x[:8], x[8:], x):
        np.testing.assert_allclose(ours(batch, training=True).numpy(), np.asarray(ref(batch, training=True)),
                                   rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours.moving_mean.numpy(), ref.moving_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.moving_variance.numpy(), ref.moving_variance.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours(x).numpy(), np.asarray(ref(x)), rtol=1e-4, atol=1e-4)


def test_layernorm_model_written_for_tf_keras2_loads_there():
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tf_keras

    from exporters.keras_config import to_json

    inp = keras.Input(shape=(3, 4))
    model = keras.Model(inp, layers.BatchNormalization()(layers.LayerNormalization()(inp)))
    x = RNG.normal(size=(2, 3, 4)).astype("float32")
    ref = tf_keras.models.model_from_json(to_json(model, "tf_keras2"))
    ref.set_weights(model.get_weights())
    np.testing.assert_allclose(ref.predict(x, verbose=0), model.predict(x), rtol=1e-4, atol=1e-5)


def test_batchnorm_trains_like_keras3(keras3):
    """fit() on a model with BatchNormalization: the weights and the moving statistics follow Keras 3's."""
    x = RNG.normal(size=(64, 5)).astype("float32") * 2 + 1
    y = RNG.normal(size=(64, 2)).astype("float32")

    def build(lib):
        inp = lib.Input(shape=(5,))
        h = lib.layers.Dense(8, activation="tanh")(inp)
        h = lib.layers.BatchNormalization(momentum=0.9)(h)
        return lib.Model(inp, lib.layers.Dense(2)(h))

    ref, ours = build(keras3), build(keras)
    ours.set_weights(ref.get_weights())
    for model in (ref, ours):
        model.compile(optimizer="sgd", loss="mse")
    ref_hist = ref.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history
    our_hist = ours.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history
    np.testing.assert_allclose(our_hist["loss"], ref_hist["loss"], rtol=1e-4)
    for got, want in zip(ours.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(ours.predict(x), ref.predict(x, verbose=0), rtol=1e-3, atol=1e-5)

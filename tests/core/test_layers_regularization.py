"""Dropout, spatial dropout, Gaussian noise/dropout and ActivityRegularization: identity at inference, Keras's
statistics when training, masks passed through, configs and errors."""

import numpy as np
import pytest

import core as keras
from core import layers
from core.errors import ConfigError, ShapeError
from core.graph import GraphBuilder, graph_scope
from core.layers.base import graph_losses
from core.ops.dispatch import evaluate
from keras_reference import keras3  # noqa: F401  (the real-Keras fixture)


X = np.random.default_rng(5).uniform(1.0, 2.0, size=(64, 20, 16)).astype("float32")  # no zeros of its own

ALL = [("Dropout", {"rate": 0.4}), ("SpatialDropout1D", {"rate": 0.4}), ("GaussianNoise", {"stddev": 0.3}),
       ("GaussianDropout", {"rate": 0.3}), ("ActivityRegularization", {"l1": 0.1})]


@pytest.mark.parametrize("name, kwargs", ALL)
def test_identity_at_inference_and_in_predict(name, kwargs):
    layer = getattr(layers, name)(**kwargs)
    np.testing.assert_array_equal(layer(X).numpy(), X)
    inp = keras.Input(shape=(20, 16))
    model = keras.Model(inp, layers.Dense(3)(getattr(layers, name)(**kwargs)(inp)))
    dense = model.layers[-1]
    k, b = dense.get_weights()
    np.testing.assert_allclose(model.predict(X[:4]), X[:4] @ k + b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name, kwargs", ALL)
def test_masks_pass_through(name, kwargs):
    ids = np.array([[1, 2, 0], [3, 0, 0]])
    emb = layers.Embedding(5, 4, mask_zero=True)(ids)
    for training in (False, True):
        out = getattr(layers, name)(**kwargs)(emb, training=training)
        np.testing.assert_array_equal(out._keras_mask, ids != 0)


@pytest.mark.parametrize("name, kwargs", ALL + [("SpatialDropout2D", {"rate": 0.2}),
                                                ("SpatialDropout2D", {"rate": 0.2, "data_format": "channels_first"})])
def test_config_keys_match_keras3_and_round_trip(keras3, name, kwargs):
    ours = getattr(layers, name)(**kwargs)
    cfg = ours.get_config()
    assert set(cfg) == set(getattr(keras3.layers, name)(**kwargs).get_config())
    assert getattr(layers, name).from_config(cfg).get_config() == cfg


def test_dropout_training_statistics():
    y = layers.Dropout(0.4, seed=1)(X, training=True).numpy()
    dropped = y == 0
    assert abs(dropped.mean() - 0.4) < 0.02
    np.testing.assert_allclose(y[~dropped], X[~dropped] / 0.6, rtol=1e-6)
    assert np.array_equal(layers.Dropout(0.0)(X, training=True).numpy(), X)
    assert not layers.Dropout(1.0)(X, training=True).numpy().any()


def test_dropout_noise_shape_shares_draws():
    y = layers.Dropout(0.5, noise_shape=(None, 1, 16))(X, training=True).numpy()
    dropped = y == 0
    assert (dropped.all(axis=1) == dropped.any(axis=1)).all()  # whole columns drop together
    assert 0.4 < dropped.mean() < 0.6
    with pytest.raises(ShapeError, match="noise_shape"):
        layers.Dropout(0.5, noise_shape=(None, 16))(X, training=True)


def test_spatial_dropout_drops_whole_feature_maps():
    y = layers.SpatialDropout1D(0.5)(X, training=True).numpy()
    dropped = y == 0
    assert (dropped.all(axis=1) == dropped.any(axis=1)).all()
    assert 0.4 < dropped.all(axis=1).mean() < 0.6
    np.testing.assert_allclose(y[~dropped], X[~dropped] * 2, rtol=1e-6)
    img = np.ones((16, 5, 6, 8), "float32")
    last = layers.SpatialDropout2D(0.5)(img, training=True).numpy() == 0
    assert (last.all(axis=(1, 2)) == last.any(axis=(1, 2))).all()
    first = layers.SpatialDropout2D(0.5, data_format="channels_first")(img, training=True).numpy() == 0
    assert (first.all(axis=(2, 3)) == first.any(axis=(2, 3))).all()
    vol = np.ones((8, 3, 3, 3, 4), "float32")
    cube = layers.SpatialDropout3D(0.5)(vol, training=True).numpy() == 0
    assert (cube.all(axis=(1, 2, 3)) == cube.any(axis=(1, 2, 3))).all()


def test_spatial_dropout_rank_errors():
    with pytest.raises(ShapeError, match=r"'sd'.*rank 3.*\(None, 4\)"):
        layers.SpatialDropout1D(0.5, name="sd")(keras.Input(shape=(4,)))
    with pytest.raises(ShapeError, match="rank 4"):
        layers.SpatialDropout2D(0.5)(keras.Input(shape=(4, 3)))
    with pytest.raises(ConfigError, match="data_format"):
        layers.SpatialDropout2D(0.5, data_format="channels_middle")


def test_gaussian_noise_and_dropout_statistics():
    noise = layers.GaussianNoise(0.3, seed=2)(X, training=True).numpy() - X
    assert abs(noise.mean()) < 0.01 and abs(noise.std() - 0.3) < 0.01
    factor = layers.GaussianDropout(0.3, seed=2)(X, training=True).numpy() / X
    assert abs(factor.mean() - 1.0) < 0.01 and abs(factor.std() - np.sqrt(0.3 / 0.7)) < 0.01


def test_activity_regularization_adds_penalty_when_training():
    layer = layers.ActivityRegularization(l1=0.1, l2=0.01)
    g = GraphBuilder("train", training=True)
    t = g.add_input("x", "float32", (None, 3))
    with graph_scope(g):
        y = layer(t)
    assert y is t
    (penalty,) = graph_losses(g)
    x = np.array([[1.0, -2.0, 3.0]], "float32")
    value = evaluate(g, penalty, {t.name: x})
    np.testing.assert_allclose(value, 0.1 * 6.0 + 0.01 * 14.0, rtol=1e-6)
    assert layer.get_config()["l1"] == 0.1 and "activity_regularizer" not in layer.get_config()


@pytest.mark.parametrize("make, what", [(lambda: layers.Dropout(1.5), "rate"), (lambda: layers.Dropout(-0.1), "rate"),
                                        (lambda: layers.SpatialDropout1D(2.0), "rate"),
                                        (lambda: layers.GaussianDropout(1.2), "rate"),
                                        (lambda: layers.GaussianNoise(-1.0), "stddev"),
                                        (lambda: layers.Dropout(0.5, seed=1.5), "seed"),
                                        (lambda: layers.Dropout(0.5, noise_shape=(None, 0)), "noise_shape"),
                                        (lambda: layers.Dropout(0.5, noise_shape="batch"), "noise_shape"),
                                        (lambda: layers.ActivityRegularization(l1=-1.0), "l1")])
def test_bad_config_values(make, what):
    with pytest.raises(ConfigError, match=what):
        make()


def test_tf_keras2_spatial_dropout_config_with_noise_shape():
    layer = layers.SpatialDropout1D.from_config({"name": "s", "trainable": True, "dtype": "float32", "rate": 0.3,
                                                 "noise_shape": None, "seed": None})
    assert layer.rate == 0.3 and "noise_shape" not in layer.get_config()

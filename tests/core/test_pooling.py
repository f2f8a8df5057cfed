"""Pooling layers against real Keras 3: windows, strides, 'same' padding, odd lengths, masks, errors."""

import warnings

import numpy as np
import pytest
from keras_reference import assert_layer_matches_keras, keras3  # noqa: F401  (keras3 is a fixture)

import core as nw
from core import layers
from core.errors import ConfigError, MaskError, ShapeError

RNG = np.random.default_rng(3)


def _x(*shape):
    return RNG.standard_normal(shape).astype("float32")


def _with_mask(x, mask):
    from core.ops import EagerTensor

    t = EagerTensor(x)
    t._keras_mask = EagerTensor(mask)
    return t


POOL1D_CASES = [
    ({}, (2, 8, 3)),
    ({}, (1, 9, 3)),  # odd length: the last step is dropped with 'valid'
    (dict(pool_size=3), (2, 10, 2)),
    (dict(pool_size=3, strides=1), (2, 7, 2)),
    (dict(pool_size=2, strides=1, padding="same"), (2, 7, 2)),
    (dict(pool_size=3, strides=2, padding="same"), (2, 8, 2)),
    (dict(pool_size=4, strides=3, padding="same"), (2, 11, 2)),
    (dict(pool_size=5, padding="same"), (1, 3, 2)),  # window longer than the input
]


@pytest.mark.parametrize("class_name", ["MaxPooling1D", "AveragePooling1D"])
@pytest.mark.parametrize("config,shape", POOL1D_CASES, ids=[str(c) for c, _ in POOL1D_CASES])
def test_pooling1d_matches_keras(keras3, class_name, config, shape):
    if class_name == "AveragePooling1D":
        config = {"pool_size": 2, **config}  # Keras 3 requires it for average pooling
    assert_layer_matches_keras(keras3, class_name, config, _x(*shape), dynamic_axes=(1,))


POOL2D_CASES = [
    ({}, (2, 6, 7, 3)),
    (dict(pool_size=(3, 2)), (1, 9, 7, 2)),
    (dict(pool_size=3, strides=2, padding="same"), (2, 7, 8, 2)),
    (dict(pool_size=(2, 3), strides=(1, 2), padding="same"), (2, 5, 7, 2)),
]


@pytest.mark.parametrize("class_name", ["MaxPooling2D", "AveragePooling2D"])
@pytest.mark.parametrize("config,shape", POOL2D_CASES, ids=[str(c) for c, _ in POOL2D_CASES])
def test_pooling2d_matches_keras(keras3, class_name, config, shape):
    if class_name == "AveragePooling2D":
        config = {"pool_size": (2, 2), **config}
    assert_layer_matches_keras(keras3, class_name, config, _x(*shape), dynamic_axes=(1, 2))


@pytest.mark.parametrize("class_name,shape", [("GlobalMaxPooling1D", (2, 7, 3)), ("GlobalAveragePooling1D", (1, 5, 4)),
                                              ("GlobalMaxPooling2D", (2, 5, 6, 3)),
                                              ("GlobalAveragePooling2D", (2, 5, 6, 3))])
@pytest.mark.parametrize("config", [{}, {"keepdims": True}, {"data_format": "channels_first"},
                                    {"data_format": "channels_first", "keepdims": True}])
def test_global_pooling_matches_keras(keras3, class_name, shape, config):
    dynamic = (1,) if "1D" in class_name else (1, 2)
    assert_layer_matches_keras(keras3, class_name, config, _x(*shape), dynamic_axes=dynamic)


@pytest.mark.parametrize("class_name", ["MaxPooling1D", "AveragePooling1D", "MaxPooling2D", "AveragePooling2D"])
def test_channels_first_pooling_equals_channels_last_transposed(keras3, class_name):
    rank = 1 if "1D" in class_name else 2
    x = _x(2, 7, 3) if rank == 1 else _x(2, 7, 5, 3)
    config = dict(pool_size=3, strides=2, padding="same")
    expected = np.asarray(getattr(keras3.layers, class_name)(**config)(x))
    to_first = (0, 2, 1) if rank == 1 else (0, 3, 1, 2)
    to_last = (0, 2, 1) if rank == 1 else (0, 2, 3, 1)
    got = np.asarray(getattr(layers, class_name)(**config, data_format="channels_first")(x.transpose(to_first)))
    np.testing.assert_allclose(got.transpose(to_last), expected, atol=1e-6)


def test_average_pooling_same_leaves_padding_out_of_the_mean():
    x = np.arange(1, 6, dtype="float32").reshape(1, 5, 1)
    got = np.asarray(layers.AveragePooling1D(2, padding="same")(x))[0, :, 0]
    np.testing.assert_allclose(got, [1.5, 3.5, 5.0])  # the last window holds one real step, not (5 + 0) / 2


def test_global_average_pooling1d_with_mask_matches_keras(keras3):
    x = _x(3, 6, 4)
    mask = np.array([[1, 1, 1, 0, 0, 0], [1, 0, 1, 0, 1, 1], [1, 1, 1, 1, 1, 1]], dtype=bool)
    for config in ({}, {"keepdims": True}):
        expected = np.asarray(keras3.layers.GlobalAveragePooling1D(**config)(x, mask=mask))
        got = np.asarray(layers.GlobalAveragePooling1D(**config)(x, mask=mask))
        np.testing.assert_allclose(got, expected, atol=1e-6)
        np.testing.assert_allclose(got.reshape(3, 4)[0], x[0, :3].mean(axis=0), atol=1e-6)
    expected = np.asarray(keras3.layers.GlobalAveragePooling1D(data_format="channels_first")(
        x.transpose(0, 2, 1), mask=mask))
    got = np.asarray(layers.GlobalAveragePooling1D(data_format="channels_first")(x.transpose(0, 2, 1), mask=mask))
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_global_max_pooling1d_drops_a_mask_as_keras_does(keras3):
    """Keras 3 ignores the mask here (with a warning): masked steps take part in the maximum."""
    x = -np.abs(_x(2, 5, 3)) - 0.1
    x[0, 2:] = 0.0
    x[1, 4:] = 0.0
    mask = np.any(x != 0, axis=-1)
    inputs = keras3.Input(shape=(5, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pooled = keras3.layers.GlobalMaxPooling1D()(keras3.layers.Masking(0.0)(inputs))
        expected = keras3.Model(inputs, pooled).predict(x, verbose=0)
    with pytest.warns(UserWarning, match="does not support masking"):
        got = layers.GlobalMaxPooling1D()(_with_mask(x, mask))
    assert got._keras_mask is None
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-6)
    np.testing.assert_allclose(np.asarray(got), x.max(axis=1), atol=1e-6)


def test_global_average_pooling1d_consumes_a_travelling_mask():
    x = _x(2, 4, 2)
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], bool)
    out = layers.GlobalAveragePooling1D()(_with_mask(x, mask))
    assert out._keras_mask is None
    np.testing.assert_allclose(np.asarray(out), [x[0, :2].mean(axis=0), x[1].mean(axis=0)], atol=1e-6)


def test_window_pooling_refuses_a_mask():
    x = _x(1, 6, 2)
    with pytest.raises(MaskError, match="'max_pooling1d' \\(MaxPooling1D\\) does not support masking"):
        layers.MaxPooling1D()(_with_mask(x, np.ones((1, 6), bool)))


def test_shapes_and_config():
    inputs = nw.Input(shape=(None, 4))
    assert layers.MaxPooling1D(3, 2, "same")(inputs).shape == (None, None, 4)
    assert layers.GlobalAveragePooling1D(keepdims=True)(inputs).shape == (None, 1, 4)
    assert layers.MaxPooling2D()(nw.Input(shape=(9, 7, 3))).shape == (None, 4, 3, 3)
    pool = layers.MaxPooling1D(pool_size=3, name="p")
    assert pool.get_config() == {"name": "p", "trainable": True, "dtype": "float32", "pool_size": (3,),
                                 "padding": "valid", "strides": (3,), "data_format": "channels_last"}
    assert layers.MaxPooling1D.from_config(pool.get_config()).get_config() == pool.get_config()
    assert layers.AveragePooling2D(pool_size=[2, 3], strides=[1, 1]).get_config()["pool_size"] == (2, 3)
    assert layers.MaxPool1D is layers.MaxPooling1D and layers.GlobalAvgPool1D is layers.GlobalAveragePooling1D
    assert layers.GlobalMaxPooling1D().name == "global_max_pooling1d"


@pytest.mark.parametrize("factory,match", [
    (lambda: layers.MaxPooling1D(pool_size=0), "'pool_size' must be positive"),
    (lambda: layers.MaxPooling2D(pool_size=(2, 2, 2)), "'pool_size' must be an integer or a tuple of 2"),
    (lambda: layers.AveragePooling1D(2, strides=-1), "'strides' must be positive"),
    (lambda: layers.MaxPooling1D(padding="causal"), "'padding' must be one of 'valid', 'same'"),
    (lambda: layers.AveragePooling2D(padding="full"), "'padding' must be one of"),
    (lambda: layers.GlobalMaxPooling2D(data_format="NHWC"), "'data_format' must be"),
    (lambda: layers.GlobalAveragePooling1D(keepdims="yes"), "'keepdims' must be True or False"),
])
def test_bad_configs_raise_config_error(factory, match):
    with pytest.raises(ConfigError, match=match):
        factory()


def test_bad_shapes_raise_shape_error():
    with pytest.raises(ShapeError, match=r"MaxPooling1D 'p'.*window spans 4 steps but the input has only 3"):
        layers.MaxPooling1D(4, name="p")(nw.Input(shape=(3, 2)))
    with pytest.raises(ShapeError, match=r"expects a rank-4 input \(batch, rows, cols, channels\)"):
        layers.MaxPooling2D()(nw.Input(shape=(8, 2)))
    with pytest.raises(ShapeError, match=r"expects a rank-3 input \(batch, steps, features\)"):
        layers.GlobalAveragePooling1D()(nw.Input(shape=(8,)))


def test_embedding_mask_into_global_pooling_matches_keras(keras3):
    """Embedding(mask_zero=True) -> GlobalAveragePooling1D / GlobalMaxPooling1D -> Dense, as a Keras 3 model."""
    ids = np.array([[3, 5, 0, 0, 0], [1, 2, 3, 4, 0], [7, 0, 0, 0, 0]])

    def build(lib, pooling):
        inputs = lib.Input(shape=(None,), dtype="int32")
        x = lib.layers.Embedding(10, 4, mask_zero=True)(inputs)
        x = getattr(lib.layers, pooling)()(x)
        return lib.Model(inputs, lib.layers.Dense(2)(x))

    for pooling in ("GlobalAveragePooling1D", "GlobalMaxPooling1D"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = build(keras3, pooling)
            expected = ref.predict(ids, verbose=0)
            ours = build(nw, pooling)
            ours.set_weights(ref.get_weights())
            got = ours.predict(ids, verbose=0)
        np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=pooling)


@pytest.mark.parametrize("class_name,config", [
    ("MaxPooling3D", {}), ("MaxPooling3D", dict(pool_size=(1, 2, 3), strides=(1, 2, 2), padding="same")),
    ("AveragePooling3D", dict(pool_size=2)), ("AveragePooling3D", dict(pool_size=3, strides=2, padding="same")),
    ("GlobalMaxPooling3D", {}), ("GlobalAveragePooling3D", {"keepdims": True}),
])
def test_pooling3d_matches_keras(keras3, class_name, config):
    assert_layer_matches_keras(keras3, class_name, config, _x(2, 4, 5, 3, 2), dynamic_axes=(1, 2, 3))

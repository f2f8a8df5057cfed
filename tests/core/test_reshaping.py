"""Reshaping layers against real Keras 3: Flatten, Reshape, Permute, RepeatVector, ZeroPadding, Cropping,
UpSampling; unknown batch and time axes; bad configs and impossible shapes."""

import numpy as np
import pytest
from keras_reference import assert_layer_matches_keras, keras3  # noqa: F401  (keras3 is a fixture)

import core as nw
from core import layers, ops
from core.errors import ConfigError, ShapeError
from core.graph import GraphBuilder

RNG = np.random.default_rng(5)


def _x(*shape):
    return RNG.standard_normal(shape).astype("float32")


CASES = [
    ("Flatten", {}, (2, 3, 4), ()),
    ("Flatten", {}, (2, 3, 4, 5), (1, 2)),
    ("Flatten", {}, (1, 7), ()),
    ("Flatten", {"data_format": "channels_first"}, (2, 3, 4, 5), ()),
    ("Reshape", {"target_shape": (4, 3)}, (2, 12), ()),
    ("Reshape", {"target_shape": (-1, 2)}, (2, 3, 4), (1,)),
    ("Reshape", {"target_shape": (2, -1, 3)}, (1, 4, 3), ()),
    ("Permute", {"dims": (2, 1)}, (2, 3, 4), (1,)),
    ("Permute", {"dims": (3, 1, 2)}, (2, 3, 4, 5), (1, 2)),
    ("RepeatVector", {"n": 3}, (2, 4), ()),
    ("ZeroPadding1D", {}, (2, 5, 3), (1,)),
    ("ZeroPadding1D", {"padding": (0, 3)}, (1, 4, 2), (1,)),
    ("ZeroPadding1D", {"padding": 2, "data_format": "channels_first"}, (2, 3, 5), (2,)),
    ("ZeroPadding2D", {}, (2, 4, 5, 3), (1, 2)),
    ("ZeroPadding2D", {"padding": (2, 0)}, (2, 4, 5, 3), (1, 2)),
    ("ZeroPadding2D", {"padding": ((1, 2), (3, 0))}, (2, 4, 5, 3), (1, 2)),
    ("ZeroPadding2D", {"padding": ((1, 2), (3, 0)), "data_format": "channels_first"}, (2, 3, 4, 5), (2, 3)),
    ("Cropping1D", {}, (2, 5, 3), (1,)),
    ("Cropping1D", {"cropping": (0, 2)}, (2, 5, 3), (1,)),
    ("Cropping1D", {"cropping": 2}, (1, 5, 3), ()),
    ("Cropping2D", {"cropping": 1}, (2, 5, 6, 3), (1, 2)),
    ("Cropping2D", {"cropping": (2, 0)}, (2, 5, 6, 3), (1, 2)),
    ("Cropping2D", {"cropping": ((0, 1), (2, 3))}, (2, 5, 6, 3), (1, 2)),
    ("Cropping2D", {"cropping": ((0, 1), (2, 0)), "data_format": "channels_first"}, (2, 3, 5, 6), (2, 3)),
    ("ZeroPadding3D", {}, (1, 2, 3, 2, 2), (1, 2, 3)),
    ("ZeroPadding3D", {"padding": ((0, 1), (2, 0), (1, 1)), "data_format": "channels_first"}, (1, 2, 2, 3, 2),
     (2, 3, 4)),
    ("Cropping3D", {}, (1, 3, 4, 5, 2), (1, 2, 3)),
    ("Cropping3D", {"cropping": (0, 1, 2)}, (1, 3, 4, 5, 2), (1, 2, 3)),
    ("UpSampling3D", {"size": (1, 2, 3)}, (1, 2, 3, 2, 2), (1, 2, 3)),
    ("UpSampling3D", {"data_format": "channels_first"}, (1, 2, 2, 3, 2), (2, 3, 4)),
    ("UpSampling1D", {}, (2, 4, 3), (1,)),
    ("UpSampling1D", {"size": 3}, (1, 5, 2), (1,)),
    ("UpSampling2D", {}, (2, 3, 4, 2), (1, 2)),
    ("UpSampling2D", {"size": (1, 3)}, (2, 3, 4, 2), (1, 2)),
    ("UpSampling2D", {"size": (2, 3), "data_format": "channels_first"}, (2, 2, 3, 4), (2, 3)),
    ("UpSampling2D", {"interpolation": "bilinear"}, (2, 3, 4, 2), (1, 2)),
    ("UpSampling2D", {"size": (3, 4), "interpolation": "bilinear"}, (2, 3, 5, 2), (1, 2)),
    ("UpSampling2D", {"size": (1, 5), "interpolation": "bilinear"}, (1, 1, 2, 3), (1, 2)),
    ("UpSampling2D", {"size": 3, "interpolation": "bilinear", "data_format": "channels_first"}, (2, 2, 3, 4),
     (2, 3)),
]


@pytest.mark.parametrize("class_name,config,shape,dynamic", CASES,
                         ids=[f"{c}-{cfg}-{s}" for c, cfg, s, _ in CASES])
def test_matches_keras(keras3, class_name, config, shape, dynamic):
    assert_layer_matches_keras(keras3, class_name, config, _x(*shape), dynamic_axes=dynamic)


def test_shapes_with_unknown_dims():
    seq = nw.Input(shape=(None, 4))
    assert layers.Flatten()(seq).shape == (None, None)
    assert layers.Flatten()(nw.Input(shape=(3, 4))).shape == (None, 12)
    assert layers.Reshape((-1, 2))(seq).shape == (None, None, 2)
    assert layers.Reshape((6, -1))(nw.Input(shape=(3, 4))).shape == (None, 6, 2)
    assert layers.Permute((2, 1))(seq).shape == (None, 4, None)
    assert layers.ZeroPadding1D(2)(seq).shape == (None, None, 4)
    assert layers.ZeroPadding1D(2)(nw.Input(shape=(5, 4))).shape == (None, 9, 4)
    assert layers.Cropping1D((1, 2))(seq).shape == (None, None, 4)
    assert layers.UpSampling1D(3)(seq).shape == (None, None, 4)
    assert layers.UpSampling2D((2, 3))(nw.Input(shape=(None, 5, 2))).shape == (None, None, 15, 2)
    assert layers.RepeatVector(3)(nw.Input(shape=(4,))).shape == (None, 3, 4)


def test_unknown_lengths_run():
    """Every axis but the channels unknown when the graph is built: the runtime works the sizes out."""
    inputs = nw.Input(shape=(None, None, 2))
    x = layers.UpSampling2D((2, 3))(inputs)
    x = layers.ZeroPadding2D(((1, 0), (0, 2)))(x)
    x = layers.Cropping2D(((0, 1), (1, 1)))(x)
    model = nw.Model(inputs, layers.Flatten()(x))
    data = _x(2, 3, 4, 2)
    up = np.repeat(np.repeat(data, 2, axis=1), 3, axis=2)
    padded = np.pad(up, ((0, 0), (1, 0), (0, 2), (0, 0)))
    expected = padded[:, :-1, 1:-1].reshape(2, -1)
    np.testing.assert_allclose(model.predict(data, verbose=0), expected)
    data = _x(1, 2, 5, 2)
    assert model.predict(data, verbose=0).shape == (1, (4 + 1 - 1) * (15 + 2 - 2) * 2)


def test_configs_round_trip():
    for layer in (layers.Flatten(), layers.Reshape([2, -1]), layers.Permute([2, 1]), layers.RepeatVector(2),
                  layers.ZeroPadding1D(3), layers.ZeroPadding2D(((1, 2), (0, 1))), layers.Cropping1D(2),
                  layers.Cropping2D((1, 2)), layers.UpSampling1D(2), layers.UpSampling2D(3)):
        config = layer.get_config()
        assert type(layer).from_config(config).get_config() == config
    assert layers.Reshape([2, -1]).get_config()["target_shape"] == (2, -1)
    assert layers.ZeroPadding1D(3).get_config()["padding"] == (3, 3)
    assert layers.ZeroPadding2D(2).get_config()["padding"] == ((2, 2), (2, 2))
    assert layers.Cropping2D((1, 2)).get_config()["cropping"] == ((1, 1), (2, 2))
    assert layers.UpSampling2D(3).get_config()["size"] == (3, 3)
    assert "data_format" not in layers.Cropping1D().get_config()  # as Keras 3


def test_default_names_follow_keras():
    assert layers.ZeroPadding1D().name == "zero_padding1d" and layers.UpSampling2D().name == "up_sampling2d"


@pytest.mark.parametrize("factory,match", [
    (lambda: layers.Reshape((2, -1, -1)), "at most one -1"),
    (lambda: layers.Reshape((0, 3)), "positive sizes"),
    (lambda: layers.Reshape("abc"), "tuple of integers"),
    (lambda: layers.Permute((1, 3)), "permutation of 1..n"),
    (lambda: layers.Permute((0, 1)), "permutation of 1..n"),
    (lambda: layers.RepeatVector(0), "'n' must be a positive integer"),
    (lambda: layers.ZeroPadding1D(-1), "must not be negative"),
    (lambda: layers.ZeroPadding1D((1, 2, 3)), "'padding' must be an integer or a tuple of 2"),
    (lambda: layers.ZeroPadding2D(((1, 2), (3,))), "'padding' must be an integer or a tuple of 2"),
    (lambda: layers.ZeroPadding2D((1, 2, 3)), "'padding' must be an int, a tuple of 2 ints"),
    (lambda: layers.Cropping2D(((1, -1), (0, 0))), "must be non-negative"),
    (lambda: layers.UpSampling1D(0), "'size' must be a positive integer"),
    (lambda: layers.UpSampling2D((2, 0)), "'size' must be positive"),
    (lambda: layers.UpSampling2D(interpolation="bicubic"), "'interpolation' must be one of nearest, bilinear"),
    (lambda: layers.Flatten(data_format="channels_middle"), "'data_format' must be"),
    (lambda: layers.Cropping1D(data_format="channels_first"), "unknown argument"),  # Keras 3 has none here
])
def test_bad_configs_raise_config_error(factory, match):
    with pytest.raises(ConfigError, match=match):
        factory()


def test_impossible_shapes_raise_shape_error():
    with pytest.raises(ShapeError, match=r"Reshape 'r': cannot reshape an input of shape \(None, 3, 4\) \(12 values "
                                         r"per sample\) to target_shape \(5, 2\)"):
        layers.Reshape((5, 2), name="r")(nw.Input(shape=(3, 4)))
    with pytest.raises(ShapeError, match=r"to target_shape \(5, -1\)"):
        layers.Reshape((5, -1))(nw.Input(shape=(3, 4)))
    with pytest.raises(ShapeError, match=r"Permute .* expects a rank-3 input"):
        layers.Permute((2, 1))(nw.Input(shape=(3, 4, 5)))
    with pytest.raises(ShapeError, match=r"RepeatVector .* expects a rank-2 input \(batch, features\)"):
        layers.RepeatVector(2)(nw.Input(shape=(3, 4)))
    with pytest.raises(ShapeError, match=r"Cropping1D .*cropping 2 \+ 3 leaves nothing of axis 1 \(length 5\)"):
        layers.Cropping1D((2, 3))(nw.Input(shape=(5, 4)))
    with pytest.raises(ShapeError, match=r"ZeroPadding2D .* expects a rank-4 input \(batch, rows, cols, channels\)"):
        layers.ZeroPadding2D()(nw.Input(shape=(5, 4)))
    with pytest.raises(ShapeError, match=r"UpSampling1D .* expects a rank-3 input"):
        layers.UpSampling1D()(nw.Input(shape=(5,)))


def test_output_layer_named_like_an_internal_tensor():
    """Flatten records a tensor named 'reshape'; the model's output is then the layer 'reshape' (Keras's default
    name), and the graph must still export and run."""
    inputs = nw.Input(shape=(3, 4))
    model = nw.Model(inputs, layers.Reshape((2, -1))(layers.Flatten()(inputs)))
    assert model.layers[-1].name == "reshape"
    data = _x(2, 3, 4)
    np.testing.assert_array_equal(model.predict(data, verbose=0), data.reshape(2, 2, 6))
    proto = model.to_onnx()
    assert [o.name for o in proto.graph.output] == ["reshape"]


def test_repeat_and_interleave_ops():
    data = _x(2, 3, 4)
    for axis in (0, 1, 2, -1, None):
        np.testing.assert_array_equal(ops.repeat(data, 3, axis=axis), np.repeat(data, 3, axis=axis))
    woven = np.asarray(ops.interleave([data, data + 10, data + 20], axis=1))
    np.testing.assert_array_equal(woven[:, 1::3], data + 10)
    assert woven.shape == (2, 9, 4)
    g = GraphBuilder()
    t = g.add_input("x", "float32", (None, None, None, 4))
    assert ops.repeat(t, 2, axis=1).shape == (None, None, None, 4)
    assert ops.interleave([t, t], axis=2).shape == (None, None, None, 4)
    assert ops.repeat(g.add_input("y", "float32", (None, 3, 4)), 2, axis=1).shape == (None, 6, 4)
    with pytest.raises(ShapeError, match="'repeats' must be a positive integer"):
        ops.repeat(data, 0, axis=1)

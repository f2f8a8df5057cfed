"""Conv1D and Conv2D against real Keras 3: padding, strides, dilation, groups, odd lengths, unknown lengths."""

import numpy as np
import pytest
from keras_reference import assert_layer_matches_keras, keras3  # noqa: F401  (keras3 is a fixture)

import core as nw
from core import layers, ops
from core.errors import ConfigError, ShapeError
from core.graph import GraphBuilder

RNG = np.random.default_rng(7)


def _x(*shape):
    return RNG.standard_normal(shape).astype("float32")


CONV1D_CASES = [
    (dict(filters=4, kernel_size=3), (2, 9, 3)),
    (dict(filters=4, kernel_size=3, padding="same"), (2, 9, 3)),
    (dict(filters=4, kernel_size=4, padding="same"), (2, 8, 3)),  # even kernel: the extra pad goes at the end
    (dict(filters=4, kernel_size=3, padding="causal"), (2, 9, 3)),
    (dict(filters=5, kernel_size=3, strides=2), (1, 10, 3)),
    (dict(filters=5, kernel_size=3, strides=2, padding="same"), (2, 10, 3)),
    (dict(filters=5, kernel_size=4, strides=3, padding="same"), (2, 11, 2)),
    (dict(filters=5, kernel_size=2, strides=2, padding="causal"), (2, 7, 2)),
    (dict(filters=3, kernel_size=3, dilation_rate=2), (2, 11, 4)),
    (dict(filters=3, kernel_size=3, dilation_rate=3, padding="same"), (2, 10, 4)),
    (dict(filters=3, kernel_size=2, dilation_rate=4, padding="causal"), (1, 9, 4)),
    (dict(filters=6, kernel_size=3, groups=2, padding="same"), (2, 7, 4)),
    (dict(filters=4, kernel_size=1, use_bias=False, activation="relu"), (3, 5, 3)),
    (dict(filters=4, kernel_size=5, activation="tanh"), (1, 5, 2)),  # kernel as long as the input
    (dict(filters=2, kernel_size=3, padding="same", strides=2), (1, 1, 3)),  # length 1
]


@pytest.mark.parametrize("config,shape", CONV1D_CASES, ids=[str(c) for c, _ in CONV1D_CASES])
def test_conv1d_matches_keras(keras3, config, shape):
    x = _x(*shape)
    ref_bias = {"bias_initializer": "random_normal"} if config.get("use_bias", True) else {}
    assert_layer_matches_keras(keras3, "Conv1D", {**config, **ref_bias}, x, dynamic_axes=(1,))


CONV2D_CASES = [
    (dict(filters=4, kernel_size=3), (2, 7, 6, 3)),
    (dict(filters=4, kernel_size=(3, 2), padding="same"), (2, 7, 6, 3)),
    (dict(filters=4, kernel_size=(2, 4), strides=(2, 3), padding="same"), (2, 9, 10, 2)),
    (dict(filters=4, kernel_size=3, strides=2), (1, 9, 8, 2)),
    (dict(filters=3, kernel_size=3, dilation_rate=(2, 1), padding="same"), (2, 8, 7, 2)),
    (dict(filters=4, kernel_size=3, groups=2, activation="relu"), (2, 6, 6, 4)),
]


@pytest.mark.parametrize("config,shape", CONV2D_CASES, ids=[str(c) for c, _ in CONV2D_CASES])
def test_conv2d_matches_keras(keras3, config, shape):
    assert_layer_matches_keras(keras3, "Conv2D", {**config, "bias_initializer": "random_normal"}, _x(*shape),
                               dynamic_axes=(1, 2))


def test_channels_first_equals_channels_last_transposed(keras3):
    # TensorFlow's CPU kernels have no channels-first convolution, so the reference is Keras's channels-last result.
    x = _x(2, 9, 3)
    ref = keras3.layers.Conv1D(4, 3, strides=2, padding="same", bias_initializer="random_normal")
    expected = np.asarray(ref(x))
    ours = layers.Conv1D(4, 3, strides=2, padding="same", data_format="channels_first")
    ours.build((None, 3, 9))
    ours.set_weights(ref.get_weights())
    got = np.asarray(ours(x.transpose(0, 2, 1)))
    np.testing.assert_allclose(got, expected.transpose(0, 2, 1), atol=1e-5)

    x2 = _x(2, 7, 6, 3)
    ref2 = keras3.layers.Conv2D(4, (3, 2), bias_initializer="random_normal")
    expected2 = np.asarray(ref2(x2))
    ours2 = layers.Conv2D(4, (3, 2), data_format="channels_first")
    ours2.build((None, 3, 7, 6))
    ours2.set_weights(ref2.get_weights())
    np.testing.assert_allclose(np.asarray(ours2(x2.transpose(0, 3, 1, 2))),
                               expected2.transpose(0, 3, 1, 2), atol=1e-5)
    assert ours2.get_config()["data_format"] == "channels_first"


def test_same_padding_with_stride_on_unknown_length_uses_same_upper(keras3):
    """Unknown length, 'same', stride 2: the pads depend on the length, so the Conv node gets auto_pad."""
    conv = layers.Conv1D(3, 4, strides=2, padding="same", bias_initializer="random_normal")
    inputs = nw.Input(shape=(None, 2))
    model = nw.Model(inputs, conv(inputs))
    g = model.inference_graph()
    (node,) = [n for n in g.nodes if n.op_type == "Conv"]
    assert node.attrs.get("auto_pad") == "SAME_UPPER" and "pads" not in node.attrs
    ref = keras3.layers.Conv1D(3, 4, strides=2, padding="same")
    ref.build((None, None, 2))
    ref.set_weights(conv.get_weights())
    for length in (1, 6, 7, 10):
        x = _x(2, length, 2)
        np.testing.assert_allclose(model.predict(x, verbose=0), np.asarray(ref(x)), atol=1e-5)


def test_kernel_stays_a_variable_and_is_transposed_in_the_graph():
    conv = layers.Conv1D(4, 3)
    inputs = nw.Input(shape=(10, 2))
    model = nw.Model(inputs, conv(inputs))
    g = model.inference_graph(weights_as_inputs=True)
    names = [t.name for _, t in g.variable_inputs]
    assert names == [conv.kernel.path, conv.bias.path]
    assert all(name in [t.name for t in g.inputs] for name in names)
    (node,) = [n for n in g.nodes if n.op_type == "Conv"]
    producer = {o: n for n in g.nodes for o in n.outputs}[node.inputs[1]]
    assert producer.op_type == "Transpose" and producer.inputs == [conv.kernel.path]
    assert producer.attrs["perm"] == [2, 1, 0]


def test_shapes_with_unknown_batch_and_time():
    inputs = nw.Input(shape=(None, 8))
    assert layers.Conv1D(4, 3)(inputs).shape == (None, None, 4)
    assert layers.Conv1D(4, 3, padding="causal")(inputs).shape == (None, None, 4)
    fixed = nw.Input(shape=(11, 8))
    assert layers.Conv1D(4, 3, strides=2)(fixed).shape == (None, 5, 4)
    assert layers.Conv1D(4, 3, strides=2, padding="same")(fixed).shape == (None, 6, 4)
    assert layers.Conv1D(4, 3, dilation_rate=2, padding="causal")(fixed).shape == (None, 11, 4)
    image = nw.Input(shape=(None, 9, 3))
    assert layers.Conv2D(4, 3, strides=2, padding="same")(image).shape == (None, None, 5, 4)


def test_default_names_follow_keras():
    assert [layers.Conv1D(2, 3).name, layers.Conv1D(2, 3).name, layers.Conv2D(2, 3).name] == \
        ["conv1d", "conv1d_1", "conv2d"]


def test_param_count_and_weight_shapes():
    conv = layers.Conv1D(32, 5)
    conv.build((None, 54, 16))
    assert [w.shape for w in conv.weights] == [(5, 16, 32), (32,)]
    assert conv.count_params() == 5 * 16 * 32 + 32
    grouped = layers.Conv2D(8, (3, 2), groups=4, use_bias=False)
    grouped.build((None, 10, 10, 12))
    assert [w.shape for w in grouped.weights] == [(3, 2, 3, 8)]


def test_config_round_trip():
    conv = layers.Conv1D(8, 3, strides=1, padding="causal", dilation_rate=2, activation="relu",
                         kernel_regularizer="l2", name="c")
    config = conv.get_config()
    assert config["kernel_size"] == (3,) and config["dilation_rate"] == (2,) and config["strides"] == (1,)
    assert config["padding"] == "causal" and config["data_format"] == "channels_last"
    clone = layers.Conv1D.from_config(config)
    assert clone.get_config() == config
    numpy_ints = layers.Conv2D(np.int64(4), (np.int32(3), 2), strides=np.int64(2))
    assert numpy_ints.filters == 4 and numpy_ints.kernel_size == (3, 2) and numpy_ints.strides == (2, 2)
    assert type(numpy_ints.get_config()["kernel_size"][0]) is int
    # tf.keras 2 JSON writes lists.
    assert layers.Conv2D.from_config({"filters": 2, "kernel_size": [3, 3], "strides": [1, 1]}).kernel_size == (3, 3)


@pytest.mark.parametrize("kwargs,match", [
    (dict(filters=0, kernel_size=3), "'filters' must be a positive integer"),
    (dict(filters=-2, kernel_size=3), "'filters' must be a positive integer"),
    (dict(filters=2.5, kernel_size=3), "'filters' must be a positive integer"),
    (dict(filters=4, kernel_size=0), "'kernel_size' must be positive"),
    (dict(filters=4, kernel_size=(3, 3)), "'kernel_size' must be an integer or a tuple of 1"),
    (dict(filters=4, kernel_size=3, strides=0), "'strides' must be positive"),
    (dict(filters=4, kernel_size=3, padding="full"), "'padding' must be one of 'valid', 'same', 'causal'"),
    (dict(filters=4, kernel_size=3, strides=2, dilation_rate=2), "strides > 1 cannot be combined"),
    (dict(filters=6, kernel_size=3, groups=4), r"'filters' \(6\) must be divisible by 'groups' \(4\)"),
    (dict(filters=4, kernel_size=3, data_format="channels_middle"), "'data_format' must be"),
    (dict(filters=4, kernel_size=3, activation="nope"), "Unknown activation"),
])
def test_conv1d_rejects_bad_config(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        layers.Conv1D(**kwargs)


def test_conv2d_rejects_causal_padding():
    with pytest.raises(ConfigError, match="'padding' must be one of 'valid', 'same'"):
        layers.Conv2D(4, 3, padding="causal")


def test_shape_errors_name_the_layer():
    with pytest.raises(ShapeError, match=r"Conv1D 'short'.*window spans 5 steps but the input has only 4"):
        layers.Conv1D(2, 5, name="short")(nw.Input(shape=(4, 3)))
    with pytest.raises(ShapeError, match=r"window spans 7 steps"):  # dilation makes the window longer
        layers.Conv1D(2, 3, dilation_rate=3)(nw.Input(shape=(6, 3)))
    with pytest.raises(ShapeError, match=r"Conv1D 'rank' expects a rank-3 input \(batch, steps, channels\)"):
        layers.Conv1D(2, 3, name="rank")(nw.Input(shape=(10,)))
    with pytest.raises(ShapeError, match="known number of input channels"):
        layers.Conv2D(2, 3)(nw.Input(shape=(8, 8, None)))
    with pytest.raises(ShapeError, match="cannot be split into groups=2"):
        layers.Conv1D(4, 3, groups=2)(nw.Input(shape=(8, 3)))
    conv = layers.Conv1D(2, 3, name="built")
    conv(nw.Input(shape=(8, 3)))
    with pytest.raises(ShapeError, match="'built' was built for 3 input channels"):
        conv(nw.Input(shape=(8, 4)))


def test_conv_op_matches_numpy_and_rejects_bad_kernels():
    x, w = _x(2, 6, 3), _x(2, 3, 4)
    expected = np.stack([x[:, t:t + 2].reshape(2, -1) @ w.reshape(-1, 4) for t in range(5)], axis=1)
    np.testing.assert_allclose(ops.conv(x, w), expected, atol=1e-5)
    g = GraphBuilder()
    t = g.add_input("x", "float32", (None, 6, 5))
    with pytest.raises(ShapeError, match="not a multiple of the kernel's input size 2"):
        ops.conv(t, g.constant(np.zeros((3, 2, 4), "float32")))
    with pytest.raises(ShapeError, match="conv2d expects a rank-4 input"):
        ops.conv(t, g.constant(np.zeros((3, 3, 5, 4), "float32")))


TRANSPOSE_CASES = [
    ("Conv1DTranspose", dict(filters=3, kernel_size=3), (2, 5, 2)),
    ("Conv1DTranspose", dict(filters=3, kernel_size=3, strides=2), (2, 5, 2)),
    ("Conv1DTranspose", dict(filters=3, kernel_size=2, strides=3), (1, 4, 2)),  # kernel shorter than the stride
    ("Conv1DTranspose", dict(filters=3, kernel_size=3, strides=2, padding="same"), (2, 5, 2)),
    ("Conv1DTranspose", dict(filters=3, kernel_size=4, strides=2, padding="same"), (2, 5, 2)),
    ("Conv1DTranspose", dict(filters=3, kernel_size=2, strides=3, padding="same"), (2, 4, 2)),
    ("Conv1DTranspose", dict(filters=3, kernel_size=3, strides=3, output_padding=2), (2, 4, 2)),
    ("Conv1DTranspose", dict(filters=3, kernel_size=4, strides=3, padding="same", output_padding=1), (2, 4, 2)),
    ("Conv2DTranspose", dict(filters=4, kernel_size=3, strides=2, padding="same"), (2, 4, 5, 3)),
    ("Conv2DTranspose", dict(filters=4, kernel_size=(2, 3), strides=(2, 1), activation="relu"), (2, 4, 5, 3)),
    ("Conv2DTranspose", dict(filters=2, kernel_size=3, strides=2, output_padding=(1, 0)), (1, 3, 3, 2)),
    ("DepthwiseConv1D", dict(kernel_size=3), (2, 7, 3)),
    ("DepthwiseConv1D", dict(kernel_size=3, depth_multiplier=2, strides=2, padding="same"), (2, 7, 3)),
    ("DepthwiseConv1D", dict(kernel_size=2, depth_multiplier=3, dilation_rate=2), (1, 7, 2)),
    ("DepthwiseConv2D", dict(kernel_size=3, depth_multiplier=2, padding="same"), (2, 6, 5, 3)),
    ("SeparableConv1D", dict(filters=4, kernel_size=3, depth_multiplier=2), (2, 8, 3)),
    ("SeparableConv1D", dict(filters=4, kernel_size=3, strides=2, padding="same"), (2, 9, 3)),
    ("SeparableConv2D", dict(filters=5, kernel_size=(3, 2), depth_multiplier=2, padding="same"), (2, 6, 5, 3)),
]


@pytest.mark.parametrize("class_name,config,shape", TRANSPOSE_CASES,
                         ids=[f"{c}-{cfg}" for c, cfg, _ in TRANSPOSE_CASES])
def test_transposed_depthwise_separable_match_keras(keras3, class_name, config, shape):
    dynamic = (1,) if "1D" in class_name else (1, 2)
    assert_layer_matches_keras(keras3, class_name, {**config, "bias_initializer": "random_normal"}, _x(*shape),
                               dynamic_axes=dynamic)


def test_transposed_conv_is_the_adjoint_of_conv():
    """<conv(x), y> == <x, conv_transpose(y)> with the same kernel, for every padding and stride: the transpose is
    the convolution's gradient, which is what Keras's Conv1DTranspose computes."""
    for padding, strides, length in (("valid", 1, 9), ("same", 2, 9), ("same", 3, 10), ("valid", 2, 8)):
        w = _x(4, 3, 5)  # conv: 3 -> 5 channels; conv_transpose with the same array maps 5 -> 3
        x = _x(1, length, 3)
        y = np.asarray(ops.conv(x, w, strides=strides, padding=padding))
        dy = _x(*y.shape)
        # The output padding that makes the transpose as long as x (Keras's length formulas solved for it).
        extra = length - (y.shape[1] - 1) * strides - (4 % 2 if padding == "same" else 4)
        dx = np.asarray(ops.conv_transpose(dy, w, strides=strides, padding=padding, output_padding=extra))
        assert dx.shape == x.shape, (padding, strides, dx.shape)
        np.testing.assert_allclose((y * dy).sum(), (x * dx).sum(), rtol=1e-4)


def test_extra_conv_configs_and_errors():
    layer = layers.Conv2DTranspose(4, 3, strides=2, output_padding=1)
    config = layer.get_config()
    assert config["output_padding"] == (1, 1) and "groups" not in config
    assert layers.Conv2DTranspose.from_config(config).get_config() == config
    sep = layers.SeparableConv1D(4, 3, depth_multiplier=2)
    sep.build((None, 10, 3))
    assert [w.name for w in sep.weights] == ["depthwise_kernel", "pointwise_kernel", "bias"]
    assert [w.shape for w in sep.weights] == [(3, 3, 2), (1, 6, 4), (4,)]
    depthwise = layers.DepthwiseConv2D(3, depth_multiplier=2, use_bias=False)
    depthwise.build((None, 8, 8, 3))
    assert depthwise.count_params() == 3 * 3 * 3 * 2
    assert layers.Conv1DTranspose(2, 3).name == "conv1d_transpose"
    # tf.keras 2 writes its base Conv's keys into these configs; they are read and mean nothing.
    tf2 = layers.SeparableConv1D(4, 3, groups=1, kernel_initializer={"class_name": "GlorotUniform", "config": {}})
    assert "groups" not in tf2.get_config() and "kernel_initializer" not in tf2.get_config()
    with pytest.raises(ConfigError, match="'groups' must be 1"):
        layers.DepthwiseConv2D(3, groups=2)
    with pytest.raises(ConfigError, match="'output_padding' must be smaller than the stride"):
        layers.Conv1DTranspose(2, 3, strides=2, output_padding=2)
    with pytest.raises(ConfigError, match="'depth_multiplier' must be a positive integer"):
        layers.DepthwiseConv1D(3, depth_multiplier=0)
    with pytest.raises(ConfigError, match="'padding' must be one of 'valid', 'same'"):
        layers.SeparableConv1D(2, 3, padding="causal")
    with pytest.raises(ShapeError, match=r"DepthwiseConv1D 'd'.*window spans 3 steps but the input has only 2"):
        layers.DepthwiseConv1D(3, name="d")(nw.Input(shape=(2, 4)))
    with pytest.raises(ShapeError, match=r"output of length 0"):
        layers.Conv1DTranspose(2, 2, padding="same", output_padding=0)(nw.Input(shape=(1, 4)))


@pytest.mark.parametrize("class_name,config,shape", [
    ("Conv3D", dict(filters=3, kernel_size=(2, 3, 2)), (2, 4, 5, 4, 2)),
    ("Conv3D", dict(filters=3, kernel_size=3, strides=(1, 2, 2), padding="same"), (1, 3, 5, 6, 2)),
    ("Conv3DTranspose", dict(filters=2, kernel_size=2, strides=2, padding="same"), (1, 2, 3, 2, 3)),
])
def test_conv3d_matches_keras(keras3, class_name, config, shape):
    assert_layer_matches_keras(keras3, class_name, {**config, "bias_initializer": "random_normal"}, _x(*shape),
                               dynamic_axes=(1, 2, 3))

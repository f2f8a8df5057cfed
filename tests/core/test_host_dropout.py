"""Dropout masks drawn by the host for CPU training steps (core.training.host_dropout): the rewritten graph computes
what Keras's dropout computes for the same mask, keeps units with probability 1 - rate, and the step graph uses it
only where the host can tell how many bits a step needs."""

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import core as keras
from core import layers
from core.training import host_dropout


def _dropout_model(rate, shape=("batch", 3, 5), with_mask=True, training=True, seed=None):
    outputs = ["y", "mask"] if with_mask else ["y"]
    attrs = {} if seed is None else {"seed": seed}
    graph = helper.make_graph(
        [helper.make_node("Dropout", ["x", "ratio", "training"], outputs, **attrs)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT if o == "y" else TensorProto.BOOL, None)
         for o in outputs],
        [numpy_helper.from_array(np.array(rate, np.float32), "ratio"),
         numpy_helper.from_array(np.array(training), "training")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _run(model, feeds):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.9])
def test_the_rewritten_graph_keeps_where_the_bits_reach_the_threshold_and_scales_like_onnx_dropout(rate):
    model = _dropout_model(rate)
    (bits,) = host_dropout.feed_bits_to_dropouts(model)
    assert bits.row_shape == (3, 5) and bits.seed is None
    assert [n.op_type for n in model.graph.node if n.op_type == "Dropout"] == []
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 5)).astype(np.float32)
    b = host_dropout.draw(rng, 4, bits.row_shape)
    y, mask = _run(model, {"x": x, bits.input_name: b})
    expected_mask = b >= host_dropout.threshold(rate)
    np.testing.assert_array_equal(mask, expected_mask)
    # The kept values are exactly x * (1 / (1 - rate)) in float32, as tf.nn.dropout computes them (ONNX Runtime's
    # kernel divides by 1 - rate instead, which differs in the last bit for some values).
    scale = np.float32(1) / (np.float32(1) - np.float32(rate))
    np.testing.assert_array_equal(y, np.where(expected_mask, x * scale, 0).astype(np.float32))


@pytest.mark.parametrize("rate", [0.0, 0.2, 0.5, 0.75])
def test_units_are_kept_with_probability_one_minus_rate(rate):
    t = host_dropout.threshold(rate)
    # exactly: the int32 values at or above t make up 1 - rate of all of them, to within 2^-32
    assert abs((2.0 ** 31 - int(t)) / 2.0 ** 32 - (1 - np.float32(rate))) <= 2.0 ** -32
    kept = (host_dropout.draw(np.random.default_rng(1), 1000, (1000,)) >= t).mean()
    assert abs(kept - (1 - rate)) < 4 * np.sqrt(rate * (1 - rate) / 1e6) + 1e-12


def test_draw_gives_the_shape_asked_for_odd_sizes_included():
    b = host_dropout.draw(np.random.default_rng(2), 3, (5, 7))
    assert b.shape == (3, 5, 7) and b.dtype == np.int32 and b.flags.c_contiguous
    assert len(np.unique(b)) > 100  # different values, not one repeated


def test_dropouts_whose_size_the_host_cannot_know_keep_the_node():
    assert host_dropout.feed_bits_to_dropouts(_dropout_model(0.5, shape=("batch", "length", 4))) == []
    assert host_dropout.feed_bits_to_dropouts(_dropout_model(0.5, shape=(8, 4))) == []  # no batch axis
    assert host_dropout.feed_bits_to_dropouts(_dropout_model(0.5, training=False)) == []  # inference: no mask


def test_a_cpu_training_step_feeds_the_bits_and_drops_consistently_in_forward_and_backward():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((1000,))
    dense = layers.Dense(1, use_bias=False, kernel_initializer="zeros")
    model = keras.Model(inputs, dense(layers.Dropout(0.5, seed=7)(inputs)))
    model.compile(keras.optimizers.SGD(0.5), "mse")
    model.fit(np.ones((1, 1000), "float32"), np.ones((1, 1), "float32"), epochs=1, batch_size=1, verbose=0)
    program = model._train_state["train"].program
    assert [b.row_shape for b in program.dropout_bits] == [(1000,)]
    assert not any(n.op_type == "Dropout" for n in program.model_proto.graph.node)
    # From a zero kernel, one SGD step on (y - 1)^2 moves each kept unit's weight by 0.5 * 2 * scale = 2 and a
    # dropped unit's by nothing: the gradient used the mask the forward pass drew.
    kernel = dense.get_weights()[0].ravel()
    assert set(np.unique(kernel)) == {0.0, 2.0}
    assert 0.4 < (kernel == 2.0).mean() < 0.6


def test_a_seeded_dropout_trains_the_same_twice_and_an_unknown_length_still_trains():
    def trained(shape):
        keras.utils.set_random_seed(0)
        inputs = keras.Input(shape)
        model = keras.Model(inputs, layers.Dense(1)(layers.Dropout(0.3, seed=11)(layers.Dense(16)(inputs))))
        model.compile("adam", "mse")
        rows = np.random.default_rng(0).standard_normal((64,) + tuple(d or 6 for d in shape)).astype("float32")
        model.fit(rows, np.ones((64,) + tuple(d or 6 for d in shape[:-1]) + (1,), "float32"), epochs=2,
                  batch_size=16, verbose=0, shuffle=False)
        return model

    a, b = trained((8,)), trained((8,))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    varying = trained((None, 8))  # (batch, unknown length, 16): the step keeps ONNX's Dropout
    program = varying._train_state["train"].program
    assert program.dropout_bits == []
    assert any(n.op_type == "Dropout" for n in program.model_proto.graph.node)
    assert all(np.isfinite(w).all() for w in varying.get_weights())


def test_dropout_sizes_are_found_behind_blocked_convolutions():
    from core.training.blocked_conv import nchwc_block_size

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 16)), layers.Conv2D(16, 3, padding="same"), layers.Flatten(),
                              layers.Dropout(0.5), layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(np.ones((4, 8, 8, 16), "float32"), np.ones((4, 1), "float32"), epochs=1, verbose=0)
    program = model._train_state["train"].program
    # ONNX's shape inference cannot follow ONNX Runtime's blocked ops; the sizes come from the standard graph.
    blocked = any(n.domain == "com.microsoft.nchwc" for n in program.model_proto.graph.node)
    assert blocked == (nchwc_block_size() is not None)
    assert [b.row_shape for b in program.dropout_bits] == [(1024,)]


def test_the_bits_come_in_the_layout_their_reader_wants():
    """A Dropout read only by a Transpose (the next Conv1D's move to channels first) gets its bits drawn in the
    transposed layout and put back by a Transpose of its own, so that ONNX Runtime can cancel the layer's."""
    model = _dropout_model(0.5)
    graph = model.graph
    graph.node.append(helper.make_node("Transpose", ["y"], ["z"], perm=[0, 2, 1]))
    graph.output.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, None))
    (bits,) = host_dropout.feed_bits_to_dropouts(model)
    assert bits.row_shape == (5, 3) and bits.input_name == "dropout_bits_0_drawn"
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3, 5)).astype(np.float32)
    b = host_dropout.draw(rng, 4, bits.row_shape)
    y, mask, z = _run(model, {"x": x, bits.input_name: b})
    expected_mask = b.transpose(0, 2, 1) >= host_dropout.threshold(0.5)
    np.testing.assert_array_equal(mask, expected_mask)
    np.testing.assert_array_equal(y, np.where(expected_mask, x * np.float32(2), 0).astype(np.float32))
    np.testing.assert_array_equal(z, y.transpose(0, 2, 1))

    # On the model's input: the convolution and its weight gradient both read the input channels first.
    keras.utils.set_random_seed(0)
    conv = keras.Sequential([keras.Input((12, 16)), layers.Dropout(0.5), layers.Conv1D(8, 3), layers.Flatten(),
                             layers.Dense(1)])
    conv.compile("sgd", "mse")
    conv.fit(np.ones((4, 12, 16), "float32"), np.ones((4, 1), "float32"), epochs=2, verbose=0)
    program = conv._train_state["train"].program
    assert [(b.input_name, b.row_shape) for b in program.dropout_bits] == [("dropout_bits_0_drawn", (16, 12))]
    assert all(np.isfinite(w).all() for w in conv.get_weights())


def test_bits_between_two_convolutions_come_channels_first():
    """Between two convolutions the Dropout itself runs channels first (core.training.channels_first), and its
    bits come in its own layout, with no Transpose."""
    keras.utils.set_random_seed(0)
    conv = keras.Sequential([keras.Input((12, 4)), layers.Conv1D(16, 3, activation="relu"), layers.Dropout(0.5),
                             layers.Conv1D(8, 3), layers.Flatten(), layers.Dense(1)])
    conv.compile("sgd", "mse")
    conv.fit(np.ones((4, 12, 4), "float32"), np.ones((4, 1), "float32"), epochs=2, verbose=0)
    program = conv._train_state["train"].program
    assert [(b.input_name, b.row_shape) for b in program.dropout_bits] == [("dropout_bits_0", (16, 10))]
    assert not any(n.name.startswith("dropout_bits") and n.op_type == "Transpose"
                   for n in program.model_proto.graph.node)
    assert all(np.isfinite(w).all() for w in conv.get_weights())

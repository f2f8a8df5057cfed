"""MaxPooling1D/2D/3D input gradients against TensorFlow's (Keras 3's layers on the TensorFlow backend, in this
process), exactly, on inputs full of ties: TensorFlow gives each window's gradient to its first maximum in scanning
order, and ReLU before pooling makes all-zero windows common, so the tie rule changes the numbers a model trains on.

The reference is the gradient inside a tf.function, compiled by XLA and not, as `fit` runs a training step (Keras 3
compiles it with XLA where it can, tf.keras does not). Eager TensorFlow differs for 3-D windows only: there
MaxPool3DGrad gives the whole gradient to every tied maximum (measured with TensorFlow 2.x on a 2x2x2 window of
zeros: eight ones in eager, one one in a tf.function, with and without XLA). For overlapping windows with 'same'
padding, XLA routes some ties elsewhere than TensorFlow's own kernel (seen on most random inputs here); Netweaver
follows the kernel (tf.keras's `fit`), so XLA is compared there only where windows do not overlap or have no padding.
Where windows overlap, the shares of a position add up in another order: equal to float32 rounding.
"""

import os

import numpy as np
import onnxruntime as ort
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from core import layers, ops  # noqa: E402
from core.graph import GraphBuilder, graph_scope  # noqa: E402
from core.training.autodiff import gradients  # noqa: E402

RNG = np.random.default_rng(61)

CASES = [
    # (layer, pool_size, strides, padding, input shape)
    ("MaxPooling1D", 2, None, "valid", (3, 11, 4)),  # a leftover step
    ("MaxPooling1D", 3, None, "same", (2, 10, 3)),
    ("MaxPooling1D", 3, 2, "valid", (2, 10, 3)),  # overlapping windows
    ("MaxPooling2D", (2, 2), None, "valid", (4, 11, 11, 3)),  # the MNIST convnet's second pool, smaller
    ("MaxPooling2D", (2, 2), None, "same", (2, 7, 6, 3)),
    ("MaxPooling2D", (3, 3), None, "same", (2, 8, 7, 2)),  # padding before and after
    ("MaxPooling2D", (3, 3), (2, 2), "same", (2, 7, 8, 2)),
    ("MaxPooling2D", (2, 2), (1, 1), "valid", (2, 5, 6, 2)),
    ("MaxPooling3D", (2, 2, 2), None, "valid", (2, 5, 4, 4, 2)),
    ("MaxPooling3D", (2, 2, 2), None, "same", (1, 3, 5, 4, 2)),
    ("MaxPooling3D", (2, 3, 2), (1, 2, 1), "valid", (1, 4, 6, 3, 2)),
]


@pytest.mark.parametrize("name,pool_size,strides,padding,shape", CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}-{c[3]}" for c in CASES])
def test_input_gradient_matches_tensorflow(name, pool_size, strides, padding, shape):
    x = np.maximum(RNG.integers(-3, 3, size=shape), 0).astype(np.float32)  # half zeros: most windows tie
    kwargs = dict(pool_size=pool_size, strides=strides, padding=padding)
    theirs = getattr(keras.layers, name)(**kwargs)
    y = theirs(x)
    coeff = RNG.standard_normal(y.shape).astype(np.float32)

    def input_gradient(v):
        with tf.GradientTape() as tape:
            tape.watch(v)
            loss = tf.reduce_sum(theirs(v) * coeff)
        return tape.gradient(loss, v)

    want = tf.function(input_gradient)(tf.constant(x)).numpy()
    xla = tf.function(input_gradient, jit_compile=True)(tf.constant(x)).numpy()

    g = GraphBuilder("pool_input_gradient")
    xs = g.add_input("x", "float32", (None,) + shape[1:])
    with graph_scope(g):
        ours = getattr(layers, name)(**kwargs)(xs)
        grad, = gradients(ops.sum(ops.multiply(ours, g.constant(coeff))), [xs])
    g.set_outputs([ours, grad], ["y", "dx"])
    got_y, got = ort.InferenceSession(g.to_model().SerializeToString(),
                                      providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_array_equal(got_y, y.numpy())
    assert (np.count_nonzero(want) < want.size) and np.any(want)  # ties dropped gradient somewhere
    if strides is None:
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got, xla)
    else:
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
        if padding == "valid":
            np.testing.assert_allclose(got, xla, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name,pool_size,padding,shape", [
    ("MaxPooling2D", (2, 2), "valid", (4, 11, 11, 3)),
    ("MaxPooling2D", (3, 3), "same", (2, 8, 7, 2)),
    ("MaxPooling1D", 2, "valid", (3, 11, 4)),
])
def test_relu_then_pool_trained_as_pool_then_relu_has_tensorflows_gradient(name, pool_size, padding, shape):
    """Training steps pool before the ReLU (core.training.pool_first): on inputs full of ties, positive and not,
    the gradient through ReLU -> MaxPool is still TensorFlow's, exactly."""
    from core.training.pool_first import pool_before_relu

    x = RNG.integers(-3, 3, size=shape).astype(np.float32)  # ties of positives, windows of nonpositives
    theirs = getattr(keras.layers, name)(pool_size=pool_size, padding=padding)
    y = theirs(tf.nn.relu(x))
    coeff = RNG.standard_normal(y.shape).astype(np.float32)

    def input_gradient(v):
        with tf.GradientTape() as tape:
            tape.watch(v)
            loss = tf.reduce_sum(theirs(tf.nn.relu(v)) * coeff)
        return tape.gradient(loss, v)

    want = tf.function(input_gradient)(tf.constant(x)).numpy()
    g = GraphBuilder("relu_pool_input_gradient")
    xs = g.add_input("x", "float32", (None,) + shape[1:])
    with graph_scope(g):
        ours = getattr(layers, name)(pool_size=pool_size, padding=padding)(ops.relu(xs))
        assert pool_before_relu(g) == 1
        assert [n.op_type for n in g.nodes if n.op_type in ("Relu", "MaxPool")] == ["MaxPool", "Relu"]
        grad, = gradients(ops.sum(ops.multiply(ours, g.constant(coeff))), [xs])
    g.set_outputs([ours, grad], ["y", "dx"])
    got_y, got = ort.InferenceSession(g.to_model().SerializeToString(),
                                      providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_array_equal(got_y, y.numpy())
    assert np.count_nonzero(want) < want.size and np.any(want)
    np.testing.assert_array_equal(got, want)

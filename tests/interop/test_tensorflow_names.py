"""`import core as tf` serves TensorFlow code: tf.nn.*, tf.math.* and the top-level aliases give what real TensorFlow
gives, on arrays and inside a traced model."""

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
import tensorflow  # noqa: E402

import core  # noqa: E402

X = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
LABELS = (np.random.default_rng(1).random((3, 4)) > 0.5).astype("float32")

CASES = {
    "nn.relu": lambda tf, x: tf.nn.relu(x),
    "nn.softmax": lambda tf, x: tf.nn.softmax(x),
    "nn.log_softmax": lambda tf, x: tf.nn.log_softmax(x, axis=0),
    "nn.leaky_relu": lambda tf, x: tf.nn.leaky_relu(x, alpha=0.1),
    "nn.gelu": lambda tf, x: tf.nn.gelu(x),
    "nn.selu": lambda tf, x: tf.nn.selu(x),
    "nn.silu": lambda tf, x: tf.nn.silu(x),
    "nn.l2_normalize": lambda tf, x: tf.nn.l2_normalize(x, axis=-1),
    "nn.sigmoid_xent": lambda tf, x: tf.nn.sigmoid_cross_entropy_with_logits(labels=LABELS, logits=x),
    "nn.softmax_xent": lambda tf, x: tf.nn.softmax_cross_entropy_with_logits(labels=LABELS / 2, logits=x),
    "nn.sparse_xent": lambda tf, x: tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=np.array([0, 3, 1]), logits=x),
    "nn.moments": lambda tf, x: tf.nn.moments(x, axes=[0]),
    "math.reduce_sum": lambda tf, x: tf.math.reduce_sum(x, axis=1),
    "math.reduce_std": lambda tf, x: tf.math.reduce_std(x, axis=0),
    "math.reduce_logsumexp": lambda tf, x: tf.math.reduce_logsumexp(x, axis=-1, keepdims=True),
    "math.pow": lambda tf, x: tf.math.pow(tf.math.abs(x), 1.5),
    "math.argmax": lambda tf, x: tf.math.argmax(x),
    "math.logical": lambda tf, x: tf.math.logical_and(tf.math.greater(x, 0.0), tf.math.less(x, 1.0)),
    "argmax": lambda tf, x: tf.argmax(x, axis=1),
    "gather": lambda tf, x: tf.gather(x, [2, 0]),
    "gather_axis": lambda tf, x: tf.gather(x, [3, 1], axis=1),
    "clip_by_value": lambda tf, x: tf.clip_by_value(x, -0.5, 0.5),
    "one_hot": lambda tf, x: tf.one_hot(np.array([0, 2, 1]), 3, on_value=5.0, off_value=-1.0),
    "pad": lambda tf, x: tf.pad(x, [[1, 0], [0, 2]], constant_values=3.0),
    "split": lambda tf, x: tf.split(x, [1, 3], axis=1),
    "convert_to_tensor": lambda tf, x: tf.convert_to_tensor(x) * 2.0,
    "where": lambda tf, x: tf.where(x > 0, x, tf.zeros_like(x)),
    "reduce_mean": lambda tf, x: tf.reduce_mean(tf.square(x), axis=0),
    "range": lambda tf, x: tf.range(2, 11, 3),
    "ones": lambda tf, x: tf.ones((2, 3)),
    "nn.conv2d": lambda tf, x: tf.nn.conv2d(np.reshape(x, (1, 3, 4, 1)), np.ones((2, 2, 1, 2), "float32"),
                                            strides=[1, 1, 2, 1], padding="SAME"),
    "nn.conv1d": lambda tf, x: tf.nn.conv1d(np.reshape(x, (1, 12, 1)), np.ones((3, 1, 2), "float32"), 2, "VALID",
                                            dilations=2),
    "nn.max_pool2d": lambda tf, x: tf.nn.max_pool2d(np.reshape(x, (1, 3, 4, 1)), 2, [1, 1, 2, 1], "VALID"),
    "nn.avg_pool1d": lambda tf, x: tf.nn.avg_pool1d(np.reshape(x, (1, 12, 1)), 3, 3, "SAME"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_result_as_tensorflow(name):
    expected = tensorflow.nest.map_structure(np.asarray, CASES[name](tensorflow, tensorflow.constant(X)))
    got = CASES[name](core, X)
    for e, g in zip(tensorflow.nest.flatten(expected), tensorflow.nest.flatten(list(got) if isinstance(
            got, (list, tuple)) else got)):
        np.testing.assert_allclose(np.asarray(g), e, rtol=1e-5, atol=1e-6)
        assert np.asarray(g).dtype == e.dtype or np.asarray(g).dtype.kind == e.dtype.kind


def test_the_names_trace_inside_a_model():
    class Block(core.layers.Layer):
        def call(self, x):
            return core.nn.l2_normalize(core.math.reduce_sum(tf_split(x)[1], axis=-1, keepdims=True) + x, axis=-1)

    def tf_split(x):
        return core.split(x, 2, axis=1)

    inp = core.Input((4,))
    model = core.Model(inp, Block()(inp))
    a, b = np.split(X, 2, axis=1)
    expected = tensorflow.math.l2_normalize(b.sum(-1, keepdims=True) + X, axis=-1).numpy()
    np.testing.assert_allclose(model.predict(X, verbose=0), expected, rtol=1e-5)


def test_a_missing_name_says_so():
    with pytest.raises(AttributeError, match="tf.math.cumsum is not available"):
        core.math.cumsum

"""Our `data.Dataset` pipelines give the elements and cardinalities that real tf.data gives for the same pipeline
(the deterministic transformations; shuffling draws differ by design)."""

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
import tensorflow  # noqa: E402

import core  # noqa: E402

X = np.arange(24, dtype="float32").reshape(12, 2)
Y = np.arange(12, dtype="int64")


def _gen():
    for n in (1, 3, 2, 4):
        yield np.arange(n, dtype="int32"), n


PIPELINES = {
    "map_batch": lambda tf: tf.data.Dataset.from_tensor_slices((X, Y)).map(
        lambda x, y: (tf.math.square(x) * 0.5, y + 1)).batch(5),
    "batch_unbatch_skip_take": lambda tf: tf.data.Dataset.from_tensor_slices((X, Y)).batch(5).unbatch().skip(2)
    .take(7),
    "batch_drop_remainder_repeat": lambda tf: tf.data.Dataset.from_tensor_slices(X).batch(5, drop_remainder=True)
    .repeat(2),
    "filter_take": lambda tf: tf.data.Dataset.range(20).filter(lambda x: x % 3 == 0).take(4),
    "zip_dict": lambda tf: tf.data.Dataset.zip({"a": tf.data.Dataset.range(4), "b": tf.data.Dataset.range(3)}),
    "zip_concatenate": lambda tf: tf.data.Dataset.zip((tf.data.Dataset.range(3), tf.data.Dataset.range(5, 9)))
    .concatenate(tf.data.Dataset.zip((tf.data.Dataset.range(2), tf.data.Dataset.range(2)))),
    "generator_padded": lambda tf: tf.data.Dataset.from_generator(
        _gen, output_signature=(tf.TensorSpec((None,), tf.int32), tf.TensorSpec((), tf.int64)))
    .padded_batch(3, padding_values=(-1, np.int64(0))),
    "enumerate_from_tensors": lambda tf: tf.data.Dataset.from_tensors((X, Y)).repeat(2).enumerate(3),
    "range_step_batch": lambda tf: tf.data.Dataset.range(3, 20, 4).batch(2, drop_remainder=True),
    "window_of_slices": lambda tf: tf.data.Dataset.from_tensor_slices({"x": X, "y": Y}).skip(10).repeat(),
}


def _elements(ds, limit=40):
    return [tensorflow.nest.map_structure(np.asarray, e) for e, _ in zip(ds.as_numpy_iterator(), range(limit))]


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_pipeline_matches_tf_data(name):
    theirs = PIPELINES[name](tensorflow)
    ours = PIPELINES[name](core)
    assert int(ours.cardinality()) == int(theirs.cardinality())
    expected, got = _elements(theirs), _elements(ours)
    assert len(got) == len(expected)
    for e, g in zip(expected, got):
        flat_e, flat_g = tensorflow.nest.flatten(e), tensorflow.nest.flatten(g)
        assert len(flat_e) == len(flat_g)
        for a, b in zip(flat_e, flat_g):
            np.testing.assert_allclose(b, a)
            assert np.asarray(b).shape == np.asarray(a).shape

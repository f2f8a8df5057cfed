"""Real Keras 3 as the reference in layer tests: a module-scoped fixture and one comparison helper.

Test modules do `from keras_reference import keras3, assert_layer_matches_keras` (tests/core is on sys.path while
pytest collects it). Keras is imported inside the fixture only, so the engine never sees it.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import core as nw


@pytest.fixture(scope="module")
def keras3():
    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    return keras


def assert_layer_matches_keras(keras3, class_name: str, config: dict, x: np.ndarray, *, atol: float = 1e-5,
                               dynamic_axes: tuple[int, ...] = ()):
    """Build the layer in Keras 3 and here from the same config, copy Keras's weights, and compare:
    the eager output, the output of a Functional model whose `dynamic_axes` (besides the batch) are unknown,
    Keras's output shape, and every plain (non-object) value of the config."""
    ref = getattr(keras3.layers, class_name)(**config)
    expected = np.asarray(ref(x))
    ours = getattr(nw.layers, class_name)(**config)
    ours(x)
    ours.set_weights(ref.get_weights())
    got = np.asarray(ours(x))
    assert got.shape == expected.shape, (class_name, config, got.shape, expected.shape)
    np.testing.assert_allclose(got, expected, atol=atol, rtol=1e-5, err_msg=f"{class_name}({config})")

    # Keras's symbolic output shape, with the batch unknown.
    inp_shape = tuple(x.shape[1:])
    assert tuple(ref.compute_output_shape((None,) + inp_shape)) == ours.compute_output_shape((None,) + inp_shape)

    # The same layer inside a model whose time/space axes are unknown when the graph is built.
    shape = tuple(None if i + 1 in dynamic_axes else d for i, d in enumerate(inp_shape))
    inputs = nw.Input(shape=shape, dtype=x.dtype.name)
    model = nw.Model(inputs, ours(inputs))
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=atol, rtol=1e-5,
                               err_msg=f"{class_name}({config}) in a model with input shape {shape}")

    ours_config = ours.get_config()
    for key, value in ref.get_config().items():
        if key in ("dtype", "name"):
            continue
        assert key in ours_config, f"{class_name}.get_config() lacks Keras's key '{key}'"
        if not isinstance(value, dict):
            assert ours_config[key] == value, (key, ours_config[key], value)
    return got

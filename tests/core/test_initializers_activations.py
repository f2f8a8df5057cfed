"""Initializers, activations and regularizers: Keras's names, distributions, values and errors."""

import math

import numpy as np
import pytest

import core as keras
from core import activations, initializers, regularizers
from core.errors import ConfigError

ALL_INITIALIZERS = ["zeros", "ones", "constant", "uniform", "random_uniform", "normal", "random_normal",
                    "truncated_normal", "variance_scaling", "glorot_uniform", "glorot_normal", "he_uniform",
                    "he_normal", "lecun_uniform", "lecun_normal", "orthogonal", "identity"]


@pytest.mark.parametrize("name", ALL_INITIALIZERS)
def test_every_initializer_by_name_and_by_config(name):
    init = initializers.get(name)
    value = init((40, 60), dtype="float32")
    assert value.shape == (40, 60) and value.dtype == np.float32
    again = initializers.get({"class_name": type(init).__name__, "config": init.get_config()})
    assert type(again) is type(init)


def test_distributions_have_keras_scales():
    big = (400, 600)
    glorot = initializers.GlorotUniform(seed=1)(big)
    limit = math.sqrt(6 / (400 + 600))
    assert glorot.min() >= -limit and glorot.max() <= limit and glorot.max() > 0.95 * limit
    he = initializers.HeNormal(seed=1)(big)
    assert abs(he.std() - math.sqrt(2 / 400)) / math.sqrt(2 / 400) < 0.03
    assert np.abs(he).max() <= 2 * math.sqrt(2 / 400) / 0.87962566103423978 + 1e-6
    q = initializers.Orthogonal(seed=2)((50, 50))
    np.testing.assert_allclose(q.T @ q, np.eye(50), atol=1e-5)
    np.testing.assert_array_equal(initializers.Constant(2.0)((3,)), [2, 2, 2])
    np.testing.assert_array_equal(initializers.Identity()((2, 3)), np.eye(2, 3))


def test_seeded_initializers_repeat_and_unseeded_differ():
    a = initializers.RandomNormal(seed=7)((5, 5))
    b = initializers.RandomNormal(seed=7)((5, 5))
    np.testing.assert_array_equal(a, b)
    c = initializers.RandomNormal()((5, 5))
    d = initializers.RandomNormal()((5, 5))
    assert not np.array_equal(c, d)


def test_unknown_initializer_is_a_clear_config_error():
    with pytest.raises(ConfigError, match="Unknown initializer 'glorot_uniformm'"):
        keras.layers.Dense(3, kernel_initializer="glorot_uniformm")
    with pytest.raises(ConfigError, match="Unknown initializer 'Nope'"):
        initializers.get({"class_name": "Nope", "config": {}})


def _np_act(name, x):
    sig = 1 / (1 + np.exp(-x))
    return {
        "linear": x, "relu": np.maximum(x, 0), "sigmoid": sig, "tanh": np.tanh(x),
        "softplus": np.log1p(np.exp(x)), "softsign": x / (1 + np.abs(x)),
        "elu": np.where(x > 0, x, np.exp(x) - 1),
        "selu": 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * (np.exp(x) - 1)),
        "exponential": np.exp(x), "relu6": np.clip(x, 0, 6), "silu": x * sig, "swish": x * sig,
        "hard_sigmoid": np.clip(x / 6 + 0.5, 0, 1), "hard_silu": x * np.clip(x / 6 + 0.5, 0, 1),
        "hard_swish": x * np.clip(x / 6 + 0.5, 0, 1), "hard_sigmoid_tf_keras2": np.clip(0.2 * x + 0.5, 0, 1),
        "mish": x * np.tanh(np.log1p(np.exp(x))), "log_sigmoid": np.log(sig),
        "leaky_relu": np.where(x > 0, x, 0.2 * x),
        "gelu": 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2))),
        "softmax": np.exp(x) / np.exp(x).sum(-1, keepdims=True),
        "log_softmax": x - np.log(np.exp(x).sum(-1, keepdims=True)),
    }[name]


@pytest.mark.parametrize("name", activations.names())
def test_every_activation_by_name_matches_numpy(name):
    x = np.linspace(-4, 4, 24, dtype=np.float32).reshape(3, 8)
    layer = keras.layers.Activation(name)
    np.testing.assert_allclose(layer(x).numpy(), _np_act(name, x.astype(np.float64)), rtol=1e-5, atol=1e-5)


def test_activation_callable_and_unknown_name():
    layer = keras.layers.Dense(2, activation=activations.sigmoid)
    assert layer.get_config()["activation"] == "sigmoid"
    with pytest.raises(ConfigError, match="Unknown activation 'relux'"):
        keras.layers.Dense(2, activation="relux")


def test_regularizers_penalties_and_configs():
    x = np.array([[1.0, -2.0], [3.0, -4.0]], dtype=np.float32)
    assert float(regularizers.l1(0.01)(x)) == pytest.approx(0.1)
    assert float(regularizers.l2(0.01)(x)) == pytest.approx(0.3)
    assert float(regularizers.l1_l2(0.01, 0.01)(x)) == pytest.approx(0.4)
    reg = regularizers.get({"class_name": "L1", "config": {"l1": 0.5}})
    assert reg.get_config() == {"l1": 0.5}
    assert regularizers.serialize(reg)["class_name"] == "L1"
    with pytest.raises(ValueError, match="non-negative"):
        regularizers.L1L2(l1=-1)

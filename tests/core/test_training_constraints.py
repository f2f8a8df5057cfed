"""Weight constraints hold after every training step, with the values real Keras 3 gives."""

import numpy as np
import pytest

import core

keras = pytest.importorskip("keras")

RNG = np.random.default_rng(11)
X = RNG.standard_normal((48, 5)).astype(np.float32)
Y = (RNG.standard_normal((48, 3)) * 4 - 2).astype(np.float32)


def _build(k, kernel_constraint, bias_constraint):
    return k.Sequential([k.Input((5,)), k.layers.Dense(6, activation="tanh", kernel_constraint=kernel_constraint),
                         k.layers.Dense(3, bias_constraint=bias_constraint)])


@pytest.mark.parametrize("kernel_constraint, bias_constraint", [
    ("non_neg", None),
    ({"class_name": "MaxNorm", "config": {"max_value": 0.5, "axis": 0}}, "non_neg"),
    ({"class_name": "UnitNorm", "config": {"axis": 0}}, None),
    ({"class_name": "MinMaxNorm", "config": {"min_value": 0.2, "max_value": 0.6, "rate": 0.5, "axis": 0}}, None),
])
def test_constrained_training_matches_keras(kernel_constraint, bias_constraint):
    keras.utils.set_random_seed(0)
    km = _build(keras, keras.constraints.get(kernel_constraint), keras.constraints.get(bias_constraint))
    om = _build(core, kernel_constraint, bias_constraint)
    om.set_weights(km.get_weights())
    km.compile(optimizer=keras.optimizers.SGD(0.2), loss="mse")
    om.compile(optimizer=core.optimizers.SGD(0.2), loss="mse")
    kh = km.fit(X, Y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    oh = om.fit(X, Y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    np.testing.assert_allclose(oh.history["loss"], kh.history["loss"], rtol=1e-4)
    for ours, theirs in zip(om.get_weights(), km.get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
    if kernel_constraint == "non_neg":
        assert om.layers[0].kernel.numpy().min() >= 0

"""Dropout drops in training wherever it sits: ONNX Runtime's EliminateDropout rewrite removed a training-mode
Dropout whose input came from an op (relu -> Dropout -> Dense trained with no dropout, loss exactly 0)."""

import numpy as np
import pytest

import core as keras
from core import layers

X = np.ones((64, 8), "float32")
Y = np.full((64, 1), 8.0, "float32")  # with every unit kept, the prediction is exactly 8 and the loss 0


@pytest.mark.parametrize("before", ["nothing", "relu", "frozen dense"])
def test_a_training_step_drops_units_whatever_comes_before_the_dropout(before):
    inputs = keras.Input((8,))
    x = inputs
    if before == "relu":
        x = layers.Activation("relu")(x)
    elif before == "frozen dense":
        x = layers.Dense(8, kernel_initializer="identity", use_bias=False, trainable=False)(x)
    dense = layers.Dense(1, kernel_initializer="ones", use_bias=False)
    model = keras.Model(inputs, dense(layers.Dropout(0.5, seed=1)(x)))
    model.compile("sgd", "mse")
    history = model.fit(X, Y, epochs=1, batch_size=64, verbose=0, shuffle=False)
    assert history.history["loss"][0] > 1.0  # dropped units (scaled by 2) make the prediction miss 8
    assert not np.allclose(dense.get_weights()[0], 1.0)  # and the step moved the kernel
    # inference keeps every unit (what comes before is the identity on these ones)
    np.testing.assert_allclose(model.predict(X[:4], verbose=0), X[:4] @ dense.get_weights()[0], rtol=1e-5)


def test_an_eager_call_in_training_mode_drops_after_an_op():
    x = layers.Activation("relu")(np.ones((16, 64), "float32"))
    out = np.asarray(layers.Dropout(0.5, seed=3)(x, training=True))
    assert 0.3 < (out == 0).mean() < 0.7 and set(np.unique(out)) <= {0.0, 2.0}

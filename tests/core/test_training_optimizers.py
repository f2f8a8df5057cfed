"""Each optimizer (and clipping, weight decay, learning-rate schedules) against real Keras 3 on the same run."""

import numpy as np
import pytest

import core

keras = pytest.importorskip("keras")

RNG = np.random.default_rng(1)
X = RNG.standard_normal((48, 6)).astype(np.float32)
Y = RNG.standard_normal((48, 3)).astype(np.float32)

CASES = {
    "sgd": ("SGD", {"learning_rate": 0.05}),
    "sgd_momentum": ("SGD", {"learning_rate": 0.05, "momentum": 0.9}),
    "sgd_nesterov": ("SGD", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    "adam": ("Adam", {"learning_rate": 0.01}),
    "adam_amsgrad": ("Adam", {"learning_rate": 0.01, "amsgrad": True}),
    "adamw": ("AdamW", {"learning_rate": 0.01, "weight_decay": 0.05}),
    "rmsprop": ("RMSprop", {"learning_rate": 0.01}),
    "rmsprop_momentum_centered": ("RMSprop", {"learning_rate": 0.01, "momentum": 0.5, "centered": True}),
    "adagrad": ("Adagrad", {"learning_rate": 0.1}),
    "adadelta": ("Adadelta", {"learning_rate": 1.0}),
    "adamax": ("Adamax", {"learning_rate": 0.02}),
    "nadam": ("Nadam", {"learning_rate": 0.01}),
    "clipnorm": ("SGD", {"learning_rate": 0.1, "clipnorm": 0.05}),
    "clipvalue": ("Adam", {"learning_rate": 0.01, "clipvalue": 0.01}),
    "global_clipnorm": ("SGD", {"learning_rate": 0.1, "global_clipnorm": 0.1}),
}

SCHEDULES = {
    "exponential": ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 3, "decay_rate": 0.5}),
    "exponential_staircase": ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 3,
                                                   "decay_rate": 0.5, "staircase": True}),
    "piecewise": ("PiecewiseConstantDecay", {"boundaries": [2, 5], "values": [0.1, 0.05, 0.01]}),
    "cosine": ("CosineDecay", {"initial_learning_rate": 0.1, "decay_steps": 7, "alpha": 0.1}),
    "cosine_warmup": ("CosineDecay", {"initial_learning_rate": 0.0, "decay_steps": 5, "warmup_target": 0.1,
                                      "warmup_steps": 3}),
}


def _keras_run(opt):
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="tanh"), keras.layers.Dense(3)])
    w0 = [w.copy() for w in m.get_weights()]
    m.compile(optimizer=opt, loss="mse", run_eagerly=True)  # eager: no tf.function tracing for 9 tiny steps
    h = m.fit(X, Y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    return w0, h.history["loss"], m.get_weights()


def _our_run(opt, w0):
    m = core.Sequential([core.Input((6,)), core.layers.Dense(5, activation="tanh"), core.layers.Dense(3)])
    m.set_weights(w0)
    m.compile(optimizer=opt, loss="mse")
    h = m.fit(X, Y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    return h.history["loss"], m.get_weights()


def _compare(kopt, oopt):
    w0, k_loss, k_w = _keras_run(kopt)
    o_loss, o_w = _our_run(oopt, w0)
    np.testing.assert_allclose(o_loss, k_loss, rtol=1e-4)
    for a, b in zip(o_w, k_w):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=2e-5)


@pytest.mark.parametrize("name", sorted(CASES))
def test_optimizer_matches_keras(name):
    cls, kwargs = CASES[name]
    _compare(getattr(keras.optimizers, cls)(**kwargs), getattr(core.optimizers, cls)(**kwargs))


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_matches_keras(name):
    cls, kwargs = SCHEDULES[name]
    _compare(keras.optimizers.SGD(getattr(keras.optimizers.schedules, cls)(**kwargs)),
             core.optimizers.SGD(getattr(core.optimizers.schedules, cls)(**kwargs)))


def test_optimizer_from_keras_config_and_errors():
    cfg = keras.optimizers.serialize(keras.optimizers.Adam(0.003, amsgrad=True))
    opt = core.optimizers.get(cfg)
    assert isinstance(opt, core.optimizers.Adam) and opt.amsgrad and abs(opt.learning_rate - 0.003) < 1e-9
    with pytest.raises(core.errors.ConfigError, match="Unknown optimizer"):
        core.optimizers.get("adamm")
    with pytest.raises(core.errors.ConfigError, match="only one of"):
        core.optimizers.SGD(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(core.errors.ConfigError, match="learning_rate"):
        core.optimizers.SGD(learning_rate="fast")

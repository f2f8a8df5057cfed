"""Keras 3's `gradient_accumulation_steps` and `use_ema` (`ema_momentum`, `ema_overwrite_frequency`) against real
Keras 3 on the same data and weights: training histories, final weights (the EMA averages after `fit`), the step
and update counts, the optimizer state in saved files, and the errors for bad values."""

import numpy as np
import pytest

import core
from core.errors import ConfigError

keras = pytest.importorskip("keras")

RNG = np.random.default_rng(5)
X = RNG.standard_normal((14, 5)).astype(np.float32)  # batch 2: 7 steps per epoch, not a multiple of 3
Y = RNG.standard_normal((14, 3)).astype(np.float32)
X_VAL = RNG.standard_normal((6, 5)).astype(np.float32)
Y_VAL = RNG.standard_normal((6, 3)).astype(np.float32)


def _build(k, constraint=False):
    kw = {"kernel_constraint": k.constraints.MaxNorm(0.8)} if constraint else {}
    return k.Sequential([k.Input((5,)), k.layers.Dense(8, activation="tanh", **kw), k.layers.Dense(3)])


def _optimizer(k, cls, schedule=False, **kw):
    if schedule:
        kw["learning_rate"] = k.optimizers.schedules.ExponentialDecay(0.05, decay_steps=2, decay_rate=0.7)
    return getattr(k.optimizers, cls)(**kw)


def _pair(cls, schedule=False, constraint=False, **kw):
    keras.utils.set_random_seed(0)
    km, om = _build(keras, constraint), _build(core, constraint)
    om.set_weights(km.get_weights())
    km.compile(optimizer=_optimizer(keras, cls, schedule, **kw), loss="mse")
    om.compile(optimizer=_optimizer(core, cls, schedule, **kw), loss="mse")
    return km, om


def _check(km, om, kh, oh):
    assert set(oh.history) == set(kh.history)
    for key in kh.history:
        np.testing.assert_allclose(oh.history[key], kh.history[key], rtol=1e-4, atol=1e-6, err_msg=key)
    for a, b in zip(om.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    assert om.optimizer.iterations == int(km.optimizer.iterations)
    assert om.optimizer.get_weights()[0] == int(km.optimizer.variables[0].numpy())  # the steps run


CASES = {
    "adam_accumulate": dict(cls="Adam", learning_rate=0.02, gradient_accumulation_steps=3),
    "sgd_momentum_accumulate": dict(cls="SGD", learning_rate=0.1, momentum=0.9, gradient_accumulation_steps=3),
    "adam_accumulate_schedule": dict(cls="Adam", schedule=True, gradient_accumulation_steps=3),
    "adam_accumulate_clipnorm": dict(cls="Adam", learning_rate=0.05, clipnorm=0.05, gradient_accumulation_steps=3),
    "sgd_accumulate_global_clipnorm": dict(cls="SGD", learning_rate=0.2, global_clipnorm=0.1,
                                           gradient_accumulation_steps=3),
    "adamw_accumulate": dict(cls="AdamW", learning_rate=0.02, weight_decay=0.2, gradient_accumulation_steps=2),
    "nadam_accumulate": dict(cls="Nadam", learning_rate=0.02, gradient_accumulation_steps=3),
    "adam_ema": dict(cls="Adam", learning_rate=0.02, use_ema=True, ema_momentum=0.9),
    "sgd_ema_overwrite": dict(cls="SGD", learning_rate=0.1, momentum=0.5, use_ema=True, ema_momentum=0.8,
                              ema_overwrite_frequency=3),
    "adam_ema_accumulate": dict(cls="Adam", learning_rate=0.02, use_ema=True, ema_momentum=0.7,
                                ema_overwrite_frequency=2, gradient_accumulation_steps=3),
    "sgd_ema_accumulate_schedule_constraint": dict(cls="SGD", schedule=True, momentum=0.9, use_ema=True,
                                                   ema_momentum=0.6, gradient_accumulation_steps=3,
                                                   constraint=True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_fit_like_keras(case):
    """Two epochs of 7 steps (an accumulation cycle spans the epoch boundary), with validation (which uses the
    current weights, not the averages); after fit the weights are Keras's (the averages with use_ema)."""
    km, om = _pair(**CASES[case])
    kh = km.fit(X, Y, batch_size=2, epochs=2, shuffle=False, verbose=0, validation_data=(X_VAL, Y_VAL))
    oh = om.fit(X, Y, batch_size=2, epochs=2, shuffle=False, verbose=0, validation_data=(X_VAL, Y_VAL))
    _check(km, om, kh, oh)
    # a second fit goes on from the state the first left (accumulators part-filled, averages, counts)
    kh = km.fit(X[:8], Y[:8], batch_size=2, epochs=1, shuffle=False, verbose=0)
    oh = om.fit(X[:8], Y[:8], batch_size=2, epochs=1, shuffle=False, verbose=0)
    _check(km, om, kh, oh)


def test_accumulation_updates_on_every_third_step_with_the_mean_gradient():
    om = _build(core)
    om.compile(optimizer=core.optimizers.SGD(0.1, gradient_accumulation_steps=3), loss="mse")
    w0 = om.get_weights()
    om.fit(X[:4], Y[:4], batch_size=2, epochs=1, shuffle=False, verbose=0)  # 2 steps: nothing applied yet
    for a, b in zip(om.get_weights(), w0):
        np.testing.assert_array_equal(a, b)
    assert om.optimizer.iterations == 0 and om.optimizer.get_weights()[0] == 2
    accumulated = om.optimizer.slots_for(om.trainable_weights[0])["gradient_accumulator"]
    assert np.abs(accumulated).sum() > 0
    om.fit(X[4:6], Y[4:6], batch_size=2, epochs=1, shuffle=False, verbose=0)
    assert om.optimizer.iterations == 1
    assert not np.array_equal(om.get_weights()[0], w0[0])
    np.testing.assert_array_equal(om.optimizer.slots_for(om.trainable_weights[0])["gradient_accumulator"], 0)


def test_train_on_batch_does_not_finalize_ema():
    """Keras's train_on_batch runs a step and keeps the weights; only fit ends with the averages."""
    km, om = _pair("SGD", learning_rate=0.1, use_ema=True, ema_momentum=0.5)
    for i in range(3):
        kl = km.train_on_batch(X[2 * i:2 * i + 2], Y[2 * i:2 * i + 2])
        ol = om.train_on_batch(X[2 * i:2 * i + 2], Y[2 * i:2 * i + 2])
        np.testing.assert_allclose(ol, kl, rtol=1e-4)
    for a, b in zip(om.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    average = om.optimizer.slots_for(om.trainable_weights[0])["average"]
    assert not np.allclose(average, om.get_weights()[0])


def test_config_round_trip_and_keras_config():
    opt = core.optimizers.Adam(0.01, use_ema=True, ema_momentum=0.95, ema_overwrite_frequency=4,
                               gradient_accumulation_steps=5)
    again = core.optimizers.deserialize(core.optimizers.serialize(opt))
    assert again.get_config() == opt.get_config()
    k_config = keras.optimizers.serialize(keras.optimizers.Adam(0.01, use_ema=True, ema_momentum=0.95,
                                                                ema_overwrite_frequency=4,
                                                                gradient_accumulation_steps=5))
    ours = core.optimizers.deserialize(k_config).get_config()
    for key in ("use_ema", "ema_momentum", "ema_overwrite_frequency", "gradient_accumulation_steps"):
        assert ours[key] == k_config["config"][key]


@pytest.mark.parametrize("ext", ["keras", "h5"])
def test_saved_state_resumes_and_real_keras_reads_it(tmp_path, ext):
    """Saved mid-cycle (5 steps, accumulators part-filled): our load resumes exactly; real Keras 3 finds its own
    variables (averages, accumulators) under its names with our values in the archive, and trains on from there as
    we do."""
    from exporters.keras_model import _optimizer_state

    kw = dict(learning_rate=0.02, use_ema=True, ema_momentum=0.8, gradient_accumulation_steps=3)
    om = _build(core)
    om.compile(optimizer=core.optimizers.Adam(**kw), loss="mse")
    om.fit(X[:10], Y[:10], batch_size=2, epochs=1, shuffle=False, verbose=0)
    path = str(tmp_path / f"m.{ext}")
    om.save(path)
    loaded = core.models.load_model(path)
    for a, b in zip(loaded.optimizer.get_weights(), om.optimizer.get_weights()):
        np.testing.assert_array_equal(a, b)
    c1, c2 = loaded.optimizer.get_config(), om.optimizer.get_config()
    assert c1.pop("learning_rate") == pytest.approx(c2.pop("learning_rate"))  # the file holds it in float32
    assert c1 == c2
    h1 = om.fit(X[10:], Y[10:], batch_size=2, epochs=1, shuffle=False, verbose=0)
    h2 = loaded.fit(X[10:], Y[10:], batch_size=2, epochs=1, shuffle=False, verbose=0)
    np.testing.assert_allclose(h2.history["loss"], h1.history["loss"], rtol=1e-6)
    for a, b in zip(loaded.get_weights(), om.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)

    state = dict(_optimizer_state(om, "keras3"))
    om.save(path)
    if ext == "h5":
        # Keras 3's legacy .h5 loader builds the optimizer on `model._trainable_variables`, which is empty for a
        # Sequential, so it restores only the step count; the file itself holds Keras's names and our values.
        import h5py

        with h5py.File(path) as f:
            group = f["optimizer_weights"]
            names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
            assert names == list(state)
            for n in names:
                np.testing.assert_array_equal(np.asarray(group[n]), state[n])
        return
    km = keras.models.load_model(path)
    names = [v.path for v in km.optimizer.variables]
    assert any(n.endswith("_average") for n in names) and any(n.endswith("_gradient_accumulator") for n in names)
    assert names == list(state)
    for v in km.optimizer.variables:
        np.testing.assert_allclose(np.asarray(v.numpy()), state[v.path], rtol=1e-6, err_msg=v.path)
    # and Keras goes on from there as we do
    kh = km.fit(X[:6], Y[:6], batch_size=2, epochs=1, shuffle=False, verbose=0)
    oh = om.fit(X[:6], Y[:6], batch_size=2, epochs=1, shuffle=False, verbose=0)
    _check(km, om, kh, oh)


@pytest.mark.parametrize("kwargs, message", [
    (dict(gradient_accumulation_steps=0), "gradient_accumulation_steps must be an integer >= 2"),
    (dict(gradient_accumulation_steps=1), "gradient_accumulation_steps must be an integer >= 2"),
    (dict(gradient_accumulation_steps=1.5), "got 1.5"),
    (dict(gradient_accumulation_steps=True), "gradient_accumulation_steps"),
    (dict(use_ema=True, ema_momentum=1.5), r"ema_momentum must be a number in \[0, 1\], got 1.5"),
    (dict(use_ema=True, ema_momentum=-0.1), "ema_momentum"),
    (dict(use_ema=True, ema_overwrite_frequency=0), "ema_overwrite_frequency must be an integer >= 1 or None"),
    (dict(use_ema=True, ema_overwrite_frequency=2.5), "got 2.5"),
    (dict(use_ema="yes"), "use_ema must be True or False"),
])
def test_bad_values_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        core.optimizers.SGD(**kwargs)
    with pytest.raises(ConfigError, match="Adam"):
        core.optimizers.Adam(**kwargs)


def test_tf_keras2_layout_has_averages_but_no_accumulators():
    """tf.keras 2's optimizers keep EMA averages (`Adam/average/<weight>:0`, after the step count, before the
    slots) but know no gradient accumulation, so files for tf.keras 2 leave the accumulators out."""
    from exporters.keras_model import _optimizer_state

    om = _build(core)
    om.compile(optimizer=core.optimizers.Adam(0.02, use_ema=True, gradient_accumulation_steps=2), loss="mse")
    om.fit(X[:6], Y[:6], batch_size=2, epochs=1, shuffle=False, verbose=0)
    names = [n for n, _ in _optimizer_state(om, "tf_keras2")]
    kernel = om.trainable_weights[0]
    assert names[:3] == ["iteration:0", f"adam/average/{kernel.path}:0",
                         f"adam/average/{om.trainable_weights[1].path}:0"]
    assert len(names) == 1 + 3 * 4 and not any("accumulator" in n for n in names)

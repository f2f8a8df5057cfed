"""fit/evaluate without Keras beside us: data forms, bad input caught before the first step, cancelling, NaN."""

import warnings

import numpy as np
import pytest

import core
from core import layers
from core.errors import ConfigError, InputDataError

RNG = np.random.default_rng(5)
X = RNG.standard_normal((64, 4)).astype(np.float32)
Y = np.eye(3, dtype=np.float32)[RNG.integers(0, 3, 64)]


def _model(optimizer="sgd", loss="categorical_crossentropy", metrics=("accuracy",)):
    core.utils.set_random_seed(0)
    m = core.Sequential([core.Input((4,)), layers.Dense(8, activation="relu"), layers.Dense(3, activation="softmax")])
    m.compile(optimizer=optimizer, loss=loss, metrics=list(metrics))
    return m


def _weights_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))


# -- bad input ----------------------------------------------------------------------------------------------------
def test_not_compiled():
    m = core.Sequential([core.Input((4,)), layers.Dense(3)])
    with pytest.raises(ConfigError, match="must be compiled"):
        m.fit(X, Y)


@pytest.mark.parametrize("kwargs, match", [
    (dict(y=Y[:, :2]), r"targets for output .* have shape \(64, 2\), but the output has shape \(None, 3\)"),
    (dict(y=np.argmax(Y, 1)), "sparse_categorical_crossentropy"),
    (dict(y=Y[:10]), "10 samples but x has 64|same number of samples"),
    (dict(y=np.array([["a", "b", "c"]] * 64)), "cannot be cast to numbers"),
    (dict(batch_size=0), "batch_size must be a positive integer"),
    (dict(x=np.zeros((0, 4)), y=np.zeros((0, 3))), "no samples"),
    (dict(x=np.zeros((64, 5))), r"expects shape \(None, 4\)"),
    (dict(sample_weight=np.ones(3)), "sample_weight has 3 entries"),
    (dict(validation_split=1.5), "validation_split"),
])
def test_bad_input_is_caught_before_the_first_step(kwargs, match):
    m = _model()
    before = m.get_weights()
    args = dict(x=X, y=Y, epochs=1, verbose=0)
    args.update(kwargs)
    with pytest.raises(InputDataError, match=match):
        m.fit(**args)
    assert _weights_equal(before, m.get_weights())


def test_sparse_labels_out_of_range():
    m = _model(loss="sparse_categorical_crossentropy")
    with pytest.raises(InputDataError, match=r"must be in \[0, 3\)"):
        m.fit(X, np.full(64, 3), verbose=0)


def test_unknown_loss_metric_and_output_names():
    m = _model()
    with pytest.raises(ConfigError, match="Unknown loss"):
        m.compile(optimizer="sgd", loss="msee")
        m.fit(X, Y, verbose=0)
    with pytest.raises(ConfigError, match="Unknown metric"):
        m.compile(optimizer="sgd", loss="mse", metrics=["acuracy"])
        m.fit(X, Y, verbose=0)
    with pytest.raises(ConfigError, match="does not have"):
        m.compile(optimizer="sgd", loss={"nope": "mse"})
        m.fit(X, Y, verbose=0)


# -- data forms ---------------------------------------------------------------------------------------------------
def test_arrays_lists_dicts_datasets_and_generators_train_the_same():
    histories = []
    m = _model()
    w0 = m.get_weights()
    histories.append(m.fit(X, Y, batch_size=16, epochs=2, shuffle=False, verbose=0).history)
    m.set_weights(w0)
    m.optimizer.iterations = 0
    histories.append(m.fit({"input_layer": X} if "input_layer" in [n for n, _, _ in m.input_specs()] else [X],
                           [Y], batch_size=16, epochs=2, shuffle=False, verbose=0).history)
    m.set_weights(w0)
    ds = core.data.Dataset.from_tensor_slices((X, Y)).batch(16)
    histories.append(m.fit(ds, epochs=2, verbose=0).history)
    m.set_weights(w0)

    def gen():
        while True:
            for i in range(0, 64, 16):
                yield X[i:i + 16], Y[i:i + 16]

    histories.append(m.fit(gen(), steps_per_epoch=4, epochs=2, verbose=0).history)
    for h in histories[1:]:
        for k in histories[0]:
            np.testing.assert_allclose(h[k], histories[0][k], rtol=1e-6)


def test_multi_input_dict_by_name():
    a = core.Input((3,), name="a")
    b = core.Input((2,), name="b")

    class Join(core.Layer):
        def call(self, inputs):
            return core.ops.concatenate(inputs, axis=-1)

    out = layers.Dense(1)(Join()([a, b]))
    m = core.Model([a, b], out)
    m.compile("adam", "mse")
    xa, xb = RNG.standard_normal((32, 3)), RNG.standard_normal((32, 2))
    y = xa[:, :1] - xb[:, 1:]
    h1 = m.fit({"b": xb, "a": xa}, y, epochs=3, verbose=0, shuffle=False)
    assert h1.history["loss"][-1] < h1.history["loss"][0]
    assert m.evaluate([xa, xb], y, verbose=0) == pytest.approx(m.evaluate({"a": xa, "b": xb}, y, verbose=0))


def test_shuffle_is_seeded_and_validation_split_takes_the_tail():
    runs = []
    for _ in range(2):
        m = _model()
        np.random.seed(7)
        runs.append(m.fit(X, Y, batch_size=8, epochs=2, verbose=0, validation_split=0.25).history)
    assert runs[0] == runs[1]
    m = _model()
    h = m.fit(X, Y, batch_size=8, epochs=1, verbose=0, validation_split=0.25, shuffle=False)
    m2 = _model()
    m2.fit(X[:48], Y[:48], batch_size=8, epochs=1, verbose=0, shuffle=False)
    assert h.history["val_loss"][0] == pytest.approx(m2.evaluate(X[48:], Y[48:], verbose=0)[0], rel=1e-6)


def test_evaluate_return_forms():
    m = _model(metrics=())
    assert isinstance(m.evaluate(X, Y, verbose=0), float)
    m = _model(metrics=("accuracy", "mse"))
    res = m.evaluate(X, Y, verbose=0)
    assert isinstance(res, list) and len(res) == 3
    d = m.evaluate(X, Y, verbose=0, return_dict=True)
    assert list(d) == ["loss", "accuracy", "mse"] == m.metrics_names
    assert [d[k] for k in d] == pytest.approx(res)


def test_steps_per_epoch_and_initial_epoch():
    m = _model()
    h = m.fit(X, Y, batch_size=8, epochs=3, steps_per_epoch=2, initial_epoch=1, verbose=0)
    assert h.epoch == [1, 2]
    assert m.optimizer.iterations == 4


def test_progress_bar_output(capsys):
    m = _model()
    m.fit(X, Y, batch_size=16, epochs=2, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    assert "4/4" in out and "loss:" in out and "accuracy:" in out and "/step" in out
    m.fit(X, Y, batch_size=16, epochs=1, verbose=2)
    assert "\r" not in capsys.readouterr().out


# -- stopping -------------------------------------------------------------------------------------------------------
class _CancelAt(core.callbacks.Callback):
    def __init__(self, epoch, batch, how):
        super().__init__()
        self.at, self.how, self.epoch = (epoch, batch), how, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            if self.how == "flag":
                self.model.cancel_training()
            else:
                raise KeyboardInterrupt


@pytest.mark.parametrize("how", ["flag", "ctrl_c"])
def test_cancel_stops_within_one_batch_with_last_step_weights(how):
    m = _model(optimizer="adam")
    w0 = m.get_weights()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        h = m.fit(X, Y, batch_size=16, epochs=3, shuffle=False, verbose=0, callbacks=[_CancelAt(1, 1, how)])
    assert h.epoch == [0] and len(h.history["loss"]) == 1
    assert m.optimizer.iterations == 6
    # The same six steps, run as one epoch of 4 batches and one of 2.
    ref = _model(optimizer="adam")
    ref.set_weights(w0)
    ref.fit(X, Y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    ref.fit(X[:32], Y[:32], batch_size=16, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(m.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_stop_training_flag_ends_after_the_epoch():
    m = _model()
    cb = core.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: setattr(m, "stop_training", True))
    h = m.fit(X, Y, epochs=5, verbose=0, callbacks=[cb])
    assert h.epoch == [0]


def test_nan_loss_is_reported():
    m = core.Sequential([core.Input((4,)), layers.Dense(3)])
    m.compile(optimizer=core.optimizers.SGD(1e30), loss="mse")
    with pytest.warns(RuntimeWarning, match="NaN or infinite"):
        h = m.fit(X * 1e10, Y, epochs=2, verbose=0, callbacks=[core.callbacks.TerminateOnNaN()])
    assert len(h.epoch) == 1 and not np.isfinite(h.history["loss"][0])


def test_fit_then_predict_uses_the_trained_weights():
    m = _model(optimizer="adam")
    before = m.predict(X, verbose=0)
    m.fit(X, Y, epochs=2, verbose=0)
    after = m.predict(X, verbose=0)
    assert not np.allclose(before, after)
    w = m.get_weights()
    x = np.maximum(X @ w[0] + w[1], 0) @ w[2] + w[3]
    ref = np.exp(x - x.max(1, keepdims=True))
    np.testing.assert_allclose(after, ref / ref.sum(1, keepdims=True), rtol=1e-5, atol=1e-6)


def test_set_weights_between_fits_and_train_on_batch():
    m = _model()
    w0 = m.get_weights()
    m.fit(X, Y, epochs=1, verbose=0)
    m.set_weights(w0)
    loss0 = m.evaluate(X, Y, verbose=0)[0]
    fresh = _model()
    fresh.set_weights(w0)
    assert loss0 == pytest.approx(fresh.evaluate(X, Y, verbose=0)[0])
    out = m.train_on_batch(X[:16], Y[:16])
    assert len(out) == 2 and np.isfinite(out[0])
    assert m.test_on_batch(X[:16], Y[:16])[0] < out[0] + 1.0


def test_frozen_layer_is_not_updated():
    m = _model()
    m.layers[0].trainable = False
    frozen = [w.copy() for w in m.layers[0].get_weights()]
    m.compile("sgd", "categorical_crossentropy")
    m.fit(X, Y, epochs=1, verbose=0)
    assert _weights_equal(frozen, m.layers[0].get_weights())
    assert not _weights_equal(m.layers[1].get_weights(), [np.zeros_like(w) for w in m.layers[1].get_weights()])


def test_dropout_and_noise_train_and_stay_off_at_inference():
    core.utils.set_random_seed(1)
    m = core.Sequential([core.Input((4,)), layers.Dense(32, activation="relu"), layers.Dropout(0.3, seed=3),
                         layers.GaussianNoise(0.1, seed=4), layers.Dense(3, activation="softmax")])
    m.compile(core.optimizers.Adam(0.02), "categorical_crossentropy", metrics=["accuracy"])
    labels = np.eye(3, dtype=np.float32)[np.argmax(X[:, :3], axis=1)]  # a learnable rule
    h = m.fit(X, labels, batch_size=16, epochs=40, verbose=0)
    assert h.history["loss"][-1] < 0.5 * h.history["loss"][0]
    assert m.evaluate(X, labels, verbose=0) == m.evaluate(X, labels, verbose=0)
    np.testing.assert_array_equal(m.predict(X, verbose=0), m.predict(X, verbose=0))


def test_device_choice_uses_cuda_or_falls_back_to_cpu_visibly():
    m = _model()
    if core.runtime.cuda_usable():  # a GPU machine: CUDA is used, with no fallback warning
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            h = m.fit(X, Y, epochs=1, verbose=0, device="cuda")
    else:
        with pytest.warns(RuntimeWarning, match="CUDA was requested"):
            h = m.fit(X, Y, epochs=1, verbose=0, device="cuda")
    assert np.isfinite(h.history["loss"][0])
    with pytest.raises(core.errors.DeviceError, match="Unknown device"):
        m.fit(X, Y, epochs=1, verbose=0, device="tpu")

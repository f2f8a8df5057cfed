"""Metrics of a masked (sequence) output during fit/evaluate, against real Keras 3 on the same data and weights.

What Keras 3.15 does, read in its source and checked here:
- `MeanMetricWrapper.update_state` folds y_pred's mask into the sample weight (`losses.loss.apply_mask`, reduction
  "sum"), with or without sample weights; so the mean metrics (mae, mse, accuracy, top-k, crossentropies) of
  compile's `metrics` and `weighted_metrics` alike skip masked timesteps (`CompileMetrics.update_state` passes no
  sample weight to `metrics`, and None to `weighted_metrics` when fit/evaluate got neither sample_weight nor
  class_weight, which is the same as weights of one).
- RootMeanSquaredError (a plain `Mean` of the squared error) and the confusion-matrix metrics (Precision, Recall,
  TruePositives, AUC) never read the mask.
- A sample weight of shape (samples,) on a sequence output fails in Keras's `apply_mask` ((batch,) times
  (batch, time)); (samples, 1) works. Netweaver takes (samples,) as one weight per sample, as Keras takes
  (samples, 1). Per-timestep weights (samples, timesteps) weigh each timestep, in both.
- class_weight on a sequence output fails in Keras (TypeError in `class_weight_to_sample_weights` for targets
  (samples, timesteps, 1), a shape error in `apply_mask` for (samples, timesteps)); Netweaver says so clearly.
"""

import numpy as np
import pytest

import core
from core.errors import InputDataError

keras = pytest.importorskip("keras")

B, T, V, C = 20, 6, 12, 3
RNG = np.random.default_rng(11)
X = RNG.integers(1, V, size=(B, T))
for _i in range(B):
    X[_i, RNG.integers(2, T + 1):] = 0  # ragged right padding: the mask reaches the output
X[3, :2] = 0  # and a left-padded row
Y = RNG.integers(0, C, size=(B, T, 1))
Y_BIN = RNG.integers(0, 2, size=(B, T, 1)).astype(np.float32)
SW = RNG.uniform(0.5, 2.0, size=B).astype(np.float32)
SW_T = RNG.uniform(0.0, 2.0, size=(B, T)).astype(np.float32)
XV, YV, SWV = X[::2][:7], Y[::3][:7], SW[1::2][:7]


def _build(units, activation):
    def build(k):
        L = k.layers
        return k.Sequential([k.Input((T,), dtype="int32"), L.Embedding(V, 4, mask_zero=True),
                             L.LSTM(5, return_sequences=True), L.Dense(units, activation=activation)])
    return build


def _pair(build, loss, metrics, weighted_metrics):
    keras.utils.set_random_seed(0)
    km = build(keras)
    om = build(core)
    om.set_weights(km.get_weights())
    for m, lib in ((km, keras), (om, core)):
        m.compile(optimizer=lib.optimizers.SGD(0.1), loss=loss, metrics=metrics(lib),
                  weighted_metrics=weighted_metrics(lib))
    return km, om


def _check(kh, oh, rtol=1e-4):
    assert set(oh) == set(kh), (sorted(oh), sorted(kh))
    for k in kh:
        np.testing.assert_allclose(oh[k], kh[k], rtol=rtol, atol=1e-6, err_msg=k)


def _sequence_pair():
    return _pair(_build(C, "softmax"), "sparse_categorical_crossentropy",
                 lambda lib: ["mae", "accuracy"], lambda lib: ["mae"])


def test_mean_metrics_skip_masked_timesteps_like_keras():
    km, om = _sequence_pair()
    fit = dict(batch_size=8, epochs=2, shuffle=False, verbose=0, validation_data=(XV, YV))
    kh, oh = km.fit(X, Y, **fit).history, om.fit(X, Y, **fit).history
    _check(kh, oh)
    ke = km.evaluate(X, Y, batch_size=8, verbose=0, return_dict=True)
    oe = om.evaluate(X, Y, batch_size=8, verbose=0, return_dict=True)
    _check(ke, oe)

    # The numbers are the masked means, not the means over every timestep.
    p, mask = om.predict(X, verbose=0), X != 0
    mae = np.abs(p - Y).mean(-1)
    acc = p.argmax(-1) == Y[..., 0]
    np.testing.assert_allclose(oe["mae"], mae[mask].mean(), rtol=1e-5)
    np.testing.assert_allclose(oe["weighted_mae"], mae[mask].mean(), rtol=1e-5)
    np.testing.assert_allclose(oe["accuracy"], acc[mask].mean(), rtol=1e-5)
    assert not np.isclose(mae[mask].mean(), mae.mean())


def test_sample_weight_on_masked_output_like_keras():
    km, om = _sequence_pair()
    fit = dict(batch_size=8, epochs=2, shuffle=False, verbose=0)
    # Keras needs the per-sample weights shaped (samples, 1) here; Netweaver also takes (samples,).
    kh = km.fit(X, Y, sample_weight=SW[:, None], validation_data=(XV, YV, SWV[:, None]), **fit).history
    oh = om.fit(X, Y, sample_weight=SW, validation_data=(XV, YV, SWV), **fit).history
    _check(kh, oh)
    assert not np.isclose(oh["mae"][-1], oh["weighted_mae"][-1])
    _check(km.evaluate(X, Y, sample_weight=SW[:, None], batch_size=8, verbose=0, return_dict=True),
           om.evaluate(X, Y, sample_weight=SW, batch_size=8, verbose=0, return_dict=True))

    p, mask = om.predict(X, verbose=0), X != 0
    mae = np.abs(p - Y).mean(-1)
    w = mask * SW[:, None]
    oe = om.evaluate(X, Y, sample_weight=SW, batch_size=B, verbose=0, return_dict=True)
    np.testing.assert_allclose(oe["weighted_mae"], (mae * w).sum() / w.sum(), rtol=1e-5)
    np.testing.assert_allclose(oe["mae"], mae[mask].mean(), rtol=1e-5)


def test_rmse_and_confusion_metrics_ignore_the_mask_like_keras():
    def metrics(lib):
        return [lib.metrics.RootMeanSquaredError(name="rmse"), lib.metrics.Precision(name="precision"),
                lib.metrics.Recall(name="recall"), lib.metrics.AUC(name="auc"), "accuracy", "mse"]

    km, om = _pair(_build(1, "sigmoid"), "binary_crossentropy", metrics, metrics)
    # Weighted confusion counts with per-timestep weights, in training and validation.
    fit = dict(batch_size=8, epochs=2, shuffle=False, verbose=0, validation_data=(XV, Y_BIN[:7], SW_T[:7]))
    _check(km.fit(X, Y_BIN, sample_weight=SW_T, **fit).history, om.fit(X, Y_BIN, sample_weight=SW_T, **fit).history)
    oe = om.evaluate(X, Y_BIN, batch_size=8, verbose=0, return_dict=True)
    _check(km.evaluate(X, Y_BIN, batch_size=8, verbose=0, return_dict=True), oe)

    p, mask = om.predict(X, verbose=0)[..., 0], X != 0
    label, pos = Y_BIN[..., 0] > 0.5, p > 0.5
    assert pos.any() and (pos & mask).sum() < pos.sum()
    np.testing.assert_allclose(oe["precision"], (pos & label).sum() / pos.sum(), rtol=1e-5)  # every timestep
    np.testing.assert_allclose(oe["rmse"], np.sqrt(((p - Y_BIN[..., 0]) ** 2).mean()), rtol=1e-5)
    np.testing.assert_allclose(oe["accuracy"], (pos == label)[mask].mean(), rtol=1e-5)  # masked


def test_class_weight_on_sequence_output_is_refused_like_keras():
    km, om = _sequence_pair()
    cw = {0: 1.0, 1: 2.0, 2: 0.5}
    with pytest.raises(Exception):
        km.fit(X, Y, batch_size=8, epochs=1, verbose=0, class_weight=cw)
    with pytest.raises(InputDataError, match="class_weight.*one class per sample.*sample_weight"):
        om.fit(X, Y, batch_size=8, epochs=1, verbose=0, class_weight=cw)
    # Labels (samples, timesteps): Keras takes the argmax over time as the class, then fails in apply_mask.
    km, om = _pair(_build(C, "softmax"), "sparse_categorical_crossentropy", lambda lib: None, lambda lib: None)
    with pytest.raises(Exception):
        km.fit(X, Y[..., 0], batch_size=8, epochs=1, verbose=0, class_weight=cw)
    with pytest.raises(InputDataError, match="class_weight.*one class per sample"):
        om.fit(X, Y[..., 0], batch_size=8, epochs=1, verbose=0, class_weight=cw)


def test_per_timestep_sample_weight_on_masked_output_like_keras():
    km, om = _sequence_pair()
    fit = dict(batch_size=8, epochs=2, shuffle=False, verbose=0, validation_data=(XV, YV, SW_T[:7]))
    _check(km.fit(X, Y, sample_weight=SW_T, **fit).history, om.fit(X, Y, sample_weight=SW_T, **fit).history)
    oe = om.evaluate(X, Y, sample_weight=SW_T, batch_size=8, verbose=0, return_dict=True)
    _check(km.evaluate(X, Y, sample_weight=SW_T, batch_size=8, verbose=0, return_dict=True), oe)
    p, mask = om.predict(X, verbose=0), X != 0
    mae = np.abs(p - Y).mean(-1)
    np.testing.assert_allclose(oe["weighted_mae"], (mae * mask * SW_T).sum() / (mask * SW_T).sum(), rtol=1e-5)


def test_sample_weight_shape_errors_name_the_expected_shapes():
    _, om = _sequence_pair()
    with pytest.raises(InputDataError, match=r"output 'dense'.*\(20,\) or \(20, 1\).*or \(20, 6\).*got \(20, 7\)"):
        om.fit(X, Y, batch_size=8, epochs=1, verbose=0, sample_weight=np.ones((B, T + 1)))
    with pytest.raises(InputDataError, match=r"got \(20, 6, 2\)"):
        om.evaluate(X, Y, verbose=0, sample_weight=np.ones((B, T, 2)))


def test_class_weight_with_sample_weight_is_refused_like_keras():
    def build(k):
        return k.Sequential([k.Input((4,)), k.layers.Dense(3, activation="softmax")])

    x, y = RNG.standard_normal((8, 4)).astype(np.float32), RNG.integers(0, 3, 8)
    km, om = _pair(build, "sparse_categorical_crossentropy", lambda lib: None, lambda lib: ["accuracy"])
    with pytest.raises(ValueError, match="class_weight"):
        km.fit(x, y, epochs=1, verbose=0, class_weight={0: 2.0}, sample_weight=np.ones(8))
    with pytest.raises(InputDataError, match="class_weight and sample_weight"):
        om.fit(x, y, epochs=1, verbose=0, class_weight={0: 2.0}, sample_weight=np.ones(8))


def test_two_outputs_mask_only_the_masked_one_like_keras():
    def build(k):
        L = k.layers
        inp = k.Input((T,), dtype="int32")
        h = L.LSTM(5, return_sequences=True)(L.Embedding(V, 4, mask_zero=True)(inp))
        seq = L.TimeDistributed(L.Dense(C, activation="softmax"), name="seq")(h)
        last = L.Dense(1, name="last")(L.LSTM(3)(h))
        return k.Model(inp, [seq, last])

    y_last = RNG.standard_normal((B, 1)).astype(np.float32)
    km, om = _pair(build, {"seq": "sparse_categorical_crossentropy", "last": "mse"},
                   lambda lib: {"seq": ["accuracy", "mae"], "last": ["mae"]},
                   lambda lib: {"seq": ["mae"], "last": ["mae"]})
    fit = dict(batch_size=8, epochs=2, shuffle=False, verbose=0, validation_data=(XV, [YV, y_last[:7]]))
    _check(km.fit(X, [Y, y_last], sample_weight=[SW[:, None], SW], **fit).history,
           om.fit(X, [Y, y_last], sample_weight=[SW, SW], **fit).history)
    _check(km.evaluate(X, [Y, y_last], batch_size=8, verbose=0, return_dict=True),
           om.evaluate(X, [Y, y_last], batch_size=8, verbose=0, return_dict=True))


def test_custom_loss_of_one_value_per_sample_on_a_sequence_output_like_keras():
    def per_sample_mse(y_true, y_pred, ops):
        return ops.mean(ops.square(y_pred - y_true), axis=[1, 2])

    def build(k):
        L = k.layers
        return k.Sequential([k.Input((T,), dtype="int32"), L.Embedding(V, 4), L.GRU(3, return_sequences=True),
                             L.Dense(2)])

    y = RNG.standard_normal((B, T, 2)).astype(np.float32)
    keras.utils.set_random_seed(0)
    km, om = build(keras), build(core)
    om.set_weights(km.get_weights())
    km.compile(optimizer=keras.optimizers.SGD(0.1), loss=lambda a, b: per_sample_mse(a, b, keras.ops),
               weighted_metrics=["mae"])
    om.compile(optimizer=core.optimizers.SGD(0.1), loss=lambda a, b: per_sample_mse(a, b, core.ops),
               weighted_metrics=["mae"])
    fit = dict(batch_size=8, epochs=2, shuffle=False, verbose=0)
    _check(km.fit(X, y, sample_weight=SW[:, None], **fit).history, om.fit(X, y, sample_weight=SW, **fit).history)

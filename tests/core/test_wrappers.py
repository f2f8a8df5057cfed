"""Bidirectional and TimeDistributed: values against NumPy references, weights order, shapes, masks, configs and
errors."""

import numpy as np
import pytest

import core as keras
from core import layers
from core.errors import ConfigError, ShapeError
from rnn_reference import lstm_step, run_rnn

RNG = np.random.default_rng(11)
X = RNG.standard_normal((3, 5, 4)).astype(np.float32)
MASK = np.array([[1, 1, 0, 1, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]], bool)


def _lstm_ref(weights, x, **kw):
    k, r, b = weights
    zeros = np.zeros((x.shape[0], r.shape[0]), np.float32)
    return run_rnn(lambda xt, s: lstm_step(xt, s, k, r, b), x, [zeros, zeros], **kw)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
def test_bidirectional_merges_forward_and_flipped_backward(merge_mode):
    bi = layers.Bidirectional(layers.LSTM(3, return_sequences=True), merge_mode=merge_mode)
    bi.build(X.shape)
    bi.set_weights([RNG.standard_normal(w.shape).astype(np.float32) * 0.7 for w in bi.weights])
    fw, bw = bi.get_weights()[:3], bi.get_weights()[3:]
    for mask in (None, MASK):
        y = bi(X) if mask is None else bi(X, mask=mask)
        f = _lstm_ref(fw, X, mask=mask, return_sequences=True, zero_output_for_mask=mask is not None)
        b = _lstm_ref(bw, X, mask=mask, return_sequences=True, go_backwards=True,
                      zero_output_for_mask=mask is not None)[:, ::-1]
        want = {"concat": lambda: np.concatenate([f, b], -1), "sum": lambda: f + b, "mul": lambda: f * b,
                "ave": lambda: (f + b) / 2, None: lambda: [f, b]}[merge_mode]()
        for g, w in zip(y if merge_mode is None else [y], want if merge_mode is None else [want]):
            np.testing.assert_allclose(np.asarray(g), w, atol=2e-5)


def test_bidirectional_weights_states_and_param_count():
    bi = layers.Bidirectional(layers.LSTM(64, return_sequences=True), input_shape=(5, 10))
    bi.build((None, 5, 10))
    assert bi.count_params() == 38400
    assert [w.path for w in bi.weights] == [
        "forward_lstm/lstm_cell/kernel", "forward_lstm/lstm_cell/recurrent_kernel", "forward_lstm/lstm_cell/bias",
        "backward_lstm/lstm_cell/kernel", "backward_lstm/lstm_cell/recurrent_kernel", "backward_lstm/lstm_cell/bias"]
    assert bi.backward_layer.go_backwards and not bi.forward_layer.go_backwards
    inp = keras.Input(shape=(None, 4))
    out, fh, fc, bh, bc = layers.Bidirectional(layers.LSTM(3, return_state=True))(inp)
    assert out.shape == (None, 6) and fh.shape == bc.shape == (None, 3)
    seq = layers.Bidirectional(layers.GRU(2, return_sequences=True), merge_mode="sum")(inp)
    assert seq.shape == (None, None, 2)


def test_bidirectional_passes_the_mask_on_only_for_sequences():
    assert layers.Bidirectional(layers.LSTM(2, return_sequences=True)).compute_mask(None, "m") == "m"
    assert layers.Bidirectional(layers.LSTM(2)).compute_mask(None, "m") is None
    assert layers.Bidirectional(layers.LSTM(2, return_sequences=True), merge_mode=None).compute_mask(
        None, "m") == ["m", "m"]


def test_bidirectional_config_round_trip_keeps_both_layers():
    bi = layers.Bidirectional(layers.GRU(3, return_sequences=True), merge_mode="ave",
                              backward_layer=layers.GRU(3, return_sequences=True, go_backwards=True,
                                                        activation="relu", name="back"))
    config = bi.get_config()
    assert config["merge_mode"] == "ave"
    assert config["layer"]["class_name"] == "GRU" and config["layer"]["config"]["name"] == "forward_gru"
    assert config["backward_layer"]["config"]["activation"] == "relu"
    clone = layers.Bidirectional.from_config(config)
    assert clone.backward_layer.name == "back" and clone.backward_layer.go_backwards
    bi.build(X.shape)
    clone.build(X.shape)
    clone.set_weights(bi.get_weights())
    np.testing.assert_allclose(np.asarray(clone(X)), np.asarray(bi(X)), atol=1e-6)


def test_bidirectional_errors():
    with pytest.raises(ConfigError, match="merge_mode"):
        layers.Bidirectional(layers.LSTM(2), merge_mode="max")
    with pytest.raises(ConfigError, match="recurrent layer"):
        layers.Bidirectional(layers.Dense(2))
    with pytest.raises(ConfigError, match="go_backwards"):
        layers.Bidirectional(layers.LSTM(2), backward_layer=layers.LSTM(2))
    with pytest.raises(ConfigError, match="return_sequences"):
        layers.Bidirectional(layers.LSTM(2), backward_layer=layers.LSTM(2, go_backwards=True,
                                                                        return_sequences=True))
    with pytest.raises(ShapeError, match="initial_state"):
        layers.Bidirectional(layers.GRU(2))(X, initial_state=[np.zeros((3, 2), np.float32)] * 3)


def test_time_distributed_dense_folds_time_into_batch():
    td = layers.TimeDistributed(layers.Dense(2, activation="tanh"))
    y = np.asarray(td(X))
    k, b = td.get_weights()
    np.testing.assert_allclose(y, np.tanh(X @ k + b), atol=1e-6)
    assert td.count_params() == 10
    inp = keras.Input(shape=(None, 4))
    assert layers.TimeDistributed(layers.Dense(7))(inp).shape == (None, None, 7)
    model = keras.Model(inp, td(inp))
    np.testing.assert_allclose(model.predict(X[:, :2]), np.tanh(X[:, :2] @ k + b), atol=1e-6)


def test_time_distributed_on_images_and_rnn_per_step():
    imgs = RNG.standard_normal((2, 3, 4, 5, 2)).astype(np.float32)
    td = layers.TimeDistributed(layers.Dense(3))
    assert np.asarray(td(imgs)).shape == (2, 3, 4, 5, 3)
    if hasattr(layers, "Conv2D") and layers.Conv2D.__module__.endswith("convolutional"):
        conv = layers.TimeDistributed(layers.Conv2D(4, 3, padding="same"))
        inp = keras.Input(shape=(None, 4, 5, 2))
        assert conv(inp).shape == (None, None, 4, 5, 4)
    # A whole LSTM applied to each outer step of (batch, outer, inner, features).
    seqs = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
    td = layers.TimeDistributed(layers.LSTM(2))
    y = np.asarray(td(seqs))
    want = _lstm_ref(td.get_weights(), seqs.reshape(6, 4, 5)).reshape(2, 3, 2)
    np.testing.assert_allclose(y, want, atol=2e-5)


def test_time_distributed_config_and_errors():
    td = layers.TimeDistributed(layers.Dense(3, name="inner"), name="td")
    config = td.get_config()
    assert config["layer"]["class_name"] == "Dense" and config["layer"]["config"]["units"] == 3
    clone = layers.TimeDistributed.from_config(config)
    assert isinstance(clone.layer, layers.Dense) and clone.name == "td"
    with pytest.raises(ShapeError, match="rank 3"):
        layers.TimeDistributed(layers.Dense(2))(keras.Input(shape=(4,)))
    with pytest.raises(ConfigError, match="layer instance"):
        layers.TimeDistributed("dense")


def test_bidirectional_initial_weights_argument():
    ref = layers.Bidirectional(layers.LSTM(2))
    ref.build(X.shape)
    weights = [RNG.standard_normal(w.shape).astype(np.float32) for w in ref.weights]
    bi = layers.Bidirectional(layers.LSTM(2), weights=weights)
    bi.build(X.shape)
    for got, want in zip(bi.get_weights(), weights):
        np.testing.assert_array_equal(got, want)

"""A Bidirectional layer trains its two directions as one Scan with stacked states (Bidirectional._stacked_directions):
the same losses and weights as two Scans, half the loops, and the two-Scan path wherever a direction needs its own
treatment."""

import numpy as np
import pytest

import core as keras
from core import layers
from core.layers.wrappers import Bidirectional

RNG = np.random.default_rng(5)
X = RNG.standard_normal((32, 12, 5)).astype(np.float32)
Y = RNG.standard_normal((32, 1)).astype(np.float32)


def _trained(monkeypatch, stacked, make_rnn, return_sequences, merge_mode="concat", x=X, embed=False):
    monkeypatch.setattr(Bidirectional, "stack_directions", stacked)
    keras.utils.set_random_seed(0)
    inputs = keras.Input(x.shape[1:], dtype="int32" if embed else "float32")
    h = layers.Embedding(50, 5)(inputs) if embed else inputs
    h = layers.Bidirectional(make_rnn(return_sequences), merge_mode=merge_mode)(h)
    h = layers.Flatten()(h) if return_sequences else h
    model = keras.Model(inputs, layers.Dense(1)(h))
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    history = model.fit(x, Y, batch_size=8, epochs=2, verbose=0, shuffle=False)
    scans = sum(n.op_type == "Scan" for n in model._train_state["train"].program.model_proto.graph.node)
    return history.history["loss"], model.get_weights(), scans


RNNS = {"LSTM": lambda rs: layers.LSTM(6, return_sequences=rs),
        "GRU": lambda rs: layers.GRU(6, return_sequences=rs),
        "GRU reset_after=False": lambda rs: layers.GRU(6, return_sequences=rs, reset_after=False),
        "SimpleRNN": lambda rs: layers.SimpleRNN(6, return_sequences=rs)}


@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("kind", sorted(RNNS))
def test_stacked_directions_train_like_two_scans_in_half_the_loops(monkeypatch, kind, return_sequences):
    loss_a, weights_a, scans_a = _trained(monkeypatch, True, RNNS[kind], return_sequences)
    loss_b, weights_b, scans_b = _trained(monkeypatch, False, RNNS[kind], return_sequences)
    assert (scans_a, scans_b) == (2, 4)  # one forward and one backward loop instead of two of each
    # The same arithmetic per value: equal, or a rounding apart where a bias gradient sums in another order.
    np.testing.assert_allclose(loss_a, loss_b, rtol=1e-6, atol=1e-7)
    for a, b in zip(weights_a, weights_b):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("merge_mode", ["sum", "mul", "ave"])
def test_every_merge_mode_and_an_embedding_before_train_alike(monkeypatch, merge_mode):
    ids = RNG.integers(0, 50, size=(32, 12)).astype(np.int32)
    stacked = _trained(monkeypatch, True, RNNS["LSTM"], True, merge_mode, x=ids, embed=True)
    separate = _trained(monkeypatch, False, RNNS["LSTM"], True, merge_mode, x=ids, embed=True)
    assert stacked[2] == 2
    np.testing.assert_allclose(stacked[0], separate[0], rtol=1e-6, atol=1e-7)
    for a, b in zip(stacked[1], separate[1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _scans_in_step(bidirectional, x, **fit):
    inputs = keras.Input(x.shape[1:], dtype=x.dtype)
    h = layers.Embedding(50, 5, mask_zero=True)(inputs) if x.dtype == np.int32 else inputs
    out = bidirectional(h)
    out = out[0] if isinstance(out, list) else out
    model = keras.Model(inputs, layers.Dense(1)(out))
    model.compile("adam", "mse")
    model.fit(x, Y, batch_size=16, epochs=1, verbose=0, **fit)
    return sum(n.op_type == "Scan" for n in model._train_state["train"].program.model_proto.graph.node)


@pytest.mark.parametrize("case", ["mask", "return_state", "dropout", "different backward layer"])
def test_directions_that_need_their_own_loop_keep_two_scans(case):
    x = X
    if case == "mask":
        x = RNG.integers(0, 50, size=(32, 12)).astype(np.int32)
        x[:, -3:] = 0
        bi = layers.Bidirectional(layers.LSTM(4))
    elif case == "return_state":
        bi = layers.Bidirectional(layers.LSTM(4, return_state=True))
    elif case == "dropout":
        bi = layers.Bidirectional(layers.LSTM(4, dropout=0.2))
    else:
        bi = layers.Bidirectional(layers.LSTM(4), backward_layer=layers.LSTM(5, go_backwards=True))
    assert _scans_in_step(bi, x) == 4

"""`layers.RNN(cell)` against real Keras 3: the built-in cells, stacked cells and a custom cell written as in Keras's
RNN guide, forward within 1e-5 (masks, go_backwards, return_state, initial_state) and training trajectories
(history within 1e-4, weights within 1e-3). Files in both Keras generations: tests/interop/layer_models.py."""

import numpy as np
import pytest

import core
from core.layers.base import flatten
from tests.core.keras_reference import keras3  # noqa: F401  (a fixture)
from tests.interop import layer_models

RNG = np.random.default_rng(8)
X = RNG.normal(size=(3, 5, 4)).astype("float32")
X[0, 3:] = 0  # right padding
X[1, :2] = 0  # left padding: Keras's masking holds for any mask


def minimal_rnn_cell(lib):
    """The custom cell of Keras's RNN guide, written once for either library."""

    class MinimalRNNCell(lib.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.state_size = units

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="uniform", name="kernel")
            self.recurrent_kernel = self.add_weight(shape=(self.units, self.units), initializer="uniform",
                                                    name="recurrent_kernel")

        def call(self, inputs, states):
            output = lib.ops.tanh(lib.ops.matmul(inputs, self.kernel) + lib.ops.matmul(states[0],
                                                                                      self.recurrent_kernel))
            return output, [output]

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    return MinimalRNNCell


CELLS = {
    "lstm": lambda lib: lib.layers.LSTMCell(3),
    "gru": lambda lib: lib.layers.GRUCell(3, reset_after=False),
    "simple": lambda lib: lib.layers.SimpleRNNCell(3, activation="relu"),
    "stacked": lambda lib: [lib.layers.LSTMCell(3), lib.layers.GRUCell(2), lib.layers.SimpleRNNCell(4)],
    "custom": lambda lib: minimal_rnn_cell(lib)(3),
    "custom_stacked": lambda lib: [minimal_rnn_cell(lib)(3), lib.layers.LSTMCell(2)],
}
OPTIONS = [{}, {"return_sequences": True, "go_backwards": True}, {"return_state": True},
           {"return_sequences": True, "zero_output_for_mask": True}]


@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(sorted(o)) or "default")
@pytest.mark.parametrize("cell", list(CELLS))
def test_rnn_matches_keras3(keras3, cell, options, masked):
    def build(lib):
        x = lib.Input((5, 4))
        h = lib.layers.Masking()(x) if masked else x
        return lib.Model(x, lib.layers.RNN(CELLS[cell](lib), **options)(h))

    ref, ours = build(keras3), build(core)
    weights = [RNG.normal(0, 0.5, w.shape).astype("float32") for w in ref.get_weights()]
    ref.set_weights(weights)
    ours.set_weights(weights)
    expected, got = flatten([ref.predict(X, verbose=0)]), flatten([ours.predict(X, verbose=0)])
    assert [g.shape for g in got] == [e.shape for e in expected]
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, atol=1e-5, rtol=1e-5)


def test_initial_state_and_returned_state_structure_match_keras3(keras3):
    def build(lib):
        x, h0, c0, g0 = lib.Input((5, 4)), lib.Input((3,)), lib.Input((3,)), lib.Input((2,))
        out = lib.layers.RNN([lib.layers.LSTMCell(3), lib.layers.GRUCell(2)], return_state=True)(
            x, initial_state=[[h0, c0], g0])  # nested per cell, as Keras takes them
        return lib.Model([x, h0, c0, g0], out)

    ref, ours = build(keras3), build(core)
    assert [type(o).__name__ for o in ours.outputs] == ["KerasTensor"] * 4
    ours.set_weights(ref.get_weights())
    inputs = [X] + [RNG.normal(size=(3, n)).astype("float32") for n in (3, 3, 2)]
    for g, e in zip(flatten([ours.predict(inputs, verbose=0)]), flatten([ref.predict(inputs, verbose=0)])):
        np.testing.assert_allclose(g, e, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "custom_stacked"])
def test_rnn_trains_like_keras3(keras3, cell):
    """RNN(LSTMCell) and a custom cell stacked on an LSTMCell train through the Scan gradient like Keras."""
    x = RNG.normal(size=(32, 6, 4)).astype("float32")
    y = RNG.normal(size=(32, 2)).astype("float32")

    def build(lib):
        inp = lib.Input((6, 4))
        h = lib.layers.RNN(CELLS[cell](lib), return_sequences=True)(inp)
        h = lib.layers.RNN(lib.layers.GRUCell(4))(h)
        return lib.Model(inp, lib.layers.Dense(2)(h))

    layer_models.train_both_like_keras(keras3, build, x, y)

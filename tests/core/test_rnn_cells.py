"""`layers.RNN(cell)` and `StackedRNNCells` without real Keras: what a custom cell must have, bad states and inputs,
configs (a registered custom cell included), the palette, ports and document, ONNX export and training (the
comparisons with Keras: tests/interop/test_rnn_cells_keras.py)."""

import numpy as np
import pytest

import core as keras
from core import layer_schema, layers, ops
from core.document import Document
from core.errors import ConfigError, ShapeError
from exporters.keras_config import model_from_json, to_json

RNG = np.random.default_rng(12)
X = RNG.normal(size=(2, 5, 4)).astype("float32")


class NoStateCell(layers.Layer):
    def call(self, inputs, states):
        return inputs, states


class TwoStateCell(layers.Layer):
    """A cell with two states of different sizes that returns the wrong number of them when `broken`."""

    def __init__(self, broken=False, **kwargs):
        super().__init__(**kwargs)
        self.broken = broken
        self.state_size = [3, 2]
        self.output_size = 3

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")

    def call(self, inputs, states):
        h = ops.tanh(ops.add(ops.matmul(inputs, self.kernel), states[0]))
        counter = ops.add(states[1], 1.0)
        return h, ([h] if self.broken else [h, counter])

    def get_config(self):
        return {**super().get_config(), "broken": self.broken}


def test_a_cell_without_state_size_is_refused_with_what_keras_expects():
    with pytest.raises(ConfigError, match=r"NoStateCell has no state_size.*`state_size` attribute.*call\(inputs, "
                                          r"states\)"):
        layers.RNN(NoStateCell())
    with pytest.raises(ConfigError, match="must be a cell layer"):
        layers.RNN("lstm")


def test_custom_cell_states_of_different_sizes():
    rnn = layers.RNN(TwoStateCell(), return_state=True)
    out, h, counter = rnn(X)
    assert out.shape == (2, 3) and h.shape == (2, 3) and counter.shape == (2, 2)
    np.testing.assert_allclose(np.asarray(counter), 5.0)  # one per step
    with pytest.raises(ConfigError, match=r"has 2 state\(s\).*returned 1"):
        layers.RNN(TwoStateCell(broken=True))(X)


def test_bad_inputs_and_initial_states_are_named():
    with pytest.raises(ShapeError, match=r"RNN 'r' expects inputs of shape \(batch, time, features\), got shape "
                                         r"\(2, 4\)"):
        layers.RNN(layers.GRUCell(3), name="r")(X[:, 0])
    with pytest.raises(ShapeError, match=r"'r' has 2 state\(s\).*initial_state has 1"):
        layers.RNN(layers.LSTMCell(3), name="r")(X, initial_state=[np.zeros((2, 3), "float32")])
    with pytest.raises(ShapeError, match=r"initial_state\[2\] must have shape \(batch, 2\), got \(2, 3\)"):
        layers.RNN([layers.LSTMCell(3), layers.GRUCell(2)], name="r")(
            X, initial_state=[np.zeros((2, 3), "float32")] * 3)
    with pytest.raises(ConfigError, match="stateful"):
        layers.RNN(layers.GRUCell(3), stateful=True)


def test_weights_are_named_and_ordered_as_in_keras():
    rnn = layers.RNN([layers.GRUCell(2, name="gru_cell"), layers.SimpleRNNCell(3, name="simple_rnn_cell")],
                     name="r2")
    rnn(X)
    assert [w.shape for w in rnn.weights] == [(4, 6), (2, 6), (2, 6), (2, 3), (3, 3), (3,)]
    assert rnn.count_params() == 24 + 12 + 12 + 6 + 9 + 3


def test_configs_round_trip_with_a_registered_custom_cell():
    keras.register_keras_serializable("Tests")(TwoStateCell)
    inp = keras.Input((5, 4))
    h = layers.RNN(layers.LSTMCell(3), return_sequences=True, go_backwards=True)(inp)
    out = layers.RNN([TwoStateCell(), layers.GRUCell(2)], zero_output_for_mask=True)(h)
    model = keras.Model(inp, out)
    for target in ("keras3", "tf_keras2"):
        back = model_from_json(to_json(model, target))
        back.set_weights(model.get_weights())
        np.testing.assert_allclose(back.predict(X, verbose=0), model.predict(X, verbose=0), atol=1e-6)
        cell = back.layers[2].cell
        assert type(cell).__name__ == "StackedRNNCells" and type(cell.cells[0]) is TwoStateCell


def test_palette_ports_and_document():
    assert "RNN" in layer_schema.palette()["Recurrent"]
    assert "StackedRNNCells" not in sum(layer_schema.palette().values(), [])
    config = dict(layer_schema.default_config("RNN"), return_state=True)
    assert [p.name for p in layer_schema.output_ports("RNN", config)] == ["output", "state h", "state c"]
    stacked = {"cell": {"class_name": "StackedRNNCells", "config": {"cells": [
        {"class_name": "LSTMCell", "config": {"units": 3}}, {"class_name": "GRUCell", "config": {"units": 2}}]}},
        "return_state": True}
    assert len(layer_schema.input_ports("RNN", stacked)) == 1 + 3
    inp = keras.Input((5, 4), name="x")
    out = layers.RNN(layers.LSTMCell(3), return_sequences=True, name="r")(layers.Masking(name="m")(inp))
    doc = Document.from_model(keras.Model(inp, layers.GlobalAveragePooling1D(name="p")(out)))
    info = doc.analyze()
    rnn = next(nid for nid, n in doc.nodes.items() if n.class_name == "RNN")
    assert info[rnn].outputs[0].shape == (None, 5, 3) and info[rnn].outputs[0].masked
    assert info[rnn].params == 4 * 12 + 3 * 12 + 12


def test_onnx_export_and_training(tmp_path):
    from exporters.onnx_export import export_onnx, run_onnx

    inp = keras.Input((5, 4))
    h = layers.RNN(layers.LSTMCell(6), return_sequences=True)(layers.Masking()(inp))
    h = layers.RNN([TwoStateCell(), layers.SimpleRNNCell(3)])(h)
    model = keras.Model(inp, layers.Dense(2)(h))
    x = RNG.normal(size=(16, 5, 4)).astype("float32")
    x[:4, 3:] = 0
    export_onnx(model, tmp_path / "rnn.onnx")
    np.testing.assert_allclose(run_onnx(tmp_path / "rnn.onnx", [x])[0], model.predict(x, verbose=0), atol=1e-5)
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(x, RNG.normal(size=(16, 2)).astype("float32"), epochs=4, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]

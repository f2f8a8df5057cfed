"""Training through the recurrence (the Scan's reverse-mode rule) reproduces a real Keras 3 run: the
Bidirectional(GRU) -> SimpleRNN trajectory in fixtures/keras/trajectories, history to 1e-4 and final weights to 1e-3."""

import json

import numpy as np

import core as keras
from core import layers


def test_bidirectional_gru_simple_rnn_trajectory(fixtures_dir):
    case = "traj_gru_bidir_adam"
    folder = fixtures_dir / "trajectories"
    meta = json.loads((folder / "trajectories.json").read_text())["cases"][case]
    config = json.loads((folder / f"{case}.json").read_text())["config"]["layers"]
    assert [c["class_name"] for c in config] == ["InputLayer", "Bidirectional", "SimpleRNN", "Dense"]
    gru = config[1]["config"]["layer"]["config"]
    rnn, dense = config[2]["config"], config[3]["config"]
    model = keras.Sequential([
        layers.Input(shape=tuple(config[0]["config"]["batch_shape"][1:])),
        layers.Bidirectional(layers.GRU(gru["units"], return_sequences=gru["return_sequences"],
                                        reset_after=gru["reset_after"]),
                             merge_mode=config[1]["config"]["merge_mode"]),
        layers.SimpleRNN(rnn["units"], activation=rnn["activation"]),
        layers.Dense(dense["units"], activation=dense["activation"]),
    ])
    w0 = np.load(folder / f"{case}.initial_weights.npz")
    w1 = np.load(folder / f"{case}.final_weights.npz")
    model.set_weights([w0[f"arr_{i}"] for i in range(len(w0.files))])
    data = np.load(folder / f"{case}_data.npz")
    c = meta["compile"]
    model.compile(optimizer=keras.optimizers.get(c["optimizer"]), loss=c["loss"], metrics=c["metrics"])
    history = model.fit(data["x0"], data["y0"], shuffle=False, verbose=0, **meta["fit"])
    for key, expected in meta["history"].items():
        np.testing.assert_allclose(history.history[key], expected, rtol=1e-4, err_msg=key)
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, w1[f"arr_{i}"], rtol=1e-3, atol=1e-5, err_msg=f"weight {i}")


def _trained_step_graph(rnn, optimizer="adam"):
    """The training step graph of Input(6, 3) -> rnn -> Dense(2) after one step."""
    model = keras.Sequential([layers.Input(shape=(6, 3)), rnn, layers.Dense(2)])
    model.compile(optimizer=optimizer, loss="mse")
    rng = np.random.default_rng(0)
    model.fit(rng.standard_normal((4, 6, 3)).astype(np.float32), rng.standard_normal((4, 2)).astype(np.float32),
              verbose=0)
    return model._train_state["train"].program.model_proto.graph


def _forward_body(graph):
    scan = next(n for n in graph.node if n.op_type == "Scan")
    return next(a.g for a in scan.attribute if a.name == "body")


def test_lstm_backward_reads_the_forward_products_instead_of_the_incoming_cell_state():
    """c₋₁·f(1 - f) is taken as (f·c₋₁)(1 - f) and g·i(1 - i) as (i·g)(1 - i), from products the forward step
    computes anyway: the incoming cell state is not copied out every step, and the forward step records both
    products (the gradient itself is checked against Keras and finite differences elsewhere)."""
    body = _forward_body(_trained_step_graph(layers.LSTM(4)))
    h_in, c_in = body.input[0].name, body.input[1].name
    copies = [n.input[0] for n in body.node if n.op_type == "Identity"]
    assert copies == [h_in]  # h₋₁ stays recorded: dR = sum_t h₋₁ᵀ dZ is one product after the loop
    producer = {o: n for n in body.node for o in n.output}
    recorded = {o.name for o in body.output[2:]}
    products = [producer[o] for o in recorded if producer[o].op_type == "Mul"]
    assert any(c_in in n.input for n in products)  # f·c₋₁
    assert any({getattr(producer.get(i), "op_type", None) for i in n.input} == {"Sigmoid", "Tanh"}
               for n in products)  # i·g


def test_gru_backward_reads_one_minus_z_and_the_reset_product_from_the_forward_step():
    body = _forward_body(_trained_step_graph(layers.GRU(4)))
    producer = {o: n for n in body.node for o in n.output}
    recorded = [producer[o.name] for o in body.output[1:] if o.name in producer]
    assert any(n.op_type == "Sub" and getattr(producer.get(n.input[1]), "op_type", None) == "Sigmoid"
               for n in recorded)  # 1 - z
    assert any(n.op_type == "Mul" and "Split" in {producer[i].op_type for i in n.input if i in producer}
               for n in recorded)  # r·(h R_h + b_h)


def test_optimizers_that_read_an_embeddings_per_lookup_rows():
    """The step graph builds an embedding's per-lookup rows (and takes its gradient from them) only for an
    optimizer that reads them: not SGD, and not where clipping or gradient accumulation make the gradient dense."""
    opt = keras.optimizers
    assert opt.Adam().reads_lookup_rows and opt.RMSprop().reads_lookup_rows and opt.Adamax().reads_lookup_rows
    assert not opt.SGD().reads_lookup_rows
    assert not opt.Adam(clipnorm=1.0).reads_lookup_rows
    assert not opt.Adam(gradient_accumulation_steps=2).reads_lookup_rows

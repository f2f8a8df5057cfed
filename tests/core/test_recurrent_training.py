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

"""Training reproduces real Keras 3 runs (fixtures/keras/trajectories): per-epoch history to 1e-4 relative and the
final weights to 1e-3, starting from Keras's initial weights with the same compile and fit arguments."""

import json

import numpy as np
import pytest

import core as keras

CASES = ["traj_mlp_sgd", "traj_mlp_adam_mse", "traj_lstm_rmsprop", "traj_gru_bidir_adam"]


@pytest.mark.parametrize("case", CASES)
def test_trajectory(fixtures_dir, case):
    folder = fixtures_dir / "trajectories"
    meta = json.loads((folder / "trajectories.json").read_text())["cases"][case]
    data = np.load(folder / f"{case}_data.npz")
    w0 = np.load(folder / f"{case}.initial_weights.npz")
    w1 = np.load(folder / f"{case}.final_weights.npz")
    model = keras.models.model_from_json((folder / f"{case}.json").read_text())
    model.set_weights([w0[f"arr_{i}"] for i in range(len(w0.files))])
    c = meta["compile"]
    model.compile(optimizer=keras.optimizers.get(c["optimizer"]), loss=c["loss"], metrics=c["metrics"])
    xs = [data[k] for k in sorted(data.files) if k.startswith("x")]
    ys = [data[k] for k in sorted(data.files) if k.startswith("y")]
    history = model.fit(xs if len(xs) > 1 else xs[0], ys if len(ys) > 1 else ys[0], shuffle=False, verbose=0,
                        **meta["fit"])
    assert set(history.history) == set(meta["history"])
    for key, expected in meta["history"].items():
        np.testing.assert_allclose(history.history[key], expected, rtol=1e-4, err_msg=key)
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, w1[f"arr_{i}"], rtol=1e-3, atol=1e-5, err_msg=f"weight {i}")

"""Training reproduces real Keras 3 runs (fixtures/keras/trajectories): per-epoch history to 1e-4 relative and the
final weights to 1e-3, starting from Keras's initial weights with the same compile and fit arguments."""

import json

import numpy as np
import pytest

import core as keras
from core import layers


def _mlp_from_json(path):
    """The trajectory's Sequential MLP, built in code from its to_json() (Dense layers only)."""
    config = json.loads(path.read_text())["config"]["layers"]
    model = keras.Sequential([layers.Input(shape=tuple(config[0]["config"]["batch_shape"][1:]))])
    for layer in config[1:]:
        assert layer["class_name"] == "Dense", layer["class_name"]
        c = layer["config"]
        model.add(layers.Dense(c["units"], activation=c["activation"], use_bias=c["use_bias"],
                               kernel_regularizer=keras.regularizers.get(c["kernel_regularizer"]),
                               bias_regularizer=keras.regularizers.get(c["bias_regularizer"]), name=c["name"]))
    return model


@pytest.mark.parametrize("case", ["traj_mlp_sgd", "traj_mlp_adam_mse"])
def test_mlp_trajectory(fixtures_dir, case):
    folder = fixtures_dir / "trajectories"
    meta = json.loads((folder / "trajectories.json").read_text())["cases"][case]
    data = np.load(folder / f"{case}_data.npz")
    w0 = np.load(folder / f"{case}.initial_weights.npz")
    w1 = np.load(folder / f"{case}.final_weights.npz")
    model = _mlp_from_json(folder / f"{case}.json")
    model.set_weights([w0[f"arr_{i}"] for i in range(len(w0.files))])
    c = meta["compile"]
    model.compile(optimizer=keras.optimizers.get(c["optimizer"]), loss=c["loss"], metrics=c["metrics"])
    history = model.fit(data["x0"], data["y0"], shuffle=False, verbose=0, **meta["fit"])
    assert set(history.history) == set(meta["history"])
    for key, expected in meta["history"].items():
        np.testing.assert_allclose(history.history[key], expected, rtol=1e-4, err_msg=key)
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, w1[f"arr_{i}"], rtol=1e-3, atol=1e-5, err_msg=f"weight {i}")

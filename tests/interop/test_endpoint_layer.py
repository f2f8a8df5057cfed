"""The endpoint-layer pattern trains as in real Keras 3: losses added with `add_loss` and a metric updated inside a
layer's `call`, `compile()` given no loss, data as a dict keyed by input name (keras-io's endpoint_layer_pattern)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import core as keras
from tests.interop.endpoint_runner import endpoint_data, endpoint_model

RUNNER = Path(__file__).with_name("endpoint_runner.py")


@pytest.fixture(scope="module")
def keras_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("endpoint") / "keras3.npz"
    proc = subprocess.run([sys.executable, str(RUNNER), str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"Keras 3 runner failed:\n{proc.stderr[-3000:]}"
    with np.load(out) as data:
        return {k: data[k] for k in data.files}


def test_endpoint_layer_trains_like_keras(keras_run):
    model = endpoint_model(keras)
    n_weights = len(model.get_weights())
    model.set_weights([keras_run[f"initial_{i}"] for i in range(n_weights)])
    data = endpoint_data()
    model.compile(keras.optimizers.Adam(0.05))
    history = model.fit(data, epochs=3, batch_size=16, shuffle=False, verbose=0).history

    assert sorted(history) == ["accuracy", "loss"]
    for name, values in history.items():
        np.testing.assert_allclose(values, keras_run[f"history_{name}"], atol=1e-4, err_msg=name)
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, keras_run[f"trained_{i}"], atol=1e-3)
    evaluated = model.evaluate(data, batch_size=16, verbose=0, return_dict=True)
    assert sorted(evaluated) == ["accuracy", "loss"]
    for name, value in evaluated.items():
        np.testing.assert_allclose(value, keras_run[f"evaluate_{name}"], atol=1e-4, err_msg=name)
    np.testing.assert_allclose(model.predict(data, verbose=0), keras_run["predict"], atol=1e-4)

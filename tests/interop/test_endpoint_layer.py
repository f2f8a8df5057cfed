"""The endpoint-layer pattern trains as in real Keras: losses added with `add_loss` and metrics reported from inside
a layer's `call` (Keras 3's metric `update_state`, tf.keras 2's `add_metric`), `compile()` given no loss, data as a
dict keyed by input name, in a Functional model and in a subclassed one (keras-io's endpoint_layer_pattern)."""

from pathlib import Path

import numpy as np
import pytest

import core as keras
from core import ops
from tests.interop.keras_subprocess import run_all
from tests.interop.endpoint_runner import BATCH_SIZE, endpoint_data, endpoint_model

RUNNER = Path(__file__).with_name("endpoint_runner.py")
CASES = [("keras3", "functional"), ("tf_keras2", "functional"), ("keras3", "subclassed")]


@pytest.fixture(scope="module")
def keras_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("endpoint")
    runs = run_all({case: (RUNNER, [*case, folder / f"{'_'.join(case)}.npz"], folder / f"{'_'.join(case)}.npz")
                    for case in CASES})
    return runs


@pytest.mark.parametrize("target,style", CASES, ids=["-".join(c) for c in CASES])
def test_endpoint_layer_trains_like_keras(keras_runs, target, style):
    run = keras_runs[(target, style)]
    model = endpoint_model(keras, style, keras2_metrics=target == "tf_keras2",
                           ops=keras if target == "tf_keras2" else ops)  # `import core as tf` for tf.keras 2
    data = endpoint_data()
    if style == "subclassed":
        model({k: v[:2] for k, v in data.items()})
    n_weights = len(model.get_weights())
    model.set_weights([run[f"initial_{i}"] for i in range(n_weights)])
    model.compile(keras.optimizers.Adam(0.05))
    history = model.fit(data, epochs=3, batch_size=BATCH_SIZE[target], shuffle=False, verbose=0).history

    expected_names = sorted(k[len("history_"):] for k in run if k.startswith("history_"))
    assert sorted(history) == expected_names
    for name, values in history.items():
        np.testing.assert_allclose(values, run[f"history_{name}"], atol=1e-4, err_msg=name)
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, run[f"trained_{i}"], atol=1e-3)
    evaluated = model.evaluate(data, batch_size=BATCH_SIZE[target], verbose=0, return_dict=True)
    assert sorted(evaluated) == expected_names
    for name, value in evaluated.items():
        np.testing.assert_allclose(value, run[f"evaluate_{name}"], atol=1e-4, err_msg=name)
    np.testing.assert_allclose(model.predict(data, verbose=0), run["predict"], atol=1e-4)

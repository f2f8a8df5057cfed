"""The activation and attention layers against real Keras: forward within 1e-5 for each layer and its main options,
training trajectories, and files in both directions (ours load in each real Keras and predict what we predict; theirs
load here and predict what Keras predicted)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import core
from tests.core.keras_reference import assert_layer_matches_keras, keras3  # noqa: F401  (a fixture)
from tests.interop import layer_models

RUNNER = Path(__file__).with_name("layer_models_runner.py")
KINDS = {"keras3": [".keras", ".h5"], "tf_keras2": [".h5"]}
FILE_CASES = [(t, n, k) for n, (_, _, gens) in layer_models.MODELS.items() for t in gens for k in KINDS[t]]
RNG = np.random.default_rng(4)


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    """(our predictions, {target: what that Keras gave}, workdir), both Kerases run once, side by side."""
    from core import backend

    tmp = tmp_path_factory.mktemp("layer_models")
    ours, jobs = {}, {t: [] for t in KINDS}
    for name, (_, _, generations) in layer_models.MODELS.items():
        for target in generations:
            backend.clear_session()
            model = layer_models.build(core, target, name)
            layer_models.randomize(model)
            ours[(target, name)] = [np.asarray(o) for o in core.layers.base.flatten(
                model.predict(*layer_models.inputs_for(name), verbose=0))]
            for kind in KINDS[target]:
                path = tmp / f"{name}_{target}_ours{kind}"
                model.save(str(path), target=target)
                jobs[target].append({"id": f"{name}{kind}", "path": str(path), "name": name})
    procs = {}
    for target, target_jobs in jobs.items():
        (tmp / f"jobs_{target}.json").write_text(json.dumps(target_jobs))
        procs[target] = subprocess.Popen([sys.executable, str(RUNNER), target, str(tmp), str(tmp / f"jobs_{target}.json")],
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    theirs = {}
    for target, proc in procs.items():
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{target} runner failed:\n{stderr[-3000:]}"
        with np.load(tmp / f"out_{target}.npz") as data:
            theirs[target] = {k: data[k] for k in data.files}
    return ours, theirs, tmp


@pytest.mark.parametrize("target,name,kind", FILE_CASES, ids=[f"{t}-{n}-{k}" for t, n, k in FILE_CASES])
def test_our_file_loads_in_real_keras_and_predicts_the_same(keras_files, target, name, kind):
    ours, theirs, _ = keras_files
    results = theirs[target]
    assert f"ours__{name}{kind}__error" not in results, results.get(f"ours__{name}{kind}__error")
    for i, mine in enumerate(ours[(target, name)]):
        np.testing.assert_allclose(results[f"ours__{name}{kind}__{i}"], mine, atol=1e-5, rtol=0)


@pytest.mark.parametrize("target,name,kind", FILE_CASES, ids=[f"{t}-{n}-{k}" for t, n, k in FILE_CASES])
def test_file_made_by_real_keras_loads_here(keras_files, target, name, kind):
    from core.models import load_model

    _, theirs, tmp = keras_files
    results = theirs[target]
    assert f"theirs__{name}__error" not in results, results.get(f"theirs__{name}__error")
    model = load_model(str(tmp / f"{name}_{target}_theirs{kind}"), compile=False)
    got = core.layers.base.flatten(model.predict(*layer_models.inputs_for(name), verbose=0))
    for i, mine in enumerate(got):
        np.testing.assert_allclose(mine, results[f"theirs__{name}__{i}"], atol=1e-5, rtol=0)


# -- activation layers, forward ------------------------------------------------------------------------------------
ACTIVATION_CASES = [
    ("ReLU", {}), ("ReLU", {"max_value": 2.0}), ("ReLU", {"negative_slope": 0.1}), ("ReLU", {"threshold": 1.0}),
    ("ReLU", {"max_value": 6.0}), ("ReLU", {"max_value": 2.5, "negative_slope": 0.2, "threshold": 0.5}),
    ("LeakyReLU", {}), ("LeakyReLU", {"negative_slope": 0.05}),
    ("PReLU", {"alpha_initializer": "random_normal"}), ("PReLU", {"alpha_initializer": "ones", "shared_axes": [1]}),
    ("PReLU", {"alpha_initializer": "random_normal", "shared_axes": [1, 2]}),
    ("ELU", {}), ("ELU", {"alpha": 0.5}),
    ("Softmax", {}), ("Softmax", {"axis": 1}), ("Softmax", {"axis": [1, 2]}),
]


@pytest.mark.parametrize("class_name,config", ACTIVATION_CASES, ids=[f"{c}-{k}" for c, k in ACTIVATION_CASES])
def test_activation_layer_matches_keras3(keras3, class_name, config):
    x = RNG.normal(size=(3, 4, 5)).astype("float32") * 3
    x[0, 0, :3] = [1.0, 0.5, 0.0]  # exactly at the thresholds: Keras keeps only x > threshold
    assert_layer_matches_keras(keras3, class_name, config, x, dynamic_axes=(1,))


@pytest.mark.parametrize("axis", [-1, 1, [1, 2]])
def test_softmax_with_a_mask_matches_keras3(keras3, axis):
    x = RNG.normal(size=(2, 3, 4)).astype("float32")
    mask = RNG.random((2, 3, 4)) > 0.4
    mask[0, 0] = False  # a fully masked row gives zeros, not a uniform distribution
    expected = np.asarray(keras3.layers.Softmax(axis=axis)(x, mask=mask))
    got = core.layers.Softmax(axis=axis)(x, mask=mask)
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-6)
    # a mask broadcast from the right (one per key), as attention scores use it
    key_mask = RNG.random((2, 1, 4)) > 0.3
    np.testing.assert_allclose(np.asarray(core.layers.Softmax()(x, mask=key_mask)),
                               np.asarray(keras3.layers.Softmax()(x, mask=key_mask)), atol=1e-6)


def test_thresholded_relu_matches_tf_keras2():
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    tf_keras = pytest.importorskip("tf_keras")
    x = RNG.normal(size=(4, 6)).astype("float32") * 2
    x[0, :2] = [0.7, 0.0]
    for theta in (0.7, 0.0):
        np.testing.assert_allclose(np.asarray(core.layers.ThresholdedReLU(theta=theta)(x)),
                                   np.asarray(tf_keras.layers.ThresholdedReLU(theta=theta)(x)), atol=0)


def test_activation_layers_train_like_keras3(keras3):
    """PReLU's slopes learn; every activation layer's gradient follows Keras 3 (two epochs of Adam)."""
    x = RNG.normal(size=(48, 6)).astype("float32")
    y = RNG.normal(size=(48, 3)).astype("float32")

    def build(lib):
        inp = lib.Input((6,))
        h = lib.layers.Dense(8)(inp)
        h = lib.layers.PReLU(alpha_initializer=lib.initializers.Constant(0.25))(h)
        h = lib.layers.Dense(8)(h)
        h = lib.layers.ReLU(max_value=2.0, negative_slope=0.1, threshold=0.1)(h)
        h = lib.layers.Dense(8)(h)
        h = lib.layers.ELU(alpha=0.8)(h)
        h = lib.layers.LeakyReLU(negative_slope=0.2)(lib.layers.Dense(8)(h))
        h = lib.layers.Softmax()(lib.layers.Dense(8)(h))
        return lib.Model(inp, lib.layers.Dense(3)(h))

    keras3.utils.set_random_seed(0)
    ref, ours = build(keras3), build(core)
    ours.set_weights(ref.get_weights())
    ref.compile(optimizer=keras3.optimizers.Adam(0.01), loss="mse")
    ours.compile(optimizer=core.optimizers.Adam(0.01), loss="mse")
    kh = ref.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    oh = ours.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    np.testing.assert_allclose(oh["loss"], kh["loss"], rtol=1e-4)
    for got, want in zip(ours.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)
    assert not np.allclose(ours.layers[2].get_weights()[0], 0.25)  # the PReLU slopes moved

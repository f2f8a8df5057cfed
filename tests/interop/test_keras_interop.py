"""Files Netweaver writes for a target load in that real Keras and predict what Netweaver predicts.

Keras 3 (`import keras`, TensorFlow backend) and tf.keras 2 (`import tf_keras`) each run once, in a subprocess
(`keras_runner.py`), over every file written for them. The architectures are every reference fixture
(`FIXTURE_ARCHITECTURES`, pinned) and two models built here.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.fixture_utils import (FIXTURE_ARCHITECTURES, default_fixtures_dir, fixture_io, load_fixture_model,
                                 predict_list)

RUNNER = Path(__file__).with_name("keras_runner.py")
FIXTURES = default_fixtures_dir()
# json: the config plus the target's usual weights file (Keras 3: NAME.weights.h5, tf.keras 2: legacy NAME_weights.h5);
# json_v3weights: tf.keras 2 reading the newer .weights.h5 layout, which it also understands.
TARGET_KINDS = {"keras3": ["json", "h5", "keras", "script"],
                "tf_keras2": ["json", "json_v3weights", "h5", "script"]}

NAMES = list(FIXTURE_ARCHITECTURES)
# Built here rather than read from a fixture: a Functional model called twice inside another (shared, so two inbound
# nodes), a nested Sequential and a shared Dense layer, where the Kerases count node indices differently.
NESTED = "nested_shared"
# Also built here: layers with non-trainable weights and sublayers (BatchNormalization's moving statistics,
# Bidirectional GRU cells, TimeDistributed), whose weight order and .weights.h5 paths must match Keras's.
ZOO = "layer_zoo"
SYNTHETIC = [NESTED, ZOO]
CASES = [(t, n, k) for t, kinds in TARGET_KINDS.items() for n in NAMES + SYNTHETIC for k in kinds]


def _layer_zoo_model():
    import core as keras
    from core import layers

    x = keras.Input((6, 5), name="seq")
    h = layers.BatchNormalization(name="bn")(x)
    h = layers.Bidirectional(layers.GRU(4, return_sequences=True), name="bigru")(h)
    h = layers.LayerNormalization(name="ln")(h)
    h = layers.TimeDistributed(layers.Dense(3), name="td")(h)
    h = layers.Conv1D(4, 3, padding="same", name="conv")(h)
    h = layers.GlobalAveragePooling1D(name="gap")(h)
    model = keras.Model(x, layers.Dense(2, name="head")(h), name="zoo")
    rng = np.random.default_rng(11)
    for layer in model.layers:  # random weights, positive variances: BatchNormalization must not be the identity
        layer.set_weights([np.abs(w) + 0.5 if "variance" in v.name else rng.normal(0, 0.5, w.shape)
                           for v, w in zip(layer.weights, layer.get_weights())])
    return model


def _nested_shared_model():
    import core as keras
    from core import layers

    inner_in = keras.Input((4,), name="inner_in")
    inner = keras.Model(inner_in, layers.Dense(3, activation="tanh", name="idense")(inner_in), name="inner")
    seq = keras.Sequential([keras.Input((3,)), layers.Dense(2, name="sdense")], name="seqm")
    x = keras.Input((4,), name="x")
    a = inner(x)
    b = inner(layers.Dense(4, name="pre")(x))
    shared = layers.Dense(3, activation="relu", name="shared")
    y = seq(shared(shared(layers.Add(name="add")([a, b]))))
    return keras.Model(x, y, name="outer")


def _write(model, target: str, kind: str, base: Path) -> dict:
    if kind == "script":  # exporters.python_source: a Keras script that rebuilds the model, plus its weights
        from exporters.python_source import export_python_source

        script = export_python_source(model, base.with_suffix(".py"), target=target)
        weights = str(base) + (".weights.h5" if target == "keras3" else "_weights.h5")
        model.save_weights(weights, target=target)
        return {"model": str(script), "weights": weights}
    if kind.startswith("json"):
        (base.with_suffix(".json")).write_text(model.to_json(target=target))
        weights = str(base) + (".weights.h5" if target == "keras3" or kind == "json_v3weights" else "_weights.h5")
        model.save_weights(weights, target=target)
        return {"model": str(base.with_suffix(".json")), "weights": weights}
    path = str(base) + (".h5" if kind == "h5" else ".keras")
    model.save(path, target=target)
    return {"model": path, "weights": None}


@pytest.fixture(scope="module")
def keras_results(tmp_path_factory):
    """{target: (ours, theirs)}: our predictions and what real Keras predicted from our files."""
    from core import backend

    tmp = tmp_path_factory.mktemp("interop")
    jobs = {t: [] for t in TARGET_KINDS}
    ours = {}
    for name in NAMES + SYNTHETIC:
        backend.clear_session()
        if name in SYNTHETIC:
            model = _nested_shared_model() if name == NESTED else _layer_zoo_model()
            shape = (6, 4) if name == NESTED else (6, 6, 5)
            inputs = [np.random.default_rng(7).random(shape).astype("float32")]
        else:
            model = load_fixture_model(FIXTURES, "keras3", name)
            inputs, _ = fixture_io(FIXTURES, "keras3", name)
        model.compile(optimizer="adam", loss="mse")  # so .h5/.keras carry a training config for Keras to read
        np.savez(tmp / f"{name}_in.npz", **{f"input_{i}": a for i, a in enumerate(inputs)})
        ours[name] = predict_list(model, inputs)
        for target, kinds in TARGET_KINDS.items():
            for kind in kinds:
                job = _write(model, target, kind, tmp / f"{name}_{target}_{kind}")
                jobs[target].append(dict(job, id=f"{name}_{kind}", kind=kind, inputs=str(tmp / f"{name}_in.npz")))
    procs = {}
    for target, target_jobs in jobs.items():  # both Kerases at once: each spends most of its time importing TF
        jobs_path = tmp / f"jobs_{target}.json"
        jobs_path.write_text(json.dumps(target_jobs))
        procs[target] = subprocess.Popen([sys.executable, str(RUNNER), target, str(jobs_path),
                                          str(tmp / f"out_{target}.npz")],
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    theirs = {}
    for target, proc in procs.items():
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{target} runner failed:\n{stderr[-3000:]}"
        with np.load(tmp / f"out_{target}.npz") as data:
            theirs[target] = {k: data[k] for k in data.files}
    return ours, theirs, tmp


@pytest.mark.parametrize("target,name,kind", CASES, ids=[f"{t}-{n}-{k}" for t, n, k in CASES])
def test_real_keras_loads_and_predicts_the_same(keras_results, target, name, kind):
    ours, theirs, _ = keras_results
    results = theirs[target]
    err = results.get(f"{name}_{kind}__error")
    assert err is None, f"{target} could not load our {kind} file for {name}:\n{err}"
    for i, mine in enumerate(ours[name]):
        np.testing.assert_allclose(results[f"{name}_{kind}__{i}"], mine, atol=1e-5, rtol=0)


@pytest.mark.parametrize("target", list(TARGET_KINDS))
@pytest.mark.parametrize("kind", ["json", "h5"])
def test_nested_shared_model_made_by_real_keras_loads_here(keras_results, target, kind):
    from core.models import load_model

    _, theirs, tmp = keras_results
    results = theirs[target]
    assert "keras_made_nested__error" not in results, results.get("keras_made_nested__error")
    base = tmp / f"keras_made_nested_{target}"
    model = load_model(f"{base}.{kind}")
    if kind == "json":
        model.load_weights(str(base) + (".weights.h5" if target == "keras3" else "_weights.h5"))
    np.testing.assert_allclose(model.predict(results["keras_made_nested__input"]),
                               results["keras_made_nested__output"], atol=1e-5, rtol=0)
    assert len(model.get_layer("inner")._inbound_nodes) == 2 and len(model.get_layer("shared")._inbound_nodes) == 2

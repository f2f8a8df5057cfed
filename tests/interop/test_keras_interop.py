"""Files Netweaver writes for a target load in that real Keras and predict what Netweaver predicts.

Keras 3 (`import keras`, TensorFlow backend) and tf.keras 2 (`import tf_keras`) each run once, in a subprocess
(`keras_runner.py`), over every file written for them. The architectures are the reference fixtures whose layer
classes all exist in `core.layers.layer_registry()`, so each joins as its layers land.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.fixture_utils import (architectures_available, default_fixtures_dir, fixture_io, load_fixture_model,
                                 predict_list)

RUNNER = Path(__file__).with_name("keras_runner.py")
FIXTURES = default_fixtures_dir()
TARGET_KINDS = {"keras3": ["json", "h5", "keras", "script"], "tf_keras2": ["json", "h5", "script"]}


def _selected() -> list[str]:
    names = architectures_available(FIXTURES)
    print(f"interop architectures: {names}")
    return names


NAMES = _selected()
CASES = [(t, n, k) for t, kinds in TARGET_KINDS.items() for n in NAMES for k in kinds]


def _write(model, target: str, kind: str, base: Path) -> dict:
    if kind == "script":  # exporters.python_source: a Keras script that rebuilds the model, plus its weights
        from exporters.python_source import export_python_source

        script = export_python_source(model, base.with_suffix(".py"), target=target)
        weights = str(base) + (".weights.h5" if target == "keras3" else "_weights.h5")
        model.save_weights(weights, target=target)
        return {"model": str(script), "weights": weights}
    if kind == "json":
        (base.with_suffix(".json")).write_text(model.to_json(target=target))
        weights = str(base) + (".weights.h5" if target == "keras3" else "_weights.h5")
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
    for name in NAMES:
        backend.clear_session()
        model = load_fixture_model(FIXTURES, "keras3", name)
        model.compile(optimizer="adam", loss="mse")  # so .h5/.keras carry a training config for Keras to read
        inputs, _ = fixture_io(FIXTURES, "keras3", name)
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
    return ours, theirs


@pytest.mark.parametrize("target,name,kind", CASES, ids=[f"{t}-{n}-{k}" for t, n, k in CASES])
def test_real_keras_loads_and_predicts_the_same(keras_results, target, name, kind):
    ours, theirs = keras_results
    results = theirs[target]
    err = results.get(f"{name}_{kind}__error")
    assert err is None, f"{target} could not load our {kind} file for {name}:\n{err}"
    for i, mine in enumerate(ours[name]):
        np.testing.assert_allclose(results[f"{name}_{kind}__{i}"], mine, atol=1e-5, rtol=0)


def test_architectures_selected():
    assert {"seed_mlp", "seed_functional"} <= set(NAMES)

"""Files Netweaver writes for a target load in that real Keras and predict what Netweaver predicts.

Keras 3 (`import keras`, TensorFlow backend) and tf.keras 2 (`import tf_keras`) each run once, in a subprocess
(`keras_runner.py`), over every file written for them. The architectures are every reference fixture
(`FIXTURE_ARCHITECTURES`, pinned) and two models built here.
"""

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.interop.keras_subprocess import run_all
from tests.fixture_utils import (FIXTURE_ARCHITECTURES, GENERATIONS, default_fixtures_dir, fixture_io, fixture_path,
                                 load_fixture_model, predict_list)

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
# Each fixture, as the Keras of its generation wrote it, loaded here and in that Keras (one load each side): its
# summary table, and a forward pass with irregular weights. The fixtures' own weights are untrained, so their
# outputs are a nearly uniform softmax (spread about 1e-3) that a wrong gate order moves by about 1e-3 only.
GENERATION_TARGETS = {"keras2": "tf_keras2", "keras3": "keras3"}
FIXTURE_CASES = [(g, n) for g in GENERATIONS for n in NAMES]
# float32 agrees to about 1e-6 on these, except over the GRU(256)->SimpleRNN stack, whose large irregular weights
# amplify rounding: there Keras's own float32 result is up to 6e-4 from a float64 run of the same model (8 draws of
# such weights), and Keras's TensorFlow and JAX backends differ by up to 1e-4. A swapped pair of gates moves these
# outputs by 0.08 to 4.
IRREGULAR_ATOL = {"seed_gru_simplernn": 1.5e-3}


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


def _irregular_weights(model, rng) -> list[np.ndarray]:
    """The model's weights times 3 plus noise: large enough that gates saturate differently and outputs spread;
    scales and variances stay positive."""
    out = []
    for variable, w in zip(model.weights, model.get_weights()):
        w = 3 * w + rng.normal(0, 0.2, w.shape).astype(w.dtype)
        if any(key in variable.name for key in ("gamma", "scale", "variance")):
            w = np.abs(w) + 0.5
        out.append(w)
    return out


def _fixture_jobs(tmp: Path) -> tuple[dict, dict, dict]:
    """Runner jobs for every fixture in its own generation's Keras, with our outputs and summary rows for them."""
    from core import backend
    from core.models import load_model
    from core.summary import summary_rows

    jobs, ours, rows = {t: [] for t in TARGET_KINDS}, {}, {}
    rng = np.random.default_rng(19)
    for generation, name in FIXTURE_CASES:
        backend.clear_session()
        path = fixture_path(FIXTURES, generation, f"{name}.h5")
        model = load_model(path, compile=False)
        job_id = f"fixture_{generation}_{name}"
        rows[job_id] = [(r.name, r.class_name, r.output_shape, r.params, r.connected_to) for r in summary_rows(model)]
        printed = []
        model.summary(print_fn=printed.append)
        rows[job_id + "__has_connections"] = any("Connected to" in line for line in printed)
        weights = _irregular_weights(model, rng)
        model.set_weights(weights)
        inputs, _ = fixture_io(FIXTURES, generation, name)
        ours[job_id] = predict_list(model, inputs)
        np.savez(tmp / f"{job_id}_weights.npz", *weights)
        np.savez(tmp / f"{job_id}_in.npz", **{f"input_{i}": a for i, a in enumerate(inputs)})
        jobs[GENERATION_TARGETS[generation]].append(
            {"id": job_id, "kind": "fixture", "model": str(path), "weights": str(tmp / f"{job_id}_weights.npz"),
             "inputs": str(tmp / f"{job_id}_in.npz")})
    return jobs, ours, rows


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
    """(ours, theirs, tmp, our summary rows): our predictions by job id and name, what real Keras predicted (and
    its summaries) by target, the folder of the files, and our summary rows of each fixture job."""
    from core import backend

    tmp = tmp_path_factory.mktemp("interop")
    jobs, ours, rows = _fixture_jobs(tmp)
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
    runs = {}
    for target, target_jobs in jobs.items():
        jobs_path = tmp / f"jobs_{target}.json"
        jobs_path.write_text(json.dumps(target_jobs))
        runs[target] = (RUNNER, [target, jobs_path, tmp / f"out_{target}.npz"], tmp / f"out_{target}.npz")
    theirs = run_all(runs)
    return ours, theirs, tmp, rows


@pytest.mark.parametrize("target,name,kind", CASES, ids=[f"{t}-{n}-{k}" for t, n, k in CASES])
def test_real_keras_loads_and_predicts_the_same(keras_results, target, name, kind):
    ours, theirs = keras_results[:2]
    results = theirs[target]
    err = results.get(f"{name}_{kind}__error")
    assert err is None, f"{target} could not load our {kind} file for {name}:\n{err}"
    for i, mine in enumerate(ours[name]):
        np.testing.assert_allclose(results[f"{name}_{kind}__{i}"], mine, atol=1e-5, rtol=0)


@pytest.mark.parametrize("target", list(TARGET_KINDS))
@pytest.mark.parametrize("kind", ["json", "h5"])
def test_nested_shared_model_made_by_real_keras_loads_here(keras_results, target, kind):
    from core.models import load_model

    _, theirs, tmp, _ = keras_results
    results = theirs[target]
    assert "keras_made_nested__error" not in results, results.get("keras_made_nested__error")
    base = tmp / f"keras_made_nested_{target}"
    model = load_model(f"{base}.{kind}")
    if kind == "json":
        model.load_weights(str(base) + (".weights.h5" if target == "keras3" else "_weights.h5"))
    np.testing.assert_allclose(model.predict(results["keras_made_nested__input"]),
                               results["keras_made_nested__output"], atol=1e-5, rtol=0)
    assert len(model.get_layer("inner")._inbound_nodes) == 2 and len(model.get_layer("shared")._inbound_nodes) == 2


@pytest.mark.parametrize("target", list(TARGET_KINDS))
def test_nested_shared_model_made_by_real_keras_round_trips_through_the_canvas_document(keras_results, target,
                                                                                        tmp_path):
    """Drawn (each call of the shared Dense and of the nested 'inner' a node), saved as a project, reopened and
    rebuilt: the same config and Keras's predictions."""
    from core.document import Document
    from core.models import load_model
    from exporters import project

    _, theirs, tmp, _ = keras_results
    results = theirs[target]
    original = load_model(str(tmp / f"keras_made_nested_{target}.h5"))
    doc = Document.from_model(original)
    names = [n.name for n in doc.nodes.values()]
    assert names.count("shared") == 2 and names.count("inner") == 2
    reopened = project.load_project(project.save_project(doc, tmp_path / "nested.nwproj"))
    rebuilt = reopened.to_model()
    assert rebuilt.get_config() == original.get_config()
    np.testing.assert_allclose(rebuilt.predict(results["keras_made_nested__input"], verbose=0),
                               results["keras_made_nested__output"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("generation,name", FIXTURE_CASES, ids=[f"{g}-{n}" for g, n in FIXTURE_CASES])
def test_fixture_with_irregular_weights_predicts_like_real_keras(keras_results, generation, name):
    ours, theirs = keras_results[:2]
    results, job_id = theirs[GENERATION_TARGETS[generation]], f"fixture_{generation}_{name}"
    assert f"{job_id}__error" not in results, results.get(f"{job_id}__error")
    for i, mine in enumerate(ours[job_id]):
        want = results[f"{job_id}__{i}"]
        assert np.ptp(want) > 0.1, f"{name}: outputs spread over {np.ptp(want):.3g} only: the check is too weak"
        np.testing.assert_allclose(mine, want, atol=IRREGULAR_ATOL.get(name, 2e-5), rtol=1e-5, err_msg=f"output {i}")


def _keras3_summary_rows(text: str) -> list[tuple]:
    """Rows of Keras 3's summary table (rich: cells between '│', connections joined by ', ', '-' for none)."""
    rows = []
    for line in text.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip("│").split("│")]
            connected = [] if len(cells) < 4 or cells[3] == "-" else cells[3].split(", ")
            rows.append((cells[0], cells[1], cells[2], connected))
    return rows


def _tf_keras2_summary_rows(text: str) -> list[tuple]:
    """Rows of tf.keras 2's summary table: between the '=' rules, blank-line separated, columns at the runner's
    positions, a list's items on lines of their own; connections as a Python list."""
    lines = text.splitlines()
    first, last = [i for i, line in enumerate(lines) if line.startswith("=")][:2]
    groups, group = [], []
    for line in lines[first + 1:last] + [""]:
        if line.strip():
            group.append(line)
        elif group:
            groups.append(group)
            group = []
    bounds = [(0, 100), (100, 200), (200, 230), (230, None)]
    rows = []
    for group in groups:
        cells = [" ".join(part for part in (line[a:b].strip() for line in group) if part) for a, b in bounds]
        rows.append((cells[0], cells[1], cells[2], ast.literal_eval(cells[3]) if cells[3] else []))
    return rows


@pytest.mark.parametrize("generation,name", FIXTURE_CASES, ids=[f"{g}-{n}" for g, n in FIXTURE_CASES])
def test_summary_rows_match_real_keras_summary(keras_results, generation, name):
    """Our summary rows (the summary panel's and `model.summary()`'s) of each fixture file against the table that
    the Keras which wrote it prints: names, classes, output shapes, parameter counts, and connections where Keras
    shows a Connected-to column."""
    _, theirs, _, rows = keras_results
    target, job_id = GENERATION_TARGETS[generation], f"fixture_{generation}_{name}"
    text = theirs[target].get(f"{job_id}__summary")
    assert text is not None, theirs[target].get(f"{job_id}__error")
    text = str(text)
    table = _keras3_summary_rows(text) if target == "keras3" else _tf_keras2_summary_rows(text)
    assert table, f"no rows read from Keras's summary:\n{text}"
    keras_rows = []
    for layer, shape, params, connected in table:
        layer_name, class_name = re.fullmatch(r"(.+) \((\w+)\)", layer).groups()
        # tf.keras 2 prints an InputLayer's shape as a list of one shape; Keras 3 and this engine print the shape.
        single = re.fullmatch(r"\[(\([^()]*\))\]", shape)
        keras_rows.append((layer_name, class_name, single.group(1) if single else shape, int(params.replace(",", "")),
                           connected))
    with_connections = "Connected to" in text
    ours = [row if with_connections else row[:4] + ([],) for row in rows[job_id]]
    assert ours == keras_rows
    # the printed table has the column exactly when Keras's has (Keras leaves it out for a one-chain model)
    assert rows[job_id + "__has_connections"] == with_connections

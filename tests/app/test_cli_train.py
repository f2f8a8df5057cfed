"""`python main.py train`: an example project trains from its bundled data, writes its weights and history, and the
reloaded project predicts what the trained model predicts; Keras files train with --data; Ctrl-C still writes both;
bad input exits 2 and writes nothing."""

import csv
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core import runtime
from core.models import load_model
from app.cli import main
from exporters.project import load_project
from app.train_command import train
from tests.fixture_utils import fixture_io, fixture_path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "resources" / "examples"


def _copy_example(tmp_path, name="mlp") -> Path:
    for f in EXAMPLES.glob(f"{name}*"):
        if f.suffix in (".nwproj", ".npz"):
            shutil.copy(f, tmp_path / f.name)
    return tmp_path / f"{name}.nwproj"


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _history_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _val_data(project: Path):
    with np.load(project.with_name(project.stem + "_data.npz")) as z:
        return z["x_val"], z["y_val"]


def test_train_example_writes_weights_and_history_that_reload(tmp_path, capsys):
    project = _copy_example(tmp_path)
    assert load_project(project).nodes and '"weights": null' in project.read_text()
    x, y = _val_data(project)
    untrained = load_project(project).to_model()
    untrained_acc = np.mean(untrained.predict(x, verbose=0).argmax(-1) == y)

    result = train(project, epochs=2, device="cpu", verbose=0)
    assert result.weights_path == tmp_path / "mlp.weights.npz" and result.weights_path.is_file()
    assert result.history_path == tmp_path / "mlp.history.csv"
    rows = _history_rows(result.history_path)
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert set(rows[0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy"}
    np.testing.assert_allclose([float(r["loss"]) for r in rows], result.history.history["loss"], rtol=1e-6)

    reloaded = load_project(project).to_model()  # the project now refers to its sidecar weights
    expected = result.model.predict(x, verbose=0)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), expected, atol=1e-6)
    trained_acc = np.mean(expected.argmax(-1) == y)
    assert untrained_acc < 0.4 < 0.8 < trained_acc  # ten separable clusters: chance is 0.1


def test_cli_train_overrides_epochs_and_prints_progress(tmp_path, capsys):
    project = _copy_example(tmp_path, "conv1d_text_cnn")
    assert main(["train", str(project), "--epochs", "1", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "Epoch 1/1" in out and "Epoch 2/" not in out and "trained 1 epoch(s) of 'conv1d_text_cnn' on cpu" in out
    assert len(_history_rows(tmp_path / "conv1d_text_cnn.history.csv")) == 1
    assert (tmp_path / "conv1d_text_cnn.weights.npz").is_file()

    assert main(["train", str(project), "--epochs", "1", "--device", "cpu", "--quiet"]) == 0
    assert "Epoch" not in capsys.readouterr().out


def test_weights_out_and_history_out_leave_the_project_alone(tmp_path):
    project = _copy_example(tmp_path)
    before = project.read_bytes()
    result = train(project, epochs=1, device="cpu", verbose=0, weights_out=tmp_path / "out" / "w.weights.h5",
                   history_out=tmp_path / "out" / "h.csv")
    assert project.read_bytes() == before and not (tmp_path / "mlp.weights.npz").exists()
    assert len(_history_rows(tmp_path / "out" / "h.csv")) == 1
    x, _ = _val_data(project)
    model = load_project(project).to_model()
    model.load_weights(tmp_path / "out" / "w.weights.h5")
    np.testing.assert_allclose(model.predict(x, verbose=0), result.model.predict(x, verbose=0), atol=1e-6)


def test_device_cuda_falls_back_to_cpu_with_a_message(tmp_path, capsys):
    project = _copy_example(tmp_path)
    assert main(["train", str(project), "--epochs", "1", "--device", "cuda", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert len(_history_rows(tmp_path / "mlp.history.csv")) == 1
    if runtime.cuda_usable():
        assert "on cuda" in captured.out and "CUDA was requested" not in captured.err
    else:
        assert "on cpu" in captured.out
        assert "warning: CUDA was requested but could not be started" in captured.err


@pytest.mark.parametrize("kind", ["csv", "npy"])
def test_dataset_reference_to_a_table(tmp_path, kind):
    """A .csv names its columns by header, a .npy (one 2-D array) by index; whole-number targets are labels."""
    project = _copy_example(tmp_path)
    with np.load(tmp_path / "mlp_data.npz") as z:
        table = np.column_stack([z["x_train"][:200], z["y_train"][:200]])
    if kind == "csv":
        header = [f"f{i}" for i in range(32)] + ["label"]
        np.savetxt(tmp_path / "table.csv", table, delimiter=",", header=",".join(header), comments="")
        ref = {"name": "table", "path": "table.csv", "x": header[:32], "y": ["label"]}
    else:
        np.save(tmp_path / "table.npy", table)
        ref = {"name": "table", "path": "table.npy", "x": list(range(32)), "y": [32]}
    data = json.loads(project.read_text())
    data["datasets"].append(ref)
    project.write_text(json.dumps(data))
    # a (n, 1) integer target is what sparse_categorical_crossentropy takes too
    result = train(project, dataset="table", epochs=1, device="cpu", verbose=0)
    assert result.history.history["loss"] and len(_history_rows(result.history_path)) == 1


def test_keras_file_with_data(fixtures_dir, tmp_path):
    """A real Keras 3 .h5 carries its training_config (Adam, mse); --data brings x and y."""
    src = fixture_path(fixtures_dir, "keras3", "seed_mlp.h5")
    model_file = tmp_path / "seed_mlp.h5"
    shutil.copy(src, model_file)
    (x,), (y,) = fixture_io(fixtures_dir, "keras3", "seed_mlp")
    rng = np.random.default_rng(0)
    target = y + rng.normal(0, 0.1, y.shape).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=target)
    result = train(model_file, data=tmp_path / "d.npz", epochs=1, device="cpu", verbose=0)
    assert result.weights_path == tmp_path / "seed_mlp.weights.h5"
    assert list(result.history.history) == ["loss"]
    model = load_model(src)
    np.testing.assert_allclose(model.predict(x, verbose=0), y, atol=1e-5)
    model.load_weights(result.weights_path)
    trained = model.predict(x, verbose=0)
    np.testing.assert_allclose(trained, result.model.predict(x, verbose=0), atol=1e-6)
    assert not np.allclose(trained, y, atol=1e-4)

    assert main(["train", str(model_file), "--quiet"]) == 2  # no --data: nothing to train on


def _drop(path: Path):
    path.unlink()


def _bad_data(tmp_path):
    np.savez(tmp_path / "bad.npz", x=np.zeros((10, 31), np.float32), y=np.zeros(10, np.int32))
    return ["--data", str(tmp_path / "bad.npz")]


@pytest.mark.parametrize("case,expected", [
    ("missing data file", "mlp_data.npz' not found"),
    ("bad shapes", "expects shape (None, 32), got data of shape (10, 31)"),
    ("missing array", "has no array named 'x_train'"),
    ("no settings", "has no training settings"),
    ("unknown device", "Unknown device 'tpu'"),
    ("bad weights-out", "expected a .npz (project sidecar), .weights.h5 or .h5 file"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, case, expected):
    project = _copy_example(tmp_path)
    extra = ["--device", "cpu"]
    if case == "missing data file":
        _drop(tmp_path / "mlp_data.npz")
    elif case == "bad shapes":
        extra = _bad_data(tmp_path)
    elif case == "missing array":
        data = json.loads(project.read_text())
        data["datasets"][0]["path"] = "other.npz"
        project.write_text(json.dumps(data))
        np.savez(tmp_path / "other.npz", x=np.zeros((4, 32), np.float32))
    elif case == "no settings":
        data = json.loads(project.read_text())
        data["training"] = {}
        project.write_text(json.dumps(data))
    elif case == "unknown device":
        extra = ["--device", "tpu"]
    else:
        extra += ["--weights-out", str(tmp_path / "w.txt")]
    before = _snapshot(tmp_path)
    assert main(["train", str(project), "--epochs", "1", "--quiet", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
    assert _snapshot(tmp_path) == before


def test_ctrl_c_stops_and_still_writes_weights_and_history(tmp_path):
    project = _copy_example(tmp_path)
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "train", str(project), "--epochs", "10000",
                             "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    seen = ""
    while "Epoch 3/" not in seen:
        ch = proc.stdout.read(1)
        assert ch, f"training ended early: {proc.stderr.read()}"
        seen += ch
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted: stopping after this batch" in err and "interrupted after" in out
    rows = _history_rows(tmp_path / "mlp.history.csv")
    assert len(rows) >= 2 and [r["epoch"] for r in rows] == [str(i) for i in range(len(rows))]
    x, y = _val_data(project)
    reloaded = load_project(project).to_model()
    assert np.mean(reloaded.predict(x, verbose=0).argmax(-1) == y) > 0.8  # two or more epochs learnt the clusters


@pytest.mark.parametrize("name", ["mlp", "lstm_text_classifier", "conv1d_text_cnn"])
def test_bundled_examples_train_on_their_data(tmp_path, name):
    """Each bundled dataset is what make_examples.py draws from its fixed seed, and one epoch on it learns."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        import make_examples
    finally:
        sys.path.remove(str(EXAMPLES))
    x, y = make_examples.TRAINING[name][0](np.random.default_rng(1234))
    with np.load(EXAMPLES / f"{name}_data.npz") as z:
        np.testing.assert_array_equal(np.concatenate([z["x_train"], z["x_val"]]), x)
        np.testing.assert_array_equal(np.concatenate([z["y_train"], z["y_val"]]), y)
    project = _copy_example(tmp_path, name)
    data = json.loads(project.read_text())
    data["training"]["seed"] = 1  # the examples leave the seed free; one epoch from an unlucky start fell short
    project.write_text(json.dumps(data))
    result = train(project, epochs=1, device="cpu", verbose=0)
    assert result.history.history["val_loss"][0] < np.log(int(y.max()) + 1)  # better than a uniform guess


def test_several_inputs_from_numbered_arrays(tmp_path, capsys):
    """--data with x0, x1 feeds a two-input model (the encoder-decoder example) in its inputs' order."""
    project = _copy_example(tmp_path, "encoder_decoder")
    data = json.loads(project.read_text())
    data["training"] = {"optimizer": "adam", "loss": "sparse_categorical_crossentropy", "batch_size": 16}
    project.write_text(json.dumps(data))
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "pairs.npz", x0=rng.integers(1, 1000, (32, 6)), x1=rng.integers(1, 2000, (32, 4)),
             y=rng.integers(0, 10, 32))
    result = train(project, data=tmp_path / "pairs.npz", epochs=1, device="cpu", verbose=0)
    assert len(_history_rows(result.history_path)) == 1
    np.savez(tmp_path / "one.npz", x=rng.integers(1, 1000, (32, 6)), y=rng.integers(0, 10, 32))
    assert main(["train", str(project), "--data", str(tmp_path / "one.npz"), "--quiet"]) == 2
    assert "1 x array(s) for model 'encoder_decoder' with 2 input(s)" in capsys.readouterr().err


def test_training_a_bundled_example_leaves_it_untouched(tmp_path, monkeypatch):
    """Outputs of training a shipped example go to the working directory; the example and its folder are never
    written (they may be inside site-packages)."""
    monkeypatch.chdir(tmp_path)
    before = _snapshot(EXAMPLES)
    result = train(EXAMPLES / "mlp.nwproj", epochs=1, device="cpu", verbose=0)
    assert _snapshot(EXAMPLES) == before
    assert result.weights_path == tmp_path / "mlp.weights.npz" and result.weights_path.is_file()
    assert result.history_path == tmp_path / "mlp.history.csv" and result.history_path.is_file()


def test_a_trained_project_records_its_run(tmp_path):
    project = _copy_example(tmp_path)
    result = train(project, epochs=2, device="cpu", verbose=0)
    runs = load_project(project).runs
    assert len(runs) == 1
    run = runs[0]
    assert run.outcome == "finished" and run.device == "cpu" and run.epochs_done == 2
    assert run.settings["epochs"] == 2 and run.settings["loss"] == "sparse_categorical_crossentropy"
    assert run.dataset["name"] == "synthetic" and run.model["nodes"]
    for key, values in result.history.history.items():
        np.testing.assert_allclose(run.history[key], values, rtol=1e-6)
    assert len(run.learning_rates) == 2 and run.started <= run.ended


def test_a_layer_not_adapted_stops_the_command_and_adapt_adapts_it_first(tmp_path, capsys):
    import core as keras
    from app import adapting
    from core import layers
    from core.document import Document
    from exporters.datasets import load_dataset, sample_datasets
    from exporters.project import save_project

    inputs = keras.Input(shape=(4,), name="measurements")
    outputs = layers.Dense(3, activation="softmax", name="species")(layers.Normalization(name="norm")(inputs))
    doc = Document.from_model(keras.Model(inputs, outputs, name="iris_norm"))
    for node in doc.nodes.values():
        node.weights = None
    doc.training = {"optimizer": "adam", "loss": "sparse_categorical_crossentropy", "epochs": 1}
    iris = dict(next(s["spec"] for s in sample_datasets() if s["name"] == "iris"), standardize=False)
    doc.datasets = [iris]
    project = save_project(doc, tmp_path / "iris_norm.nwproj")
    before = _snapshot(tmp_path)
    assert main(["train", str(project), "--quiet"]) == 2
    assert _snapshot(tmp_path) == before
    err = capsys.readouterr().err
    assert "'iris_norm.nwproj': Normalization 'norm' has no statistics yet" in err and "pass --adapt" in err

    assert main(["train", str(project), "--quiet", "--adapt"]) == 0
    assert capsys.readouterr().out.startswith("'norm' adapted on 120 samples: mean [")
    kept = load_project(project)
    x = load_dataset(iris).x[0]
    np.testing.assert_allclose(kept.node_by_name("norm").weights[0], x.mean(axis=0), rtol=1e-6)
    assert adapting.unadapted_layers(kept) == []
    assert main(["train", str(project), "--quiet"]) == 0  # the project kept what the layer learned

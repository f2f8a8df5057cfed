"""`python main.py summary|export`: every export format from Keras's files and from projects; bad input exits 2."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.models import load_model, model_from_json, model_from_yaml
from app.cli import main
from exporters.onnx_export import run_onnx
from tests.fixture_utils import fixture_io, fixture_path

ROOT = Path(__file__).resolve().parents[2]


def _reference(fixtures_dir):
    inputs, outputs = fixture_io(fixtures_dir, "keras3", "seed_functional")
    return fixture_path(fixtures_dir, "keras3", "seed_functional.keras"), inputs[0], outputs[0]


def test_summary_prints_keras_table(fixtures_dir, capsys):
    assert main(["summary", str(fixture_path(fixtures_dir, "keras2", "seed_functional.h5"))]) == 0
    out = capsys.readouterr().out
    assert "dense_3 (Dense)" in out and "Total params: 6,922" in out


@pytest.mark.parametrize("fmt,suffix,target", [
    ("json", ".json", "keras3"), ("json", ".json", "tf_keras2"), ("yaml", ".yaml", "keras3"),
    ("h5", ".h5", "tf_keras2"), ("keras", ".keras", "keras3"), ("weights", ".weights.h5", "keras3"),
    ("onnx", ".onnx", "keras3"), ("py", ".py", "tf_keras2")])
def test_export_each_format(fixtures_dir, tmp_path, fmt, suffix, target):
    src, x, y = _reference(fixtures_dir)
    out = tmp_path / f"out{suffix}"
    assert main(["export", str(src), str(out), "--format", fmt, "--target", target]) == 0
    if fmt in ("h5", "keras"):
        np.testing.assert_allclose(load_model(out).predict(x), y, atol=1e-5)
    elif fmt == "json":
        cfg = json.loads(out.read_text())
        assert ("batch_input_shape" in json.dumps(cfg)) == (target == "tf_keras2")
        assert model_from_json(out.read_text()).count_params() == 6922
    elif fmt == "yaml":
        assert model_from_yaml(out.read_text()).count_params() == 6922
    elif fmt == "weights":
        model = load_model(src)
        model.load_weights(out)
        np.testing.assert_allclose(model.predict(x), y, atol=1e-5)
    elif fmt == "onnx":
        np.testing.assert_allclose(run_onnx(out, x)[0], y, atol=1e-5)
    else:
        compile(out.read_text(), str(out), "exec")


def test_config_plus_weights(fixtures_dir, tmp_path):
    cfg = fixture_path(fixtures_dir, "keras2", "seed_mlp.json")
    weights = fixture_path(fixtures_dir, "keras2", "seed_mlp_weights.h5")
    inputs, outputs = fixture_io(fixtures_dir, "keras2", "seed_mlp")
    assert main(["export", str(cfg), str(tmp_path / "m.keras"), "--format", "keras", "--weights", str(weights)]) == 0
    np.testing.assert_allclose(load_model(tmp_path / "m.keras").predict(inputs[0]), outputs[0], atol=1e-5)


def test_project_file_exports(fixtures_dir, tmp_path):
    from core.document import Document
    from exporters.project import save_project

    src, x, y = _reference(fixtures_dir)
    save_project(Document.from_model(load_model(src)), tmp_path / "p.nwproj")
    assert main(["export", str(tmp_path / "p.nwproj"), str(tmp_path / "p.h5"), "--format", "h5"]) == 0
    np.testing.assert_allclose(load_model(tmp_path / "p.h5").predict(x), y, atol=1e-5)


def test_bad_input_exits_2_with_one_clear_line(fixtures_dir, tmp_path, capsys):
    src, _, _ = _reference(fixtures_dir)
    (tmp_path / "junk.h5").write_bytes(b"junk")
    cases = [
        (["export", str(tmp_path / "missing.h5"), str(tmp_path / "o.json"), "--format", "json"], "no such file"),
        (["export", str(tmp_path / "junk.h5"), str(tmp_path / "o.json"), "--format", "json"], "junk.h5"),
        (["export", str(src), str(tmp_path / "o.keras"), "--format", "keras", "--target", "tf_keras2"], "Keras 3"),
        (["export", str(src), str(tmp_path / "o.x"), "--format", "pdf"], "invalid choice"),
        (["summary"], "required"),
        ([], "COMMAND"),
    ]
    for argv, words in cases:
        assert main(argv) == 2, argv
        assert words in capsys.readouterr().err


def test_main_py_routes_headless_commands(fixtures_dir, tmp_path):
    src, _, _ = _reference(fixtures_dir)
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "export", str(src), str(tmp_path / "m.json"),
                           "--format", "json"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "m.json").read_text())["class_name"] == "Functional"


@pytest.mark.parametrize("fmt,suffix", [("json", ".json"), ("h5", ".h5"), ("onnx", ".onnx"), ("py", ".py")])
def test_export_verify_reads_the_file_back_and_compares(fixtures_dir, tmp_path, capsys, fmt, suffix):
    src, _, _ = _reference(fixtures_dir)
    out = tmp_path / f"out{suffix}"
    assert main(["export", str(src), str(out), "--format", fmt, "--verify"]) == 0
    printed = capsys.readouterr().out
    assert "Verified" in printed and "random samples" in printed and "Largest difference" in printed


def test_a_failed_verification_exits_1_names_the_output_and_keeps_the_file(fixtures_dir, tmp_path, capsys,
                                                                          monkeypatch):
    from exporters import verify

    real = verify.read_back
    monkeypatch.setattr(verify, "read_back", lambda *a: [r + 0.25 for r in real(*a)])  # a file that computes otherwise
    src, _, _ = _reference(fixtures_dir)
    out = tmp_path / "out.onnx"
    assert main(["export", str(src), str(out), "--format", "onnx", "--verify"]) == 1
    err = capsys.readouterr().err
    assert "Verification FAILED" in err and "largest difference is 0.25" in err and "at output '" in err
    assert "kept at" in err and out.exists()


def test_export_of_a_project_verifies_on_its_data(tmp_path, capsys):
    import shutil
    from pathlib import Path

    examples = Path(__file__).resolve().parents[2] / "resources" / "examples"
    for f in examples.glob("mlp*"):
        shutil.copy(f, tmp_path / f.name)
    assert main(["export", str(tmp_path / "mlp.nwproj"), str(tmp_path / "mlp.keras"), "--format", "keras",
                 "--verify"]) == 0
    assert "samples of the project's data" in capsys.readouterr().out


def test_export_a_projects_training_script(tmp_path, capsys):
    import shutil
    from pathlib import Path

    examples = Path(__file__).resolve().parents[2] / "resources" / "examples"
    for f in examples.glob("mlp*"):
        shutil.copy(f, tmp_path / f.name)
    out = tmp_path / "train_mlp.py"
    assert main(["export", str(tmp_path / "mlp.nwproj"), str(out), "--format", "py", "--training-script",
                 "--verify"]) == 0
    assert "Verified" in capsys.readouterr().out
    assert "def train(" in out.read_text() and (tmp_path / "train_mlp_data.npz").exists()
    assert main(["export", str(tmp_path / "mlp.nwproj"), str(tmp_path / "m.onnx"), "--format", "onnx",
                 "--training-script"]) == 2
    assert "--training-script needs --format py" in capsys.readouterr().err

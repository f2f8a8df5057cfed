"""Every writer refuses an unwritable output path with one clear OutputPathError naming it, and writes nothing."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import core as keras
from core import layers
from core.errors import NetweaverError, OutputPathError
from exporters import project

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def blocked(tmp_path):
    """A path whose 'folder' is a regular file: unwritable even for root."""
    (tmp_path / "afile").write_text("not a folder")
    return tmp_path / "afile"


def _model():
    return keras.Sequential([layers.Dense(2, input_shape=(3,))])


@pytest.mark.parametrize("write", [
    lambda m, d: m.save(d / "x.h5"),
    lambda m, d: m.save(d / "x.keras"),
    lambda m, d: m.save_weights(d / "x.weights.h5"),
    lambda m, d: m.save_weights(d / "x.h5"),
    lambda m, d: m.save_weights(d / "checkpoint"),
    lambda m, d: m.to_onnx(d / "x.onnx"),
])
def test_model_writers_name_the_blocking_file(blocked, write):
    with pytest.raises(OutputPathError, match=f"'{blocked}' is a file, not a folder"):
        write(_model(), blocked)
    assert blocked.read_text() == "not a folder"


def test_output_path_error_is_a_netweaver_error_and_an_os_error(blocked):
    with pytest.raises(NetweaverError):
        _model().save(blocked / "x.h5")
    with pytest.raises(OSError):
        _model().save(blocked / "x.h5")


def test_a_folder_is_not_a_file_name(tmp_path):
    with pytest.raises(OutputPathError, match="it is a folder"):
        _model().to_onnx(tmp_path)


def test_project_save_to_a_blocked_path(blocked):
    from core.document import Document

    with pytest.raises(OutputPathError):
        project.save_project(Document(), blocked / "p.nwproj")


def test_cli_export_to_a_blocked_path_exits_2_with_one_line(blocked):
    res = subprocess.run([sys.executable, "main.py", "export", "resources/examples/mlp.nwproj",
                          str(blocked / "m.onnx"), "--format", "onnx"], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert res.returncode == 2
    assert f"Cannot write '{blocked / 'm.onnx'}'" in res.stderr
    assert "Traceback" not in res.stderr

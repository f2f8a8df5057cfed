"""Every reference model real Keras wrote comes onto the canvas, is saved as a project, reopened, and comes out as
the same model: the same config as the original file and Keras's recorded predictions (1e-5), also once exported.
The canvas draws a Sequential model as the Functional graph it is, so for those the layers' configs (and the
input's) are compared."""

import numpy as np
import pytest

from core.models import load_model

from tests.fixture_utils import FIXTURE_ARCHITECTURES, fixture_io, fixture_path, load_fixture_model, predict_list


def layer_configs(model):
    return [(type(layer).__name__, layer.get_config()) for layer in model.layers]


@pytest.mark.parametrize("name", FIXTURE_ARCHITECTURES)
def test_fixture_model_imported_saved_reopened_and_rebuilt_is_the_same_model(window, fixtures_dir, tmp_path, name):
    assert window.open_path(str(fixture_path(fixtures_dir, "keras3", f"{name}.keras")), wait=True)
    project = tmp_path / f"{name}.nwproj"
    assert window._save_to(str(project))
    assert window.open_path(str(project), wait=True)
    rebuilt = window.editor.doc.to_model()
    original = load_fixture_model(fixtures_dir, "keras3", name)
    if type(original).__name__ == "Sequential":
        assert layer_configs(rebuilt)[1:] == layer_configs(original)
        assert rebuilt.inputs[0].shape == original.inputs[0].shape
    else:
        assert rebuilt.get_config() == original.get_config()
    inputs, outputs = fixture_io(fixtures_dir, "keras3", name)
    rebuilt.save(tmp_path / f"{name}.keras")  # exported, and read back as the same model
    exported = load_model(str(tmp_path / f"{name}.keras"))
    assert exported.get_config() == rebuilt.get_config()
    for model in (rebuilt, exported):
        for got, want in zip(predict_list(model, inputs), outputs):
            np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)

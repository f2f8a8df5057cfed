"""`.keras` archives whose weights file uses older or Windows group paths (Keras 2.13-2.15 wrote
`_layer_checkpoint_dependencies/...`, and on Windows `layers\\dense\\vars`), and archives of a model saved before it
was built, load as Keras loads them."""

import io
import json
import zipfile

import h5py
import numpy as np
import pytest

import core as keras
from core import layers
from core.errors import FileFormatError
from core.models import load_model


def _archive(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="tanh"), layers.Dense(2)])
    path = tmp_path / "model.keras"
    model.save(path)
    return model, path


def _rewrite_weights(src, dst, rename):
    """A copy of the archive whose model.weights.h5 has every group path passed through `rename`."""
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    old = h5py.File(io.BytesIO(members["model.weights.h5"]), "r")
    buf = io.BytesIO()
    with h5py.File(buf, "w") as new:
        def copy(name, obj):
            if hasattr(obj, "shape"):
                parent, _, leaf = name.rpartition("/")
                group = new.require_group(rename(parent)) if parent else new
                group.create_dataset(leaf, data=obj[()])
        old.visititems(copy)
    members["model.weights.h5"] = buf.getvalue()
    with zipfile.ZipFile(dst, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)


@pytest.mark.parametrize("rename", [
    lambda p: p.replace("/", "\\"),                                    # Windows: one group per joined path
    lambda p: p.replace("layers", "_layer_checkpoint_dependencies", 1),  # Keras 2.13-2.15's group name
], ids=["backslashes", "layer_checkpoint_dependencies"])
def test_older_and_windows_weight_paths_load_with_the_same_predictions(tmp_path, rename):
    model, path = _archive(tmp_path)
    other = tmp_path / "other.keras"
    _rewrite_weights(path, other, rename)
    with zipfile.ZipFile(other) as z, h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as f:
        assert "layers" not in f  # the test really exercises the other layout
    x = np.random.default_rng(1).random((5, 4)).astype("float32")
    np.testing.assert_allclose(load_model(other).predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_a_model_saved_before_it_was_built_loads_unbuilt_as_in_keras(tmp_path):
    model = keras.Sequential([layers.Dense(3), layers.Dense(2)])
    path = tmp_path / "unbuilt.keras"
    with zipfile.ZipFile(path, "w") as z:  # what Keras 3.15 writes for it: a config and an empty weights file
        z.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        z.writestr("config.json", json.dumps({"module": "keras", "class_name": "Sequential", "config": {
            "name": "sequential", "layers": [json.loads(json.dumps({"module": "keras.layers", "class_name": "Dense",
                                                                    "config": l.get_config()}))
                                             for l in model.layers]}}))
        buf = io.BytesIO()
        with h5py.File(buf, "w") as f:
            f.create_group("layers/dense/vars")
        z.writestr("model.weights.h5", buf.getvalue())
    loaded = load_model(path)
    assert not loaded.built and [type(l).__name__ for l in loaded.layers] == ["Dense", "Dense"]
    # the same archive with weights but no input shape is damaged, and the error says what is missing
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.create_dataset("layers/dense/vars/0", data=np.zeros((4, 3), "float32"))
    members["model.weights.h5"] = buf.getvalue()
    damaged = tmp_path / "damaged.keras"
    with zipfile.ZipFile(damaged, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    with pytest.raises(FileFormatError, match="holds weights, but the model its config describes has no input shape"):
        load_model(damaged)

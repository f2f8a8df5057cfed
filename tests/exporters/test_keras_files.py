"""Whole-model files and configs: Keras's .h5/.keras/JSON/YAML read from real Keras, written for either Keras."""

import json
import zipfile

import h5py
import numpy as np
import pytest

import core as keras
from core import layers
from core.errors import FileFormatError, NetweaverError
from core.models import load_model, model_from_json, model_from_yaml
from exporters.keras_config import to_config
from tests.fixture_utils import (FIXTURE_ARCHITECTURES, FIXTURE_KINDS, GENERATIONS, assert_matches_fixture, fixture_names,
                                 fixture_path)


def _functional():
    x = keras.Input((5,), name="x")
    h = layers.Dense(4, activation="relu", name="h")(x)
    return keras.Model(x, layers.Dense(2, name="y")(h), name="net")


@pytest.mark.parametrize("generation", GENERATIONS)
def test_every_fixture_architecture_is_pinned(fixtures_dir, generation):
    """The fixture tests run the pinned list, so a fixture added to the manifests must be pinned to be tested."""
    assert fixture_names(fixtures_dir, generation) == list(FIXTURE_ARCHITECTURES)


@pytest.mark.parametrize("generation,kind", FIXTURE_KINDS)
def test_fixture_model_files_load_and_predict_like_keras(fixtures_dir, generation, kind):
    for name in FIXTURE_ARCHITECTURES:
        model = load_model(fixture_path(fixtures_dir, generation, f"{name}{kind}"))
        assert_matches_fixture(model, fixtures_dir, generation, name)


def test_tf_keras2_dialect():
    model = _functional()
    cfg = to_config(model, "tf_keras2")
    assert cfg["keras_version"].startswith("2.") and cfg["backend"] == "tensorflow"
    first, second = cfg["config"]["layers"][:2]
    assert first["config"]["batch_input_shape"] == [None, 5] and "batch_shape" not in first["config"]
    assert second["inbound_nodes"] == [[["x", 0, 0, {}]]]
    assert cfg["config"]["input_layers"] == [["x", 0, 0]] and cfg["config"]["output_layers"] == [["y", 0, 0]]
    k3 = to_config(model, "keras3")
    assert k3["config"]["layers"][1]["inbound_nodes"][0]["args"][0]["config"]["keras_history"] == ["x", 0, 0]
    assert k3["config"]["layers"][0]["config"]["batch_shape"] == [None, 5]


@pytest.mark.parametrize("target", ["keras3", "tf_keras2"])
def test_json_and_yaml_round_trip(target):
    model = _functional()
    x = np.random.default_rng(1).random((3, 5)).astype("float32")
    for text, reader in ((model.to_json(target=target), model_from_json),
                         (model.to_yaml(target=target), model_from_yaml)):
        clone = reader(text)
        clone.set_weights(model.get_weights())
        np.testing.assert_allclose(clone.predict(x), model.predict(x), atol=1e-6)


@pytest.mark.parametrize("suffix,target", [(".h5", "keras3"), (".h5", "tf_keras2"), (".keras", "keras3")])
def test_save_and_load_model(tmp_path, suffix, target):
    model = _functional()
    model.save(tmp_path / f"m{suffix}", target=target)
    clone = load_model(tmp_path / f"m{suffix}")
    x = np.random.default_rng(2).random((3, 5)).astype("float32")
    np.testing.assert_allclose(clone.predict(x), model.predict(x), atol=1e-6)
    assert clone.name == "net" and [l.name for l in clone.layers] == ["x", "h", "y"]


def test_h5_layout(tmp_path):
    _functional().save(tmp_path / "m.h5", target="tf_keras2")
    with h5py.File(tmp_path / "m.h5") as f:
        assert json.loads(f.attrs["model_config"])["class_name"] == "Functional"
        assert f.attrs["keras_version"].startswith("2.")
        assert "model_weights" in f and "training_config" not in f.attrs  # not compiled


def test_not_a_model_json_or_yaml():
    with pytest.raises(FileFormatError, match="Not valid JSON"):
        model_from_json("{nope")
    with pytest.raises(FileFormatError, match="class_name"):
        model_from_json('{"layers": []}')
    with pytest.raises(FileFormatError, match="single Dense layer"):
        model_from_json(json.dumps({"class_name": "Dense", "config": {"units": 3}}))
    with pytest.raises(FileFormatError, match="Python objects are never"):
        model_from_yaml("!!python/object/apply:os.system ['echo hacked']")
    with pytest.raises(FileFormatError, match="YAML"):
        model_from_yaml("a: [b")


def test_damaged_files_are_file_format_errors_naming_the_file(tmp_path, fixtures_dir):
    good = fixture_path(fixtures_dir, "keras3", "seed_mlp.h5").read_bytes()
    (tmp_path / "trunc.h5").write_bytes(good[: len(good) // 3])
    (tmp_path / "text.h5").write_bytes(b"hello")
    with h5py.File(tmp_path / "empty.h5", "w"):
        pass
    with zipfile.ZipFile(tmp_path / "other.keras", "w") as z:
        z.writestr("readme.txt", "hi")
    for name in ("trunc.h5", "text.h5", "empty.h5", "other.keras"):
        with pytest.raises(FileFormatError, match=name.replace(".", r"\.")):
            load_model(tmp_path / name)
    with pytest.raises(FileFormatError, match="weights only"):
        load_model(fixture_path(fixtures_dir, "keras2", "seed_mlp_weights.h5"))


def test_weights_that_do_not_fit_the_config_give_no_model(tmp_path):
    model = _functional()
    model.save(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        cfg["config"]["layers"][1]["config"]["units"] = 7
        f.attrs["model_config"] = json.dumps(cfg)
    with pytest.raises(NetweaverError, match=r"'h'.*\(5, 7\).*\(5, 4\)"):
        load_model(tmp_path / "m.h5")


def test_unknown_suffix_and_wrong_target(tmp_path):
    with pytest.raises(FileFormatError, match=r"\.keras"):
        _functional().save(tmp_path / "model")
    with pytest.raises(FileFormatError, match="Keras 3"):
        _functional().save(tmp_path / "m.keras", target="tf_keras2")


@pytest.mark.parametrize("suffix,target", [(".h5", "keras3"), (".h5", "tf_keras2"), (".keras", "keras3")])
def test_compiled_model_keeps_its_training_config(tmp_path, suffix, target):
    from core import optimizers

    model = _functional()
    model.compile(optimizer=optimizers.Adam(learning_rate=0.01), loss="mse", loss_weights=[1.0])
    model.save(tmp_path / f"m{suffix}", target=target)
    if suffix == ".h5":
        with h5py.File(tmp_path / "m.h5") as f:
            training = json.loads(f.attrs["training_config"])
        assert training["loss"] == ("mean_squared_error" if target == "keras3" else "mse")
        assert training["loss_weights"] == [1.0]
        assert training["optimizer_config"]["class_name"].split(">")[-1] == "Adam"
        assert ("loss_scale_factor" in training["optimizer_config"]["config"]) == (target == "keras3")
    loaded = load_model(tmp_path / f"m{suffix}")
    assert type(loaded.optimizer).__name__ == "Adam"
    assert loaded.optimizer.get_config()["learning_rate"] == pytest.approx(0.01)

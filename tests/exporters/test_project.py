"""The .nwproj project file: round trip, weights sidecar, atomic save, unknown fields, newer schema, autosave."""

import json

import numpy as np
import pytest

import core as keras
from core import layers
from core.document import Document
from core.errors import FileFormatError
from exporters import project


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("NETWEAVER_DATA", str(tmp_path / "data"))


def small_doc():
    inputs = keras.Input(shape=(6,), name="x")
    out = layers.Dense(3, name="out")(layers.Dense(4, activation="relu", name="h")(inputs))
    return Document.from_model(keras.Model(inputs, out, name="small"))


def test_round_trip_keeps_graph_positions_settings_and_weights(tmp_path):
    doc = small_doc()
    doc.training = {"compile": {"optimizer": "adam", "loss": "mse"}, "fit": {"epochs": 3, "batch_size": 8}}
    doc.datasets = [{"name": "train", "path": "data/train.npz"}]
    path = project.save_project(doc, tmp_path / "p.nwproj")
    data = json.loads(path.read_text())
    assert data["schema_version"] == project.SCHEMA_VERSION and data["weights"] == "p.weights.npz"
    back = project.load_project(path)
    assert back.graph_dict() == doc.graph_dict()
    assert back.training == doc.training and back.datasets == doc.datasets
    for nid, node in doc.nodes.items():
        for a, b in zip(node.weights or [], back.nodes[nid].weights or []):
            np.testing.assert_array_equal(a, b)
    x = np.ones((2, 6), "float32")
    np.testing.assert_allclose(back.to_model().predict(x), doc.to_model().predict(x), rtol=1e-6)


def test_unknown_fields_from_a_newer_version_are_kept_on_resave(tmp_path):
    path = project.save_project(small_doc(), tmp_path / "p.nwproj")
    data = json.loads(path.read_text())
    data["future_panel"] = {"layout": [1, 2, 3]}
    path.write_text(json.dumps(data))
    project.save_project(project.load_project(path), tmp_path / "q.nwproj")
    assert json.loads((tmp_path / "q.nwproj").read_text())["future_panel"] == {"layout": [1, 2, 3]}


@pytest.mark.parametrize("content, message", [
    (b"\x89PNG\r\n", "not JSON"),
    (b'{"hello": 1}', "not a Netweaver project"),
    (b'{"format": "netweaver-project", "schema_version": 99, "graph": {"nodes": []}}', "newer Netweaver"),
    (b'{"format": "netweaver-project", "schema_version": 1}', "no graph"),
    (b'{"format": "netweaver-project", "schema_version": 1, "graph": {"nodes": [{"id": "a", '
     b'"class_name": "Dense", "config": {"units": 2}}], "wires": [{"src": "a", "src_port": 0, "dst": "zz", '
     b'"dst_port": 0}]}}', "does not exist"),
])
def test_broken_or_foreign_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.nwproj"
    path.write_bytes(content)
    with pytest.raises(FileFormatError, match=message):
        project.load_project(path)


def test_missing_file_and_missing_weights(tmp_path):
    with pytest.raises(FileFormatError, match="Cannot read"):
        project.load_project(tmp_path / "none.nwproj")
    path = project.save_project(small_doc(), tmp_path / "p.nwproj")
    (tmp_path / "p.weights.npz").unlink()
    with pytest.raises(FileFormatError, match="weights file"):
        project.load_project(path)


def test_save_is_atomic_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = project.save_project(small_doc(), tmp_path / "p.nwproj")
    before = path.read_bytes()
    doc = small_doc()
    doc.training = {"bad": object()}  # not JSON: the write fails midway
    with pytest.raises(TypeError):
        project.save_project(doc, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


def test_autosave_is_listed_recoverable_and_discarded(tmp_path):
    doc = small_doc()
    target = project.autosave(doc, None, "untitled-1")
    assert project.autosave_candidates() == [target]
    recovered, origin = project.load_autosave(target)
    assert origin is None and recovered.graph_dict() == doc.graph_dict()
    assert recovered.nodes[list(recovered.nodes)[1]].weights is not None
    project.discard_autosave(None, "untitled-1")
    assert project.autosave_candidates() == [] and not target.exists()
    saved = tmp_path / "named.nwproj"
    t2 = project.autosave(doc, saved)
    assert t2.name == "named.nwproj.autosave" and project.load_autosave(t2)[1] == str(saved.resolve())


def test_an_imported_models_keras_generation_is_remembered(tmp_path, fixtures_dir):
    from core.models import load_model

    doc = Document.from_model(load_model(fixtures_dir / "keras2" / "seed_functional.h5", compile=False))
    assert doc.keras_generation == "tf_keras2"
    back = project.load_project(project.save_project(doc, tmp_path / "p.nwproj"))
    assert back.keras_generation == "tf_keras2" and back.to_model().keras_generation == "tf_keras2"
    assert project.load_project(project.save_project(small_doc(), tmp_path / "q.nwproj")).keras_generation is None
    data = json.loads((tmp_path / "p.nwproj").read_text())
    data["keras_generation"] = "keras4"
    (tmp_path / "p.nwproj").write_text(json.dumps(data))
    with pytest.raises(FileFormatError, match="keras_generation"):
        project.load_project(tmp_path / "p.nwproj")


def test_a_shared_layer_is_stored_once_and_reopens_with_every_call(tmp_path):
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    shared = layers.Dense(3, name="shared")
    model = keras.Model([a, b], layers.Add(name="add")([shared(a), shared(b)]))
    doc = Document.from_model(model)
    path = project.save_project(doc, tmp_path / "siamese.nwproj")
    with np.load(project.weights_path_for(path)) as z:
        assert sorted(z.files) == ["n3/0", "n3/1"]  # one copy of the shared kernel and bias
    again = project.load_project(path)
    calls = [nid for nid, n in again.nodes.items() if n.name == "shared"]
    assert again.calls_of(calls[0]) == calls and len(calls) == 2
    assert all(np.array_equal(x, y) for c in calls for x, y in zip(again.nodes[c].weights, shared.get_weights()))
    x = np.ones((2, 4), "float32")
    np.testing.assert_allclose(again.to_model().predict([x, 2 * x], verbose=0), model.predict([x, 2 * x], verbose=0),
                               atol=1e-6)

"""The Transformer encoder example (resources/examples/transformer_encoder.nwproj) against a real Keras 3 training
run: the project is opened, written as Keras 3 JSON and read by real Keras, both start from Keras's initial weights
and train on the example's own data; history within 1e-4 and weights within 1e-3. Its dropout rates are set to 0 on
both sides first, since two random generators cannot drop the same units. Also: the example trains from the command
line, its trained model exports to ONNX and saves for both Kerases."""

import copy
import shutil
from pathlib import Path

import numpy as np

from exporters.keras_config import to_json
from exporters.project import load_project
from tests.core.keras_reference import keras3  # noqa: F401  (a fixture)
from tests.interop import layer_models

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
PROJECT = EXAMPLES / "transformer_encoder.nwproj"


def _data(n=96):
    with np.load(EXAMPLES / "transformer_encoder_data.npz") as z:
        return z["x_train"][:n], z["y_train"][:n]


def _without_dropout(doc):
    doc = copy.deepcopy(doc)
    for node in doc.nodes.values():
        if node.class_name == "Dropout":
            node.config["rate"] = 0.0
    return doc


def test_example_is_the_encoder_block():
    doc = load_project(PROJECT)
    classes = sorted(n.class_name for n in doc.nodes.values())
    for cls in ("MultiHeadAttention", "LayerNormalization", "Add", "Dense", "Embedding"):
        assert cls in classes
    assert classes.count("LayerNormalization") == 2 and classes.count("Add") == 2
    assert not doc.errors() and doc.training["epochs"] == 5


def test_transformer_block_trains_like_keras3(keras3):
    doc = _without_dropout(load_project(PROJECT))
    config_json = to_json(doc.to_model(), "keras3")

    def build(lib):
        if lib is keras3:
            return keras3.models.model_from_json(config_json)
        return doc.to_model()

    x, y = _data()
    ours, ref = layer_models.train_both_like_keras(keras3, build, x, y, learning_rate=0.003,
                                                   loss="sparse_categorical_crossentropy", batch_size=16)
    assert ours.get_layer("self_attention").get_weights()[0].shape == (32, 2, 32)
    np.testing.assert_allclose(ours.predict(x[:8], verbose=0), ref.predict(x[:8], verbose=0), atol=1e-4)


def test_example_trains_from_the_command_line_and_exports(tmp_path):
    from exporters.onnx_export import export_onnx, run_onnx
    from app.train_command import train

    for f in EXAMPLES.glob("transformer_encoder*"):
        shutil.copy(f, tmp_path / f.name)
    result = train(tmp_path / "transformer_encoder.nwproj", epochs=1, device="cpu", verbose=0)
    assert result.history.history["loss"][0] > 0
    x, _ = _data(8)
    export_onnx(result.model, tmp_path / "encoder.onnx")
    np.testing.assert_allclose(run_onnx(tmp_path / "encoder.onnx", [x])[0], result.model.predict(x, verbose=0),
                               atol=1e-5)
    for target in ("keras3", "tf_keras2"):
        path = tmp_path / f"encoder_{target}.h5"
        result.model.save(str(path), target=target)
        assert path.stat().st_size > 0

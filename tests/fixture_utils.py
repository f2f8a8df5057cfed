"""Reading the reference models that real Keras wrote (`../shared/fixtures/keras`), for tests of any architecture.

`load_fixture_model(fixtures_dir, "keras2" | "keras3", NAME)` builds our model from `NAME.json` and loads the
weights-only file (`NAME_weights.h5` for keras2, `NAME.weights.h5` for keras3); `fixture_io` gives the inputs Keras
was fed and the outputs its `predict` returned; `fixture_manifest` the shapes and parameter counts.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

GENERATIONS = ("keras2", "keras3")
# Every architecture in the fixtures' manifests, pinned: the interop, file and ONNX tests run all of them, so a layer
# class that goes missing fails those tests instead of quietly dropping the fixtures that use it.
FIXTURE_ARCHITECTURES = ("seed_mlp", "seed_functional", "seed_lstm", "seed_gru_simplernn", "seed_seq2seq",
                         "seed_bidirectional", "seed_mask_zero", "seed_masking", "seed_timedistributed", "seed_conv1d")
# The whole-model files real Keras wrote per generation (the .json needs its weights file beside it).
FIXTURE_KINDS = [("keras2", ".h5"), ("keras3", ".h5"), ("keras3", ".keras")]


def default_fixtures_dir() -> Path:
    """The same directory as conftest's `fixtures_dir`, for code that runs before fixtures (parametrization)."""
    import os

    shared = Path(os.environ.get("NETWEAVER_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    return shared / "fixtures" / "keras"


def fixture_path(fixtures_dir, generation: str, filename: str) -> Path:
    if generation not in GENERATIONS:
        raise ValueError(f"generation must be one of {GENERATIONS}, got {generation!r}")
    return Path(fixtures_dir) / generation / filename


def weights_filename(generation: str, name: str) -> str:
    return f"{name}_weights.h5" if generation == "keras2" else f"{name}.weights.h5"


def fixture_manifest(fixtures_dir, generation: str) -> dict:
    return json.loads(fixture_path(fixtures_dir, generation, "manifest.json").read_text())["models"]


def fixture_names(fixtures_dir, generation: str = "keras3") -> list[str]:
    return list(fixture_manifest(fixtures_dir, generation))


def fixture_config(fixtures_dir, generation: str, name: str) -> dict:
    return json.loads(fixture_path(fixtures_dir, generation, f"{name}.json").read_text())


def load_fixture_model(fixtures_dir, generation: str, name: str, *, weights: bool = True):
    """Our model from the fixture's JSON config, with the fixture's weights-only file loaded."""
    from core.models import model_from_config

    model = model_from_config(fixture_config(fixtures_dir, generation, name))
    if weights:
        model.load_weights(str(fixture_path(fixtures_dir, generation, weights_filename(generation, name))))
    return model


def fixture_io(fixtures_dir, generation: str, name: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """([input_0, ...], [output_0, ...]) from NAME_io.npz."""
    with np.load(fixture_path(fixtures_dir, generation, f"{name}_io.npz")) as data:
        inputs = [data[f"input_{i}"] for i in range(len(data.files)) if f"input_{i}" in data.files]
        outputs = [data[f"output_{i}"] for i in range(len(data.files)) if f"output_{i}" in data.files]
    return inputs, outputs


def predict_list(model, inputs: list[np.ndarray]) -> list[np.ndarray]:
    out = model.predict(inputs[0] if len(inputs) == 1 else inputs, verbose=0)
    return list(out) if isinstance(out, list) else [out]


def assert_matches_fixture(model, fixtures_dir, generation: str, name: str, atol: float = 1e-5) -> None:
    """predict reproduces Keras's outputs and count_params equals Keras's count."""
    inputs, outputs = fixture_io(fixtures_dir, generation, name)
    got = predict_list(model, inputs)
    assert len(got) == len(outputs), f"{name}: {len(got)} outputs, Keras gave {len(outputs)}"
    for i, (g, want) in enumerate(zip(got, outputs)):
        assert g.shape == want.shape, f"{name} output {i}: shape {g.shape}, Keras {want.shape}"
        np.testing.assert_allclose(g, want, atol=atol, rtol=0, err_msg=f"{generation}/{name} output {i}")
    params = fixture_manifest(fixtures_dir, generation)[name]["params"]
    assert model.count_params() == params, f"{name}: {model.count_params()} params, Keras {params}"

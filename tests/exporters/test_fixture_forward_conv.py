"""seed_conv1d (Embedding -> SpatialDropout1D -> ZeroPadding1D -> Conv1D -> GlobalMaxPooling1D -> Dense), read from
real Keras's files, reproduces Keras's predictions and parameter count in both generations."""

import numpy as np
import pytest

from tests.fixture_utils import assert_matches_fixture, fixture_io, load_fixture_model


@pytest.mark.parametrize("generation", ["keras2", "keras3"])
def test_seed_conv1d_matches_keras(fixtures_dir, generation):
    model = load_fixture_model(fixtures_dir, generation, "seed_conv1d")
    assert_matches_fixture(model, fixtures_dir, generation, "seed_conv1d", atol=1e-5)
    shapes = [(type(layer).__name__, layer.output.shape) for layer in model.layers]
    assert shapes == [("Embedding", (None, 50, 16)), ("SpatialDropout1D", (None, 50, 16)),
                      ("ZeroPadding1D", (None, 54, 16)), ("Conv1D", (None, 50, 32)),
                      ("GlobalMaxPooling1D", (None, 32)), ("Dense", (None, 2))]
    conv = model.get_layer("conv1d")
    assert conv.get_config()["kernel_size"] == (5,) and conv.kernel.shape == (5, 16, 32)


def test_seed_conv1d_inference_graph_uses_onnx_conv(fixtures_dir):
    model = load_fixture_model(fixtures_dir, "keras3", "seed_conv1d")
    ops = [n.op_type for n in model.inference_graph().nodes]
    assert ops.count("Conv") == 1 and ops.count("Pad") == 1 and "ReduceMax" in ops
    assert "RandomUniformLike" not in ops  # SpatialDropout1D is the identity at inference
    inputs, outputs = fixture_io(fixtures_dir, "keras3", "seed_conv1d")
    # Batch of one, and a batch size that splits the data unevenly.
    np.testing.assert_allclose(model.predict(inputs[0][:1], verbose=0), outputs[0][:1], atol=1e-5)
    np.testing.assert_allclose(model.predict(inputs[0], batch_size=3, verbose=0), outputs[0], atol=1e-5)

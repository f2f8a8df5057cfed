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


def _reference_models(lib):
    """Every convolution, pooling and reshaping layer, in a 1-D and a 2-D model, built by a real Keras."""
    L = lib.layers
    seq = lib.Input(shape=(20, 3))
    h = L.ZeroPadding1D((1, 2))(seq)
    h = L.Conv1D(6, 3, strides=2, padding="same", activation="relu", bias_initializer="random_normal")(h)
    h = L.Conv1D(6, 2, padding="causal", dilation_rate=2, groups=2)(h)
    h = L.SeparableConv1D(5, 3, padding="same", depth_multiplier=2)(h)
    h = L.DepthwiseConv1D(2, depth_multiplier=2)(h)
    h = L.Conv1DTranspose(4, 3, strides=2, bias_initializer="random_normal")(h)
    h = L.MaxPooling1D(3, strides=2, padding="same")(h)
    h = L.AveragePooling1D(2, padding="same")(h)
    h = L.Cropping1D((1, 0))(h)
    h = L.UpSampling1D(2)(h)
    a = L.GlobalMaxPooling1D()(h)
    b = L.Flatten()(L.Permute((2, 1))(h))
    c = L.GlobalAveragePooling1D(keepdims=True)(h)
    one_d = lib.Model(seq, [a, b, L.Reshape((-1,))(L.RepeatVector(2)(L.Flatten()(c)))])

    img = lib.Input(shape=(9, 8, 2))
    h = L.ZeroPadding2D(((1, 0), (2, 1)))(img)
    h = L.Conv2D(4, (3, 2), strides=(2, 1), padding="same", activation="tanh", bias_initializer="random_normal")(h)
    h = L.DepthwiseConv2D(3, padding="same")(h)
    h = L.SeparableConv2D(3, 2)(h)
    h = L.Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=1)(h)
    h = L.MaxPooling2D((2, 3), padding="same")(h)
    h = L.AveragePooling2D(2, strides=1)(h)
    h = L.Cropping2D(((0, 1), (1, 0)))(h)
    h = L.UpSampling2D((2, 1))(h)
    two_d = lib.Model(img, [L.GlobalAveragePooling2D()(h), L.GlobalMaxPooling2D(keepdims=True)(h),
                            L.Flatten()(L.UpSampling2D(2, interpolation="bilinear")(h))])
    return one_d, two_d


@pytest.mark.parametrize("generation", ["keras3", "keras2"])
def test_conv_layers_read_from_keras_json_predict_like_keras(generation):
    """Each Keras writes the models' JSON; Netweaver reads it, takes Keras's weights, and predicts the same."""
    import os

    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if generation == "keras3":
        import keras as lib
    else:
        import tf_keras as lib
    from core.models import model_from_json

    rng = np.random.default_rng(4)
    data = [rng.standard_normal((3, 20, 3)).astype("float32"), rng.standard_normal((3, 9, 8, 2)).astype("float32")]
    for ref, x in zip(_reference_models(lib), data):
        expected = ref.predict(x, verbose=0)
        ours = model_from_json(ref.to_json())
        ours.set_weights(ref.get_weights())
        assert ours.count_params() == ref.count_params()
        for got, want in zip(ours.predict(x, verbose=0), expected):
            np.testing.assert_allclose(got, want, atol=1e-5, err_msg=f"{generation} {ref.name}")


@pytest.mark.parametrize("target", ["keras3", "tf_keras2"])
def test_conv_layers_written_as_json_load_in_keras(target):
    """The other way: Netweaver writes the models' JSON for a Keras generation, which loads it, takes Netweaver's
    weights and predicts what Netweaver predicts."""
    import os

    import core as nw

    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if target == "keras3":
        import keras as lib
    else:
        import tf_keras as lib
    rng = np.random.default_rng(5)
    data = [rng.standard_normal((2, 20, 3)).astype("float32"), rng.standard_normal((2, 9, 8, 2)).astype("float32")]
    for ours, x in zip(_reference_models(nw), data):
        ref = lib.models.model_from_json(ours.to_json(target=target))
        ref.set_weights(ours.get_weights())
        for got, want in zip(ours.predict(x, verbose=0), ref.predict(x, verbose=0)):
            np.testing.assert_allclose(got, want, atol=1e-5, err_msg=f"{target} {ours.name}")

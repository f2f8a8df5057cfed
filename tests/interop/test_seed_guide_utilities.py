"""The seed guide's own list (003, sections 2.2 and 9.1) gives what tf.keras 2 gives: `backend.function` beside the
sub-model way, `preprocessing.text.hashing_trick`/`one_hot`, `preprocessing.sequence.TimeseriesGenerator`,
`skipgrams`, `make_sampling_table`, and `preprocessing.image` (pictures, the random transforms, ImageDataGenerator
with flow and flow_from_directory), compared with tf_keras's own functions on the same inputs and seeds."""

import os
import random

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
import tf_keras  # noqa: E402
from tf_keras.preprocessing import image as tf_image  # noqa: E402
from tf_keras.preprocessing import sequence as tf_sequence  # noqa: E402
from tf_keras.preprocessing import text as tf_text  # noqa: E402

import core  # noqa: E402
from core.preprocessing import image, sequence, text  # noqa: E402


def test_backend_function_gives_intermediate_outputs_like_tf_keras():
    theirs = tf_keras.Sequential([tf_keras.Input((5,)), tf_keras.layers.Dense(4, activation="relu"),
                                  tf_keras.layers.Dense(3, activation="tanh"), tf_keras.layers.Dense(2)])
    ours = core.Sequential([core.Input((5,)), core.layers.Dense(4, activation="relu"),
                            core.layers.Dense(3, activation="tanh"), core.layers.Dense(2)])
    ours.set_weights(theirs.get_weights())
    x = np.random.default_rng(0).normal(size=(6, 5)).astype("float32")
    expected = tf_keras.backend.function([theirs.layers[0].input], [theirs.layers[1].output])([x])
    got = core.backend.function([ours.layers[0].input], [ours.layers[1].output])([x])
    assert isinstance(got, list) and len(got) == 1
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-5, atol=1e-6)
    # The sub-model way gives the same.
    np.testing.assert_allclose(core.Model(ours.input, ours.layers[1].output).predict(x, verbose=0), got[0],
                               rtol=1e-6)
    single = core.backend.function(ours.input, ours.output)(x)
    np.testing.assert_allclose(single, theirs(x).numpy(), rtol=1e-5, atol=1e-6)


TEXT = "The cat sat on the mat; the DOG sat, too! Ünïcode wörds"


@pytest.mark.parametrize("kwargs", [dict(n=50), dict(n=7, hash_function="md5"), dict(n=20, lower=False),
                                    dict(n=30, filters="", split=";")])
def test_hashing_trick_matches(kwargs):
    assert text.hashing_trick(TEXT, **kwargs) == tf_text.hashing_trick(TEXT, **kwargs)


def test_one_hot_matches_in_the_same_interpreter():
    assert text.one_hot(TEXT, 25) == tf_text.one_hot(TEXT, 25)
    with pytest.raises(core.errors.InputDataError, match="at least 2"):
        text.hashing_trick(TEXT, 1)


def test_make_sampling_table_and_skipgrams_match():
    np.testing.assert_allclose(sequence.make_sampling_table(30, 1e-3), tf_sequence.make_sampling_table(30, 1e-3))
    seq = [3, 0, 5, 2, 8, 1, 4, 0, 9, 6]
    table = tf_sequence.make_sampling_table(10, 0.3)
    for kwargs in (dict(), dict(window_size=2, negative_samples=0.5, categorical=True, seed=5),
                   dict(window_size=3, shuffle=False, sampling_table=table)):
        random.seed(12)
        expected = tf_sequence.skipgrams(seq, 10, **kwargs)
        random.seed(12)
        assert sequence.skipgrams(seq, 10, **kwargs) == expected


@pytest.mark.parametrize("kwargs", [dict(length=5, batch_size=4), dict(length=6, sampling_rate=2, stride=3,
                                                                        batch_size=3, start_index=4, end_index=40),
                                    dict(length=3, reverse=True, batch_size=7)])
def test_timeseries_generator_matches(kwargs):
    data = np.arange(100, dtype="float32").reshape(50, 2)
    targets = np.arange(50) * 3
    ours = sequence.TimeseriesGenerator(data, targets, **kwargs)
    theirs = tf_sequence.TimeseriesGenerator(data, targets, **kwargs)
    assert len(ours) == len(theirs)
    for i in range(len(ours)):
        for a, b in zip(ours[i], theirs[i]):
            np.testing.assert_array_equal(a, b)
    assert ours.get_config() == theirs.get_config()


def test_timeseries_generator_trains_and_predicts():
    data = np.sin(np.arange(60, dtype="float32") / 5).reshape(60, 1)
    gen = sequence.TimeseriesGenerator(data, data, length=6, batch_size=8)
    model = core.Sequential([core.Input((6, 1)), core.layers.LSTM(4), core.layers.Dense(1)])
    model.compile("adam", "mse")
    history = model.fit(gen, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    assert model.predict(gen, verbose=0).shape == (54, 1)
    with pytest.raises(core.errors.InputDataError, match="same length"):
        sequence.TimeseriesGenerator(data, data[:5], length=3)


@pytest.fixture(scope="module")
def picture_folder(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(0)
    for label, count in (("cats", 5), ("dogs", 4)):
        (root / label).mkdir()
        for i in range(count):
            size = (int(rng.integers(8, 14)), int(rng.integers(8, 14)))
            pixels = rng.integers(0, 256, size=size[::-1] + (3,), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{label}{i}.{'png' if i % 2 else 'bmp'}")
        (root / label / "readme.txt").write_text("not a picture")
    return root


@pytest.mark.parametrize("kwargs", [dict(), dict(color_mode="grayscale", target_size=(6, 5)),
                                    dict(color_mode="rgba", target_size=(7, 9), interpolation="bilinear",
                                         keep_aspect_ratio=True)])
def test_pictures_load_and_convert_like_tf_keras(picture_folder, kwargs, tmp_path):
    path = str(picture_folder / "cats" / "cats1.png")
    ours, theirs = image.load_img(path, **kwargs), tf_image.load_img(path, **kwargs)
    assert ours.mode == theirs.mode and ours.size == theirs.size
    a, b = image.img_to_array(ours), tf_image.img_to_array(theirs)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(image.img_to_array(ours, data_format="channels_first"),
                                  tf_image.img_to_array(theirs, data_format="channels_first"))
    for scale in (True, False):
        np.testing.assert_array_equal(np.asarray(image.array_to_img(a * 0.7, scale=scale)),
                                      np.asarray(tf_image.array_to_img(a * 0.7, scale=scale)))
    assert sorted(image.list_pictures(str(picture_folder))) == sorted(
        os.path.join(r, f) for r, _, fs in os.walk(picture_folder) for f in fs if not f.endswith(".txt"))
    assert all(p.endswith(".png") for p in image.list_pictures(str(picture_folder), ext="png"))
    # Keras 3 keeps the picture functions in keras.utils too.
    np.testing.assert_array_equal(core.utils.img_to_array(core.utils.load_img(path, **kwargs)), b)
    core.utils.save_img(str(tmp_path / "copy.bmp"), a)
    np.testing.assert_array_equal(image.img_to_array(image.load_img(str(tmp_path / "copy.bmp"), **kwargs)),
                                  tf_image.img_to_array(tf_image.load_img(str(tmp_path / "copy.bmp"), **kwargs)))
    np.testing.assert_array_equal(core.utils.img_to_array(core.utils.array_to_img(a)),
                                  tf_image.img_to_array(tf_image.array_to_img(a)))


IMAGE = np.random.default_rng(1).random((3, 11, 9)).astype("float32") * 255


@pytest.mark.parametrize("name,args", [
    ("random_rotation", (40,)), ("random_shift", (0.2, 0.3)), ("random_shear", (25,)),
    ("random_zoom", ((0.7, 1.3),)), ("random_channel_shift", (30,)),
])
@pytest.mark.parametrize("fill_mode", ["nearest", "constant", "reflect", "wrap"])
def test_random_transforms_match_with_the_same_seed(name, args, fill_mode):
    kwargs = {} if name == "random_channel_shift" else dict(fill_mode=fill_mode, cval=7.0)
    np.random.seed(3)
    expected = getattr(tf_image, name)(IMAGE, *args, **kwargs)
    np.random.seed(3)
    got = getattr(image, name)(IMAGE, *args, **kwargs)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-3)


def test_brightness_and_affine_match():
    x = np.transpose(IMAGE, (1, 2, 0))
    np.random.seed(4)
    expected = tf_image.random_brightness(x, (0.5, 1.5))
    np.random.seed(4)
    np.testing.assert_allclose(image.random_brightness(x, (0.5, 1.5)), expected)
    args = dict(theta=20, tx=2, ty=-1, shear=10, zx=0.9, zy=1.2, row_axis=0, col_axis=1, channel_axis=2)
    np.testing.assert_allclose(image.apply_affine_transform(x, **args),
                               tf_image.apply_affine_transform(x, **args), rtol=1e-5, atol=1e-3)


GENERATOR_ARGS = dict(rotation_range=20, width_shift_range=0.1, height_shift_range=[1, 2], shear_range=5,
                      zoom_range=0.2, channel_shift_range=10.0, horizontal_flip=True, vertical_flip=True,
                      rescale=1 / 255.0, featurewise_center=True, featurewise_std_normalization=True,
                      fill_mode="reflect")


def test_image_data_generator_flow_matches():
    x = np.random.default_rng(2).random((10, 8, 8, 3)).astype("float32") * 255
    y = np.arange(10)
    sw = np.linspace(0.1, 1, 10)
    ours, theirs = image.ImageDataGenerator(**GENERATOR_ARGS), tf_image.ImageDataGenerator(**GENERATOR_ARGS)
    ours.fit(x, augment=True, rounds=2, seed=1)
    theirs.fit(x, augment=True, rounds=2, seed=1)
    np.testing.assert_allclose(ours.mean, theirs.mean, rtol=1e-5)
    np.testing.assert_allclose(ours.std, theirs.std, rtol=1e-5)
    a = ours.flow(x, y, batch_size=4, seed=9, sample_weight=sw)
    b = theirs.flow(x, y, batch_size=4, seed=9, sample_weight=sw)
    assert len(a) == len(b) == 3
    for i in (0, 2, 1):
        for p, q in zip(a[i], b[i]):
            np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-4)
    for _ in range(4):  # the endless iteration, with its own seeding per batch
        for p, q in zip(next(a), next(b)):
            np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-4)
    zca = dict(zca_whitening=True)
    ours_zca, theirs_zca = image.ImageDataGenerator(**zca), tf_image.ImageDataGenerator(**zca)
    ours_zca.fit(x[:, :4, :4])
    theirs_zca.fit(x[:, :4, :4])
    np.testing.assert_allclose(ours_zca.standardize(x[0, :4, :4].copy()),
                               theirs_zca.standardize(x[0, :4, :4].copy()), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("class_mode", ["categorical", "binary", "sparse", "input", None])
def test_flow_from_directory_matches(picture_folder, class_mode):
    kwargs = dict(target_size=(10, 12), class_mode=class_mode, batch_size=3, seed=5)
    gen_args = dict(rotation_range=10, horizontal_flip=True, rescale=1 / 255.0, validation_split=0.25)
    ours = image.ImageDataGenerator(**gen_args).flow_from_directory(str(picture_folder), subset="training", **kwargs)
    theirs = tf_image.ImageDataGenerator(**gen_args).flow_from_directory(str(picture_folder), subset="training",
                                                                         **kwargs)
    assert ours.filenames == theirs.filenames and ours.class_indices == theirs.class_indices
    assert len(ours) == len(theirs)
    for i in range(len(ours)):
        got, expected = ours[i], theirs[i]
        got = got if isinstance(got, tuple) else (got,)
        expected = expected if isinstance(expected, tuple) else (expected,)
        for p, q in zip(got, expected):
            np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-5)


def test_a_generator_trains_a_model(picture_folder):
    flow = image.ImageDataGenerator(rescale=1 / 255.0, horizontal_flip=True).flow_from_directory(
        str(picture_folder), target_size=(8, 8), batch_size=4, class_mode="binary", seed=0)
    model = core.Sequential([core.Input((8, 8, 3)), core.layers.Flatten(), core.layers.Dense(1, "sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    history = model.fit(flow, epochs=2, verbose=0)
    assert set(history.history) == {"loss", "accuracy"}
    assert model.predict(flow, verbose=0).shape == (9, 1)

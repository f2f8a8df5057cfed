"""`utils.timeseries_dataset_from_array`, `utils.text_dataset_from_directory` and `utils.split_dataset` give what
real Keras 3 gives for the same arguments: the same windows, files, labels, splits and batches."""

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras  # noqa: E402

import core  # noqa: E402


def _batches(ds):
    return [[np.asarray(p) for p in (b if isinstance(b, tuple) else (b,))] for b in ds]


def _assert_same_batches(ours, theirs):
    a, b = _batches(ours), _batches(theirs)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert len(x) == len(y)
        for p, q in zip(x, y):
            if q.dtype.kind in "SO":
                q = np.array([v.decode() for v in q.reshape(-1)]).reshape(q.shape)
            assert p.shape == q.shape
            np.testing.assert_array_equal(p, q)


SERIES = np.arange(200, dtype="float32").reshape(100, 2)


@pytest.mark.parametrize("kwargs", [
    dict(sequence_length=10, batch_size=16),
    dict(sequence_length=5, sequence_stride=3, sampling_rate=2, batch_size=7),
    dict(sequence_length=4, start_index=10, end_index=60, batch_size=None),
    dict(sequence_length=8, sampling_rate=6, batch_size=32, with_targets=True),
    dict(sequence_length=6, start_index=5, end_index=90, sequence_stride=4, batch_size=5, with_targets=True),
])
def test_timeseries_windows_match_keras(kwargs):
    kwargs = dict(kwargs)
    targets = np.arange(100) * 10 if kwargs.pop("with_targets", False) else None
    ours = core.utils.timeseries_dataset_from_array(SERIES, targets, **kwargs)
    theirs = keras.utils.timeseries_dataset_from_array(SERIES, targets, **kwargs)
    assert int(ours.cardinality()) == int(theirs.cardinality())
    _assert_same_batches(ours, theirs)


def test_timeseries_shuffle_keeps_the_windows():
    ours = core.utils.timeseries_dataset_from_array(SERIES, None, sequence_length=3, batch_size=None, shuffle=True,
                                                    seed=4)
    theirs = keras.utils.timeseries_dataset_from_array(SERIES, None, sequence_length=3, batch_size=None,
                                                       shuffle=True, seed=4)
    key = lambda w: tuple(np.asarray(w).ravel())  # noqa: E731
    assert sorted(map(key, ours)) == sorted(map(key, theirs))


@pytest.fixture(scope="module")
def text_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("texts")
    rng = np.random.default_rng(0)
    for label in ("neg", "pos", "unsure"):
        for i in range(7 if label != "unsure" else 4):
            folder = root / label / ("nested" if i % 3 == 0 else "")
            folder.mkdir(parents=True, exist_ok=True)
            words = " ".join(rng.choice(["good", "bad", "film", "plot", "é"], size=rng.integers(1, 9)))
            (folder / f"{label}_{i}.txt").write_text(f"{label} {i}: {words}", encoding="utf-8")
        (root / label / "notes.md").write_text("not a text sample")
    return str(root)


@pytest.mark.parametrize("kwargs", [
    dict(shuffle=False),
    dict(shuffle=False, label_mode="categorical", batch_size=4),
    dict(shuffle=False, class_names=["pos", "neg"], label_mode="binary", max_length=6),
    dict(shuffle=False, labels=None, batch_size=None),
])
def test_text_dataset_matches_keras(text_folder, kwargs):
    ours = core.utils.text_dataset_from_directory(text_folder, verbose=False, **kwargs)
    theirs = keras.utils.text_dataset_from_directory(text_folder, verbose=False, **kwargs)
    if kwargs.get("labels", "inferred") is not None:
        assert ours.class_names == theirs.class_names
    assert int(ours.cardinality()) == int(theirs.cardinality())
    _assert_same_batches(ours, theirs)


def test_text_dataset_validation_split_picks_the_same_files(text_folder):
    kwargs = dict(validation_split=0.3, seed=11, verbose=False, batch_size=None)
    ours = core.utils.text_dataset_from_directory(text_folder, subset="both", **kwargs)
    theirs = keras.utils.text_dataset_from_directory(text_folder, subset="both", **kwargs)
    for a, b in zip(ours, theirs):
        assert int(a.cardinality()) == int(b.cardinality())
        mine = sorted((str(t), int(y)) for t, y in a)
        keras_pairs = sorted((t.numpy().decode(), int(y)) for t, y in b)
        assert mine == keras_pairs
    with pytest.raises(core.errors.InputDataError, match="seed"):
        core.utils.text_dataset_from_directory(text_folder, validation_split=0.2, subset="training")


@pytest.mark.parametrize("kwargs", [dict(left_size=0.75), dict(right_size=7), dict(left_size=5, right_size=0.25),
                                    dict(left_size=0.6, shuffle=True, seed=3)])
def test_split_dataset_matches_keras(kwargs):
    x = np.arange(40, dtype="float32").reshape(20, 2)
    y = np.arange(20)
    for data in ((x, y), x):
        ours = core.utils.split_dataset(data, **kwargs)
        theirs = keras.utils.split_dataset(data, **kwargs)
        for a, b in zip(ours, theirs):
            _assert_same_batches(a, b)
    batched_ours = core.utils.split_dataset(core.data.Dataset.from_tensor_slices((x, y)).batch(4), **kwargs)
    import tensorflow as tf

    batched_theirs = keras.utils.split_dataset(tf.data.Dataset.from_tensor_slices((x, y)).batch(4), **kwargs)
    for a, b in zip(batched_ours, batched_theirs):
        _assert_same_batches(a, b)


def test_split_dataset_errors():
    with pytest.raises(core.errors.InputDataError, match="left_size or right_size"):
        core.utils.split_dataset(np.zeros(5))
    with pytest.raises(core.errors.InputDataError, match="fraction in"):
        core.utils.split_dataset(np.zeros(5), left_size=1.5)

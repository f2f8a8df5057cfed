"""Verified export without Qt: every format reads back and predicts what the model predicts; a file that computes
otherwise, or cannot be read, fails with the largest difference and the output named, and stays on disk."""

import h5py
import numpy as np
import pytest

import core as keras
from core import layers
from exporters.datasets import LoadedData
from exporters.model_export import FORMATS, suggested_name, write_export
from exporters.verify import sample_inputs, verify_export


def _two_output_model():
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    h = layers.GRU(5, name="gru")(layers.Embedding(30, 4, name="emb")(tokens))
    return keras.Model(tokens, [layers.Dense(3, activation="softmax", name="label")(h),
                                layers.Dense(1, name="score")(h)], name="two")


@pytest.mark.parametrize("fmt,target", [(f, t) for f in FORMATS
                                        for t in (("keras3", "tf_keras2") if FORMATS[f].has_target else ("keras3",))])
def test_every_format_verifies(tmp_path, fmt, target):
    model = _two_output_model()
    path = write_export(model, tmp_path / suggested_name("two", fmt, target), fmt, target)
    result = verify_export(model, path, fmt)
    assert result.ok, result.message
    assert result.largest <= result.tolerance and result.output in ("label", "score")
    assert "token ids below 30 for 'tokens'" in result.inputs


def test_a_tampered_file_fails_naming_the_output_and_is_kept(tmp_path):
    model = _two_output_model()
    path = write_export(model, tmp_path / "two.h5", "h5")
    with h5py.File(path, "r+") as f:
        bias = f["model_weights/score/score/bias"]
        bias[...] = bias[...] + 0.5  # only the 'score' output changes, by exactly 0.5
    result = verify_export(model, path, "h5")
    assert not result.ok and result.output == "score" and result.largest == pytest.approx(0.5, abs=1e-6)
    assert "FAILED" in result.message and "'score'" in result.message and "kept at" in result.message
    assert path.exists()


def test_an_unreadable_file_fails_saying_why(tmp_path):
    model = _two_output_model()
    path = write_export(model, tmp_path / "two.keras", "keras")
    path.write_bytes(path.read_bytes()[:100])
    result = verify_export(model, path, "keras")
    assert not result.ok and "could not be read back" in result.message and path.exists()


def test_the_projects_data_is_used_when_it_fits():
    model = _two_output_model()
    ids = np.arange(60).reshape(10, 6) % 30
    data = LoadedData(x=[ids], y=[], validation=([ids[:4]], []))
    xs, what = sample_inputs(model, data)
    np.testing.assert_array_equal(xs[0], ids[:4])
    assert what == "4 validation samples of the project's data"

"""Weights files: Keras's two HDF5 layouts and Netweaver's checkpoint, written and read, and every error path."""

import h5py
import numpy as np
import pytest

import core as keras
from core import layers
from core.errors import FileFormatError, WeightsError
from exporters.weights_io import read_str_list_attr, write_str_list_attr
from tests.fixture_utils import fixture_io, fixture_path, load_fixture_model


def _mlp(units=(8, 4), name=None):
    model = keras.Sequential([keras.Input((5,))] + [layers.Dense(u) for u in units], name=name)
    return model


@pytest.mark.parametrize("filename", ["w.weights.h5", "w.h5", "w.hdf5", "checkpoints/my_model"])
def test_round_trip_each_layout(tmp_path, filename):
    model = _mlp()
    model.save_weights(tmp_path / filename)
    other = _mlp()
    other.load_weights(tmp_path / filename)
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_layout_on_disk(tmp_path):
    model = _mlp()
    model.save_weights(tmp_path / "a.weights.h5")
    with h5py.File(tmp_path / "a.weights.h5") as f:
        assert f["layers/dense/vars/0"].shape == (5, 8)
        assert f["layers/dense_1/vars/1"].shape == (4,)
        assert f["layers/dense_1/vars"].attrs["name"] == model.layers[1].name
    model.save_weights(tmp_path / "a.h5")
    with h5py.File(tmp_path / "a.h5") as f:
        assert read_str_list_attr(f, "layer_names") == [l.name for l in model.layers]
        names = read_str_list_attr(f[model.layers[0].name], "weight_names")
        assert [f[model.layers[0].name][n].shape for n in names] == [(5, 8), (8,)]


def test_fixture_full_model_h5_weights_load_into_model(fixtures_dir):
    for gen in ("keras2", "keras3"):
        model = load_fixture_model(fixtures_dir, gen, "seed_functional", weights=False)
        model.load_weights(fixture_path(fixtures_dir, gen, "seed_functional.h5"))  # under model_weights/
        inputs, outputs = fixture_io(fixtures_dir, gen, "seed_functional")
        np.testing.assert_allclose(model.predict(inputs[0]), outputs[0], atol=1e-5)


def test_wrong_layer_count_names_both_sides_and_changes_nothing(tmp_path):
    _mlp(units=(8, 4, 2)).save_weights(tmp_path / "w.h5")
    model = _mlp()
    before = model.get_weights()
    with pytest.raises(WeightsError, match=r"3 layer\(s\).*2 layer\(s\) with weights"):
        model.load_weights(tmp_path / "w.h5")
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("filename", ["w.h5", "w.weights.h5", "w_native"])
def test_wrong_shape_names_layer_weight_expected_and_got(tmp_path, filename):
    _mlp(units=(8, 3)).save_weights(tmp_path / filename)
    model = _mlp(units=(8, 4))
    before = model.get_weights()
    with pytest.raises(WeightsError) as err:
        model.load_weights(tmp_path / filename)
    msg = str(err.value)
    assert model.layers[1].name in msg and "(8, 4)" in msg and "(8, 3)" in msg
    # the first layer fits, but nothing was assigned because a later one did not
    np.testing.assert_array_equal(before[0], model.get_weights()[0])


def test_by_name_and_skip_mismatch(tmp_path):
    src = keras.Sequential([keras.Input((5,)), layers.Dense(8, name="a"), layers.Dense(4, name="b")])
    src.save_weights(tmp_path / "w.h5")
    dst = keras.Sequential([keras.Input((5,)), layers.Dense(8, name="a"), layers.Dense(3, name="c"),
                            layers.Dense(4, name="b2")])
    dst.load_weights(tmp_path / "w.h5", by_name=True)  # only 'a' is in both
    np.testing.assert_array_equal(dst.get_layer("a").get_weights()[0], src.get_layer("a").get_weights()[0])
    bad = keras.Sequential([keras.Input((5,)), layers.Dense(8, name="a"), layers.Dense(5, name="b")])
    with pytest.raises(WeightsError, match="'b'"):
        bad.load_weights(tmp_path / "w.h5", by_name=True)
    with pytest.warns(UserWarning, match="skip_mismatch"):
        bad.load_weights(tmp_path / "w.h5", by_name=True, skip_mismatch=True)
    np.testing.assert_array_equal(bad.get_layer("a").get_weights()[0], src.get_layer("a").get_weights()[0])


def test_keras3_by_name_uses_stored_layer_names(tmp_path):
    src = keras.Sequential([keras.Input((5,)), layers.Dense(8, name="a"), layers.Dense(4, name="b")])
    src.save_weights(tmp_path / "w.weights.h5")
    dst = keras.Sequential([keras.Input((5,)), layers.Dense(8, name="x"), layers.Dense(8, name="a")])
    with pytest.raises(WeightsError):
        dst.load_weights(tmp_path / "w.weights.h5")  # by order: shapes differ
    dst2 = keras.Sequential([keras.Input((5,)), layers.Dense(8, name="a")])
    dst2.load_weights(tmp_path / "w.weights.h5", by_name=True)
    np.testing.assert_array_equal(dst2.get_layer("a").get_weights()[1], src.get_layer("a").get_weights()[1])


def test_long_attribute_lists_are_split_and_joined(tmp_path):
    names = [f"layer_with_a_rather_long_name_{i:05d}" for i in range(3000)]
    with h5py.File(tmp_path / "a.h5", "w") as f:
        write_str_list_attr(f, "layer_names", names)
        assert "layer_names" not in f.attrs and "layer_names0" in f.attrs and "layer_names1" in f.attrs
    with h5py.File(tmp_path / "a.h5") as f:
        assert read_str_list_attr(f, "layer_names") == names


def test_str_and_bytes_attributes(tmp_path):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.attrs["s"] = ["x", "y"]
        f.attrs["b"] = np.array([b"x", b"y"])
        f.attrs["one"] = "x"
    with h5py.File(tmp_path / "a.h5") as f:
        assert read_str_list_attr(f, "s") == read_str_list_attr(f, "b") == ["x", "y"]
        assert read_str_list_attr(f, "one") == ["x"]


def test_not_hdf5_or_not_keras_is_a_file_format_error(tmp_path):
    model = _mlp()
    (tmp_path / "junk.h5").write_bytes(b"not an hdf5 file at all")
    with pytest.raises(FileFormatError, match="junk.h5"):
        model.load_weights(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "empty.h5", "w") as f:
        f.create_group("something")
    with pytest.raises(FileFormatError, match="no Keras weights"):
        model.load_weights(tmp_path / "empty.h5")
    with pytest.raises(FileNotFoundError):
        model.load_weights(tmp_path / "missing.h5")


def test_unbuilt_model_cannot_load(tmp_path):
    _mlp().save_weights(tmp_path / "w.h5")
    with pytest.raises(WeightsError, match="not built"):
        keras.Sequential([layers.Dense(8), layers.Dense(4)]).load_weights(tmp_path / "w.h5")


def test_overwrite_false(tmp_path):
    model = _mlp()
    model.save_weights(tmp_path / "w.h5")
    with pytest.raises(FileExistsError):
        model.save_weights(tmp_path / "w.h5", overwrite=False)


def test_damaged_global_heap_is_refused_before_libhdf5_reads_it(tmp_path, fixtures_dir):
    """A wrong free-space size in the heap holding `layer_names` made libhdf5 loop forever (found by the fuzz test)."""
    data = bytearray(fixture_path(fixtures_dir, "keras2", "seed_mlp_weights.h5").read_bytes())
    at = data.find(b"GCOL\x01\x00\x00\x00")
    p = at + 16
    while int.from_bytes(data[p:p + 2], "little") != 0:  # walk to the free-space object
        p += 16 + (int.from_bytes(data[p + 8:p + 16], "little") + 7) // 8 * 8
    data[p + 9] ^= 0x02  # its size no longer ends at the heap's end
    (tmp_path / "w.h5").write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match="global heap"):
        _mlp(units=(64, 64, 10)).load_weights(tmp_path / "w.h5")

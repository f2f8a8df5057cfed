"""Which Keras wrote a file decides what it means: files of Keras 2.2 and older against real tf.keras 2.

Keras 2.2 and older defaulted LSTM and GRU to `hard_sigmoid`, which is 0.2x + 0.5 in Keras 2 and x / 6 + 0.5 in
Keras 3; their Sequential configs have no InputLayer (2.1 and older: no `layers` key either). That Keras does not
install on this Python, so the files are written here with h5py in its layout, and real tf.keras 2 (which still
reads them) gives the reference predictions. The weights are scaled up so a wrong gate function shows (differences of
0.1 to 0.3, where the right reading agrees to 1e-6).
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import h5py
import numpy as np
import pytest

from core.errors import FileFormatError, KerasGenerationWarning
from tests.fixture_utils import default_fixtures_dir, fixture_path

ZEROS = {"class_name": "Zeros", "config": {}}
X = np.random.default_rng(1).normal(size=(6, 5, 3)).astype("float32") * 2


def _recurrent(cls: str, extra: dict, first: bool = True) -> dict:
    cfg = {"name": "rnn_1", "trainable": True, "dtype": "float32", "return_sequences": False, "return_state": False,
           "go_backwards": False, "stateful": False, "unroll": False, "units": 4, "activation": "tanh",
           "recurrent_activation": "hard_sigmoid", "use_bias": True, "kernel_initializer": ZEROS,
           "recurrent_initializer": ZEROS, "bias_initializer": ZEROS, "kernel_regularizer": None,
           "recurrent_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
           "kernel_constraint": None, "recurrent_constraint": None, "bias_constraint": None, "dropout": 0.0,
           "recurrent_dropout": 0.0, "implementation": 1, **extra}
    if first:
        cfg["batch_input_shape"] = [None, 5, 3]
    return {"class_name": cls, "config": cfg}


DENSE = {"class_name": "Dense", "config": {"name": "dense_1", "trainable": True, "units": 2, "activation": "linear",
                                           "use_bias": True, "kernel_initializer": ZEROS, "bias_initializer": ZEROS,
                                           "kernel_regularizer": None, "bias_regularizer": None,
                                           "activity_regularizer": None, "kernel_constraint": None,
                                           "bias_constraint": None}}


def _weights(cls: str, seed: int, bias_shape=None) -> dict:
    rng = np.random.default_rng(seed)
    gates = 4 if cls == "LSTM" else 3
    return {"rnn_1": [("kernel:0", rng.normal(size=(3, 4 * gates)) * 2),
                      ("recurrent_kernel:0", rng.normal(size=(4, 4 * gates)) * 2),
                      ("bias:0", rng.normal(size=bias_shape or (4 * gates,)))],
            "dense_1": [("kernel:0", rng.normal(size=(4, 2))), ("bias:0", rng.normal(size=(2,)))]}


def write_old_keras_h5(path, model_config: dict, weights: dict, keras_version: str) -> None:
    """A full-model .h5 in the layout standalone Keras 2.x wrote (bytes attributes, `model_weights` groups)."""
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = keras_version.encode()
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(model_config).encode()
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = [name.encode() for name in weights]
        group.attrs["keras_version"] = keras_version.encode()
        group.attrs["backend"] = b"tensorflow"
        for layer, arrays in weights.items():
            g = group.create_group(layer)
            g.attrs["weight_names"] = [f"{layer}/{n}".encode() for n, _ in arrays]
            for n, a in arrays:
                g.create_dataset(f"{layer}/{n}", data=np.asarray(a, dtype="float32"))


# (file, Keras version, Sequential config written as a bare list?) per recurrent class
OLD_FILES = [(cls, version, bare) for cls in ("LSTM", "GRU") for version, bare in (("2.1.6", True), ("2.2.4", False))]


def _old_config(cls: str, bare: bool) -> dict:
    extra = {"unit_forget_bias": True} if cls == "LSTM" else {"reset_after": False}
    layers = [_recurrent(cls, extra), DENSE]
    return {"class_name": "Sequential", "config": layers if bare else {"name": "sequential_1", "layers": layers}}


@pytest.fixture(scope="module")
def old_files(tmp_path_factory):
    """{(cls, version): (path, what real tf.keras 2 predicts from it)}; also our re-saved copies and their
    predictions in tf.keras 2 under (cls, version, 'resaved')."""
    from core.models import load_model

    tmp = tmp_path_factory.mktemp("old_keras")
    paths = {}
    for i, (cls, version, bare) in enumerate(OLD_FILES):
        path = tmp / f"{cls}_{version}.h5"
        write_old_keras_h5(path, _old_config(cls, bare), _weights(cls, i), version)
        paths[(cls, version)] = path
        resaved = tmp / f"{cls}_{version}_resaved.h5"
        load_model(path, compile=False).save(resaved)  # no target named: written for tf.keras 2
        paths[(cls, version, "resaved")] = resaved
    np.save(tmp / "x.npy", X)
    script = ("import json, os, sys, numpy as np\n"
              "os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\n"
              "import tf_keras\n"
              "paths, x = json.loads(sys.argv[1]), np.load(sys.argv[2])\n"
              "out = {k: tf_keras.models.load_model(p, compile=False)(x, training=False).numpy() "
              "for k, p in paths.items()}\n"
              "np.savez(sys.argv[3], **out)\n")
    keyed = {"|".join(k): str(p) for k, p in paths.items()}
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(keyed), str(tmp / "x.npy"), str(tmp / "out.npz")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(tmp / "out.npz") as out:
        return {k: (paths[k], out["|".join(k)]) for k in paths}


@pytest.mark.parametrize("cls,version,bare", OLD_FILES)
def test_old_keras_files_predict_as_real_keras(old_files, cls, version, bare):
    from core.models import load_model

    path, theirs = old_files[(cls, version)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", KerasGenerationWarning)  # the file says which Keras wrote it: no guess
        model = load_model(path, compile=False)
    assert model.keras_generation == "tf_keras2"
    assert model.layers[0].get_config()["recurrent_activation"] == "hard_sigmoid_tf_keras2"
    np.testing.assert_allclose(model.predict(X, verbose=0), theirs, atol=1e-5, rtol=0)


@pytest.mark.parametrize("cls,version,bare", OLD_FILES)
def test_a_model_from_an_old_file_is_saved_for_tf_keras2(old_files, cls, version, bare):
    from core.models import load_model

    path, theirs = old_files[(cls, version)]
    resaved, resaved_theirs = old_files[(cls, version, "resaved")]
    with h5py.File(resaved, "r") as f:
        assert str(f.attrs["keras_version"]).startswith("2.")
    np.testing.assert_allclose(resaved_theirs, theirs, atol=1e-5, rtol=0)
    model = load_model(path, compile=False)
    assert json.loads(model.to_json())["keras_version"].startswith("2.")
    with pytest.raises(FileFormatError, match="rnn_1.*tf.keras 2's hard_sigmoid"):
        model.save(resaved.with_suffix(".keras"))  # Keras 3's archive cannot name 0.2x + 0.5


def test_json_of_old_keras_is_read_by_its_own_keras_version(old_files):
    from core.models import load_model, model_from_json

    path, theirs = old_files[("LSTM", "2.2.4")]
    config = dict(_old_config("LSTM", bare=False), keras_version="2.2.4", backend="tensorflow")
    model = model_from_json(json.dumps(config))
    model.set_weights(load_model(path, compile=False).get_weights())
    assert model.keras_generation == "tf_keras2"
    np.testing.assert_allclose(model.predict(X, verbose=0), theirs, atol=1e-5, rtol=0)


def test_a_config_that_does_not_say_its_keras_warns_where_hard_sigmoid_is_read():
    from core.models import model_from_json

    # No keras_version and no form only one Keras writes: the generation is a guess.
    layers = [_recurrent("LSTM", {"unit_forget_bias": True}, first=False)]
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": layers}}
    with pytest.warns(KerasGenerationWarning, match=r"'rnn_1'.*x / 6 \+ 0.5 in Keras 3 and 0.2x \+ 0.5 in Keras 2"):
        model = model_from_json(json.dumps(config))
    assert model.keras_generation == "keras3"
    layers[0]["config"]["recurrent_activation"] = "sigmoid"
    with warnings.catch_warnings():
        warnings.simplefilter("error", KerasGenerationWarning)  # nothing ambiguous: nothing to say
        model_from_json(json.dumps(config))


def test_a_gru_written_before_reset_after_existed_applies_the_reset_gate_first(tmp_path):
    from core.models import load_model

    config = _old_config("GRU", bare=False)
    del config["config"]["layers"][0]["config"]["reset_after"]
    path = tmp_path / "gru_2_0.h5"
    write_old_keras_h5(path, config, _weights("GRU", 5), "2.0.8")
    model = load_model(path, compile=False)
    assert model.layers[0].get_config()["reset_after"] is False
    assert model.predict(X, verbose=0).shape == (6, 2)


@pytest.mark.parametrize("where", ["model", "weights"])
def test_keras_1_files_are_refused_with_the_version(tmp_path, where):
    from core.models import load_model

    path = tmp_path / "old.h5"
    write_old_keras_h5(path, _old_config("LSTM", bare=True), _weights("LSTM", 0), "1.2.2")
    with pytest.raises(FileFormatError, match="written by Keras 1.2.2.*Load it in Keras 2 and save it again"):
        if where == "model":
            load_model(path, compile=False)
        else:
            model = load_model(fixture_path(default_fixtures_dir(), "keras2", "seed_lstm.h5"), compile=False)
            model.load_weights(path)


@pytest.mark.parametrize("generation,filename", [
    ("keras2", "seed_lstm.h5"), ("keras2", "seed_lstm.json"),
    ("keras3", "seed_lstm.h5"), ("keras3", "seed_lstm.json"), ("keras3", "seed_lstm.keras")])
def test_the_generation_of_each_fixture_is_read_from_the_file(generation, filename):
    from core.models import load_model

    path = fixture_path(default_fixtures_dir(), generation, filename)
    with warnings.catch_warnings():
        warnings.simplefilter("error", KerasGenerationWarning)
        model = load_model(path, compile=False)
    assert model.keras_generation == {"keras2": "tf_keras2", "keras3": "keras3"}[generation]

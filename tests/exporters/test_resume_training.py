"""A saved model resumes training exactly: `.h5` and `.keras` carry the optimizer's state (iteration count, slots,
Keras 3's learning-rate variable) in real Keras's layout, and `load_model` puts it back into the optimizer."""

import json
import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

import core as keras
from core.errors import FileFormatError, WeightsError

OPTIMIZERS = {
    "sgd_momentum": lambda: keras.optimizers.SGD(learning_rate=0.05, momentum=0.9),
    "adam": lambda: keras.optimizers.Adam(learning_rate=0.01),
    "rmsprop": lambda: keras.optimizers.RMSprop(learning_rate=0.005, momentum=0.5),
}


def _mlp():
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(2)])


def _rnn():
    x = keras.Input((5, 3))
    h = keras.layers.LSTM(6, return_sequences=True)(x)
    h = keras.layers.GRU(4)(h)
    return keras.Model(x, keras.layers.Dense(2)(h))


MODELS = {"mlp": (_mlp, (6,)), "rnn": (_rnn, (5, 3))}


def _data(shape):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40,) + shape).astype("float32")
    return x, rng.normal(size=(40, 2)).astype("float32")


def _compiled(build, make_opt):
    model = build()
    # Full names: .h5 files for Keras 3 spell 'mae' out (Keras 3.15 cannot read the alias from .h5), so from .h5
    # the alias would come back as 'mean_absolute_error' in the history.
    model.compile(optimizer=make_opt(), loss="mse", metrics=["mean_absolute_error"])
    return model


def _fit(model, x, y, epochs):
    return model.fit(x, y, batch_size=16, epochs=epochs, shuffle=False, verbose=0).history


def _straight_and_half(build, make_opt, x, y):
    """The same model trained 4 epochs straight through, and 2 epochs (to be saved and resumed)."""
    straight = _compiled(build, make_opt)
    initial = straight.get_weights()
    full = _fit(straight, x, y, 4)
    first = _compiled(build, make_opt)
    first.set_weights(initial)
    _fit(first, x, y, 2)
    return straight, full, first


def _assert_same_weights(a, b):
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(u, v, rtol=0, atol=1e-6)


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
@pytest.mark.parametrize("model_name", sorted(MODELS))
@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
def test_save_load_resume_equals_straight_through(tmp_path, opt_name, model_name, suffix):
    build, shape = MODELS[model_name]
    x, y = _data(shape)
    straight, full, first = _straight_and_half(build, OPTIMIZERS[opt_name], x, y)
    path = tmp_path / f"m{suffix}"
    first.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.optimizer) is type(first.optimizer)
    assert loaded.optimizer.iterations == first.optimizer.iterations == 6
    for a, b in zip(loaded.optimizer.get_weights(), first.optimizer.get_weights()):
        np.testing.assert_array_equal(a, b)
    rest = _fit(loaded, x, y, 2)
    _assert_same_weights(loaded, straight)
    assert set(rest) == set(full) == {"loss", "mean_absolute_error"}
    for key in full:
        np.testing.assert_allclose(rest[key], full[key][2:], rtol=1e-6)


@pytest.mark.parametrize("target", ["keras3", "tf_keras2"])
@pytest.mark.parametrize("name, kwargs", [("Nadam", {}), ("Adam", {"amsgrad": True}), ("SGD", {}), ("Adamax", {}),
                                          ("Adagrad", {"learning_rate": 0.05}), ("Adadelta", {"learning_rate": 1.0})])
def test_other_optimizers_resume_through_h5(tmp_path, name, kwargs, target):
    """Nadam's running product (which tf.keras 2 does not save: it is recomputed from the step count), amsgrad's
    separate velocity_hat group, tf.keras 2's unused SGD momentum slot."""
    x, y = _data((6,))

    def make():
        return getattr(keras.optimizers, name)(**{"learning_rate": 0.01, **kwargs})
    straight, _, first = _straight_and_half(_mlp, make, x, y)
    first.save(tmp_path / "m.h5", target=target)
    loaded = keras.models.load_model(tmp_path / "m.h5")
    for a, b in zip(loaded.optimizer.get_weights(), first.optimizer.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=0)
    _fit(loaded, x, y, 2)
    _assert_same_weights(loaded, straight)


def test_learning_rate_schedule_continues(tmp_path):
    x, y = _data((6,))

    def make():
        return keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(0.05, decay_steps=2,
                                                                                 decay_rate=0.5))
    straight, _, first = _straight_and_half(_mlp, make, x, y)
    first.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.optimizer.learning_rate == pytest.approx(first.optimizer.learning_rate)  # the schedule at step 6
    assert loaded.optimizer.learning_rate < 0.05 * 0.5 ** 2
    _fit(loaded, x, y, 2)
    _assert_same_weights(loaded, straight)


def test_changed_constant_learning_rate_is_kept(tmp_path):
    """Keras 3 keeps a constant learning rate as a variable (ReduceLROnPlateau changes it); it comes back."""
    x, y = _data((6,))
    model = _compiled(_mlp, OPTIMIZERS["adam"])
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    model.optimizer.learning_rate = 0.0025
    model.save(tmp_path / "m.h5")
    assert keras.models.load_model(tmp_path / "m.h5").optimizer.learning_rate == pytest.approx(0.0025)


def test_layer_frozen_after_training_is_left_out(tmp_path):
    """The file's state fits the model as saved: a layer frozen after training has no slots in it."""
    x, y = _data((6,))
    model = _compiled(_mlp, OPTIMIZERS["adam"])
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    model.layers[0].trainable = False
    model.save(tmp_path / "m.h5")
    loaded = keras.models.load_model(tmp_path / "m.h5")
    assert len(loaded.trainable_weights) == 2
    last = model.trainable_weights[-1]
    np.testing.assert_array_equal(loaded.optimizer.slots_for(loaded.trainable_weights[-1])["velocity"],
                                  model.optimizer.slots_for(last)["velocity"])
    assert loaded.optimizer.iterations == 3


def test_checkpoint_of_the_full_model_resumes(tmp_path):
    """ModelCheckpoint saves the whole model at each epoch's end (optimizer state included): fit goes on from it."""
    x, y = _data((6,))
    straight = _compiled(_mlp, OPTIMIZERS["adam"])
    initial = straight.get_weights()
    _fit(straight, x, y, 4)
    first = _compiled(_mlp, OPTIMIZERS["adam"])
    first.set_weights(initial)
    checkpoint = keras.callbacks.ModelCheckpoint(str(tmp_path / "e{epoch}.keras"))
    first.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0, callbacks=[checkpoint])
    loaded = keras.models.load_model(tmp_path / "e2.keras")
    assert loaded.optimizer.iterations == 6
    _fit(loaded, x, y, 2)
    _assert_same_weights(loaded, straight)


# -- the layout real Keras writes ------------------------------------------------------------------------------------
@pytest.mark.parametrize("generation", ["keras2", "keras3"])
def test_fixture_optimizer_state_is_loaded(fixtures_dir, generation):
    """seed_mlp.h5 was written by real Keras after training with Adam: our optimizer gets exactly its state."""
    path = fixtures_dir / generation / "seed_mlp.h5"
    model = keras.models.load_model(path)
    with h5py.File(path, "r") as f:
        g = f["optimizer_weights"]
        names = [n.decode() if isinstance(n, bytes) else n for n in g.attrs["weight_names"]]
        stored = {n: np.asarray(g[n]) for n in names}
    opt = model.optimizer
    assert isinstance(opt, keras.optimizers.Adam)
    iteration = stored["iteration:0" if generation == "keras2" else "adam/iteration"]
    assert opt.iterations == int(iteration) > 0
    ours = opt.get_weights()
    assert len(ours) == 1 + 2 * len(model.trainable_weights)
    for j, var in enumerate(model.trainable_weights):
        layer, weight = var.path.split("/")
        if generation == "keras2":
            m, v = stored[f"Adam/m/{layer}/{weight}:0"], stored[f"Adam/v/{layer}/{weight}:0"]
        else:
            m = stored[f"adam/sequential_{layer}_{weight}_momentum"]
            v = stored[f"adam/sequential_{layer}_{weight}_velocity"]
        np.testing.assert_array_equal(ours[1 + 2 * j], m)
        np.testing.assert_array_equal(ours[2 + 2 * j], v)
        assert np.any(m != 0)


@pytest.mark.parametrize("name", ["seed_lstm", "seed_gru_simplernn", "seed_bidirectional", "seed_seq2seq",
                                  "seed_functional"])
@pytest.mark.parametrize("generation", ["keras2", "keras3"])
def test_fixture_optimizer_state_fits_every_model(fixtures_dir, generation, name):
    """Count and shapes of Keras's optimizer variables match ours (order of weights and slots) for RNN models."""
    model = keras.models.load_model(fixtures_dir / generation / f"{name}.h5")
    assert model.optimizer.iterations > 0
    assert any(np.any(w != 0) for w in model.optimizer.get_weights()[1:])


@pytest.mark.parametrize("target", ["keras3", "tf_keras2"])
def test_written_layout_matches_keras(tmp_path, target):
    """Our .h5's optimizer_weights names and order follow the fixtures' (iteration, then per weight m, v)."""
    model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(4, name="dense"),
                              keras.layers.Dense(2, name="dense_1")])
    model.compile(optimizer="adam", loss="mse")
    model.save(tmp_path / "m.h5", target=target)
    with h5py.File(tmp_path / "m.h5", "r") as f:
        names = [n.decode() for n in f["optimizer_weights"].attrs["weight_names"]]
        assert f["optimizer_weights"][names[0]].dtype == np.int64
    if target == "tf_keras2":
        assert names == ["iteration:0", "adam/m/dense/kernel:0", "adam/v/dense/kernel:0", "adam/m/dense/bias:0",
                         "adam/v/dense/bias:0", "adam/m/dense_1/kernel:0", "adam/v/dense_1/kernel:0",
                         "adam/m/dense_1/bias:0", "adam/v/dense_1/bias:0"]
    else:
        assert names[:4] == ["adam/iteration", "adam/learning_rate", "adam/dense_kernel_momentum",
                             "adam/dense_kernel_velocity"]
        assert len(names) == 10


def test_rmsprop_slots_in_keras_group_order(tmp_path):
    """Keras makes RMSprop's velocities for all weights, then the momentums: not interleaved as Adam's."""
    x, y = _data((6,))
    model = _compiled(_mlp, OPTIMIZERS["rmsprop"])
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    model.save(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "r") as f:
        g = f["optimizer_weights"]
        names = [n.decode() for n in g.attrs["weight_names"]]
        kinds = [n.rsplit("_", 1)[-1] for n in names[2:]]
        assert kinds == ["velocity"] * 4 + ["momentum"] * 4
        opt = model.optimizer
        np.testing.assert_array_equal(g[names[2 + 4]], opt.slots_for(model.trainable_weights[0])["momentum"])


# -- errors -----------------------------------------------------------------------------------------------------------
def _saved(tmp_path, suffix):
    x, y = _data((6,))
    model = _compiled(_mlp, OPTIMIZERS["adam"])
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    path = tmp_path / f"m{suffix}"
    model.save(path)
    return path


def test_h5_optimizer_state_with_wrong_count_is_refused(tmp_path):
    path = _saved(tmp_path, ".h5")
    with h5py.File(path, "r+") as f:
        g = f["optimizer_weights"]
        names = list(g.attrs["weight_names"])
        g.attrs["weight_names"] = np.asarray(names[:-1])
    with pytest.raises(WeightsError, match=r"m\.h5.*saved optimizer state has 9 variables.*Adam.*has 10"):
        keras.models.load_model(path)


def test_h5_optimizer_state_with_wrong_shape_is_refused(tmp_path):
    path = _saved(tmp_path, ".h5")
    with h5py.File(path, "r+") as f:
        g = f["optimizer_weights"]
        name = g.attrs["weight_names"][2].decode()
        del g[name]
        g.create_dataset(name, data=np.zeros((3, 3), "float32"))
    with pytest.raises(WeightsError, match=r"m\.h5.*has shape \(3, 3\).*has shape \(6, 8\)"):
        keras.models.load_model(path)


def test_keras_archive_optimizer_state_with_wrong_shape_is_refused(tmp_path):
    import io
    import zipfile

    path = _saved(tmp_path, ".keras")
    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    buf = io.BytesIO(files["model.weights.h5"])
    with h5py.File(buf, "r+") as f:
        del f["optimizer/vars/3"]
        f["optimizer/vars"].create_dataset("3", data=np.zeros((2,), "float32"))
    files["model.weights.h5"] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    with pytest.raises(WeightsError, match=r"m\.keras' \(model\.weights\.h5\).*optimizer/vars/3.*shape \(2,\)"):
        keras.models.load_model(path)


@pytest.mark.parametrize("value", [-1, 2.5, np.nan])
def test_damaged_iteration_count_is_refused(tmp_path, value):
    path = _saved(tmp_path, ".h5")
    with h5py.File(path, "r+") as f:
        g = f["optimizer_weights"]
        del g["adam/iteration"]
        g.create_dataset("adam/iteration", data=np.float64(value))
    with pytest.raises(FileFormatError, match=r"m\.h5.*iteration count 'adam/iteration' is .*damaged"):
        keras.models.load_model(path)


def test_legacy_keras2_optimizer_state_is_skipped_with_a_warning(tmp_path):
    """Keras 2 before 2.11 ordered slots differently (all m, then all v): that state is not misread."""
    path = _saved(tmp_path, ".h5")
    with h5py.File(path, "r+") as f:
        f.attrs["keras_version"] = "2.4.0"
    with pytest.warns(UserWarning, match="legacy optimizer.*starts fresh"):
        model = keras.models.load_model(path)
    assert isinstance(model.optimizer, keras.optimizers.Adam) and model.optimizer.iterations == 0


def test_state_of_an_unrecorded_optimizer_is_skipped_with_a_warning(fixtures_dir):
    """Keras 3's seed .keras files record no optimizer in compile_config: the default (RMSprop) is used and the
    Adam state that does not fit it is skipped with a warning, as real Keras does."""
    with pytest.warns(UserWarning, match="optimizer starts fresh"):
        model = keras.models.load_model(fixtures_dir / "keras3" / "seed_mlp.keras")
    assert isinstance(model.optimizer, keras.optimizers.RMSprop) and model.optimizer.iterations == 0


def test_not_compiled_load_ignores_optimizer_state(tmp_path):
    path = _saved(tmp_path, ".h5")
    model = keras.models.load_model(path, compile=False)
    assert model.optimizer is None


# -- real Keras reads our optimizer state ------------------------------------------------------------------------------
_KERAS_SCRIPT = textwrap.dedent("""
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    import numpy as np
    import keras
    import tf_keras
    out = {}
    for arg in sys.argv[1:]:
        target, path = arg.split("=", 1)
        m = (keras if target == "keras3" else tf_keras).models.load_model(path)
        opt = m.optimizer
        out[arg] = {"class": type(opt).__name__, "iterations": int(opt.iterations.numpy()),
                    "lr": float(np.asarray(opt.learning_rate)),
                    "vars": [np.asarray(v).ravel()[:3].tolist() for v in opt.variables],
                    "shapes": [list(v.shape) for v in opt.variables]}
    print("RESULT" + json.dumps(out))
""")


def test_real_keras_loads_our_optimizer_state(tmp_path):
    """Keras 3 gets the whole state from our .keras, tf.keras 2 from our .h5 for it. Keras 3.15's legacy .h5 loader
    builds the optimizer on `model._trainable_variables` (empty for a Sequential), so from any .h5, its own too, it
    restores only the iteration count and the learning rate: that much is checked there."""
    x, y = _data((6,))
    model = _compiled(_mlp, OPTIMIZERS["rmsprop"])
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    jobs = {"keras3": tmp_path / "m.keras", "tf_keras2": tmp_path / "m2.h5"}
    for target, path in jobs.items():
        model.save(path, target=target)
    model.save(tmp_path / "m3.h5")
    args = [f"{t}={p}" for t, p in jobs.items()] + [f"keras3={tmp_path / 'm3.h5'}"]
    script = tmp_path / "read.py"
    script.write_text(_KERAS_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, KERAS_BACKEND="tensorflow"))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")]
    assert lines, proc.stderr[-3000:]
    results = json.loads(lines[0][len("RESULT"):])
    ours = model.optimizer.get_weights()
    slots = [ours[1 + 2 * j] for j in range(4)] + [ours[2 + 2 * j] for j in range(4)]  # velocities, then momentums
    expected = {"keras3": [ours[0], np.float32(0.005)] + slots, "tf_keras2": [ours[0]] + slots}
    for arg in args:
        r = results[arg]
        assert r["class"] == "RMSprop"
        assert r["iterations"] == model.optimizer.iterations == 6
        assert r["lr"] == pytest.approx(0.005)
        want = expected[arg.split("=")[0]]
        if arg.endswith("m3.h5"):
            want = want[:2]
        assert r["shapes"] == [list(np.shape(w)) for w in want]
        for got, w in zip(r["vars"], want):
            np.testing.assert_allclose(got, np.ravel(w)[:3], rtol=1e-6)


def test_keras_file_keeps_short_metric_names_as_keras_writes_them(tmp_path):
    """A .keras file's compile_config holds the names compile() was given ('mse', 'mae'), as Keras writes them, so the
    history keys survive a save and load here and in real Keras; the legacy .h5 spells them out for Keras's loader."""
    import json
    import zipfile

    x, y = _data((6,))
    model = _mlp()
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    _fit(model, x, y, 1)
    model.save(tmp_path / "m.keras")
    compile_config = json.loads(zipfile.ZipFile(tmp_path / "m.keras").read("config.json"))["compile_config"]
    assert compile_config["loss"] == "mse" and compile_config["metrics"] == ["mae"]
    assert set(_fit(keras.models.load_model(tmp_path / "m.keras"), x, y, 1)) == {"loss", "mae"}
    model.save(tmp_path / "m.h5")
    assert set(_fit(keras.models.load_model(tmp_path / "m.h5"), x, y, 1)) == {"loss", "mean_absolute_error"}

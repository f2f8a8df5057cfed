"""Embedding, Masking, Identity and Lambda against numpy and real Keras 3 (same weights, same inputs)."""

import json
import numpy as np
import pytest

import core as keras
from core import layers, ops
from core.errors import ConfigError, MaskError
from core.serialization import safe_mode_scope
from keras_reference import keras3  # noqa: F401  (the real-Keras fixture)


def _config_keys(cfg):
    return set(cfg) - {"dtype"}


class _NoMask(layers.Layer):
    """A layer that neither supports nor consumes masks."""

    def call(self, inputs):
        return inputs


# -- Embedding ---------------------------------------------------------------------------------------------------
def test_embedding_gathers_rows_and_casts_float_ids():
    emb = layers.Embedding(10, 4)
    ids = np.array([[1, 2, 9], [0, 0, 3]])
    out = emb(ids)
    table = emb.get_weights()[0]
    assert [w.name for w in emb.weights] == ["embeddings"] and table.shape == (10, 4)
    np.testing.assert_array_equal(out.numpy(), table[ids])
    np.testing.assert_array_equal(emb(ids.astype("float32")).numpy(), table[ids])
    assert out._keras_mask is None
    # Keras's default initializer: uniform in [-0.05, 0.05].
    assert np.abs(table).max() <= 0.05


def test_embedding_matches_keras3_with_mask(keras3):
    ids = np.array([[3, 1, 0, 0], [7, 0, 2, 0]])
    ours = layers.Embedding(8, 3, mask_zero=True)
    ref = keras3.layers.Embedding(8, 3, mask_zero=True)
    ref.build((None, 4))
    ours(ids)
    ours.set_weights(ref.get_weights())
    out = ours(ids)
    np.testing.assert_allclose(out.numpy(), np.asarray(ref(ids)), atol=1e-7)
    np.testing.assert_array_equal(out._keras_mask, np.asarray(ref.compute_mask(ids)))
    assert _config_keys(ours.get_config()) == _config_keys(ref.get_config()) - {"quantization_config"}


def test_embedding_in_functional_model_predicts_and_propagates_mask():
    inp = keras.Input(shape=(5,))
    emb = layers.Embedding(20, 6, mask_zero=True)
    x = emb(inp)
    assert x.shape == (None, 5, 6) and x.has_mask
    model = keras.Model(inp, layers.Dense(2)(x))
    ids = np.array([[1, 2, 3, 0, 0]])
    dense = model.layers[-1]
    k, b = dense.get_weights()
    np.testing.assert_allclose(model.predict(ids), emb.get_weights()[0][ids] @ k + b, atol=1e-5)


def test_embedding_config_round_trip_and_tf_keras2_input_length():
    emb = layers.Embedding(100, 8, mask_zero=True, embeddings_regularizer="l2", name="emb")
    cfg = emb.get_config()
    assert cfg["input_dim"] == 100 and cfg["output_dim"] == 8 and cfg["mask_zero"] is True
    assert cfg["embeddings_initializer"]["class_name"] == "RandomUniform"
    again = layers.Embedding.from_config(cfg)
    assert again.get_config() == cfg
    # tf.keras 2 writes input_length (and batch_input_shape); it fixes the input's length.
    old = layers.Embedding.from_config({"name": "e2", "input_dim": 50, "output_dim": 4, "input_length": 7,
                                        "batch_input_shape": [None, 7], "mask_zero": False})
    assert old._batch_input_shape == (None, 7)
    model = keras.Sequential([layers.Embedding(50, 4, input_length=7)])
    assert model.outputs[0].shape == (None, 7, 4)
    assert layers.Embedding(50, 4, input_length=7).get_config()["input_length"] == 7


@pytest.mark.parametrize("kwargs, what", [({"input_dim": 0, "output_dim": 3}, "input_dim"),
                                          ({"input_dim": -5, "output_dim": 3}, "input_dim"),
                                          ({"input_dim": 5, "output_dim": 0}, "output_dim"),
                                          ({"input_dim": 2.5, "output_dim": 3}, "input_dim"),
                                          ({"input_dim": 5, "output_dim": 3, "input_length": 0}, "input_length")])
def test_embedding_rejects_bad_sizes(kwargs, what):
    with pytest.raises(ConfigError, match=what):
        layers.Embedding(**kwargs)


def test_embedding_mask_into_layer_without_masking_is_an_error():
    inp = keras.Input(shape=(4,))
    x = layers.Embedding(10, 3, mask_zero=True, name="words")(inp)
    with pytest.raises(MaskError, match=r"'no_mask'.*'words'"):
        _NoMask(name="no_mask")(x)


# -- Masking -------------------------------------------------------------------------------------------------------
def test_masking_zeroes_masked_steps_like_keras3(keras3):
    x = np.random.default_rng(0).random((3, 5, 4)).astype("float32")
    x[0, 2] = 0.0
    x[1, 4] = -1.0
    x[2, 1, :2] = -1.0  # only part of the step: not masked
    for value in (0.0, -1.0):
        out = layers.Masking(mask_value=value)(x)
        ref_layer = keras3.layers.Masking(mask_value=value)
        ref = ref_layer(x)
        np.testing.assert_allclose(out.numpy(), np.asarray(ref), atol=0)
        np.testing.assert_array_equal(out._keras_mask, np.asarray(ref_layer.compute_mask(x)))
        keep = np.any(x != value, axis=-1)
        np.testing.assert_array_equal(out._keras_mask, keep)
        np.testing.assert_array_equal(out.numpy(), x * keep[..., None])
    assert _config_keys(layers.Masking(-1.0).get_config()) == _config_keys(ref_layer.get_config())
    assert layers.Masking.from_config(layers.Masking(-1.0, name="m").get_config()).mask_value == -1.0


def test_masking_rejects_non_number():
    with pytest.raises(ConfigError, match="mask_value"):
        layers.Masking(mask_value="pad")


def test_masking_mask_reaches_graph_output():
    inp = keras.Input(shape=(3, 2))
    out = layers.Masking()(inp)
    assert out.has_mask and out.shape == (None, 3, 2)
    g = keras.Model(inp, out).inference_graph()
    assert g.outputs[0].shape == (None, 3, 2)


# -- Identity ------------------------------------------------------------------------------------------------------
def test_identity_passes_values_and_mask():
    x = np.arange(12, dtype="float32").reshape(2, 3, 2)
    x[1, 2] = 0
    masked = layers.Masking()(x)
    out = layers.Identity()(masked)
    np.testing.assert_array_equal(out.numpy(), masked.numpy())
    np.testing.assert_array_equal(out._keras_mask, masked._keras_mask)
    inp = keras.Input(shape=(4,))
    model = keras.Model(inp, layers.Identity()(inp))
    np.testing.assert_array_equal(model.predict(np.ones((2, 4))), np.ones((2, 4)))


# -- Lambda --------------------------------------------------------------------------------------------------------
def test_lambda_functional_model_with_ops_and_arguments():
    inp = keras.Input(shape=(4,))
    x = layers.Lambda(lambda t, scale: ops.tanh(t) * scale, arguments={"scale": 3.0})(inp)
    y = layers.Lambda(lambda ts: ts[0] - ts[1])([x, inp])
    model = keras.Model(inp, y)
    data = np.random.default_rng(1).normal(size=(5, 4)).astype("float32")
    np.testing.assert_allclose(model.predict(data), np.tanh(data) * 3.0 - data, atol=1e-6)


def test_lambda_with_tf_style_functions_stacks_channels():
    import core as tf

    m, s = [0.5, 0.2, 0.1], [1.0, 2.0, 4.0]

    def func2(x):  # the seed's Lambda example
        x0 = (x[:, :, :, 0] - m[0]) / (2 * s[0]) + 0.5
        x1 = (x[:, :, :, 1] - m[1]) / (2 * s[1]) + 0.5
        x2 = (x[:, :, :, 2] - m[2]) / (2 * s[2]) + 0.5
        return tf.stack([x0, x1, x2], 3)

    inp = keras.Input(shape=(2, 2, 3))
    model = keras.Model(inp, layers.Lambda(func2)(inp))
    data = np.random.default_rng(2).random((3, 2, 2, 3)).astype("float32")
    want = (data - np.array(m)) / (2 * np.array(s)) + 0.5
    np.testing.assert_allclose(model.predict(data), want, atol=1e-6)


def test_lambda_consumes_mask_unless_it_computes_one():
    x = np.array([[[1.0], [0.0]], [[2.0], [3.0]]], dtype="float32")
    masked = layers.Masking()(x)
    assert layers.Lambda(lambda t: t * 2)(masked)._keras_mask is None
    kept = layers.Lambda(lambda t: t * 2, mask=lambda inputs, mask: mask)(masked)
    np.testing.assert_array_equal(kept._keras_mask, [[True, False], [True, True]])
    seen = layers.Lambda(lambda t, mask: ops.where(ops.expand_dims(mask, -1), t, -1.0))(masked)
    np.testing.assert_array_equal(seen.numpy()[0, 1], [-1.0])


def test_lambda_config_round_trips_in_process_and_through_json():
    fn = lambda t: t * 2.0 + 1.0  # noqa: E731
    layer = layers.Lambda(fn, name="double")
    cfg = layer.get_config()
    assert cfg["function"]["class_name"] == "__lambda__" and set(cfg["function"]["config"]) == {
        "code", "defaults", "closure"}
    assert layers.Lambda.from_config(cfg).function is fn
    assert layers.Lambda.from_config(json.loads(json.dumps(cfg))).function is fn


def _foreign_lambda_config():
    """A Lambda config as a file from elsewhere holds it: bytecode this process never serialized."""
    src = "lambda t, k=3.0: t * k"
    code = next(c for c in compile(src, "<file>", "eval").co_consts if hasattr(c, "co_code"))
    import base64
    import marshal

    return {"name": "from_file", "function": {"class_name": "__lambda__", "config": {
        "code": base64.encodebytes(marshal.dumps(code)).decode("ascii"), "defaults": [3.0], "closure": None}},
        "arguments": {}}


def test_lambda_bytecode_from_a_file_is_refused_in_safe_mode():
    cfg = _foreign_lambda_config()
    with pytest.raises(ConfigError, match=r"'from_file'.*bytecode.*safe_mode=False"):
        layers.Lambda.from_config(cfg)
    with safe_mode_scope(True):
        with pytest.raises(ConfigError, match="safe_mode=False"):
            layers.Lambda.from_config(cfg)
    unsafe = layers.Lambda.from_config(cfg, safe_mode=False)
    np.testing.assert_allclose(unsafe(np.ones((1, 2), "float32")).numpy(), [[3.0, 3.0]])
    with safe_mode_scope(False):
        assert layers.Lambda.from_config(cfg).function(2.0) == 6.0


def test_lambda_config_from_keras3_and_tf_keras2(keras3):
    ref = keras3.layers.Lambda(lambda t: t + 10.0)
    cfg = json.loads(json.dumps(ref.get_config()))
    with pytest.raises(ConfigError, match="safe_mode=False"):
        layers.Lambda.from_config(cfg)
    layer = layers.Lambda.from_config(cfg, safe_mode=False)
    np.testing.assert_allclose(layer(np.zeros((1, 2), "float32")).numpy(), [[10.0, 10.0]])
    # tf.keras 2 writes the bytecode as a (code, defaults, closure) list and says what it is in function_type.
    old = dict(_foreign_lambda_config())
    fcfg = old.pop("function")["config"]
    old.update({"function": [fcfg["code"], fcfg["defaults"], None], "function_type": "lambda", "module": "__main__",
                "output_shape": None, "output_shape_type": "raw", "output_shape_module": None})
    with pytest.raises(ConfigError, match="safe_mode=False"):
        layers.Lambda.from_config(old)
    assert layers.Lambda.from_config(old, safe_mode=False).function(1.0) == 3.0


def _halve(t):
    return t * 0.5


def test_lambda_named_function_loads_from_custom_objects_only():
    cfg = layers.Lambda(_halve, name="half").get_config()
    assert cfg["function"]["class_name"] == "function" and cfg["function"]["config"] == "_halve"
    with pytest.raises(ConfigError, match="custom_objects"):
        layers.Lambda.from_config(cfg)
    layer = layers.Lambda.from_config(cfg, custom_objects={"_halve": _halve})
    assert layer.function is _halve
    tf2 = {"name": "h", "function": "_halve", "function_type": "function", "module": "tests", "arguments": {}}
    assert layers.Lambda.from_config(tf2, custom_objects={"_halve": _halve}).function is _halve


def test_lambda_of_an_op_serializes_by_name():
    cfg = layers.Lambda(ops.tanh).get_config()
    assert cfg["function"]["config"] == "tanh"
    layer = layers.Lambda.from_config(json.loads(json.dumps(cfg)))
    np.testing.assert_allclose(layer(np.ones((1, 2), "float32")).numpy(), np.tanh(np.ones((1, 2))), rtol=1e-6)


def test_lambda_rejects_bad_arguments():
    with pytest.raises(ConfigError, match="callable"):
        layers.Lambda(3)
    with pytest.raises(ConfigError, match="arguments"):
        layers.Lambda(lambda t: t, arguments=[1, 2])
    with pytest.raises(ConfigError, match="cannot read a function"):
        layers.Lambda.from_config({"name": "x", "function": 42})
    garbled = {"class_name": "__lambda__", "config": {"code": "bm90IGNvZGU=\n", "defaults": None, "closure": None}}
    with pytest.raises(ConfigError, match="cannot be read by this Python"):
        layers.Lambda.from_config({"name": "x", "function": garbled}, safe_mode=False)


def test_lambda_output_shape_is_kept_in_config():
    layer = layers.Lambda(lambda t: t, output_shape=(4,))
    assert layer.get_config()["output_shape"] == [4]


# -- configs written by real Keras (shared fixtures) ---------------------------------------------------------------
def _layer_configs(node, names):
    if isinstance(node, dict):
        if node.get("class_name") in names and isinstance(node.get("config"), dict):
            yield node["class_name"], node["config"]
        for value in node.values():
            yield from _layer_configs(value, names)
    elif isinstance(node, list):
        for value in node:
            yield from _layer_configs(value, names)


def test_layer_configs_from_keras2_and_keras3_files_load(fixtures_dir):
    """Every Embedding, Masking and SpatialDropout1D config in the reference files builds a layer that keeps its
    values and computes on that input shape."""
    registry = layers.layer_registry()
    names = {"Embedding", "Masking", "SpatialDropout1D"}
    seen = set()
    for path in sorted(fixtures_dir.glob("keras*/*.json")):
        for class_name, cfg in _layer_configs(json.loads(path.read_text()), names):
            layer = registry[class_name].from_config(cfg)
            ours = layer.get_config()
            for key in ("input_dim", "output_dim", "mask_zero", "mask_value", "rate", "input_length"):
                if cfg.get(key) is not None:
                    assert ours[key] == cfg[key], (path.name, class_name, key)
            if class_name == "Embedding":
                assert ours["embeddings_initializer"]["class_name"] == cfg["embeddings_initializer"]["class_name"]
                out = layer(np.zeros((2, cfg.get("input_length") or 3), "int64"))
                assert out.shape[-1] == cfg["output_dim"]
            seen.add((path.parent.name, class_name))
    assert {("keras2", n) for n in names} | {("keras3", n) for n in names} <= seen


def test_every_new_layer_in_one_model_passes_onnx_full_check(tmp_path):
    import onnx

    ids = keras.Input(shape=(6,), name="ids")
    feats = keras.Input(shape=(6, 8), name="feats")
    e = layers.Embedding(50, 8, mask_zero=True)(ids)
    m = layers.Masking()(feats)
    x = layers.Add()([e, m])
    x = layers.Concatenate()([x, layers.Multiply()([e, m]), layers.Average()([e, m])])
    x = layers.Maximum()([layers.Subtract()([x, x]), layers.Minimum()([x, x])])
    x = layers.BatchNormalization()(x)
    x = layers.LayerNormalization()(x)
    x = layers.Dropout(0.5)(x)
    x = layers.SpatialDropout1D(0.2)(x)
    x = layers.GaussianNoise(0.1)(x)
    x = layers.GaussianDropout(0.1)(x)
    x = layers.ActivityRegularization(l2=0.01)(x)
    x = layers.Identity()(x)
    x = layers.Lambda(lambda t: t * 2.0)(x)
    out = layers.Dot(axes=2, normalize=True)([x, x])
    model = keras.Model([ids, feats], out)
    path = tmp_path / "all.onnx"
    model.to_onnx(path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    rng = np.random.default_rng(0)
    y = model.predict([rng.integers(0, 50, (3, 6)), rng.normal(size=(3, 6, 8)).astype("float32")])
    assert y.shape == (3, 6, 6) and np.isfinite(y).all()
    lines = []
    model.summary(print_fn=lines.append)
    assert "batch_normalization (BatchNorma" in "\n".join(lines)
    assert model.get_layer("batch_normalization").count_params() == 4 * 24
    # The training graph of the same model traces too (noise ops, batch statistics, moving-stat updates).
    g = model.inference_graph(training=True, weights_as_inputs=True)
    assert len(g.state_updates) == 2
    assert any(n.op_type == "Dropout" for n in g.nodes) and any(n.op_type == "RandomNormalLike" for n in g.nodes)


def test_model_config_with_foreign_lambda_loads_only_when_unsafe():
    from core.models.model_config import deserialize_layer

    inp = keras.Input(shape=(3,))
    model = keras.Model(inp, layers.Lambda(lambda t: t * 3.0)(inp))
    config = {"class_name": "Functional", "config": json.loads(json.dumps(model.get_config()))}
    lam = next(c for c in config["config"]["layers"] if c["class_name"] == "Lambda")
    lam["config"]["function"] = _foreign_lambda_config()["function"]  # bytecode this process never made
    with pytest.raises(ConfigError, match="safe_mode=False"):
        deserialize_layer(config)
    loaded = deserialize_layer(config, safe_mode=False)
    np.testing.assert_allclose(loaded.predict(np.ones((2, 3), "float32")), np.full((2, 3), 3.0))


OUR_LAYERS = [
    ("Embedding", {"input_dim": 10, "output_dim": 3, "mask_zero": True, "embeddings_regularizer": "l2"}),
    ("Masking", {"mask_value": -1.0}), ("Identity", {}),
    ("Add", {}), ("Subtract", {}), ("Multiply", {}), ("Average", {}), ("Maximum", {}), ("Minimum", {}),
    ("Concatenate", {"axis": 1}), ("Dot", {"axes": [1, 2], "normalize": True}),
    ("BatchNormalization", {"axis": 1, "momentum": 0.9, "center": False, "gamma_initializer": "glorot_uniform"}),
    ("LayerNormalization", {"axis": [1, 2], "epsilon": 1e-5, "rms_scaling": True}),
    ("Dropout", {"rate": 0.3, "noise_shape": [None, 1, 4], "seed": 3}), ("SpatialDropout1D", {"rate": 0.2}),
    ("SpatialDropout2D", {"rate": 0.2, "data_format": "channels_first"}), ("SpatialDropout3D", {"rate": 0.1}),
    ("GaussianNoise", {"stddev": 0.2, "seed": 1}), ("GaussianDropout", {"rate": 0.2}),
    ("ActivityRegularization", {"l1": 0.1, "l2": 0.2}),
]


@pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`")
@pytest.mark.parametrize("name, kwargs", OUR_LAYERS, ids=[n for n, _ in OUR_LAYERS])
def test_our_configs_load_in_keras3(keras3, name, kwargs):
    cfg = json.loads(json.dumps(getattr(layers, name)(**kwargs).get_config()))
    ref = getattr(keras3.layers, name).from_config(cfg)
    back = ref.get_config()
    for key, value in cfg.items():
        if key != "dtype" and not isinstance(value, dict) and key in back:
            assert back[key] == value or list(back[key] or []) == value, (key, back[key], value)


def test_our_lambda_config_loads_in_keras3(keras3):
    cfg = json.loads(json.dumps(layers.Lambda(lambda t: t * 2.0 + 1.0).get_config()))
    ref = keras3.layers.Lambda.from_config(cfg, safe_mode=False)
    np.testing.assert_allclose(np.asarray(ref(np.ones((1, 2), "float32"))), [[3.0, 3.0]])

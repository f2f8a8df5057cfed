"""Configs to models and back: both Keras generations' forms, nested models, shared layers, and the error paths."""

import copy
import json

import numpy as np
import pytest

import core as keras
from core import layers
from core.errors import ConfigError, GraphError
from core.models.model_config import deserialize_layer, serialize_layer
from tests.fixture_utils import fixture_config


def _nested_model():
    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, layers.Dense(3, name="idense")(inner_in), name="inner")
    seq = keras.Sequential([keras.Input((3,)), layers.Dense(2, name="sdense")], name="seqm")
    x = keras.Input((4,), name="x")
    a = inner(x)
    b = inner(x)  # the nested model is called twice: two inbound nodes
    c = layers.Add(name="add")([a, b]) if hasattr(layers, "Add") else layers.Dense(3, name="add")(a)
    return keras.Model(x, seq(c), name="outer")


def _same_predictions(m1, m2, shape):
    x = np.random.default_rng(0).random(shape).astype("float32")
    m2.set_weights(m1.get_weights())
    np.testing.assert_allclose(m1.predict(x), m2.predict(x), atol=1e-6)


def test_nested_and_shared_round_trip():
    model = _nested_model()
    config = json.loads(json.dumps(serialize_layer(model)))
    clone = deserialize_layer(config)
    assert [l.name for l in clone.layers] == [l.name for l in model.layers]
    assert clone.count_params() == model.count_params()
    _same_predictions(model, clone, (5, 4))


def test_shared_dense_layer_two_calls():
    x = keras.Input((6,), name="x")
    shared = layers.Dense(6, name="shared")
    y = shared(shared(x))
    model = keras.Model(x, y)
    config = serialize_layer(model)
    entry = next(e for e in config["config"]["layers"] if e["name"] == "shared")
    assert len(entry["inbound_nodes"]) == 2
    assert entry["inbound_nodes"][1]["args"][0]["config"]["keras_history"] == ["shared", 0, 0]
    assert config["config"]["output_layers"] == ["shared", 1, 0]
    clone = deserialize_layer(config)
    _same_predictions(model, clone, (3, 6))


def test_keras2_nested_model_references_are_one_based():
    """tf.keras 2 counts a nested model's own construction as its node 0 (checked against tf_keras 2.21)."""
    dense = lambda name, units: {"class_name": "Dense", "config": {"name": name, "units": units}}  # noqa: E731
    inner = {"class_name": "Functional", "config": {
        "name": "inner", "layers": [
            {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4], "name": "in"}, "name": "in",
             "inbound_nodes": []},
            dict(dense("idense", 3), name="idense", inbound_nodes=[[["in", 0, 0, {}]]])],
        "input_layers": [["in", 0, 0]], "output_layers": [["idense", 0, 0]]}}
    outer = {"class_name": "Model", "config": {
        "name": "outer", "layers": [
            {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4], "name": "x"}, "name": "x",
             "inbound_nodes": []},
            dict(inner, name="inner", inbound_nodes=[[["x", 0, 0, {}]], [["x", 0, 0, {}]]]),
            dict(dense("d", 2), name="d", inbound_nodes=[[["inner", 2, 0, {}]]])],
        "input_layers": [["x", 0, 0]], "output_layers": [["d", 0, 0]]}}
    model = deserialize_layer(outer)
    assert model.count_params() == 4 * 3 + 3 + 3 * 2 + 2
    assert len(model.get_layer("inner")._inbound_nodes) == 2


def test_keras3_fixture_config_reads_and_serializes_to_keras3_form(fixtures_dir):
    model = deserialize_layer(fixture_config(fixtures_dir, "keras2", "seed_functional"))
    config = serialize_layer(model)
    assert config["class_name"] == "Functional" and config["module"] == "keras.src.models.functional"
    dense = config["config"]["layers"][1]
    assert dense["inbound_nodes"][0]["args"][0]["class_name"] == "__keras_tensor__"
    assert dense["config"]["kernel_regularizer"]["class_name"] == "L1"
    assert config["config"]["input_layers"] == [["input_2", 0, 0]] or config["config"]["input_layers"] == \
        ["input_2", 0, 0]


def test_unknown_layer_class_is_named(fixtures_dir):
    config = copy.deepcopy(fixture_config(fixtures_dir, "keras3", "seed_functional"))
    config["config"]["layers"][2]["class_name"] = "FancyDense"
    with pytest.raises(ConfigError, match="FancyDense"):
        deserialize_layer(config)


def test_reference_to_missing_layer_is_a_graph_error(fixtures_dir):
    config = copy.deepcopy(fixture_config(fixtures_dir, "keras2", "seed_functional"))
    config["config"]["layers"][2]["inbound_nodes"] = [[["nowhere", 0, 0, {}]]]
    with pytest.raises(GraphError, match="nowhere"):
        deserialize_layer(config)


def test_cycle_is_a_graph_error(fixtures_dir):
    config = copy.deepcopy(fixture_config(fixtures_dir, "keras3", "seed_functional"))
    ls = config["config"]["layers"]
    # dense_3 now reads dense_4's output, which reads dense_3's: neither can ever run.
    ls[1]["inbound_nodes"][0]["args"][0]["config"]["keras_history"] = ["dense_4", 0, 0]
    with pytest.raises(GraphError, match="cycle"):
        deserialize_layer(config)


def test_bad_layer_argument_is_a_config_error(fixtures_dir):
    config = copy.deepcopy(fixture_config(fixtures_dir, "keras3", "seed_mlp"))
    config["config"]["layers"][1]["config"]["units"] = -3
    with pytest.raises(ConfigError, match="units"):
        deserialize_layer(config)


def test_keras_only_keys_are_dropped_but_typos_are_not(fixtures_dir):
    config = copy.deepcopy(fixture_config(fixtures_dir, "keras3", "seed_mlp"))
    config["config"]["layers"][1]["config"]["lora_alpha"] = None  # Keras 3 writes it; harmless
    assert deserialize_layer(config).count_params() == 6922
    config["config"]["layers"][1]["config"]["unitz"] = 3
    with pytest.raises(ConfigError, match="unitz"):
        deserialize_layer(config)


def test_lambda_bytecode_from_a_file_needs_safe_mode_off(tmp_path):
    from core.layers import core as core_layers
    from core.models import load_model

    x = keras.Input((3,), name="x")
    model = keras.Model(x, layers.Lambda(lambda t: t * 2.0 + 1.0, name="affine")(x))
    (tmp_path / "m.json").write_text(model.to_json())
    core_layers._SERIALIZED_FUNCTIONS.clear()  # as in a fresh process: the file's bytecode is all there is
    with pytest.raises(ConfigError, match="safe_mode=False"):
        load_model(tmp_path / "m.json")
    loaded = load_model(tmp_path / "m.json", safe_mode=False)
    data = np.arange(6, dtype="float32").reshape(2, 3)
    np.testing.assert_allclose(loaded.predict(data), data * 2.0 + 1.0)


def test_not_a_dict_is_a_config_error():
    with pytest.raises(ConfigError):
        deserialize_layer(["Dense"])
    with pytest.raises(ConfigError, match="class_name"):
        deserialize_layer({"config": {}})


def test_keras_only_keys_with_a_meaning_are_refused_not_dropped(fixtures_dir):
    config = copy.deepcopy(fixture_config(fixtures_dir, "keras3", "seed_mlp"))
    config["config"]["layers"][1]["config"]["quantization_config"] = {"mode": "int8"}  # a quantized Dense
    with pytest.raises(ConfigError, match="quantization_config="):
        deserialize_layer(config)

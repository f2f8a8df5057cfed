"""Keras scripts written from models (tests/interop runs them in real Keras; here: their shape and refusals)."""

import ast

import pytest

import core as keras
from core import layers
from core.errors import ConfigError
from exporters.python_source import export_python_source, to_python_source


def _nested():
    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, layers.Dense(3, name="idense")(inner_in), name="inner")
    x = keras.Input((4,), name="x")
    shared = layers.Dense(3, name="shared")
    y = shared(shared(inner(x)))
    return keras.Model(x, y, name="outer")


@pytest.mark.parametrize("target", ["keras3", "tf_keras2"])
def test_script_defines_builders_and_wires_calls(tmp_path, target):
    path = export_python_source(_nested(), tmp_path / "model.py", target=target)
    source = path.read_text()
    tree = ast.parse(source)
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert functions == ["build_inner", "build_outer", "build_model"]
    assert "shared_out = shared(inner_out)" in source and "shared_out_1 = shared(shared_out)" in source
    assert ("import keras" if target == "keras3" else "import tf_keras as keras") in source
    # As a person writes it: required arguments by position, the name, and only what differs from the defaults.
    assert "layers.Dense(3, name='shared')" in source and "GlorotUniform" not in source
    assert "keras.Input(shape=(4,), name='x')" in source


def test_only_arguments_that_differ_from_the_defaults_are_written():
    x = keras.Input((5, 3), name="x")
    h = layers.GRU(4, dropout=0.1, name="gru")(x)
    h = layers.Dense(8, activation="relu", kernel_initializer="he_normal", use_bias=False, name="h")(h)
    source = to_python_source(keras.Model(x, layers.Dropout(0.2, name="drop")(h), name="m"))
    assert "layers.GRU(4, name='gru', dropout=0.1)" in source
    assert ("layers.Dense(8, name='h', activation='relu', use_bias=False, "
            "kernel_initializer=keras.initializers.HeNormal())") in source
    assert "layers.Dropout(0.2, name='drop')" in source


def test_custom_layers_cannot_be_written():
    class Scale(layers.Layer):
        def call(self, x):
            return x

    x = keras.Input((2,))
    model = keras.Model(x, Scale(name="scale")(x))
    with pytest.raises(ConfigError, match="scale"):
        to_python_source(model)


def test_unbuilt_sequential_is_refused():
    with pytest.raises(ConfigError, match="not a built"):
        to_python_source(keras.Sequential([layers.Dense(2)]))


def test_a_bidirectional_layer_is_written_as_keras_makes_it_and_rebuilds_the_same_config(tmp_path):
    from exporters.verify import _run_script

    x = keras.Input((5, 3), name="x")
    h = layers.Bidirectional(layers.LSTM(4, return_sequences=True, name="lstm"), name="bi")(x)
    h = layers.Bidirectional(layers.GRU(3, name="g"), merge_mode="sum", name="bi2")(h)
    model = keras.Model(x, layers.Dense(2, name="out")(h), name="demo")
    path = export_python_source(model, tmp_path / "demo.py")
    source = path.read_text()
    assert "layers.Bidirectional(layers.LSTM(4, name='lstm', return_sequences=True), name='bi')" in source
    assert "backward_layer" not in source
    rebuilt = _run_script(path, model)  # the script, with keras standing for the engine
    assert rebuilt.to_json() == model.to_json()


def test_the_training_scripts_optimizer_has_only_what_differs_from_its_defaults():
    from core import optimizers
    from exporters.python_source import _optimizer_expr

    config = {"class_name": "SGD", "config": optimizers.SGD(learning_rate=0.1, momentum=0.9).get_config()}
    assert _optimizer_expr({"optimizer": config, "loss": "mse"}) == \
        "keras.optimizers.SGD(learning_rate=0.1, momentum=0.9)"
    assert _optimizer_expr({"optimizer": config, "learning_rate": 0.5, "loss": "mse"}) == \
        "keras.optimizers.SGD(learning_rate=0.5, momentum=0.9)"
    assert _optimizer_expr({"optimizer": "rmsprop", "loss": "mse"}) == "keras.optimizers.RMSprop()"

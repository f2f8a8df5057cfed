"""'hard_sigmoid' means clip(0.2x + 0.5) in tf.keras 2 and relu6(x + 3) / 6 in Keras 3: reading a file keeps the
meaning its Keras gave the name, and writing names each function for the target or refuses with a clear error."""

import json

import numpy as np
import pytest

import core as keras
from core import activations, layers, models
from core.errors import FileFormatError
from exporters import keras_config

tf_keras = pytest.importorskip("tf_keras")


def _tf_keras2_lstm_json():
    model = tf_keras.Sequential([tf_keras.Input((5, 3)), tf_keras.layers.LSTM(4, recurrent_activation="hard_sigmoid"),
                                 tf_keras.layers.Dense(2, activation="hard_sigmoid")])
    return model, model.to_json()


def test_tf_keras2_file_keeps_tf_keras2_meaning_and_predicts_like_tf_keras():
    theirs, js = _tf_keras2_lstm_json()
    ours = models.model_from_json(js)
    ours.set_weights(theirs.get_weights())
    lstm = ours.layers[0]
    assert lstm.cell.recurrent_activation is activations.hard_sigmoid_tf_keras2
    assert ours.layers[1].activation is activations.hard_sigmoid_tf_keras2
    x = np.random.default_rng(0).standard_normal((6, 5, 3)).astype(np.float32) * 3
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), atol=1e-5)
    # written back for tf.keras 2, the name is 'hard_sigmoid' again and tf.keras 2 predicts the same
    back = json.loads(keras_config.to_json(ours, target="tf_keras2"))
    assert back["config"]["layers"][-1]["config"]["activation"] == "hard_sigmoid"
    reread = tf_keras.models.model_from_json(json.dumps(back))
    reread.set_weights(ours.get_weights())
    np.testing.assert_allclose(reread.predict(x, verbose=0), ours.predict(x), atol=1e-5)


def test_each_target_refuses_the_function_it_cannot_name():
    inp = keras.Input(shape=(3,))
    keras3_model = keras.Model(inp, layers.Dense(2, activation="hard_sigmoid", name="gate")(inp))
    assert json.loads(keras_config.to_json(keras3_model))["config"]["layers"][1]["config"]["activation"] \
        == "hard_sigmoid"
    with pytest.raises(FileFormatError, match="Layer 'gate' uses Keras 3's hard_sigmoid"):
        keras_config.to_json(keras3_model, target="tf_keras2")
    _, js = _tf_keras2_lstm_json()
    with pytest.raises(FileFormatError, match="uses tf.keras 2's hard_sigmoid"):
        keras_config.to_json(models.model_from_json(js), target="keras3")


def test_keras3_files_keep_keras3_meaning():
    inp = keras.Input(shape=(3,))
    model = keras.Model(inp, layers.Dense(2, activation="hard_sigmoid")(inp))
    again = models.model_from_json(model.to_json())
    assert again.layers[1].activation is activations.hard_sigmoid

"""The tf.keras overview seed (`shared/seeds/000_*.txt`) up to training, run against the engine.

Each block below is a seed cell as written there; only the imports changed (`import core as tf`,
`from core import keras`, `from core import layers`). Training cells (compile/fit/evaluate) belong to the training
tests; here the built models are predicted instead and their outputs checked. Also the word-embeddings cells and
the masking cells (pad_sequences, then Embedding(mask_zero=True) and Masking on the padded inputs), asserting what
the seed prints.
"""

import numpy as np
import pytest

import core as tf
from core import keras  # noqa: F401  (the seed's `from tensorflow import keras`)
from core import layers

DATA = np.random.random((1000, 32))


def _rows_sum_to_one(result):
    np.testing.assert_allclose(result.sum(axis=1), np.ones(len(result)), rtol=1e-5)
    assert (result >= 0).all()


def test_sequential_model_built_with_add():
    # In [19]
    model = tf.keras.Sequential()
    # Adds a densely-connected layer with 64 units to the model:
    model.add(layers.Dense(64, activation='relu'))
    # Add another:
    model.add(layers.Dense(64, activation='relu'))
    # Add a softmax layer with 10 output units:
    model.add(layers.Dense(10, activation='softmax'))

    result = model.predict(DATA, batch_size=32)
    assert result.shape == (1000, 10)
    _rows_sum_to_one(result)
    assert model.count_params() == 32 * 64 + 64 + 64 * 64 + 64 + 64 * 10 + 10


def test_configure_the_layers():
    # In [20]
    # Create a sigmoid layer:
    sig1 = layers.Dense(64, activation='sigmoid')
    # Or:
    sig2 = layers.Dense(64, activation=tf.keras.activations.sigmoid)

    # A linear layer with L1 regularization of factor 0.01 applied to the kernel matrix:
    l1 = layers.Dense(64, kernel_regularizer=tf.keras.regularizers.l1(0.01))

    # A linear layer with L2 regularization of factor 0.01 applied to the bias vector:
    l2 = layers.Dense(64, bias_regularizer=tf.keras.regularizers.l2(0.01))

    # A linear layer with a kernel initialized to a random orthogonal matrix:
    orth = layers.Dense(64, kernel_initializer='orthogonal')

    # A linear layer with a bias vector initialized to 2.0s:
    const = layers.Dense(64, bias_initializer=tf.keras.initializers.Constant(2.0))

    x = DATA[:5].astype("float32")
    assert sig1.get_config()["activation"] == sig2.get_config()["activation"] == "sigmoid"
    for layer in (sig1, sig2):
        y = layer(x).numpy()
        k, b = layer.get_weights()
        np.testing.assert_allclose(y, 1 / (1 + np.exp(-(x @ k + b))), rtol=1e-5, atol=1e-6)
    assert l1.get_config()["kernel_regularizer"]["config"] == {"l1": 0.01}
    assert l2.get_config()["bias_regularizer"]["config"] == {"l2": 0.01}
    l1(x)
    kernel = l1.get_weights()[0]
    np.testing.assert_allclose(tf.keras.regularizers.l1(0.01)(kernel), 0.01 * np.abs(kernel).sum(), rtol=1e-5)
    orth(x)
    kernel = orth.get_weights()[0]  # (32, 64): orthonormal rows
    np.testing.assert_allclose(kernel @ kernel.T, np.eye(32), atol=1e-5)
    assert orth.get_config()["kernel_initializer"]["class_name"] == "Orthogonal"
    const(x)
    np.testing.assert_array_equal(const.get_weights()[1], np.full(64, 2.0))
    assert const.get_config()["bias_initializer"] == {"module": "keras.initializers", "class_name": "Constant",
                                                      "config": {"value": 2.0}, "registered_name": None}


def test_sequential_with_input_shape_predicts():
    # In [21] up to compile
    model = tf.keras.Sequential([
        # Adds a densely-connected layer with 64 units to the model:
        layers.Dense(64, activation='relu', input_shape=(32,)),
        # Add another:
        layers.Dense(64, activation='relu'),
        # Add a softmax layer with 10 output units:
        layers.Dense(10, activation='softmax')])

    assert model.built and model.inputs[0].shape == (None, 32)
    # In [29] (after training in the seed)
    result = model.predict(DATA, batch_size=32)
    print(result.shape)
    assert result.shape == (1000, 10)
    _rows_sum_to_one(result)


def test_functional_api():
    # In [30]
    inputs = tf.keras.Input(shape=(32,))  # Returns an input placeholder

    # A layer instance is callable on a tensor, and returns a tensor.
    x = layers.Dense(64, activation='relu')(inputs)
    x = layers.Dense(64, activation='relu')(x)
    predictions = layers.Dense(10, activation='softmax')(x)

    # In [31] up to compile
    model = tf.keras.Model(inputs=inputs, outputs=predictions)

    assert predictions.shape == (None, 10)
    result = model.predict(DATA, batch_size=32)
    assert result.shape == (1000, 10)
    _rows_sum_to_one(result)
    w = [layer.get_weights() for layer in model.layers[1:]]
    h = np.maximum(DATA @ w[0][0] + w[0][1], 0)
    h = np.maximum(h @ w[1][0] + w[1][1], 0)
    logits = h @ w[2][0] + w[2][1]
    want = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(result, want / want.sum(1, keepdims=True), rtol=1e-4, atol=1e-6)


class MyModel(tf.keras.Model):

  def __init__(self, num_classes=10):
    super(MyModel, self).__init__(name='my_model')
    self.num_classes = num_classes
    # Define your layers here.
    self.dense_1 = layers.Dense(32, activation='relu')
    self.dense_2 = layers.Dense(num_classes, activation='sigmoid')

  def call(self, inputs):
    # Define your forward pass here,
    # using layers you previously defined (in `__init__`).
    x = self.dense_1(inputs)
    return self.dense_2(x)


def test_model_subclassing():
    # In [33] up to compile
    # Instantiate the new model class:
    model = MyModel(num_classes=10)

    result = model.predict(DATA, batch_size=32)
    assert model.name == 'my_model'
    assert result.shape == (1000, 10)
    assert ((result > 0) & (result < 1)).all()
    k1, b1 = model.dense_1.get_weights()
    k2, b2 = model.dense_2.get_weights()
    want = 1 / (1 + np.exp(-(np.maximum(DATA @ k1 + b1, 0) @ k2 + b2)))
    np.testing.assert_allclose(result, want, rtol=1e-4, atol=1e-6)
    assert [w.name for w in model.weights] == ["kernel", "bias", "kernel", "bias"]


class MyLayer(layers.Layer):

  def __init__(self, output_dim, **kwargs):
    self.output_dim = output_dim
    super(MyLayer, self).__init__(**kwargs)

  def build(self, input_shape):
    # Create a trainable weight variable for this layer.
    self.kernel = self.add_weight(name='kernel',
                                  shape=(input_shape[1], self.output_dim),
                                  initializer='uniform',
                                  trainable=True)

  def call(self, inputs):
    return tf.matmul(inputs, self.kernel)

  def get_config(self):
    base_config = super(MyLayer, self).get_config()
    base_config['output_dim'] = self.output_dim
    return base_config

  @classmethod
  def from_config(cls, config):
    return cls(**config)


def test_custom_layer():
    # In [35] up to compile
    # Create a model using your custom layer:
    model = tf.keras.Sequential([
        MyLayer(10),
        layers.Activation('softmax')])

    result = model.predict(DATA, batch_size=32)
    assert result.shape == (1000, 10)
    _rows_sum_to_one(result)
    my_layer = model.layers[0]
    kernel = my_layer.get_weights()[0]
    assert kernel.shape == (32, 10) and np.abs(kernel).max() <= 0.05  # 'uniform' is U(-0.05, 0.05)
    logits = DATA @ kernel
    want = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(result, want / want.sum(1, keepdims=True), rtol=1e-4, atol=1e-6)
    config = my_layer.get_config()
    assert config['output_dim'] == 10
    again = MyLayer.from_config(config)
    assert again.output_dim == 10 and again.name == my_layer.name


def test_word_embeddings_cells():
    # In [21]
    embedding_layer = layers.Embedding(1000, 5)

    # In [22]
    result = embedding_layer(tf.constant([1,2,3]))
    result

    # In [23]
    values = result.numpy()
    assert values.shape == (3, 5) and values.dtype == np.float32
    np.testing.assert_array_equal(values, embedding_layer.get_weights()[0][[1, 2, 3]])
    assert np.abs(values).max() <= 0.05

    # In [24]
    result = embedding_layer(tf.constant([[0,1,2],[3,4,5]]))
    result.shape
    assert result.shape == (2, 3, 5)


def _padded_inputs():
    # In [8]
    raw_inputs = [
      [83, 91, 1, 645, 1253, 927],
      [73, 8, 3215, 55, 927],
      [711, 632, 71]
    ]

    # By default, this will pad using 0s; it is configurable via the
    # "value" parameter.
    # Note that you could "pre" padding (at the beginning) or
    # "post" padding (at the end).
    # We recommend using "post" padding when working with RNN layers
    # (in order to be able to use the
    # CuDNN implementation of the layers).
    padded_inputs = tf.keras.preprocessing.sequence.pad_sequences(raw_inputs,
                                                                  padding='post')

    print(padded_inputs)
    return padded_inputs


# What the seed printed for padded_inputs and for both masks.
PADDED_INPUTS = np.array([[83, 91, 1, 645, 1253, 927],
                          [73, 8, 3215, 55, 927, 0],
                          [711, 632, 71, 0, 0, 0]], dtype="int32")
SEED_MASK = np.array([[True, True, True, True, True, True],
                      [True, True, True, True, True, False],
                      [True, True, True, False, False, False]])


def test_masking_cells_embedding():
    padded_inputs = _padded_inputs()
    np.testing.assert_array_equal(padded_inputs, PADDED_INPUTS)
    # In [10]
    embedding = layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True)
    masked_output = embedding(padded_inputs)

    print(masked_output._keras_mask)
    assert masked_output.shape == (3, 6, 16)
    assert masked_output._keras_mask.dtype == bool
    np.testing.assert_array_equal(masked_output._keras_mask, SEED_MASK)


def test_masking_cells_masking_layer():
    padded_inputs = _padded_inputs()
    # In [11]
    masking_layer = layers.Masking()
    # Simulate the embedding lookup by expanding the 2D input to 3D,
    # with embedding dimension of 10.
    unmasked_embedding = tf.cast(
        tf.tile(tf.expand_dims(padded_inputs, axis=-1), [1, 1, 10]),
        tf.float32)

    masked_embedding = masking_layer(unmasked_embedding)
    print(masked_embedding._keras_mask)
    assert unmasked_embedding.shape == (3, 6, 10) and unmasked_embedding.dtype == np.float32
    np.testing.assert_array_equal(masked_embedding._keras_mask, SEED_MASK)
    np.testing.assert_array_equal(masked_embedding.numpy(), unmasked_embedding)


@pytest.mark.parametrize("mask_layer", ["embedding", "masking"])
def test_mask_propagates_through_functional_model(mask_layer):
    """The seed's next point: a mask made by Embedding/Masking travels with the tensor through the model."""
    if mask_layer == "embedding":
        inputs = tf.keras.Input(shape=(6,))
        x = layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True)(inputs)
        data = PADDED_INPUTS
    else:
        inputs = tf.keras.Input(shape=(6, 10))
        x = layers.Masking()(inputs)
        data = np.repeat(PADDED_INPUTS[..., None], 10, axis=-1).astype("float32")
    x = layers.Dense(8)(x)
    assert x.has_mask
    model = tf.keras.Model(inputs, x)
    assert model.predict(data).shape == (3, 6, 8)

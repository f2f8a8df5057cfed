"""The seed guide 'Recurrent Neural Networks (RNN) with Keras' and its masking section, run with only the imports
changed (`import core as tf`, `from core import layers`): the summaries' parameter totals, the encoder-decoder
model, pad_sequences and the masks print the seed's values."""

import numpy as np

import core as tf
from core import layers


def _summary(model) -> str:
    lines = []
    model.summary(print_fn=lines.append)
    return "\n".join(lines)


def test_seed_lstm_model():
    model = tf.keras.Sequential()
    # Add an Embedding layer expecting input vocab of size 1000, and
    # output embedding dimension of size 64.
    model.add(layers.Embedding(input_dim=1000, output_dim=64))

    # Add a LSTM layer with 128 internal units.
    model.add(layers.LSTM(128))

    # Add a Dense layer with 10 units and softmax activation.
    model.add(layers.Dense(10, activation='softmax'))

    model.build((None, None))
    text = _summary(model)
    assert "Total params: 164,106" in text
    assert "98,816" in text or "98816" in text
    assert model.predict(np.random.randint(1, 1000, size=(3, 7))).shape == (3, 10)


def test_seed_gru_simplernn_model():
    model = tf.keras.Sequential()
    model.add(layers.Embedding(input_dim=1000, output_dim=64))

    # The output of GRU will be a 3D tensor of shape (batch_size, timesteps, 256)
    model.add(layers.GRU(256, return_sequences=True))

    # The output of SimpleRNN will be a 2D tensor of shape (batch_size, 128)
    model.add(layers.SimpleRNN(128))

    model.add(layers.Dense(10, activation='softmax'))

    model.build((None, None))
    text = _summary(model)
    assert "Total params: 361,866" in text
    assert model.layers[1].output.shape == (None, None, 256)
    assert model.layers[2].output.shape == (None, 128)


def test_seed_encoder_decoder_model():
    encoder_vocab = 1000
    decoder_vocab = 2000

    encoder_input = layers.Input(shape=(None, ))
    encoder_embedded = layers.Embedding(input_dim=encoder_vocab, output_dim=64)(encoder_input)

    # Return states in addition to output
    output, state_h, state_c = layers.LSTM(
        64, return_state=True, name='encoder')(encoder_embedded)
    encoder_state = [state_h, state_c]

    decoder_input = layers.Input(shape=(None, ))
    decoder_embedded = layers.Embedding(input_dim=decoder_vocab, output_dim=64)(decoder_input)

    # Pass the 2 states to a new LSTM layer, as initial state
    decoder_output = layers.LSTM(
        64, name='decoder')(decoder_embedded, initial_state=encoder_state)
    output = layers.Dense(10, activation='softmax')(decoder_output)

    model = tf.keras.Model([encoder_input, decoder_input], output)
    text = _summary(model)
    assert "encoder" in text and "decoder" in text
    assert model.count_params() == 64000 + 128000 + 2 * 33024 + 650
    enc = np.random.randint(1, 1000, size=(2, 5))
    dec = np.random.randint(1, 2000, size=(2, 3))
    out = model.predict([enc, dec])
    assert out.shape == (2, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)


def test_seed_bidirectional_model():
    model = tf.keras.Sequential()

    model.add(layers.Bidirectional(layers.LSTM(64, return_sequences=True),
                                   input_shape=(5, 10)))
    model.add(layers.Bidirectional(layers.LSTM(32)))
    model.add(layers.Dense(10, activation='softmax'))

    text = _summary(model)
    assert "Total params: 80,266" in text
    assert "38,400" in text and "41,216" in text
    assert model.layers[0].output.shape == (None, 5, 128)


def test_seed_padding_and_masks():
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
    np.testing.assert_array_equal(padded_inputs, [[83, 91, 1, 645, 1253, 927], [73, 8, 3215, 55, 927, 0],
                                                  [711, 632, 71, 0, 0, 0]])

    expected_mask = [[True, True, True, True, True, True], [True, True, True, True, True, False],
                     [True, True, True, False, False, False]]

    embedding = layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True)
    masked_output = embedding(padded_inputs)

    print(masked_output._keras_mask)
    np.testing.assert_array_equal(np.asarray(masked_output._keras_mask), expected_mask)

    masking_layer = layers.Masking()
    # Simulate the embedding lookup by expanding the 2D input to 3D,
    # with embedding dimension of 10.
    unmasked_embedding = tf.cast(
        tf.tile(tf.expand_dims(padded_inputs, axis=-1), [1, 1, 10]),
        tf.float32)

    masked_embedding = masking_layer(unmasked_embedding)
    print(masked_embedding._keras_mask)
    np.testing.assert_array_equal(np.asarray(masked_embedding._keras_mask), expected_mask)


def test_seed_mask_propagates_into_the_lstm():
    # "in the following Sequential model, the LSTM layer will automatically receive a mask"
    model = tf.keras.Sequential([layers.Input(shape=(None,), dtype="int32"),
                                 layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True),
                                 layers.LSTM(32)])
    padded = tf.keras.preprocessing.sequence.pad_sequences([[5, 8, 2], [7, 1]], padding='post')
    out = model.predict(padded)
    # The padded step is skipped: the second sample's result equals running it without the padding.
    short = model.predict(np.array([[7, 1]]))
    np.testing.assert_allclose(out[1], short[0], atol=1e-6)

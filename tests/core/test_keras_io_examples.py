"""The keras-io examples (examples/timeseries, nlp, structured_data, keras_recipes) whose layers the engine has, as
patterns: each test uses the same API in the same way as its example, on small generated data, so the example runs
with only its imports (`import core as keras` / `import core as tf`) and its data loading changed. The examples'
own code stays in their repository; these tests are written here."""

import os

import numpy as np
import pytest

import core as keras
import core as tf
from core import layers


def _series(n=400, features=3, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    return (np.sin(t / (5 + np.arange(features))) + 0.1 * rng.normal(size=(n, features))).astype("float32")


def test_timeseries_weather_forecasting(tmp_path):
    """timeseries/timeseries_weather_forecasting.py: windows from `keras.preprocessing.timeseries_dataset_from_array`
    with a sampling rate, a peek with `take(1)` and `.numpy()`, an LSTM trained on the dataset with EarlyStopping and
    a weights-only ModelCheckpoint, and predictions on validation batches."""
    features = _series()
    past, future, step = 24, 6, 2
    train_split = 300
    x_train, y_train = features[:train_split], features[past + future:past + future + train_split, [1]]
    sequence_length = past // step
    dataset_train = keras.preprocessing.timeseries_dataset_from_array(
        x_train, y_train, sequence_length=sequence_length, sampling_rate=step, batch_size=32)
    x_end = len(features) - train_split - past - future
    x_val, y_val = features[train_split:train_split + x_end], features[train_split + past + future:, [1]]
    dataset_val = keras.preprocessing.timeseries_dataset_from_array(
        x_val, y_val, sequence_length=sequence_length, sampling_rate=step, batch_size=32)
    for batch in dataset_train.take(1):
        inputs, targets = batch
    assert inputs.numpy().shape == (32, sequence_length, 3) and targets.numpy().shape == (32, 1)

    inputs = keras.layers.Input(shape=(inputs.shape[1], inputs.shape[2]))
    lstm_out = keras.layers.LSTM(8)(inputs)
    outputs = keras.layers.Dense(1)(lstm_out)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse")
    model.summary(print_fn=lambda *a, **k: None)
    path_checkpoint = str(tmp_path / "model_checkpoint.weights.h5")
    es_callback = keras.callbacks.EarlyStopping(monitor="val_loss", min_delta=0, patience=5)
    modelckpt_callback = keras.callbacks.ModelCheckpoint(monitor="val_loss", filepath=path_checkpoint, verbose=0,
                                                         save_weights_only=True, save_best_only=True)
    history = model.fit(dataset_train, epochs=2, validation_data=dataset_val,
                        callbacks=[es_callback, modelckpt_callback], verbose=0)
    assert len(history.history["loss"]) == len(history.history["val_loss"]) == 2
    assert os.path.exists(path_checkpoint)
    for x, y in dataset_val.take(2):
        single = [x[0][:, 1].numpy(), y[0].numpy(), model.predict(x, verbose=0)[0]]
        assert single[0].shape == (sequence_length,) and single[2].shape == (1,)


def test_lstm_seq2seq_inference_models(tmp_path):
    """nlp/lstm_seq2seq.py: an encoder LSTM's states start the decoder LSTM; after save/load the sampling models
    are rebuilt from `model.input[0]`, `model.layers[2].output` (output and states) and the decoder layers called
    again on new state Inputs."""
    tokens_in, tokens_out, latent = 5, 6, 8
    rng = np.random.default_rng(1)
    encoder_input_data = np.eye(tokens_in, dtype="float32")[rng.integers(0, tokens_in, (24, 7))]
    decoder_input_data = np.eye(tokens_out, dtype="float32")[rng.integers(0, tokens_out, (24, 9))]
    decoder_target_data = np.roll(decoder_input_data, -1, axis=1)

    encoder_inputs = keras.Input(shape=(None, tokens_in))
    encoder = keras.layers.LSTM(latent, return_state=True)
    encoder_outputs, state_h, state_c = encoder(encoder_inputs)
    decoder_inputs = keras.Input(shape=(None, tokens_out))
    decoder_lstm = keras.layers.LSTM(latent, return_sequences=True, return_state=True)
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=[state_h, state_c])
    decoder_outputs = keras.layers.Dense(tokens_out, activation="softmax")(decoder_outputs)
    model = keras.Model([encoder_inputs, decoder_inputs], decoder_outputs)
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit([encoder_input_data, decoder_input_data], decoder_target_data, batch_size=8, epochs=1,
              validation_split=0.2, verbose=0)
    model.save(str(tmp_path / "s2s_model.keras"))

    model = keras.models.load_model(str(tmp_path / "s2s_model.keras"))
    encoder_inputs = model.input[0]
    encoder_outputs, state_h_enc, state_c_enc = model.layers[2].output
    encoder_model = keras.Model(encoder_inputs, [state_h_enc, state_c_enc])
    decoder_inputs = model.input[1]
    decoder_state_input_h = keras.Input(shape=(latent,))
    decoder_state_input_c = keras.Input(shape=(latent,))
    decoder_lstm = model.layers[3]
    decoder_outputs, state_h_dec, state_c_dec = decoder_lstm(
        decoder_inputs, initial_state=[decoder_state_input_h, decoder_state_input_c])
    decoder_outputs = model.layers[4](decoder_outputs)
    decoder_model = keras.Model([decoder_inputs, decoder_state_input_h, decoder_state_input_c],
                                [decoder_outputs, state_h_dec, state_c_dec])

    states_value = encoder_model.predict(encoder_input_data[:1], verbose=0)
    target_seq = np.zeros((1, 1, tokens_out))
    target_seq[0, 0, 0] = 1.0
    decoded = []
    for _ in range(4):
        output_tokens, h, c = decoder_model.predict([target_seq] + states_value, verbose=0)
        decoded.append(int(np.argmax(output_tokens[0, -1, :])))
        target_seq = np.zeros((1, 1, tokens_out))
        target_seq[0, 0, decoded[-1]] = 1.0
        states_value = [h, c]
    # Step-by-step decoding with the sampling models reproduces the trained model on the same prefix.
    prefix = np.zeros((1, 4, tokens_out), "float32")
    prefix[0, 0, 0] = 1.0
    prefix[0, 1:, :][np.arange(3), decoded[:3]] = 1.0
    full = model.predict([encoder_input_data[:1], prefix], verbose=0)
    assert [int(i) for i in np.argmax(full[0], axis=-1)] == decoded


def test_addition_rnn():
    """nlp/addition_rnn.py: one-hot bool data, `Sequential.add` with `input_shape`, RepeatVector, a sequence LSTM
    and a softmax Dense over time, fit one epoch at a time with validation_data, argmax of predictions."""
    maxlen, digits, chars = 5, 2, 12
    rng = np.random.default_rng(2)
    x = np.zeros((40, maxlen, chars), dtype=bool)
    y = np.zeros((40, digits + 1, chars), dtype=bool)
    x[np.arange(40)[:, None], np.arange(maxlen), rng.integers(0, chars, (40, maxlen))] = True
    y[np.arange(40)[:, None], np.arange(digits + 1), rng.integers(0, chars, (40, digits + 1))] = True
    split_at = len(x) - len(x) // 10
    (x_train, x_val), (y_train, y_val) = (x[:split_at], x[split_at:]), (y[:split_at], y[split_at:])
    model = keras.Sequential()
    model.add(layers.LSTM(16, input_shape=(maxlen, chars)))
    model.add(layers.RepeatVector(digits + 1))
    model.add(layers.LSTM(16, return_sequences=True))
    model.add(layers.Dense(chars, activation="softmax"))
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    for _ in range(2):
        history = model.fit(x_train, y_train, batch_size=8, epochs=1, validation_data=(x_val, y_val), verbose=0)
        assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        ind = rng.integers(0, len(x_val))
        preds = np.argmax(model.predict(x_val[np.array([ind])], verbose=0), axis=-1)
        assert preds.shape == (1, digits + 1)


def test_bidirectional_lstm_imdb():
    """nlp/bidirectional_lstm_imdb.py: variable-length int32 Input, Embedding, two Bidirectional LSTMs, data padded
    with `keras.preprocessing.sequence.pad_sequences`."""
    rng = np.random.default_rng(3)
    reviews = [list(rng.integers(1, 50, rng.integers(3, 15))) for _ in range(24)]
    labels = rng.integers(0, 2, 24)
    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(50, 8)(inputs)
    x = layers.Bidirectional(layers.LSTM(4, return_sequences=True))(x)
    x = layers.Bidirectional(layers.LSTM(4))(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    x_train = keras.preprocessing.sequence.pad_sequences(reviews[:16], maxlen=10)
    x_val = keras.preprocessing.sequence.pad_sequences(reviews[16:], maxlen=10)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, labels[:16], batch_size=8, epochs=1, validation_data=(x_val, labels[16:]),
                        verbose=0)
    assert "val_accuracy" in history.history


def test_imbalanced_classification(tmp_path):
    """structured_data/imbalanced_classification.py: class_weight from class counts, confusion-count metrics,
    Precision and Recall, a ModelCheckpoint per epoch named with {epoch}."""
    rng = np.random.default_rng(4)
    features = rng.normal(size=(60, 5)).astype("float32")
    targets = (features[:, :1] > 1.0).astype("uint8")
    counts = np.bincount(targets[:, 0])
    class_weight = {0: 1.0 / counts[0], 1: 1.0 / counts[1]}
    model = keras.Sequential([keras.Input(shape=features.shape[1:]), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dropout(0.3), keras.layers.Dense(1, activation="sigmoid")])
    metrics = [keras.metrics.FalseNegatives(name="fn"), keras.metrics.FalsePositives(name="fp"),
               keras.metrics.TrueNegatives(name="tn"), keras.metrics.TruePositives(name="tp"),
               keras.metrics.Precision(name="precision"), keras.metrics.Recall(name="recall")]
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy", metrics=metrics)
    callbacks = [keras.callbacks.ModelCheckpoint(str(tmp_path / "fraud_model_at_epoch_{epoch}.keras"))]
    history = model.fit(features[:48], targets[:48], batch_size=16, epochs=2, verbose=0, callbacks=callbacks,
                        validation_data=(features[48:], targets[48:]), class_weight=class_weight)
    assert history.history["tp"][-1] + history.history["fn"][-1] == counts[1] - targets[48:].sum()
    assert sorted(os.listdir(tmp_path)) == ["fraud_model_at_epoch_1.keras", "fraud_model_at_epoch_2.keras"]


def test_collaborative_filtering_subclassed_model():
    """structured_data/collaborative_filtering_movielens.py: a subclassed model slicing its input (`inputs[:, 0]`)
    into Embeddings with regularizers, `layers.Dot(axes=1)` inside call, `tf.nn.sigmoid`, called on a Functional
    Input before compile."""

    class RecommenderNet(keras.Model):
        def __init__(self, num_users, num_movies, embedding_size, **kwargs):
            super().__init__(**kwargs)
            self.user_embedding = layers.Embedding(num_users, embedding_size, embeddings_initializer="he_normal",
                                                   embeddings_regularizer=keras.regularizers.l2(1e-6))
            self.user_bias = layers.Embedding(num_users, 1)
            self.movie_embedding = layers.Embedding(num_movies, embedding_size,
                                                    embeddings_initializer="he_normal",
                                                    embeddings_regularizer=keras.regularizers.l2(1e-6))
            self.movie_bias = layers.Embedding(num_movies, 1)

        def call(self, inputs):
            user_vector = self.user_embedding(inputs[:, 0])
            user_bias = self.user_bias(inputs[:, 0])
            movie_vector = self.movie_embedding(inputs[:, 1])
            movie_bias = self.movie_bias(inputs[:, 1])
            dot_user_movie = layers.Dot(axes=1)([user_vector, movie_vector])
            x = dot_user_movie + user_bias + movie_bias
            return tf.nn.sigmoid(x)

    rng = np.random.default_rng(5)
    x = np.stack([rng.integers(0, 10, 64), rng.integers(0, 20, 64)], axis=1)
    y = rng.random(64).astype("float32")
    inputs = layers.Input(shape=(2,))
    model = RecommenderNet(10, 20, 4)
    outputs = model(inputs)
    assert outputs.shape == (None, 1)
    model.compile(loss=tf.keras.losses.BinaryCrossentropy(), optimizer=keras.optimizers.Adam(learning_rate=0.01))
    history = model.fit(x=x[:48], y=y[:48], batch_size=16, epochs=2, verbose=0, validation_data=(x[48:], y[48:]))
    assert history.history["loss"][-1] < history.history["loss"][0]
    user_movie_array = np.hstack(([[3]] * 5, [[m] for m in range(5)]))
    assert model.predict(user_movie_array, verbose=0).flatten().shape == (5,)


class Antirectifier(layers.Layer):
    """keras_recipes/antirectifier.py's layer, written again with the same calls."""

    def __init__(self, initializer="he_normal", **kwargs):
        super().__init__(**kwargs)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        output_dim = input_shape[-1]
        self.kernel = self.add_weight(shape=(output_dim * 2, output_dim), initializer=self.initializer,
                                      name="kernel", trainable=True)

    def call(self, inputs):
        inputs -= tf.reduce_mean(inputs, axis=-1, keepdims=True)
        pos = tf.nn.relu(inputs)
        neg = tf.nn.relu(-inputs)
        concatenated = tf.concat([pos, neg], axis=-1)
        return tf.matmul(concatenated, self.kernel)

    def get_config(self):
        base_config = super().get_config()
        config = {"initializer": keras.initializers.serialize(self.initializer)}
        return dict(list(base_config.items()) + list(config.items()))


def test_antirectifier_custom_layer():
    """keras_recipes/antirectifier.py: a custom layer computed with tf.reduce_mean / tf.nn.relu / tf.concat /
    tf.matmul, trained with a from_logits sparse loss and RMSprop, validation_split, evaluate."""
    rng = np.random.default_rng(6)
    x_train = rng.random((60, 12)).astype("float32")
    y_train = rng.integers(0, 3, 60)
    model = keras.Sequential([keras.Input(shape=(12,)), layers.Dense(8), Antirectifier(), layers.Dense(8),
                              Antirectifier(), layers.Dropout(0.5), layers.Dense(3)])
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  optimizer=keras.optimizers.RMSprop(), metrics=[keras.metrics.SparseCategoricalAccuracy()])
    model.fit(x_train, y_train, batch_size=16, epochs=2, validation_split=0.15, verbose=0)
    loss, accuracy = model.evaluate(x_train, y_train, verbose=0)
    assert np.isfinite(loss) and 0.0 <= accuracy <= 1.0
    x = rng.normal(size=(2, 4)).astype("float32")
    layer = Antirectifier()
    centred = x - x.mean(-1, keepdims=True)
    out = np.asarray(layer(x))
    expected = np.concatenate([np.maximum(centred, 0), np.maximum(-centred, 0)], -1) @ layer.kernel.numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert Antirectifier.from_config(layer.get_config()).initializer.__class__ is layer.initializer.__class__


def test_timeseries_anomaly_detection():
    """timeseries/timeseries_anomaly_detection.py: a Conv1D / Conv1DTranspose autoencoder trained to reproduce its
    input with validation_split and EarlyStopping(mode="min"), then a reconstruction-error threshold."""
    values = _series(300, 1, seed=7)
    time_steps = 16
    x_train = np.stack([values[i:i + time_steps] for i in range(len(values) - time_steps + 1)])
    model = keras.Sequential([
        layers.Input(shape=(x_train.shape[1], x_train.shape[2])),
        layers.Conv1D(filters=8, kernel_size=7, padding="same", strides=2, activation="relu"),
        layers.Dropout(rate=0.2),
        layers.Conv1D(filters=4, kernel_size=7, padding="same", strides=2, activation="relu"),
        layers.Conv1DTranspose(filters=4, kernel_size=7, padding="same", strides=2, activation="relu"),
        layers.Dropout(rate=0.2),
        layers.Conv1DTranspose(filters=8, kernel_size=7, padding="same", strides=2, activation="relu"),
        layers.Conv1DTranspose(filters=1, kernel_size=7, padding="same"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001), loss="mse")
    history = model.fit(x_train, x_train, epochs=2, batch_size=64, validation_split=0.1, verbose=0,
                        callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, mode="min")])
    assert len(history.history["val_loss"]) == 2
    x_train_pred = model.predict(x_train, verbose=0)
    train_mae_loss = np.mean(np.abs(x_train_pred - x_train), axis=1)
    assert train_mae_loss.shape == (len(x_train), 1) and np.isfinite(np.max(train_mae_loss))


def test_endpoint_layer_inference_model_shares_the_trained_weights():
    """keras_recipes/endpoint_layer_pattern.py, its second half: the same endpoint layer in a model without
    targets (`targets=None`) takes the trained model's weights and predicts."""
    from tests.interop.endpoint_runner import endpoint_data, endpoint_model

    model = endpoint_model(keras, ops=keras.ops)
    model.compile(keras.optimizers.Adam(1e-3))
    data = endpoint_data()
    model.fit(data, epochs=1, verbose=0)
    inputs = keras.Input((6,), name="inputs")
    hidden = keras.layers.Dense(5, activation="tanh")(inputs)
    logits = keras.layers.Dense(1)(hidden)
    endpoint = type(model.get_layer("endpoint"))
    inference_model = keras.Model(inputs, endpoint()(logits, targets=None, sample_weight=None))
    inference_model.set_weights(model.get_weights())
    np.testing.assert_allclose(inference_model.predict(data["inputs"], verbose=0), model.predict(data, verbose=0),
                               rtol=1e-6)


def test_multivariate_forecasting_with_timeseries_generator():
    """timeseries/multivariate_timeseries_forecasting_using_lstm.py: `TimeseriesGenerator` batches for fit (with a
    generator as validation_data), evaluate and predict; `tf.losses`, `tf.optimizers`, `tf.metrics` names."""
    from core.preprocessing.sequence import TimeseriesGenerator

    features = _series(120, 5, seed=8)
    target = features[:, 0]
    x_train, x_test, y_train, y_test = features[:90], features[90:], target[:90], target[90:]
    assert len(TimeseriesGenerator(features, target, length=2, sampling_rate=1, batch_size=1)[0]) == 2
    win_length, batch_size = 10, 16
    train_generator = TimeseriesGenerator(x_train, y_train, length=win_length, sampling_rate=1,
                                          batch_size=batch_size)
    test_generator = TimeseriesGenerator(x_test, y_test, length=win_length, sampling_rate=1, batch_size=batch_size)
    model = tf.keras.Sequential()
    model.add(tf.keras.layers.LSTM(8, input_shape=(win_length, 5), return_sequences=True))
    model.add(tf.keras.layers.Dropout(0.3))
    model.add(tf.keras.layers.LSTM(4, return_sequences=False))
    model.add(tf.keras.layers.Dense(1))
    model.compile(loss=tf.losses.MeanSquaredError(), optimizer=tf.optimizers.Adam(),
                  metrics=[tf.metrics.MeanAbsoluteError()])
    history = model.fit(train_generator, epochs=2, validation_data=test_generator, shuffle=False, verbose=0)
    assert set(history.history) == {"loss", "mean_absolute_error", "val_loss", "val_mean_absolute_error"}
    test_loss, test_mae = model.evaluate(test_generator, verbose=0)
    assert np.isfinite(test_loss) and np.isfinite(test_mae)
    assert model.predict(test_generator, verbose=0).shape == (len(x_test) - win_length, 1)


def test_temperature_forecasting_iterates_a_dataset_by_hand():
    """timeseries/timeseries_forecasting_with_lstm_for_temperature_prediction.py: the default batch size, a
    `for ... break` peek, `next(iter(dataset))` for the whole validation set, `.numpy()` on its tensors."""
    data = _series(200, 3, seed=9)
    x, y = data[:, :3], np.roll(data[:, 0], -10)
    dataset_train = tf.keras.preprocessing.timeseries_dataset_from_array(x[:150], y[:150], sequence_length=10,
                                                                         sequence_stride=1)
    dataset_validation = tf.keras.preprocessing.timeseries_dataset_from_array(
        x[150:], y[150:], sequence_length=10, batch_size=x[150:].shape[0] - 10, sequence_stride=1)
    for batch in dataset_train:
        inputs, targets = batch
        break
    assert inputs.numpy().shape == (128, 10, 3) and targets.numpy().shape == (128,)
    model = keras.Sequential([layers.Input(shape=(inputs.shape[1], inputs.shape[2])), layers.LSTM(4),
                              layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse")
    history = model.fit(dataset_train, epochs=2, validation_data=dataset_validation, verbose=0)
    assert len(history.history["val_loss"]) == 2
    input_validation, target_validation = next(iter(dataset_validation))
    assert model.predict(input_validation, verbose=0).shape == (40, 1) and target_validation.numpy().shape == (40,)


def test_lstm_vs_cnn_classification(tmp_path):
    """timeseries/lstm_vs_cnn_timeseries_classification.py: LSTMs with dropout and recurrent_dropout, a Conv1D /
    BatchNormalization / MaxPooling1D stack, the best model saved as .keras and reloaded to evaluate, EarlyStopping
    restoring the best weights."""
    rng = np.random.default_rng(10)
    x = rng.normal(size=(40, 20, 1)).astype("float32")
    y = (x.mean(axis=(1, 2)) > 0).astype(int)
    lstm = keras.Sequential([layers.Input(shape=x.shape[1:]),
                             layers.LSTM(8, return_sequences=True, dropout=0.3, recurrent_dropout=0.3),
                             layers.LSTM(4, dropout=0.3, recurrent_dropout=0.3), layers.Dense(4, activation="relu"),
                             layers.Dense(2, activation="softmax")])
    cnn = keras.Sequential([layers.Input(shape=x.shape[1:]),
                            layers.Conv1D(filters=8, kernel_size=7, padding="same", activation="relu"),
                            layers.BatchNormalization(), layers.MaxPooling1D(pool_size=2), layers.Dropout(0.3),
                            layers.GlobalAveragePooling1D(), layers.Dense(2, activation="softmax")])
    for model, name in ((lstm, "LSTM"), (cnn, "CNN")):
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["sparse_categorical_accuracy"])
        path = str(tmp_path / f"best_{name}_model.keras")
        history = model.fit(x, y, epochs=2, batch_size=16, validation_split=0.2, verbose=0, callbacks=[
            keras.callbacks.ModelCheckpoint(path, save_best_only=True, monitor="val_loss"),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=20, restore_best_weights=True)])
        assert "val_sparse_categorical_accuracy" in history.history
        best_model = keras.models.load_model(path)
        test_loss, test_acc = best_model.evaluate(x, y, verbose=0)
        assert np.isfinite(test_loss) and 0 <= test_acc <= 1


def test_structured_data_dict_inputs_through_a_custom_layer():
    """structured_data/structured_data_classification_from_scratch.py, its numeric part: a dataset of (dict of
    columns, label) from `from_tensor_slices((dict(frame), labels))`, shuffled and batched; one Input per column
    in a dict; a custom layer concatenating `list(inputs.values())`; predict on a dict of
    `tf.convert_to_tensor([value])`. (Its IntegerLookup, StringLookup and Normalization layers are not in the
    engine.)"""
    rng = np.random.default_rng(11)
    names = ["age", "trestbps", "thalach", "oldpeak"]
    frame = {name: rng.normal(size=50).astype("float32") for name in names}
    labels = (frame["age"] + frame["oldpeak"] > 0).astype("int64")

    class Classifier(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense_1 = layers.Dense(8, activation="relu")
            self.dropout = layers.Dropout(0.5)
            self.dense_2 = layers.Dense(1, activation="sigmoid")

        def call(self, inputs):
            all_features = layers.concatenate(list(inputs.values()))
            return self.dense_2(self.dropout(self.dense_1(all_features)))

    train_ds = tf.data.Dataset.from_tensor_slices((dict(frame), labels)).shuffle(buffer_size=50)
    for x, y in train_ds.take(1):
        assert set(x) == set(names) and x["age"].shape == () and y.dtype == np.int64
    train_ds = train_ds.batch(16)  # columns of scalars, (16,), for Inputs of shape (1,), as Keras 3 takes them
    inputs = {name: layers.Input(name=name, shape=(1,), dtype=tf.dtypes.float32) for name in names}
    model = keras.Model(inputs, Classifier()(inputs))
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    history = model.fit(train_ds, epochs=2, validation_data=train_ds, verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    sample = {"age": 60.0, "trestbps": 145.0, "thalach": 150.0, "oldpeak": 2.3}
    predictions = model.predict({name: tf.convert_to_tensor([value]) for name, value in sample.items()},
                                verbose=0)
    assert predictions.shape == (1, 1) and 0.0 <= predictions[0][0] <= 1.0


def test_debugging_tips_test_a_layer_alone_then_check_shapes(capsys):
    """keras_recipes/debugging_tips.py, tips 1 and 2: call a custom layer on `tf.random.normal` data first (its
    shape bug is reported with the layer's name; prints inside call show the shapes), then check a three-input,
    two-output model's shapes with `summary()`. (Tips 3 and 4 override `train_step` with a GradientTape, which the
    engine does not have.)"""

    class MyAntirectifier(layers.Layer):
        def __init__(self, axis, **kwargs):
            super().__init__(**kwargs)
            self.axis = axis

        def build(self, input_shape):
            output_dim = input_shape[-1]
            self.kernel = self.add_weight(shape=(output_dim * 2, output_dim), initializer="he_normal",
                                          name="kernel", trainable=True)

        def call(self, inputs):
            pos = tf.nn.relu(inputs)
            neg = tf.nn.relu(-inputs)
            print("pos.shape:", pos.shape)
            concatenated = tf.concat([pos, neg], axis=self.axis)
            print("concatenated.shape:", concatenated.shape)
            return tf.matmul(concatenated, self.kernel)

    x = tf.random.normal(shape=(2, 5))
    with pytest.raises(keras.errors.ShapeError, match=r"my_antirectifier.*\(4, 5\) and \(10, 5\)"):
        MyAntirectifier(axis=0, name="my_antirectifier")(x)
    assert "concatenated.shape: (4, 5)" in capsys.readouterr().out
    assert MyAntirectifier(axis=1)(x).shape == (2, 5)

    title_input = keras.Input(shape=(None,), name="title")
    body_input = keras.Input(shape=(None,), name="body")
    tags_input = keras.Input(shape=(12,), name="tags")
    title_features = layers.LSTM(16)(layers.Embedding(100, 8)(title_input))
    body_features = layers.LSTM(4)(layers.Embedding(100, 8)(body_input))
    x = layers.concatenate([title_features, body_features, tags_input])
    model = keras.Model(inputs=[title_input, body_input, tags_input],
                        outputs=[layers.Dense(1, name="priority")(x), layers.Dense(4, name="department")(x)])
    lines = []
    model.summary(print_fn=lines.append)
    table = "\n".join(lines)
    assert "(None, 32)" in table and "priority" in table and "department" in table

"""The seed overview's training cells (compile/fit/evaluate/predict/callbacks) with only the import changed."""

import numpy as np

from keras_reference import keras3  # noqa: F401  (a fixture)

import core as tf
from core import layers


def _data(n=1000):
    rng = np.random.default_rng(0)
    return rng.random((n, 32)), rng.random((n, 10))


def _seed_model():
    model = tf.keras.Sequential([
        # Adds a densely-connected layer with 64 units to the model:
        layers.Dense(64, activation='relu', input_shape=(32,)),
        # Add another:
        layers.Dense(64, activation='relu'),
        # Add a softmax layer with 10 output units:
        layers.Dense(10, activation='softmax')])
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01),
                  loss='categorical_crossentropy',
                  metrics=['accuracy'])
    return model


def test_compile_variants():
    model = _seed_model()
    # Configure a model for mean-squared error regression.
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01),
                  loss='mse',       # mean squared error
                  metrics=['mae'])  # mean absolute error

    # Configure a model for categorical classification.
    model.compile(optimizer=tf.keras.optimizers.RMSprop(0.01),
                  loss=tf.keras.losses.CategoricalCrossentropy(),
                  metrics=[tf.keras.metrics.CategoricalAccuracy()])
    data, labels = _data(64)
    h = model.fit(data, labels, epochs=1, batch_size=32, verbose=0)
    assert set(h.history) == {"loss", "categorical_accuracy"}


def test_fit_numpy_and_validation_data():
    model = _seed_model()
    data, labels = _data()
    h = model.fit(data, labels, epochs=10, batch_size=32, verbose=0)
    assert isinstance(h, tf.callbacks.History)
    assert len(h.history["loss"]) == 10 and len(h.history["accuracy"]) == 10
    assert all(np.isfinite(h.history["loss"]))

    val_data = np.random.random((100, 32))
    val_labels = np.random.random((100, 10))
    h = model.fit(data, labels, epochs=10, batch_size=32, verbose=0,
                  validation_data=(val_data, val_labels))
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_fit_datasets():
    model = _seed_model()
    data, labels = _data()
    val_data, val_labels = _data(100)
    # Instantiates a toy dataset instance:
    dataset = tf.data.Dataset.from_tensor_slices((data, labels))
    dataset = dataset.batch(32)
    h = model.fit(dataset, epochs=10, verbose=0)
    assert len(h.history["loss"]) == 10

    val_dataset = tf.data.Dataset.from_tensor_slices((val_data, val_labels))
    val_dataset = val_dataset.batch(32)
    h = model.fit(dataset, epochs=10, validation_data=val_dataset, verbose=0)
    assert len(h.history["val_loss"]) == 10


def test_evaluate_and_predict():
    model = _seed_model()
    data, labels = _data()
    res = model.evaluate(data, labels, batch_size=32)
    assert isinstance(res, list) and len(res) == 2
    dataset = tf.data.Dataset.from_tensor_slices((data, labels))
    dataset = dataset.batch(32)
    res2 = model.evaluate(dataset)
    np.testing.assert_allclose(res, res2, rtol=1e-5)
    result = model.predict(data, batch_size=32)
    assert result.shape == (1000, 10)
    # The evaluated loss is the categorical crossentropy of the predictions (labels are not one-hot here).
    ref = -np.mean(np.sum(labels * np.log(np.clip(result, 1e-7, 1)), axis=-1))
    np.testing.assert_allclose(res[0], ref, rtol=1e-3)


def test_functional_subclassed_and_custom_layer_fit():
    data, labels = _data(200)
    inputs = tf.keras.Input(shape=(32,))  # Returns an input placeholder
    x = layers.Dense(64, activation='relu')(inputs)
    x = layers.Dense(64, activation='relu')(x)
    predictions = layers.Dense(10, activation='softmax')(x)
    model = tf.keras.Model(inputs=inputs, outputs=predictions)
    model.compile(optimizer=tf.keras.optimizers.RMSprop(0.001),
                  loss='categorical_crossentropy',
                  metrics=['accuracy'])
    h = model.fit(data, labels, batch_size=32, epochs=5, verbose=0)
    assert len(h.history["loss"]) == 5

    class MyModel(tf.keras.Model):
        def __init__(self, num_classes=10):
            super(MyModel, self).__init__(name='my_model')
            self.num_classes = num_classes
            self.dense_1 = layers.Dense(32, activation='relu')
            self.dense_2 = layers.Dense(num_classes, activation='sigmoid')

        def call(self, inputs):
            x = self.dense_1(inputs)
            return self.dense_2(x)

    model = MyModel(num_classes=10)
    model.compile(optimizer=tf.keras.optimizers.RMSprop(0.001),
                  loss='categorical_crossentropy',
                  metrics=['accuracy'])
    h = model.fit(data, labels, batch_size=32, epochs=5, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]

    MyLayer = _seed_custom_layer(tf, tf.matmul)
    model = tf.keras.Sequential([
        MyLayer(10),
        layers.Activation('softmax')])
    model.compile(optimizer=tf.keras.optimizers.RMSprop(0.001),
                  loss='categorical_crossentropy',
                  metrics=['accuracy'])
    model.build((None, 32))
    before = model.layers[0].kernel.numpy().copy()
    h = model.fit(data, labels, batch_size=32, epochs=5, verbose=0)
    assert len(h.history["accuracy"]) == 5
    assert [w.name for w in model.trainable_weights] == ["kernel"]
    assert np.abs(model.layers[0].kernel.numpy() - before).max() > 1e-3  # 5 epochs of RMSprop steps of about 1e-3


def _seed_custom_layer(k, matmul):
    """The seed's custom layer, its code unchanged, for either engine (`k`: core or real Keras)."""
    class MyLayer(k.layers.Layer):
        def __init__(self, output_dim, **kwargs):
            self.output_dim = output_dim
            super(MyLayer, self).__init__(**kwargs)

        def build(self, input_shape):
            self.kernel = self.add_weight(name='kernel',
                                          shape=(input_shape[1], self.output_dim),
                                          initializer='uniform',
                                          trainable=True)

        def call(self, inputs):
            return matmul(inputs, self.kernel)

    return MyLayer


def test_custom_layer_made_with_add_weight_trains_like_keras(keras3):
    """The seed's custom layer and compile arguments, trained here and by real Keras 3 from Keras's initial kernel:
    the same history and the same trained kernel. The labels are the seed's random ones made to sum to 1 per row:
    Keras's TensorFlow backend trains a softmax's crossentropy with the fused gradient softmax - labels, which is
    the loss's gradient only for such labels, while this engine differentiates the loss itself; on the seed's raw
    labels the two runs part from the second batch."""
    data, labels = _data(200)
    labels = labels / labels.sum(axis=1, keepdims=True)
    keras3.utils.set_random_seed(0)
    pair = []
    for k, matmul in ((keras3, keras3.ops.matmul), (tf, tf.matmul)):
        model = k.Sequential([_seed_custom_layer(k, matmul)(10), k.layers.Activation('softmax')])
        model.build((None, 32))
        model.compile(optimizer=k.optimizers.RMSprop(0.001), loss='categorical_crossentropy', metrics=['accuracy'])
        pair.append(model)
    theirs, ours = pair
    initial = theirs.get_weights()
    ours.set_weights(initial)
    fit = dict(batch_size=32, epochs=3, shuffle=False, verbose=0)
    kh, oh = theirs.fit(data, labels, **fit), ours.fit(data, labels, **fit)
    assert set(oh.history) == set(kh.history)
    for key, values in kh.history.items():
        np.testing.assert_allclose(oh.history[key], values, rtol=1e-4, atol=1e-6, err_msg=key)
    (kernel,) = ours.get_weights()
    np.testing.assert_allclose(kernel, theirs.get_weights()[0], rtol=1e-3, atol=1e-5)
    assert np.abs(kernel - initial[0]).max() > 1e-3  # it trained: 21 RMSprop steps of about 1e-3


def test_callbacks_cell(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model = _seed_model()
    data, labels = _data()
    val_data, val_labels = _data(100)
    callbacks = [
        # Interrupt training if `val_loss` stops improving for over 2 epochs
        tf.keras.callbacks.EarlyStopping(patience=2, monitor='val_loss'),
        # Write TensorBoard logs to `./logs` directory
        tf.keras.callbacks.TensorBoard(log_dir=str(tmp_path / 'logs'))
    ]
    h = model.fit(data, labels, batch_size=32, epochs=5, callbacks=callbacks,
                  validation_data=(val_data, val_labels), verbose=0)
    epochs_run = len(h.history["loss"])
    acc = EventAccumulator(str(tmp_path / "logs" / "train"))
    acc.Reload()
    assert "epoch_loss" in acc.Tags()["scalars"]
    losses = [e.value for e in acc.Scalars("epoch_loss")]
    np.testing.assert_allclose(losses, h.history["loss"], rtol=1e-6)
    val = EventAccumulator(str(tmp_path / "logs" / "validation"))
    val.Reload()
    assert len(val.Scalars("epoch_loss")) == epochs_run

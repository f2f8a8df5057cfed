"""Losses, metrics, multi-output naming and weighting against real Keras 3 on the same data and weights."""

import numpy as np
import pytest

import core

keras = pytest.importorskip("keras")

RNG = np.random.default_rng(3)


def _pair(build, loss, metrics=None, **compile_kw):
    """The same architecture in Keras and in core, with Keras's initial weights copied over."""
    keras.utils.set_random_seed(0)
    km = build(keras)
    om = build(core)
    om.set_weights(km.get_weights())
    km.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss, metrics=metrics, **compile_kw)
    om.compile(optimizer=core.optimizers.SGD(0.1), loss=loss, metrics=metrics, **compile_kw)
    return km, om


def _check_history(kh, oh, rtol=1e-4):
    assert set(oh.history) == set(kh.history), (sorted(oh.history), sorted(kh.history))
    for k in kh.history:
        np.testing.assert_allclose(oh.history[k], kh.history[k], rtol=rtol, atol=1e-6, err_msg=k)


def _train_both_like_keras(build, x, y, optimizer, learning_rate, loss):
    """Build the model in Keras and here with Keras's initial weights, train both two epochs of batches of 8 with
    the named optimizer, and compare history (1e-4) and final weights (1e-3)."""
    keras.utils.set_random_seed(0)
    km, om = build(keras), build(core)
    om.set_weights(km.get_weights())
    km.compile(optimizer=getattr(keras.optimizers, optimizer)(learning_rate), loss=loss)
    om.compile(optimizer=getattr(core.optimizers, optimizer)(learning_rate), loss=loss)
    _check_history(km.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0),
                   om.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0))
    for a, b in zip(om.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def _dense(units_out, activation):
    def build(k):
        return k.Sequential([k.Input((5,)), k.layers.Dense(8, activation="relu"),
                             k.layers.Dense(units_out, activation=activation)])
    return build


X = RNG.standard_normal((40, 5)).astype(np.float32)
Y_REG = RNG.standard_normal((40, 3)).astype(np.float32)
Y_POS = np.abs(Y_REG) + 0.1
Y_CLS = RNG.integers(0, 4, size=(40,))
Y_ONEHOT = np.eye(4, dtype=np.float32)[Y_CLS]
Y_BIN = RNG.integers(0, 2, size=(40, 1)).astype(np.float32)
Y_PROB = RNG.dirichlet(np.ones(4), size=40).astype(np.float32)

LOSS_CASES = {
    "mse": (3, None, Y_REG), "mae": (3, None, Y_REG), "mape": (3, None, Y_POS), "msle": (3, "softplus", Y_POS),
    "huber": (3, None, Y_REG * 2), "log_cosh": (3, None, Y_REG), "poisson": (3, "softplus", Y_POS),
    "cosine_similarity": (3, None, Y_REG), "categorical_crossentropy": (4, "softmax", Y_ONEHOT),
    "sparse_categorical_crossentropy": (4, "softmax", Y_CLS), "binary_crossentropy": (1, "sigmoid", Y_BIN),
    "kl_divergence": (4, "softmax", Y_PROB), "hinge": (1, "tanh", Y_BIN), "squared_hinge": (1, "tanh", Y_BIN),
}


@pytest.mark.parametrize("name", sorted(LOSS_CASES))
def test_loss_trains_like_keras(name):
    units, act, y = LOSS_CASES[name]
    km, om = _pair(_dense(units, act), name)
    kh = km.fit(X, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    oh = om.fit(X, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    _check_history(kh, oh)
    for a, b in zip(om.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("loss", [
    lambda k: k.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
    lambda k: k.losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.2),
    lambda k: k.losses.SparseCategoricalCrossentropy(from_logits=True),
    lambda k: k.losses.Huber(delta=0.5),
])
def test_loss_objects_with_options(loss):
    k_loss, o_loss = loss(keras), loss(core)
    units = 1 if "Binary" in type(k_loss).__name__ else 4
    y = {"Binary": Y_BIN, "Sparse": Y_CLS}.get(type(k_loss).__name__[:6], Y_ONEHOT)
    if type(k_loss).__name__ == "Huber":
        y = Y_ONEHOT
    keras.utils.set_random_seed(0)
    build = _dense(units, None)
    km, om = build(keras), build(core)
    om.set_weights(km.get_weights())
    km.compile(optimizer="sgd", loss=k_loss)
    om.compile(optimizer="sgd", loss=o_loss)
    _check_history(km.fit(X, y, batch_size=16, epochs=2, shuffle=False, verbose=0),
                   om.fit(X, y, batch_size=16, epochs=2, shuffle=False, verbose=0))


def test_metrics_like_keras_binary():
    metrics = lambda k: ["accuracy", "mae", "mse", k.metrics.RootMeanSquaredError(), k.metrics.AUC(),  # noqa: E731
                         k.metrics.Precision(), k.metrics.Recall(), "binary_accuracy"]
    keras.utils.set_random_seed(0)
    build = _dense(1, "sigmoid")
    km, om = build(keras), build(core)
    om.set_weights(km.get_weights())
    km.compile(optimizer="sgd", loss="binary_crossentropy", metrics=metrics(keras))
    om.compile(optimizer="sgd", loss="binary_crossentropy", metrics=metrics(core))
    val = (X[:20], Y_BIN[:20])
    _check_history(km.fit(X, Y_BIN, batch_size=16, epochs=2, shuffle=False, verbose=0, validation_data=val),
                   om.fit(X, Y_BIN, batch_size=16, epochs=2, shuffle=False, verbose=0, validation_data=val))
    k_eval = km.evaluate(X, Y_BIN, verbose=0, return_dict=True)
    o_eval = om.evaluate(X, Y_BIN, verbose=0, return_dict=True)
    for key, value in k_eval.items():
        np.testing.assert_allclose(o_eval[key], value, rtol=1e-4, err_msg=key)


def test_metrics_like_keras_categorical_and_sparse():
    for y, loss in ((Y_ONEHOT, "categorical_crossentropy"), (Y_CLS, "sparse_categorical_crossentropy")):
        top_k = "top_k_categorical_accuracy" if y is Y_ONEHOT else "sparse_top_k_categorical_accuracy"
        km, om = _pair(_dense(4, "softmax"), loss, ["accuracy", top_k])
        _check_history(km.fit(X, y, batch_size=16, epochs=2, shuffle=False, verbose=0),
                       om.fit(X, y, batch_size=16, epochs=2, shuffle=False, verbose=0))


def _two_outputs(k):
    inp = k.Input((5,), name="features")
    h = k.layers.Dense(8, activation="relu", name="trunk")(inp)
    cls = k.layers.Dense(4, activation="softmax", name="cls")(h)
    reg = k.layers.Dense(2, name="reg")(h)
    return k.Model(inp, [cls, reg])


def test_multi_output_names_weights_and_validation_split():
    loss = {"cls": "sparse_categorical_crossentropy", "reg": "mse"}
    metrics = {"cls": ["accuracy"], "reg": ["mae"]}
    km, om = _pair(_two_outputs, loss, metrics, loss_weights={"cls": 1.0, "reg": 0.5})
    y = {"cls": Y_CLS, "reg": Y_REG[:, :2]}
    kh = km.fit(X, y, batch_size=8, epochs=2, shuffle=False, verbose=0, validation_split=0.25)
    oh = om.fit({"features": X}, y, batch_size=8, epochs=2, shuffle=False, verbose=0, validation_split=0.25)
    _check_history(kh, oh)
    assert {"cls_loss", "reg_mae", "val_cls_accuracy", "val_reg_loss"} <= set(oh.history)


def test_sample_weight_and_class_weight_like_keras():
    sw = RNG.random(40).astype(np.float32) + 0.5
    km, om = _pair(_dense(4, "softmax"), "sparse_categorical_crossentropy", ["accuracy"],
                   weighted_metrics=["accuracy"])
    _check_history(km.fit(X, Y_CLS, batch_size=16, epochs=2, shuffle=False, verbose=0, sample_weight=sw),
                   om.fit(X, Y_CLS, batch_size=16, epochs=2, shuffle=False, verbose=0, sample_weight=sw))
    cw = {0: 1.0, 1: 2.0, 2: 0.5, 3: 3.0}
    km, om = _pair(_dense(4, "softmax"), "categorical_crossentropy")
    _check_history(km.fit(X, Y_ONEHOT, batch_size=16, epochs=2, shuffle=False, verbose=0, class_weight=cw),
                   om.fit(X, Y_ONEHOT, batch_size=16, epochs=2, shuffle=False, verbose=0, class_weight=cw))


def test_regularizers_and_initial_epoch_like_keras():
    def build(k):
        return k.Sequential([k.Input((5,)), k.layers.Dense(6, activation="relu",
                                                           kernel_regularizer=k.regularizers.L1L2(0.01, 0.02),
                                                           bias_regularizer=k.regularizers.L2(0.1)),
                             k.layers.Dense(3)])

    km, om = _pair(build, "mse")
    _check_history(km.fit(X, Y_REG, batch_size=16, epochs=3, initial_epoch=1, shuffle=False, verbose=0),
                   om.fit(X, Y_REG, batch_size=16, epochs=3, initial_epoch=1, shuffle=False, verbose=0))
    np.testing.assert_allclose(om.evaluate(X, Y_REG, verbose=0), km.evaluate(X, Y_REG, verbose=0), rtol=1e-4)


def test_conv_pooling_batchnorm_model_trains_like_keras():
    def build(k):
        L = k.layers
        inp = k.Input((12, 3))
        h = L.Conv1D(4, 3, padding="same", activation="relu")(inp)
        h = L.BatchNormalization()(h)
        h = L.MaxPooling1D(2)(h)
        h = L.Conv1D(5, 2, strides=2, activation="tanh")(h)
        h = L.AveragePooling1D(2, padding="same")(h)
        a = L.GlobalMaxPooling1D()(h)
        b = L.GlobalAveragePooling1D()(h)
        out = L.Dense(2, activation="softmax")(L.Concatenate()([a, b]))
        return k.Model(inp, out)

    x = RNG.standard_normal((32, 12, 3)).astype(np.float32)
    y = RNG.integers(0, 2, 32)
    km, om = _pair(build, "sparse_categorical_crossentropy", ["accuracy"])
    _check_history(km.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, validation_data=(x, y)),
                   om.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, validation_data=(x, y)))
    for a, b in zip(om.get_weights(), km.get_weights()):  # moving mean/variance included
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def test_embedding_gru_lstm_adam_like_keras():
    def build(k):
        L = k.layers
        return k.Sequential([k.Input((7,)), L.Embedding(20, 6, mask_zero=True), L.GRU(5, return_sequences=True),
                             L.LSTM(4), L.Dense(3, activation="softmax")])

    x = RNG.integers(1, 20, (24, 7))
    x[::3, 5:] = 0  # padded tails: the mask reaches both recurrent layers
    y = RNG.integers(0, 3, 24)
    _train_both_like_keras(build, x, y, "Adam", 0.01, "sparse_categorical_crossentropy")


def test_masked_sequence_outputs_mask_the_loss_like_keras():
    def build(k):
        L = k.layers
        return k.Sequential([k.Input((6,)), L.Embedding(15, 4, mask_zero=True), L.SimpleRNN(5, return_sequences=True),
                             L.Dense(3, activation="softmax")])

    x = RNG.integers(1, 15, (16, 6))
    x[::2, 4:] = 0
    y = RNG.integers(0, 3, (16, 6))
    km, om = _pair(build, "sparse_categorical_crossentropy")
    _check_history(km.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0),
                   om.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0))
    np.testing.assert_allclose(om.evaluate(x, y, verbose=0), km.evaluate(x, y, verbose=0), rtol=1e-4)


def test_conv2d_layernorm_merges_train_like_keras():
    def build(k):
        L = k.layers
        inp = k.Input((8, 8, 2))
        h = L.ZeroPadding2D(1)(inp)
        h = L.Conv2D(3, 3, strides=2, activation="relu")(h)
        h = L.MaxPooling2D(2, padding="same")(h)
        h = L.UpSampling2D(2)(h)
        h = L.Cropping2D(((0, 1), (1, 0)))(h)
        a = L.Flatten()(h)
        a = L.LayerNormalization()(a)
        b = L.GlobalAveragePooling2D()(h)
        b = L.Dense(a.shape[-1], activation="elu")(b)
        m = L.Multiply()([a, b])
        s = L.Add()([a, m])
        out = L.Dense(2)(L.Dropout(0.0)(s))
        return k.Model(inp, out)

    x = RNG.standard_normal((16, 8, 8, 2)).astype(np.float32)
    y = RNG.standard_normal((16, 2)).astype(np.float32)
    km, om = _pair(build, "huber", ["mse"])
    _check_history(km.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0),
                   om.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0))
    for a, b in zip(om.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("name", ["Adamax", "Adagrad", "Nadam", "Adadelta"])
def test_embedding_with_repeated_ids_updates_like_keras(name):
    """Keras applies an embedding's sparse gradient row by row: squares and absolute values are taken per lookup
    before repeated ids are summed."""
    def build(k):
        return k.Sequential([k.Input((5,)), k.layers.Embedding(6, 3), k.layers.Flatten(), k.layers.Dense(2)])

    x = RNG.integers(0, 6, (16, 5))  # ids repeat within and across samples
    y = RNG.standard_normal((16, 2)).astype(np.float32)
    _train_both_like_keras(build, x, y, name, 0.05, "mse")


@pytest.mark.parametrize("name", ["Adam", "Adamax", "Adagrad", "RMSprop", "SGD"])
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "Bidirectional"])
def test_embedding_folded_into_recurrent_projection_updates_like_keras(name, kind):
    """Embedding -> LSTM/GRU looks rows up in the projected table E·W + b (core.layers.recurrent); the sparse
    per-lookup updates Keras makes to the embedding still hold (each lookup's row gradient is dY·Wᵀ), also when
    two layers (forward and go_backwards) read the same embedding. (SGD reads no per-lookup rows: the embedding's
    gradient is then the projected table's gradient times Wᵀ.)"""
    def build(k):
        rnn = k.layers.Bidirectional(k.layers.GRU(4)) if kind == "Bidirectional" else getattr(k.layers, kind)(4)
        return k.Sequential([k.Input((6,)), k.layers.Embedding(7, 3), rnn, k.layers.Dense(2)])

    x = RNG.integers(0, 7, (16, 6))  # 7 rows <= 32 per step x 6 steps: the table is folded
    y = RNG.standard_normal((16, 2)).astype(np.float32)
    _train_both_like_keras(build, x, y, name, 0.05, "mse")


def test_embedding_read_by_a_folded_rnn_and_another_layer_updates_like_keras():
    """One lookup whose rows reach the loss both through an RNN (which looks up the projected table instead) and
    directly: Keras squares each lookup's summed row gradient, so both paths must add up before squaring."""
    def build(k):
        ids = k.Input((6,))
        emb = k.layers.Embedding(7, 3)(ids)
        both = k.layers.Concatenate()([k.layers.LSTM(4)(emb), k.layers.GlobalAveragePooling1D()(emb)])
        return k.Model(ids, k.layers.Dense(2)(both))

    x = RNG.integers(0, 7, (16, 6))
    y = RNG.standard_normal((16, 2)).astype(np.float32)
    _train_both_like_keras(build, x, y, "Adagrad", 0.05, "mse")


RECURRENT_VARIANTS = {
    "lstm_sequences_backwards_masked": lambda k: k.Sequential([
        k.Input((6,)), k.layers.Embedding(9, 3, mask_zero=True),
        k.layers.LSTM(4, return_sequences=True, go_backwards=True), k.layers.GlobalAveragePooling1D(),
        k.layers.Dense(2)]),
    "gru_reset_before": lambda k: k.Sequential([k.Input((6, 3)), k.layers.GRU(4, reset_after=False),
                                                k.layers.Dense(2)]),
    "bidirectional_lstm_stacked": lambda k: k.Sequential([
        k.Input((6, 3)), k.layers.Bidirectional(k.layers.LSTM(4, return_sequences=True)), k.layers.LSTM(3),
        k.layers.Dense(2)]),
    "simple_rnn_relu": lambda k: k.Sequential([k.Input((6, 3)), k.layers.SimpleRNN(4, activation="relu"),
                                               k.layers.Dense(2)]),
    "lstm_relu_hard_sigmoid": lambda k: k.Sequential([
        k.Input((6, 3)), k.layers.LSTM(4, activation="relu", recurrent_activation="hard_sigmoid"),
        k.layers.Dense(2)]),
}


@pytest.mark.parametrize("name", sorted(RECURRENT_VARIANTS))
def test_recurrent_variants_train_like_keras(name):
    """Recurrences whose derivative factors take other shapes (relu, hard sigmoid, GRU's reset before the product,
    masked backward sequences, stacked and bidirectional): the backward step's rewrites and the factors computed
    in the forward step still give Keras's training run."""
    if name.startswith("lstm_sequences"):
        x = RNG.integers(1, 9, (16, 6))
        x[::3, 4:] = 0
    else:
        x = RNG.standard_normal((16, 6, 3)).astype(np.float32)
    y = RNG.standard_normal((16, 2)).astype(np.float32)
    _train_both_like_keras(RECURRENT_VARIANTS[name], x, y, "Adam", 0.02, "mse")

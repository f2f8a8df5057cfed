"""Small models of the activation and attention layers, written once for any Keras-like module.

`build(lib, generation, name)` makes model `name` with `lib` (`core`, `keras` or `tf_keras`), so the same
architecture is built here and in real Keras; `layer_models_runner.py` builds them in real Keras, and the tests build
them here. Each entry: (builder, input shapes without the batch, generations that have its layers).
"""

import numpy as np

BOTH = ("keras3", "tf_keras2")


def _activations(lib, generation):
    L = lib.layers
    x = lib.Input((6, 4), name="x")
    h = L.Dense(8, name="d1")(x)
    a = L.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.2, name="relu")(h)
    b = L.LeakyReLU(**({"alpha": 0.2} if generation == "tf_keras2" else {"negative_slope": 0.2}), name="leaky")(h)
    c = L.PReLU(alpha_initializer="random_normal", shared_axes=[1], name="prelu")(h)
    d = L.ELU(alpha=0.7, name="elu")(h)
    e = L.Softmax(axis=1, name="softmax")(h)
    f = L.Softmax(axis=[1, 2], name="softmax_2d")(h)
    return lib.Model(x, L.Concatenate(name="cat")([a, b, c, d, e, f]), name="activations")


def _thresholded(lib, generation):
    # Keras 3 has no ThresholdedReLU; ours is written there as the ReLU(threshold=theta) that Keras 3 builds here.
    x = lib.Input((5,), name="x")
    thr = lib.layers.ThresholdedReLU(theta=0.3, name="thr") if hasattr(lib.layers, "ThresholdedReLU") else \
        lib.layers.ReLU(threshold=0.3, name="thr")
    return lib.Model(x, thr(lib.layers.Dense(4, name="d")(x)), name="thresholded")


def _attention(lib, generation):
    L = lib.layers
    q, v = lib.Input((4, 6), name="q"), lib.Input((5, 6), name="v")
    qm, vm = L.Masking(name="q_mask")(q), L.Masking(name="v_mask")(v)
    a = L.Attention(use_scale=True, name="dot")([qm, vm])
    b = L.Attention(score_mode="concat", name="concat")([q, v, L.Dense(6, name="k")(v)])
    c = L.AdditiveAttention(name="additive")([qm, vm])
    d = L.Attention(name="causal")([q, q], use_causal_mask=True)
    return lib.Model([q, v], [a, b, c, d], name="attention_layers")


def _multi_head(lib, generation):
    L = lib.layers
    q, v = lib.Input((4, 6), name="q"), lib.Input((5, 3), name="v")
    a = L.MultiHeadAttention(2, 3, name="mha")(q, v)
    b = L.MultiHeadAttention(2, 4, value_dim=2, output_shape=5, name="mha_key")(q, v, L.Dense(4, name="k")(v))
    c = L.MultiHeadAttention(1, 3, name="causal")(q, q, use_causal_mask=True)
    e = L.EinsumDense("abc,cde->abde", output_shape=(None, 2, 3), bias_axes="de", name="einsum")(q)
    return lib.Model([q, v], [a, b, c, e], name="multi_head")


def _multi_head_masked(lib, generation):
    # Masked (padded) query steps: Keras 3 gives them the average of the values; tf.keras 2 a softmax of the raw
    # scores (a third rule), so this model is checked against Keras 3 only.
    L = lib.layers
    q, v = lib.Input((4, 6), name="q"), lib.Input((5, 3), name="v")
    # (Its output is the model's: a layer after it that takes the mask makes Keras 3 write the mask's computation
    # as operation nodes, NotEqual and Any, which the reader does not know.)
    m = L.MultiHeadAttention(2, 3, name="mha")(L.Masking(name="q_mask")(q), L.Masking(name="v_mask")(v))
    return lib.Model([q, v], m, name="multi_head_masked")


def _rnn_cells(lib, generation):
    L = lib.layers
    x = lib.Input((5, 4), name="x")
    h = L.RNN(L.LSTMCell(6, name="lstm_cell"), return_sequences=True, name="lstm_rnn")(x)
    # Masked for tf.keras 2 only: Keras 3 records the mask a generic RNN takes as a call argument, computed by
    # operation nodes (NotEqual, Any) that the reader does not know yet.
    if generation == "tf_keras2":
        h = L.Masking(name="mask")(h)
    h, *states = L.RNN([L.GRUCell(3, name="gru_cell"), L.SimpleRNNCell(4, name="simple_cell")], return_state=True,
                       name="stacked")(h)
    back = L.RNN(L.SimpleRNNCell(2, name="back_cell"), go_backwards=True, name="backwards")(x)
    return lib.Model(x, [h, back] + states, name="rnn_cells")


def _padded(shape, seed):
    """Random inputs whose trailing steps are zero in some samples (for Masking), one sample in three unpadded."""
    x = np.random.default_rng(seed).normal(size=(3,) + tuple(shape)).astype("float32") * 2
    if len(shape) == 2:
        x[0, -1] = 0
        x[1, shape[0] // 2:] = 0
    return x


def _preprocessing(lib, generation):
    # Adapted on the same fixed data in every Keras: the bins reach the file through the config, the mean and
    # variance through the weights.
    L = lib.layers
    data = np.random.default_rng(1).normal(size=(40, 4)).astype("float32") * 2 + 0.5
    x = lib.Input((4,), name="x")
    norm = L.Normalization(name="norm")
    norm.adapt(data)
    h = L.Dense(3, name="d")(L.Rescaling(0.5, offset=0.1, name="rescale")(norm(x)))
    if generation == "keras3":
        bins = L.Discretization(num_bins=4, name="bins")
        bins.adapt(data)
    else:  # tf.keras 2's adapt gives unsorted boundaries here that its own call then rejects
        bins = L.Discretization(bin_boundaries=[-0.9, 0.4, 1.4], name="bins")
    b = bins(x)
    # (An adapted vocabulary is not in a Keras-made .h5 at all, so the model a Keras writes has it given.)
    lookup = L.IntegerLookup(output_mode="multi_hot", mask_token=0, vocabulary=[3, 1, 2], name="lookup")
    given = L.Normalization(axis=-1, mean=[0.5, 0.0, 1.0, 0.0], variance=[4.0, 1.0, 2.0, 3.0], name="given")(x)
    hashed = L.Hashing(7, mask_value=0, name="hash")(b)
    outputs = [h, L.CategoryEncoding(5, output_mode="count", name="count")(b), lookup(b), given, hashed]
    if generation == "keras3":  # tf.keras 2 keeps tf_idf weights as a layer weight, which is not read here yet
        outputs.append(L.IntegerLookup(output_mode="tf_idf", vocabulary=[2, 0], idf_weights=[0.5, 1.5],
                                       name="tf_idf")(b))
    return lib.Model(x, outputs, name="preprocessing")


def _text(lib, generation):
    # Given vocabularies: a Keras-made .h5 holds no adapted vocabulary (Keras 3 keeps one only in .keras assets).
    L = lib.layers
    t = lib.Input((1,), dtype="string", name="t")
    words = ["the", "cat", "sat", "dog", "the cat", "café"]
    ids = L.TextVectorization(vocabulary=words, ngrams=2, output_sequence_length=6, name="tv")(t)
    pooled = L.GlobalAveragePooling1D(name="pool")(L.Embedding(9, 3, name="emb")(ids))
    counts = L.TextVectorization(vocabulary=words, output_mode="count", standardize="lower", name="tv_count")(t)
    whole = L.StringLookup(vocabulary=["The cat sat", "x"], mask_token="", name="lookup")(t)
    outputs = [L.Dense(2, name="d")(pooled), counts, whole]
    if generation == "keras3":  # (tf.keras 2 keeps tf_idf weights as a layer weight, which is not read here yet)
        outputs.append(L.TextVectorization(vocabulary=words, idf_weights=[0.5, 1.0, 1.5, 2.0, 2.5, 3.0],
                                           output_mode="tf_idf", name="tv_tf_idf")(t))
    return lib.Model(t, outputs, name="text")


# Keras takes texts as numpy str arrays (not object arrays) in a call
TEXTS = np.array([["The cat, sat!"], ["the dog"], [""], ["Café the cat"], ["x"], ["The cat sat"]])

MODELS = {
    "activations": (_activations, [(6, 4)], BOTH),
    "thresholded": (_thresholded, [(5,)], BOTH),
    "attention_layers": (_attention, [(4, 6), (5, 6)], BOTH),
    "multi_head": (_multi_head, [(4, 6), (5, 3)], BOTH),
    "multi_head_masked": (_multi_head_masked, [(4, 6), (5, 3)], ("keras3",)),
    "rnn_cells": (_rnn_cells, [(5, 4)], BOTH),
    "preprocessing": (_preprocessing, [(4,)], BOTH),
    "text": (_text, [(1,)], BOTH),
}


def build(lib, generation, name):
    return MODELS[name][0](lib, generation)


def inputs_for(name, seed=5):
    if name == "text":
        return [TEXTS]
    return [_padded(s, seed + i) for i, s in enumerate(MODELS[name][1])]


def model_input(name):
    """What a model of `name` is called on: its one array, or the list of them."""
    inputs = inputs_for(name)
    return inputs[0] if len(inputs) == 1 else inputs


def randomize(model, seed=9):
    """Random weights (so a zero-initialized weight, e.g. PReLU's alpha, matters); the same values in any Keras."""
    rng = np.random.default_rng(seed)
    # Normalization's adapted statistics stay: Keras 3 reads them into its constants only when adapting or loading.
    model.set_weights([v if w.name.split(":")[0] in ("mean", "variance", "count") else
                       rng.normal(0, 0.5, np.shape(v)).astype("float32")
                       for w, v in zip(model.weights, model.get_weights())])


def train_both_like_keras(keras, build, x, y, *, optimizer="Adam", learning_rate=0.01, loss="mse", epochs=2,
                          batch_size=8):
    """Build `build(lib)` in real Keras and here with Keras's initial weights, fit both the same way, and check
    Keras's trajectory: history within 1e-4, final weights within 1e-3. Returns (ours, theirs)."""
    import core

    keras.utils.set_random_seed(0)
    ref, ours = build(keras), build(core)
    ours.set_weights(ref.get_weights())
    ref.compile(optimizer=getattr(keras.optimizers, optimizer)(learning_rate), loss=loss)
    ours.compile(optimizer=getattr(core.optimizers, optimizer)(learning_rate), loss=loss)
    kh = ref.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0).history
    oh = ours.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0).history
    np.testing.assert_allclose(oh["loss"], kh["loss"], rtol=1e-4)
    for var, got, want in zip(ours.weights, ours.get_weights(), ref.get_weights()):
        # An attention key projection's bias adds the same amount to every score of a query, which the softmax
        # cancels: its gradient is 0 but for rounding, so it stays near 1e-5 on both sides; compared to that noise.
        noise = 1e-4 if var.path.endswith("key/bias") else 1e-5
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=noise, err_msg=var.path)
    return ours, ref

"""Recurrent layers and wrappers against real Keras 3 (TensorFlow backend) on the same weights: masks with holes,
all-masked rows, go_backwards, states, initial states, Bidirectional merge modes, TimeDistributed."""

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras3 = pytest.importorskip("keras")

from core import layers  # noqa: E402

RNG = np.random.default_rng(3)
X = RNG.standard_normal((4, 6, 3)).astype(np.float32)
HOLES = np.array([[1, 0, 1, 0, 1, 1], [0, 0, 1, 1, 0, 1], [0] * 6, [1, 1, 1, 1, 1, 0]], bool)


def _compare(theirs, ours, x, **kwargs):
    theirs(x, **kwargs)
    ours.build(x.shape)
    weights = [RNG.standard_normal(w.shape).astype(np.float32) * 0.7 for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    want = theirs(x, **{k: ([keras3.ops.convert_to_tensor(s) for s in v] if k == "initial_state" else v)
                        for k, v in kwargs.items()})
    got = ours(x, **kwargs)
    want = [np.asarray(t) for t in (want if isinstance(want, (list, tuple)) else [want])]
    got = [np.asarray(t) for t in (got if isinstance(got, (list, tuple)) else [got])]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, atol=1e-5)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "SimpleRNN"])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_layers_match_keras(kind, go_backwards, masked):
    kw = {"return_sequences": True, "return_state": True, "go_backwards": go_backwards}
    n = 2 if kind == "LSTM" else 1
    init = [RNG.standard_normal((4, 5)).astype(np.float32) for _ in range(n)]
    extra = {"mask": HOLES} if masked else {}
    _compare(getattr(keras3.layers, kind)(5, **kw), getattr(layers, kind)(5, **kw), X, **extra)
    _compare(getattr(keras3.layers, kind)(5, **kw), getattr(layers, kind)(5, **kw), X, initial_state=init, **extra)


def test_gru_reset_before_and_hard_sigmoid_match_keras():
    kw = {"reset_after": False, "recurrent_activation": "hard_sigmoid", "return_sequences": True}
    _compare(keras3.layers.GRU(4, **kw), layers.GRU(4, **kw), X)
    _compare(keras3.layers.GRU(4, **kw), layers.GRU(4, **kw), X, mask=HOLES)
    kw = {"activation": "relu", "recurrent_activation": "hard_sigmoid", "zero_output_for_mask": True,
          "return_sequences": True}
    _compare(keras3.layers.LSTM(4, **kw), layers.LSTM(4, **kw), X, mask=HOLES)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_matches_keras(merge_mode, return_sequences):
    for masked in (False, True):
        for return_state in (False, True):
            kw = {"return_sequences": return_sequences, "return_state": return_state}
            extra = {"mask": HOLES} if masked else {}
            _compare(keras3.layers.Bidirectional(keras3.layers.LSTM(3, **kw), merge_mode=merge_mode),
                     layers.Bidirectional(layers.LSTM(3, **kw), merge_mode=merge_mode), X, **extra)


def test_bidirectional_with_own_backward_layer_and_initial_state_matches_keras():
    theirs = keras3.layers.Bidirectional(keras3.layers.GRU(3, return_sequences=True),
                                         backward_layer=keras3.layers.GRU(3, return_sequences=True,
                                                                          go_backwards=True, activation="relu"))
    ours = layers.Bidirectional(layers.GRU(3, return_sequences=True),
                                backward_layer=layers.GRU(3, return_sequences=True, go_backwards=True,
                                                          activation="relu"))
    init = [RNG.standard_normal((4, 3)).astype(np.float32) for _ in range(2)]
    _compare(theirs, ours, X, initial_state=init, mask=HOLES)


def test_time_distributed_matches_keras():
    _compare(keras3.layers.TimeDistributed(keras3.layers.Dense(4, activation="tanh")),
             layers.TimeDistributed(layers.Dense(4, activation="tanh")), X)


@pytest.mark.parametrize("kind,kwargs", [("LSTM", {}), ("LSTM", {"go_backwards": True}), ("GRU", {}),
                                         ("GRU", {"reset_after": False}), ("SimpleRNN", {})])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("masked,dropout", [(True, 0.0), (False, 0.0), (True, 1e-7)])
def test_training_graph_gradients_match_keras_gradient_tape(kind, kwargs, return_sequences, masked, dropout):
    """The Scan's reverse-mode rule (core.training.scan_grad) gives
    TensorFlow's gradients for the weights and the inputs, through a mask with holes and without a mask. With a
    vanishing dropout rate the training graph takes its dropout form (masked inputs, one recurrent kernel block per
    gate, masked states) while computing what Keras computes without dropout."""
    import onnxruntime as ort
    import tensorflow as tf

    from core import ops
    from core.graph import GraphBuilder, graph_scope
    from core.training.autodiff import gradients

    ours = getattr(layers, kind)(4, return_sequences=return_sequences, dropout=dropout, recurrent_dropout=dropout,
                                 **kwargs)
    theirs = getattr(keras3.layers, kind)(4, return_sequences=return_sequences, **kwargs)
    theirs(X)
    ours.build(X.shape)
    weights = [RNG.standard_normal(w.shape).astype(np.float32) * 0.6 for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    coeff = RNG.standard_normal((4, 6, 4) if return_sequences else (4, 4)).astype(np.float32)
    g = GraphBuilder("train", weights_as_inputs=True, training=True)
    x = g.add_input("x", "float32", (None, None, 3))
    m = g.add_input("m", "bool", (None, None)) if masked else None
    with graph_scope(g):
        loss = ops.sum(ops.multiply(ours(x, mask=m if masked else None), g.constant(coeff)))
        by_var = {id(v): t for v, t in g.variable_inputs}
        grads = gradients(loss, [by_var[id(w)] for w in ours.weights] + [x])
    g.set_outputs([loss] + grads)
    feeds = {"x": X, **({"m": HOLES} if masked else {}), **{t.name: v.numpy() for v, t in g.variable_inputs}}
    got = ort.InferenceSession(g.to_model().SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    xt = tf.constant(X)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        want_loss = tf.reduce_sum(theirs(xt, mask=tf.constant(HOLES) if masked else None) * coeff)
    want = tape.gradient(want_loss, theirs.trainable_weights + [xt])
    np.testing.assert_allclose(got[0], float(want_loss), rtol=1e-5, atol=1e-5)  # a sum of signed terms: absolute
    for g_, w in zip(got[1:], want):
        np.testing.assert_allclose(g_, np.asarray(w), atol=1e-5)

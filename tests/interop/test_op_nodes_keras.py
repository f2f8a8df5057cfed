"""Op nodes (keras.ops / tf.* called on Functional-API tensors) against real Keras 3 and tf.keras 2.

Models with op nodes are built by real Keras and loaded here, built here and loaded there, and trained on both sides.
Keras runs in this process, as in tests/core/test_training_keras.py.
"""

import inspect
import json

import numpy as np
import pytest

import core

keras = pytest.importorskip("keras")
tf_keras = pytest.importorskip("tf_keras")
tf = pytest.importorskip("tensorflow")

RNG = np.random.default_rng(5)
TOKENS = RNG.integers(0, 9, size=(24, 6)).astype("int32")
TOKENS[:, 4:] = 0  # padding at the end ...
TOKENS[::3, 1] = 0  # ... and inside the sequences
TOKENS_B = RNG.integers(0, 7, size=(24, 5)).astype("int32")
TOKENS_B[::2, 3:] = 0
FEATURES = RNG.standard_normal((24, 5, 3)).astype("float32")


# -- training: the done-when model --------------------------------------------------------------------------
def _two_towers(k):
    """Two inputs, two outputs; mask_zero embeddings; a mask computed in the graph with ops.not_equal."""
    a = k.Input((6,), dtype="int32", name="a")
    b = k.Input((5,), dtype="int32", name="b")
    ea = k.layers.Embedding(9, 4, mask_zero=True, name="emb_a")(a)
    eb = k.layers.Embedding(7, 4, mask_zero=True, name="emb_b")(b)
    mask_a = k.ops.not_equal(a, 0)
    ha = k.layers.LSTM(5, name="lstm")(ea, mask=mask_a)
    mf = k.ops.cast(k.ops.expand_dims(k.ops.not_equal(b, 0), -1), "float32")
    pooled = k.ops.sum(eb * mf, axis=1) / k.ops.maximum(k.ops.sum(mf, axis=1), 1.0)
    h = k.layers.Concatenate(name="cat")([ha, pooled])
    out1 = k.layers.Dense(1, activation="sigmoid", name="bin")(h)
    out2 = k.layers.Dense(3, activation="softmax", name="cls")(k.layers.Dense(6, activation="tanh", name="mid")(h))
    return k.Model([a, b], [out1, out2], name="towers")


def test_op_nodes_train_like_keras():
    y1 = RNG.integers(0, 2, size=(24, 1)).astype("float32")
    y2 = RNG.integers(0, 3, size=(24,))
    keras.utils.set_random_seed(0)
    km, om = _two_towers(keras), _two_towers(core)
    om.set_weights(km.get_weights())
    compile_kw = dict(loss=["binary_crossentropy", "sparse_categorical_crossentropy"], loss_weights=[1.0, 0.5])
    km.compile(optimizer=keras.optimizers.Adam(0.01), **compile_kw)
    om.compile(optimizer=core.optimizers.Adam(0.01), **compile_kw)
    kh = km.fit([TOKENS, TOKENS_B], [y1, y2], batch_size=8, epochs=3, shuffle=False, verbose=0)
    oh = om.fit([TOKENS, TOKENS_B], [y1, y2], batch_size=8, epochs=3, shuffle=False, verbose=0)
    assert set(oh.history) == set(kh.history), (sorted(oh.history), sorted(kh.history))
    for key in kh.history:
        np.testing.assert_allclose(oh.history[key], kh.history[key], rtol=1e-4, atol=1e-6, err_msg=key)
    for mine, theirs in zip(om.get_weights(), km.get_weights()):
        np.testing.assert_allclose(mine, theirs, rtol=1e-3, atol=1e-5)
    assert sum(type(l).__name__ == "OpLayer" for l in om.layers) == 9


@pytest.mark.parametrize("target,suffix", [("keras3", "keras"), ("keras3", "h5"), ("tf_keras2", "h5")])
def test_a_mask_made_by_an_op_node_travels_through_files(tmp_path, target, suffix):
    """The LSTM's `mask=` argument is an op node's output: Keras 3 keeps it among the call's kwargs, tf.keras 2 as a
    reference in the node's kwargs."""
    core.backend.clear_session()
    ours = _two_towers(core)
    rng = np.random.default_rng(4)
    ours.set_weights([rng.normal(0, 0.5, w.shape) for w in ours.get_weights()])
    path = str(tmp_path / f"towers.{suffix}")
    ours.save(path, target=target)
    theirs = (keras if target == "keras3" else tf_keras).models.load_model(path, compile=False)
    inputs = [TOKENS[:6], TOKENS_B[:6]]
    for mine, real in zip(ours.predict(inputs, verbose=0), theirs(inputs, training=False)):
        np.testing.assert_allclose(mine, np.asarray(real), atol=1e-5, rtol=0)


# -- files: real Keras's op nodes load here, ours load there ----------------------------------------------------------
def _keras3_ops_model(k, keras3_only=True):
    """keras.ops of the numpy, math, nn and core modules, Python operators and slicing, constants among the args;
    `keras3_only` adds the ops tf.keras 2 has no TFOpLambda form for here (convolutions and pooling on constants)."""
    o = k.ops
    tok = k.Input((6,), dtype="int32", name="tok")
    x = k.Input((5, 3), name="x")
    m = o.not_equal(tok, 0)
    s = o.sum(x, axis=-1)
    y = s * o.cast(m[:, :5], "float32") + 1.0
    c = o.concatenate([o.expand_dims(y, -1), x], axis=-1)
    outs = [
        c, x[:, 1:3, 0], x[..., None, ::2], o.transpose(x, (0, 2, 1)), o.softmax(x, axis=1), o.where(m[:, :5], s, 0.0),
        1.0 - x / 2.0, o.max(x, axis=1, keepdims=True), o.mean(x, axis=(1, 2)), o.reshape(x, (-1, 15)),
        o.logsumexp(x, axis=1), o.erf(x), o.relu(x - 0.5), o.leaky_relu(x, 0.1), o.gelu(x), o.abs(-x),
        o.clip(x, 0.2, 0.8), o.square(o.sqrt(x + 1.0)), o.take(x, [2, 0], axis=1),
        o.stack([s, s], axis=1), o.one_hot(tok, 9), o.tile(x, (1, 1, 2)), o.pad(x, [[0, 0], [1, 0], [0, 0]]),
        k.layers.Dense(2, name="dense")(o.tanh(x)),
    ]
    if keras3_only:
        outs += [o.conv(x, np.linspace(-1, 1, 24, dtype="float32").reshape(2, 3, 4), padding="same"),
                 o.depthwise_conv(x, np.linspace(0, 1, 6, dtype="float32").reshape(2, 3, 1)), o.max_pool(x, 2)]
    return k.Model([tok, x], outs, name="ops3")


def _tf_ops_model():
    k = tf_keras
    tok = k.Input((6,), dtype="int32", name="tok")
    x = k.Input((5, 3), name="x")
    m = tf.math.not_equal(tok, 0)
    s = tf.reduce_sum(x, axis=-1)
    y = s * tf.cast(m[:, :5], "float32") + 1.0
    c = tf.concat([tf.expand_dims(y, -1), x], axis=-1)
    outs = [
        c, x[:, 1:3, 0], x[..., None, ::2], tf.transpose(x, [0, 2, 1]), tf.nn.softmax(x, axis=1),
        tf.where(m[:, :5], s, 0.0), 1.0 - x / 2.0, tf.reduce_max(x, axis=1, keepdims=True),
        tf.reduce_mean(x, axis=[1, 2]), tf.reshape(x, (-1, 15)), tf.math.reduce_logsumexp(x, axis=1), tf.math.erf(x),
        tf.nn.relu(x - 0.5), tf.nn.leaky_relu(x, alpha=0.1), tf.nn.gelu(x), tf.abs(-x), tf.clip_by_value(x, 0.2, 0.8),
        tf.square(tf.sqrt(x + 1.0)), tf.stack([s, s], axis=1), tf.one_hot(tok, 9), tf.tile(x, [1, 1, 2]),
        tf.pad(x, [[0, 0], [1, 0], [0, 0]]), tf.gather(x, [2, 0], axis=1), tf.math.argmax(x, axis=1),
        k.layers.Dense(2, name="dense")(tf.tanh(x)),
    ]
    return k.Model([tok, x], outs, name="ops2")


INPUTS = [TOKENS[:4], FEATURES[:4]]


def _close(mine, theirs):
    assert len(mine) == len(theirs)
    for i, (a, b) in enumerate(zip(mine, theirs)):
        np.testing.assert_allclose(np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64"), atol=1e-5,
                                   rtol=0, err_msg=f"output {i}")


def _predict(model):
    out = model.predict(INPUTS, verbose=0)
    return out if isinstance(out, list) else [out]


def _real(model):
    return [np.asarray(o) for o in model(INPUTS, training=False)]


@pytest.mark.parametrize("kind", ["keras", "json", "h5"])
def test_keras3_op_nodes_load_here(tmp_path, kind):
    """Keras 3's .h5 writer leaves the operations' module out (Keras 3 cannot read those files back itself)."""
    from core.models import load_model, model_from_json

    keras.utils.set_random_seed(1)
    theirs = _keras3_ops_model(keras)
    if kind in ("keras", "h5"):
        theirs.save(tmp_path / f"m.{kind}")
        mine = load_model(str(tmp_path / f"m.{kind}"))
    else:
        mine = model_from_json(theirs.to_json())
        mine.set_weights(theirs.get_weights())
    from core.summary import summary_rows

    # the summary names each node as Keras 3 does: `not_equal (NotEqual)`
    assert [(r.name, r.class_name) for r in summary_rows(mine)] == [(o.name, type(o).__name__)
                                                                    for o in theirs.operations]
    _close(_predict(mine), _real(theirs))


@pytest.mark.parametrize("kind", ["h5", "json"])
def test_tf_keras2_op_nodes_load_here(tmp_path, kind):
    from core.models import load_model, model_from_json

    tf_keras.utils.set_random_seed(1)
    theirs = _tf_ops_model()
    config = json.loads(theirs.to_json())
    assert {"TFOpLambda", "SlicingOpLambda"} <= {e["class_name"] for e in config["config"]["layers"]}
    if kind == "h5":
        theirs.save(tmp_path / "m.h5")
        mine = load_model(str(tmp_path / "m.h5"))
    else:
        mine = model_from_json(theirs.to_json())
        mine.set_weights(theirs.get_weights())
    _close(_predict(mine), _real(theirs))


def _our_ops_model(target):
    """The same calls as `_keras3_ops_model`, made by a script here (`core.ops`, Python operators, slicing)."""
    core.backend.clear_session()
    model = _keras3_ops_model(core, keras3_only=target == "keras3")
    rng = np.random.default_rng(2)
    model.get_layer("dense").set_weights([rng.normal(size=(3, 2)), rng.normal(size=(2,))])
    return model


@pytest.mark.parametrize("target,kind", [("keras3", "keras"), ("keras3", "json"), ("tf_keras2", "h5"),
                                         ("tf_keras2", "json")])
def test_our_op_nodes_load_in_real_keras(tmp_path, target, kind):
    ours = _our_ops_model(target)
    mine = _predict(ours)
    real = keras if target == "keras3" else tf_keras
    if kind == "json":
        weights = str(tmp_path / ("m.weights.h5" if target == "keras3" else "m_weights.h5"))
        ours.save_weights(weights, target=target)
        theirs = real.models.model_from_json(ours.to_json(target=target))
        theirs.load_weights(weights)
    else:
        ours.save(str(tmp_path / f"m.{kind}"), target=target)
        theirs = real.models.load_model(str(tmp_path / f"m.{kind}"))
    layer_classes = {type(l).__name__ for l in theirs.layers}
    if target == "tf_keras2":
        assert {"TFOpLambda", "SlicingOpLambda"} <= layer_classes
    _close(mine, _real(theirs))


# -- the name tables are Keras's own ---------------------------------------------------------------------------------
def test_keras3_table_matches_the_operation_classes():
    import importlib

    from core.models.op_nodes import KERAS3_OPS

    for op, (module, class_name, init, call, _) in KERAS3_OPS.items():
        cls = getattr(importlib.import_module(f"keras.src.ops.{module}"), class_name)
        assert list(inspect.signature(cls.__init__).parameters)[1:] == [*init, "name"], op
        assert list(inspect.signature(cls.call).parameters)[1:] == list(call), op


def test_tf_table_names_real_functions_and_arguments():
    from tensorflow.python.util import tf_export

    from core.models.op_nodes import TF_OPS

    for op, (functions, params, _, _) in TF_OPS.items():
        for name in functions:
            fn = tf_export.get_symbol_from_name(name) or tf_export.get_symbol_from_name("tf." + name)
            assert fn is not None, (op, name)
            sig = [p for p in inspect.signature(fn).parameters if p != "name"]
            # every argument tf.keras 2 can write is known, and the first one (the node's tensor) comes first
            assert set(sig) <= {p for p, _ in params} and sig[0] == params[0][0], (op, name, sig)


def _mixed_dtypes(k):
    """Integer and bool tensors with Python numbers: Keras 3 promotes a float scalar, divides truly, averages and
    takes roots and exponentials in float32, counts bools as int32."""
    o = k.ops
    tok = k.Input((4,), dtype="int32", name="tok")
    big = o.greater(tok, 1)
    return k.Model(tok, [tok + 0.5, tok * 2, tok / 2, tok >= 1.5, o.maximum(tok, 0.5), o.add(big, 1.0), 1.5 - tok,
                         tok ** 2, o.where(big, tok, 0.5), o.mean(tok, axis=1), o.var(tok, axis=1),
                         o.sum(o.not_equal(tok, 0), axis=1), o.sqrt(tok), o.exp(tok), o.floor(tok),
                         o.mean(big, axis=1)])


def test_scalars_promote_like_keras():
    tokens = np.array([[0, 1, 2, 3], [4, 0, 7, 1]], dtype="int32")
    mine = _mixed_dtypes(core).predict(tokens, verbose=0)
    theirs = [np.asarray(o) for o in _mixed_dtypes(keras)(tokens)]
    for i, (a, b) in enumerate(zip(mine, theirs)):
        assert a.dtype == b.dtype, (i, a.dtype, b.dtype)
        np.testing.assert_allclose(a, b, rtol=1e-6, err_msg=f"output {i}")


@pytest.mark.parametrize("source", ["tf_keras2", "keras3"])
def test_op_nodes_convert_between_the_generations(tmp_path, source):
    """A file of one Keras, read here and written for the other, loads there and predicts the same."""
    from core.models import load_model

    if source == "tf_keras2":
        tf_keras.utils.set_random_seed(1)
        original, path, target, reader = _tf_ops_model(), tmp_path / "m.h5", "keras3", keras
        out = tmp_path / "converted.keras"
    else:
        keras.utils.set_random_seed(1)
        original, path, target, reader = _keras3_ops_model(keras, keras3_only=False), tmp_path / "m.keras", \
            "tf_keras2", tf_keras
        out = tmp_path / "converted.h5"
    original.save(path)
    load_model(str(path)).save(str(out), target=target)
    _close(_real(reader.models.load_model(str(out))), _real(original))

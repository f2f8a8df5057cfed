"""The activation and attention layers against real Keras: forward within 1e-5 for each layer and its main options,
training trajectories, and files in both directions (ours load in each real Keras and predict what we predict; theirs
load here and predict what Keras predicted)."""

import json
from pathlib import Path

import numpy as np
import pytest

import core
from tests.interop.keras_subprocess import run_all
from tests.core.keras_reference import assert_layer_matches_keras, keras3  # noqa: F401  (a fixture)
from tests.interop import layer_models

RUNNER = Path(__file__).with_name("layer_models_runner.py")
# What we write for each Keras (.py: a Keras script that rebuilds the model, with a weights file) and what it writes.
OUR_KINDS = {"keras3": [".keras", ".h5", ".py"], "tf_keras2": [".h5", ".py"]}
THEIR_KINDS = {"keras3": [".keras", ".h5"], "tf_keras2": [".h5"]}
OUR_CASES = [(t, n, k) for n, (_, _, gens) in layer_models.MODELS.items() for t in gens for k in OUR_KINDS[t]]
THEIR_CASES = [(t, n, k) for n, (_, _, gens) in layer_models.MODELS.items() for t in gens for k in THEIR_KINDS[t]]
RNG = np.random.default_rng(4)


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    """(our predictions, {target: what that Keras gave}, workdir), both Kerases run once, side by side."""
    from core import backend

    tmp = tmp_path_factory.mktemp("layer_models")
    from exporters.python_source import export_python_source

    ours, jobs = {}, {t: [] for t in OUR_KINDS}
    for name, (_, _, generations) in layer_models.MODELS.items():
        for target in generations:
            backend.clear_session()
            model = layer_models.build(core, target, name)
            layer_models.randomize(model)
            ours[(target, name)] = [np.asarray(o) for o in core.layers.base.flatten(
                model.predict(layer_models.model_input(name), verbose=0))]
            for kind in OUR_KINDS[target]:
                path = tmp / f"{name}_{target}_ours{kind}"
                job = {"id": f"{name}{kind}", "path": str(path), "name": name}
                if kind == ".py":
                    export_python_source(model, path, target=target)
                    job["weights"] = str(tmp / f"{name}_{target}_ours") + (
                        ".weights.h5" if target == "keras3" else "_weights.h5")
                    model.save_weights(job["weights"], target=target)
                else:
                    model.save(str(path), target=target)
                jobs[target].append(job)
    runs = {}
    for target, target_jobs in jobs.items():
        (tmp / f"jobs_{target}.json").write_text(json.dumps(target_jobs))
        runs[target] = (RUNNER, [target, tmp, tmp / f"jobs_{target}.json"], tmp / f"out_{target}.npz")
    theirs = run_all(runs)
    return ours, theirs, tmp


@pytest.mark.parametrize("target,name,kind", OUR_CASES, ids=[f"{t}-{n}-{k}" for t, n, k in OUR_CASES])
def test_our_file_loads_in_real_keras_and_predicts_the_same(keras_files, target, name, kind):
    ours, theirs, _ = keras_files
    results = theirs[target]
    assert f"ours__{name}{kind}__error" not in results, results.get(f"ours__{name}{kind}__error")
    for i, mine in enumerate(ours[(target, name)]):
        np.testing.assert_allclose(results[f"ours__{name}{kind}__{i}"], mine, atol=1e-5, rtol=0)


@pytest.mark.parametrize("target,name,kind", THEIR_CASES, ids=[f"{t}-{n}-{k}" for t, n, k in THEIR_CASES])
def test_file_made_by_real_keras_loads_here(keras_files, target, name, kind):
    from core.models import load_model

    _, theirs, tmp = keras_files
    results = theirs[target]
    assert f"theirs__{name}__error" not in results, results.get(f"theirs__{name}__error")
    model = load_model(str(tmp / f"{name}_{target}_theirs{kind}"), compile=False)
    got = core.layers.base.flatten(model.predict(layer_models.model_input(name), verbose=0))
    for i, mine in enumerate(got):
        np.testing.assert_allclose(mine, results[f"theirs__{name}__{i}"], atol=1e-5, rtol=0)


# -- activation layers, forward ------------------------------------------------------------------------------------
ACTIVATION_CASES = [
    ("ReLU", {}), ("ReLU", {"max_value": 2.0}), ("ReLU", {"negative_slope": 0.1}), ("ReLU", {"threshold": 1.0}),
    ("ReLU", {"max_value": 6.0}), ("ReLU", {"max_value": 2.5, "negative_slope": 0.2, "threshold": 0.5}),
    ("LeakyReLU", {}), ("LeakyReLU", {"negative_slope": 0.05}),
    ("PReLU", {"alpha_initializer": "random_normal"}), ("PReLU", {"alpha_initializer": "ones", "shared_axes": [1]}),
    ("PReLU", {"alpha_initializer": "random_normal", "shared_axes": [1, 2]}),
    ("ELU", {}), ("ELU", {"alpha": 0.5}),
    ("Softmax", {}), ("Softmax", {"axis": 1}), ("Softmax", {"axis": [1, 2]}),
]


@pytest.mark.parametrize("class_name,config", ACTIVATION_CASES, ids=[f"{c}-{k}" for c, k in ACTIVATION_CASES])
def test_activation_layer_matches_keras3(keras3, class_name, config):
    x = RNG.normal(size=(3, 4, 5)).astype("float32") * 3
    x[0, 0, :3] = [1.0, 0.5, 0.0]  # exactly at the thresholds: Keras keeps only x > threshold
    assert_layer_matches_keras(keras3, class_name, config, x, dynamic_axes=(1,))


@pytest.mark.parametrize("axis", [-1, 1, [1, 2]])
def test_softmax_with_a_mask_matches_keras3(keras3, axis):
    x = RNG.normal(size=(2, 3, 4)).astype("float32")
    mask = RNG.random((2, 3, 4)) > 0.4
    mask[0, 0] = False  # a fully masked row gives zeros, not a uniform distribution
    expected = np.asarray(keras3.layers.Softmax(axis=axis)(x, mask=mask))
    got = core.layers.Softmax(axis=axis)(x, mask=mask)
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-6)
    # a mask broadcast from the right (one per key), as attention scores use it
    key_mask = RNG.random((2, 1, 4)) > 0.3
    np.testing.assert_allclose(np.asarray(core.layers.Softmax()(x, mask=key_mask)),
                               np.asarray(keras3.layers.Softmax()(x, mask=key_mask)), atol=1e-6)


def test_thresholded_relu_matches_tf_keras2():
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    tf_keras = pytest.importorskip("tf_keras")
    x = RNG.normal(size=(4, 6)).astype("float32") * 2
    x[0, :2] = [0.7, 0.0]
    for theta in (0.7, 0.0):
        np.testing.assert_allclose(np.asarray(core.layers.ThresholdedReLU(theta=theta)(x)),
                                   np.asarray(tf_keras.layers.ThresholdedReLU(theta=theta)(x)), atol=0)


def test_activation_layers_train_like_keras3(keras3):
    """PReLU's slopes learn; every activation layer's gradient follows Keras 3 (two epochs of Adam)."""
    x = RNG.normal(size=(48, 6)).astype("float32")
    y = RNG.normal(size=(48, 3)).astype("float32")

    def build(lib):
        inp = lib.Input((6,))
        h = lib.layers.Dense(8)(inp)
        h = lib.layers.PReLU(alpha_initializer=lib.initializers.Constant(0.25))(h)
        h = lib.layers.Dense(8)(h)
        h = lib.layers.ReLU(max_value=2.0, negative_slope=0.1, threshold=0.1)(h)
        h = lib.layers.Dense(8)(h)
        h = lib.layers.ELU(alpha=0.8)(h)
        h = lib.layers.LeakyReLU(negative_slope=0.2)(lib.layers.Dense(8)(h))
        h = lib.layers.Softmax()(lib.layers.Dense(8)(h))
        return lib.Model(inp, lib.layers.Dense(3)(h))

    ours, _ = layer_models.train_both_like_keras(keras3, build, x, y)
    assert not np.allclose(ours.layers[2].get_weights()[0], 0.25)  # the PReLU slopes moved


# -- attention layers, forward -------------------------------------------------------------------------------------
def _attention_pair(keras3, class_name, config, inputs, call_kwargs):
    """Our layer and Keras 3's with the same random weights, called the same way; (ours, theirs) as lists."""
    as_args = class_name == "MultiHeadAttention"

    def call(layer):
        out = layer(*inputs, **call_kwargs) if as_args else layer(inputs, **call_kwargs)
        return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]

    ref, ours = getattr(keras3.layers, class_name)(**config), getattr(core.layers, class_name)(**config)
    call(ref), call(ours)
    weights = [RNG.normal(0, 0.5, w.shape).astype("float32") for w in ref.get_weights()]
    ref.set_weights(weights)
    ours.set_weights(weights)
    return call(ours), call(ref), ours, ref


Q = RNG.normal(size=(3, 4, 6)).astype("float32")
V = RNG.normal(size=(3, 5, 6)).astype("float32")
K = RNG.normal(size=(3, 5, 6)).astype("float32")
Q_MASK = np.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]], bool)
V_MASK = np.array([[1, 1, 1, 1, 0], [1, 0, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
ATTENTION_CASES = [
    ("Attention", {}, [Q, V], {}),
    ("Attention", {"use_scale": True}, [Q, V, K], {}),
    ("Attention", {"score_mode": "concat"}, [Q, V], {}),
    ("Attention", {"score_mode": "concat", "use_scale": True}, [Q, V, K], {"return_attention_scores": True}),
    ("Attention", {}, [Q, V], {"mask": [Q_MASK, V_MASK], "return_attention_scores": True}),
    ("Attention", {"use_scale": True}, [Q, Q], {"use_causal_mask": True, "mask": [None, Q_MASK]}),
    ("AdditiveAttention", {}, [Q, V], {}),
    ("AdditiveAttention", {"use_scale": False}, [Q, V, K], {"return_attention_scores": True}),
    ("AdditiveAttention", {}, [Q, V], {"mask": [Q_MASK, V_MASK], "use_causal_mask": True}),
    ("MultiHeadAttention", {"num_heads": 2, "key_dim": 3}, [Q, V], {}),
    ("MultiHeadAttention", {"num_heads": 3, "key_dim": 2, "value_dim": 4, "output_shape": 5}, [Q, V, K[..., :4]],
     {"return_attention_scores": True}),
    ("MultiHeadAttention", {"num_heads": 2, "key_dim": 3, "use_bias": False}, [Q, V],
     {"attention_mask": RNG.random((3, 4, 5)) > 0.3}),
    ("MultiHeadAttention", {"num_heads": 2, "key_dim": 3}, [Q, V],
     {"attention_mask": V_MASK[:, None, :], "return_attention_scores": True}),
    ("MultiHeadAttention", {"num_heads": 2, "key_dim": 3}, [Q, Q], {"use_causal_mask": True}),
    ("MultiHeadAttention", {"num_heads": 2, "key_dim": 3}, [Q, Q], {"use_causal_mask": True, "value_mask": Q_MASK}),
    ("MultiHeadAttention", {"num_heads": 2, "key_dim": 3}, [Q, V, K],
     {"value_mask": V_MASK, "key_mask": V_MASK[::-1], "return_attention_scores": True}),
    ("MultiHeadAttention", {"num_heads": 2, "key_dim": 3, "use_gate": True, "output_shape": [2, 3]}, [Q, V], {}),
    ("MultiHeadAttention", {"num_heads": 2, "key_dim": 3, "sliding_window": 2}, [Q, Q], {}),
    ("MultiHeadAttention", {"num_heads": 2, "key_dim": 2, "attention_axes": [1, 2]},
     [RNG.normal(size=(2, 3, 4, 5)).astype("float32"), RNG.normal(size=(2, 2, 3, 5)).astype("float32")], {}),
    ("MultiHeadAttention", {"num_heads": 2, "key_dim": 2, "attention_axes": 2},
     [RNG.normal(size=(2, 3, 4, 5)).astype("float32"), RNG.normal(size=(2, 3, 2, 5)).astype("float32")],
     {"return_attention_scores": True}),
]


@pytest.mark.parametrize("class_name,config,inputs,call_kwargs", ATTENTION_CASES,
                         ids=[f"{c}-{k}-{sorted(kw)}" for c, k, _, kw in ATTENTION_CASES])
def test_attention_layer_matches_keras3(keras3, class_name, config, inputs, call_kwargs):
    got, expected, ours, ref = _attention_pair(keras3, class_name, config, inputs, call_kwargs)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        np.testing.assert_allclose(g, e, atol=1e-5, rtol=1e-5)
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in ref.weights]
    ours_config = ours.get_config()
    for key, value in ref.get_config().items():
        if key not in ("dtype", "name") and not isinstance(value, dict):
            assert ours_config[key] == (list(value) if isinstance(value, tuple) else value), key


EINSUM_CASES = [
    ({"equation": "ab,bc->ac", "output_shape": 4, "bias_axes": "c"}, (3, 6)),
    ({"equation": "abc,cd->abd", "output_shape": (None, 7), "bias_axes": "d", "activation": "relu"}, (2, 4, 6)),
    ({"equation": "abc,cde->abde", "output_shape": (None, 2, 3), "bias_axes": "de"}, (2, 4, 6)),
    ({"equation": "abc,cde->abde", "output_shape": (None, 2, 3), "bias_axes": "e"}, (2, 4, 6)),
    ({"equation": "abcd,cde->abe", "output_shape": (None, 5), "bias_axes": "e"}, (2, 4, 3, 2)),
    ({"equation": "...b,bc->...c", "output_shape": 7, "bias_axes": "c"}, (2, 4, 6)),
    ({"equation": "ab...,bc->ac...", "output_shape": (3,), "bias_axes": "c"}, (2, 6, 4)),
    ({"equation": "abc,cd->abd", "output_shape": (4, 5)}, (2, 4, 6)),
]


@pytest.mark.parametrize("config,shape", EINSUM_CASES,
                         ids=[c["equation"] + str(c.get("bias_axes")) for c, _ in EINSUM_CASES])
def test_einsum_dense_matches_keras3(keras3, config, shape):
    x = RNG.normal(size=shape).astype("float32")
    ref = keras3.layers.EinsumDense(**config)
    ref(x)
    ref.set_weights([RNG.normal(0, 0.5, w.shape).astype("float32") for w in ref.get_weights()])
    ours = core.layers.EinsumDense(**config)
    ours(x)
    ours.set_weights(ref.get_weights())
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(ref(x)), atol=1e-5, rtol=1e-5)
    # Keras reports the sizes output_shape leaves open as None; ours takes them from the input where it can.
    got, want = ours.compute_output_shape((None,) + shape[1:]), ref.compute_output_shape((None,) + shape[1:])
    assert len(got) == len(want) and all(w is None or g == w for g, w in zip(got, want)), (got, want)


def test_einsum_dense_initial_weights_have_keras_scale(keras3):
    """Keras 3.15 draws an einsum kernel with fans from its input and output axes; so does ours."""
    config = {"equation": "abc,cde->abde", "output_shape": (None, 8, 16), "bias_axes": "de"}
    ours, ref = core.layers.EinsumDense(**config), keras3.layers.EinsumDense(**config)
    ours.build((None, 10, 64))
    ref.build((None, 10, 64))
    limit = np.sqrt(6.0 / (64 + 8 * 16))  # glorot_uniform with fan_in 64 and fan_out 128
    for layer in (ours, ref):
        kernel = np.asarray(layer.get_weights()[0])
        assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.9 * limit


def test_attention_dropout_acts_in_training_only(keras3):
    """Dropout of the attention weights changes what fit() sees (same weights, same data), never predict()."""
    x = RNG.normal(size=(16, 4, 6)).astype("float32")
    y = RNG.normal(size=(16, 6)).astype("float32")

    def losses(rate, layer):
        inp = core.Input((4, 6))
        h = layer(rate)(inp)
        model = core.Model(inp, core.layers.GlobalAveragePooling1D()(h))
        for w in model.weights:
            w.assign(np.random.default_rng(1).normal(0, 0.3, w.shape))
        model.compile(optimizer="sgd", loss="mse")
        before = model.predict(x, verbose=0)
        return model.fit(x, y, batch_size=16, epochs=1, verbose=0).history["loss"][0], before

    for layer in (lambda r: _SelfAttention(core.layers.MultiHeadAttention(2, 3, dropout=r)),
                  # (with a weight before the dropout: ONNX Runtime drops a Dropout node that no gradient passes)
                  lambda r: _SelfAttention(core.layers.Attention(use_scale=True, dropout=r), as_list=True)):
        with_dropout, predicted = losses(0.5, layer)
        without, predicted_plain = losses(0.0, layer)
        assert with_dropout != pytest.approx(without, rel=1e-4)
        np.testing.assert_allclose(predicted, predicted_plain, atol=1e-6)


class _SelfAttention:
    def __init__(self, layer, as_list=False):
        self.layer, self.as_list = layer, as_list

    def __call__(self, x):
        return self.layer([x, x]) if self.as_list else self.layer(x, x)


def test_masks_from_embeddings_reach_attention_like_keras3(keras3):
    """Masks that travel with the inputs (Embedding(mask_zero=True)) act as query and value masks."""
    tokens = np.array([[3, 5, 2, 0, 0], [7, 1, 0, 0, 0], [4, 4, 4, 4, 9]], "int32")

    def build_dense_attention(lib):
        x = lib.Input((5,), dtype="int32")
        e = lib.layers.Embedding(10, 6, mask_zero=True)(x)
        a = lib.layers.Attention(use_scale=True)([e, e])
        s = lib.layers.AdditiveAttention()([e, e])
        return lib.Model(x, lib.layers.GlobalAveragePooling1D()(lib.layers.Add()([a, s])))

    # Apart: Keras 3's MultiHeadAttention strips the masks off its input tensors when it runs, so another layer
    # called on the same tensor gets a mask or not depending on which runs first.
    def build_multi_head(lib):
        x = lib.Input((5,), dtype="int32")
        e = lib.layers.Embedding(10, 6, mask_zero=True)(x)
        m, scores = lib.layers.MultiHeadAttention(2, 3, output_shape=4)(e, e, return_attention_scores=True)
        return lib.Model(x, [lib.layers.GlobalAveragePooling1D()(m), scores])

    for build in (build_dense_attention, build_multi_head):
        ref, ours = build(keras3), build(core)
        ours.set_weights(ref.get_weights())
        got, want = ours.predict(tokens, verbose=0), ref.predict(tokens, verbose=0)
        for g, w in zip(core.layers.base.flatten(got), core.layers.base.flatten(want)):
            np.testing.assert_allclose(g, w, atol=1e-5, rtol=1e-5)


def test_attention_layers_train_like_keras3(keras3):
    """Two epochs of Adam on a model of every attention layer: history within 1e-4, weights within 1e-3."""
    x = RNG.normal(size=(32, 5, 4)).astype("float32")
    y = RNG.normal(size=(32, 3)).astype("float32")

    def build(lib):
        inp = lib.Input((5, 4))
        h = lib.layers.EinsumDense("abc,cd->abd", output_shape=(5, 6), bias_axes="d")(inp)
        h = lib.layers.MultiHeadAttention(2, 3)(h, h, use_causal_mask=True)
        h = lib.layers.Attention(use_scale=True, score_mode="concat")([h, h])
        h = lib.layers.AdditiveAttention()([h, inp, h])
        return lib.Model(inp, lib.layers.Dense(3)(lib.layers.Flatten()(h)))

    layer_models.train_both_like_keras(keras3, build, x, y)

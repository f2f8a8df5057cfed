"""Merge layers against numpy and real Keras 3: values, broadcasting, masks, configs and shape errors."""

import numpy as np
import pytest

import core as keras
from core import layers
from core.errors import ConfigError, ShapeError
from keras_reference import keras3  # noqa: F401  (the real-Keras fixture)


RNG = np.random.default_rng(7)
A = RNG.normal(size=(4, 3, 5)).astype("float32")
B = RNG.normal(size=(4, 3, 5)).astype("float32")
C = RNG.normal(size=(4, 3, 5)).astype("float32")

ELEMENTWISE = {
    "Add": lambda xs: xs[0] + xs[1] + xs[2],
    "Multiply": lambda xs: xs[0] * xs[1] * xs[2],
    "Average": lambda xs: (xs[0] + xs[1] + xs[2]) / 3,
    "Maximum": lambda xs: np.maximum(np.maximum(xs[0], xs[1]), xs[2]),
    "Minimum": lambda xs: np.minimum(np.minimum(xs[0], xs[1]), xs[2]),
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_merges_eager_and_functional(name):
    want = ELEMENTWISE[name]([A, B, C])
    np.testing.assert_allclose(getattr(layers, name)()([A, B, C]).numpy(), want, rtol=1e-6, atol=1e-6)
    ins = [keras.Input(shape=(3, 5)) for _ in range(3)]
    out = getattr(layers, name)()(ins)
    assert out.shape == (None, 3, 5)
    np.testing.assert_allclose(keras.Model(ins, out).predict([A, B, C]), want, rtol=1e-6, atol=1e-6)


def test_subtract_takes_exactly_two():
    np.testing.assert_allclose(layers.Subtract()([A, B]).numpy(), A - B, atol=1e-6)
    with pytest.raises(ShapeError, match="exactly 2"):
        layers.Subtract()([keras.Input(shape=(2,)) for _ in range(3)])


@pytest.mark.parametrize("name", sorted(ELEMENTWISE) + ["Subtract"])
def test_elementwise_merges_match_keras3_with_broadcast(keras3, name):
    x = RNG.normal(size=(2, 4, 3)).astype("float32")
    y = RNG.normal(size=(2, 1, 3)).astype("float32")
    z = RNG.normal(size=(2, 3)).astype("float32")  # lower rank: Keras expands it at axis 1
    ref = np.asarray(getattr(keras3.layers, name)()([x, y, z][:2 if name == "Subtract" else 3]))
    ours = getattr(layers, name)()([x, y, z][:2 if name == "Subtract" else 3]).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)
    assert set(getattr(layers, name)().get_config()) == set(getattr(keras3.layers, name)().get_config())


def test_add_shape_error_names_layer_and_both_shapes():
    a, b = keras.Input(shape=(3,)), keras.Input(shape=(4,))
    with pytest.raises(ShapeError, match=r"Add 'sum_ab'.*\(None, 3\), \(None, 4\)"):
        layers.Add(name="sum_ab")([a, b])
    with pytest.raises(ShapeError, match="list of tensors"):
        layers.Add()(a)
    with pytest.raises(ShapeError, match="batch sizes"):
        layers.Multiply()([np.ones((2, 3), "float32"), np.ones((5, 3), "float32")])


def _masked(value, mask):
    t = keras.EagerTensor(value)
    t._keras_mask = keras.EagerTensor(mask)
    return t


def _keras3_masked(keras3, value, mask):
    import tensorflow as tf

    t = tf.convert_to_tensor(value)
    t._keras_mask = tf.convert_to_tensor(mask)
    return t


MASK_1 = np.array([[True, True, False, False], [True, False, False, False]])
MASK_2 = np.array([[True, True, True, False], [False, True, False, False]])


@pytest.mark.parametrize("name", sorted(ELEMENTWISE) + ["Subtract"])
@pytest.mark.parametrize("second_masked", [True, False])
def test_elementwise_masks_and_values_like_keras3(keras3, name, second_masked):
    x = RNG.normal(size=(2, 4, 3)).astype("float32")
    y = RNG.normal(size=(2, 4, 3)).astype("float32")
    ours = getattr(layers, name)()([_masked(x, MASK_1), _masked(y, MASK_2) if second_masked else y])
    ref = getattr(keras3.layers, name)()([_keras3_masked(keras3, x, MASK_1),
                                      _keras3_masked(keras3, y, MASK_2) if second_masked else y])
    np.testing.assert_allclose(ours.numpy(), np.asarray(ref), rtol=1e-6, atol=1e-6)
    ref_mask = getattr(ref, "_keras_mask", None)
    if ref_mask is None:
        assert ours._keras_mask is None
    else:
        np.testing.assert_array_equal(ours._keras_mask, np.asarray(ref_mask))
    if second_masked:  # Keras 3: the OR of the masks
        np.testing.assert_array_equal(ours._keras_mask, MASK_1 | MASK_2)


def test_merge_of_masked_functional_inputs_keeps_mask():
    ids1 = np.array([[1, 2, 0, 0], [3, 0, 0, 0]])
    ids2 = np.array([[1, 2, 3, 0], [3, 4, 0, 0]])
    in1, in2 = keras.Input(shape=(4,)), keras.Input(shape=(4,))
    e1, e2 = layers.Embedding(10, 2, mask_zero=True), layers.Embedding(10, 2, mask_zero=True)
    out = layers.Maximum()([e1(in1), e2(in2)])
    assert out.has_mask
    model = keras.Model([in1, in2], out)
    t1, t2 = e1.get_weights()[0][ids1], e2.get_weights()[0][ids2]
    m1, m2 = (ids1 != 0)[..., None], (ids2 != 0)[..., None]
    second = np.where(m2, t2, t1)  # a masked-out value is replaced by the other input's
    want = np.maximum(np.where(m1, t1, second), second)
    np.testing.assert_allclose(model.predict([ids1, ids2]), want, atol=1e-7)


# -- Concatenate ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [-1, 1, 2])
def test_concatenate_matches_numpy_and_keras3(keras3, axis):
    x = RNG.normal(size=(2, 3, 4)).astype("float32")
    y = RNG.normal(size=(2, 3, 4)).astype("float32")
    want = np.concatenate([x, y], axis=axis)
    np.testing.assert_array_equal(layers.Concatenate(axis=axis)([x, y]).numpy(), want)
    np.testing.assert_array_equal(np.asarray(keras3.layers.Concatenate(axis=axis)([x, y])), want)
    ins = [keras.Input(shape=(3, 4)), keras.Input(shape=(3, 4))]
    out = layers.Concatenate(axis=axis)(ins)
    assert out.shape == (None,) + want.shape[1:]
    np.testing.assert_array_equal(keras.Model(ins, out).predict([x, y]), want)


def test_concatenate_masks_like_keras3(keras3):
    ids = np.array([[1, 2, 0], [4, 0, 0]])
    emb = layers.Embedding(10, 2, mask_zero=True)(ids)
    plain = RNG.normal(size=(2, 3, 5)).astype("float32")
    out = layers.Concatenate()([emb, plain])
    ref = keras3.layers.Concatenate().compute_mask([emb.numpy(), plain], [ids != 0, None])
    np.testing.assert_array_equal(out._keras_mask, np.asarray(ref))
    both = layers.Concatenate(axis=1)([emb, emb])
    ref = keras3.layers.Concatenate(axis=1).compute_mask([emb.numpy(), emb.numpy()], [ids != 0, ids != 0])
    np.testing.assert_array_equal(both._keras_mask, np.asarray(ref))
    assert layers.Concatenate(axis=1).get_config()["axis"] == 1
    assert set(layers.Concatenate().get_config()) == set(keras3.layers.Concatenate().get_config())


def test_concatenate_shape_errors():
    with pytest.raises(ShapeError, match=r"concatenate_bad.*\(None, 3, 4\), \(None, 5, 4\).*axis 1"):
        layers.Concatenate(name="concatenate_bad")([keras.Input(shape=(3, 4)), keras.Input(shape=(5, 4))])
    with pytest.raises(ShapeError, match="same rank"):
        layers.Concatenate()([keras.Input(shape=(3, 4)), keras.Input(shape=(3,))])
    with pytest.raises(ShapeError, match="out of range"):
        layers.Concatenate(axis=3)([keras.Input(shape=(3, 4)), keras.Input(shape=(3, 4))])
    with pytest.raises(ConfigError, match="axis"):
        layers.Concatenate(axis="last")


# -- Dot --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shapes, axes", [(((2, 5), (2, 5)), 1), (((2, 3, 5), (2, 4, 5)), 2),
                                          (((2, 3, 5), (2, 3, 4)), 1), (((2, 3, 5), (2, 5, 4)), (2, 1)),
                                          (((2, 5), (2, 5, 4)), (1, 1)), (((2, 3, 4, 5), (2, 5, 2)), (3, 1)),
                                          (((2, 3, 5), (2, 4, 5)), -1)])
@pytest.mark.parametrize("normalize", [False, True])
def test_dot_matches_keras3(keras3, shapes, axes, normalize):
    x = RNG.normal(size=shapes[0]).astype("float32")
    y = RNG.normal(size=shapes[1]).astype("float32")
    ref = np.asarray(keras3.layers.Dot(axes=axes, normalize=normalize)([x, y]))
    ours = layers.Dot(axes=axes, normalize=normalize)([x, y]).numpy()
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
    ins = [keras.Input(shape=shapes[0][1:]), keras.Input(shape=shapes[1][1:])]
    out = layers.Dot(axes=axes, normalize=normalize)(ins)
    assert out.shape == (None,) + ref.shape[1:]


def test_dot_config_and_errors(keras3):
    cfg = layers.Dot(axes=(1, 2), normalize=True, name="d").get_config()
    assert cfg["axes"] == [1, 2] and cfg["normalize"] is True
    assert set(cfg) == set(keras3.layers.Dot(axes=1).get_config())
    assert layers.Dot.from_config(cfg).get_config() == cfg
    with pytest.raises(ShapeError, match=r"Dot 'dot_bad'.*4.*5"):
        layers.Dot(axes=1, name="dot_bad")([keras.Input(shape=(4,)), keras.Input(shape=(5,))])
    with pytest.raises(ShapeError, match="batch axis"):
        layers.Dot(axes=0)([keras.Input(shape=(4,)), keras.Input(shape=(4,))])
    with pytest.raises(ShapeError, match="exactly 2"):
        layers.Dot(axes=1)([keras.Input(shape=(4,))] * 3)
    with pytest.raises(ConfigError, match="axes"):
        layers.Dot(axes=(1, 2, 3))
    with pytest.raises(ConfigError, match="axes"):
        layers.Dot(axes="last")


def test_dot_drops_masks():
    ids = np.array([[1, 0]])
    emb = layers.Embedding(5, 3, mask_zero=True)(ids)
    assert layers.Dot(axes=2)([emb, emb])._keras_mask is None


def test_merges_embedding_and_layernorm_train_like_keras3(keras3):
    """fit() through Embedding, LayerNormalization and every merge: Keras 3's losses and weights."""
    rng = np.random.default_rng(4)
    ids = rng.integers(1, 20, size=(48, 5))
    y = rng.normal(size=(48, 3)).astype("float32")

    def build(lib):
        inp = lib.Input(shape=(5,))
        e = lib.layers.LayerNormalization()(lib.layers.Embedding(20, 4)(inp))
        a = lib.layers.Dense(4, activation="tanh")(e)
        b = lib.layers.Dense(4)(e)
        merged = [lib.layers.Add()([a, b]), lib.layers.Subtract()([a, b]), lib.layers.Multiply()([a, b]),
                  lib.layers.Average()([a, b]), lib.layers.Maximum()([a, b]), lib.layers.Minimum()([a, b]),
                  lib.layers.Dot(axes=2, normalize=True)([a, b])]
        h = lib.layers.GlobalAveragePooling1D()(lib.layers.Concatenate()(merged))
        return lib.Model(inp, lib.layers.Dense(3)(h))

    ref, ours = build(keras3), build(keras)
    ours.set_weights(ref.get_weights())
    ref.compile(optimizer="sgd", loss="mse")
    ours.compile(optimizer="sgd", loss="mse")
    ref_hist = ref.fit(ids, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history
    our_hist = ours.fit(ids, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history
    np.testing.assert_allclose(our_hist["loss"], ref_hist["loss"], rtol=1e-4)
    for got, want in zip(ours.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)

"""core.ops against numpy: eager values, and the shapes inferred in Python when traced with an unknown batch size."""

import math

import numpy as np
import pytest

from core import ops
from core.errors import ShapeError
from core.graph import GraphBuilder, graph_scope

RNG = np.random.default_rng(11)
A = RNG.normal(size=(3, 4)).astype("float32")
B = RNG.normal(size=(3, 4)).astype("float32")
P = np.abs(A) + 0.1  # positive
T3 = RNG.normal(size=(2, 3, 4)).astype("float32")


def _erf(x):
    return np.vectorize(math.erf)(x).astype("float32")


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


CASES = [
    ("add", lambda a, b: ops.add(a, b), (A, B), lambda a, b: a + b),
    ("add_scalar", lambda a: ops.add(a, 2.0), (A,), lambda a: a + 2),
    ("subtract_broadcast", lambda a, b: ops.subtract(a, b), (T3, A[0]), lambda a, b: a - b),
    ("multiply", lambda a, b: ops.multiply(a, b), (A, B), lambda a, b: a * b),
    ("divide", lambda a, b: ops.divide(a, b), (A, P), lambda a, b: a / b),
    ("power", lambda a: ops.power(a, 2.0), (P,), lambda a: a ** 2),
    ("maximum", lambda a, b: ops.maximum(a, b), (A, B), np.maximum),
    ("minimum", lambda a, b: ops.minimum(a, b), (A, B), np.minimum),
    ("equal", lambda a: ops.equal(a, a), (A,), lambda a: a == a),
    ("not_equal", lambda a, b: ops.not_equal(a, b), (A, B), lambda a, b: a != b),
    ("less", lambda a, b: ops.less(a, b), (A, B), lambda a, b: a < b),
    ("greater_equal", lambda a, b: ops.greater_equal(a, b), (A, B), lambda a, b: a >= b),
    ("logical_and", lambda a, b: ops.logical_and(a > 0, b > 0), (A, B), lambda a, b: (a > 0) & (b > 0)),
    ("logical_or", lambda a, b: ops.logical_or(a > 0, b > 0), (A, B), lambda a, b: (a > 0) | (b > 0)),
    ("logical_not", lambda a: ops.logical_not(a > 0), (A,), lambda a: ~(a > 0)),
    ("negative", ops.negative, (A,), np.negative),
    ("abs", ops.abs, (A,), np.abs),
    ("exp", ops.exp, (A,), np.exp),
    ("log", ops.log, (P,), np.log),
    ("sqrt", ops.sqrt, (P,), np.sqrt),
    ("rsqrt", ops.rsqrt, (P,), lambda p: 1 / np.sqrt(p)),
    ("square", ops.square, (A,), np.square),
    ("tanh", ops.tanh, (A,), np.tanh),
    ("sigmoid", ops.sigmoid, (A,), _sigmoid),
    ("relu", ops.relu, (A,), lambda a: np.maximum(a, 0)),
    ("erf", ops.erf, (A,), _erf),
    ("sign", ops.sign, (A,), np.sign),
    ("floor", ops.floor, (A,), np.floor),
    ("round", ops.round, (A * 3,), np.round),
    ("clip", lambda a: ops.clip(a, -0.5, 0.5), (A,), lambda a: np.clip(a, -0.5, 0.5)),
    ("where", lambda a, b: ops.where(a > b, a, b), (A, B), lambda a, b: np.where(a > b, a, b)),
    ("cast", lambda a: ops.cast(a * 3, "int64"), (A,), lambda a: (a * 3).astype("int64")),
    ("matmul", lambda a, b: ops.matmul(a, b), (A, B.T.copy()), lambda a, b: a @ b),
    ("matmul_batched", lambda a, b: ops.matmul(a, b), (T3, A.T.copy()), lambda a, b: a @ b),
    ("sum_all", lambda a: ops.sum(a), (T3,), lambda a: a.sum()),
    ("sum_axes", lambda a: ops.sum(a, axis=(0, 2)), (T3,), lambda a: a.sum((0, 2))),
    ("mean_keep", lambda a: ops.mean(a, axis=-1, keepdims=True), (T3,), lambda a: a.mean(-1, keepdims=True)),
    ("max", lambda a: ops.max(a, axis=1), (T3,), lambda a: a.max(1)),
    ("min", lambda a: ops.min(a, axis=0), (T3,), lambda a: a.min(0)),
    ("prod", lambda a: ops.prod(a, axis=1), (A,), lambda a: a.prod(1)),
    ("var", lambda a: ops.var(a, axis=1), (T3,), lambda a: a.var(1)),
    ("logsumexp", lambda a: ops.logsumexp(a, axis=-1), (A,), lambda a: np.log(np.exp(a).sum(-1))),
    ("any", lambda a: ops.any(a > 1, axis=1), (A,), lambda a: (a > 1).any(1)),
    ("all", lambda a: ops.all(a > -1, axis=1), (A,), lambda a: (a > -1).all(1)),
    ("argmax", lambda a: ops.argmax(a, axis=-1), (T3,), lambda a: a.argmax(-1)),
    ("normalize", lambda a: ops.normalize(a, axis=-1), (A,), lambda a: a / np.linalg.norm(a, axis=-1, keepdims=True)),
    ("batch_dot_2d", lambda a, b: ops.batch_dot(a, b, (1, 1)), (A, B), lambda a, b: (a * b).sum(1, keepdims=True)),
    ("batch_dot_3d", lambda a, b: ops.batch_dot(a, b, (2, 2)), (T3, T3), lambda a, b: np.einsum("bik,bjk->bij", a, b)),
    ("reshape", lambda a: ops.reshape(a, (-1, 4)), (T3,), lambda a: a.reshape(-1, 4)),
    ("reshape_keep_batch", lambda a: ops.reshape(a, (None, 12)), (T3,), lambda a: a.reshape(2, 12)),
    ("transpose", lambda a: ops.transpose(a, (0, 2, 1)), (T3,), lambda a: a.transpose(0, 2, 1)),
    ("transpose_default", lambda a: ops.transpose(a), (T3,), lambda a: a.T),
    ("concatenate", lambda a, b: ops.concatenate([a, b], axis=0), (A, B), lambda a, b: np.concatenate([a, b], 0)),
    ("expand_dims", lambda a: ops.expand_dims(a, -1), (A,), lambda a: a[..., None]),
    ("squeeze", lambda a: ops.squeeze(a, 1), (A[:, :1],), lambda a: a[:, 0]),
    ("stack", lambda a, b: ops.stack([a, b], axis=1), (A, B), lambda a, b: np.stack([a, b], 1)),
    ("tile", lambda a: ops.tile(a, [1, 2, 3]), (T3,), lambda a: np.tile(a, [1, 2, 3])),
    ("take", lambda a: ops.take(a, np.array([2, 0]), axis=1), (A,), lambda a: a[:, [2, 0]]),
    ("one_hot", lambda a: ops.one_hot(a, 5), (np.array([[0, 3], [4, 1]]),), lambda a: np.eye(5, dtype="f")[a]),
    ("zeros_like", ops.zeros_like, (A,), np.zeros_like),
    ("ones_like", ops.ones_like, (A,), np.ones_like),
    ("ones_like_bool", lambda a: ops.ones_like(a, "bool"), (A,), lambda a: np.ones(a.shape, bool)),
    ("zeros_like_of_bool", lambda a: ops.zeros_like(a > 0), (A,), lambda a: np.zeros(a.shape, bool)),
    ("ones_like_of_bool", lambda a: ops.ones_like(a > 0, "float32"), (A,), lambda a: np.ones(a.shape, "f")),
    ("flip", lambda a: ops.flip(a, 1), (T3,), lambda a: a[:, ::-1]),
    ("pad", lambda a: ops.pad(a, [(0, 0), (1, 2)], 7.0), (A,), lambda a: np.pad(a, [(0, 0), (1, 2)],
                                                                                 constant_values=7.0)),
    ("getitem", lambda a: ops.getitem(a, (slice(None), slice(1, None), slice(None, None, 2))), (T3,), lambda a: a[:, 1:, ::2]),
    ("getitem_int_newaxis", lambda a: ops.getitem(a, (slice(None), -1, None)), (T3,), lambda a: a[:, -1, None]),
    ("getitem_ellipsis", lambda a: ops.getitem(a, (Ellipsis, 0)), (T3,), lambda a: a[..., 0]),
    ("softmax", lambda a: ops.softmax(a, axis=1), (T3,), lambda a: _softmax(a, 1)),
    ("log_softmax", ops.log_softmax, (A,), lambda a: np.log(_softmax(a))),
    ("softplus", ops.softplus, (A,), lambda a: np.log1p(np.exp(a))),
    ("softsign", ops.softsign, (A,), lambda a: a / (1 + np.abs(a))),
    ("elu", ops.elu, (A,), lambda a: np.where(a > 0, a, np.exp(a) - 1)),
    ("selu", ops.selu, (A,), lambda a: 1.0507009873554805 * np.where(a > 0, a, 1.6732632423543772 * (np.exp(a) - 1))),
    ("leaky_relu", ops.leaky_relu, (A,), lambda a: np.where(a > 0, a, 0.2 * a)),
    ("relu6", ops.relu6, (A * 5,), lambda a: np.clip(a, 0, 6)),
    ("silu", ops.silu, (A,), lambda a: a * _sigmoid(a)),
    ("gelu_tanh", ops.gelu, (A,), lambda a: 0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a ** 3)))),
    ("gelu_exact", lambda a: ops.gelu(a, approximate=False), (A,), lambda a: 0.5 * a * (1 + _erf(a / np.sqrt(2)))),
    ("hard_sigmoid", ops.hard_sigmoid, (A * 4,), lambda a: np.clip(a / 6 + 0.5, 0, 1)),
    ("mish", ops.mish, (A,), lambda a: a * np.tanh(np.log1p(np.exp(a)))),
    ("log_sigmoid", ops.log_sigmoid, (A,), lambda a: np.log(_sigmoid(a))),
]


@pytest.mark.parametrize("name, fn, args, ref", CASES, ids=[c[0] for c in CASES])
def test_op_eager_matches_numpy_and_traced_shape(name, fn, args, ref):
    want = np.asarray(ref(*args))
    got = fn(*args)
    assert isinstance(got, ops.EagerTensor)
    assert got.shape == want.shape, f"{name}: eager shape {got.shape} != numpy {want.shape}"
    if want.dtype == bool:
        np.testing.assert_array_equal(got.numpy(), want)
    else:
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)
    # Traced with an unknown leading dimension, the inferred shape must agree with what ran.
    g = GraphBuilder("shapes")
    placeholders = [g.add_input("x", np.asarray(a).dtype.name, (None,) + np.shape(a)[1:]) for a in args]
    with graph_scope(g):
        traced = fn(*placeholders)
    assert len(traced.shape) == want.ndim, f"{name}: traced rank {traced.shape} vs {want.shape}"
    for d, w in zip(traced.shape, want.shape):
        assert d is None or d == w, f"{name}: traced shape {traced.shape} vs real {want.shape}"


def test_moments_and_unstack():
    mean, var = ops.moments(T3, axes=[0, 1])
    np.testing.assert_allclose(mean.numpy(), T3.mean((0, 1)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(var.numpy(), T3.var((0, 1)), rtol=1e-5, atol=1e-6)
    parts = ops.unstack(A, axis=1)
    assert len(parts) == 4
    np.testing.assert_allclose(parts[2].numpy(), A[:, 2])


def test_batch_dot_general_ranks():
    a = RNG.normal(size=(2, 3, 4, 5)).astype("float32")
    b = RNG.normal(size=(2, 5, 6)).astype("float32")
    np.testing.assert_allclose(ops.batch_dot(a, b, (3, 1)).numpy(), np.einsum("bijk,bkl->bijl", a, b), atol=1e-5)
    c = RNG.normal(size=(2, 4)).astype("float32")
    d = RNG.normal(size=(2, 4, 6)).astype("float32")
    np.testing.assert_allclose(ops.batch_dot(c, d, (1, 1)).numpy(), np.einsum("bk,bkl->bl", c, d), atol=1e-5)


def test_dropout_and_noise_ops():
    x = np.ones((200, 50), "float32")
    y = ops.dropout(x, 0.25).numpy()
    assert abs((y == 0).mean() - 0.25) < 0.02 and np.allclose(y[y != 0], 1 / 0.75)
    keep = ops.bernoulli_like(x, 0.7, (None, 1)).numpy()
    assert keep.shape == (200, 1) and abs(keep.mean() - 0.7) < 0.1
    assert not ops.dropout(x, 1.0).numpy().any()
    with pytest.raises(ValueError, match="rate"):
        ops.dropout(x, 1.5)
    noise = ops.random_normal_like(x, stddev=2.0).numpy()
    assert abs(noise.std() - 2.0) < 0.05


@pytest.mark.parametrize("call, match", [
    (lambda: ops.add(np.ones((2, 3), "f"), np.ones((2, 4), "f")), "broadcast"),
    (lambda: ops.matmul(np.ones((2, 3), "f"), np.ones((4, 2), "f")), "inner dimensions"),
    (lambda: ops.reshape(np.ones((2, 3), "f"), (4, 2)), "reshape"),
    (lambda: ops.reshape(np.ones((2, 3), "f"), (-1, -1)), "at most one"),
    (lambda: ops.transpose(np.ones((2, 3), "f"), (0, 0)), "permutation"),
    (lambda: ops.concatenate([np.ones((2, 3), "f"), np.ones((3, 3), "f")], axis=1), "differ on axis 0"),
    (lambda: ops.squeeze(np.ones((2, 3), "f"), 1), "not 1"),
    (lambda: ops.expand_dims(np.ones((2, 3), "f"), 4), "out of range"),
    (lambda: ops.sum(np.ones((2, 3), "f"), axis=2), "out of range"),
    (lambda: ops.tile(np.ones((2, 3), "f"), [2]), "repeats"),
    (lambda: ops.getitem(np.ones((2, 3), "f"), (0, 0, 0)), "Too many indices"),
    (lambda: ops.getitem(np.ones((2, 3), "f"), (slice(None), 5)), "out of range"),
])
def test_op_shape_errors(call, match):
    with pytest.raises(ShapeError, match=match):
        call()

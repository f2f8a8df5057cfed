"""Every gradient rule against central finite differences, in float64 where ONNX Runtime has double kernels."""

import numpy as np
import pytest

from core import ops
from core.graph import GraphBuilder, graph_scope
from core.training.autodiff import gradients
from core.training.gradients import GradientError
from gradient_coverage import CHECK_MODULES, VERIFIED, rules_used

RNG = np.random.default_rng(0)


def _check(fn, arrays, *, dtype="float64", eps=1e-6, tol=1e-6, wrt=None, dynamic=False, factors_in_forward=False):
    """Build fn(*inputs) in a graph, loss = sum(out * R), compare autodiff with finite differences.
    `factors_in_forward`: a Scan's gradient computes its derivative factors in the forward step (as on a CPU)."""
    import onnxruntime as ort

    arrays = [np.asarray(a, dtype=dtype) if np.asarray(a).dtype.kind == "f" else np.asarray(a) for a in arrays]
    g = GraphBuilder("grad_test")
    g.scan_factors_in_forward = factors_in_forward
    # dynamic: every size unknown to the graph, so rules take their run-time (Shape op) paths.
    # dynamic=(axes...): only those axes of the first input are unknown.
    def declared(i, a):
        if dynamic is True:
            return (None,) * a.ndim
        if dynamic and i == 0:
            return tuple(None if k in dynamic else d for k, d in enumerate(a.shape))
        return a.shape

    ins = [g.add_input(f"x{i}", a.dtype.name, declared(i, a)) for i, a in enumerate(arrays)]
    with graph_scope(g):
        out = fn(*ins)
    # Find output shape by running the forward alone.
    fwd = GraphBuilder("probe")
    fwd_ins = [fwd.add_input(f"x{i}", a.dtype.name, t.shape) for i, (a, t) in enumerate(zip(arrays, ins))]
    with graph_scope(fwd):
        probe_out = fn(*fwd_ins)
    fwd.set_outputs([probe_out], ["y"])
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    probe = ort.InferenceSession(fwd.to_model().SerializeToString(), so, providers=["CPUExecutionProvider"])
    feeds = {f"x{i}": a for i, a in enumerate(arrays)}
    y0 = probe.run(None, {t.name: feeds[f"x{i}"] for i, t in enumerate(fwd_ins)})[0]
    r = RNG.standard_normal(y0.shape).astype(y0.dtype)
    with graph_scope(g):
        loss = ops.sum(ops.multiply(out, g.constant(r, r.dtype)))
        wrt_idx = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"] if wrt is None else wrt
        with rules_used() as used:
            grads = gradients(loss, [ins[i] for i in wrt_idx])
    g.set_outputs([loss] + grads, ["loss"] + [f"g{i}" for i in wrt_idx])
    sess = ort.InferenceSession(g.to_model().SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [t.name for t in ins]
    res = sess.run(None, dict(zip(names, arrays)))
    for k, i in enumerate(wrt_idx):
        analytic = res[1 + k]
        numeric = np.zeros_like(arrays[i])
        flat = numeric.reshape(-1)
        for j in range(arrays[i].size):
            vals = []
            for s in (eps, -eps):
                pert = [a.copy() for a in arrays]
                pert[i].reshape(-1)[j] += s
                vals.append(float(sess.run(["loss"], dict(zip(names, pert)))[0]))
            flat[j] = (vals[0] - vals[1]) / (2 * eps)
        np.testing.assert_allclose(analytic, numeric, rtol=tol, atol=tol, err_msg=f"gradient of input {i}")
    VERIFIED.update(used)


def r(*shape):
    return RNG.standard_normal(shape)


def away_from_zero(*shape):
    x = r(*shape)
    return np.where(np.abs(x) < 0.2, 0.5, x)


BINARY = {
    "add": ops.add, "subtract": ops.subtract, "multiply": ops.multiply, "maximum": ops.maximum,
    "minimum": ops.minimum,
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_broadcasting_binary(name):
    _check(BINARY[name], [r(3, 4), r(4)])
    _check(BINARY[name], [r(3, 1, 4), r(3, 2, 1)])
    _check(BINARY[name], [r(3, 1, 4), r(3, 2, 1)], dynamic=True)
    # summed over leading axes (a bias's gradient: a row of ones times the gradient as a matrix)
    _check(BINARY[name], [r(2, 3, 4), r(4)])
    _check(BINARY[name], [r(2, 3, 4), r(1, 1, 4)], dynamic=True)
    _check(BINARY[name], [r(2, 3, 4), r(3, 4)], dynamic=True)
    # an image's bias (rank 4 and up: one ReduceSum, which ONNX Runtime runs channels-first where the conv left it)
    _check(BINARY[name], [r(2, 3, 2, 4), r(4)])
    _check(BINARY[name], [r(2, 3, 2, 4), r(2, 4)])


def test_divide_and_power():
    _check(ops.divide, [r(3, 4), away_from_zero(4) + 3])
    _check(lambda a, b: ops.power(a, b), [np.abs(r(3, 4)) + 0.5, r(3, 4)])
    _check(lambda a: ops.power(a, 3.0), [r(2, 3)])


UNARY = {
    "negative": (ops.negative, away_from_zero), "relu": (ops.relu, away_from_zero),
    "sigmoid": (ops.sigmoid, r), "tanh": (ops.tanh, r), "exp": (ops.exp, r),
    "log": (lambda x: ops.log(ops.abs(x)), away_from_zero), "sqrt": (lambda x: ops.sqrt(ops.abs(x)), away_from_zero),
    "abs": (ops.abs, away_from_zero), "reciprocal": (ops.reciprocal, away_from_zero),
    "softmax": (lambda x: ops.softmax(x, axis=-1), r), "softmax_axis0": (lambda x: ops.softmax(x, axis=0), r),
    "log_softmax": (ops.log_softmax, r), "sin": (ops.sin, r), "cos": (ops.cos, r),
    "identity": (ops.identity, r), "square": (ops.square, r),
    "cast_roundtrip": (lambda x: ops.cast(ops.cast(x, "float32"), "float64"), r),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary(name):
    fn, gen = UNARY[name]
    tol = 1e-4 if name == "cast_roundtrip" else 1e-6
    _check(fn, [gen(3, 5)], tol=tol, eps=1e-3 if name == "cast_roundtrip" else 1e-6)


# Activations whose ONNX kernels are float32 only in ONNX Runtime: checked in float32 with a looser tolerance.
FLOAT32_ONLY = {
    "softplus": ops.softplus, "elu": lambda x: ops.elu(x, 0.7), "selu": ops.selu,
    "leaky_relu": lambda x: ops.leaky_relu(x, 0.2), "hard_sigmoid": ops.hard_sigmoid, "erf": ops.erf,
    "softsign": ops.softsign,
}


@pytest.mark.parametrize("name", sorted(FLOAT32_ONLY))
def test_float32_activations(name):
    x = away_from_zero(3, 4) * 1.5
    try:
        _check(FLOAT32_ONLY[name], [x], dtype="float64")
    except Exception as exc:  # ORT lacks the double kernel: fall back to float32
        if "NOT_IMPLEMENTED" not in str(exc) and "Could not find an implementation" not in str(exc):
            raise
        _check(FLOAT32_ONLY[name], [x], dtype="float32", eps=1e-2, tol=2e-2)


def test_where_clip():
    x = away_from_zero(3, 4)
    _check(lambda a, b: ops.where(ops.greater(a, 0.0), a, b), [x, r(3, 4)])
    _check(lambda a: ops.clip(a, -0.5, 0.5), [np.where(np.abs(np.abs(x) - 0.5) < 0.05, 0.2, x)])


def test_matmul_shapes():
    _check(ops.matmul, [r(3, 4), r(4, 5)])
    _check(ops.matmul, [r(2, 3, 4), r(4, 5)])
    _check(ops.matmul, [r(2, 3, 4), r(2, 4, 5)])


def test_reshape_transpose_squeeze_expand():
    _check(lambda a: ops.reshape(a, (-1, 6)), [r(2, 3, 2)])
    _check(lambda a: ops.transpose(a, (0, 2, 1)), [r(2, 3, 4)])
    _check(lambda a: ops.squeeze(ops.expand_dims(a, 1), 1), [r(2, 3)])
    _check(lambda a: ops.tile(a, (2, 3)), [r(2, 3)])
    _check(lambda a: ops.reshape(a, (-1, 6)), [r(2, 3, 2)], dynamic=True)


def test_expand():
    def fn(a):
        g = a.graph
        shape = g.constant(np.array([2, 3, 4], dtype=np.int64))
        return g.emit("Expand", [a, shape], {}, [(a.dtype, (2, 3, 4))])[0]

    x = r(1, 4)
    _check(fn, [x])


def test_concat_static_and_dynamic():
    _check(lambda a, b: ops.concatenate([a, b], axis=-1), [r(2, 3), r(2, 2)])
    _check(lambda a, b: ops.concatenate([a, b], axis=0), [r(2, 3), r(1, 3)])
    _check(lambda a, b: ops.concatenate([a, b], axis=1), [r(2, 3), r(2, 2)], dynamic=True)


def test_slice_and_getitem():
    _check(lambda a: a[:, 1:3], [r(3, 4)])
    _check(lambda a: a[:, ::-1], [r(3, 4)])
    _check(lambda a: a[:, -1], [r(3, 4)])
    _check(lambda a: a[:, 0:4:2, 1], [r(2, 5, 3)])
    # steps above 1: the gradient spreads dy with zeros between the taken positions, on any axis, the last one
    # taken near the end or not
    _check(lambda a: a[:, 1::3], [r(2, 8, 3)])
    _check(lambda a: a[:, 1:7:2], [r(2, 9, 3)])
    _check(lambda a: a[::2, :, 2::2], [r(5, 2, 6)])
    _check(lambda a: a[:, 1::3], [r(2, 8, 3)], dynamic=True)
    _check(lambda a: a[:, 1:3], [r(3, 4)], dynamic=True)


@pytest.mark.parametrize("dynamic", [False, True])
def test_a_flip_and_an_unstack_have_their_own_adjoints(dynamic):
    from core.graph import GraphBuilder as Builder

    _check(lambda a: ops.flip(a, 1), [r(2, 5, 3)], dynamic=dynamic)
    _check(lambda a: ops.flip(ops.flip(a, 0), 2), [r(2, 5, 3)], dynamic=dynamic)
    _check(lambda a: ops.concatenate(ops.unstack(a, axis=1)[::-1], axis=-1), [r(2, 3, 4)])
    # A flip's gradient flips dy back, an unstack's concatenates the pieces': no scatter into zeros either way.
    g = Builder("adjoints")
    x = g.add_input("x", "float32", (None, 5, 3))
    with graph_scope(g):
        loss = ops.sum(ops.multiply(ops.flip(x, 1), ops.stack(ops.unstack(x, axis=1), axis=1)))
        gradients(loss, [x])
    assert not {n.op_type for n in g.nodes} & {"ScatterND", "ScatterElements"}


def test_gather_embedding_and_axis1():
    ids = np.array([[0, 2, 2], [1, 0, -1]], dtype=np.int64)
    _check(lambda w, i: ops.take(w, i, axis=0), [r(4, 3), ids], wrt=[0])
    _check(lambda w, i: ops.take(w, i, axis=1), [r(3, 4), ids], wrt=[0])


def test_reductions():
    x = r(3, 4)
    _check(lambda a: ops.sum(a, axis=1), [x])
    _check(lambda a: ops.sum(a), [x])
    _check(lambda a: ops.mean(a, axis=0, keepdims=True), [x])
    _check(lambda a: ops.mean(a, axis=-1), [x])
    _check(lambda a: ops.max(a, axis=1), [x])
    _check(lambda a: ops.min(a, axis=0), [x])
    _check(lambda a: ops.logsumexp(a, axis=1), [x])


def test_pad():
    _check(lambda a: ops.pad(a, [(0, 0), (2, 1)]), [r(2, 3)])


def test_dropout_gradient_uses_the_mask():
    """Dropout in training mode: d/dx = mask / (1 - rate); with a fixed seed the same mask is drawn every run."""
    import onnxruntime as ort

    g = GraphBuilder("drop")
    x = g.add_input("x", "float32", (None, 50))
    with graph_scope(g):
        y = ops.dropout(x, 0.4, seed=3)
        loss = ops.sum(y)
        with rules_used() as used:
            (dx,) = gradients(loss, [x])
    g.set_outputs([y, dx], ["y", "dx"])
    sess = ort.InferenceSession(g.to_model().SerializeToString(), providers=["CPUExecutionProvider"])
    xv = np.ones((4, 50), np.float32)
    yv, dxv = sess.run(None, {"x": xv})
    kept = yv != 0
    assert 0 < kept.mean() < 1
    np.testing.assert_allclose(dxv, np.where(kept, 1 / 0.6, 0.0), rtol=1e-6)
    VERIFIED.update(used)  # an exact check: the mask it drew is the derivative


def test_unknown_op_is_a_clear_error():
    g = GraphBuilder("bad")
    x = g.add_input("x", "float32", (None, 3))
    with graph_scope(g):
        y = g.emit("Hardmax", [x], {}, [("float32", x.shape)])[0]
        loss = ops.sum(ops.multiply(y, x))
        with pytest.raises(GradientError, match="Hardmax"):
            gradients(loss, [x])


def _rnn(x, h0, r, mask=None, go_backwards=False, return_sequences=True):
    """A SimpleRNN-like recurrence through core.ops.scan_rnn: h = tanh(x_t + h R)."""
    def step(inputs_t, states_t, consts):
        h = ops.tanh(ops.add(inputs_t[0], ops.matmul(states_t[0], consts[0])))
        return h, [h]

    last, seq, final = ops.scan_rnn(step, [x], [h0], output_size=3, mask=mask, go_backwards=go_backwards,
                                    return_sequences=return_sequences, constants=[r])
    return ops.add(ops.sum(seq, axis=1), ops.multiply(last, 2.0)) if seq is not None else last


def test_scan_recurrence():
    x, h0, rk = r(2, 4, 3), r(2, 3), r(3, 3) * 0.5
    _check(_rnn, [x, h0, rk])
    _check(lambda a, b, c: _rnn(a, b, c, go_backwards=True, return_sequences=False), [x, h0, rk])


def _rnn_output_apart(x, h0, r, mask=None, return_sequences=False):
    """A step whose output is not one of its states (a custom cell): the last output is then read from the
    recorded outputs, not from a final state."""
    def step(inputs_t, states_t, consts):
        h = ops.tanh(ops.add(inputs_t[0], ops.matmul(states_t[0], consts[0])))
        return ops.multiply(ops.sigmoid(h), h), [h]

    last, seq, final = ops.scan_rnn(step, [x], [h0], output_size=3, mask=mask, return_sequences=return_sequences,
                                    constants=[r])
    out = ops.add(last, ops.multiply(final[0], 0.5))
    return ops.add(out, ops.sum(seq, axis=1)) if seq is not None else out


def test_scan_step_whose_output_is_not_a_state():
    x, h0, rk = r(2, 4, 3), r(2, 3), r(3, 3) * 0.5
    _check(_rnn_output_apart, [x, h0, rk])
    _check(lambda a, b, c: _rnn_output_apart(a, b, c, return_sequences=True), [x, h0, rk])
    mask = np.array([[True, True, False, True], [False, True, True, True]])
    _check(lambda a, b, c, m: _rnn_output_apart(a, b, c, mask=m), [x, h0, rk, mask], wrt=[0, 1, 2])


def _gated(kind, x, h0, r, mask=None, return_sequences=False):
    """An LSTM- or GRU-shaped step through core.ops.scan_rnn (gates from one product, the cell state or the
    interpolation), whose derivative factors the Scan's gradient rewrites to reuse forward products."""
    from core.ops.rnn import split_last

    def lstm(inputs_t, states_t, consts):
        h, c = states_t
        i, f, g, o = split_last(ops.add(inputs_t[0], ops.matmul(h, consts[0])), [3, 3, 3, 3])
        i, f, g, o = ops.sigmoid(i), ops.sigmoid(f), ops.tanh(g), ops.sigmoid(o)
        c = ops.add(ops.multiply(f, c), ops.multiply(i, g))
        h = ops.multiply(o, ops.tanh(c))
        return h, [h, c]

    def gru(inputs_t, states_t, consts):
        h = states_t[0]
        xz, xr, xh = split_last(inputs_t[0], [3, 3, 3])
        hz, hr, hh = split_last(ops.matmul(h, consts[0]), [3, 3, 3])
        z, r_ = ops.sigmoid(ops.add(xz, hz)), ops.sigmoid(ops.add(xr, hr))
        cand = ops.tanh(ops.add(xh, ops.multiply(r_, hh)))
        h = ops.add(ops.multiply(z, h), ops.multiply(ops.subtract(1.0, z), cand))
        return h, [h]

    states = [h0, ops.multiply(h0, 0.5)] if kind == "lstm" else [h0]
    last, seq, _ = ops.scan_rnn(lstm if kind == "lstm" else gru, [x], states, output_size=3, mask=mask,
                                return_sequences=return_sequences, constants=[r])
    return ops.add(last, ops.sum(seq, axis=1)) if seq is not None else last


@pytest.mark.parametrize("in_forward", [False, True])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_gated_recurrences_with_factors_outside_or_in_the_forward_step(kind, in_forward):
    """Both places a Scan's gradient puts its derivative factors (between the loops for a GPU, in the forward step
    for a CPU), with the rewrites that reuse forward products (f·c₋₁, i·g, h = o·tanh(c), 1 - z, r·(hR))."""
    x, h0 = r(2, 4, 12 if kind == "lstm" else 9), r(2, 3)
    rk = r(3, 12 if kind == "lstm" else 9) * 0.5
    _check(lambda a, b, c: _gated(kind, a, b, c), [x, h0, rk], factors_in_forward=in_forward)
    mask = np.array([[True, True, False, True], [False, True, True, True]])
    _check(lambda a, b, c, m: _gated(kind, a, b, c, mask=m, return_sequences=True), [x, h0, rk, mask],
           wrt=[0, 1, 2], factors_in_forward=in_forward)


def test_scan_with_mask_and_dynamic_shapes():
    x, h0, rk = r(2, 4, 3), r(2, 3), r(3, 3) * 0.5
    mask = np.array([[True, True, False, True], [False, True, True, True]])
    _check(lambda a, b, c, m: _rnn(a, b, c, mask=m), [x, h0, rk, mask], wrt=[0, 1, 2])
    _check(_rnn, [x, h0, rk], dynamic=True)


@pytest.mark.parametrize("kwargs", [dict(), dict(strides=2), dict(padding="same"), dict(padding="same", strides=2),
                                    dict(dilation_rate=2), dict(padding="causal")])
def test_conv1d(kwargs):
    # ONNX Runtime has no double Conv kernel: float32, where a linear op's differences are still exact enough.
    _check(lambda x, w: ops.conv(x, w, **kwargs), [r(2, 7, 3), r(3, 3, 4)], dtype="float32", eps=1e-2, tol=2e-3)


def test_conv2d_and_dynamic_length():
    f32 = dict(dtype="float32", eps=1e-2, tol=2e-3)
    _check(lambda x, w: ops.conv(x, w, strides=(2, 1), padding="same"), [r(2, 5, 4, 2), r(3, 2, 2, 3)], **f32)
    _check(lambda x, w: ops.conv(x, w, padding="same"), [r(2, 6, 3), r(3, 3, 2)], dynamic=(0, 1), **f32)


@pytest.mark.parametrize("pool", ["max_pool", "average_pool"])
@pytest.mark.parametrize("kwargs", [dict(pool_size=2), dict(pool_size=3, strides=2, padding="same"),
                                    dict(pool_size=2, strides=1, padding="same")])
def test_pooling(pool, kwargs):
    x = r(2, 7, 3) + np.arange(7)[None, :, None] * 0.01  # no ties inside a window
    _check(lambda a: getattr(ops, pool)(a, **kwargs), [x], dtype="float32", eps=1e-3, tol=2e-3)


def _emit(op_type, attrs=None, n_out=1, shape_of_out=None):
    """A raw ONNX node on the inputs, for ops that core.ops does not expose directly."""
    def fn(*xs):
        g = xs[0].graph
        shape = shape_of_out(*xs) if shape_of_out else xs[0].shape
        return g.emit(op_type, list(xs), attrs or {}, [(xs[0].dtype, shape)] * n_out)[0]
    return fn


def test_variadic_sum_mean_flatten_and_sum_square():
    _check(lambda a, b, c: _emit("Sum", shape_of_out=lambda *x: (3, 4))(a, b, c), [r(3, 4), r(4), r(3, 1)])
    _check(lambda a, b: _emit("Mean", shape_of_out=lambda *x: (3, 4))(a, b), [r(3, 4), r(1, 4)],
           dtype="float32", eps=1e-2, tol=2e-3)  # no double Mean kernel in ONNX Runtime
    _check(_emit("Flatten", {"axis": 1}, shape_of_out=lambda x: (2, 12)), [r(2, 3, 4)])

    def sum_square(x):
        g = x.graph
        return g.emit("ReduceSumSquare", [x, g.constant(np.array([1], dtype=np.int64))], {"keepdims": 0},
                      [(x.dtype, (3,))])[0]

    _check(sum_square, [r(3, 4)])


def test_reduce_prod_with_and_without_zeros():
    x = r(3, 4, 2)
    x[1, 2, 0] = 0.0  # one zero in a group: only that element gets a gradient
    x[2, 0, 1] = x[2, 3, 1] = 0.0  # two zeros in a group: none does
    _check(lambda a: ops.prod(a, axis=1), [x])
    _check(lambda a: ops.prod(a, axis=(0, 2), keepdims=True), [x])


def test_split():
    def fn(x):
        g = x.graph
        a, b = g.emit("Split", [x, g.constant(np.array([1, 3], dtype=np.int64))], {"axis": 1},
                      [(x.dtype, (3, 1)), (x.dtype, (3, 3))])
        return ops.add(ops.multiply(a, 2.0), ops.sum(b, axis=1, keepdims=True))

    _check(fn, [r(3, 4)])


@pytest.mark.runs_after_modules(*CHECK_MODULES)
def test_every_rule_is_verified_by_a_check_that_ran():
    """A rule added without a finite-difference check fails here: the rules are those that this session's passing
    checks applied (here and in tests/core/test_conv_gradients.py), not a list written by hand."""
    from core.training.gradients import RULES

    missing = sorted(set(RULES) - VERIFIED)
    assert not missing, f"gradient rules that no passing check applied: {missing}"


@pytest.mark.parametrize("rank", [3, 4])
def test_a_bias_gradient_sums_sequences_by_a_product_and_images_by_reducesum(rank):
    # measured choices (gradients._sum_leading): ONNX Runtime runs images channels-first, where a ReduceSum needs
    # no transpose back; a sequence's bias sums faster as a row of ones times a matrix
    g = GraphBuilder("bias")
    x = g.add_input("x", "float32", (None,) + (5,) * (rank - 2) + (8,))
    b = g.add_input("b", "float32", (8,))
    with graph_scope(g):
        gradients(ops.sum(ops.multiply(ops.add(x, b), x)), [b])
    assert ("MatMul" in {n.op_type for n in g.nodes}) == (rank == 3)

"""Gradient rules of Conv, ConvTranspose, MaxPool and AveragePool against central finite differences.

ONNX Runtime's CPU Conv kernels are float32 only, so the checks run in float32. The convolutions are linear in each
argument, so a large step gives exact differences up to rounding; pooling inputs are spread apart so that a step
never changes which element wins a window.
"""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from gradient_coverage import VERIFIED, rules_used
from keras_reference import keras3  # noqa: F401  (a fixture)

import core as nw
from core import layers, ops
from core.graph import GraphBuilder, graph_scope
from core.ops.conv import _exact_conv_transpose, _phase_conv, _phase_plan
from core.training.autodiff import gradients

RNG = np.random.default_rng(11)


def _check(fn, arrays, *, eps, tol=2e-3, dynamic_axes=()):
    """loss = sum(fn(*inputs) * R); autodiff gradients of every input against finite differences."""
    arrays = [np.asarray(a, dtype="float32") for a in arrays]
    g = GraphBuilder("grad_test")
    ins = [g.add_input(f"x{i}", "float32", tuple(None if (i == 0 and ax in dynamic_axes) else d
                                                 for ax, d in enumerate(a.shape)))
           for i, a in enumerate(arrays)]
    with graph_scope(g):
        out = fn(*ins)
    probe = GraphBuilder("probe")
    probe_ins = [probe.add_input(f"x{i}", "float32", a.shape) for i, a in enumerate(arrays)]
    with graph_scope(probe):
        probe.set_outputs([fn(*probe_ins)], ["y"])
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    feeds = {t.name: a for t, a in zip(probe_ins, arrays)}
    y0 = ort.InferenceSession(probe.to_model().SerializeToString(), so,
                              providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    r = RNG.standard_normal(y0.shape).astype("float32")
    with graph_scope(g):
        loss = ops.sum(ops.multiply(out, g.constant(r)))
        with rules_used() as used:
            grads = gradients(loss, ins)
    g.set_outputs([loss] + grads, ["loss"] + [f"g{i}" for i in range(len(ins))])
    sess = ort.InferenceSession(g.to_model().SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [t.name for t in ins]
    res = sess.run(None, dict(zip(names, arrays)))
    for i, a in enumerate(arrays):
        numeric = np.zeros(a.size, dtype="float64")
        for j in range(a.size):
            vals = []
            for step in (eps, -eps):
                pert = [b.copy() for b in arrays]
                pert[i].reshape(-1)[j] += step
                vals.append(float(sess.run(["loss"], dict(zip(names, pert)))[0]))
            numeric[j] = (vals[0] - vals[1]) / (2 * eps)
        scale = max(1.0, float(np.abs(numeric).max()))
        np.testing.assert_allclose(res[1 + i].reshape(-1), numeric, atol=tol * scale, rtol=tol,
                                   err_msg=f"gradient of input {i}")
    VERIFIED.update(used)


def _r(*shape):
    return RNG.standard_normal(shape)


def _spread(*shape):
    """Values at least 0.05 apart, shuffled, so max pooling has no near-ties."""
    return RNG.permutation(np.arange(int(np.prod(shape))) * 0.05 - 1.0).reshape(shape)


CONV_CASES = [
    (dict(), (2, 7, 3), (3, 3, 4), ()),
    (dict(padding="same"), (2, 7, 3), (4, 3, 2), ()),
    (dict(padding="causal", dilation_rate=2), (1, 8, 2), (3, 2, 3), ()),
    (dict(strides=2), (2, 8, 3), (3, 3, 2), ()),  # the last step is read by no window
    (dict(strides=3, padding="same"), (2, 8, 2), (4, 2, 3), ()),
    (dict(strides=2, padding="same"), (2, 9, 2), (3, 2, 3), (1,)),  # SAME_UPPER on an unknown length
    (dict(strides=2, padding="same"), (2, 8, 2), (4, 2, 3), (1,)),
    (dict(padding="same"), (1, 6, 4), (3, 2, 4), ()),  # groups=2
    (dict(strides=(2, 1), padding="same"), (1, 5, 4, 2), (3, 2, 2, 3), ()),
    (dict(dilation_rate=(1, 2)), (1, 5, 6, 2), (2, 2, 2, 2), (1, 2)),
    # the weight gradient takes one window per kernel offset, offsets in row-major order over every spatial axis
    (dict(dilation_rate=(2, 1), padding="same"), (2, 6, 7, 2), (3, 2, 2, 3), (1, 2)),
    (dict(strides=(1, 2, 1)), (1, 4, 5, 3, 2), (2, 3, 2, 2, 2), ()),
    # unknown lengths with strides: the input gradient is made for the longest input and cut to x's length
    (dict(strides=2), (2, 9, 3), (3, 3, 2), (1,)),
    (dict(strides=3, padding="causal"), (1, 8, 2), (2, 2, 3), (1,)),
    (dict(strides=2, padding="same"), (1, 6, 4), (4, 1, 8), ()),  # depthwise-like: groups=4
    # a strided last axis: its phases read side by side with the channels in the weight gradient
    (dict(strides=(1, 2), padding="same"), (1, 4, 7, 2), (2, 3, 2, 3), ()),
    (dict(strides=3), (2, 10, 2), (2, 2, 3), ()),  # a kernel shorter than the stride
]


@pytest.mark.parametrize("kwargs,x_shape,w_shape,dynamic", CONV_CASES, ids=[str(c[0]) for c in CONV_CASES])
def test_conv_gradients(kwargs, x_shape, w_shape, dynamic):
    _check(lambda x, w: ops.conv(x, w, **kwargs), [_r(*x_shape), _r(*w_shape)], eps=0.5, dynamic_axes=dynamic)


@pytest.mark.parametrize("kwargs,x_shape,w_shape", [
    (dict(), (2, 4, 3), (3, 2, 3)),
    (dict(strides=2, padding="same"), (2, 4, 3), (3, 2, 3)),
    (dict(strides=3), (1, 3, 2), (2, 2, 2)),  # kernel shorter than the stride: output_padding
    (dict(strides=3, padding="same", output_padding=1), (2, 3, 2), (4, 3, 2)),
    (dict(strides=2, padding="same"), (1, 3, 3, 2), (3, 3, 2, 2)),
    (dict(padding="same"), (2, 5, 3), (3, 1, 3)),  # one filter: kept as ConvTranspose, a one-channel gradient
    (dict(strides=2, padding="same"), (2, 4, 2), (5, 3, 2)),  # done as a phase-split Conv
])
def test_conv_transpose_gradients(kwargs, x_shape, w_shape):
    _check(lambda x, w: ops.conv_transpose(x, w, **kwargs), [_r(*x_shape), _r(*w_shape)], eps=0.5)


def _full_conv_transpose(x, w, strides, dilations, groups):
    node = onnx.helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=list(strides),
                                 dilations=list(dilations), group=groups)
    graph = onnx.helper.make_graph([node], "full", [
        onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, x.shape),
        onnx.helper.make_tensor_value_info("w", onnx.TensorProto.FLOAT, w.shape)],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)], ir_version=9)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x, "w": w})[0]


TRANSPOSED_AS_CONV_CASES = [
    # (x shape, w shape, strides, dilations, begins, extents, groups): extents below, at and beyond the full length
    *[((2, 3, 5), (3, 2, k), (s,), (d,), (b,), (e,), 1)
      for k, s, d, b, e in [(1, 1, 1, 0, 1), (3, 1, 1, 1, 1), (3, 1, 2, 4, 1), (4, 1, 2, 2, 5), (7, 2, 1, 2, 5),
                            (7, 2, 1, 0, 9), (2, 3, 1, 0, 2), (2, 3, 1, 1, 4), (4, 3, 1, 2, 1), (3, 2, 2, 3, 3),
                            (5, 3, 2, 0, 10), (1, 2, 1, 0, 2), (3, 2, 1, 1, 1), (1, 2, 1, 1, 1),
                            (2, 3, 1, 0, 8)]],
    ((2, 4, 5), (4, 3, 3), (2,), (1,), (1,), (2,), 2),
    ((2, 4, 5), (4, 1, 3), (1,), (2,), (1,), (3,), 4),
    ((2, 3, 4, 5), (3, 2, 3, 2), (2, 3), (1, 1), (1, 0), (2, 3), 1),
    ((1, 2, 3, 4, 3), (2, 2, 2, 3, 2), (1, 2, 2), (1, 1, 1), (0, 1, 0), (2, 2, 3), 1),
]


def _phase_split(x, w, strides, dilations, begins, extents, groups, channels_last, crop_to, weave_first=False):
    plan = [_phase_plan(*a) for a in zip(w.shape[2:], strides, dilations, begins, extents)]
    if any(p is None for p in plan):
        return None
    return _phase_conv(x, w, strides, plan, groups, channels_last, crop_to, weave_first)


def _phase_split_woven_first(*args):
    return _phase_split(*args, weave_first=True)


@pytest.mark.parametrize("make", [_phase_split, _phase_split_woven_first, _exact_conv_transpose])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("x_shape,w_shape,strides,dilations,begins,extents,groups", TRANSPOSED_AS_CONV_CASES)
def test_transposed_conv_ways_equal_conv_transpose(x_shape, w_shape, strides, dilations, begins, extents, groups,
                                                   channels_last, make):
    """Both ways `transposed_conv` picks between (the phase-split stride-1 Conv; ConvTranspose with pads and
    output_padding) give ConvTranspose's full result cut at `begins`, (L - 1) * stride + extent long (zero beyond
    the full length), for known and unknown lengths."""
    x, w = _r(*x_shape).astype("float32"), _r(*w_shape).astype("float32")
    full = _full_conv_transpose(x, w, strides, dilations, groups)
    lengths = [(n - 1) * s + e for n, s, e in zip(x_shape[2:], strides, extents)]
    expected = np.zeros(full.shape[:2] + tuple(lengths), "float32")
    kept = tuple(slice(b, min(b + n, f)) for b, n, f in zip(begins, lengths, full.shape[2:]))
    expected[(..., *[slice(0, k.stop - k.start) for k in kept])] = full[(..., *kept)]
    if channels_last:
        expected = np.moveaxis(expected, 1, -1)
    for dynamic in (False, True):
        g = GraphBuilder("phases")
        xt = g.add_input("x", "float32", x_shape[:2] + ((None,) * (len(x_shape) - 2) if dynamic else x_shape[2:]))
        wt = g.add_input("w", "float32", w_shape)
        with graph_scope(g):
            y = make(xt, wt, strides, dilations, begins, extents, groups, channels_last, None)
        if y is None:
            assert make is not _exact_conv_transpose and begins[0] > 0
            return
        g.set_outputs([y], ["y"])
        assert ("ConvTranspose" in {n.op_type for n in g.nodes}) == (make is _exact_conv_transpose)
        got = ort.InferenceSession(g.to_model().SerializeToString(), providers=["CPUExecutionProvider"]).run(
            None, {"x": x, "w": w})[0]
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-4)


@pytest.mark.parametrize("channels,filters,op_type", [(3, 4, "Conv"), (8, 2, "Conv"), (2, 8, "ConvTranspose")])
def test_transposed_conv_picks_the_smaller_buffer(channels, filters, op_type):
    """A convolution's input gradient (filters -> channels, kernel 3, stride 2: 2 taps per phase) is a Conv where the
    phases' input (filters x 2) is no larger than ConvTranspose's products (channels x 3), else a ConvTranspose;
    either way no Pad fits it to x."""
    g = GraphBuilder("dx")
    x = g.add_input("x", "float32", (2, 8, channels))
    with graph_scope(g):
        w = g.constant(_r(3, channels, filters).astype("float32"))
        before = len(g.nodes)
        dx = gradients(ops.sum(ops.conv(x, w, strides=2, padding="same")), [x])[0]
    made = {n.name: n for n in g.nodes[before:]}
    producers = {o: n for n in made.values() for o in n.outputs}
    path, name = set(), dx.name
    while name in producers and producers[name].op_type not in ("Conv", "ConvTranspose"):
        path.add(producers[name].op_type)
        name = producers[name].inputs[0]
    assert producers[name].op_type == op_type and "Pad" not in path


@pytest.mark.parametrize("strides,dilations,pads,dynamic,kernel", [
    ((2,), (3,), ([1], [2]), False, (3,)),  # dilated and strided: taps 0, 3, 6 fall in phases 0, 1, 0
    ((3,), (1,), ([0], [0]), False, (3,)),
    ((1, 2), (2, 1), ([1, 0], [0, 1]), False, (3, 3)),
    ((2,), (1,), ([1], [0]), True, (3,)),  # the last length unknown: strided windows, one per tap
    ((1,), (1,), ([8], [8]), True, (17,)),  # one channel: 17 windows side by side, a wide product
])
# 3 and 1 channels: narrow windows side by side in one product; 16: a product per offset (both per sample, summed)
@pytest.mark.parametrize("channels", [3, 1, 16])
def test_weight_gradient_correlation(strides, dilations, pads, dynamic, kernel, channels):
    """conv_gradients._correlate against numpy: sum over batch and positions of the output gradient times the
    padded input's window at each kernel offset."""
    from core.training.conv_gradients import _correlate

    r = len(strides)
    x = _r(2, channels, *[9] * r).astype("float32")
    padded = np.pad(x, [(0, 0), (0, 0)] + list(zip(*pads)))
    outs = [(n + b + e - d * (k - 1) - 1) // s + 1
            for n, b, e, d, k, s in zip(x.shape[2:], *pads, dilations, kernel, strides)]
    dy = _r(2, 4, *outs).astype("float32")
    expected = np.zeros((4, channels) + kernel, "float32")
    for offset in np.ndindex(*kernel):
        window = padded[(..., *[slice(o * d, o * d + (n - 1) * s + 1, s)
                                 for o, d, n, s in zip(offset, dilations, outs, strides)])]
        expected[(..., *offset)] = np.tensordot(dy, window, axes=([0] + list(range(2, 2 + r)),) * 2)
    g = GraphBuilder("corr")
    xt = g.add_input("x", "float32", x.shape[:2] + ((None,) * r if dynamic else x.shape[2:]))
    dt = g.add_input("dy", "float32", dy.shape[:2] + ((None,) * r if dynamic else dy.shape[2:]))
    with graph_scope(g):
        out = _correlate(g, xt, (list(pads[0]), list(pads[1])), dt, kernel, list(strides), list(dilations))
    g.set_outputs([out], ["out"])
    got = ort.InferenceSession(g.to_model().SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x, "dy": dy})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_depthwise_and_separable_gradients():
    _check(lambda x, w: ops.depthwise_conv(x, w, padding="same"), [_r(2, 6, 3), _r(3, 3, 2)], eps=0.5)
    _check(lambda x, d, p: ops.separable_conv(x, d, p, strides=2), [_r(1, 7, 2), _r(3, 2, 2), _r(1, 4, 3)],
           eps=0.5, tol=5e-3)


@pytest.mark.parametrize("pool", ["max_pool", "average_pool"])
@pytest.mark.parametrize("kwargs,shape,dynamic", [
    (dict(pool_size=2), (2, 7, 3), ()),
    (dict(pool_size=3, strides=1), (1, 6, 2), ()),
    (dict(pool_size=3, strides=2, padding="same"), (2, 8, 2), ()),
    (dict(pool_size=3, strides=2, padding="same"), (2, 7, 2), (1,)),  # SAME_UPPER on an unknown length
    (dict(pool_size=(2, 3), strides=(1, 2), padding="same"), (1, 4, 5, 2), ()),
])
def test_pooling_gradients(pool, kwargs, shape, dynamic):
    _check(lambda x: getattr(ops, pool)(x, **kwargs), [_spread(*shape)], eps=1e-2, dynamic_axes=dynamic)


def test_a_conv_model_trains():
    """Embedding -> Conv1D -> MaxPooling1D -> GlobalAveragePooling1D -> Dense learns a task that needs the
    convolution (is a given pair of tokens adjacent?); the loss falls well below chance."""
    rng = np.random.default_rng(0)
    x = rng.integers(3, 10, size=(256, 12))
    y = np.zeros((256, 1), "float32")
    for row, label in zip(x, y):
        if rng.random() < 0.5:
            t = rng.integers(0, 11)
            row[t], row[t + 1] = 1, 2
            label[0] = 1.0
    inputs = nw.Input(shape=(12,), dtype="int32")
    h = layers.Embedding(10, 8)(inputs)
    h = layers.Conv1D(16, 2, padding="same", activation="relu")(h)
    h = layers.MaxPooling1D(2, padding="same")(h)
    h = layers.GlobalMaxPooling1D()(h)
    model = nw.Model(inputs, layers.Dense(1, activation="sigmoid")(h))
    model.compile(optimizer=nw.optimizers.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=10, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.05 < 0.5 < history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.98


def test_conv_training_follows_keras(keras3):
    """The same conv/pool model, the same initial weights, SGD without shuffling: Netweaver's weights after three
    epochs equal Keras 3's, so every gradient rule on the way agrees with TensorFlow's."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((48, 11, 3)).astype("float32")
    y = rng.standard_normal((48, 2)).astype("float32")

    def build(lib):
        L = lib.layers
        inputs = lib.Input(shape=(11, 3))
        h = L.Conv1D(4, 3, strides=2, padding="same", activation="tanh")(inputs)
        h = L.Conv1D(5, 2, padding="causal", dilation_rate=2)(h)
        h = L.MaxPooling1D(2, padding="same")(h)
        h = L.AveragePooling1D(2, strides=1, padding="same")(h)
        h = L.Conv1DTranspose(3, 3, strides=2)(h)
        h = L.GlobalAveragePooling1D()(h)
        return lib.Model(inputs, L.Dense(2)(h))

    ref = build(keras3)
    ours = build(nw)
    ours.set_weights(ref.get_weights())
    for model, lib in ((ref, keras3), (ours, nw)):
        model.compile(optimizer=lib.optimizers.SGD(0.1), loss="mse")
    expected = ref.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0).history["loss"]
    got = ours.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    for a, b in zip(ours.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("make,shape", [
    (lambda: layers.UpSampling2D((2, 3), interpolation="bilinear"), (1, 3, 2, 2)),
    (lambda: layers.UpSampling2D((3, 1)), (1, 2, 3, 2)),
    (lambda: layers.UpSampling1D(2), (2, 3, 2)),
    (lambda: layers.Cropping2D(((1, 0), (0, 1))), (1, 3, 4, 2)),
    (lambda: layers.ZeroPadding1D((2, 1)), (2, 3, 2)),
])
def test_reshaping_layers_differentiate(make, shape):
    layer = make()
    _check(lambda x: layer(x), [_r(*shape)], eps=0.5, dynamic_axes=(1,))

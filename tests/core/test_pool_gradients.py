"""MaxPool's gradient rule (core.training.pool_gradients): the gradient of each window goes to its FIRST maximum in
scanning order, as in TensorFlow (tests/interop/test_pool_gradients_tf.py compares with TensorFlow itself).

Inputs here hold ties on purpose (ReLU-like zeros and small integers): a rule that splits the gradient between tied
positions, or gives it to the last one, gets other numbers. Windows that do not overlap take the path without
indices; overlapping ones keep the Indices + ScatterElements path; both must agree with the reference.
"""

import itertools

import numpy as np
import onnxruntime as ort
import pytest

from test_conv_gradients import _check, _spread

from core import ops
from core.graph import GraphBuilder, graph_scope
from core.training.autodiff import gradients

RNG = np.random.default_rng(16)


def tied(*shape):
    """Small integers, a third of them zero: most windows hold a tie, many an all-zero one."""
    return np.maximum(RNG.integers(-2, 3, size=shape), 0).astype("float32")


def pool_gradient(x, dy, unknown=(), **kwargs):
    """(dx, op types of the graph) for loss = sum(max_pool(x, **kwargs) * dy), channels last; the axes in `unknown`
    have no length while the graph is built."""
    g = GraphBuilder("max_pool_gradient")
    xt = g.add_input("x", "float32", tuple(None if a in unknown else n for a, n in enumerate(x.shape)))
    dyt = g.add_input("dy", "float32", dy.shape)
    with graph_scope(g):
        y = ops.max_pool(xt, **kwargs)
        loss = ops.sum(ops.multiply(y, dyt))
        dx, = gradients(loss, [xt])
    g.set_outputs([y, dx], ["y", "dx"])
    model = g.to_model()
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    y_out, dx_out = sess.run(None, {"x": x, "dy": dy})
    assert y_out.shape == dy.shape, (y_out.shape, dy.shape)
    return dx_out, [n.op_type for n in model.graph.node]


def first_maximum_reference(x, dy, pool_size, strides, padding):
    """TensorFlow's rule written out: each window (padding excluded) sends dy to its first maximum, windows visited
    one by one and their positions in row-major order; shared positions add up. Channels last."""
    spatial = x.shape[1:-1]
    outs, begins = [], []
    for n, k, s in zip(spatial, pool_size, strides):
        if padding == "valid":
            outs.append((n - k) // s + 1), begins.append(0)
        else:
            out = -(-n // s)
            outs.append(out), begins.append(max((out - 1) * s + k - n, 0) // 2)
    dx = np.zeros_like(x)
    for o in itertools.product(*map(range, outs)):
        starts = [i * s - b for i, s, b in zip(o, strides, begins)]
        window = [p for p in itertools.product(*[range(st, st + k) for st, k in zip(starts, pool_size)])
                  if all(0 <= q < n for q, n in zip(p, spatial))]
        values = np.stack([x[(slice(None),) + p] for p in window])  # (positions, batch, channels)
        first = np.argmax(values == values.max(axis=0), axis=0)  # argmax returns the first True
        for j, p in enumerate(window):
            dx[(slice(None),) + p] += np.where(first == j, dy[(slice(None),) + o], 0)
    return dx


CASES = [
    # (pool_size, strides, padding, input shape): windows that tile, that leave steps over, that need padding
    ((2,), None, "valid", (3, 9, 4)),
    ((3,), None, "same", (2, 10, 3)),
    ((2, 2), None, "valid", (2, 6, 6, 3)),
    ((2, 2), None, "valid", (2, 7, 5, 3)),  # a leftover row and column: no window reads them
    ((2, 3), None, "same", (2, 5, 7, 2)),  # padding after, and (3) before and after
    ((3, 3), None, "same", (1, 7, 8, 2)),
    ((2, 2, 2), None, "valid", (2, 4, 5, 4, 2)),
    ((2, 2, 2), None, "same", (1, 3, 4, 5, 2)),
    # overlapping windows (the Indices path): shared maxima add up
    ((3,), (2,), "valid", (2, 9, 3)),
    ((3, 3), (2, 2), "same", (2, 7, 6, 2)),
    ((2, 2), (1, 1), "valid", (2, 5, 5, 2)),
    ((2, 3, 2), (1, 2, 1), "same", (1, 4, 5, 3, 2)),
]


@pytest.mark.parametrize("pool_size,strides,padding,shape", CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES])
def test_gradient_goes_to_the_first_maximum(pool_size, strides, padding, shape):
    x = tied(*shape)
    strides_ = strides or pool_size
    outs = [(n - k) // s + 1 if padding == "valid" else -(-n // s) for n, k, s in zip(shape[1:-1], pool_size, strides_)]
    dy = RNG.standard_normal((shape[0], *outs, shape[-1])).astype("float32")
    dx, op_types = pool_gradient(x, dy, pool_size=pool_size, strides=strides, padding=padding)
    np.testing.assert_array_equal(dx, first_maximum_reference(x, dy, pool_size, strides_, padding))
    overlapping = strides is not None and strides != pool_size
    assert ("ScatterElements" in op_types) == overlapping, op_types


def test_tiling_windows_leave_the_forward_node_without_indices():
    """ONNX Runtime runs MaxPool on its fast path only without the second output."""
    x = tied(2, 6, 6, 3)
    g = GraphBuilder("no_indices")
    xt = g.add_input("x", "float32", x.shape)
    with graph_scope(g):
        y = ops.max_pool(xt, pool_size=2)
        gradients(ops.sum(y), [xt])
    pools = [n for n in g.nodes if n.op_type == "MaxPool"]
    assert len(pools) == 1 and len(pools[0].outputs) == 1, [(n.op_type, n.outputs) for n in pools]


def test_unknown_batch_and_every_window_tied():
    """An all-zero input (a dead ReLU): every position ties and the first of each window takes the gradient."""
    x = np.zeros((3, 4, 6, 2), "float32")
    dy = RNG.standard_normal((3, 2, 3, 2)).astype("float32")
    dx, _ = pool_gradient(x, dy, unknown=(0,), pool_size=2)
    expected = np.zeros_like(x)
    expected[:, ::2, ::2] = dy
    np.testing.assert_array_equal(dx, expected)


def test_unknown_lengths_take_the_indices():
    """Without the spatial lengths the leftover steps are unknown while building: the Indices path, same numbers."""
    x = tied(2, 9, 3)
    dy = RNG.standard_normal((2, 4, 3)).astype("float32")
    dx, op_types = pool_gradient(x, dy, unknown=(0, 1), pool_size=2)
    np.testing.assert_array_equal(dx, first_maximum_reference(x, dy, (2,), (2,), "valid"))
    assert "ScatterElements" in op_types


def test_negative_inputs_with_same_padding():
    """Padding never wins, even where every real value of a window is below zero."""
    x = -tied(2, 5, 5, 2) - 1.0
    dy = RNG.standard_normal((2, 3, 3, 2)).astype("float32")
    dx, _ = pool_gradient(x, dy, pool_size=2, padding="same")
    np.testing.assert_array_equal(dx, first_maximum_reference(x, dy, (2, 2), (2, 2), "same"))
    assert dx[0, 4, 4, 0] == dy[0, 2, 2, 0]  # the window's only real position


@pytest.mark.parametrize("kwargs,shape", [
    (dict(pool_size=2), (2, 7, 3)),
    (dict(pool_size=3, padding="same"), (2, 8, 2)),
    (dict(pool_size=(2, 3), padding="same"), (1, 5, 7, 2)),
    (dict(pool_size=(2, 2, 2)), (1, 4, 5, 4, 2)),
])
def test_finite_differences(kwargs, shape):
    _check(lambda x: ops.max_pool(x, **kwargs), [_spread(*shape)], eps=1e-2, dynamic_axes=(0,))


def test_a_node_with_another_auto_pad_keeps_the_indices():
    """A MaxPool node that core.ops never records (auto_pad='VALID', channels first, as in a graph built elsewhere)
    still differentiates, through its Indices."""
    x = tied(2, 3, 5, 4)  # NCHW
    dy = RNG.standard_normal((2, 3, 2, 2)).astype("float32")
    g = GraphBuilder("auto_pad_valid")
    xt = g.add_input("x", "float32", x.shape)
    with graph_scope(g):
        y = g.emit("MaxPool", [xt], {"kernel_shape": [2, 2], "strides": [2, 2], "auto_pad": "VALID"},
                   [("float32", dy.shape)])[0]
        dx, = gradients(ops.sum(ops.multiply(y, g.constant(dy))), [xt])
    g.set_outputs([dx], ["dx"])
    got = ort.InferenceSession(g.to_model().SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    last = (0, 2, 3, 1)
    want = first_maximum_reference(x.transpose(last), dy.transpose(last), (2, 2), (2, 2), "valid")
    np.testing.assert_array_equal(got, want.transpose(0, 3, 1, 2))

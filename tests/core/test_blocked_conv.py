"""core.training.blocked_conv: a CPU step graph's 2-D convolutions in ONNX Runtime's blocked layout give the
numbers of the standard Conv and ConvTranspose they replace, and only convolutions that can run blocked change."""

import platform

import numpy as np
import onnxruntime as ort
import pytest

import core as nw
from core.graph import GraphBuilder
from core.training import blocked_conv, step_graph
from core.training.blocked_conv import NCHWC_DOMAIN, _rewrite, declare_nchwc_domain, nchwc_block_size

RNG = np.random.default_rng(5)
BLOCK = nchwc_block_size()
X86 = platform.machine().lower() in ("x86_64", "amd64")
needs_block = pytest.mark.skipif(BLOCK is None, reason="no blocked convolutions in this ONNX Runtime on this CPU: "
                                 "graphs keep their standard ops (test_a_graph_for_no_usable_block_is_left_alone)")


def _run(g: GraphBuilder, feeds):
    model = g.to_model()
    declare_nchwc_domain(model)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)


def _graph(op_type, x_shape, w_shape, attrs, y_shape):
    g = GraphBuilder("blocked")
    x, w = g.add_input("x", "float32", x_shape), g.add_input("w", "float32", w_shape)
    y = g.emit(op_type, [x, w], attrs, [("float32", y_shape)])[0]
    g.set_outputs([g.emit("Relu", [y], {}, [("float32", y_shape)])[0]], ["y"])  # a reader of the rewritten output
    return g


def test_the_block_is_found_on_this_cpu():
    """ONNX Runtime's x86-64 builds have the blocked kernels, with a channel block of 8 (AVX2) or 16 (AVX-512)
    floats; elsewhere a block, if any, is a whole number of 4-float vectors."""
    assert BLOCK in (8, 16) if X86 else BLOCK is None or BLOCK % 4 == 0


# (op, channels in and out as multiples of the block, input spatial size, attrs, output spatial size)
CASES = [
    ("Conv", (2, 1), (7, 6), {"kernel_shape": [3, 3]}, (5, 4)),
    ("Conv", (1, 2), (7, 6), {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 0, 1, 1]}, (4, 6)),
    ("Conv", (1, 1), (7, 7), {"kernel_shape": [3, 3], "dilations": [2, 1], "pads": [2, 1, 2, 1]}, (7, 7)),
    ("ConvTranspose", (2, 1), (5, 4), {"kernel_shape": [3, 3]}, (7, 6)),  # a 'valid' convolution's input gradient
    ("ConvTranspose", (1, 2), (5, 5), {"kernel_shape": [3, 3], "pads": [1, 0, 0, 2]}, (6, 5)),
    ("ConvTranspose", (1, 1), (5, 5), {"kernel_shape": [2, 3], "dilations": [2, 1], "pads": [1, 1, 1, 1]}, (5, 5)),
]


@needs_block
@pytest.mark.parametrize("op_type,blocks,size,attrs,out_size", CASES)
def test_blocked_convolution_equals_the_standard_op(op_type, blocks, size, attrs, out_size):
    c_in, c_out = (b * BLOCK for b in blocks)
    kernel = tuple(attrs["kernel_shape"])
    w_shape = ((c_out, c_in) if op_type == "Conv" else (c_in, c_out)) + kernel
    g = _graph(op_type, (2, c_in) + size, w_shape, attrs, (2, c_out) + out_size)
    feeds = {"x": RNG.standard_normal((2, c_in) + size).astype(np.float32),
             "w": RNG.standard_normal(w_shape).astype(np.float32)}
    expected = _run(g, feeds)[0]
    assert expected.shape == (2, c_out) + out_size
    assert _rewrite(g, BLOCK) == 1
    assert [n.op_type for n in g.nodes if n.domain == NCHWC_DOMAIN] == ["ReorderInput", "Conv", "ReorderOutput"]
    assert not any(n.op_type == op_type and not n.domain for n in g.nodes)
    np.testing.assert_allclose(_run(g, feeds)[0], expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("op_type,x_shape,w_shape,attrs", [
    ("Conv", (2, 3, 6, 6), (16, 3, 3, 3), {"kernel_shape": [3, 3]}),  # 3 input channels: not whole blocks
    ("Conv", (2, 32, 6, 6), (16, 16, 3, 3), {"kernel_shape": [3, 3], "group": 2}),
    ("Conv", (2, 16, 6), (16, 16, 3), {"kernel_shape": [3]}),  # 1-D
    ("Conv", (2, 16, 6, 6), (16, 16, 3, 3), {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ("ConvTranspose", (2, 16, 6, 6), (16, 16, 3, 3), {"kernel_shape": [3, 3], "strides": [2, 2]}),
    ("ConvTranspose", (2, 16, 6, 6), (16, 16, 3, 3), {"kernel_shape": [3, 3], "pads": [3, 0, 0, 0]}),
])
def test_other_convolutions_keep_their_standard_op(op_type, x_shape, w_shape, attrs):
    g = _graph(op_type, x_shape, w_shape, attrs, (2, 16) + (None,) * (len(x_shape) - 2))
    before = [(n.op_type, n.domain) for n in g.nodes]
    assert _rewrite(g, 16) == 0 and _rewrite(g, 8) == 0
    assert [(n.op_type, n.domain) for n in g.nodes] == before


@needs_block
def test_training_step_runs_its_convolutions_blocked_and_trains_the_same(monkeypatch):
    """A Conv2D model's CPU training step holds the blocked convolution for the forward pass and the input
    gradient, and trains to the same weights and evaluates to the same loss as the step graphs with standard
    ops."""
    def build():
        L = nw.layers
        model = nw.Sequential([L.Input((6, 6, 16)), L.Conv2D(16, 3, padding="same", activation="relu"),
                               L.Conv2D(16, 3, strides=2, activation="relu"),
                               L.Conv2DTranspose(16, 3, strides=2, padding="same"), L.Flatten(), L.Dense(2)])
        model.compile(optimizer=nw.optimizers.SGD(0.05), loss="mse")  # Adam would magnify rounding noise
        return model

    x = RNG.standard_normal((16, 6, 6, 16)).astype(np.float32)
    y = RNG.standard_normal((16, 2)).astype(np.float32)
    blocked = build()
    plain = build()
    plain.set_weights(blocked.get_weights())
    blocked.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    proto = blocked._train_state["train"].program.model_proto
    convs = [(n.op_type, n.domain) for n in proto.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    # the two convolutions, the transposed one (a Conv over its 4 phases), and the input gradients of the strided
    # convolution (the same) and of the transposed one (a strided Conv); the first layer's input needs none
    assert convs == [("Conv", NCHWC_DOMAIN)] * 5, convs

    with monkeypatch.context() as patch:
        patch.setattr(step_graph, "block_convolutions", lambda g: 0)
        plain.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        plain_loss = plain.evaluate(x, y, batch_size=8, verbose=0)
    proto = plain._train_state["train"].program.model_proto
    assert not any(n.domain == NCHWC_DOMAIN for n in proto.graph.node)
    for a, b in zip(blocked.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    blocked_loss = blocked.evaluate(x, y, batch_size=8, verbose=0)
    assert any(n.domain == NCHWC_DOMAIN for n in blocked._train_state["eval"].program.model_proto.graph.node)
    np.testing.assert_allclose(blocked_loss, plain_loss, rtol=1e-5)


def test_a_graph_for_no_usable_block_is_left_alone(monkeypatch):
    monkeypatch.setattr(blocked_conv, "nchwc_block_size", lambda: None)
    g = _graph("Conv", (2, 16, 6, 6), (16, 16, 3, 3), {"kernel_shape": [3, 3]}, (2, 16, 4, 4))
    assert blocked_conv.block_convolutions(g) == 0
    assert not any(n.domain for n in g.nodes)

"""2-D convolutions of a CPU step graph in ONNX Runtime's blocked channel layout (NCHWc).

For inference ONNX Runtime rewrites a Conv whose weight is an initializer into its `com.microsoft.nchwc` ops
(`NchwcTransformer`): the input reordered to channel blocks (ReorderInput), a blocked convolution whose weight it
reorders once while loading, and the result reordered back (ReorderOutput). A training step's weights are graph
inputs, so it never does, and every convolution and input gradient runs as im2col and a product per image, slow
for the small images of a convnet. `block_convolutions` writes the same ops into the step graph itself, the weight
reorder included as a Reshape and a Transpose of the weight (a few thousand values, every step). A stride-1
ConvTranspose (a convolution's input gradient) becomes a blocked Conv of the output gradient with the kernel
flipped and its channels swapped. Measured in turns on the keras-io MNIST convnet (profiled per node, two threads):
Conv2D(64, 3) over 13 x 13 x 32 from 3.7-4.0 to 2.6-3.0 ms a step, its input gradient from 4.9-5.1 to 2.9-3.1 ms;
the reorders cost 0.1-0.2 ms each.

The channel block is MLAS's vector width (16 floats with AVX-512, 8 with AVX2), which ONNX Runtime does not
report: `nchwc_block_size` asks ReorderInput, which pads channels to a whole block, and then checks a blocked
convolution with a weight reordered here against the plain Conv on this CPU, once per process. Where any of that
fails (another ONNX Runtime build, a CPU without the blocked kernels) the graph keeps its standard ops. Only
convolutions whose input and output channels are whole blocks are rewritten (ONNX Runtime treats the others,
such as a first layer on 1 or 3 channels, differently; those stay as they are).
"""

from __future__ import annotations

import functools

import numpy as np

from core.graph import GraphBuilder, OpNode
from core.ops.array import _i64

NCHWC_DOMAIN = "com.microsoft.nchwc"


@functools.cache
def nchwc_block_size() -> int | None:
    """The channel block of ONNX Runtime's blocked convolutions on this CPU, or None where they cannot be used."""
    try:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 4
        options.intra_op_num_threads = 1

        def run(g: GraphBuilder, feeds):
            model = g.to_model()
            declare_nchwc_domain(model)
            session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
            return session.run(None, feeds)

        probe = GraphBuilder("nchwc_probe")
        x = probe.add_input("x", "float32", (1, 4, 1, 1))
        probe.set_outputs(probe.emit("ReorderInput", [x], {}, [("float32", (1, None, 1, 1))], domain=NCHWC_DOMAIN),
                          ["y"])
        block = run(probe, {"x": np.zeros((1, 4, 1, 1), np.float32)})[0].shape[1]
        if block < 4 or block % 4:
            return None
        rng = np.random.default_rng(0)
        feeds = {"x": rng.standard_normal((1, block, 5, 5)).astype(np.float32),
                 "w": rng.standard_normal((block, block, 3, 3)).astype(np.float32)}
        check = GraphBuilder("nchwc_check")
        x, w = check.add_input("x", "float32", (1, block, 5, 5)), check.add_input("w", "float32", (block,) * 2 + (3, 3))
        outs = [check.emit("Conv", [x, w], {"kernel_shape": [3, 3], "strides": [2, 1], "pads": [1, 0, 0, 1]},
                           [("float32", (1, block, 2, 4))])[0],
                check.emit("ConvTranspose", [x, w], {"kernel_shape": [3, 3], "pads": [1, 2, 0, 1]},
                           [("float32", (1, block, 6, 4))])[0]]
        check.set_outputs(outs, ["conv", "conv_transpose"])
        plain = run(check, feeds)
        if _rewrite(check, block) != 2:
            return None
        blocked = run(check, feeds)
        if not all(np.allclose(a, b, rtol=1e-4, atol=1e-4) for a, b in zip(plain, blocked)):
            return None
        return block
    except Exception:  # noqa: BLE001 - any failure means the blocked ops are not usable here
        return None


def declare_nchwc_domain(model) -> None:
    """Add the blocked ops' domain to a ModelProto's opset imports when its graph uses them."""
    from onnx import helper

    if any(n.domain == NCHWC_DOMAIN for n in model.graph.node) and \
            all(o.domain != NCHWC_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(NCHWC_DOMAIN, 1))


def block_convolutions(g: GraphBuilder) -> int:
    """Rewrite the 2-D Conv and stride-1 ConvTranspose nodes of `g` (a graph for ONNX Runtime's CPU provider)
    whose channels are whole blocks into blocked convolutions; returns how many. Nothing changes where this CPU
    or ONNX Runtime build has no usable blocked convolution."""
    block = nchwc_block_size()
    return 0 if block is None else _rewrite(g, block)


def _rewrite(g: GraphBuilder, block: int) -> int:
    count, i = 0, 0
    while i < len(g.nodes):
        node = g.nodes[i]
        plan = _plan(g, node, block)
        if plan is None:
            i += 1
            continue
        start = len(g.nodes)
        _emit_blocked(g, node, block, *plan)
        made = g.nodes[start:]
        del g.nodes[start:]
        g.nodes[i:i + 1] = made
        i += len(made)
        count += 1
    return count


def _plan(g: GraphBuilder, node: OpNode, block: int):
    """(weight reorder, conv attributes) for a node that can run blocked, else None."""
    if node.domain or node.op_type not in ("Conv", "ConvTranspose") or len(node.inputs) != 2:
        return None
    x, w = (g.values.get(name) for name in node.inputs)
    if x is None or w is None or x.dtype != "float32" or w.ndim != 4 or any(d is None for d in w.shape):
        return None
    attrs = node.attrs
    if int(attrs.get("group", 1)) != 1 or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        return None
    kernel = list(w.shape[2:])
    dilations = list(attrs.get("dilations", [1, 1]))
    pads = list(attrs.get("pads", [0] * 4))
    if node.op_type == "Conv":
        out_ch, in_ch = w.shape[:2]
        conv = {"strides": list(attrs.get("strides", [1, 1])), "pads": pads}
        flip = False
    else:
        # stride 1 only: a ConvTranspose with pads p is then the Conv of its input with the kernel flipped and
        # its channels swapped, padded by the kernel's span - 1 - p
        if any(s != 1 for s in attrs.get("strides", [1, 1])) or any(attrs.get("output_padding", [0, 0])) \
                or "output_shape" in attrs:
            return None
        in_ch, out_ch = w.shape[:2]
        spans = [d * (k - 1) for k, d in zip(kernel, dilations)]
        conv = {"strides": [1, 1], "pads": [s - p for s, p in zip(spans + spans, pads)]}
        if min(conv["pads"]) < 0:
            return None
        flip = True
    if out_ch % block or in_ch % block:
        return None
    return flip, dict(conv, kernel_shape=kernel, dilations=dilations)


def _emit_blocked(g: GraphBuilder, node: OpNode, block: int, flip: bool, conv: dict) -> None:
    x, w = (g.values[name] for name in node.inputs)
    y = g.values[node.outputs[0]]
    kernel = conv.pop("kernel_shape")
    if flip:  # (in, out, kh, kw) reversed along both kernel axes; blocks read as (in/b, b, out/b, b, kh, kw)
        w = g.emit("Slice", [w, _i64(g, [-1, -1]), _i64(g, [np.iinfo(np.int64).min] * 2), _i64(g, [2, 3]),
                             _i64(g, [-1, -1])], {}, [(w.dtype, w.shape)])[0]
        in_ch, out_ch = w.shape[:2]
        split, order = (in_ch // block, block, out_ch // block, block), [2, 0, 4, 5, 1, 3]
    else:  # (out, in, kh, kw) read as (out/b, b, in/b, b, kh, kw)
        out_ch, in_ch = w.shape[:2]
        split, order = (out_ch // block, block, in_ch // block, block), [0, 2, 4, 5, 3, 1]
    # MLAS's blocked filter: (out/b, in/b, kh, kw, in block, out block)
    parts = g.emit("Reshape", [w, _i64(g, list(split) + kernel)], {}, [(w.dtype, split + tuple(kernel))])[0]
    moved = g.emit("Transpose", [parts], {"perm": order}, [(w.dtype, tuple(parts.shape[a] for a in order))])[0]
    blocked_w = g.emit("Reshape", [moved, _i64(g, [out_ch, in_ch] + kernel)], {},
                       [(w.dtype, (out_ch, in_ch) + tuple(kernel))])[0]
    xb = g.emit("ReorderInput", [x], {}, [(x.dtype, x.shape)], domain=NCHWC_DOMAIN)[0]
    yb = g.emit("Conv", [xb, blocked_w], dict(conv, kernel_shape=kernel), [(y.dtype, y.shape)],
                domain=NCHWC_DOMAIN)[0]
    g.emit("ReorderOutput", [yb], {"channels": out_ch}, [(y.dtype, y.shape)], domain=NCHWC_DOMAIN)
    g.nodes[-1].outputs = list(node.outputs)  # the original's output: its readers stay as they are

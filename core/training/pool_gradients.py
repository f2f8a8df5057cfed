"""The gradient rule of MaxPool: each output gradient goes to the FIRST maximum of its window in scanning order
(row-major over the window), as TensorFlow's MaxPoolGrad does in `fit`; tied positions after it get nothing.

Windows that do not overlap (strides equal to the pool size, no dilation, lengths and pads known while building;
every Keras MaxPooling layer with default strides) take a path without indices: the padded input is cut into its
k1*k2*... window positions by Split nodes on a (batch*channels, out1, k1, out2, k2, ...) view, the positions are
visited in scanning order, each taking the gradient its window still holds where it equals the window's maximum
(share = rest * (x_p == y), rest -= share), and Concat nodes weave the shares back. The forward MaxPool then loses
its second output `Indices`, and ONNX Runtime runs it on its fast (NCHWc) path instead of a generic one. For the
keras-io MNIST convnet (pools of [128, 32, 26, 26] and [128, 64, 11, 11]) the pooling nodes of a training step took
12.2-13.3 against 20.9-21.6 ms on one thread and 10.1-10.2 against 13.7-14.1 ms on two (ONNX Runtime's profiler,
runs in turns on a shared machine). A hierarchical form (the first maximum along the last window axis, then along
the axis before over those maxima; no `y` needed) measured the same, and is longer.

Other windows (overlapping, dilated, ceil_mode, unknown lengths) route each output gradient to the position the
forward node's `Indices` output names (ONNX Runtime's MaxPool reports the first maximum too), adding up where windows
share it (ScatterElements with 'add').
"""

from __future__ import annotations

import numpy as np

from core import ops
from core.graph import SymbolicTensor
from core.training.conv_gradients import _attr, _filled_attr, _static_pads, _window
from core.training.gradients import _i64, register_gradient, shape_of


@register_gradient("MaxPool")
def _max_pool(g, node, xs, ys, dys):
    x, dy = xs[0], dys[0]
    kernel, strides, dilations = _window(node, x, node.attrs["kernel_shape"])
    tiling = None
    if strides == kernel and all(d == 1 for d in dilations) and not int(_attr(node, "ceil_mode", 0)):
        tiling = _tiling(node, x, kernel)
    if tiling is None:
        return [_scattered(g, node, x, ys[0], dy)]
    return [_first_maximum(g, x, ys[0], dy, kernel, *tiling)]


def _tiling(node, x: SymbolicTensor, kernel):
    """(outs, begins, tails) of windows that tile the padded input, all known while building: the output length
    per spatial axis, the forward padding before the input, and what the windows cover past the input's end
    (negative: input steps no window reaches). None when a length or the padding is known only at run time, or the
    node pads in a way `core.ops.conv` never records (another auto_pad, in a graph built elsewhere)."""
    if any(n is None for n in x.shape[2:]) or _attr(node, "auto_pad", "NOTSET") not in ("NOTSET", "SAME_UPPER"):
        return None
    pads = _static_pads(node, x, kernel, kernel, [1] * len(kernel))
    if pads is None:
        return None
    begins, ends = pads
    outs = [(n + b + e - k) // k + 1 for n, k, b, e in zip(x.shape[2:], kernel, begins, ends)]
    tails = [o * k - b - n for o, k, b, n in zip(outs, kernel, begins, x.shape[2:])]
    return outs, begins, tails


def _first_maximum(g, x, y, dy, kernel, outs, begins, tails) -> SymbolicTensor:
    r = len(kernel)
    # Padding is NaN, which equals no maximum, so it never wins (TensorFlow's 'same'); steps no window reaches are
    # cut. Slice and Concat, not Pad: ONNX Runtime's Pad takes 2.5x (crop) and 4x (extend) as long here.
    none, past, short = [0] * r, [max(t, 0) for t in tails], [max(-t, 0) for t in tails]
    covered = _extend(g, _cut(g, x, none, short), begins, past, np.nan)
    woven = tuple(d for o, k in zip(outs, kernel) for d in (o, k))
    positions = [g.emit("Reshape", [covered, _i64(g, (-1,) + woven)], {}, [(x.dtype, (None,) + woven)])[0]]
    for a, k in enumerate(kernel):  # row-major: the last window axis varies fastest in the list
        axis = 2 + 2 * a
        split = []
        for t in positions:
            shape = t.shape[:axis] + (1,) + t.shape[axis + 1:]
            split += g.emit("Split", [t, _i64(g, [1] * k)], {"axis": axis}, [(x.dtype, shape)] * k)
        positions = split
    one_each = (-1,) + tuple(d for o in outs for d in (o, 1))
    maxima, rest = ops.reshape(y, one_each), ops.reshape(dy, one_each)
    shares = []
    for p, xp in enumerate(positions):
        share = ops.multiply(rest, ops.cast(ops.equal(xp, maxima), x.dtype))
        shares.append(share)
        if p < len(positions) - 1:
            rest = ops.subtract(rest, share)  # exactly dy, or 0 once a position took it
    for a in reversed(range(r)):
        k = kernel[a]
        shares = [ops.concatenate(shares[i:i + k], axis=2 + 2 * a) for i in range(0, len(shares), k)]
    full = g.emit("Reshape", [shares[0], shape_of(covered)], {}, [(x.dtype, covered.shape)])[0]
    return _extend(g, _cut(g, full, begins, past), none, short, 0)


def _cut(g, x: SymbolicTensor, before, after) -> SymbolicTensor:
    """x without `before[i]` leading and `after[i]` trailing steps on spatial axis i."""
    if not any(before) and not any(after):
        return x
    stops = [n - a for n, a in zip(x.shape[2:], after)]
    shape = x.shape[:2] + tuple(stop - b for stop, b in zip(stops, before))
    return g.emit("Slice", [x, _i64(g, before), _i64(g, stops), _i64(g, range(2, x.ndim))], {},
                  [(x.dtype, shape)])[0]


def _extend(g, x: SymbolicTensor, before, after, value) -> SymbolicTensor:
    """x with `before[i]` leading and `after[i]` trailing steps filled with `value` on spatial axis i."""
    for axis, (b, a) in enumerate(zip(before, after), start=2):
        parts = ([_filled_like(g, x, axis, b, value)] if b else []) + [x] + (
            [_filled_like(g, x, axis, a, value)] if a else [])
        if len(parts) > 1:
            x = ops.concatenate(parts, axis=axis)
    return x


def _filled_like(g, x: SymbolicTensor, axis: int, length: int, value) -> SymbolicTensor:
    """A block of `value` shaped like x but `length` long on `axis` (x's batch is known only at run time)."""
    shape = ops.concatenate([_slice_shape(g, x, 0, axis), _i64(g, [length]), _slice_shape(g, x, axis + 1, x.ndim)],
                            axis=0)
    dims = x.shape[:axis] + (length,) + x.shape[axis + 1:]
    return g.emit("ConstantOfShape", [shape], {"value": _filled_attr(x.dtype, value)}, [(x.dtype, dims)])[0]


def _slice_shape(g, x: SymbolicTensor, start: int, stop: int) -> SymbolicTensor:
    return g.emit("Slice", [shape_of(x), _i64(g, [start]), _i64(g, [stop])], {}, [("int64", (stop - start,))])[0]


def _scattered(g, node, x, y, dy) -> SymbolicTensor:
    if len(node.outputs) < 2:  # the forward node also returns where each maximum came from
        name = g.unique_name(node.outputs[0] + "_indices")
        g.values[name] = SymbolicTensor(g, name, "int64", y.shape)
        node.outputs.append(name)
    indices = g.values[node.outputs[1]]
    flat_shape = g.emit("ReduceProd", [shape_of(x)], {"keepdims": 1}, [("int64", (1,))])[0]
    zeros = g.emit("ConstantOfShape", [flat_shape], {"value": _filled_attr(x.dtype)}, [(x.dtype, (None,))])[0]
    flat = g.emit("ScatterElements", [zeros, ops.reshape(indices, (-1,)), ops.reshape(dy, (-1,))],
                  {"axis": 0, "reduction": "add"}, [(x.dtype, (None,))])[0]
    return g.emit("Reshape", [flat, shape_of(x)], {}, [(x.dtype, x.shape)])[0]

"""Gradient rules of the window ops that `core.ops.conv` records: Conv, ConvTranspose, AveragePool (MaxPool's is in
`core.training.pool_gradients`).

All are written with standard ONNX ops (DESIGN.md §3):
- a convolution's input gradient is the transposed convolution of the output gradient with the same weight, made
  exactly the input's length by `ops.conv.transposed_conv` (a stride-1 Conv over the output phases, or ConvTranspose
  with pads and output_padding, whichever ONNX Runtime runs faster); its weight gradient correlates the padded input
  with the output gradient, one matrix product per kernel offset (`_correlate`);
- a transposed convolution's gradients are the same two computations with the roles of input and output exchanged;
- AveragePool spreads each output gradient, divided by the number of real (unpadded) positions in its window, over
  that window (a ConvTranspose with a kernel of ones).
'SAME_UPPER' padding (used for unknown lengths with strides) gets its start padding from Shape ops at run time, and
a convolution's input gradient is then the full ConvTranspose cut to the input.
"""

from __future__ import annotations

import itertools

import numpy as np

from core import ops
from core.graph import GraphBuilder, SymbolicTensor
from core.ops.conv import transposed_conv
from core.training.gradients import GradientError, _i64, _sum_leading, register_gradient, shape_of


def _attr(node, name, default):
    value = node.attrs.get(name, default)
    return value.decode() if isinstance(value, bytes) else value


def _window(node, x: SymbolicTensor, kernel):
    r = x.ndim - 2
    strides = list(_attr(node, "strides", [1] * r))
    dilations = list(_attr(node, "dilations", [1] * r))
    return list(kernel), strides, dilations


def _spatial_dims(g: GraphBuilder, x: SymbolicTensor) -> SymbolicTensor:
    r = x.ndim - 2
    return g.emit("Slice", [shape_of(x), _i64(g, [2]), _i64(g, [2 + r])], {}, [("int64", (r,))])[0]


def _pads(g: GraphBuilder, node, x: SymbolicTensor, kernel, strides, dilations):
    """(begin, end) paddings of the spatial axes as int64 tensors of length rank: constants where
    `_static_pads` knows them, Shape-based for SAME_UPPER on unknown lengths."""
    r = x.ndim - 2
    static = _static_pads(node, x, kernel, strides, dilations)
    if static is not None:
        return _i64(g, static[0]), _i64(g, static[1])
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilations)]
    n = _spatial_dims(g, x)
    s = _i64(g, strides)
    out = ops.divide(ops.subtract(ops.add(n, s), _i64(g, [1] * r)), s)  # ceil(n / s)
    total = ops.maximum(ops.subtract(ops.add(ops.multiply(ops.subtract(out, _i64(g, [1] * r)), s),
                                             _i64(g, spans)), n), _i64(g, [0] * r))
    begin = ops.divide(total, _i64(g, [2] * r))
    return begin, ops.subtract(total, begin)


def _fit_to(g: GraphBuilder, full: SymbolicTensor, x: SymbolicTensor, begin: SymbolicTensor) -> SymbolicTensor:
    """full[..., begin : begin + len] on every spatial axis, zero-extended where `full` ends early: the gradient
    with respect to x of a window op whose gradient with respect to its padded input is `full`."""
    r = x.ndim - 2
    n = _spatial_dims(g, x)
    axes = _i64(g, list(range(2, 2 + r)))
    cut = g.emit("Slice", [full, begin, ops.add(begin, n), axes], {},
                 [(full.dtype, full.shape[:2] + (None,) * r)])[0]
    short = ops.subtract(n, _spatial_dims(g, cut))
    pads = g.emit("Concat", [_i64(g, [0] * (r + 2)), _i64(g, [0, 0]), short], {"axis": 0},
                  [("int64", (2 * (r + 2),))])[0]
    return g.emit("Pad", [cut, pads], {"mode": "constant"}, [(full.dtype, full.shape[:2] + x.shape[2:])])[0]


def _pad_spatial(g: GraphBuilder, x: SymbolicTensor, begin, end, first: int = 2) -> SymbolicTensor:
    """Zero-pad the spatial axes of x, which start at axis `first` (2: channels first, 1: channels last), by `begin`
    and `end`: int lists (no Pad where all are zero) or int64 tensors known only at run time."""
    r = x.ndim - 2
    lead, trail = [0] * first, [0] * (x.ndim - first - r)
    if isinstance(begin, list):
        if not any(begin) and not any(end):
            return x
        pads = _i64(g, lead + begin + trail + lead + end + trail)
        dims = tuple(None if n is None else n + b + e for n, b, e in zip(x.shape[first:first + r], begin, end))
    else:
        pads = g.emit("Concat", [_i64(g, lead), begin, _i64(g, trail + lead), end, _i64(g, trail)], {"axis": 0},
                      [("int64", (2 * x.ndim,))])[0]
        dims = (None,) * r
    shape = x.shape[:first] + dims + x.shape[first + r:]
    return g.emit("Pad", [x, pads], {"mode": "constant"}, [(x.dtype, shape)])[0]


def _swap_batch_channels(x: SymbolicTensor) -> SymbolicTensor:
    return ops.transpose(x, [1, 0] + list(range(2, x.ndim)))


def _correlate(g: GraphBuilder, inp, pads, dout, kernel, strides, dilations) -> SymbolicTensor:
    """out[b, a, k] = sum over n, o of dout[n, b, o] * inp_padded[n, a, o * stride + k * dilation], shape
    (B, A, kernel), where `pads` = (begin, end) pads inp's spatial axes (int lists, or int64 tensors known only at
    run time).

    One batched matrix product per kernel offset, summed over the batch: dout as it comes, channels first (B, O)
    per sample, times the input's window at that offset, channels last (O, A) per sample. Measured in turns in
    ONNX Runtime this beats one Gemm over (N*O, A) and (N*O, B) with transA (its transposed-A packing costs
    1.65x on Conv1D(64, 3) over 32 x 500) and a swap of dout's batch and channels for a plain Gemm (ONNX Runtime
    merges that with the layer's Transpose into a slow one). Windows under 16 columns wide (few input channels)
    go side by side into one product instead: 4x faster than that Gemm for Conv2D(32, 3) on MNIST's one channel
    (1.4-1.6 against 4.9 ms for a batch of 128), 2x for CIFAR's three channels and for Conv1D on one (0.2 against
    0.83 ms for Conv1D(64, 3) over 32 x 500), while from 32 channels up a product per offset is faster (7.9
    against 8.7 ms for Conv2D(64, 3) on 13 x 13 x 32). A single
    Conv with the batch as its channels and the output gradient as its kernel runs as a GEMM per channel whose
    width is the kernel size, 5x slower than the forward convolution. The input goes channels last before it is
    padded, so its transposes cancel those the layer wrote around its convolution (padding first left ONNX Runtime
    a Transpose of the padded input per layer).

    With a stride s on the last spatial axis (of known length), that axis is padded to a multiple of s and read as
    (length / s, s * A): the taps k * dilation = j * s + p for p < s then share one contiguous window j, so
    ceil(span / s) products of s * A columns replace `kernel` products over strided windows (twice as fast for
    the keras-io autoencoder's Conv1D(32, 7, strides=2) on one channel)."""
    r = inp.ndim - 2
    a, b = inp.shape[1], dout.shape[1]
    if r == 1 and strides[0] == 1 and a is not None and a >= 16:
        return _correlate_channels_first(g, inp, pads, dout, kernel, dilations)
    inp_cl = ops.transpose(inp, [0] + list(range(2, 2 + r)) + [1])
    begin, end = pads
    s_last, d_last, k_last = strides[-1], dilations[-1], kernel[-1]
    grouped = s_last > 1 and isinstance(begin, list) and inp.shape[-1] is not None and dout.shape[-1] is not None
    if grouped:
        padded_len = inp.shape[-1] + begin[-1] + end[-1]
        groups_len = -(-padded_len // s_last)
        end = end[:-1] + [end[-1] + groups_len * s_last - padded_len]
    inp_cl = _pad_spatial(g, inp_cl, begin, end, first=1)
    rows = g.emit("Reshape", [dout, _i64(g, [0, b, -1])], {}, [(dout.dtype, (dout.shape[0], b, None))])[0]
    if grouped:  # (N, ..., L / s, s * A): the last axis's phases side by side with the channels
        inp_cl = g.emit("Reshape", [inp_cl, _i64(g, [0] * r + [groups_len, s_last * a])], {},
                        [(inp.dtype, inp_cl.shape[:r] + (groups_len, s_last * a))])[0]
        last_taps = sorted({k * d_last // s_last for k in range(k_last)})
        steps_list, width = list(strides[:-1]) + [1], s_last * a
    else:
        last_taps = [k * d_last for k in range(k_last)]
        steps_list, width = list(strides), a
    # a window starting at 0 covers positions o * step for o < O, so ends at (O - 1) * step + 1
    span = ops.add(ops.multiply(ops.subtract(_spatial_dims(g, dout), _i64(g, [1] * r)), _i64(g, steps_list)),
                   _i64(g, [1] * r))
    axes, steps = _i64(g, list(range(1, 1 + r))), _i64(g, steps_list)
    windows = []
    for offset in itertools.product(*[[k * d for k in range(n)] for n, d in zip(kernel[:-1], dilations[:-1])],
                                    last_taps):
        start = _i64(g, list(offset))
        windows.append(g.emit("Slice", [inp_cl, start, ops.add(start, span), axes, steps], {},
                              [(inp.dtype, (inp.shape[0],) + (None,) * r + (width,))])[0])
    offsets = len(windows)
    side_by_side = width < 16 and offsets > 1
    if side_by_side:
        windows = [ops.concatenate(windows, axis=-1)]
    parts = []
    for window in windows:
        w = window.shape[-1]
        cols = g.emit("Reshape", [window, _i64(g, [0, -1, w])], {}, [(inp.dtype, (inp.shape[0], None, w))])[0]
        per_sample = g.emit("MatMul", [rows, cols], {}, [(inp.dtype, (inp.shape[0], b, w))])[0]
        parts.append(_sum_leading(per_sample, 1, (b, w)))
    if side_by_side:  # (B, offsets x width) -> (offsets x B, width)
        stacked = ops.reshape(ops.transpose(ops.reshape(parts[0], (b, offsets, width)), [1, 0, 2]),
                              (-1, width))
    else:
        stacked = parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=0)  # (offsets x B, width)
    if grouped:  # keep, of each window's s phases, those that are taps: k * dilation = j * s + p
        lead = int(np.prod(kernel[:-1]))
        phases = ops.transpose(ops.reshape(stacked, (lead, len(last_taps), b, s_last, a)), [0, 1, 3, 2, 4])
        picks = [last_taps.index(k * d_last // s_last) * s_last + k * d_last % s_last for k in range(k_last)]
        stacked = ops.take(ops.reshape(phases, (lead, len(last_taps) * s_last, b, a)),
                           g.constant(np.asarray(picks, np.int64)), axis=1)
    taps = ops.reshape(stacked, tuple(kernel) + (b, a))
    return ops.transpose(taps, [r, r + 1] + list(range(r)))


def _correlate_channels_first(g: GraphBuilder, inp, pads, dout, kernel, dilations) -> SymbolicTensor:
    """`_correlate` for a 1-D convolution of stride 1 on 16 or more channels, with the input's windows cut channels
    first (N, A, O), as the convolution reads it, and multiplied transposed: dout (B, O) times window^T (O, A) per
    sample, which ONNX Runtime runs as one product with a transposed operand. Cutting the windows channels last
    needs the input transposed once more; in a stack that trains channels first (`core.training.channels_first`)
    that was the last Transpose of an activation left per layer. The products are bit-identical; the keras-io
    Conv1D classifier (64 channels, kernel 3) trains 1.04x and 1.07x as fast (medians of 16 and 10 rounds in
    turns, in two runs)."""
    a, b = inp.shape[1], dout.shape[1]
    padded = _pad_spatial(g, inp, pads[0], pads[1], first=2)
    rows = g.emit("Reshape", [dout, _i64(g, [0, b, -1])], {}, [(dout.dtype, (dout.shape[0], b, None))])[0]
    span = _spatial_dims(g, dout)  # a window of stride 1 is as long as the output
    axes = _i64(g, [2])
    parts = []
    for k in range(kernel[0]):
        start = _i64(g, [k * dilations[0]])
        window = g.emit("Slice", [padded, start, ops.add(start, span), axes], {},
                        [(inp.dtype, (inp.shape[0], a, None))])[0]
        per_sample = g.emit("MatMul", [rows, ops.transpose(window, [0, 2, 1])], {},
                            [(inp.dtype, (inp.shape[0], b, a))])[0]
        parts.append(_sum_leading(per_sample, 1, (b, a)))
    taps = ops.reshape(parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=0), (kernel[0], b, a))
    return ops.transpose(taps, [1, 2, 0])


def _group_diagonal(g: GraphBuilder, full: SymbolicTensor, groups: int) -> SymbolicTensor:
    """From (C, M, k...) for all channel pairs keep the pairs within a group, as Conv's weight (M, C/g, k...)."""
    c, m = full.shape[:2]
    kernel = full.shape[2:]
    cg, mg = c // groups, m // groups
    blocks = ops.reshape(full, (groups, cg, groups, mg) + kernel)
    eye = np.eye(groups, dtype=full.dtype).reshape((groups, 1, groups, 1) + (1,) * len(kernel))
    diag = ops.sum(ops.multiply(blocks, g.constant(eye)), axis=2)  # (g, C/g, M/g, k...)
    return ops.reshape(ops.transpose(diag, [0, 2, 1] + list(range(3, 3 + len(kernel)))), (m, cg) + kernel)


def _static_pads(node, x, kernel, strides, dilations):
    """The forward pads as (begins, ends) lists when they are known while building, else None (SAME_UPPER on an
    unknown length)."""
    r = x.ndim - 2
    auto = _attr(node, "auto_pad", "NOTSET")
    if auto == "NOTSET":
        pads = list(_attr(node, "pads", [0] * 2 * r))
        return pads[:r], pads[r:]
    if auto != "SAME_UPPER":
        raise GradientError(f"{node.op_type} with auto_pad='{auto}' has no gradient rule.")
    if any(n is None for n in x.shape[2:]):
        return None
    begins, ends = [], []
    for n, k, s, d in zip(x.shape[2:], kernel, strides, dilations):
        total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
        begins.append(total // 2), ends.append(total - total // 2)
    return begins, ends


def _conv_input_gradient(g, x, w, dy, pads, kernel, strides, dilations, groups):
    """dx of a convolution: the transposed convolution of dy (`ops.conv.transposed_conv`, a Conv or a
    ConvTranspose) that starts at the forward's begin pad and is exactly x's length, with no crop or pad after it.
    An input length unknown while building leaves the last (n + begin + end - span) mod stride positions open, so
    the widest extent is made and cut at run time."""
    begins, ends = pads
    extents, crop_to = [], None
    for n, o, k, s, d, b, e in zip(x.shape[2:], dy.shape[2:], kernel, strides, dilations, begins, ends):
        if n is not None and o is not None:
            extents.append(n - (o - 1) * s)
        else:
            extents.append(d * (k - 1) + 1 - b - e + s - 1)
            if s > 1:
                crop_to = _spatial_dims(g, x)
    return transposed_conv(dy, w, strides, dilations, begins, extents, groups=groups, crop_to=crop_to)


@register_gradient("Conv")
def _conv(g, node, xs, ys, dys):
    x, w = xs[0], xs[1]
    dy = dys[0]
    groups = int(_attr(node, "group", 1))
    kernel, strides, dilations = _window(node, x, w.shape[2:])
    if any(k is None for k in kernel):
        raise GradientError(f"Conv node '{node.name}' has a kernel of unknown size; it cannot be differentiated.")
    pads = _static_pads(node, x, kernel, strides, dilations)
    if pads is not None:
        dx = _conv_input_gradient(g, x, w, dy, pads, kernel, strides, dilations, groups)
    else:  # SAME_UPPER on an unknown length: pads from Shape ops, the full transposed convolution cut to x
        pads = _pads(g, node, x, kernel, strides, dilations)
        full = g.emit("ConvTranspose", [dy, w], {"strides": strides, "dilations": dilations, "group": groups,
                                                 "kernel_shape": kernel},
                      [(dy.dtype, (x.shape[0], w.shape[1] * groups) + (None,) * len(kernel))])[0]
        dx = _fit_to(g, full, x, pads[0])
    corr = _correlate(g, x, pads, dy, kernel, strides, dilations)  # (M, C, k...)
    dw = corr if groups == 1 else _group_diagonal(g, _swap_batch_channels(corr), groups)
    grads = [dx, dw]
    if len(xs) > 2 and xs[2] is not None:  # a bias input (core.ops adds biases separately, other graphs may not)
        grads.append(ops.sum(dy, axis=[0] + list(range(2, dy.ndim))))
    return grads


@register_gradient("ConvTranspose")
def _conv_transpose(g, node, xs, ys, dys):
    x, w = xs[0], xs[1]
    dy = dys[0]
    r = x.ndim - 2
    if int(_attr(node, "group", 1)) != 1:
        raise GradientError(f"ConvTranspose node '{node.name}' with groups has no gradient rule.")
    if _attr(node, "auto_pad", "NOTSET") != "NOTSET" or "output_shape" in node.attrs:
        raise GradientError(f"ConvTranspose node '{node.name}' needs explicit pads to be differentiated.")
    kernel, strides, dilations = _window(node, x, w.shape[2:])
    pads = list(_attr(node, "pads", [0] * 2 * r))
    extra = list(_attr(node, "output_padding", [0] * r))
    # The output is the full transposed convolution cropped by pads and extended by output_padding, so its adjoint
    # is a convolution of dy with the same pads (the extension lies beyond every window).
    dx = g.emit("Conv", [dy, w], {"strides": strides, "dilations": dilations, "pads": pads, "kernel_shape": kernel},
                [(dy.dtype, x.shape)])[0]
    if any(e >= s for e, s in zip(extra, strides)):
        dx = _fit_to(g, dx, x, _i64(g, [0] * r))
    dw = _correlate(g, dy, (pads[:r], pads[r:]), x, kernel, strides, dilations)  # (C_in, C_out, k...)
    grads = [dx, dw]
    if len(xs) > 2 and xs[2] is not None:
        grads.append(ops.sum(dy, axis=[0] + list(range(2, dy.ndim))))
    return grads


def _filled_attr(dtype, value=0):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.full(1, value, dtype=dtype))


@register_gradient("AveragePool")
def _average_pool(g, node, xs, ys, dys):
    x, dy = xs[0], dys[0]
    r = x.ndim - 2
    kernel, strides, dilations = _window(node, x, node.attrs["kernel_shape"])
    if any(d != 1 for d in dilations) or int(_attr(node, "ceil_mode", 0)):
        raise GradientError(f"AveragePool node '{node.name}' with dilations or ceil_mode has no gradient rule.")
    begin, _ = _pads(g, node, x, kernel, strides, dilations)
    window = float(np.prod(kernel))
    if int(_attr(node, "count_include_pad", 0)):
        scaled = ops.divide(dy, window)
    else:
        # How many real positions each window held: the mean of ones over the window, padding counted as zeros.
        attrs = dict(node.attrs, count_include_pad=1)
        ones = g.emit("ConstantOfShape", [shape_of(x)], {"value": _filled_attr(x.dtype, 1)}, [(x.dtype, x.shape)])[0]
        share = g.emit("AveragePool", [ones], attrs, [(x.dtype, dy.shape)])[0]
        scaled = ops.divide(dy, ops.multiply(share, window))
    # Spread over each window: a transposed convolution with a kernel of ones, channel by channel.
    per_channel = g.emit("Reshape", [scaled, _i64(g, [-1, 1] + [0] * r)], {},
                         [(x.dtype, (None, 1) + dy.shape[2:])])[0]
    ones_kernel = g.constant(np.ones((1, 1) + tuple(kernel), dtype=x.dtype))
    full = g.emit("ConvTranspose", [per_channel, ones_kernel], {"strides": strides, "kernel_shape": kernel},
                  [(x.dtype, (None, 1) + (None,) * r)])[0]
    flat_x = g.emit("Reshape", [x, _i64(g, [-1, 1] + [0] * r)], {}, [(x.dtype, (None, 1) + x.shape[2:])])[0]
    dx = _fit_to(g, full, flat_x, begin)
    return [g.emit("Reshape", [dx, shape_of(x)], {}, [(x.dtype, x.shape)])[0]]

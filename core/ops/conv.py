"""Convolution and pooling ops in Keras's channels-last layout: conv, conv_transpose, depthwise_conv, separable_conv,
max_pool, average_pool (ONNX Conv, ConvTranspose, MaxPool, AveragePool; their gradient rules live in
`core.training.conv_gradients`).

ONNX's Conv and pooling ops want channels first (NCW, NCHW), so a channels-last input is transposed in and the result
transposed back; ONNX Runtime removes the pairs of transposes between consecutive convolutions. A Keras kernel
(k..., in/groups, out) becomes ONNX's (out, in/groups, k...) by a Transpose recorded in the graph, so the weight itself
stays a graph variable (an input when training) and ONNX Runtime folds the transpose when it is an initializer.

Padding follows TensorFlow: 'same' pads so that out = ceil(in / stride) with the odd pixel at the end, which is
ONNX's SAME_UPPER. Pads are explicit whenever they are known when the graph is built; only 'same' with a stride
above 1 on an axis of unknown length needs `auto_pad='SAME_UPPER'` (the pads then depend on the length).
"""

from __future__ import annotations

import string

import numpy as np

from core.errors import ConfigError, ShapeError
from core.ops.array import transpose
from core.ops.dispatch import graph_of, op

__all__ = ["conv", "conv_transpose", "depthwise_conv", "separable_conv", "max_pool", "average_pool"]

PADDINGS = ("valid", "same", "causal")
DATA_FORMATS = ("channels_last", "channels_first")


def _as_tuple(value, rank: int, what: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * rank
    value = tuple(int(v) for v in value)
    if len(value) != rank:
        raise ShapeError(f"{what} needs {rank} value(s), got {value}.")
    return value


def data_format_or_default(data_format) -> str:
    if data_format is None:
        return "channels_last"
    if data_format not in DATA_FORMATS:
        raise ConfigError(f"data_format must be 'channels_last' or 'channels_first', got {data_format!r}.")
    return data_format


def to_channels_first(x):
    """NWC/NHWC -> NCW/NCHW."""
    return transpose(x, (0, x.ndim - 1) + tuple(range(1, x.ndim - 1)))


def to_channels_last(x):
    """NCW/NCHW -> NWC/NHWC."""
    return transpose(x, (0,) + tuple(range(2, x.ndim)) + (1,))


def spatial_padding(in_dims, kernel, strides, dilations, padding: str, what: str):
    """TensorFlow's padding for a window op: (pads as ONNX lists them or None for SAME_UPPER, output dims).

    `in_dims` are the spatial dims (None = unknown); an output dim is None where its input dim is unknown.
    """
    if padding not in PADDINGS:
        raise ConfigError(f"{what}: padding must be one of {PADDINGS}, got {padding!r}.")
    if padding == "causal" and len(in_dims) != 1:
        raise ConfigError(f"{what}: 'causal' padding exists only for 1-D windows.")
    begins, ends, outs = [], [], []
    auto = False
    for n, k, s, d in zip(in_dims, kernel, strides, dilations):
        span = d * (k - 1) + 1  # the window's extent, dilation included
        if padding == "valid":
            if n is not None and n < span:
                raise ShapeError(f"{what}: the window spans {span} steps but the input has only {n} along this axis "
                                 f"(padding='valid' cannot produce an output); use a shorter window or "
                                 f"padding='same'.")
            begins.append(0), ends.append(0)
            outs.append(None if n is None else (n - span) // s + 1)
        elif padding == "causal":
            begins.append(span - 1), ends.append(0)
            outs.append(None if n is None else (n - 1) // s + 1)
        else:
            if n is None:
                if s != 1:
                    auto = True
                    begins.append(0), ends.append(0)
                else:
                    begins.append((span - 1) // 2), ends.append(span - 1 - (span - 1) // 2)
                outs.append(None)
            else:
                out = -(-n // s)
                total = max((out - 1) * s + span - n, 0)
                begins.append(total // 2), ends.append(total - total // 2)
                outs.append(out)
    if auto and any(d != 1 for d in dilations):
        raise ConfigError(f"{what}: padding='same' with strides > 1 and dilation > 1 is not supported "
                          f"(Keras rejects strides > 1 together with dilation_rate > 1).")
    return (None if auto else begins + ends), tuple(outs)


def _window_op(onnx_op, x, kernel, strides, dilations, padding, data_format, attrs, extra_inputs,
               out_channels, what):
    """Run an NC(spatial) ONNX window op on `x` in `data_format`, with TensorFlow's padding."""
    g = graph_of(x)
    t = g.as_tensor(x)
    rank = len(kernel)
    if t.ndim != rank + 2:
        raise ShapeError(f"{what} expects a rank-{rank + 2} input (batch, {rank} spatial axes, channels), got shape "
                         f"{t.shape}.")
    channels_last = data_format == "channels_last"
    if channels_last:
        t = to_channels_first(t)
    pads, out_dims = spatial_padding(t.shape[2:], kernel, strides, dilations, padding, what)
    attrs = dict(attrs, kernel_shape=list(kernel), strides=list(strides))
    if pads is None:
        attrs["auto_pad"] = "SAME_UPPER"
    else:
        attrs["pads"] = pads
    out_shape = (t.shape[0], out_channels) + out_dims
    y = g.emit(onnx_op, [t] + list(extra_inputs), attrs, [(t.dtype, out_shape)])[0]
    return to_channels_last(y) if channels_last else y


@op
def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    """N-D convolution as `keras.ops.conv`, with a Keras kernel (k..., in/groups, out); groups follow from the
    kernel's input size. `padding` may also be 'causal' for 1-D (left padding, as Keras's Conv1D)."""
    g = graph_of(inputs, kernel)
    x = g.as_tensor(inputs)
    w = g.as_tensor(kernel)
    rank = w.ndim - 2
    if rank < 1:
        raise ShapeError(f"conv: the kernel must have rank 3 or more (k..., in, out), got shape {w.shape}.")
    data_format = data_format_or_default(data_format)
    what = f"conv{rank}d"
    if x.ndim != rank + 2:
        raise ShapeError(f"{what} expects a rank-{rank + 2} input for a kernel of shape {w.shape}, got shape "
                         f"{x.shape}.")
    in_ch = x.shape[-1] if data_format == "channels_last" else x.shape[1]
    k_in, out_ch = w.shape[-2], w.shape[-1]
    if in_ch is None:
        raise ShapeError(f"{what} needs a known number of input channels, got shape {x.shape}.")
    if in_ch % k_in:
        raise ShapeError(f"{what}: the input has {in_ch} channels, which is not a multiple of the kernel's input "
                         f"size {k_in} (kernel shape {w.shape}).")
    groups = in_ch // k_in
    if out_ch % groups:
        raise ShapeError(f"{what}: {out_ch} filters cannot be split into {groups} groups.")
    kernel_size = tuple(w.shape[:rank])
    strides = _as_tuple(strides, rank, f"{what} strides")
    dilations = _as_tuple(dilation_rate, rank, f"{what} dilation_rate")
    w_onnx = transpose(w, (rank + 1, rank) + tuple(range(rank)))
    return _window_op("Conv", x, kernel_size, strides, dilations, padding, data_format,
                      {"dilations": list(dilations), "group": groups}, [w_onnx], out_ch, what)


def _pool(onnx_op, attrs, inputs, pool_size, strides, padding, data_format, name):
    g = graph_of(inputs)
    x = g.as_tensor(inputs)
    rank = x.ndim - 2
    if rank < 1:
        raise ShapeError(f"{name} expects a rank-3 or higher input (batch, spatial..., channels), got shape "
                         f"{x.shape}.")
    pool_size = _as_tuple(pool_size, rank, f"{name} pool_size")
    strides = pool_size if strides is None else _as_tuple(strides, rank, f"{name} strides")
    if padding == "causal":
        raise ConfigError(f"{name}: padding must be 'valid' or 'same', got 'causal'.")
    data_format = data_format_or_default(data_format)
    channels = x.shape[-1] if data_format == "channels_last" else x.shape[1]
    return _window_op(onnx_op, x, pool_size, strides, (1,) * rank, padding, data_format, attrs, [], channels,
                      name)


@op
def max_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    """Max pooling as `keras.ops.max_pool`; padded positions never win (TensorFlow's 'same')."""
    return _pool("MaxPool", {}, inputs, pool_size, strides, padding, data_format, "max_pool")


@op
def average_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    """Average pooling as `keras.ops.average_pool`; with 'same' the padded positions are left out of each average,
    as TensorFlow does (count_include_pad=0)."""
    return _pool("AveragePool", {"count_include_pad": 0}, inputs, pool_size, strides, padding, data_format,
                 "average_pool")


def transpose_padding(in_dims, kernel, strides, dilations, padding: str, output_padding, what: str):
    """Keras's transposed-convolution geometry as ONNX ConvTranspose attributes: (pads, output_padding, out dims).

    Keras (TensorFlow) makes the output (in - 1) * stride + kernel + output_padding long for 'valid' (output_padding
    defaulting to max(kernel, stride) - kernel) and in * stride for 'same' (or (in - 1) * stride + kernel % 2 +
    output_padding when output_padding is given); it crops the full transposed convolution as the matching forward
    convolution pads, so the smaller half of the crop is at the start. The crop does not depend on the input length,
    so unknown lengths need no dynamic padding.
    """
    if padding not in ("valid", "same"):
        raise ConfigError(f"{what}: padding must be 'valid' or 'same', got {padding!r}.")
    begins, ends, extras, outs = [], [], [], []
    for i, (n, k, s, d) in enumerate(zip(in_dims, kernel, strides, dilations)):
        span = d * (k - 1) + 1
        op_ = None if output_padding is None else output_padding[i]
        if padding == "valid":
            op_ = max(span, s) - span if op_ is None else op_

            def length(m, s=s, span=span, op_=op_):
                return (m - 1) * s + span + op_
        elif op_ is None:
            def length(m, s=s):
                return m * s
        else:
            def length(m, s=s, span=span, op_=op_):
                return (m - 1) * s + span % 2 + op_
        crop = span - length(1)  # full length minus output length, the same for every input length
        begin = 0 if padding == "valid" else max(crop, 0) // 2
        end = crop - begin
        begins.append(begin), ends.append(max(end, 0)), extras.append(max(-end, 0))
        out = None if n is None else length(n)
        if out is not None and out <= 0:
            raise ShapeError(f"{what}: an input of length {n} gives an output of length {out} along this axis.")
        outs.append(out)
    return begins + ends, extras, tuple(outs)


@op
def conv_transpose(inputs, kernel, strides=1, padding="valid", output_padding=None, data_format=None,
                   dilation_rate=1):
    """Transposed convolution as `keras.ops.conv_transpose`, with a Keras kernel (k..., out, in): the gradient of
    a convolution with respect to its input, which is exactly ONNX's ConvTranspose."""
    g = graph_of(inputs, kernel)
    x = g.as_tensor(inputs)
    w = g.as_tensor(kernel)
    rank = w.ndim - 2
    what = f"conv{rank}d_transpose"
    if rank < 1 or x.ndim != rank + 2:
        raise ShapeError(f"{what} expects a rank-{rank + 2} input for a kernel of shape {w.shape}, got shape "
                         f"{x.shape}.")
    data_format = data_format_or_default(data_format)
    channels_last = data_format == "channels_last"
    in_ch = x.shape[-1] if channels_last else x.shape[1]
    if in_ch is not None and in_ch != w.shape[-1]:
        raise ShapeError(f"{what}: the input has {in_ch} channels but the kernel {w.shape} expects {w.shape[-1]}.")
    strides = _as_tuple(strides, rank, f"{what} strides")
    dilations = _as_tuple(dilation_rate, rank, f"{what} dilation_rate")
    output_padding = None if output_padding is None else _as_tuple(output_padding, rank, f"{what} output_padding")
    if channels_last:
        x = to_channels_first(x)
    pads, extras, out_dims = transpose_padding(x.shape[2:], w.shape[:rank], strides, dilations, padding,
                                               output_padding, what)
    w_onnx = transpose(w, (rank + 1, rank) + tuple(range(rank)))
    attrs = {"kernel_shape": list(w.shape[:rank]), "strides": list(strides), "dilations": list(dilations),
             "pads": pads, "output_padding": extras}
    y = g.emit("ConvTranspose", [x, w_onnx], attrs, [(x.dtype, (x.shape[0], w.shape[-2]) + out_dims)])[0]
    return to_channels_last(y) if channels_last else y


@op
def depthwise_conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    """Depthwise convolution as `keras.ops.depthwise_conv`, kernel (k..., in, multiplier): a grouped Conv with one
    group per input channel; output channel c * multiplier + m comes from input channel c, as in TensorFlow."""
    from core.ops.array import reshape

    g = graph_of(inputs, kernel)
    w = g.as_tensor(kernel)
    rank = w.ndim - 2
    if rank < 1:
        raise ShapeError(f"depthwise_conv: the kernel must have rank 3 or more (k..., in, multiplier), got shape "
                         f"{w.shape}.")
    flat = reshape(w, tuple(w.shape[:rank]) + (1, w.shape[-2] * w.shape[-1]))
    x = g.as_tensor(inputs)
    in_ch = x.shape[-1] if data_format_or_default(data_format) == "channels_last" else x.shape[1]
    if x.ndim == rank + 2 and in_ch is not None and in_ch != w.shape[-2]:
        raise ShapeError(f"depthwise_conv: the input has {in_ch} channels but the kernel {w.shape} expects "
                         f"{w.shape[-2]}.")
    return conv(x, flat, strides=strides, padding=padding, data_format=data_format, dilation_rate=dilation_rate)


@op
def separable_conv(inputs, depthwise_kernel, pointwise_kernel, strides=1, padding="valid", data_format=None,
                   dilation_rate=1):
    """A depthwise convolution followed by a 1x1 convolution, as `keras.ops.separable_conv`."""
    y = depthwise_conv(inputs, depthwise_kernel, strides=strides, padding=padding, data_format=data_format,
                       dilation_rate=dilation_rate)
    return conv(y, pointwise_kernel, data_format=data_format)



def _phase_taps(k: int, s: int, d: int, begin: int):
    """One axis of a transposed convolution split by output phase: output i = q * s + p takes x[q - t] * w[tap] for
    each (p, tap, t) returned, since the full output's position o * s + tap * d lands at i + begin."""
    return [(p, tap, (tap * d - p - begin) // s) for p in range(s) for tap in range(k)
            if (tap * d - p - begin) % s == 0]


def _shape_from(t, parts):
    """An int64 shape for Reshape: each part an int, or (axis, factor) for t's dimension at axis times factor;
    a constant when every dimension it names is known."""
    g = t.graph
    if all(isinstance(p, int) or t.shape[p[0]] is not None for p in parts):
        return g.constant(np.asarray([p if isinstance(p, int) else t.shape[p[0]] * p[1] for p in parts], np.int64))
    dims = g.emit("Shape", [t], {}, [("int64", (t.ndim,))])[0]
    pieces = []
    for p in parts:
        if isinstance(p, int):
            pieces.append(g.constant(np.asarray([p], np.int64)))
            continue
        one = g.emit("Slice", [dims, g.constant(np.asarray([p[0]], np.int64)),
                               g.constant(np.asarray([p[0] + 1], np.int64))], {}, [("int64", (1,))])[0]
        pieces.append(one if p[1] == 1 else g.emit("Mul", [one, g.constant(np.asarray([p[1]], np.int64))], {},
                                                    [("int64", (1,))])[0])
    return g.emit("Concat", pieces, {"axis": 0}, [("int64", (len(parts),))])[0]


def _reshape_to(t, parts):
    shape = tuple(p if isinstance(p, int) else (None if t.shape[p[0]] is None else t.shape[p[0]] * p[1])
                  for p in parts)
    return t.graph.emit("Reshape", [t, _shape_from(t, parts)], {}, [(t.dtype, shape)])[0]


def transposed_conv_as_conv(x, w, strides, dilations, begins, extents, groups=1, channels_last=False, crop_to=None):
    """ONNX ConvTranspose(x, w) with `strides` and `dilations`, cut by `begins` at the start and (L - 1) * stride +
    extent long on each spatial axis of input length L (zero-extended where the full result ends early), as one
    stride-1 Conv.

    `x` is channels-first (N, C_in, L...), `w` ConvTranspose's weight (C_in, C_out / groups, k...). Output position
    q * s + p (phase p) is a stride-1 correlation of x with the kernel taps of that phase, so a Conv with
    (product of strides) x C_out output channels computes every phase at once, and a Reshape and a Transpose
    interleave them ("sub-pixel" convolution): the same multiply-adds, but ONNX Runtime's Conv runs them as blocked
    GEMMs over the batch where its ConvTranspose does a small GEMM and a col2im per sample (half the time for the
    Conv1DTranspose(32, 7, strides=2) of a batch of 128, measured in turns). With stride 1 this is the flipped,
    channel-swapped kernel. `crop_to` (int64 tensor of the spatial lengths) cuts the result to lengths known only
    at run time instead. The result is channels-last when `channels_last`. None where a begin lies beyond every
    tap (no Keras layer makes such a graph): the caller keeps ConvTranspose."""
    from core.ops.array import reshape
    from core.ops.math import matmul

    g = graph_of(x, w)
    x, w = g.as_tensor(x), g.as_tensor(w)
    r = x.ndim - 2
    c_in, c_out_g = w.shape[0], w.shape[1]
    kernel = tuple(w.shape[2:])
    taps_shape, dilation, pads_begin, pads_end, excess, selections = [], [], [], [], [], []
    for k, s, d, b, e in zip(kernel, strides, dilations, begins, extents):
        taps = _phase_taps(k, s, d, b)
        step = d if s == 1 else 1  # one phase keeps the dilation; strided phases take the taps they own, densely
        shifts = [t for _, _, t in taps]
        first = max(shifts)  # the Conv's start padding: how far back in x the earliest tap reads
        if first < 0:
            return None
        j = (first - min(shifts)) // step + 1
        span = (j - 1) * step + 1
        wanted = -(-e // s) - 1  # each phase is L + wanted long, as the extent asks...
        end = max(wanted - first + span - 1, 0)
        taps_shape.append(j), dilation.append(step), pads_begin.append(first), pads_end.append(end)
        excess.append((first + end - span + 1) * s + s - e)  # ...and the Conv gives L + that - 1 per phase
        sel = np.zeros((k, s, j), dtype=w.dtype)
        for p, tap, t in taps:
            sel[tap, p, (first - t) // step] = 1
        selections.append(sel)
    # (K..., S..., J...): which tap of w lands at each position of each phase's kernel, all axes together
    letters = string.ascii_letters
    selection = np.einsum(",".join(letters[3 * a:3 * a + 3] for a in range(r)) + "->"
                          + "".join(letters[3 * a + i] for i in range(3) for a in range(r)), *selections)
    phases = int(np.prod(strides))
    kernel_size, conv_size = int(np.prod(kernel)), int(np.prod(taps_shape))
    spread = matmul(reshape(w, (c_in, c_out_g, kernel_size)),
                    g.constant(selection.reshape(kernel_size, phases * conv_size)))
    spread = reshape(spread, (groups, c_in // groups, c_out_g, phases, conv_size))
    v = reshape(transpose(spread, (0, 3, 2, 1, 4)), (groups * phases * c_out_g, c_in // groups) + tuple(taps_shape))
    conv_dims = tuple(None if n is None else n + pb + pe - (j - 1) * st
                      for n, pb, pe, j, st in zip(x.shape[2:], pads_begin, pads_end, taps_shape, dilation))
    y = g.emit("Conv", [x, v], {"kernel_shape": taps_shape, "dilations": dilation, "strides": [1] * r,
                                "pads": pads_begin + pads_end, "group": groups},
               [(x.dtype, (x.shape[0], groups * phases * c_out_g) + conv_dims)])[0]
    return _interleave_phases(y, groups, tuple(strides), c_out_g, excess, channels_last, crop_to)


def _interleave_phases(y, groups, strides, c_out_g, excess, channels_last, crop_to):
    """(N, groups * phases * C_out/groups, Q...) with phase p of group g as channel block (g, p) -> the transposed
    convolution (N, C_out, Q * s - excess...) (channels-last when asked), output position q * s + p from phase p."""
    g = y.graph
    r = y.ndim - 2
    if any(s > 1 for s in strides):
        split = _reshape_to(y, [(0, 1), groups, *strides, c_out_g] + [(2 + a, 1) for a in range(r)])
        pairs = [i for a in range(r) for i in (3 + r + a, 2 + a)]  # (Q, s) of each axis, side by side
        perm = [0] + pairs + [1, 2 + r] if channels_last else [0, 1, 2 + r] + pairs
        woven = transpose(split, perm)
        merged = [((1 if channels_last else 3) + 2 * a, s) for a, s in enumerate(strides)]
        y = _reshape_to(woven, [(0, 1)] + merged + [groups * c_out_g] if channels_last
                        else [(0, 1), groups * c_out_g] + merged)
    elif channels_last:
        y = to_channels_last(y)
    first = 1 if channels_last else 2
    if crop_to is None and not any(excess):
        return y
    axes = g.constant(np.arange(first, first + r, dtype=np.int64))
    starts = g.constant(np.zeros(r, np.int64))
    if crop_to is None:
        ends = g.constant(np.asarray([-e if e else np.iinfo(np.int64).max for e in excess], np.int64))
        dims = tuple(None if n is None else n - e for n, e in zip(y.shape[first:first + r], excess))
    else:
        ends, dims = crop_to, (None,) * r
    shape = ((y.shape[0],) + dims + (y.shape[-1],)) if channels_last else (y.shape[:2] + dims)
    return g.emit("Slice", [y, starts, ends, axes], {}, [(y.dtype, shape)])[0]

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
from core.ops.array import _i64, transpose
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
    a convolution with respect to its input, which is ONNX's ConvTranspose (`transposed_conv` picks it or an equal
    stride-1 Conv, whichever ONNX Runtime runs faster)."""
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
    pads, extras, _ = transpose_padding(x.shape[2:], w.shape[:rank], strides, dilations, padding,
                                        output_padding, what)
    w_onnx = transpose(w, (rank + 1, rank) + tuple(range(rank)))
    extents = [d * (k - 1) + 1 + e - b - c
               for k, d, e, b, c in zip(w.shape[:rank], dilations, extras, pads[:rank], pads[rank:])]
    y = transposed_conv(x, w_onnx, strides, dilations, pads[:rank], extents, weave_first=True)
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
    a constant when every dimension it names is known or kept in place ((i, 1) at position i, Reshape's 0: the
    unknown batch)."""
    g = t.graph

    def static(i, p):
        if isinstance(p, int):
            return p
        if t.shape[p[0]] is None:
            return 0 if p == (i, 1) else None
        return t.shape[p[0]] * p[1]

    if all(static(i, p) is not None for i, p in enumerate(parts)):
        return _i64(g, [static(i, p) for i, p in enumerate(parts)])
    dims = g.emit("Shape", [t], {}, [("int64", (t.ndim,))])[0]
    pieces = []
    for p in parts:
        if isinstance(p, int):
            pieces.append(_i64(g, [p]))
            continue
        one = g.emit("Slice", [dims, _i64(g, [p[0]]), _i64(g, [p[0] + 1])], {}, [("int64", (1,))])[0]
        pieces.append(one if p[1] == 1 else g.emit("Mul", [one, _i64(g, [p[1]])], {}, [("int64", (1,))])[0])
    return g.emit("Concat", pieces, {"axis": 0}, [("int64", (len(parts),))])[0]


def _reshape_to(t, parts):
    shape = tuple(p if isinstance(p, int) else (None if t.shape[p[0]] is None else t.shape[p[0]] * p[1])
                  for p in parts)
    return t.graph.emit("Reshape", [t, _shape_from(t, parts)], {}, [(t.dtype, shape)])[0]


def transposed_conv(x, w, strides, dilations, begins, extents, groups=1, channels_last=False, crop_to=None,
                    weave_first=False):
    """ONNX ConvTranspose(x, w) with `strides` and `dilations`, cut by `begins` at the start and (L - 1) * stride +
    extent long on each spatial axis of input length L (zero-extended where the full result ends early), made
    exactly that long by the op itself, with no Slice or Pad after it.

    `x` is channels-first (N, C_in, L...), `w` ConvTranspose's weight (C_in, C_out / groups, k...). `crop_to` (int64
    tensor of the spatial lengths) cuts the result to lengths known only at run time instead. The result is
    channels-last when `channels_last`.

    Output position q * s + p (phase p) is a stride-1 correlation of x with the kernel taps of that phase, so one
    Conv with (product of strides) x C_out output channels computes every phase, and a Reshape and a Transpose
    interleave them ("sub-pixel" convolution; with stride 1 it is the flipped, channel-swapped kernel). The
    multiply-adds are the same; what differs is the buffer each op fills per position: ONNX Runtime's Conv copies
    C_in x taps-per-phase input values (im2col), its ConvTranspose scatters C_out x kernel products (col2im). Measured
    in turns, the op with the smaller buffer wins, by up to 3x either way: the Conv for Conv1DTranspose(32, 7,
    strides=2) on 16 channels (2.1 against 3.8 ms for a batch of 128), ConvTranspose for Conv1DTranspose(1, 7) on 32
    (0.42 against 1.55 ms)."""
    g = graph_of(x, w)
    x, w = g.as_tensor(x), g.as_tensor(w)
    plan = [_phase_plan(k, s, d, b, e) for k, s, d, b, e in zip(w.shape[2:], strides, dilations, begins, extents)]
    c_in_g, c_out_g = w.shape[0] // groups, w.shape[1]
    if all(p is not None for p in plan) and \
            c_out_g * int(np.prod(w.shape[2:])) >= c_in_g * int(np.prod([p["taps"] for p in plan])):
        return _phase_conv(x, w, strides, plan, groups, channels_last, crop_to, weave_first)
    return _exact_conv_transpose(x, w, strides, dilations, begins, extents, groups, channels_last, crop_to)


def _phase_plan(k: int, s: int, d: int, begin: int, extent: int):
    """One axis of the phase-split Conv: its taps, dilation and pads, the interleaved length beyond the wanted one
    (the same for every input length), and which kernel tap sits where in each phase's kernel. None where the
    begin lies beyond every tap (a phase would start after x's start; no Keras layer makes such a graph)."""
    taps = _phase_taps(k, s, d, begin)
    step = d if s == 1 else 1  # one phase keeps the dilation; strided phases take the taps they own, densely
    shifts = [t for _, _, t in taps]
    first = max(shifts)  # the Conv's start padding: how far back in x the earliest tap reads
    if first < 0:
        return None
    j = (first - min(shifts)) // step + 1
    span = (j - 1) * step + 1
    wanted = -(-extent // s) - 1  # each phase is L + wanted long, as the extent asks...
    end = max(wanted - first + span - 1, 0)
    sel = np.zeros((k, s, j), dtype=np.float32)
    for p, tap, t in taps:
        sel[tap, p, (first - t) // step] = 1
    return {"taps": j, "step": step, "begin": first, "end": end, "selection": sel,
            "excess": (first + end - span + 1) * s + s - extent}  # ...and the Conv gives L + that - 1 per phase


def _phase_conv(x, w, strides, plan, groups, channels_last, crop_to, weave_first=False):
    from core.ops.array import reshape
    from core.ops.math import matmul

    g = x.graph
    r = x.ndim - 2
    c_in, c_out_g = w.shape[0], w.shape[1]
    kernel, taps = tuple(w.shape[2:]), [p["taps"] for p in plan]
    # (K..., S..., J...): which tap of w lands at each position of each phase's kernel, all axes together
    letters = string.ascii_letters
    selection = np.einsum(",".join(letters[3 * a:3 * a + 3] for a in range(r)) + "->"
                          + "".join(letters[3 * a + i] for i in range(3) for a in range(r)),
                          *[p["selection"] for p in plan])
    phases = int(np.prod(strides))
    kernel_size, conv_size = int(np.prod(kernel)), int(np.prod(taps))
    spread = matmul(reshape(w, (c_in, c_out_g, kernel_size)),
                    g.constant(selection.reshape(kernel_size, phases * conv_size).astype(w.dtype)))
    spread = reshape(spread, (groups, c_in // groups, c_out_g, phases, conv_size))
    v = reshape(transpose(spread, (0, 3, 2, 1, 4)), (groups * phases * c_out_g, c_in // groups) + tuple(taps))
    pads = [p["begin"] for p in plan] + [p["end"] for p in plan]
    conv_dims = tuple(None if n is None else n + p["begin"] + p["end"] - (p["taps"] - 1) * p["step"]
                      for n, p in zip(x.shape[2:], plan))
    y = g.emit("Conv", [x, v], {"kernel_shape": taps, "dilations": [p["step"] for p in plan], "strides": [1] * r,
                                "pads": pads, "group": groups},
               [(x.dtype, (x.shape[0], groups * phases * c_out_g) + conv_dims)])[0]
    return _interleave_phases(y, groups, tuple(strides), c_out_g, [p["excess"] for p in plan], channels_last,
                              crop_to, weave_first)


def _exact_conv_transpose(x, w, strides, dilations, begins, extents, groups, channels_last, crop_to):
    """ConvTranspose with the begins as pads and the end cut, or extended by output_padding, to the extents."""
    g = x.graph
    r = x.ndim - 2
    kernel = list(w.shape[2:])
    ends, extra, zeros = [], [], []
    for k, s, d, b, e in zip(kernel, strides, dilations, begins, extents):
        beyond = e - (d * (k - 1) + 1 - b)  # wanted length minus the full result's, past the begin
        ends.append(max(-beyond, 0))
        fits = 0 < beyond < max(s, d)  # output_padding must stay below the stride or dilation
        extra.append(beyond if fits else 0), zeros.append(max(beyond, 0) if not fits else 0)
    dims = tuple(None if n is None else (n - 1) * s + e for n, s, e in zip(x.shape[2:], strides, extents))
    attrs = {"kernel_shape": kernel, "strides": list(strides), "dilations": list(dilations), "group": groups,
             "pads": list(begins) + ends, "output_padding": extra}
    y = g.emit("ConvTranspose", [x, w], attrs, [(x.dtype, (x.shape[0], w.shape[1] * groups) + dims)])[0]
    if any(zeros):
        pads = _i64(g, [0] * (r + 2) + [0, 0] + zeros)
        y = g.emit("Pad", [y, pads], {"mode": "constant"}, [(y.dtype, y.shape)])[0]
    if crop_to is not None:
        axes = _i64(g, range(2, 2 + r))
        y = g.emit("Slice", [y, _i64(g, [0] * r), crop_to, axes], {},
                   [(y.dtype, y.shape[:2] + (None,) * r)])[0]
    return to_channels_last(y) if channels_last else y


def _interleave_phases(y, groups, strides, c_out_g, excess, channels_last, crop_to, weave_first=False):
    """(N, groups * phases * C_out/groups, Q...) with phase p of group g as channel block (g, p) -> the transposed
    convolution (N, C_out, Q * s - excess...) (channels-last when asked), output position q * s + p from phase p.

    By default the phases are woven in channels-last layout, where the last axis's phases already sit beside the
    channels: (N, Q, s * C) is (N, Q * s, C), so a Conv1DTranspose needs only the Transpose any channels-last layer
    has, and a channels-first result goes back by one Transpose at the end, which the caller's transpose to
    channels last cancels (a convolution's input gradient). `weave_first` weaves in channels-first layout with one
    Transpose instead, for a result that stays channels first: ONNX Runtime then keeps a chain of layers in that
    layout rather than transposing every activation there and back."""
    g = y.graph
    r = y.ndim - 2
    strided = [a for a, s in enumerate(strides) if s > 1]
    first = not channels_last and weave_first
    if not first:
        y = to_channels_last(y)
    if not first and strided and (groups == 1 and strided == [r - 1]):
        y = _reshape_to(y, [(a, 1) for a in range(r)] + [(r, strides[-1]), c_out_g])
    elif strided:
        # Axes of size 1 (one group, unstrided axes) are left out: ONNX Runtime transposes them far slower
        # (4.6 against 0.5 ms for (128, 1, 2, 32, 144) -> (128, 144, 2, 1, 32) and its 4-D twin).
        channels = (["g"] if groups > 1 else []) + ["c"]
        phases, spatial = [f"s{a}" for a in strided], [f"q{a}" for a in range(r)]
        phased = channels[:-1] + phases + ["c"]
        names = ["n"] + (phased + spatial if first else spatial + phased)
        sizes = {"n": (0, 1), "g": groups, "c": c_out_g, **{f"s{a}": strides[a] for a in strided},
                 **{f"q{a}": ((2 if first else 1) + a, 1) for a in range(r)}}
        split = _reshape_to(y, [sizes[k] for k in names])
        woven_spatial = [k for a in range(r) for k in ([f"q{a}", f"s{a}"] if a in strided else [f"q{a}"])]
        order = ["n"] + (channels + woven_spatial if first else woven_spatial + channels)
        woven = transpose(split, [names.index(k) for k in order])
        merged = [(order.index(f"q{a}"), strides[a]) for a in range(r)]
        y = _reshape_to(woven, [(0, 1), groups * c_out_g] + merged if first
                        else [(0, 1)] + merged + [groups * c_out_g])
    if crop_to is not None or any(excess):
        start = 2 if first else 1
        axes = _i64(g, range(start, start + r))
        starts = _i64(g, [0] * r)
        if crop_to is None:
            ends = _i64(g, [-e if e else np.iinfo(np.int64).max for e in excess])
            dims = tuple(None if n is None else n - e for n, e in zip(y.shape[start:start + r], excess))
        else:
            ends, dims = crop_to, (None,) * r
        shape = y.shape[:2] + dims if first else (y.shape[0],) + dims + (y.shape[-1],)
        y = g.emit("Slice", [y, starts, ends, axes], {}, [(y.dtype, shape)])[0]
    return y if channels_last or first else to_channels_first(y)

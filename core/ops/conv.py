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

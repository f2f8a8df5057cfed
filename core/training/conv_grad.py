"""Gradient rules for ONNX's window ops (Conv, MaxPool, AveragePool), in their NC(spatial) layout.

Conv: dX is a ConvTranspose of dY with the same kernel; dW is a Conv of the input with dY where the batch and
channel axes swap roles (stride and dilation swap too), cropped to the kernel's size (DESIGN.md §3).
MaxPool: its optional Indices output says which input won each window; dY goes back there by ScatterElements(add).
AveragePool: dY divided by each window's count (padding excluded, as TensorFlow counts), spread back over the
window by a grouped ConvTranspose with a kernel of ones.
"""

from __future__ import annotations

import numpy as np

from core import ops
from core.graph import SymbolicTensor
from core.training.gradients import GradientError, _i64, _tensor_attr, register_gradient, shape_of


def _geometry(node, x, kernel):
    rank = x.ndim - 2
    if node.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", b"NOTSET"):
        raise GradientError(f"{node.op_type} '{node.name}': padding decided at run time (auto_pad) cannot be "
                            f"differentiated; give the sequence a fixed length or use stride 1.")
    strides = list(node.attrs.get("strides", [1] * rank))
    dilations = list(node.attrs.get("dilations", [1] * rank))
    pads = list(node.attrs.get("pads", [0] * (2 * rank)))
    return rank, strides, dilations, pads


def _output_padding(x, y, kernel, strides, dilations, pads, what):
    """ConvTranspose's output_padding that gives back exactly x's spatial size."""
    rank = len(kernel)
    out = []
    for i in range(rank):
        span = dilations[i] * (kernel[i] - 1) + 1
        if strides[i] == 1:
            out.append(0)
            continue
        n, m = x.shape[2 + i], y.shape[2 + i]
        if n is None or m is None:
            raise GradientError(f"{what}: a stride above 1 over an axis of unknown length cannot be differentiated; "
                                f"give the input a fixed length.")
        out.append(n - ((m - 1) * strides[i] + span - pads[i] - pads[rank + i]))
    return out


@register_gradient("Conv")
def _conv(g, node, xs, ys, dys):
    x, w = xs[0], xs[1]
    y, dy = ys[0], dys[0]
    group = int(node.attrs.get("group", 1))
    kernel = list(node.attrs.get("kernel_shape") or w.shape[2:])
    rank, strides, dilations, pads = _geometry(node, x, kernel)
    if any(k is None for k in kernel):
        raise GradientError(f"Conv '{node.name}': the kernel size must be known.")
    attrs = {"kernel_shape": kernel, "strides": strides, "dilations": dilations, "pads": pads, "group": group,
             "output_padding": _output_padding(x, y, kernel, strides, dilations, pads, f"Conv '{node.name}'")}
    dx = g.emit("ConvTranspose", [dy, w], attrs, [(dy.dtype, x.shape)])[0]
    swap = (1, 0) + tuple(range(2, x.ndim))
    if group != 1:
        raise GradientError(f"Conv '{node.name}': grouped (depthwise) convolutions have no gradient rule yet.")
    xt, dyt = ops.transpose(x, swap), ops.transpose(dy, swap)
    full = g.emit("Conv", [xt, dyt], {"strides": dilations, "dilations": strides, "pads": pads},
                  [(dy.dtype, (x.shape[1], dy.shape[1]) + (None,) * rank)])[0]
    ends = kernel
    cropped = g.emit("Slice", [full, _i64(g, [0] * rank), _i64(g, ends), _i64(g, list(range(2, 2 + rank)))], {},
                     [(dy.dtype, full.shape[:2] + tuple(kernel))])[0]
    dw = ops.transpose(cropped, swap)
    out = [dx, dw]
    if len(xs) > 2 and xs[2] is not None:
        out.append(ops.sum(dy, axis=[0] + list(range(2, dy.ndim))))
    return out


@register_gradient("MaxPool")
def _max_pool(g, node, xs, ys, dys):
    x, dy = xs[0], dys[0]
    if len(ys) < 2:
        raise GradientError("MaxPool needs its Indices output for the gradient (autodiff adds it).")
    if int(node.attrs.get("storage_order", 0)):
        raise GradientError(f"MaxPool '{node.name}': column-major indices are not supported.")
    idx = ys[1]
    total = g.emit("ReduceProd", [shape_of(x)], {"keepdims": 1}, [("int64", (1,))])[0]
    zeros = g.emit("ConstantOfShape", [total], {"value": _tensor_attr(np.zeros(1, dtype=dy.dtype))},
                   [(dy.dtype, (None,))])[0]
    flat = g.emit("ScatterElements", [zeros, ops.reshape(idx, (-1,)), ops.reshape(dy, (-1,))],
                  {"axis": 0, "reduction": "add"}, [(dy.dtype, (None,))])[0]
    return [g.emit("Reshape", [flat, shape_of(x)], {}, [(dy.dtype, x.shape)])[0]]


@register_gradient("AveragePool")
def _average_pool(g, node, xs, ys, dys):
    x, y, dy = xs[0], ys[0], dys[0]
    kernel = list(node.attrs["kernel_shape"])
    rank, strides, dilations, pads = _geometry(node, x, kernel)
    channels = x.shape[1]
    if channels is None:
        raise GradientError(f"AveragePool '{node.name}': the number of channels must be known.")
    ones_k = g.constant(np.ones((1, 1) + tuple(kernel), dtype=dy.dtype), dy.dtype)
    if int(node.attrs.get("count_include_pad", 0)) or not any(pads):
        count = float(np.prod(kernel))
        scaled = ops.divide(dy, count)
    else:
        # How many real (unpadded) inputs each window covered.
        spatial = g.emit("Slice", [shape_of(x), _i64(g, [2]), _i64(g, [2 + rank])], {}, [("int64", (rank,))])[0]
        shp = g.emit("Concat", [_i64(g, [1, 1]), spatial], {"axis": 0}, [("int64", (2 + rank,))])[0]
        ones_x = g.emit("ConstantOfShape", [shp], {"value": _tensor_attr(np.ones(1, dtype=dy.dtype))},
                        [(dy.dtype, (1, 1) + x.shape[2:])])[0]
        counts = g.emit("Conv", [ones_x, ones_k], {"strides": strides, "pads": pads, "kernel_shape": kernel},
                        [(dy.dtype, (1, 1) + y.shape[2:])])[0]
        scaled = ops.divide(dy, counts)
    ones_c = g.constant(np.ones((channels, 1) + tuple(kernel), dtype=dy.dtype), dy.dtype)
    attrs = {"kernel_shape": kernel, "strides": strides, "pads": pads, "group": channels,
             "output_padding": _output_padding(x, y, kernel, strides, [1] * rank, pads,
                                               f"AveragePool '{node.name}'")}
    return [g.emit("ConvTranspose", [scaled, ones_c], attrs, [(dy.dtype, x.shape)])[0]]


def add_max_pool_indices(g, node) -> None:
    """MaxPool's gradient needs the winners: give the node its optional Indices output."""
    y = g.values[node.outputs[0]]
    name = g.unique_name(node.outputs[0] + "_indices")
    g.values[name] = SymbolicTensor(g, name, "int64", y.shape)
    node.outputs.append(name)

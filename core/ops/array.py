"""Shape and indexing ops: reshape, transpose, concatenate, slicing, gathering, tiling."""

from __future__ import annotations

import builtins

import numpy as np

from core.errors import ShapeError
from core.graph import SymbolicTensor
from core.ops.dispatch import graph_of, norm_axis, op


def _i64(g, values):
    return g.constant(np.asarray(values, dtype=np.int64))


@op
def convert_to_tensor(x, dtype=None):
    g = graph_of(x)
    t = g.as_tensor(x, dtype)
    if dtype is not None:
        from core.ops.math import cast

        t = cast(t, dtype)
    return t


def constant(value, dtype=None):
    """A concrete tensor, as `tf.constant` makes one (eager: a numpy array with `.numpy()`)."""
    from core.graph import dtype_name
    from core.ops.dispatch import EagerTensor

    arr = np.asarray(value)
    if dtype is not None:
        arr = arr.astype(dtype_name(dtype))
    elif arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    return EagerTensor(arr)


@op
def shape(x):
    """The runtime shape of `x` as an int64 tensor."""
    g = graph_of(x)
    t = g.as_tensor(x)
    return g.emit("Shape", [t], {}, [("int64", (t.ndim,))])[0]


def static_shape(x) -> tuple:
    return tuple(x.shape)


def _reshape_shape(in_shape, newshape):
    out = []
    for i, d in enumerate(newshape):
        if d is None or d == 0:
            out.append(in_shape[i] if i < len(in_shape) else None)
        else:
            out.append(int(d))
    if -1 in out:
        known_in = [d for d in in_shape]
        if builtins.all(d is not None for d in known_in) and builtins.all(d is not None for d in out):
            total = int(np.prod(known_in)) if known_in else 1
            rest = int(np.prod([d for d in out if d != -1])) or 1
            if total % rest:
                raise ShapeError(f"Cannot reshape a tensor of shape {tuple(in_shape)} to {tuple(newshape)}.")
            out[out.index(-1)] = total // rest
        else:
            out[out.index(-1)] = None
    return tuple(out)


@op
def reshape(x, newshape):
    """Reshape; in `newshape` an entry of None (or 0) keeps the input's dimension at that position, -1 is inferred."""
    g = graph_of(x)
    t = g.as_tensor(x)
    newshape = tuple(newshape)
    if sum(1 for d in newshape if d == -1) > 1:
        raise ShapeError(f"reshape: at most one dimension may be -1, got {newshape}.")
    in_known = [d for d in t.shape]
    if builtins.all(d is not None for d in in_known) and builtins.all(d not in (None, 0, -1) for d in newshape):
        if int(np.prod(in_known)) != int(np.prod(newshape)):
            raise ShapeError(f"Cannot reshape a tensor of shape {t.shape} ({int(np.prod(in_known))} values) "
                             f"to {newshape} ({int(np.prod(newshape))} values).")
    out_shape = _reshape_shape(t.shape, newshape)
    spec = [0 if d is None else int(d) for d in newshape]
    return g.emit("Reshape", [t, _i64(g, spec)], {}, [(t.dtype, out_shape)])[0]


@op
def transpose(x, axes=None):
    g = graph_of(x)
    t = g.as_tensor(x)
    perm = list(reversed(range(t.ndim))) if axes is None else [norm_axis(a, t.ndim) for a in axes]
    if sorted(perm) != list(range(t.ndim)):
        raise ShapeError(f"transpose: {axes} is not a permutation of the {t.ndim} axes of a tensor of shape {t.shape}.")
    return g.emit("Transpose", [t], {"perm": perm}, [(t.dtype, tuple(t.shape[p] for p in perm))])[0]


@op
def concatenate(xs, axis=-1):
    g = graph_of(*xs)
    ts = [g.as_tensor(x) for x in xs]
    if not ts:
        raise ShapeError("concatenate needs at least one tensor.")
    nd = ts[0].ndim
    ax = norm_axis(axis, nd)
    from core.ops.math import cast
    from core.ops.dispatch import result_dtype

    dt = result_dtype(*ts)
    ts = [cast(t, dt) for t in ts]
    out = list(ts[0].shape)
    for t in ts[1:]:
        if t.ndim != nd:
            raise ShapeError(f"concatenate: all inputs need the same rank, got shapes {[x.shape for x in ts]}.")
        for i in range(nd):
            if i == ax:
                continue
            a, b = out[i], t.shape[i]
            if a is not None and b is not None and a != b:
                raise ShapeError(f"concatenate on axis {axis}: shapes {[x.shape for x in ts]} differ on axis {i}.")
            if a is None:
                out[i] = b
    out[ax] = None if any(t.shape[ax] is None for t in ts) else builtins.sum(t.shape[ax] for t in ts)
    return g.emit("Concat", ts, {"axis": ax}, [(dt, tuple(out))])[0]


@op
def expand_dims(x, axis):
    g = graph_of(x)
    t = g.as_tensor(x)
    ax = axis if axis >= 0 else t.ndim + 1 + axis
    if not 0 <= ax <= t.ndim:
        raise ShapeError(f"expand_dims: axis {axis} is out of range for a tensor of rank {t.ndim}.")
    shape = t.shape[:ax] + (1,) + t.shape[ax:]
    return g.emit("Unsqueeze", [t, _i64(g, [ax])], {}, [(t.dtype, shape)])[0]


@op
def squeeze(x, axis=None):
    g = graph_of(x)
    t = g.as_tensor(x)
    if axis is None:
        axes = [i for i, d in enumerate(t.shape) if d == 1]
    else:
        axes = sorted(norm_axis(a, t.ndim) for a in (axis if isinstance(axis, (list, tuple)) else [axis]))
    for a in axes:
        if t.shape[a] not in (1, None):
            raise ShapeError(f"squeeze: axis {a} of shape {t.shape} has size {t.shape[a]}, not 1.")
    shape = tuple(d for i, d in enumerate(t.shape) if i not in axes)
    return g.emit("Squeeze", [t, _i64(g, axes)], {}, [(t.dtype, shape)])[0]


@op
def stack(xs, axis=0):
    xs = list(xs)
    nd = len(xs[0].shape) + 1
    ax = axis if axis >= 0 else nd + axis
    return concatenate([expand_dims(x, ax) for x in xs], axis=ax)


@op
def unstack(x, axis=0):
    g = graph_of(x)
    t = g.as_tensor(x)
    ax = norm_axis(axis, t.ndim)
    n = t.shape[ax]
    if n is None:
        raise ShapeError(f"unstack needs a known size on axis {axis}, got shape {t.shape}.")
    # One Split, whose gradient is one Concat (a Gather per piece would scatter each piece's gradient into zeros).
    piece = tuple(1 if i == ax else d for i, d in enumerate(t.shape))
    pieces = g.emit("Split", [t, _i64(g, [1] * n)], {"axis": ax}, [(t.dtype, piece)] * n) if n > 1 else [t]
    return [squeeze(p, ax) for p in pieces]


@op
def tile(x, repeats):
    g = graph_of(x)
    t = g.as_tensor(x)
    repeats = [int(r) for r in repeats]
    if len(repeats) != t.ndim:
        raise ShapeError(f"tile: {len(repeats)} repeats for a tensor of rank {t.ndim}.")
    shape = tuple(None if d is None else d * r for d, r in zip(t.shape, repeats))
    return g.emit("Tile", [t, _i64(g, repeats)], {}, [(t.dtype, shape)])[0]


@op
def take(x, indices, axis=None):
    """Gather along `axis` (flattened when None); `indices` is an int, an array or an integer tensor."""
    g = graph_of(x)
    t = g.as_tensor(x)
    if axis is None:
        t = reshape(t, (-1,))
        axis = 0
    ax = norm_axis(axis, t.ndim)
    if isinstance(indices, (int, np.integer)):
        idx = g.constant(np.array(int(indices), dtype=np.int64))
    else:
        idx = g.as_tensor(indices)
        if not idx.dtype.startswith("int"):
            from core.ops.math import cast

            idx = cast(idx, "int64")
    shape = t.shape[:ax] + idx.shape + t.shape[ax + 1:]
    return g.emit("Gather", [t, idx], {"axis": ax}, [(t.dtype, shape)])[0]


@op
def one_hot(x, num_classes, dtype="float32"):
    g = graph_of(x)
    t = g.as_tensor(x)
    from core.ops.math import cast

    depth = g.constant(np.array(num_classes, dtype=np.int64))
    values = g.constant(np.array([0, 1], dtype=dtype))
    return g.emit("OneHot", [cast(t, "int64"), depth, values], {"axis": -1},
                  [(dtype, t.shape + (num_classes,))])[0]


@op
def zeros_like(x, dtype=None):
    from core.ops.math import multiply, cast

    t = graph_of(x).as_tensor(x)
    # Multiplied rather than ConstantOfShape'd so unknown dimensions follow x; ONNX Mul has no bool kernel.
    numeric = cast(t, "float32") if t.dtype == "bool" else t
    return cast(multiply(numeric, 0), dtype or t.dtype)


@op
def ones_like(x, dtype=None):
    from core.ops.math import add, cast

    # Computed in x's dtype: ONNX Add has no bool kernel, so ones_like(x, "bool") must cast afterwards.
    t = graph_of(x).as_tensor(x)
    return cast(add(zeros_like(t, "float32" if t.dtype == "bool" else None), 1), dtype or t.dtype)


@op
def flip(x, axis):
    """Reverse `x` along `axis` (a Slice with step -1, which handles unknown lengths)."""
    g = graph_of(x)
    t = g.as_tensor(x)
    ax = norm_axis(axis, t.ndim)
    big = np.iinfo(np.int64).max
    return g.emit("Slice", [t, _i64(g, [-1]), _i64(g, [-big]), _i64(g, [ax]), _i64(g, [-1])], {},
                  [(t.dtype, t.shape)])[0]


@op
def pad(x, pad_width, constant_values=0):
    g = graph_of(x)
    t = g.as_tensor(x)
    pad_width = [tuple(int(v) for v in p) for p in pad_width]
    if len(pad_width) != t.ndim:
        raise ShapeError(f"pad: {len(pad_width)} pairs for a tensor of rank {t.ndim}.")
    pads = [p[0] for p in pad_width] + [p[1] for p in pad_width]
    shape = tuple(None if d is None else d + a + b for d, (a, b) in zip(t.shape, pad_width))
    value = g.constant(np.array(constant_values, dtype=t.dtype), t.dtype)
    return g.emit("Pad", [t, _i64(g, pads), value], {"mode": "constant"}, [(t.dtype, shape)])[0]


def _slice_len(dim, start, stop, step):
    if dim is None:
        if step > 0 and start is not None and stop is not None and start >= 0 and stop >= 0:
            return builtins.max(0, (stop - start + step - 1) // step)
        return None
    return len(range(*slice(start, stop, step).indices(dim)))


@op
def getitem(x, key):
    """NumPy-style basic indexing: ints, slices, Ellipsis and None (a new axis)."""
    g = graph_of(x)
    t = g.as_tensor(x)
    if not isinstance(key, tuple):
        key = (key,)
    if builtins.any(isinstance(k, (SymbolicTensor, np.ndarray, list)) for k in key):
        if len(key) == 1:
            return take(t, key[0], axis=0)
        raise ShapeError("Tensor indexing supports ints, slices, Ellipsis and None; use ops.take for gathers.")
    n_real = builtins.sum(1 for k in key if k is not None and k is not Ellipsis)
    if n_real > t.ndim:
        raise ShapeError(f"Too many indices ({n_real}) for a tensor of shape {t.shape}.")
    if Ellipsis in key:
        i = key.index(Ellipsis)
        key = key[:i] + (slice(None),) * (t.ndim - n_real) + key[i + 1:]
    else:
        key = key + (slice(None),) * (t.ndim - n_real)
    starts, ends, axes, steps, squeeze_axes, new_axes = [], [], [], [], [], []
    out_rank = 0
    dim = 0
    big = np.iinfo(np.int64).max
    for k in key:
        if k is None:
            new_axes.append(out_rank)
            out_rank += 1
            continue
        d = t.shape[dim]
        if isinstance(k, (int, np.integer)):
            k = int(k)
            if d is not None and not -d <= k < d:
                raise ShapeError(f"Index {k} is out of range for axis {dim} of size {d}.")
            starts.append(k)
            ends.append(k + 1 if k != -1 else big)
            axes.append(dim)
            steps.append(1)
            squeeze_axes.append(dim)
        elif isinstance(k, slice):
            step = 1 if k.step is None else int(k.step)
            out_rank += 1
            if k.start is None and k.stop is None and step == 1:
                dim += 1
                continue
            start = k.start if k.start is not None else (0 if step > 0 else -1)
            stop = k.stop if k.stop is not None else (big if step > 0 else -big)
            starts.append(int(start))
            ends.append(int(stop))
            axes.append(dim)
            steps.append(step)
        else:
            raise ShapeError(f"Unsupported index {k!r}.")
        dim += 1
    y = t
    if axes:
        sliced_shape = list(t.shape)
        for a, s, e, st in zip(axes, starts, ends, steps):
            sliced_shape[a] = 1 if a in squeeze_axes else _slice_len(
                t.shape[a], s, None if e in (big, -big) else e, st)
        y = g.emit("Slice", [t, _i64(g, starts), _i64(g, ends), _i64(g, axes), _i64(g, steps)], {},
                   [(t.dtype, tuple(sliced_shape))])[0]
    if squeeze_axes:
        y = squeeze(y, squeeze_axes)
    for a in new_axes:
        y = expand_dims(y, a)
    return y


def _merge_with_next(t, ax: int, factor: int):
    """(..., n, factor, ...) -> (..., n * factor, ...): merge axis `ax` of `t` with the next one."""
    g = t.graph
    merged = None if t.shape[ax] is None else t.shape[ax] * factor
    after = t.shape[ax + 2:]
    out_shape = t.shape[:ax] + (merged,) + after
    if merged is not None or builtins.all(d is not None for d in after):
        # Reshape's 0 copies the leading dimensions (the batch among them) and -1 takes what is left.
        return reshape(t, (0,) * ax + (-1 if merged is None else merged,) + after)
    # Two unknown lengths: the target shape is computed from the runtime shape.
    dims = shape(t)
    from core.ops.math import multiply

    target = concatenate([dims[:ax], multiply(dims[ax:ax + 1], np.int64(factor)), dims[ax + 2:]], axis=0)
    return g.emit("Reshape", [t, target], {}, [(t.dtype, out_shape)])[0]


@op
def repeat(x, repeats, axis=None):
    """Repeat each element `repeats` times along `axis` (flattened when None), as `keras.ops.repeat` with an int.

    Written as Unsqueeze, Tile and Reshape so it works for unknown lengths and every piece has a gradient.
    """
    g = graph_of(x)
    t = g.as_tensor(x)
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ShapeError(f"repeat: 'repeats' must be a positive integer, got {repeats!r}.")
    repeats = int(repeats)
    if axis is None:
        t = reshape(t, (-1,))
        axis = 0
    ax = norm_axis(axis, t.ndim)
    tiled = tile(expand_dims(t, ax + 1), [1] * (ax + 1) + [repeats] + [1] * (t.ndim - ax - 1))
    return _merge_with_next(tiled, ax, repeats)


@op
def interleave(xs, axis):
    """Tensors of one shape woven along `axis`: out[..., i * k + r, ...] = xs[r][..., i, ...] for k tensors."""
    xs = list(xs)
    g = graph_of(*xs)
    ts = [g.as_tensor(x) for x in xs]
    ax = norm_axis(axis, ts[0].ndim)
    return _merge_with_next(stack(ts, axis=ax + 1), ax, len(ts))

"""What every op shares: finding the graph to record into, converting arguments, and eager execution.

An op called with a symbolic tensor records a node. An op called only with concrete values (numpy arrays, Python
numbers, weights outside any graph) runs eagerly: the same op is recorded into a one-off graph and run in ONNX Runtime,
so eager and graph results come from the same kernels. Eager results are `EagerTensor`s, numpy arrays that can also
carry a Keras mask (`_keras_mask`).
"""

from __future__ import annotations

import functools

import numpy as np

from core.errors import ShapeError
from core.graph import GraphBuilder, SymbolicTensor, array_dtype_name, current_graph, graph_scope, is_text, text_array


class EagerTensor(np.ndarray):
    """A concrete result: a numpy array with `.numpy()` and an optional `_keras_mask`, like a TF eager tensor."""

    def __new__(cls, value):
        obj = np.asarray(value).view(cls)
        obj._keras_mask = None
        return obj

    def __array_finalize__(self, obj):
        self._keras_mask = getattr(obj, "_keras_mask", None)

    def numpy(self) -> np.ndarray:
        return np.asarray(self).view(np.ndarray)


def is_symbolic(x) -> bool:
    return isinstance(x, SymbolicTensor)


def _is_concrete_array(x) -> bool:
    return isinstance(x, np.ndarray) or hasattr(x, "_nw_variable")


def _walk(args):
    for a in args:
        if isinstance(a, (list, tuple)):
            yield from _walk(a)
        elif isinstance(a, dict):
            yield from _walk(a.values())
        else:
            yield a


def graph_of(*args) -> GraphBuilder:
    for a in _walk(args):
        if isinstance(a, SymbolicTensor):
            return a.graph
    g = current_graph()
    if g is None:
        raise RuntimeError("No graph to record into: ops need a symbolic tensor or an active graph.")
    return g


def _replace_arrays(x, g: GraphBuilder):
    if isinstance(x, np.ndarray) and not hasattr(x, "_nw_variable"):
        arr = np.asarray(x)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        if is_text(arr):
            arr = text_array(arr)
        return g.add_input("eager_in", array_dtype_name(arr), arr.shape), arr
    return x, None


def _structure_map(fn, x):
    if isinstance(x, list):
        return [_structure_map(fn, v) for v in x]
    if isinstance(x, tuple):
        return tuple(_structure_map(fn, v) for v in x)
    return fn(x)


def run_eagerly(fn, args, kwargs):
    g = GraphBuilder("eager")
    feeds: dict[str, np.ndarray] = {}

    def convert(x):
        t, arr = _replace_arrays(x, g)
        if arr is not None:
            feeds[t.name] = arr
        return t

    with graph_scope(g):
        new_args = [_structure_map(convert, a) if isinstance(a, (list, tuple)) else convert(a) for a in args]
        new_kwargs = {k: convert(v) for k, v in kwargs.items()}
        out = fn(*new_args, **new_kwargs)
    return evaluate(g, out, feeds)


def evaluate(g: GraphBuilder, out, feeds: dict[str, np.ndarray]):
    """Run the graph `g` for the symbolic tensors in `out` (a tensor or a nested list) and return EagerTensors."""
    from core import runtime

    flat: list[SymbolicTensor] = [t for t in _walk([out]) if isinstance(t, SymbolicTensor)]
    masks = [t._keras_mask for t in flat if isinstance(t._keras_mask, SymbolicTensor)]
    if not flat:
        return out
    g.set_outputs(flat + masks)
    # Unused inputs are fine for ORT; inputs must all be fed.
    values = runtime.run_model(g.to_model(), {t.name: feeds[t.name] for t in g.inputs}, device="cpu")
    by_name = dict(zip([t.name for t in g.outputs], values))
    lookup = {}
    for orig, final in zip(flat + masks, g.outputs):
        lookup[id(orig)] = by_name[final.name]

    def back(x):
        if isinstance(x, SymbolicTensor):
            res = EagerTensor(lookup[id(x)])
            if isinstance(x._keras_mask, SymbolicTensor):
                res._keras_mask = EagerTensor(lookup[id(x._keras_mask)])
            return res
        return x

    return _structure_map(back, out)


def _is_keras_tensor(x) -> bool:
    from core.layers.base import KerasTensor

    return isinstance(x, KerasTensor)


def op(fn):
    """Decorate an op so it runs eagerly when no argument is symbolic and no graph is being recorded, and becomes a
    node of the Functional model when an argument is a Functional-API tensor (as `keras.ops` on a KerasTensor)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        flat = list(_walk(list(args) + list(kwargs.values())))
        if any(_is_keras_tensor(a) for a in flat):
            from core.models.op_layer import call_on_keras_tensors

            return call_on_keras_tensors(fn.__name__, wrapper, args, kwargs)
        if current_graph() is None and not any(isinstance(a, SymbolicTensor) for a in flat):
            return run_eagerly(fn, args, kwargs)
        return fn(*args, **kwargs)

    return wrapper


# -- shape helpers ------------------------------------------------------------------------------------------------
def broadcast_shapes(a, b, what: str = "operands") -> tuple:
    a, b = tuple(a), tuple(b)
    n = max(len(a), len(b))
    a = (1,) * (n - len(a)) + a
    b = (1,) * (n - len(b)) + b
    out = []
    for x, y in zip(a, b):
        if x == 1:
            out.append(y)
        elif y == 1:
            out.append(x)
        elif x is None:
            out.append(y)
        elif y is None or x == y:
            out.append(x)
        else:
            raise ShapeError(f"Cannot broadcast {what} of shapes {a} and {b}: dimension {x} does not match {y}.")
    return tuple(out)


def norm_axis(axis: int, ndim: int) -> int:
    if not -ndim <= axis < max(ndim, 1):
        raise ShapeError(f"Axis {axis} is out of range for a tensor of rank {ndim}.")
    return axis % ndim if ndim else 0


def result_dtype(*tensors) -> str:
    """The dtype of a binary op: the first floating input wins, as Keras promotes int with float to float."""
    dts = [t.dtype for t in tensors]
    for d in dts:
        if d.startswith("float"):
            return d
    return dts[0]

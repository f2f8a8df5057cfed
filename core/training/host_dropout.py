"""Dropout masks drawn on the host: a CPU training step takes each Dropout's random bits as an input.

ONNX Runtime's Dropout kernel draws its uniform numbers one at a time on a single thread, about 4-5 ns a value
(13 ms a step for the keras-io text classifier's Dropout over a (32, 500, 128) embedding, a tenth of its step).
numpy's PCG64 makes raw 32-bit values at about 1 ns each, so the step graph instead compares fed bits against a
threshold and scales, which ONNX Runtime runs as ordinary elementwise ops on every core (2.6 -> 1.1 ms for a
(128, 144, 32) tensor, the numpy draw included, measured in turns).

Keep iff u >= rate for u uniform on [0, 1) becomes keep iff b >= ceil(rate * 2^32) for b uniform on the 32-bit
integers, the same probability to within 2^-32 (TensorFlow's float32 uniform resolves 2^-23). The kept values are
x * (1 / (1 - rate)) in x's dtype, as `tf.nn.dropout` computes them (ONNX Runtime's kernel divides by 1 - rate, which
can differ in the last bit), and the Dropout gradient rule scales by the same factor. The masks themselves never
matched Keras's (different generators).

Only Dropout nodes of the top-level graph whose input is (batch, fixed sizes...) by ONNX shape inference are
rewritten: the host must know how many bits a step needs. Others (unknown lengths, inside loops, on CUDA, where the
kernel is fast) keep the Dropout node.

The bits come in the layout the Dropout's output is read in: a channels-last Dropout read only by the next
convolution's Transpose to channels first (a Dropout on an embedding or on the model's input) gets its bits drawn
channels first and a Transpose back written after them, which ONNX Runtime then cancels with the layer's. (Between
two convolutions the Dropout itself runs channels first, `core.training.channels_first`.)
The bits are i.i.d., so their layout changes which units a seed drops, not how many.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DropoutBits:
    """One Dropout's bits input: int32 values of shape (batch,) + row_shape, one draw per step from a generator
    seeded with `seed` (the layer's seed; None: fresh entropy, as the Dropout node drew without a seed)."""

    input_name: str
    row_shape: tuple
    seed: int | None


def threshold(rate: float) -> np.int32:
    """The signed 32-bit threshold that a uniform int32 value reaches with probability 1 - rate."""
    first_kept = int(np.ceil(float(rate) * 2.0 ** 32))  # as an unsigned value in [0, 2^32]
    return np.int32(min(first_kept, 2 ** 32 - 1) - 2 ** 31)


def draw(rng: np.random.Generator, rows: int, row_shape: tuple) -> np.ndarray:
    """Uniform int32 values of shape (rows,) + row_shape."""
    n = rows * int(np.prod(row_shape, dtype=np.int64))
    raw = rng.bit_generator.random_raw((n + 1) // 2)  # uint64: two int32 values each
    return raw.view(np.int32)[:n].reshape((rows,) + tuple(row_shape))


def feed_bits_to_dropouts(model, shapes_of=None) -> list[DropoutBits]:
    """Rewrite, in `model` (a ModelProto), every Dropout in training mode whose input is (batch, fixed sizes...) into
    a comparison of fed bits and a product; return the inputs the host must feed each step. `shapes_of`: a model
    with the same tensor names whose shapes ONNX's inference can follow (default: `model`)."""
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    if not any(n.op_type == "Dropout" for n in graph.node):
        return []
    batch = _batch_symbol(graph)
    if batch is None:
        return []
    try:
        inferred = onnx.shape_inference.infer_shapes(shapes_of if shapes_of is not None else model)
    except Exception:  # noqa: BLE001 (a graph ONNX's inference cannot read keeps its Dropout nodes, which is correct)
        return []
    types = {v.name: v.type.tensor_type for v in list(inferred.graph.value_info) + list(inferred.graph.input)}
    constants = _constants(graph)
    readers: dict[str, list] = {}  # tensor name -> the perm of each Transpose that reads it, None for other readers
    for node in graph.node:
        perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None) \
            if node.op_type == "Transpose" else None
        for name in node.input:
            readers.setdefault(name, []).append(perm if perm and perm[0] == 0 else None)
    # A tensor read only by Transposes of one perm (keeping the batch first) is wanted in that layout.
    transposes = {name: perms[0] for name, perms in readers.items()
                  if perms[0] is not None and all(p == perms[0] for p in perms)}
    feeds, nodes = [], []
    for node in graph.node:
        if node.op_type != "Dropout":
            nodes.append(node)
            continue
        row_shape = _row_shape(types.get(node.input[0]), batch)
        ratio = _input_constant(node, 1, constants, default=0.5)
        training = _input_constant(node, 2, constants, default=False)
        if row_shape is None or ratio is None or not training or not 0 <= float(ratio) < 1:
            nodes.append(node)
            continue
        k = len(feeds)
        elem = types[node.input[0]].elem_type
        dtype = helper.tensor_dtype_to_np_dtype(elem)
        bits = f"dropout_bits_{k}"
        perm = transposes.get(node.output[0])
        if perm is not None and len(perm) == len(row_shape) + 1:  # drawn as the reader wants them, then put back
            drawn = [row_shape[a - 1] for a in perm[1:]]
            graph.input.append(helper.make_tensor_value_info(f"{bits}_drawn", onnx.TensorProto.INT32,
                                                             [batch, *drawn]))
            back = [int(a) for a in np.argsort(perm)]
            nodes.append(helper.make_node("Transpose", [f"{bits}_drawn"], [bits], perm=back, name=f"{bits}_layout"))
            fed, row_shape = f"{bits}_drawn", drawn
        else:
            graph.input.append(helper.make_tensor_value_info(bits, onnx.TensorProto.INT32, [batch, *row_shape]))
            fed = bits
        one = np.ones((), dtype=dtype)
        graph.initializer.extend([
            numpy_helper.from_array(threshold(float(ratio)), f"{bits}_threshold"),
            numpy_helper.from_array(np.asarray(one / (one - np.asarray(ratio, dtype=dtype))), f"{bits}_scale")])
        mask = node.output[1] if len(node.output) > 1 and node.output[1] else f"{bits}_mask"
        nodes += [helper.make_node("GreaterOrEqual", [bits, f"{bits}_threshold"], [mask], name=f"{bits}_keep"),
                  helper.make_node("Cast", [mask], [f"{bits}_kept"], to=elem, name=f"{bits}_cast"),
                  helper.make_node("Mul", [node.input[0], f"{bits}_scale"], [f"{bits}_scaled"],
                                   name=f"{bits}_scale_mul"),
                  helper.make_node("Mul", [f"{bits}_scaled", f"{bits}_kept"], [node.output[0]],
                                   name=f"{bits}_mask_mul")]
        seed = next((int(a.i) for a in node.attribute if a.name == "seed"), None)
        feeds.append(DropoutBits(fed, tuple(row_shape), seed))
    if feeds:
        del graph.node[:]
        graph.node.extend(nodes)
    return feeds


def _batch_symbol(graph) -> str | None:
    """The symbolic batch size of the graph's first input."""
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].dim_param:
            return dims[0].dim_param
        return None
    return None


def _row_shape(tensor_type, batch: str):
    """The sizes after the batch axis when the tensor is (batch, fixed sizes...) and float; else None."""
    if tensor_type is None or tensor_type.elem_type not in (1, 10, 11, 16):  # float, float16, double, bfloat16
        return None
    dims = list(tensor_type.shape.dim)
    if not dims or dims[0].dim_param != batch:
        return None
    if any(not d.HasField("dim_value") for d in dims[1:]):
        return None
    return [int(d.dim_value) for d in dims[1:]]


def _constants(graph) -> dict:
    from onnx import numpy_helper

    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(a.t)
    return values


def _input_constant(node, index: int, constants: dict, default):
    """The constant value of the node's input `index`, `default` where the input is absent, None where it is not a
    constant."""
    if len(node.input) <= index or not node.input[index]:
        return default
    value = constants.get(node.input[index])
    return None if value is None else value.item()

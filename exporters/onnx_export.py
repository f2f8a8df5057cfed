"""The model as an ONNX file for any ONNX runtime.

The graph is the engine's inference graph (opset 18 or newer, the fused LSTM/GRU/RNN ops where the layers use them;
opset 20 and ai.onnx.ml where text layers use ONNX's string ops, so a text model's file takes strings),
with the model's input and output names, a symbolic `batch` axis, and `time` for an input's unknown second axis.
Metadata carries the Keras config (JSON, Keras 3 form) and the Netweaver version, so a file can be traced back to the
model that made it. The file is checked with `onnx.checker.check_model(full_check=True)` before it is written.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from core.errors import NetweaverError
from core.graph import text_array
from exporters.paths import prepare_output

MIN_OPSET = 18


def _name_dims(graph) -> None:
    """`batch` for axis 0; `time` for an input's unknown axis 1 (sequences, token ids), `<input>_time` when several
    inputs have one (their lengths may differ, as an encoder's and a decoder's do)."""
    def dims(vi):
        return vi.type.tensor_type.shape.dim

    for vi in list(graph.input) + list(graph.output):
        if len(dims(vi)) and dims(vi)[0].dim_param:
            dims(vi)[0].dim_param = "batch"
    timed = [vi for vi in graph.input if len(dims(vi)) in (2, 3) and dims(vi)[1].dim_param]
    for vi in timed:
        dims(vi)[1].dim_param = "time" if len(timed) == 1 else f"{vi.name}_time"


def to_onnx_proto(model, *, check: bool = True):
    """The ONNX ModelProto of `model`'s inference graph, with metadata; checked unless check=False."""
    import json

    import onnx

    from core.models.model import NETWEAVER_VERSION

    graph = model.inference_graph()
    metadata = {"netweaver_version": NETWEAVER_VERSION}
    try:
        from exporters.keras_config import to_config

        metadata["keras_config"] = json.dumps(to_config(model, "keras3"))
        metadata["keras_version"] = "3"
    except (NetweaverError, NotImplementedError, TypeError, ValueError, AttributeError):
        pass  # a subclassed model need not have a config; the graph is still a complete model
    proto = graph.to_model(metadata=metadata)
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < MIN_OPSET:
        raise NetweaverError(f"The engine produced opset {opset}; ONNX export needs opset {MIN_OPSET} or newer.")
    _name_dims(proto.graph)
    if check:
        onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model, filepath, *, check: bool = True):
    """Write `model` as an ONNX file; returns the ModelProto."""
    import onnx

    path = Path(os.fspath(filepath))
    proto = to_onnx_proto(model, check=check)
    prepare_output(path)
    onnx.save(proto, str(path))
    return proto


def run_onnx(filepath, inputs) -> list[np.ndarray]:
    """Run an ONNX file in a fresh ONNX Runtime CPU session (for checking what a file computes)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(filepath), providers=["CPUExecutionProvider"])
    arrays = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    feeds = {}
    for spec, arr in zip(sess.get_inputs(), arrays):
        if spec.type == "tensor(string)":
            feeds[spec.name] = text_array(arr)  # ONNX Runtime takes text as numpy object arrays of str
            continue
        dtype = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
                 "tensor(bool)": np.bool_, "tensor(double)": np.float64}.get(spec.type, np.float32)
        feeds[spec.name] = np.asarray(arr, dtype=dtype)
    return sess.run(None, feeds)

"""ONNX Runtime sessions and the choice of device.

The device is "auto", "cpu" or "cuda". onnxruntime-gpu lists CUDAExecutionProvider even on machines where CUDA
cannot load, so the only reliable test is to create the session and look at the providers it actually got; when
CUDA was asked for and did not come up, the session runs on the CPU and a visible message says so.
"""

from __future__ import annotations

import logging
import os
import warnings

import numpy as np

from core.errors import DeviceError

log = logging.getLogger("netweaver.runtime")

DEVICES = ("auto", "cpu", "cuda")
_default_device = os.environ.get("NETWEAVER_DEVICE", "auto")
_last_fallback_message: str | None = None
_cuda_usable: bool | None = None  # learnt from the first session that asked for CUDA


def set_default_device(device: str) -> None:
    global _default_device
    _default_device = check_device(device)


def default_device() -> str:
    return _default_device


def check_device(device: str | None) -> str:
    device = (device or _default_device).lower()
    if device not in DEVICES:
        raise DeviceError(f"Unknown device '{device}': expected one of {', '.join(DEVICES)}.")
    return device


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def cuda_usable() -> bool:
    """Whether a CUDA session can actually start here (probed once with a tiny model)."""
    if _cuda_usable is None:
        from onnx import TensorProto, helper

        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
        probe = helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe", [x],
                                                    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])]),
                                  opset_imports=[helper.make_opsetid("", 18)])
        probe.ir_version = 8
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            create_session(probe, "auto")
    return bool(_cuda_usable)


def last_fallback_message() -> str | None:
    """The message of the last CUDA-to-CPU fallback, for the GUI's status bar."""
    return _last_fallback_message


def _providers_for(device: str) -> list:
    if device == "cpu" or _cuda_usable is False:
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def session_options(*, threads: int | None = None, training: bool = False, spinning: bool | None = None):
    """ONNX Runtime's options for our sessions; `spinning` (whether idle pool workers spin) defaults to `training`.
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    # Spinning worker threads burn the cores that the GUI thread and data loading also need; without spinning a
    # recurrent model predicts 35% faster on a busy two-core machine (0.92 s against 1.45 s for the seed LSTM).
    # A training step is the opposite case: a recurrence hands its workers hundreds of small parallel pieces per
    # step, and waking a sleeping worker for each costs more than the piece (spinning: 33 against 27 LSTM steps/s,
    # 36 against 27 GRU steps/s on two idle cores), and handing the pieces out in smaller blocks balances them
    # better (another 3%: 30.4 against 29.4 LSTM steps/s, 33.7 against 32.8 GRU, measured in turns). So training
    # sessions spin and inference sessions do not.
    # A training step whose pool is starved of a core runs better without spinning: see session.ThreadChoice.
    spinning = training if spinning is None else spinning
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    if training:
        so.add_session_config_entry("session.intra_op.dynamic_block_base", "4")
    if threads:
        so.intra_op_num_threads = threads
    return so


def create_session(model, device: str | None = None, *, options=None):
    """An InferenceSession for `model` (ModelProto or bytes) on `device`; returns (session, device actually used)."""
    global _last_fallback_message, _cuda_usable
    import onnxruntime as ort

    ort.set_default_logger_severity(3)  # the CUDA probe otherwise prints errors on machines without a GPU
    device = check_device(device)
    payload = model if isinstance(model, (bytes, bytearray)) else model.SerializeToString()
    providers = _providers_for(device)
    so = options or session_options()
    if providers[0] == "CUDAExecutionProvider":
        # Where CUDA's libraries are missing ORT logs an error while probing; our own message says it better.
        ort.set_default_logger_severity(4)
    # ORT's EliminateDropout rewrite removes a Dropout whose mask output is unused even when its training_mode input
    # is a constant True: relu -> Dropout -> Dense then trained with no dropout at all (loss 0.0 where Keras's is
    # 7.8). Graphs with a Dropout keep it.
    disabled = ["EliminateDropout"] if b"Dropout" in payload else []
    try:
        sess = ort.InferenceSession(payload, sess_options=so, providers=providers, disabled_optimizers=disabled)
    except Exception as exc:  # CUDA libraries missing or broken: fall back below
        if providers[0] == "CPUExecutionProvider":
            raise
        log.debug("CUDA session failed: %s", exc)
        sess = ort.InferenceSession(payload, sess_options=so, providers=["CPUExecutionProvider"],
                                    disabled_optimizers=disabled)
    ort.set_default_logger_severity(3)
    used = "cuda" if "CUDAExecutionProvider" in sess.get_providers() else "cpu"
    if providers[0] == "CUDAExecutionProvider":
        _cuda_usable = used == "cuda"
    if device == "cuda" and used != "cuda":
        _last_fallback_message = ("CUDA was requested but could not be started (no usable GPU or CUDA libraries); "
                                  "running on the CPU instead.")
        warnings.warn(_last_fallback_message, RuntimeWarning, stacklevel=2)
    return sess, used


def run_model(model, feeds: dict[str, np.ndarray], device: str = "cpu") -> list[np.ndarray]:
    """Run a one-off model (used by eager execution)."""
    sess, _ = create_session(model, device)
    return sess.run(None, feeds)

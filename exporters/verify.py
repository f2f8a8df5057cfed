"""Verified export: read a written file back and check that it predicts what the model predicts.

ONNX files run in a fresh ONNX Runtime session; Keras files are read with Netweaver's own reader (a JSON or YAML
architecture gets the model's weights, a weights file goes into a fresh copy of the architecture); a Python script is
run with `keras` standing for Netweaver's engine (which speaks Keras's API) and gets the model's weights. The inputs
are a batch of the project's data when there is one, else random data of each input's shape and dtype (token ids
below the vocabulary size of the Embedding an integer input feeds). A failed check keeps the file, for inspection.
"""

from __future__ import annotations

import builtins
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import NetweaverError
from core.graph import STRING

ATOL, RTOL = 1e-5, 1e-5  # float32 arithmetic in a different order (other kernels) stays well inside these
BATCH = 16
UNKNOWN_AXIS = 10        # the length given to an axis the model leaves open (a sequence's time axis)


@dataclass
class Verification:
    path: Path
    fmt: str
    ok: bool
    largest: float            # the largest absolute difference over every output (inf when it could not be read)
    output: str               # the output where it occurred
    tolerance: float
    inputs: str               # what the predictions were compared on
    problem: str = ""         # why the file could not be read back or run

    @property
    def message(self) -> str:
        if self.ok:
            return (f"Verified: {self.path.name}, read back, predicts what the model predicts on {self.inputs}. "
                    f"Largest difference {self.largest:.3g} (at output '{self.output}'; tolerance "
                    f"{self.tolerance:.3g}).")
        where = f"; the largest difference is {self.largest:.3g} at output '{self.output}'" \
            if math.isfinite(self.largest) else ""
        why = f" {self.problem}" if self.problem else \
            f" It does not predict what the model predicts on {self.inputs} (tolerance {self.tolerance:.3g})"
        return (f"Verification FAILED for {self.path.name}:{why}{where}. The file is kept at {self.path} for "
                f"inspection.")


def sample_inputs(model, data=None, n: int = BATCH, seed: int = 0) -> tuple[list[np.ndarray], str]:
    """A batch of inputs and what it is: the project's data (`exporters.datasets.LoadedData`: its validation part
    when it has one) when it fits the model's inputs, else random data of the inputs' shapes and dtypes."""
    if data is not None:
        xs, part = (data.validation[0], "validation") if data.validation else (data.x, "training")
        if len(xs) == len(model.inputs) and all(len(x) for x in xs):
            count = min(n, len(xs[0]))
            return [np.asarray(x[:count]) for x in xs], f"{count} {part} samples of the project's data"
    from exporters.datasets import embeddings_fed_by

    rng = np.random.default_rng(seed)
    out, notes = [], []
    for tensor in model.inputs:
        shape = [n] + [UNKNOWN_AXIS if d is None else int(d) for d in tuple(tensor.shape)[1:]]
        if tensor.dtype == STRING:
            words = np.array(["the", "a", "cat", "sat", "on", "mat", "Good", "bad!", "film", "plot"], dtype=object)
            out.append(np.array([" ".join(rng.choice(words, size=rng.integers(1, 12))) for _ in range(
                int(np.prod(shape)))], dtype=object).reshape(shape))
            notes.append(f"random texts for '{tensor.name}'")
            continue
        dtype = np.dtype(tensor.dtype)
        if dtype.kind in "iu":
            vocab = min([e.input_dim for e in embeddings_fed_by(model, tensor)] or [UNKNOWN_AXIS])
            out.append(rng.integers(0, vocab, size=shape).astype(dtype))
            notes.append(f"token ids below {vocab} for '{tensor.name}'")
        elif dtype.kind == "b":
            out.append(rng.random(shape) < 0.5)
        else:
            out.append(rng.normal(size=shape).astype(dtype))
    what = f"{n} random samples" + (f" ({'; '.join(notes)})" if notes else "")
    return out, what


def _predict(model, xs) -> list[np.ndarray]:
    result = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    return [np.asarray(r) for r in (result if isinstance(result, (list, tuple)) else [result])]


def _architecture_with_weights(rebuilt, model):
    rebuilt.set_weights(model.get_weights())
    return rebuilt


def _run_script(path: Path, model):
    """Run a written Keras script with `keras` (or `tf_keras`) standing for Netweaver's engine; its model gets the
    model's weights (the script builds the architecture; its weights come from a separate file)."""
    real_import = builtins.__import__

    def engine_import(name, globals=None, locals=None, fromlist=(), level=0):
        head, dot, rest = name.partition(".")
        if level == 0 and head in ("keras", "tf_keras"):
            name = "core" + dot + rest
        return real_import(name, globals, locals, fromlist, level)

    namespace = {"__name__": "netweaver_verify", "__file__": str(path),
                 "__builtins__": dict(vars(builtins), __import__=engine_import)}
    exec(compile(path.read_text(encoding="utf8"), str(path), "exec"), namespace)  # our own export, just written
    return _architecture_with_weights(namespace["build_model"](), model)


def read_back(model, path, fmt: str, xs) -> list[np.ndarray]:
    """The predictions of the file at `path` (written from `model` in format `fmt`) on inputs `xs`."""
    from core.models import load_model, model_from_json, model_from_yaml

    path = Path(path)
    if fmt == "onnx":
        from exporters.onnx_export import run_onnx

        return [np.asarray(r) for r in run_onnx(path, xs)]
    if fmt == "json":
        reloaded = _architecture_with_weights(model_from_json(path.read_text(encoding="utf8")), model)
    elif fmt == "yaml":
        reloaded = _architecture_with_weights(model_from_yaml(path.read_text(encoding="utf8")), model)
    elif fmt in ("h5", "keras"):
        reloaded = load_model(path, compile=False)
    elif fmt == "weights":
        reloaded = model_from_json(model.to_json(target="keras3"))  # the same architecture, fresh weights
        reloaded.load_weights(path)
    elif fmt == "py":
        reloaded = _run_script(path, model)
    else:
        raise NetweaverError(f"Unknown export format {fmt!r}.")
    return _predict(reloaded, xs)


def verify_export(model, path, fmt: str, xs=None, inputs: str = "the given inputs") -> Verification:
    """Compare the file's predictions with the model's on `xs` (default: `sample_inputs(model)`)."""
    from exporters.datasets import output_name

    path = Path(path)
    if xs is None:
        xs, inputs = sample_inputs(model)
    expected = _predict(model, xs)
    names = [output_name(t) for t in model.outputs]
    scale = max(float(np.max(np.abs(e))) if e.size else 0.0 for e in expected)
    tolerance = ATOL + RTOL * scale
    try:
        got = read_back(model, path, fmt, xs)
    except Exception as exc:  # noqa: BLE001 - any failure to read back is the verification's finding
        return Verification(path, fmt, False, math.inf, "", tolerance, inputs,
                            f"It could not be read back: {type(exc).__name__}: {exc}.")
    if len(got) != len(expected):
        return Verification(path, fmt, False, math.inf, "", tolerance, inputs,
                            f"Read back, it has {len(got)} output(s); the model has {len(expected)}.")
    largest, where = 0.0, names[0] if names else ""
    for name, e, g in zip(names, expected, got):
        if e.shape != g.shape:
            return Verification(path, fmt, False, math.inf, name, tolerance, inputs,
                                f"Read back, its output '{name}' has shape {g.shape}; the model's has {e.shape}.")
        diff = np.abs(e.astype(np.float64) - g.astype(np.float64))
        d = float(np.max(np.where(np.isnan(diff), np.inf, diff))) if diff.size else 0.0
        if d > largest or (d == largest == 0.0 and not where):
            largest, where = d, name
    return Verification(path, fmt, largest <= tolerance, largest, where, tolerance, inputs)

"""Writing a model in one of the export formats, the one switch both front ends use (the export dialog and
`python main.py export`).

Formats: json and yaml (Keras config), h5 (legacy full model), weights (weights only: `NAME.weights.h5` gets Keras 3's
layout, another `.h5` the legacy one both Kerases read), keras (Keras 3 archive), onnx, py (a Keras script). `target`
("keras3" or "tf_keras2") is which Keras the file is for; ONNX has none and `.keras` is Keras 3's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.errors import ConfigError
from exporters.paths import prepare_output


@dataclass(frozen=True)
class ExportFormat:
    key: str
    label: str
    suffix: str          # the file name's ending for Keras 3 (`weights` uses `_weights.h5` for tf.keras 2)
    has_target: bool     # False: one form for every Keras (ONNX), or one Keras only (.keras)


FORMATS = {f.key: f for f in [
    ExportFormat("json", "Keras JSON (architecture)", ".json", True),
    ExportFormat("yaml", "Keras YAML (architecture)", ".yaml", True),
    ExportFormat("h5", "HDF5, whole model (.h5)", ".h5", True),
    ExportFormat("weights", "HDF5, weights only", ".weights.h5", True),
    ExportFormat("keras", "Keras 3 archive (.keras)", ".keras", False),
    ExportFormat("onnx", "ONNX", ".onnx", False),
    ExportFormat("py", "Python source (Keras script)", ".py", True),
]}
TARGETS = {"keras3": "Keras 3", "tf_keras2": "tf.keras 2"}


def suggested_name(stem: str, fmt: str, target: str) -> str:
    if fmt == "weights" and target == "tf_keras2":
        return f"{stem}_weights.h5"  # a `.weights.h5` name would select Keras 3's layout
    return stem + FORMATS[fmt].suffix


def write_export(model, path, fmt: str, target: str = "keras3") -> Path:
    """Write `model` to `path` in format `fmt` for `target`; returns the path."""
    if fmt not in FORMATS:
        raise ConfigError(f"Unknown export format {fmt!r}; known: {', '.join(FORMATS)}.")
    if target not in TARGETS:
        raise ConfigError(f"Unknown Keras target {target!r}; known: {', '.join(TARGETS)}.")
    if fmt == "keras" and target != "keras3":
        raise ConfigError("A .keras archive is Keras 3's format; for tf.keras 2 export HDF5 (.h5) instead.")
    out = Path(path)
    prepare_output(out)
    if fmt == "json":
        out.write_text(model.to_json(target=target, indent=2), encoding="utf8")
    elif fmt == "yaml":
        out.write_text(model.to_yaml(target=target), encoding="utf8")
    elif fmt == "h5":
        model.save(out, save_format="h5", target=target)
    elif fmt == "keras":
        model.save(out, save_format="keras")
    elif fmt == "weights":
        model.save_weights(out, target=target)
    elif fmt == "onnx":
        from exporters.onnx_export import export_onnx

        export_onnx(model, out)
    else:
        from exporters.python_source import export_python_source

        export_python_source(model, out, target=target)
    return out

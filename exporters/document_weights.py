"""A saved weights file loaded into a drawn model: all of it or nothing.

Reads Keras's `.weights.h5` and legacy `.h5` (weights-only or a full model's), Netweaver's checkpoint (`save_weights`
to any other path, e.g. `.npz`) and a project's weights sidecar (`<project>.weights.npz`, arrays keyed
'<node id>/<index>'). Every layer is checked before anything is given to the document; a file that does not fit
raises WeightsError naming each layer that does not, so a person sees every problem at once and the document is never
half-loaded. The result is {node id: arrays} for `core.commands.SetWeights`.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path

import numpy as np

from core.document import Document
from core.errors import FileFormatError, WeightsError
from exporters.weights_io import NATIVE_MANIFEST, plan_weights


def weights_from_file(doc: Document, filepath) -> dict[str, list[np.ndarray]]:
    """The weights the file gives each layer of the drawn model, as {node id: arrays in get_weights() order}."""
    path = Path(os.fspath(filepath))
    source = f"Weights file '{path.name}'"
    if not path.is_file():
        raise FileNotFoundError(f"No weights file at '{path}'.")
    if _is_project_sidecar(path):
        return _from_sidecar(doc, path, source)
    model = doc.to_model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan = plan_weights(model, path, source, skip_mismatch=True)  # every mismatch warned, none raised
    problems = [str(w.message).removesuffix(" Layer skipped (skip_mismatch=True).").removeprefix(f"{source}: ")
                for w in caught if issubclass(w.category, UserWarning)]
    if problems:
        raise WeightsError(f"{source} does not fit model '{model.name}'; nothing was loaded. "
                           f"{len(problems)} layer(s) do not fit:\n" + "\n".join(f"- {p}" for p in problems))
    plan.apply()
    ids = {node.name: nid for nid, node in doc.nodes.items()}
    return {ids[layer.name]: [np.array(w) for w in layer.get_weights()] for layer in model.layers
            if layer.weights and layer.name in ids}


def _is_project_sidecar(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    try:
        with np.load(path, allow_pickle=False) as z:
            return NATIVE_MANIFEST not in z.files and all("/" in k for k in z.files)
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"'{path.name}' is not a readable weights file ({exc}).") from exc


def _from_sidecar(doc: Document, path: Path, source: str) -> dict[str, list[np.ndarray]]:
    """A project's sidecar names node ids: it fits a drawing of the same project (or a copy of it)."""
    model = doc.to_model()
    per_node: dict[str, dict[int, np.ndarray]] = {}
    problems = []
    with np.load(path, allow_pickle=False) as z:
        for key in z.files:
            nid, _, index = key.rpartition("/")
            if nid not in doc.nodes or not index.isdigit():
                problems.append(f"the file's entry '{key}' is for no layer of this model")
                continue
            per_node.setdefault(nid, {})[int(index)] = z[key]
    out = {}
    for nid, node in doc.nodes.items():
        expected = [np.shape(w) for w in model.get_layer(node.name).get_weights()]
        stored = per_node.get(nid, {})
        got = [stored[i].shape for i in sorted(stored)]
        if stored and got != expected:
            problems.append(f"layer '{node.name}' ({node.class_name}) has weights of shapes {expected}, but the file "
                            f"holds {got}")
        elif expected and not stored:
            problems.append(f"layer '{node.name}' ({node.class_name}) has no weights in the file")
        elif stored:
            out[nid] = [stored[i] for i in sorted(stored)]
    if problems:
        raise WeightsError(f"{source} (a project's weights) does not fit model '{model.name}'; nothing was loaded. "
                           f"{len(problems)} problem(s):\n" + "\n".join(f"- {p}" for p in problems))
    return out

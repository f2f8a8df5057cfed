"""The `.nwproj` project file: a drawn model with everything needed to carry on working on it.

JSON with `schema_version`: the graph (layer configs, wires, node positions), compile/fit settings, dataset
references, the Keras generation an imported model came from (`keras_generation`: "keras3", "tf_keras2" or null; the
export dialog's default target), and the path of a sidecar weights file (`.npz`, relative to the project) for layers that carry weights
(imported models). Saving writes a temporary file beside the target and renames it over, so a crash never leaves a
half-written project. Fields that a newer Netweaver added and this one does not know are kept on re-save; a file of
a newer schema version is refused with a message saying so.

`training` holds what compile and fit take (see `core.training_run`): {"optimizer": name or Keras config, "loss":
name, config or one per output, "metrics": [...], "loss_weights": ..., "batch_size": 32, "epochs": 10,
"validation_split": 0.0, "shuffle": true, "seed": optional int}. `runs` lists the finished training runs
(`TrainingRun.to_dict()`: settings, dataset, the graph as drawn, history, times, outcome). Each entry of `datasets`
refers to data beside the project: {"name": ..., "path": "data.npz" (relative to the project), "x": [...], "y": [...],
"validation": optional {"x": [...], "y": [...], "path": optional, default the same file}}; in an .npz `x`/`y` name
arrays (one per model input/output, in order), in a .csv (header row) column names and in a .npy (one 2-D array)
column indices, whose columns make the one input and the one target. `python main.py train` (app/train_command.py)
and the window's Train button use both.

Autosave: `autosave(doc, path)` writes `<project>.autosave` (or one in the user's data folder for an untitled
document); `autosave_candidates()` lists the copies a crash left behind, which the app offers at its next start.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from core.document import Document
from core.errors import FileFormatError, NetweaverError
from exporters.paths import prepare_output

SCHEMA_VERSION = 1
FORMAT = "netweaver-project"
_KNOWN = {"format", "schema_version", "graph", "training", "datasets", "runs", "weights", "netweaver_version",
          "keras_generation"}


def project_dict(doc: Document, weights_file: str | None = None) -> dict:
    data = dict(doc.extra)  # unknown fields first, so ours win where names clash
    data.update({"format": FORMAT, "schema_version": SCHEMA_VERSION, "netweaver_version": _version(),
                 "graph": doc.graph_dict(), "training": doc.training, "datasets": doc.datasets,
                 "runs": [run.to_dict() for run in doc.runs], "weights": weights_file,
                 "keras_generation": doc.keras_generation})
    return data


def _version() -> str:
    from core.models.model import NETWEAVER_VERSION

    return NETWEAVER_VERSION


def give_ordinary_permissions(path) -> None:
    """mkstemp makes files private (0600); a saved project or history is an ordinary file (0666 less the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _atomic_write(path: Path, write) -> None:
    prepare_output(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    give_ordinary_permissions(tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def weights_path_for(path: Path) -> Path:
    return path.with_name(path.stem + ".weights.npz")


def _write_weights(doc: Document, wpath: Path) -> str | None:
    """The sidecar `.npz` ('<node id>/<index>' -> array, and 'runs/<run>/<node id>/<index>' for the weights each run
    ended with) when some layer or run carries weights; its file name or None."""
    firsts = {}  # a shared layer's weights are stored once, under its first call
    for nid, n in doc.nodes.items():
        firsts.setdefault(n.layer_key, nid)
    arrays = {f"{nid}/{i}": np.asarray(w) for nid in firsts.values() if doc.nodes[nid].weights
              for i, w in enumerate(doc.nodes[nid].weights)}
    for r, run in enumerate(getattr(doc, "runs", [])):
        for nid, ws in (run.weights or {}).items():
            arrays.update({f"runs/{r}/{nid}/{i}": np.asarray(w) for i, w in enumerate(ws or [])})
    if not arrays:
        return None
    _atomic_write(wpath, lambda f: np.savez(f, **arrays))
    return wpath.name


def save_project(doc: Document, path) -> Path:
    """Write the project (and its weights sidecar when some layer carries weights) atomically."""
    path = Path(path)
    weights_file = _write_weights(doc, weights_path_for(path))
    text = json.dumps(project_dict(doc, weights_file), indent=1, default=_jsonable)
    _atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    return path


def _jsonable(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (tuple, set)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def load_project(path) -> Document:
    """Read a project; any problem raises FileFormatError naming the file and what is wrong."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FileFormatError(f"Cannot read '{path}': {exc.strerror or exc}.") from exc
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FileFormatError(f"'{path.name}' is not a Netweaver project: it is not JSON text ({exc}).") from exc
    return project_from_dict(data, path)


def project_from_dict(data, path: Path | None = None) -> Document:
    where = f"'{path.name}'" if path else "The project"
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise FileFormatError(f"{where} is not a Netweaver project (no \"format\": \"{FORMAT}\" field).")
    version = data.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise FileFormatError(f"{where} has an invalid schema_version {version!r}; expected an integer >= 1.")
    if version > SCHEMA_VERSION:
        raise FileFormatError(f"{where} was written by a newer Netweaver (project schema {version}; this version "
                              f"reads schema {SCHEMA_VERSION} and older). Update Netweaver to open it.")
    graph = data.get("graph")
    if not isinstance(graph, dict) or not isinstance(graph.get("nodes"), list):
        raise FileFormatError(f"{where} has no graph (a 'graph' object with a 'nodes' list).")
    doc = Document(str(graph.get("name", "model")))
    try:
        doc.load_graph_dict(graph)
    except NetweaverError as exc:
        raise FileFormatError(f"{where}: {exc}") from exc
    doc.training = data.get("training") or {}
    doc.datasets = data.get("datasets") or []
    doc.runs = _runs(data.get("runs") or [], where)
    generation = data.get("keras_generation")
    if generation not in (None, "keras3", "tf_keras2"):
        raise FileFormatError(f"{where}: keras_generation must be 'keras3' or 'tf_keras2', got {generation!r}.")
    doc.keras_generation = generation
    doc.extra = {k: v for k, v in data.items() if k not in _KNOWN}
    weights_file = data.get("weights")
    if weights_file:
        if path is None:
            raise FileFormatError(f"{where} refers to weights file '{weights_file}' but has no folder to find it in.")
        _load_weights(doc, path.parent / weights_file, where)
    return doc


def _runs(entries, where: str) -> list:
    from core.training_run import TrainingRun

    if not isinstance(entries, list):
        raise FileFormatError(f"{where}: 'runs' must be a list of runs.")
    try:
        return [TrainingRun.from_dict(e, f"{where}: runs[{i}]") for i, e in enumerate(entries)]
    except NetweaverError as exc:
        raise FileFormatError(str(exc)) from exc


def _load_weights(doc: Document, wpath: Path, where: str) -> None:
    try:
        with np.load(wpath, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"{where}: cannot read its weights file '{wpath.name}': {exc}.") from exc
    per_node: dict[str, dict[int, np.ndarray]] = {}
    per_run: dict[tuple[int, str], dict[int, np.ndarray]] = {}
    for key, arr in arrays.items():
        nid, _, index = key.rpartition("/")
        if key.startswith("runs/"):
            _, run, nid = nid.split("/", 2)
            if not run.isdigit() or int(run) >= len(doc.runs) or not index.isdigit():
                raise FileFormatError(f"{where}: weights file '{wpath.name}' has an entry '{key}' for no run of the "
                                      f"project.")
            per_run.setdefault((int(run), nid), {})[int(index)] = arr
            continue
        if nid not in doc.nodes or not index.isdigit():
            raise FileFormatError(f"{where}: weights file '{wpath.name}' has an entry '{key}' for no layer of the "
                                  f"project.")
        per_node.setdefault(nid, {})[int(index)] = arr
    for nid, ws in per_node.items():
        for call in doc.calls_of(nid):  # every call of a shared layer has its weights
            doc.nodes[call].weights = [ws[i] for i in sorted(ws)]
    for (run, nid), ws in per_run.items():
        doc.runs[run].weights = dict(doc.runs[run].weights or {}, **{nid: [ws[i] for i in sorted(ws)]})


# -- autosave -------------------------------------------------------------------------------------------------------
def autosave_dir() -> Path:
    base = os.environ.get("NETWEAVER_DATA") or os.path.join(os.path.expanduser("~"), ".netweaver")
    return Path(base) / "autosave"


def autosave_path(path=None, untitled_key: str = "untitled") -> Path:
    if path:
        p = Path(path)
        return p.with_name(p.name + ".autosave")
    return autosave_dir() / f"{untitled_key}.nwproj.autosave"


def autosave(doc: Document, path=None, untitled_key: str = "untitled") -> Path:
    """Write the recovery copy. It remembers which project it belongs to so recovery can reopen it there."""
    target = autosave_path(path, untitled_key)
    data = project_dict(doc, None)
    data["autosave_of"] = str(Path(path).resolve()) if path else None
    data["weights"] = _write_weights(doc, target.with_name(target.name + ".weights.npz"))
    text = json.dumps(data, default=_jsonable)
    _atomic_write(target, lambda f: f.write(text.encode("utf-8")))
    _remember(target)
    return target


def discard_autosave(path=None, untitled_key: str = "untitled") -> None:
    target = autosave_path(path, untitled_key)
    for p in (target, target.with_name(target.name + ".weights.npz")):
        if p.exists():
            p.unlink()
    _forget(target)


def remove_autosave_file(autosave_file) -> None:
    """Delete one recovery copy (declined or recovered) and forget it."""
    target = Path(autosave_file)
    for p in (target, target.with_name(target.name + ".weights.npz")):
        if p.exists():
            p.unlink()
    _forget(target)


def load_autosave(autosave_file) -> tuple[Document, str | None]:
    """The recovered document and the project path it belongs to (None for an untitled one)."""
    path = Path(autosave_file)
    doc = load_project(path)
    origin = doc.extra.pop("autosave_of", None)
    return doc, origin


def _index_file() -> Path:
    return autosave_dir() / "index.json"


def _read_index() -> list[str]:
    try:
        entries = json.loads(_index_file().read_text(encoding="utf-8"))
        return [str(e) for e in entries] if isinstance(entries, list) else []
    except (OSError, ValueError):
        return []


def _remember(target: Path) -> None:
    entries = _read_index()
    t = str(target.resolve())
    if t not in entries:
        entries.append(t)
        text = json.dumps(entries)
        _atomic_write(_index_file(), lambda f: f.write(text.encode("utf-8")))


def _forget(target: Path) -> None:
    entries = _read_index()
    t = str(target.resolve())
    if t in entries:
        entries.remove(t)
        text = json.dumps(entries)
        _atomic_write(_index_file(), lambda f: f.write(text.encode("utf-8")))


def autosave_candidates() -> list[Path]:
    """Recovery copies left by a session that did not close cleanly."""
    return [Path(p) for p in _read_index() if Path(p).exists()]

"""Model weights in and out: Keras's two HDF5 layouts and Netweaver's own checkpoint.

Which layout a path gets when writing:
- `NAME.weights.h5`: Keras 3's layout. Every object Keras would visit gets a group: `layers/<key>/vars/0..` for a
  model's layers, where `<key>` is the snake_case class name made unique per container (`dense`, `dense_1`, ...; not
  the layer name), then sublayers under their attribute names (`lstm/cell/vars`, `bidirectional/forward_layer/cell/
  vars`, `time_distributed/layer/vars`, nested models under `functional/layers/...`). A `vars` group's attribute
  `name` holds the object's name. So a layer keeps its sublayers in the attributes Keras uses (`cell`,
  `forward_layer`, `backward_layer`, `layer`) for its weights to land where Keras looks for them.
- `NAME.h5` / `NAME.hdf5`: the legacy layout both Kerases read: root attributes `layer_names`, `backend`,
  `keras_version`; one group per layer with attribute `weight_names` and the arrays under those names. Loading
  matches layers by order among the layers that have weights (by name when `by_name=True`), and within a layer the
  trainable weights before the non-trainable ones, as Keras does. The full-model `.h5` keeps the same layout under
  `model_weights`, which loading finds by itself.
- any other path (the seed's `./weights/my_model`, where tf.keras writes a TensorFlow checkpoint): Netweaver's
  checkpoint, one zip (`numpy.savez`) file at exactly that path, holding arrays `w0, w1, ...` and a JSON manifest
  `__netweaver_weights__` (layer names, classes, weight names and shapes). It loads like the legacy layout.

Loading checks every layer's weight count and every shape first and raises `WeightsError` naming the layer, the
weight, what the model expects and what the file holds, before any weight changes. A file that is not what it claims
raises `FileFormatError` naming it.
"""

from __future__ import annotations

import io
import json
import os
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import FileFormatError, NetweaverError, WeightsError
from core.layers.base import Layer, Variable
from exporters.paths import prepare_output

# Attributes over this size do not fit an HDF5 object header; Keras splits them into name0, name1, ...
HDF5_OBJECT_HEADER_LIMIT = 64512
KERAS_VERSIONS = {"keras3": "3.15.1", "tf_keras2": "2.21.0"}
NATIVE_MANIFEST = "__netweaver_weights__"
TARGETS = tuple(KERAS_VERSIONS)


def check_target(target: str) -> str:
    if target not in KERAS_VERSIONS:
        raise ValueError(f"Unknown Keras target {target!r}; expected one of {', '.join(TARGETS)}.")
    return target


# -- which layout -------------------------------------------------------------------------------------------------
def layout_for_path(path, save_format: str | None = None) -> str:
    """'keras3' (.weights.h5), 'legacy' (.h5/.hdf5/save_format='h5') or 'native' (anything else)."""
    name = str(path).lower()
    if save_format in ("h5", "legacy_h5"):
        return "legacy"
    if save_format in ("tf", "npz", "native"):
        return "native"
    if save_format not in (None, "keras", "keras3", "weights.h5"):
        raise ValueError(f"Unknown save_format {save_format!r}; expected 'h5', 'tf' or None.")
    if name.endswith(".weights.h5"):
        return "keras3"
    if name.endswith((".h5", ".hdf5", ".keras_h5")):
        return "legacy"
    return "native"


# -- HDF5 string-list attributes ------------------------------------------------------------------------------------
def _as_str(x) -> str:
    if isinstance(x, bytes):
        return x.decode("utf8")
    if isinstance(x, np.bytes_):
        return bytes(x).decode("utf8")
    return str(x)


# A damaged header can claim billions of entries; h5py would then read (or allocate) for minutes.
MAX_ATTR_ELEMENTS = 1_000_000


def _check_type(type_id, what: str, allowed) -> None:
    """Keras writes strings and numbers only. A damaged type message (a string turned into a variable-length
    sequence, say) can crash libhdf5 while reading, so anything else is refused before the read."""
    import h5py

    cls = type_id.get_class()
    if cls not in allowed and not (cls == h5py.h5t.ENUM and type_id.get_size() == 1):  # h5py's bool is an enum
        raise FileFormatError(f"{what} has HDF5 type class {cls}, not a string or number; the file is damaged.")


def read_attr(obj, name: str):
    """One attribute's value, refusing one whose (damaged) header claims an absurd size or an unexpected type."""
    import h5py

    aid = obj.attrs.get_id(name)
    what = f"attribute '{name}' of '{obj.name}'"
    _check_type(aid.get_type(), what, (h5py.h5t.STRING, h5py.h5t.FLOAT, h5py.h5t.INTEGER))
    n = int(np.prod(aid.shape or (1,), dtype=np.float64))
    if n > MAX_ATTR_ELEMENTS:
        raise FileFormatError(f"{what} claims {n} elements; the file is damaged.")
    return obj.attrs[name]


def read_dataset(ds) -> np.ndarray:
    """A dataset's array, refusing one whose header claims far more data than the file stores for it."""
    import h5py

    if not isinstance(ds, h5py.Dataset):
        raise FileFormatError(f"'{ds.name}' should be a dataset of weights but is a {type(ds).__name__}.")
    _check_type(ds.id.get_type(), f"dataset '{ds.name}'", (h5py.h5t.FLOAT, h5py.h5t.INTEGER))
    claimed = int(np.prod(ds.shape or (1,), dtype=np.float64)) * ds.dtype.itemsize
    stored = ds.id.get_storage_size()
    if claimed > (1 << 26) and claimed > 64 * max(stored, 1):
        raise FileFormatError(f"dataset '{ds.name}' claims {claimed} bytes but the file stores {stored}; the file "
                              f"is damaged.")
    return np.asarray(ds[()])


def read_str_list_attr(group, name: str) -> list[str]:
    """A list-of-strings attribute, joined back from Keras's `name0, name1, ...` chunks when it was split."""
    attrs = group.attrs
    if name in attrs:
        raw = [read_attr(group, name)]
    else:
        raw, i = [], 0
        while f"{name}{i}" in attrs:
            raw.append(read_attr(group, f"{name}{i}"))
            i += 1
        if not raw:
            raise KeyError(name)
    out: list[str] = []
    for chunk in raw:
        arr = np.asarray(chunk)
        if arr.ndim == 0:
            out.append(_as_str(arr.item()))
        elif arr.dtype.kind in "fiu" and arr.size == 0:
            continue  # Keras writes an empty float array for "no names"
        else:
            out.extend(_as_str(v) for v in arr.ravel())
    return out


def write_str_list_attr(group, name: str, values: list[str]) -> None:
    data = [v.encode("utf8") for v in values]
    if not data:
        group.attrs[name] = np.array([], dtype=np.float64)
        return
    arr = np.asarray(data)
    if arr.nbytes <= HDF5_OBJECT_HEADER_LIMIT:
        group.attrs[name] = arr
        return
    n_chunks = 1
    while True:
        chunks = np.array_split(arr, n_chunks)
        if all(c.nbytes <= HDF5_OBJECT_HEADER_LIMIT for c in chunks):
            break
        n_chunks += 1
        if n_chunks > len(arr):
            raise WeightsError(f"Attribute '{name}' has a single name longer than {HDF5_OBJECT_HEADER_LIMIT} bytes.")
    for i, chunk in enumerate(chunks):
        group.attrs[f"{name}{i}"] = chunk


def read_str_attr(group, name: str, default=None):
    if name not in group.attrs:
        return default
    value = read_attr(group, name)
    arr = np.asarray(value)
    return _as_str(arr.item() if arr.ndim == 0 else value)


# -- walking a model as Keras does ---------------------------------------------------------------------------------
# Attributes that hold the graph or bookkeeping of our layers and models, not sublayers of their own.
_NOT_CHILDREN = {"_layers", "_graph_layers", "_stack", "_input_layer", "_inbound_nodes", "inputs", "outputs",
                 "_input_structure", "_output_structure", "_nodes_in_order"}


def keras_snake_case(name: str) -> str:
    """Keras's `naming.to_snake_case` (Conv1D -> conv1d, LSTM -> lstm, TimeDistributed -> time_distributed)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _name_key(name: str) -> str:
    return f"~{name}" if name.startswith("_") else name


def _children(obj: Layer):
    """(attribute, child) pairs in Keras 3's saving order: a model's `layers` first, then attributes sorted by name
    with private ones last."""
    from core.models.functional import Functional

    if isinstance(obj, Functional):
        yield "layers", list(obj.layers)
        return
    for attr in sorted(vars(obj), key=_name_key):
        if attr.startswith("__") or attr in _NOT_CHILDREN:
            continue
        value = vars(obj)[attr]
        if isinstance(value, Layer) and value is not obj:
            yield attr, value
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Layer) for v in value):
            yield attr, list(value)
        elif isinstance(value, dict) and value and all(isinstance(v, Layer) for v in value.values()):
            yield attr, list(value.values())


def own_variables(layer: Layer) -> list[Variable]:
    return list(layer._trainable_variables) + list(layer._non_trainable_variables)


@dataclass
class SaveableEntry:
    path: str  # e.g. "layers/bidirectional/forward_layer/cell"
    layer: Layer
    variables: list[Variable]
    top: str | None  # the path of the model-level layer this belongs to ("layers/dense_1"); None: the model


def keras3_entries(model: Layer) -> list[SaveableEntry]:
    """Every object Keras 3 would visit when saving `model`, with its group path and own variables."""
    out: list[SaveableEntry] = []
    visited: set[int] = set()

    def visit(obj: Layer, path: str, top: str | None):
        if id(obj) in visited:
            return
        visited.add(id(obj))
        out.append(SaveableEntry(path, obj, own_variables(obj), top))
        for attr, child in _children(obj):
            child_path = f"{path}/{attr}" if path else attr
            if isinstance(child, list):
                used: dict[str, int] = {}
                for item in child:
                    key = keras_snake_case(type(item).__name__)
                    if key in used:
                        used[key] += 1
                        key = f"{key}_{used[key]}"
                    else:
                        used[key] = 0
                    item_path = f"{child_path}/{key}"
                    visit(item, item_path, top if top is not None else item_path)
            else:
                visit(child, child_path, top if top is not None else child_path)

    visit(model, "", None)
    return out


def _legacy_weights(layer: Layer) -> list[Variable]:
    """Keras's order in the legacy layout: trainable weights, then non-trainable ones."""
    return list(layer.trainable_weights) + list(layer.non_trainable_weights)


def _weighted_layers(model) -> list[Layer]:
    return [layer for layer in model.layers if layer.weights]


def _require_built(model) -> None:
    if not model.built:
        raise WeightsError(f"Model '{model.name}' is not built yet, so it has no weights to load or save. Give it "
                           f"an input shape (keras.Input, input_shape=..., or build()) first.")


# -- what a file holds ---------------------------------------------------------------------------------------------
@dataclass
class StoredLayer:
    name: str
    weight_names: list[str] = field(default_factory=list)
    arrays: list[np.ndarray] = field(default_factory=list)


@dataclass
class _Plan:
    """Weights to assign, all checked before any is assigned."""

    source: str
    pairs: list[tuple[Variable, np.ndarray]] = field(default_factory=list)

    def apply(self) -> None:
        for var, arr in self.pairs:
            var.assign(arr)


def _mismatch(msg: str, skip_mismatch: bool) -> None:
    """Keras's skip_mismatch: a layer that does not fit is left as it is, with a warning; otherwise an error."""
    if not skip_mismatch:
        raise WeightsError(msg)
    warnings.warn(msg + " Layer skipped (skip_mismatch=True).", stacklevel=4)


def _describe(names, shapes) -> str:
    return ", ".join(f"{n} {tuple(s)}" for n, s in zip(names, shapes)) or "none"


def _plan_layer(plan: _Plan, layer: Layer, stored: StoredLayer, skip_mismatch: bool) -> None:
    _plan_flat(plan, layer, _legacy_weights(layer), list(zip(stored.weight_names, stored.arrays)), skip_mismatch,
               holder=f"the file's layer '{stored.name}' has")


def plan_by_layers(model, stored: list[StoredLayer], *, by_name: bool, skip_mismatch: bool, source: str) -> _Plan:
    """Match stored layers to the model's layers (by order among those with weights, or by name)."""
    _require_built(model)
    plan = _Plan(source)
    stored_w = [s for s in stored if s.arrays]
    if by_name:
        index = {layer.name: layer for layer in model.layers}
        for s in stored_w:
            layer = index.get(s.name)
            if layer is None:
                continue  # Keras ignores layers the model does not have when loading by name
            _plan_layer(plan, layer, s, skip_mismatch)
        return plan
    ours = _weighted_layers(model)
    if len(ours) != len(stored_w):
        raise WeightsError(f"{source} holds weights for {len(stored_w)} layer(s) "
                           f"({', '.join(s.name for s in stored_w) or 'none'}), but model '{model.name}' has "
                           f"{len(ours)} layer(s) with weights ({', '.join(l.name for l in ours) or 'none'}).")
    for layer, s in zip(ours, stored_w):
        _plan_layer(plan, layer, s, skip_mismatch)
    return plan


# -- the legacy HDF5 layout ------------------------------------------------------------------------------------------
def read_legacy_group(group, source: str) -> list[StoredLayer]:
    from exporters.keras_generation import generation_of_version

    generation_of_version(read_str_attr(group, "keras_version", "") or "", source)  # Keras 1's layout: refused
    try:
        names = read_str_list_attr(group, "layer_names")
    except KeyError:
        raise FileFormatError(f"{source}: no 'layer_names' attribute, so this is not a Keras weights file.") from None
    out = []
    for name in names:
        if name not in group:
            raise FileFormatError(f"{source}: layer '{name}' is listed in layer_names but has no group.")
        g = group[name]
        try:
            wnames = read_str_list_attr(g, "weight_names")
        except KeyError:
            wnames = []
        arrays = []
        for w in wnames:
            if w not in g:
                raise FileFormatError(f"{source}: weight '{w}' of layer '{name}' is listed but missing.")
            arrays.append(read_dataset(g[w]))
        out.append(StoredLayer(name, wnames, arrays))
    return out


def _legacy_names(layer: Layer, target: str) -> list[str]:
    """Unique names for a layer's weights: the chain of (sub)layer names down to the weight, as tf.keras writes."""
    suffix = ":0" if target == "tf_keras2" else ""
    owner_path: dict[int, str] = {}

    def walk(obj: Layer, prefix: str):
        for v in own_variables(obj):
            owner_path.setdefault(id(v), f"{prefix}/{v.name}")
        for sub in obj._layers:
            if sub is not obj:
                walk(sub, f"{prefix}/{sub.name}")

    walk(layer, layer.name)
    names, seen = [], set()
    for w in _legacy_weights(layer):
        base = owner_path.get(id(w), f"{layer.name}/{w.name}")
        name, i = base, 1
        while name in seen:
            name, i = f"{base}_{i}", i + 1
        seen.add(name)
        names.append(name + suffix)
    return names


def write_legacy_group(group, model, target: str = "keras3") -> None:
    """The legacy layout into `group` (the file root for weights files, `model_weights` for full models)."""
    _require_built(model)
    write_str_list_attr(group, "layer_names", [layer.name for layer in model.layers])
    group.attrs["backend"] = "tensorflow"
    group.attrs["keras_version"] = KERAS_VERSIONS[check_target(target)]
    for layer in model.layers:
        g = group.create_group(layer.name)
        weights = _legacy_weights(layer)
        names = _legacy_names(layer, target)
        write_str_list_attr(g, "weight_names", names)
        for name, w in zip(names, weights):
            g.create_dataset(name, data=np.asarray(w.numpy()))
    top = group.create_group("top_level_model_weights")
    write_str_list_attr(top, "weight_names", [])


def legacy_weights_group(f):
    """The group holding the legacy layout: the root of a weights file, `model_weights` of a full-model file."""
    if "layer_names" in f.attrs or "layer_names0" in f.attrs:
        return f
    if "model_weights" in f:
        return f["model_weights"]
    return None


# -- Keras 3's .weights.h5 layout -----------------------------------------------------------------------------------
def _file_vars(group) -> list[np.ndarray]:
    if "vars" not in group:
        return []
    vg = group["vars"]
    keys = sorted(vg.keys(), key=lambda k: int(k) if k.isdigit() else 1 << 30)
    bad = [k for k in keys if not k.isdigit()]
    if bad:
        raise FileFormatError(f"unexpected entries {bad} in '{vg.name}' (expected 0, 1, ...).")
    return [read_dataset(vg[k]) for k in keys]


def _file_walk(group) -> list[tuple[str, np.ndarray]]:
    """All arrays under a group in Keras's order: own vars, then child groups (`layers` first, private last)."""
    out = [(f"{group.name}/vars/{i}", a) for i, a in enumerate(_file_vars(group))]
    children = [k for k in group.keys() if k != "vars" and hasattr(group[k], "keys")]

    def key(k):
        m = re.match(r"^(.*?)(?:_(\d+))?$", k)
        return (0 if k == "layers" else 1, _name_key(m.group(1)), int(m.group(2) or 0))

    for k in sorted(children, key=key):
        out.extend(_file_walk(group[k]))
    return out


def plan_keras3(model, f, *, by_name: bool, skip_mismatch: bool, source: str) -> _Plan:
    _require_built(model)
    plan = _Plan(source)
    entries = keras3_entries(model)
    by_top: dict[str | None, list[SaveableEntry]] = {}
    for e in entries:
        by_top.setdefault(e.top, []).append(e)
    used_groups: set[str] = set()
    file_by_name: dict[str, str] = {}
    if by_name and "layers" in f:
        for key in f["layers"].keys():
            name = read_str_attr(f["layers"][key]["vars"], "name") if "vars" in f["layers"][key] else None
            if name:
                file_by_name[name] = f"layers/{key}"

    for top, group_entries in by_top.items():
        ours = [(e, i, v) for e in group_entries for i, v in enumerate(e.variables)]
        if top is None:
            file_arrays = _file_vars(f)
            _plan_flat(plan, model, [v for _, _, v in ours], [("vars/" + str(i), a) for i, a in enumerate(file_arrays)],
                       skip_mismatch)
            continue
        root_path = top
        layer = group_entries[0].layer
        file_path = root_path
        if by_name:
            file_path = file_by_name.get(layer.name)
            if file_path is None:
                continue
        used_groups.add(file_path)
        if not ours:
            continue
        if file_path not in f:
            held = sorted(f"layers/{k}" for k in f["layers"].keys()) if "layers" in f else sorted(f.keys())
            msg = (f"{source}: no weights for layer '{layer.name}' ({type(layer).__name__}); expected the group "
                   f"'{file_path}', and the file holds {', '.join(held[:12]) or 'no groups'}"
                   f"{' ...' if len(held) > 12 else ''}. The file was saved from a different model.")
            _mismatch(msg, skip_mismatch)
            continue
        # Same structure as Keras: match each variable by its path; otherwise fall back to Keras's walk order.
        exact = []
        for e, i, v in ours:
            rel = e.path[len(root_path):]
            p = f"{file_path}{rel}/vars/{i}"
            if p not in f:
                exact = None
                break
            exact.append((v, p))
        if exact is not None:
            n_file = len(_file_walk(f[file_path]))
            if n_file == len(exact):
                pairs = [(v, p, read_dataset(f[p])) for v, p in exact]
                _plan_checked(plan, layer, pairs, skip_mismatch)
                continue
        _plan_flat(plan, layer, [v for _, _, v in ours], _file_walk(f[file_path]), skip_mismatch)

    if not by_name and "layers" in f:
        extra = [f"layers/{k}" for k in f["layers"].keys()
                 if f"layers/{k}" not in used_groups and _file_walk(f["layers"][k])]
        if extra:
            raise WeightsError(f"{source} holds weights for layer groups {extra} that model '{model.name}' does not "
                               f"have (its layers: {', '.join(l.name for l in model.layers)}).")
    return plan


def _plan_checked(plan: _Plan, layer, triples, skip_mismatch: bool) -> None:
    pairs = []
    for var, where, arr in triples:
        if tuple(var.shape) != tuple(arr.shape):
            msg = (f"{plan.source}: weight '{var.path}' of layer '{layer.name}' ({type(layer).__name__}) has shape "
                   f"{tuple(var.shape)}, but the file's '{where}' has shape {tuple(arr.shape)}.")
            _mismatch(msg, skip_mismatch)
            return
        pairs.append((var, arr))
    plan.pairs.extend(pairs)


def _plan_flat(plan: _Plan, layer, variables: list[Variable], file_items, skip_mismatch: bool,
               holder: str = "the file holds") -> None:
    """Pair variables with (name, array) items in order, checking count and shapes."""
    if len(variables) != len(file_items):
        msg = (f"{plan.source}: layer '{layer.name}' ({type(layer).__name__}) has {len(variables)} weight(s) "
               f"[{_describe([v.path for v in variables], [v.shape for v in variables])}], but {holder} "
               f"{len(file_items)} [{_describe([p for p, _ in file_items], [a.shape for _, a in file_items])}].")
        _mismatch(msg, skip_mismatch)
        return
    _plan_checked(plan, layer, [(v, p, a) for v, (p, a) in zip(variables, file_items)], skip_mismatch)


def write_keras3_file(f, model) -> None:
    _require_built(model)
    for e in keras3_entries(model):
        g = f.require_group(f"{e.path}/vars" if e.path else "vars")
        g.attrs["name"] = e.layer.name
        for i, v in enumerate(e.variables):
            g.create_dataset(str(i), data=np.asarray(v.numpy()))
        # state Keras 3 saves under its own key rather than as a weight (a tf_idf lookup's idf_weights)
        for key, value in getattr(e.layer, "keras3_named_variables", dict)().items():
            g.create_dataset(key, data=np.asarray(value))


# -- Netweaver's checkpoint -----------------------------------------------------------------------------------------
def write_native(path: Path, model) -> None:
    _require_built(model)
    manifest = {"format": "netweaver-weights", "version": 1, "model": model.name, "layers": []}
    arrays: dict[str, np.ndarray] = {}
    for layer in model.layers:
        entry = {"name": layer.name, "class_name": type(layer).__name__, "weights": []}
        for w in _legacy_weights(layer):
            key = f"w{len(arrays)}"
            arrays[key] = np.asarray(w.numpy())
            entry["weights"].append({"name": w.path, "key": key, "shape": list(w.shape)})
        manifest["layers"].append(entry)
    arrays[NATIVE_MANIFEST] = np.array(json.dumps(manifest))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())


def read_native(path: Path, source: str) -> list[StoredLayer]:
    try:
        with np.load(path, allow_pickle=False) as data:
            if NATIVE_MANIFEST not in data.files:
                raise FileFormatError(f"{source}: a zip/npz file without a Netweaver weights manifest.")
            manifest = json.loads(str(data[NATIVE_MANIFEST]))
            if not isinstance(manifest, dict) or manifest.get("format") != "netweaver-weights":
                raise FileFormatError(f"{source}: the manifest is not a Netweaver weights manifest.")
            out = []
            for entry in manifest["layers"]:
                weights = entry.get("weights", [])
                out.append(StoredLayer(str(entry["name"]), [str(w["name"]) for w in weights],
                                       [np.asarray(data[w["key"]]) for w in weights]))
            return out
    except NetweaverError:
        raise
    except (ValueError, KeyError, TypeError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise FileFormatError(f"{source}: not a readable Netweaver weights file ({exc}).") from exc


# -- front doors ------------------------------------------------------------------------------------------------------
def save_weights(model, filepath, overwrite: bool = True, save_format: str | None = None,
                 target: str = "keras3") -> None:
    """Write the model's weights; the layout follows the path's suffix (see the module docstring)."""
    import h5py

    path = Path(os.fspath(filepath))
    layout = layout_for_path(path, save_format)
    check_target(target)
    _require_built(model)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists and overwrite=False.")
    prepare_output(path)
    if layout == "native":
        write_native(path, model)
        return
    with h5py.File(path, "w") as f:
        if layout == "keras3":
            write_keras3_file(f, model)
        else:
            write_legacy_group(f, model, target)


def load_weights(model, filepath, by_name: bool = False, skip_mismatch: bool = False) -> None:
    """Read weights written by Keras (either layout) or by Netweaver; nothing changes unless all of them fit."""
    path = Path(os.fspath(filepath))
    source = f"Weights file '{path}'"
    if not path.exists():
        if Path(str(path) + ".index").exists():
            raise FileFormatError(f"'{path}' is a TensorFlow checkpoint; Netweaver reads .h5, .weights.h5 and its "
                                  f"own checkpoints. In TensorFlow, save the weights as NAME.weights.h5.")
        raise FileNotFoundError(f"No weights file at '{path}'.")
    plan_weights(model, path, source, by_name, skip_mismatch).apply()
    if hasattr(model, "_invalidate"):
        model._invalidate()


def plan_weights(model, path: Path, source: str, by_name: bool = False, skip_mismatch: bool = False) -> _Plan:
    """What loading the file would assign, every weight checked, nothing assigned yet."""
    if zipfile.is_zipfile(path):
        return plan_by_layers(model, read_native(path, source), by_name=by_name, skip_mismatch=skip_mismatch,
                              source=source)
    return _plan_from_hdf5(model, path, source, by_name, skip_mismatch)


def _plan_from_hdf5(model, path: Path, source: str, by_name: bool, skip_mismatch: bool) -> _Plan:
    return read_hdf5(path, source, lambda f: plan_from_open_hdf5(model, f, source, by_name, skip_mismatch))


# Errors h5py and numpy raise on damaged content; reading turns them into FileFormatError.
DAMAGED_FILE_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError, UnicodeDecodeError, EOFError)


def check_global_heaps(data, source: str) -> None:
    """Refuse an HDF5 file whose global heap collections (where variable-length strings such as `layer_names`
    live) do not add up: libhdf5 can loop forever, holding the GIL, on a damaged one.

    A collection is 'GCOL', version 1, three zero bytes, its size (8 bytes), then objects of a 16-byte header (index,
    reference count, reserved, size) and data padded to 8 bytes; object 0 is the free space up to the end, absent when
    less than a header's room is left.
    """
    end_of_file = len(data)
    at = data.find(b"GCOL\x01\x00\x00\x00")
    while at != -1:
        size = int.from_bytes(data[at + 8:at + 16], "little")
        end = at + size
        if size < 16 or end > end_of_file:
            raise FileFormatError(f"{source} is damaged: a global heap at byte {at} claims {size} bytes.")
        p = at + 16
        while p + 16 <= end:
            index = int.from_bytes(data[p:p + 2], "little")
            obj_size = int.from_bytes(data[p + 8:p + 16], "little")
            if index == 0:  # free space: its size covers its own header and the rest of the collection
                if p + obj_size != end:
                    raise FileFormatError(f"{source} is damaged: the free space of the global heap at byte {at} does "
                                          f"not end where the heap does.")
                p = end
                break
            p += 16 + (obj_size + 7) // 8 * 8
        if not 0 <= end - p < 16:  # less room than an object header is left unused
            raise FileFormatError(f"{source} is damaged: the objects of the global heap at byte {at} overrun it.")
        at = data.find(b"GCOL\x01\x00\x00\x00", end)


def read_hdf5(path_or_buffer, source: str, read):
    """`read(h5file)` on an open file; a file that is not HDF5 or is damaged gives a FileFormatError naming it."""
    import mmap

    import h5py

    if isinstance(path_or_buffer, io.BytesIO):
        check_global_heaps(path_or_buffer.getvalue(), source)
    else:
        with open(path_or_buffer, "rb") as fh:
            if os.fstat(fh.fileno()).st_size:
                with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                    check_global_heaps(data, source)
    try:
        f = h5py.File(path_or_buffer, "r")
    except OSError as exc:
        raise FileFormatError(f"{source} is not an HDF5 file (or is damaged): {exc}") from exc
    try:
        with f:
            return read(f)
    except NetweaverError:
        raise
    except DAMAGED_FILE_ERRORS as exc:
        raise FileFormatError(f"{source} is damaged: {type(exc).__name__}: {exc}") from exc


# Keras 2.13 to 2.15 wrote the `.keras` format too, with layer groups under `_layer_checkpoint_dependencies/`
# instead of `layers/`, and on Windows joined group paths with backslashes (one group named 'layers\\dense\\vars').
# Such files are read through a copy with Keras 3's paths.
_OLD_LAYERS_GROUP = "_layer_checkpoint_dependencies"


def holds_no_arrays(f) -> bool:
    found = []
    f.visititems(lambda name, obj: found.append(name) if hasattr(obj, "shape") else None)
    return not found


def _keras3_paths(f):
    """`f` itself when its group paths are Keras 3's; else an in-memory copy with a backslash read as `/` and
    `_layer_checkpoint_dependencies` as `layers`."""
    import h5py

    names = []
    f.visit(names.append)
    if not any("\\" in n or _OLD_LAYERS_GROUP in n for n in names):
        return f
    copy = h5py.File(io.BytesIO(), "w")
    for key, value in f.attrs.items():
        copy.attrs[key] = value

    def place(name, obj):
        parts = [p for p in name.replace("\\", "/").split("/") if p]
        path = "/".join("layers" if p == _OLD_LAYERS_GROUP else p for p in parts)
        if hasattr(obj, "shape"):
            copy.create_dataset(path, data=obj[()])
        else:
            copy.require_group(path)
        for key, value in obj.attrs.items():
            copy[path].attrs[key] = value

    f.visititems(place)
    return copy


def plan_from_open_hdf5(model, f, source: str, by_name: bool, skip_mismatch: bool) -> _Plan:
    f = _keras3_paths(f)
    legacy = legacy_weights_group(f)
    if legacy is not None:
        return plan_by_layers(model, read_legacy_group(legacy, source), by_name=by_name,
                              skip_mismatch=skip_mismatch, source=source)
    if "layers" in f or "vars" in f:
        return plan_keras3(model, f, by_name=by_name, skip_mismatch=skip_mismatch, source=source)
    raise FileFormatError(f"{source} is an HDF5 file but holds no Keras weights (neither 'layer_names' nor "
                          f"'layers/').")


__all__ = ["save_weights", "load_weights", "layout_for_path", "read_str_list_attr", "write_str_list_attr",
           "write_legacy_group", "legacy_weights_group", "plan_from_open_hdf5", "write_keras3_file",
           "keras3_entries", "keras_snake_case", "KERAS_VERSIONS"]

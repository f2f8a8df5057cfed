"""Whole models in one file: the legacy `.h5` (both Kerases) and Keras 3's `.keras` archive.

`.h5`: root attributes `model_config` (JSON `{class_name, config}`), `keras_version`, `backend`, and
`training_config` for a compiled model (with `optimizer_config` and `loss_weights`); the weights in the legacy layout
under `model_weights` (see `exporters.weights_io`). The target ("keras3" or "tf_keras2") picks the config dialect.

`.keras`: a zip of `config.json` (Keras 3's serialized model), `model.weights.h5` (Keras 3's weights layout) and
`metadata.json`; Keras 3 only.

A compiled model's optimizer state (iteration count, slots, Keras 3's learning-rate variable) goes with it, in the
order and under the names real Keras uses (`optimizer_weights` in `.h5`, `optimizer/vars/0..` in the archive), and
comes back into the loaded model's optimizer, so that `fit` goes on as if it had never stopped.

Loading builds the model from the config, then checks and loads all its weights; any failure raises (a damaged,
empty or non-Keras file is a `FileFormatError` naming the file) and no model is returned half-made.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np

from core.errors import FileFormatError, NetweaverError, WeightsError
from exporters import keras_config, weights_io
from exporters.paths import prepare_output


def _model_kind(path: Path, save_format: str | None) -> str:
    name = path.name.lower()
    if save_format in ("h5", "hdf5"):
        return "h5"
    if save_format in ("keras", "keras_v3"):
        return "keras"
    if save_format not in (None, "tf"):
        raise FileFormatError(f"Unknown save_format {save_format!r}; use 'keras' or 'h5'.")
    if name.endswith(".keras"):
        return "keras"
    if name.endswith((".h5", ".hdf5")):
        return "h5"
    raise FileFormatError(f"Cannot tell the format of '{path}': a full model is saved as NAME.keras (Keras 3 "
                          f"archive) or NAME.h5 (legacy HDF5, read by tf.keras 2 and Keras 3). TensorFlow's "
                          f"SavedModel directory is not supported.")


# -- training config -----------------------------------------------------------------------------------------------
# Optimizer arguments Keras 3 added; tf.keras 2's optimizers reject them.
_KERAS3_OPTIMIZER_KEYS = ("loss_scale_factor", "gradient_accumulation_steps")
# Keras 3.15's legacy-.h5 loader cannot resolve these short names ("Could not deserialize 'keras.metrics.mse'", also
# for the .h5 files it writes itself), so files for Keras 3 carry the full names.
_LOSS_ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error", "mape": "mean_absolute_percentage_error",
                 "msle": "mean_squared_logarithmic_error", "kld": "kl_divergence"}


def _training_config(model, target: str = "keras3", legacy_names: bool = True) -> dict | None:
    """What `compile` was given, in Keras's `training_config` form; None for a model that was not compiled.
    `legacy_names`: spell short loss and metric names out for Keras 3's legacy (.h5) loader; a .keras file keeps
    them as given, as Keras writes them (so that history keys such as 'mae' survive a save and load)."""
    compiled = getattr(model, "_compiled", None)
    optimizer = getattr(model, "optimizer", None)
    if compiled is None or optimizer is None or not hasattr(optimizer, "get_config"):
        return None

    def name_of(x):
        if x is None or isinstance(x, (str, int, float, bool)):
            return x
        if isinstance(x, (list, tuple)):
            return [name_of(v) for v in x]
        if isinstance(x, dict):
            return {k: name_of(v) for k, v in x.items()}
        if hasattr(x, "get_config"):
            return {"class_name": type(x).__name__, "config": x.get_config()}
        return getattr(x, "__name__", str(x))

    def full_names(x):
        if target != "keras3" or not legacy_names:
            return x
        if isinstance(x, str):
            return _LOSS_ALIASES.get(x, x)
        if isinstance(x, list):
            return [full_names(v) for v in x]
        if isinstance(x, dict) and "class_name" not in x:
            return {k: full_names(v) for k, v in x.items()}
        return x

    opt_config = dict(optimizer.get_config())
    if target == "keras3":
        optimizer_config = {"module": "keras.optimizers", "class_name": type(optimizer).__name__,
                            "config": opt_config, "registered_name": None}
    else:
        for key in _KERAS3_OPTIMIZER_KEYS:
            if opt_config.get(key) is None:
                opt_config.pop(key, None)
        # As tf.keras 2.21 writes it; without is_legacy_optimizer=False it builds its legacy optimizer, which
        # rejects the arguments of the current one.
        opt_config["is_legacy_optimizer"] = False
        optimizer_config = {"class_name": f"Custom>{type(optimizer).__name__}", "config": opt_config}
    return keras_config._plain({
        "loss": full_names(name_of(compiled.loss)),
        "metrics": full_names(name_of(compiled.metrics)),
        "weighted_metrics": name_of(compiled.weighted_metrics),
        "loss_weights": name_of(compiled.loss_weights),
        "optimizer_config": optimizer_config,
    })


def _compile_from(model, training_config: dict, source: str) -> bool:
    """Compile a loaded model as it was saved, when the engine can; warn (as Keras does) when it cannot."""
    if not hasattr(model, "compile") or not isinstance(training_config, dict):
        return False
    opt = training_config.get("optimizer_config") or "rmsprop"  # Keras's default optimizer
    try:
        from core import optimizers

        if isinstance(opt, dict):  # tf.keras 2 writes registered names such as 'Custom>Adam'
            opt = {"class_name": str(opt.get("class_name", "")).split(">")[-1], "config": opt.get("config", {})}
        optimizer = optimizers.get(opt)
        model.compile(optimizer=optimizer, loss=training_config.get("loss"),
                      metrics=training_config.get("metrics"), loss_weights=training_config.get("loss_weights"),
                      weighted_metrics=training_config.get("weighted_metrics"))
    except Exception as exc:  # noqa: BLE001 - the model is fine without it; Keras warns here too
        warnings.warn(f"{source}: the model was loaded but not compiled ({type(exc).__name__}: {exc}). Call "
                      f"model.compile(...) before training.", stacklevel=3)
        return False
    return True


# -- optimizer state ------------------------------------------------------------------------------------------------
# Keras makes an optimizer's slots in groups, each group's slots interleaved per weight (`add_optimizer_variables`
# in Keras 3, the `build` loops of tf.keras 2), and files list them in that order after the iteration count (and,
# in Keras 3, the learning rate when it is a constant). Each slot: (our name, Keras 3's name, tf.keras 2's name).
_SLOT_GROUPS = {
    "SGD": ((("momentum", "momentum", "m"),),),
    "Adam": ((("momentum", "momentum", "m"), ("velocity", "velocity", "v")),
             (("velocity_hat", "velocity_hat", "vhat"),)),
    "RMSprop": ((("velocity",) * 3,), (("momentum",) * 3,), (("average_gradient",) * 3,)),
    "Adagrad": ((("accumulator",) * 3,),),
    "Adadelta": ((("accumulated_grad",) * 3, ("accumulated_delta_var",) * 3),),
    "Adamax": ((("m", "momentum", "m"), ("norm", "norm", "u")),),
    "Nadam": ((("momentum", "momentum", "m"), ("velocity", "velocity", "v")),),
}


def _optimizer_layout(optimizer, variables, target: str) -> list[tuple]:
    """The optimizer's variables as real Keras lists them when built on `variables` (the model's trainable weights,
    as Keras builds it when it compiles a loaded model), each as (name in the file, where the value is in our
    `get_weights()`: an index, 'lr' for Keras 3's learning-rate variable, None for a slot Keras keeps and we do not
    (tf.keras 2's SGD has a momentum slot even at momentum 0), shape, dtype)."""
    keras3 = target == "keras3"
    prefix = optimizer.name
    optimizer.build(variables)
    # Slots of weights frozen since training are left out, so the file fits the model as it is saved.
    position = {id(v): j for j, v in enumerate(optimizer.slot_variables)}
    names = tuple(optimizer.state_slot_names)
    layout = [(f"{prefix}/iteration" if keras3 else "iteration:0", 0, (), "int64")]
    if keras3 and isinstance(optimizer.get_config().get("learning_rate"), (int, float)):
        layout.append((f"{prefix}/learning_rate", "lr", (), "float32"))  # a schedule is no variable in Keras 3
    groups = next((_SLOT_GROUPS[c.__name__] for c in type(optimizer).__mro__ if c.__name__ in _SLOT_GROUPS),
                  (tuple((n, n, n) for n in optimizer.slot_names),))
    keep_unused = not keras3 and any(c.__name__ == "SGD" for c in type(optimizer).__mro__)
    # The base optimizer's `build` makes the EMA averages, then (Keras 3 only) the gradient accumulators, before
    # the update rule's slots.
    base = [((n, n, n),) for n in ("average", "gradient_accumulator")
            if n in names and (keras3 or n == "average")]
    for group in base + list(groups):
        slots = [s for s in group if s[0] in names or keep_unused]
        for var in variables:
            for ours, name3, name2 in slots:
                index = 1 + position[id(var)] * len(names) + names.index(ours) if ours in names else None
                name = f"{prefix}/{var.path.replace('/', '_')}_{name3}" if keras3 else f"{prefix}/{name2}/{var.path}:0"
                layout.append((name, index, tuple(var.shape), var.dtype))
    if keras3:  # tf.keras 2 does not track Nadam's u_product; Keras 3 lists it last
        first = 1 + len(position) * len(names)
        for k, g in enumerate(sorted(getattr(optimizer, "global_slots", {}))):
            layout.append((f"{prefix}/{g}", first + k, (), "float32"))
    seen: set[str] = set()
    for i, (name, *rest) in enumerate(layout):  # two weights with one path (cells of two RNNs) need two names
        unique, n = name, 1
        while unique in seen:
            unique, n = f"{name}_{n}", n + 1
        seen.add(unique)
        layout[i] = (unique, *rest)
    return layout


def _optimizer_state(model, target: str) -> list[tuple[str, np.ndarray]] | None:
    """A compiled model's optimizer variables, named and ordered as real Keras writes them; None if not compiled."""
    optimizer = getattr(model, "optimizer", None)
    if getattr(model, "_compiled", None) is None or not hasattr(optimizer, "get_weights"):
        return None
    # An optimizer that has not stepped yet is still saved whole (zero slots), so it loads without a count mismatch.
    layout = _optimizer_layout(optimizer, model.trainable_weights, target)
    weights = optimizer.get_weights()
    out = []
    for name, index, shape, dtype in layout:
        if index == "lr":
            value = np.array(optimizer.learning_rate, dtype=np.float32)
        elif index is None:
            value = np.zeros(shape, dtype)
        else:
            value = np.asarray(weights[index])
        out.append((name, value))
    return out


def _optimizer_values(model, state, target: str, source: str):
    """Check a file's optimizer variables against the loaded model's optimizer: (its new `get_weights()` list, the
    learning rate the file holds or None). Nothing is changed but the (new) optimizer's empty slots."""
    optimizer = model.optimizer
    layout = _optimizer_layout(optimizer, model.trainable_weights, target)
    if len(state) != len(layout):
        raise WeightsError(f"{source}: the saved optimizer state has {len(state)} variables, but "
                           f"{type(optimizer).__name__} on model '{model.name}' has {len(layout)} "
                           f"({', '.join(n for n, *_ in layout[:4])}{', ...' if len(layout) > 4 else ''}). The file "
                           f"was saved with a different optimizer or model.")
    values = optimizer.get_weights()
    lr = None
    for (file_name, value), (name, index, shape, _) in zip(state, layout):
        if tuple(value.shape) != shape:
            raise WeightsError(f"{source}: optimizer variable '{file_name}' has shape {tuple(value.shape)}, but "
                               f"'{name}' of {type(optimizer).__name__} on model '{model.name}' has shape {shape}.")
        if index == 0 and not (np.isfinite(value) and value >= 0 and value == np.floor(value) and value < 2 ** 53):
            raise FileFormatError(f"{source}: the optimizer's iteration count '{file_name}' is {value}, not a "
                                  f"count of steps; the file is damaged.")
        if index == "lr":
            lr = float(value)
            if not (np.isfinite(lr) and lr >= 0):
                raise FileFormatError(f"{source}: the optimizer's learning rate '{file_name}' is {lr}; the file is "
                                      f"damaged.")
        elif index is not None:
            values[index] = np.asarray(value, dtype=values[index].dtype)
    globals_ = sorted(getattr(optimizer, "global_slots", {}))
    if target != "keras3" and "u_product" in globals_:
        # tf.keras 2 does not save Nadam's running product of momentum factors; it follows from the step count
        # (and is 0 in float32 long before 10,000 steps).
        t = np.arange(1, min(int(values[0]), 10_000) + 1, dtype=np.float32)
        factors = (np.float32(optimizer.beta_1) * (1 - np.float32(0.5) * np.float32(0.96) ** t)).astype(np.float32)
        values[len(values) - len(globals_) + globals_.index("u_product")] = np.prod(factors, dtype=np.float32)
    return values, lr


def _restore_optimizer(model, state, target: str, source: str, recorded: bool):
    """What `_optimizer_values` found, checked; applied by the returned function once the weights are in.
    When the file does not record which optimizer it used, ours is Keras's default, so a state that does not fit it
    is skipped with Keras's warning instead of refused."""
    if not state or getattr(model, "_compiled", None) is None:
        return lambda: None
    if target == "legacy":
        warnings.warn(f"{source} holds the state of a Keras 2 legacy optimizer (before 2.11), whose variables are "
                      f"ordered differently; it is not restored and the optimizer starts fresh.", stacklevel=4)
        return lambda: None
    try:
        values, lr = _optimizer_values(model, state, target, source)
    except WeightsError as exc:
        if recorded:
            raise
        warnings.warn(f"{exc} The optimizer starts fresh.", stacklevel=4)
        return lambda: None

    def apply():
        model.optimizer.set_weights(values)
        if lr is not None:
            model.optimizer.learning_rate = lr
    return apply


# -- saving ---------------------------------------------------------------------------------------------------------
def save_model(model, filepath, overwrite: bool = True, save_format: str | None = None,
               include_optimizer: bool = True, target: str = "keras3") -> None:
    path = Path(os.fspath(filepath))
    kind = _model_kind(path, save_format)
    weights_io.check_target(target)
    if kind == "keras" and target != "keras3":
        raise FileFormatError("The .keras archive is Keras 3's format; for tf.keras 2 save as NAME.h5.")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists and overwrite=False.")
    weights_io._require_built(model)
    config = keras_config.to_config(model, target)  # fails before the file is touched
    if kind == "h5" and target == "tf_keras2":
        _check_tf_keras2_h5(model)
    prepare_output(path)
    if kind == "h5":
        _save_h5(model, path, config, include_optimizer, target)
    else:
        _save_keras(model, path, config)


def _check_tf_keras2_h5(model) -> None:
    """tf.keras 2 keeps a tf_idf lookup's idf weights in a variable that its .h5 layout cannot hold: it refuses to
    save such a layer there, and refuses to load one written without it ("Layer count mismatch")."""
    for entry in weights_io.keras3_entries(model):
        if getattr(entry.layer, "keras3_named_variables", dict)():
            layer = entry.layer
            raise FileFormatError(f"Layer '{layer.name}' ({type(layer).__name__}, output_mode='tf_idf') keeps idf "
                                  f"weights that tf.keras 2's .h5 layout cannot hold (tf.keras 2 itself refuses to "
                                  f"save it as .h5); save it for Keras 3 (.keras, or .h5 with target 'keras3').")


def _save_h5(model, path: Path, config: dict, include_optimizer: bool, target: str) -> None:
    import h5py

    model_config = {"class_name": config["class_name"], "config": config["config"]}
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(model_config)
        f.attrs["keras_version"] = weights_io.KERAS_VERSIONS[target]
        f.attrs["backend"] = "tensorflow"
        training = _training_config(model, target) if include_optimizer else None
        if training is not None:
            f.attrs["training_config"] = json.dumps(training)
        weights_io.write_legacy_group(f.create_group("model_weights"), model, target)
        state = _optimizer_state(model, target) if include_optimizer else None
        if state:
            g = f.create_group("optimizer_weights")
            weights_io.write_str_list_attr(g, "weight_names", [name for name, _ in state])
            for name, value in state:
                g.create_dataset(name, data=value)


def _save_keras(model, path: Path, config: dict) -> None:
    import h5py

    config = dict(config)
    training = _training_config(model, "keras3", legacy_names=False)
    if training is not None:
        compile_config = {k: v for k, v in training.items() if k != "optimizer_config"}
        compile_config.update(optimizer=training["optimizer_config"], run_eagerly=False, steps_per_execution=1,
                              jit_compile=False)
        config["compile_config"] = compile_config
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        weights_io.write_keras3_file(f, model)
        state = _optimizer_state(model, "keras3")
        if state:
            g = f.create_group("optimizer/vars")
            g.attrs["name"] = model.optimizer.name
            for i, (_, value) in enumerate(state):
                g.create_dataset(str(i), data=value)
    metadata = {"keras_version": weights_io.KERAS_VERSIONS["keras3"],
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
                "saved_by": "netweaver"}
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("metadata.json", json.dumps(metadata))
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", buf.getvalue())


# -- loading --------------------------------------------------------------------------------------------------------
def load_model(filepath, custom_objects=None, compile: bool = True, safe_mode: bool = True):  # noqa: A002
    """A model from `.keras`, `.h5`/`.hdf5`, or a Keras JSON or YAML config (by content, then by suffix)."""
    path = Path(os.fspath(filepath))
    if not path.exists():
        raise FileNotFoundError(f"No model file at '{path}'.")
    if path.is_dir():
        raise FileFormatError(f"'{path}' is a directory (a TensorFlow SavedModel?); Netweaver reads .keras, .h5, "
                              f".json and .yaml model files.")
    source = f"Model file '{path}'"
    name = path.name.lower()
    head = path.read_bytes()[:8]
    if head.startswith(b"\x89HDF"):
        return _load_h5(path, source, custom_objects, compile, safe_mode)
    if zipfile.is_zipfile(path):
        return _load_keras(path, source, custom_objects, compile, safe_mode)
    if name.endswith(".json"):
        return keras_config.model_from_json(_read_text(path, source), custom_objects, safe_mode)
    if name.endswith((".yaml", ".yml")):
        return keras_config.model_from_yaml(_read_text(path, source), custom_objects, safe_mode)
    raise FileFormatError(f"{source} is neither an HDF5 (.h5) nor a zip (.keras) file, and its suffix is not "
                          f".json or .yaml.")


def _read_text(path: Path, source: str) -> str:
    try:
        return path.read_text(encoding="utf8")
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"{source} is not UTF-8 text: {exc}") from exc


def _load_h5(path: Path, source: str, custom_objects, compile: bool, safe_mode: bool):  # noqa: A002
    def read(f):
        raw = weights_io.read_attr(f, "model_config") if "model_config" in f.attrs else None
        if raw is None:
            hint = " (it holds weights only: build the model and call load_weights)" \
                if weights_io.legacy_weights_group(f) is not None or "layers" in f else ""
            raise FileFormatError(f"{source} has no 'model_config' attribute, so it is not a Keras model file{hint}.")
        config = _json_attr(raw, f"{source}: model_config")
        version = weights_io.read_str_attr(f, "keras_version", "") or (
            weights_io.read_str_attr(f["model_weights"], "keras_version", "") if "model_weights" in f else "")
        model = keras_config.model_from_dict(config, custom_objects, safe_mode, source=f"{source} (model_config)",
                                             keras_version=version or None)
        if "model_weights" not in f:
            raise FileFormatError(f"{source} has a model_config but no 'model_weights' group.")
        plan = weights_io.plan_from_open_hdf5(model, f, source, by_name=False, skip_mismatch=False)
        raw_training = weights_io.read_attr(f, "training_config") if "training_config" in f.attrs else None
        training = _json_attr(raw_training, f"{source}: training_config") if raw_training is not None else None
        return model, plan, training, _read_optimizer_h5(f, source), _state_layout(version, training)

    model, plan, training, state, target = weights_io.read_hdf5(path, source, read)
    restore = lambda: None  # noqa: E731
    if compile and training is not None and _compile_from(model, training, source):
        restore = _restore_optimizer(model, state, target, source, recorded="optimizer_config" in training)
    plan.apply()
    model._invalidate()
    restore()
    return model


def _state_layout(keras_version: str, training) -> str:
    """Whose order the file's optimizer variables follow: 'keras3', 'tf_keras2' (the optimizers of Keras 2.11 and
    later), or 'legacy' (older Keras 2 optimizers made each slot kind for all weights in turn, with other names)."""
    parts = [int(p) if p.isdigit() else 0 for p in keras_version.split(".")[:2]] + [0, 0]
    if parts[0] >= 3 or not keras_version:
        return "keras3"
    opt = training.get("optimizer_config") if isinstance(training, dict) else None
    legacy_flag = isinstance(opt, dict) and isinstance(opt.get("config"), dict) and \
        opt["config"].get("is_legacy_optimizer") is True
    return "legacy" if tuple(parts[:2]) < (2, 11) or legacy_flag else "tf_keras2"


def _read_optimizer_h5(f, source: str):
    """The `optimizer_weights` group's (name, array) pairs in its `weight_names` order; None when there is none."""
    if "optimizer_weights" not in f:
        return None
    group = f["optimizer_weights"]
    names = weights_io.read_str_list_attr(group, "weight_names")
    missing = [n for n in names if n not in group]
    if missing:
        raise FileFormatError(f"{source}: 'optimizer_weights' lists {missing[:3]} in weight_names but does not hold "
                              f"them; the file is damaged.")
    return [(n, weights_io.read_dataset(group[n])) for n in names]


def _json_attr(raw, what: str):
    try:
        return json.loads(raw.decode("utf8") if isinstance(raw, bytes) else str(raw))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FileFormatError(f"{what} is not valid JSON: {exc}") from exc


def _archive_keras_version(metadata_text: str | None) -> str | None:
    """The `keras_version` a .keras archive's metadata.json records (tf.keras 2.13 to 2.15 wrote .keras archives
    too); None when it records none."""
    try:
        metadata = json.loads(metadata_text) if metadata_text else None
    except json.JSONDecodeError:
        return None
    version = metadata.get("keras_version") if isinstance(metadata, dict) else None
    return version if isinstance(version, str) else None


def _load_layer_assets(model, assets: dict, f) -> None:
    """Hand each lookup layer the vocabulary Keras 3 saved as an asset (and its tf_idf weights, which Keras keeps
    as the layer's only variable)."""
    for entry in weights_io.keras3_entries(model):
        text = assets.get(f"assets/{entry.path}/vocabulary.txt")
        if text is None or not hasattr(entry.layer, "load_assets"):
            continue
        group = f"{entry.path}/vars"
        idf = f[group]["idf_weights"][()] if group in f and "idf_weights" in f[group] else None
        entry.layer.load_assets(text, idf)


def _load_keras(path: Path, source: str, custom_objects, compile: bool, safe_mode: bool):  # noqa: A002
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            missing = {"config.json", "model.weights.h5"} - names
            if missing:
                raise FileFormatError(f"{source} is a zip file but not a Keras archive: it lacks {sorted(missing)}.")
            config_text = z.read("config.json").decode("utf8")
            weights_bytes = z.read("model.weights.h5")
            # what preprocessing layers keep outside their config (an adapted vocabulary)
            assets = {n: z.read(n).decode("utf8") for n in names if n.startswith("assets/") and n.endswith(".txt")}
            metadata_text = z.read("metadata.json").decode("utf8") if "metadata.json" in names else None
    except NetweaverError:
        raise
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, EOFError, RuntimeError) as exc:
        raise FileFormatError(f"{source} is a damaged zip archive: {exc}") from exc
    try:
        config = json.loads(config_text)
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"{source}: config.json is not valid JSON: {exc}") from exc
    model = keras_config.model_from_dict(config, custom_objects, safe_mode, source=f"{source} (config.json)",
                                         keras_version=_archive_keras_version(metadata_text))
    weights_source = f"{source} (model.weights.h5)"

    def read(f):
        _load_layer_assets(model, assets, f)
        if not model.built:
            if weights_io.holds_no_arrays(f):  # saved before it was built, as Keras loads it: without weights
                return None, None
            raise FileFormatError(f"{weights_source} holds weights, but the model its config describes has no input "
                                  f"shape, so there is nothing to put them in (config.json lacks an InputLayer or a "
                                  f"build_config). The archive is damaged or was written by other software.")
        plan = weights_io.plan_from_open_hdf5(model, f, weights_source, by_name=False, skip_mismatch=False)
        state = None
        if "optimizer" in f:
            try:
                arrays = weights_io._file_vars(f["optimizer"])
            except FileFormatError as exc:
                raise FileFormatError(f"{weights_source}: {exc}") from exc
            state = [(f"optimizer/vars/{i}", a) for i, a in enumerate(arrays)]
        return plan, state

    plan, state = weights_io.read_hdf5(io.BytesIO(weights_bytes), weights_source, read)
    compile_config = config.get("compile_config") if isinstance(config, dict) else None
    restore = lambda: None  # noqa: E731
    if compile and isinstance(compile_config, dict) and compile_config.get("loss") is not None:
        training = dict(compile_config, optimizer_config=compile_config.get("optimizer"))
        if _compile_from(model, training, source):
            restore = _restore_optimizer(model, state, "keras3", weights_source,
                                         recorded=compile_config.get("optimizer") is not None)
    if plan is not None:
        plan.apply()
        model._invalidate()
    restore()
    return model

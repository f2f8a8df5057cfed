"""The model as a runnable Keras script: each layer constructed with its config, then the graph wired by calls.

    python model.py [--weights model.weights.h5]

`build_model(weights=None)` in the script rebuilds the model in real Keras (Keras 3, or tf.keras 2 through the
`tf_keras` package) and loads weights written by `save_weights` for the same target. Layer arguments are the
target's config values, so what the script builds is what the target would read from the JSON; as a person writes
it, each layer gets its required arguments by position, its name, and only the arguments that differ from Keras's
defaults. Lambda and custom
layers cannot be written as Keras source and raise a ConfigError.
"""

from __future__ import annotations

import copy
import inspect
import keyword
import os
import re
import textwrap
from pathlib import Path

import numpy as np

from core.errors import ConfigError
from core.layers.base import InputLayer, KerasTensor
from exporters.paths import prepare_output

_HEADERS = {
    "keras3": ("import keras\nfrom keras import layers\n", "Keras 3 (pip install keras tensorflow)"),
    "tf_keras2": ("import tf_keras as keras  # tf.keras 2; with TensorFlow <= 2.15: from tensorflow import keras\n"
                  "from tf_keras import layers\n", "tf.keras 2 (pip install tf_keras)"),
}
_LINE = 110
_OBJECT_MODULES = ("initializers", "regularizers", "constraints")


def _ident(name: str, used: set[str]) -> str:
    base = re.sub(r"\W", "_", name) or "x"
    if base[0].isdigit() or keyword.iskeyword(base) or base in ("keras", "layers", "model", "weights"):
        base = f"l_{base}"
    ident, i = base, 1
    while ident in used:
        ident, i = f"{base}_{i}", i + 1
    used.add(ident)
    return ident


def _literal(value, indent: str, target: str) -> str:
    """A Python expression for a config value; nested layer configs become constructor calls."""
    if isinstance(value, dict) and "class_name" in value and isinstance(value.get("config"), dict):
        module = str(value.get("module", "keras.layers"))
        kind = next((k for k in _OBJECT_MODULES if module.endswith(k)), None)
        if kind is not None and value.get("registered_name") is None:
            args = ", ".join(f"{k}={_literal(v, indent, target)}" for k, v in value["config"].items()
                             if not (k == "seed" and v is None))
            return f"keras.{kind}.{value['class_name']}({args})"
        if "layers" in module:
            return _constructor(value["class_name"], value["config"], indent, target)
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):  # StackedRNNCells' cells
        return "[" + ", ".join(_literal(v, indent, target) for v in value) + "]"
    if isinstance(value, float) and value != value:
        return 'float("nan")'
    return repr(value)


# Config keys that only `from_config` takes, not the constructor (tf.keras 2 builds MultiHeadAttention from them).
_FROM_CONFIG_ONLY = {"MultiHeadAttention": ("query_shape", "value_shape", "key_shape")}


def _defaults(cls, config: dict, target: str) -> tuple[list[str], dict | None]:
    """The layer's required arguments (in signature order) and the config the target Keras gives a layer made with
    only those: an argument equal to its value there is Keras's default and is left out. None when the class
    cannot be made that way (then every argument is written)."""
    from core.models.model_config import serialize_layer
    from exporters.keras_config import _plain, _to_keras3, _to_tf_keras2

    params = [p for p in inspect.signature(cls.__init__).parameters.values()
              if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    required = [p.name for p in params if p.default is p.empty and p.name in config]
    try:
        layer = cls.from_config(copy.deepcopy({k: config[k] for k in required}))
        entry = _plain(serialize_layer(layer))
    except Exception:  # noqa: BLE001 - a layer that needs more than its required arguments: write them all
        return required, None
    entry = _to_keras3(entry) if target == "keras3" else _to_tf_keras2(entry)
    return required, entry["config"]


def _bidirectional_as_written(config: dict) -> dict:
    """`Bidirectional(LSTM(..., name='x'))` for a config whose backward layer is the one Keras makes by itself (the
    forward layer's config with go_backwards=True, named 'backward_x', the forward one 'forward_x'); zero_output_for_mask
    is left to Bidirectional, which sets it to return_sequences."""
    forward, backward = config.get("layer"), config.get("backward_layer")
    if not (isinstance(forward, dict) and isinstance(backward, dict)):
        return config
    fc, bc = dict(forward.get("config") or {}), dict(backward.get("config") or {})
    name = str(fc.get("name", ""))
    if not name.startswith("forward_") or bc.get("name") != "backward_" + name[len("forward_"):] \
            or fc.get("go_backwards") or not bc.get("go_backwards"):
        return config
    rest = ("name", "go_backwards", "zero_output_for_mask")
    if {k: v for k, v in fc.items() if k not in rest} != {k: v for k, v in bc.items() if k not in rest}:
        return config
    fc["name"] = name[len("forward_"):]
    if fc.get("zero_output_for_mask") == fc.get("return_sequences", False):
        fc.pop("zero_output_for_mask", None)
    return {k: v for k, v in config.items() if k != "backward_layer"} | {"layer": dict(forward, config=fc)}


def _constructor(class_name: str, config: dict, indent: str, target: str = "keras3") -> str:
    """`layers.Class(required, ..., name=..., other=...)` with the required arguments first, by position, and only
    the other arguments that differ from Keras's defaults, as a person writes it."""
    from core.layers import layer_registry

    if class_name == "Lambda" or class_name not in layer_registry():
        raise ConfigError(f"Layer '{config.get('name')}' ({class_name}) cannot be written as Keras source: only "
                          f"built-in Keras layers can. Save the model as .keras/.h5 with its custom objects instead.")
    skipped = _FROM_CONFIG_ONLY.get(class_name, ())
    config = {k: v for k, v in config.items() if k not in skipped}
    if class_name == "Bidirectional":
        config = _bidirectional_as_written(config)
    required, defaults = _defaults(layer_registry()[class_name], config, target)
    inner = indent + "    "
    args = [_literal(config[k], inner, target) for k in required]
    args += [f"{k}={_literal(v, inner, target)}" for k, v in config.items()
             if k not in required and (k == "name" or defaults is None or k not in defaults or defaults[k] != v)]
    one_line = f"layers.{class_name}({', '.join(args)})"
    if len(indent) + len(one_line) <= _LINE:
        return one_line
    return f"layers.{class_name}(\n" + "".join(f"{inner}{a},\n" for a in args) + f"{indent})"


class _Writer:
    def __init__(self, target: str):
        self.target = target
        self.functions: list[str] = []
        self.used_functions: set[str] = set()

    def model_function(self, model, config: dict) -> str:
        """Emit `def build_<name>()` for a (possibly nested) model; returns the function's name."""
        from core.models.sequential import Sequential

        fname = _ident(f"build_{model.name}", self.used_functions)
        body = self._sequential_body(model, config) if isinstance(model, Sequential) \
            else self._functional_body(model, config)
        self.functions.append(f"def {fname}():\n" + "".join(textwrap.indent(line, "    ") + "\n" for line in body))
        return fname

    def _input_call(self, shape, dtype: str, name: str) -> str:
        extra = (f", batch_size={shape[0]!r}" if shape[0] is not None else "") + \
            (f", dtype={dtype!r}" if dtype != "float32" else "")
        return f"keras.Input(shape={tuple(shape[1:])!r}{extra}, name={name!r})"

    def _layer_expr(self, layer, entry: dict, indent: str) -> str:
        from core.models.functional import Functional

        if isinstance(layer, Functional):
            return f"{self.model_function(layer, entry)}()"
        return _constructor(entry["class_name"], entry["config"], indent, self.target)

    def _sequential_body(self, model, config: dict) -> list[str]:
        entries = [e for e in config["config"]["layers"] if e["class_name"] != "InputLayer"]
        lines = ["return keras.Sequential(", "    ["]
        if model.built:
            t = model.inputs[0]
            lines.append(f"        {self._input_call(t.shape, t.dtype, t._keras_history[0].name)},")
        for layer, entry in zip(model.layers, entries):
            lines.append(f"        {self._layer_expr(layer, entry, '        ')},")
        lines += ["    ],", f"    name={model.name!r},", ")"]
        return lines

    def _functional_body(self, model, config: dict) -> list[str]:
        entries = {e["name"]: e for e in config["config"]["layers"]}
        used: set[str] = set()
        layer_vars: dict[int, str] = {}
        tensor_vars: dict[int, str] = {}
        lines = []
        for layer in model.layers:
            if isinstance(layer, InputLayer):
                var = _ident(layer.name, used)
                tensor_vars[id(layer.output)] = var
                lines.append(f"{var} = {self._input_call(layer.batch_shape, layer.dtype, layer.name)}")
                continue
            var = _ident(layer.name, used)
            layer_vars[id(layer)] = var
            lines.append(f"{var} = {self._layer_expr(layer, entries[layer.name], '')}")

        def expr(x):
            if isinstance(x, KerasTensor):
                return tensor_vars[id(x)]
            if isinstance(x, (list, tuple)):
                inner = ", ".join(expr(v) for v in x)
                return f"[{inner}]"
            if isinstance(x, dict):
                return "{" + ", ".join(f"{k!r}: {expr(v)}" for k, v in x.items()) + "}"
            return repr(x)

        for node in model._nodes_in_order:
            if node.is_input:
                continue
            call_args, call_kwargs = node.call_args, node.call_kwargs
            if hasattr(node.layer, "keras_call"):  # a call recorded in another form than Keras writes it
                call_args, call_kwargs = node.layer.keras_call(call_args, call_kwargs)
            args = [expr(a) for a in call_args]
            args += [f"{k}={expr(v)}" for k, v in call_kwargs.items() if k not in ("training", "mask")
                     or isinstance(v, KerasTensor)]
            outs = [_ident(f"{node.layer.name}_out", used) for _ in node.outputs]
            for kt, var in zip(node.outputs, outs):
                tensor_vars[id(kt)] = var
            target = outs[0] if len(outs) == 1 else ", ".join(outs)
            lines.append(f"{target} = {layer_vars[id(node.layer)]}({', '.join(args)})")
        inputs = expr(model._input_structure)
        outputs = expr(model._output_structure)
        lines.append(f"return keras.Model(inputs={inputs}, outputs={outputs}, name={model.name!r})")
        return lines


def to_python_source(model, target: str = "keras3") -> str:
    """A Keras script that rebuilds `model` for `target` ("keras3" or "tf_keras2")."""
    from core.models.functional import Functional
    from core.models.model import NETWEAVER_VERSION
    from exporters.keras_config import to_config
    from exporters.weights_io import check_target

    check_target(target)
    if not isinstance(model, Functional) or not model.built:
        raise ConfigError(f"Model '{model.name}' is not a built Functional or Sequential model, so it has no layer "
                          f"graph to write as source.")
    writer = _Writer(target)
    main_fn = writer.model_function(model, to_config(model, target))
    imports, who = _HEADERS[target]
    weights_hint = "model.weights.h5" if target == "keras3" else "model_weights.h5"
    return (
        f'"""Model {model.name!r} for {who}, written by Netweaver {NETWEAVER_VERSION}.\n\n'
        f"    python {{this file}} [--weights {weights_hint}]\n\n"
        f"builds the model, loads the weights Netweaver saved for this target (save_weights(..., "
        f"target={target!r})), and prints its summary.\n"
        f'"""\n\nimport argparse\n\n{imports}\n\n'
        + "\n\n".join(writer.functions)
        + f"\n\ndef build_model(weights=None):\n    model = {main_fn}()\n"
        f"    if weights:\n        model.load_weights(weights)\n    return model\n\n\n"
        f'if __name__ == "__main__":\n'
        f"    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])\n"
        f'    parser.add_argument("--weights", help="weights file saved for this target")\n'
        f"    build_model(parser.parse_args().weights).summary()\n"
    )


def export_python_source(model, filepath, target: str = "keras3") -> Path:
    path = Path(os.fspath(filepath))
    source = to_python_source(model, target)
    compile(source, str(path), "exec")  # a script that does not parse is a bug here, not the user's problem
    prepare_output(path)
    path.write_text(source, encoding="utf8")
    return path


# -- a training script: the model, the project's data, compile and fit -------------------------------------------------
def _object_expr(value, module: str) -> str:
    """A loss, metric or optimizer as compile takes it: a name as it is, a config as its class built from it."""
    if isinstance(value, dict) and "class_name" in value:
        args = ", ".join(f"{k}={v!r}" for k, v in (value.get("config") or {}).items())
        return f"keras.{module}.{value['class_name']}({args})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_object_expr(v, module)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_object_expr(v, module) for v in value) + "]"
    return repr(value)


def _optimizer_expr(settings: dict) -> str:
    from core.training_run import make_optimizer

    optimizer = make_optimizer(settings)  # the class compile would make, with the settings' learning rate
    lr = settings.get("learning_rate")
    args = dict((settings["optimizer"].get("config") or {})) if isinstance(settings.get("optimizer"), dict) else {}
    defaults = type(optimizer)().get_config()  # only what differs from the optimizer's defaults is written
    args = {k: v for k, v in args.items() if k != "name" and (k not in defaults or defaults[k] != v)}
    if isinstance(lr, dict):
        args.pop("learning_rate", None)
        lr_expr = f"keras.optimizers.schedules.deserialize({lr!r})"
    elif lr is not None:
        lr_expr = repr(float(lr))
    else:
        lr_expr = None
    parts = ([f"learning_rate={lr_expr}"] if lr_expr else []) + \
        [f"{k}={v!r}" for k, v in args.items() if not (k == "learning_rate" and lr_expr)]
    return f"keras.optimizers.{type(optimizer).__name__}({', '.join(parts)})"


def _callbacks_expr(settings: dict) -> tuple[str, str]:
    """(lines defining what the callbacks need, the list expression)."""
    lines, items = "", []
    for i, spec in enumerate(settings.get("callbacks") or []):
        config = dict(spec.get("config") or {})
        if spec["class_name"] == "LearningRateScheduler":
            lines += f"schedule_{i} = keras.optimizers.schedules.deserialize({config.pop('schedule')!r})\n"
            config_args = "".join(f", {k}={v!r}" for k, v in config.items())
            items.append(f"keras.callbacks.LearningRateScheduler(lambda epoch, lr: float(schedule_{i}(epoch))"
                         f"{config_args})")
        else:
            items.append(f"keras.callbacks.{spec['class_name']}({', '.join(f'{k}={v!r}' for k, v in config.items())})")
    return lines, "[" + ", ".join(items) + "]"


def to_training_script(model, settings: dict, data_file: str, n_validation: int | None,
                       target: str = "keras3", dataset_note: str = "") -> str:
    """`to_python_source` plus the project's data (read from `data_file`, an .npz of x0.., y0.. and, when the
    project validates on its own data, val_x0.., val_y0..), compile with the project's settings, and fit."""
    from core.training_run import FIT_DEFAULTS, check_settings

    settings = check_settings(settings)
    source = to_python_source(model, target)
    head, main = source.split('\nif __name__ == "__main__":\n')
    callback_lines, callbacks = _callbacks_expr(settings)
    n_in, n_out = len(model.inputs), len(model.outputs)
    one = lambda prefix, n: f'data["{prefix}0"]' if n == 1 else "[" + ", ".join(
        f'data["{prefix}{i}"]' for i in range(n)) + "]"
    fit_args = [f"batch_size={settings['batch_size']}", "epochs=epochs"]
    if not settings["shuffle"]:
        fit_args.append("shuffle=False")
    if n_validation:
        fit_args.append("validation_data=validation")
    elif settings["validation_split"] != FIT_DEFAULTS["validation_split"]:
        fit_args.append(f"validation_split={settings['validation_split']}")
    if settings.get("callbacks"):
        fit_args.append("callbacks=callbacks")
    compile_args = [f"optimizer={_optimizer_expr(settings)}", f"loss={_object_expr(settings['loss'], 'losses')}"]
    for key, module in (("metrics", "metrics"), ("loss_weights", None), ("weighted_metrics", "metrics")):
        if settings.get(key):
            compile_args.append(f"{key}={_object_expr(settings[key], module) if module else repr(settings[key])}")
    saved = f"{model.name}.trained.keras" if target == "keras3" else f"{model.name}_trained.h5"
    seed = settings.get("seed")
    note = f"# The data: {dataset_note}\n" if dataset_note else ""
    return (
        head.replace("and prints its summary.", "and prints its summary.\n\nWith --train it trains the model as the "
                     "Netweaver project does (its data, compile and fit settings) and saves it.", 1)
        .replace("import argparse\n", "import argparse\nimport os\n\nimport numpy as np\n", 1)
        + "\n\n"
        f"{note}"
        f"DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), {data_file!r})\n\n\n"
        f"def load_data(path=DATA):\n"
        f'    """The project\'s data as fit takes it: (x, y) and the validation pair or None."""\n'
        f"    data = np.load(path)\n"
        f"    x, y = {one('x', n_in)}, {one('y', n_out)}\n"
        + (f"    return x, y, ({one('val_x', n_in)}, {one('val_y', n_out)})\n" if n_validation else
           "    return x, y, None\n")
        + "\n\n"
        "def compile_model(model):\n"
        "    model.compile(\n" + "".join(f"        {a},\n" for a in compile_args) + "    )\n"
        f"    return model\n\n\n"
        f"def train(weights=None, data=DATA, epochs={settings['epochs']}):\n"
        + (f"    keras.utils.set_random_seed({seed})\n" if seed is not None else "")
        + "    model = compile_model(build_model(weights))\n"
        "    x, y, validation = load_data(data)\n"
        + "".join(f"    {line}\n" for line in callback_lines.splitlines())
        + (f"    callbacks = {callbacks}\n" if settings.get("callbacks") else "")
        + f"    history = model.fit(x, y, {', '.join(fit_args)})\n"
        f"    model.save({saved!r})\n"
        f"    return model, history\n\n\n"
        'if __name__ == "__main__":\n'
        "    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])\n"
        '    parser.add_argument("--weights", help="weights file saved for this target")\n'
        '    parser.add_argument("--train", action="store_true", help="train as the project does, then save")\n'
        '    parser.add_argument("--data", default=DATA, help="the .npz of the project\'s data")\n'
        f'    parser.add_argument("--epochs", type=int, default={settings["epochs"]})\n'
        "    args = parser.parse_args()\n"
        "    if args.train:\n"
        "        train(args.weights, args.data, args.epochs)\n"
        "    else:\n"
        "        build_model(args.weights).summary()\n"
    )


def export_training_script(model, filepath, settings: dict, data, target: str = "keras3",
                           dataset_note: str = "") -> Path:
    """The script at `filepath` and the project's data (`data`: an `exporters.datasets.LoadedData`) beside it as
    `<name>_data.npz`, which the script reads."""
    path = Path(os.fspath(filepath))
    if data is None:
        raise ConfigError("A training script needs the project's data: choose the data in the Data panel first.")
    data_path = path.with_name(f"{path.stem}_data.npz")
    n_val = len(data.validation[0][0]) if data.validation else None
    source = to_training_script(model, settings, data_path.name, n_val, target, dataset_note)
    compile(source, str(path), "exec")
    prepare_output(path)
    arrays = {f"x{i}": a for i, a in enumerate(data.x)} | {f"y{i}": a for i, a in enumerate(data.y)}
    if data.validation:
        arrays |= {f"val_x{i}": a for i, a in enumerate(data.validation[0])}
        arrays |= {f"val_y{i}": a for i, a in enumerate(data.validation[1])}
    np.savez(data_path, **arrays)
    path.write_text(source, encoding="utf8")
    return path

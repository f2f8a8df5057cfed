"""The model as a runnable Keras script: each layer constructed with its config, then the graph wired by calls.

    python model.py [--weights model.weights.h5]

`build_model(weights=None)` in the script rebuilds the model in real Keras (Keras 3, or tf.keras 2 through the
`tf_keras` package) and loads weights written by `save_weights` for the same target. Layer arguments are the
target's config values, so what the script builds is what the target would read from the JSON. Lambda and custom
layers cannot be written as Keras source and raise a ConfigError.
"""

from __future__ import annotations

import keyword
import textwrap
import os
import re
from pathlib import Path

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


def _literal(value, indent: str) -> str:
    """A Python expression for a config value; nested layer configs become constructor calls."""
    if isinstance(value, dict) and "class_name" in value and isinstance(value.get("config"), dict):
        module = str(value.get("module", "keras.layers"))
        kind = next((k for k in _OBJECT_MODULES if module.endswith(k)), None)
        if kind is not None and value.get("registered_name") is None:
            args = ", ".join(f"{k}={_literal(v, indent)}" for k, v in value["config"].items())
            return f"keras.{kind}.{value['class_name']}({args})"
        if "layers" in module:
            return _constructor(value["class_name"], value["config"], indent)
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):  # StackedRNNCells' cells
        return "[" + ", ".join(_literal(v, indent) for v in value) + "]"
    if isinstance(value, float) and value != value:
        return 'float("nan")'
    return repr(value)


# Config keys that only `from_config` takes, not the constructor (tf.keras 2 builds MultiHeadAttention from them).
_FROM_CONFIG_ONLY = {"MultiHeadAttention": ("query_shape", "value_shape", "key_shape")}


def _constructor(class_name: str, config: dict, indent: str) -> str:
    from core.layers import layer_registry

    if class_name == "Lambda" or class_name not in layer_registry():
        raise ConfigError(f"Layer '{config.get('name')}' ({class_name}) cannot be written as Keras source: only "
                          f"built-in Keras layers can. Save the model as .keras/.h5 with its custom objects instead.")
    skipped = _FROM_CONFIG_ONLY.get(class_name, ())
    args = [f"{k}={_literal(v, indent + '    ')}" for k, v in config.items() if k not in skipped]
    one_line = f"layers.{class_name}({', '.join(args)})"
    if len(indent) + len(one_line) <= _LINE:
        return one_line
    inner = indent + "    "
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
        return f"keras.Input(shape={tuple(shape[1:])!r}, batch_size={shape[0]!r}, dtype={dtype!r}, name={name!r})"

    def _layer_expr(self, layer, entry: dict, indent: str) -> str:
        from core.models.functional import Functional

        if isinstance(layer, Functional):
            return f"{self.model_function(layer, entry)}()"
        return _constructor(entry["class_name"], entry["config"], indent)

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

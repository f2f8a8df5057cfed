"""`Model`: a layer with inference, summary, weights and files.

`Model(inputs, outputs)` makes a Functional model (as in Keras); subclassing `Model` and writing `call` makes a
subclassed model. Both compile to one ONNX inference graph (`inference_graph`), which `predict` runs in ONNX Runtime
and `to_onnx` writes.
"""

from __future__ import annotations

import numpy as np

from core import runtime
from core.errors import GraphError, InputDataError
from core.graph import STRING, GraphBuilder, dtype_name, graph_scope, is_text, is_text_list, text_array
from core.layers.base import Layer, flatten
from core.saving import SavingMixin
from core.training.trainer import TrainerMixin

NETWEAVER_VERSION = "0.1.0"


class Model(TrainerMixin, SavingMixin, Layer):
    supports_masking = True

    def __new__(cls, *args, **kwargs):
        if cls is Model and (args or "inputs" in kwargs or "outputs" in kwargs):
            from core.models.functional import Functional

            return Functional.__new__(Functional)
        return super().__new__(cls)

    def __init__(self, *args, **kwargs):
        if args or "inputs" in kwargs:  # Model(inputs, outputs) reached through Functional.__init__
            return
        super().__init__(**kwargs)
        self._predict_cache: dict = {}
        self._traced_input_specs = None

    # -- structure ---------------------------------------------------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        return list(self._layers)

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"Model '{self.name}' has {len(self.layers)} layers; index {index} is out of range.")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No layer named '{name}' in model '{self.name}'. Layers: "
                         f"{', '.join(l.name for l in self.layers)}.")

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False, show_trainable=False):
        from core.summary import print_summary

        print_summary(self, line_length=line_length, positions=positions, print_fn=print_fn,
                      show_trainable=show_trainable)

    def _invalidate(self) -> None:
        self._predict_cache = {}

    # -- inputs ------------------------------------------------------------------------------------------------
    def input_specs(self):
        """[(name, dtype, shape)] of the model's inputs; subclassed models know them once they have been called."""
        if self._traced_input_specs is None:
            raise GraphError(f"Model '{self.name}' has not been built: call it on data (or predict) first so its "
                             f"input shapes are known.")
        return self._traced_input_specs

    def _specs_from_data(self, arrays: list[np.ndarray]):
        return [(f"input_{i}" if len(arrays) > 1 else "input", _data_dtype(a), (None,) + tuple(a.shape[1:]))
                for i, a in enumerate(arrays)]

    # -- compiling to ONNX -------------------------------------------------------------------------------------
    def inference_graph(self, specs=None, *, training: bool = False, weights_as_inputs: bool = False) -> GraphBuilder:
        """Trace the model into an ONNX graph with a dynamic batch axis."""
        specs = specs or self.input_specs()
        g = GraphBuilder(self.name, training=training, weights_as_inputs=weights_as_inputs)
        placeholders = [g.add_input(name, dtype, shape) for name, dtype, shape in specs]
        keys = getattr(self, "_input_keys", None)
        if keys is not None:
            structure = dict(zip(keys, placeholders))
        else:
            structure = placeholders[0] if len(placeholders) == 1 else placeholders
        with graph_scope(g):
            outputs = self._symbolic_call((structure,), {"training": training})
        flat = flatten(outputs)
        names = self._graph_output_names(len(flat))
        g.set_outputs(flat, names)
        return g

    def _graph_output_names(self, n: int) -> list[str]:
        names = getattr(self, "output_names", None)
        if names and len(names) == n:
            return list(names)
        return [f"output_{i}" for i in range(n)] if n > 1 else ["output"]

    def to_onnx(self, path=None, *, check: bool = True):
        """The inference graph as an ONNX model (opset 18, dynamic batch; see `exporters.onnx_export`); written to
        `path` when given."""
        from exporters.onnx_export import export_onnx, to_onnx_proto

        return export_onnx(self, path, check=check) if path is not None else to_onnx_proto(self, check=check)

    # -- inference -----------------------------------------------------------------------------------------------
    def _prepare_inputs(self, x) -> list[np.ndarray]:
        if isinstance(x, dict) and self._traced_input_specs is None and not hasattr(self, "_init_graph"):
            # A subclassed model fed a dict (the endpoint pattern's {"inputs", "targets", ...}): its call takes
            # the dict, keyed as the data is.
            self._input_keys = list(x)
            self._traced_input_specs = [(k, _data_dtype(np.asarray(v)), (None,) + np.shape(v)[1:])
                                        for k, v in x.items()]
        if isinstance(x, dict):
            specs = self.input_specs()
            missing = [n for n, _, _ in specs if n not in x]
            if missing:
                raise InputDataError(f"Model '{self.name}': missing input(s) {missing} in the data dict "
                                     f"(keys: {sorted(x)}).")
            x = [x[n] for n, _, _ in specs]
        if is_text_list(x):
            x = text_array(x)  # a list of texts is one input's samples, not one input per text
        arrays = [np.asarray(a) for a in (x if isinstance(x, (list, tuple)) else [x])]
        if arrays and not isinstance(x, (list, tuple)) and arrays[0].dtype == object and not is_text(arrays[0]):
            raise InputDataError(f"Model '{self.name}': input data could not be read as a numeric array.")
        return arrays

    def _check_inputs(self, arrays: list[np.ndarray], specs) -> list[np.ndarray]:
        if len(arrays) != len(specs):
            raise InputDataError(f"Model '{self.name}' expects {len(specs)} input(s) "
                                 f"({', '.join(n for n, _, _ in specs)}), got {len(arrays)}.")
        out = []
        n = None
        for a, (name, dtype, shape) in zip(arrays, specs):
            if dtype == STRING:
                if not is_text(a):
                    raise InputDataError(f"Input '{name}' of model '{self.name}' expects text (dtype 'string': "
                                         f"str, or a numpy array of str or object holding str), got an array of "
                                         f"dtype {a.dtype}.")
                a = text_array(a)
            elif a.dtype.kind not in "biuf":
                what = "text" if is_text(a) else f"an array of dtype {a.dtype}"
                raise InputDataError(f"Input '{name}' of model '{self.name}' expects numbers ({dtype}), got {what}.")
            # Keras 3 adjusts a rank that differs by a trailing axis of 1 (a column of scalars for an Input of
            # shape (1,), as data from a dict of columns comes).
            if a.ndim == len(shape) - 1 and shape[-1] == 1:
                a = a[..., None]
            elif a.ndim == len(shape) + 1 and a.ndim > 1 and a.shape[-1] == 1:
                a = a[..., 0]
            if a.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape[1:], a.shape[1:])):
                raise InputDataError(f"Input '{name}' of model '{self.name}' expects shape {shape}, got data of "
                                     f"shape {a.shape}.")
            if n is None:
                n = a.shape[0]
            elif a.shape[0] != n:
                raise InputDataError(f"Model '{self.name}': all inputs need the same number of samples, got "
                                     f"{[b.shape[0] for b in arrays]}.")
            out.append(a if dtype == STRING else np.ascontiguousarray(a, dtype=dtype))
        return out

    def _session_for(self, specs, device):
        from core.layers.base import _sublayers

        # state outside the weights (an adapted vocabulary or bins, baked into the graph) also makes a new graph
        key = (device, tuple((n, d, s) for n, d, s in specs),
               tuple((id(w), w._version) for w in self.weights),
               tuple(getattr(layer, "_nw_state_version", 0) for layer in _sublayers(self)))
        hit = self._predict_cache.get(key)
        if hit is None:
            g = self.inference_graph(specs)
            sess, used = runtime.create_session(g.to_model(), device)
            hit = (sess, [t.name for t in g.inputs], [t.name for t in g.outputs], used)
            self._predict_cache = {key: hit}
        return hit

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None, *, device=None):
        """Run the model on `x` batch by batch in ONNX Runtime; returns an array, or a list for several outputs."""
        from core.data import as_input_batches

        x = as_input_batches(x, steps)
        arrays = self._prepare_inputs(x)
        specs = self._predict_specs(arrays)
        arrays = self._check_inputs(arrays, specs)
        if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size <= 0):
            raise InputDataError(f"batch_size must be a positive integer, got {batch_size!r}.")
        batch_size = int(batch_size or 32)
        sess, in_names, out_names, _ = self._session_for(specs, runtime.check_device(device))
        n = arrays[0].shape[0] if arrays else 0
        if n == 0:
            raise InputDataError(f"Model '{self.name}': predict got no samples.")
        results = [[] for _ in out_names]
        for start in range(0, n, batch_size):
            feed = {name: a[start:start + batch_size] for name, a in zip(in_names, arrays)}
            for acc, value in zip(results, sess.run(out_names, feed)):
                acc.append(value)
        outs = [np.concatenate(r, axis=0) if len(r) > 1 else r[0] for r in results]
        return outs[0] if len(outs) == 1 else outs

    def _predict_specs(self, arrays):
        if self._traced_input_specs is None:
            self._traced_input_specs = self._specs_from_data(arrays)
        return self.input_specs()

    def __call__(self, *args, **kwargs):
        out = super().__call__(*args, **kwargs)
        if self._traced_input_specs is None and not hasattr(self, "_init_graph"):
            first = args[0] if args else None
            flat = [t for t in flatten([first]) if hasattr(t, "shape")]
            if flat and all(getattr(t, "dtype", None) is not None for t in flat):
                names = [f"input_{i}" if len(flat) > 1 else "input" for i in range(len(flat))]
                if isinstance(first, dict) and len(first) == len(flat):
                    self._input_keys = names = list(first)
                self._traced_input_specs = [(name, dtype_name(getattr(t, "dtype")), (None,) + tuple(t.shape[1:]))
                                            for name, t in zip(names, flat)]
        return out

    # -- weights ---------------------------------------------------------------------------------------------
    def set_weights(self, weights) -> None:
        super().set_weights(weights)
        self._invalidate()


def _data_dtype(a: np.ndarray) -> str:
    if is_text(a):
        return STRING
    if a.dtype.kind == "f":
        return "float32"
    if a.dtype.kind in "iu":
        return "int64" if a.dtype.itemsize > 4 else "int32"
    if a.dtype.kind == "b":
        return "bool"
    raise InputDataError(f"Input data of dtype {a.dtype} cannot be fed to a model (expected numbers or text).")


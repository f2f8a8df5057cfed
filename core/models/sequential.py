"""Sequential models: a stack of layers, built as a Functional graph once the input shape is known.

The input shape comes from the first layer's `input_shape`/`batch_input_shape`, an `InputLayer`/`Input` added first,
an explicit `build(input_shape)`, or the data of the first call/predict (deferred building, as in Keras).
"""

from __future__ import annotations

from core.errors import ConfigError, GraphError
from core.layers.base import Input, InputLayer, KerasTensor, Layer
from core.models.functional import Functional
from core.models.model import Model


class Sequential(Functional):
    def __init__(self, layers=None, name: str | None = None, trainable: bool = True, **kwargs):
        Model.__init__(self, name=name, trainable=trainable, **kwargs)
        self._stack: list[Layer] = []
        self._input_layer: InputLayer | None = None
        self.built = False
        for layer in layers or []:
            self.add(layer, rebuild=False)
        self._maybe_build_from_config()

    # -- the stack --------------------------------------------------------------------------------------------
    def add(self, layer, rebuild: bool = True) -> None:
        if isinstance(layer, KerasTensor):
            layer = layer._keras_history[0]
        if not isinstance(layer, Layer):
            raise ConfigError(f"Sequential '{self.name}' can only add layers, got {type(layer).__name__}.")
        if isinstance(layer, InputLayer):
            if self._stack or self._input_layer is not None:
                raise GraphError(f"Sequential '{self.name}': an InputLayer can only be the first layer.")
            self._input_layer = layer
        else:
            if any(l is layer for l in self._stack):
                raise GraphError(f"Sequential '{self.name}' already contains layer '{layer.name}'.")
            self._stack.append(layer)
        if rebuild:
            self._maybe_build_from_config(force=self.built)

    def pop(self) -> Layer:
        if not self._stack:
            raise GraphError(f"Sequential '{self.name}' has no layers to pop.")
        layer = self._stack.pop()
        if self.built:
            self._build_graph(self.inputs[0].shape, self.inputs[0].dtype)
        return layer

    @property
    def layers(self) -> list[Layer]:
        return list(self._stack)

    def _declared_input(self):
        if self._input_layer is not None:
            return self._input_layer.batch_shape, self._input_layer.dtype
        if self._stack and self._stack[0]._batch_input_shape is not None:
            return self._stack[0]._batch_input_shape, self._stack[0].dtype
        return None

    def _maybe_build_from_config(self, force: bool = False) -> None:
        declared = self._declared_input()
        if declared is not None:
            self._build_graph(*declared)
        elif force and self.built:
            self._build_graph(self.inputs[0].shape, self.inputs[0].dtype)

    def build(self, input_shape=None) -> None:
        if input_shape is None:
            declared = self._declared_input()
            if declared is None:
                raise GraphError(f"Sequential '{self.name}' cannot be built without an input shape.")
            input_shape = declared[0]
        self._build_graph(tuple(input_shape), self._stack[0].dtype if self._stack else "float32")

    def _build_graph(self, batch_shape, dtype) -> None:
        if not self._stack:
            return
        input_dtype = dtype
        # Embedding-first stacks take integer ids; Keras still declares the Input float32.
        if self._input_layer is not None:
            inp = self._input_layer.output
        else:
            inp = Input(batch_shape=tuple(batch_shape), dtype=input_dtype,
                        name=f"{self._stack[0].name}_input" if self._input_layer is None else None)
            self._input_layer = inp._keras_history[0]
        x = inp
        for layer in self._stack:
            try:
                x = layer(x)
            except Exception:
                self.built = False
                raise
            if isinstance(x, (list, tuple)):
                if len(x) != 1:
                    raise GraphError(f"Sequential '{self.name}': layer '{layer.name}' returns {len(x)} tensors; "
                                     f"each layer of a Sequential model must return one. Use the Functional API.")
                x = x[0]
        self._init_graph(inp, x)
        self._graph_layers = [l for l in self._graph_layers if not isinstance(l, InputLayer)]
        self._layers = list(self._stack)

    # -- running -----------------------------------------------------------------------------------------------
    def _ensure_built_for(self, shape, dtype) -> None:
        if not self.built:
            self._build_graph((None,) + tuple(shape[1:]), dtype)

    def call(self, inputs, training=None, mask=None):
        if not self.built:
            self._ensure_built_for(inputs.shape, inputs.dtype)
        return super().call(inputs, training=training, mask=mask)

    def _predict_specs(self, arrays):
        if not self.built:
            from core.models.model import _data_dtype

            if len(arrays) != 1:
                raise GraphError(f"Sequential '{self.name}' takes one input, got {len(arrays)}.")
            self._ensure_built_for(arrays[0].shape, _data_dtype(arrays[0]))
        return self.input_specs()

    def input_specs(self):
        if not self.built:
            raise GraphError(f"Sequential '{self.name}' has no input shape yet: give the first layer input_shape=..., "
                             f"add an Input, call build(input_shape), or call the model on data.")
        return super().input_specs()

    def get_config(self):
        from core.models.model_config import sequential_config

        return sequential_config(self)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from core.models.model_config import sequential_from_config

        return sequential_from_config(config, custom_objects=custom_objects, cls=cls)

"""Functional models: a DAG of layer calls from `Input`s to outputs.

The graph is the `Node`s that calling layers on `KerasTensor`s recorded. Running the model (for ONNX compilation,
or as a layer inside another model) replays those nodes in order on symbolic tensors.
"""

from __future__ import annotations

from core.errors import GraphError
from core.layers.base import InputLayer, KerasTensor, Layer, Node, flatten, map_structure
from core.models.model import Model


def _structure_of(x):
    """Keep the user's structure (single tensor, list, dict) so outputs come back in it."""
    return x


class Functional(Model):
    supports_masking = True

    def __init__(self, inputs, outputs, name: str | None = None, trainable: bool = True, **kwargs):
        super().__init__(name=name, trainable=trainable, **kwargs)
        self._init_graph(inputs, outputs)

    # -- building the graph ------------------------------------------------------------------------------------
    def _init_graph(self, inputs, outputs) -> None:
        self._input_structure = inputs
        self._output_structure = outputs
        flat_in = flatten(inputs)
        flat_out = flatten(outputs)
        for t in flat_in + flat_out:
            if not isinstance(t, KerasTensor):
                raise GraphError(f"Model '{self.name}': inputs and outputs must be Functional-API tensors "
                                 f"(from keras.Input and layer calls), got {type(t).__name__}.")
        for t in flat_in:
            if not isinstance(t._keras_history[0], InputLayer):
                raise GraphError(f"Model '{self.name}': input '{t.name}' is not an Input tensor; "
                                 f"pass the tensors that keras.Input returned.")
        if not flat_out:
            raise GraphError(f"Model '{self.name}' needs at least one output.")
        self.inputs = flat_in
        self.outputs = flat_out
        self._nodes_in_order, self._graph_layers = _map_graph(self.name, flat_in, flat_out)
        self._layers = list(self._graph_layers)
        names = [l.name for l in self._graph_layers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise GraphError(f"Model '{self.name}': layer names must be unique, but {dupes} appear more than once.")
        self.built = True
        self._invalidate()

    @property
    def layers(self) -> list[Layer]:
        return list(self._graph_layers)

    @property
    def input(self):
        """The model's input tensors in the structure the model was made with (a tensor, a list or a dict)."""
        return self._graph_structure("_input_structure", "input")

    @property
    def output(self):
        """The model's output tensors in the structure the model was made with."""
        return self._graph_structure("_output_structure", "output")

    def _graph_structure(self, attribute: str, which: str):
        if attribute not in self.__dict__:
            raise AttributeError(f"Model '{self.name}' has no {which} yet: it is not built. Give its first layer an "
                                 f"input shape (or start with keras.Input), or call it on data first.")
        return self.__dict__[attribute]

    @property
    def input_names(self) -> list[str]:
        return [t._keras_history[0].name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        names = []
        for t in self.outputs:
            layer, _, idx = t._keras_history
            n = layer.name if idx == 0 or len(layer._inbound_nodes[0].outputs) == 1 else f"{layer.name}_{idx}"
            while n in names:
                n = f"{n}_{len(names)}"
            names.append(n)
        return names

    def input_specs(self):
        return [(name, t.dtype, t.shape) for name, t in zip(self.input_names, self.inputs)]

    # -- running -----------------------------------------------------------------------------------------------
    def call(self, inputs, training=None, mask=None):
        flat_in = flatten(inputs) if not isinstance(inputs, dict) else [inputs[n] for n in self.input_names]
        if len(flat_in) != len(self.inputs):
            raise GraphError(f"Model '{self.name}' expects {len(self.inputs)} input(s), got {len(flat_in)}.")
        flat_masks = flatten(mask) if mask is not None else [None] * len(flat_in)
        tensor_map: dict[int, object] = {}
        for kt, t, m in zip(self.inputs, flat_in, flat_masks):
            if m is not None:
                t._keras_mask = m
            tensor_map[id(kt)] = t
        for node in self._nodes_in_order:
            if node.is_input:
                continue
            args = map_structure(lambda x: tensor_map[id(x)] if isinstance(x, KerasTensor) else x, node.call_args)
            kwargs = map_structure(lambda x: tensor_map[id(x)] if isinstance(x, KerasTensor) else x, node.call_kwargs)
            if training is not None and "training" not in kwargs:
                kwargs["training"] = training
            out = node.layer._symbolic_call(args, kwargs)
            for kt, o in zip(node.outputs, flatten(out)):
                tensor_map[id(kt)] = o
        outs = [tensor_map[id(kt)] for kt in self.outputs]
        self._last_output_masks = [getattr(o, "_keras_mask", None) for o in outs]
        return _rebuild(self._output_structure, outs)

    def compute_mask(self, inputs, mask=None):
        masks = getattr(self, "_last_output_masks", None)
        if not masks:
            return None
        return masks[0] if len(masks) == 1 else masks

    def get_config(self):
        from core.models.model_config import functional_config

        return functional_config(self)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from core.models.model_config import functional_from_config

        return functional_from_config(config, custom_objects=custom_objects, cls=cls)


def _rebuild(structure, flat_values):
    it = iter(flat_values)

    def take(x):
        return next(it) if isinstance(x, KerasTensor) else x

    return map_structure(take, structure)


def _map_graph(model_name: str, inputs: list[KerasTensor], outputs: list[KerasTensor]):
    """Nodes in execution order and layers in Keras's order (by depth, then first discovery from the outputs)."""
    node_depth: dict[int, int] = {}
    layer_index: dict[int, int] = {}
    nodes: dict[int, Node] = {}
    order: list[Node] = []  # post-order: parents before children
    visiting: set[int] = set()
    done: set[int] = set()
    input_ids = {id(t) for t in inputs}

    def visit(t: KerasTensor, consumer: str):
        layer, node_index, _ = t._keras_history
        node = layer._inbound_nodes[node_index]
        if id(layer) not in layer_index:
            layer_index[id(layer)] = len(layer_index)
        if isinstance(layer, InputLayer) and id(t) not in input_ids:
            raise GraphError(f"Model '{model_name}': '{consumer}' depends on input '{layer.name}', which is not "
                             f"among the model's inputs, so the output cannot be computed from them.")
        if id(node) in done:
            return
        if id(node) in visiting:
            raise GraphError(f"Model '{model_name}': the graph has a cycle through layer '{layer.name}'.")
        visiting.add(id(node))
        for parent in node.input_tensors:
            visit(parent, layer.name)
        visiting.discard(id(node))
        done.add(id(node))
        nodes[id(node)] = node
        order.append(node)

    for t in outputs:
        visit(t, t._keras_history[0].name)
    for t in inputs:  # unused inputs still belong to the model
        visit(t, t._keras_history[0].name)

    # Depth: outputs' nodes are 0, a node is one deeper than its deepest consumer.
    for node in reversed(order):
        d = node_depth.setdefault(id(node), 0)
        for parent in node.parent_nodes:
            node_depth[id(parent)] = max(node_depth.get(id(parent), 0), d + 1)
    # Keras's layer order: by depth (inputs first), ties by the order layers were met walking from the outputs.
    layer_depth: dict[int, int] = {}
    layers: dict[int, Layer] = {}
    for node in order:
        lid = id(node.layer)
        layers[lid] = node.layer
        layer_depth[lid] = max(layer_depth.get(lid, 0), node_depth[id(node)])
    ordered_layers = sorted(layers.values(), key=lambda l: (-layer_depth[id(l)], layer_index[id(l)]))
    return order, ordered_layers

"""Training steps give () scalars the rank of the (..., 1) tensors they meet (core.training.scalar_broadcast):
ONNX Runtime broadcasts those 30x faster, and the values are the same."""

import numpy as np
import onnx
import onnxruntime as ort

import core as keras
from core import layers, ops
from core.graph import GraphBuilder, graph_scope
from core.training import scalar_broadcast, step_graph
from core.training.scalar_broadcast import widen_scalars


def _graph():
    g = GraphBuilder("scalars")
    x = g.add_input("x", "float32", (None, 5, 1))
    s = g.add_input("s", "float32", ())
    with graph_scope(g):
        y = ops.add(ops.multiply(x, s), 1e-3)  # a computed scalar, then a constant
        g.set_outputs([y, ops.divide(ops.sum(x, axis=-1), s), ops.greater(y, 0.5)])
    return g


def test_scalars_meeting_a_last_axis_of_one_get_its_rank():
    plain, widened = _graph(), _graph()
    assert widen_scalars(widened) == 3  # the product's, the sum's and the comparison's; (N, 5) / () is left alone
    ranks = [[widened.values[i].ndim for i in n.inputs] for n in widened.nodes if n.op_type in ("Mul", "Add")]
    assert ranks == [[3, 3], [3, 3]]
    x = np.random.default_rng(0).standard_normal((4, 5, 1)).astype(np.float32)
    feeds = {"x": x, "s": np.array(1.7, np.float32)}
    runs = [ort.InferenceSession(g.to_model().SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
            for g in (plain, widened)]
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
        assert a.shape == b.shape


def test_a_layer_normalization_trains_the_same(monkeypatch):
    def trained(widen):
        monkeypatch.setattr(step_graph, "widen_scalars", scalar_broadcast.widen_scalars if widen else (lambda g: 0))
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((6, 4)), layers.Dense(8), layers.LayerNormalization(),
                                  layers.GlobalAveragePooling1D(), layers.Dense(1)])
        model.compile("adam", "mse")
        rng = np.random.default_rng(0)
        x, y = rng.standard_normal((32, 6, 4)).astype("float32"), rng.standard_normal((32, 1)).astype("float32")
        history = model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False).history
        return history, model.get_weights(), _scalars_against_last_axis_of_one(model)

    plain, plain_weights, plain_count = trained(False)
    widened, weights, count = trained(True)
    assert plain == widened
    for a, b in zip(weights, plain_weights):
        np.testing.assert_array_equal(a, b)
    assert plain_count > 0 and count == 0  # the variance plus epsilon, and its gradient's


def _scalars_against_last_axis_of_one(model) -> int:
    inferred = onnx.shape_inference.infer_shapes(model._train_state["train"].program.model_proto)
    graph = inferred.graph
    ranks = {v.name: [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
             for v in list(graph.value_info) + list(graph.input)}
    ranks.update({i.name: list(i.dims) for i in graph.initializer})
    return sum(1 for n in graph.node if n.op_type in scalar_broadcast.BINARY
               and any(ranks.get(i) == [] for i in n.input)
               and any(r is not None and len(r) >= 2 and r[-1] == 1 for r in map(ranks.get, n.input)))

"""Training steps run ReLU -> MaxPool as MaxPool -> ReLU (core.training.pool_first): the same numbers, with the
ReLU and its gradient on the pooled tensor. TensorFlow's gradient on ties: tests/interop/test_pool_gradients_tf.py."""

import numpy as np

import core as keras
from core import layers, ops
from core.graph import GraphBuilder, SymbolicTensor, graph_scope
from core.training import step_graph
from core.training.pool_first import pool_before_relu


def _trained(monkeypatch, swap):
    monkeypatch.setattr(step_graph, "pool_before_relu", pool_before_relu if swap else (lambda g: 0))
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12, 12, 1)), layers.Conv2D(8, 3, activation="relu"),
                              layers.MaxPooling2D(), layers.Conv2D(16, 3, activation="relu"),
                              layers.MaxPooling2D(padding="same"), layers.Flatten(),
                              layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 12, 12, 1)).astype("float32")
    history = model.fit(x, rng.integers(0, 3, 64), batch_size=16, epochs=3, verbose=0, shuffle=False).history
    graph = model._train_state["train"].program.model_proto.graph
    return history, model.get_weights(), [n.op_type for n in graph.node if n.op_type in ("Relu", "MaxPool")]


def test_a_convnet_trains_the_same_with_the_relu_after_the_pool(monkeypatch):
    plain, plain_weights, plain_order = _trained(monkeypatch, False)
    swapped, swapped_weights, order = _trained(monkeypatch, True)
    assert plain_order == ["Relu", "MaxPool", "Relu", "MaxPool"] and order == ["MaxPool", "Relu", "MaxPool", "Relu"]
    assert plain == swapped
    for a, b in zip(plain_weights, swapped_weights):
        np.testing.assert_array_equal(a, b)


def test_a_relu_read_elsewhere_or_a_pool_with_indices_stays():
    g = GraphBuilder("relu_read_twice")
    x = g.add_input("x", "float32", (None, 6, 6, 2))
    with graph_scope(g):
        r = ops.relu(x)
        layers.MaxPooling2D()(r)
        ops.add(r, 1.0)  # a residual branch reads the ReLU's output too
    assert pool_before_relu(g) == 0

    g = GraphBuilder("average_pool")
    x = g.add_input("x", "float32", (None, 6, 6, 2))
    with graph_scope(g):
        layers.AveragePooling2D()(ops.relu(x))  # not a maximum: ReLU does not commute with it
    assert pool_before_relu(g) == 0

    g = GraphBuilder("pool_with_indices")
    x = g.add_input("x", "float32", (None, 6, 6, 2))
    with graph_scope(g):
        layers.MaxPooling2D()(ops.relu(x))
    pool = next(n for n in g.nodes if n.op_type == "MaxPool")
    name = g.unique_name("indices")  # as the gradient rule of an overlapping pool adds it
    g.values[name] = SymbolicTensor(g, name, "int64", (None, 2, 3, 3))
    pool.outputs.append(name)
    assert pool_before_relu(g) == 0

"""Training steps keep convolution stacks channels first (core.training.channels_first): the same values, element by
element, with the Transposes between layers gone."""

import numpy as np
import onnxruntime as ort
import pytest

import core as keras
from core import layers, ops
from core.graph import GraphBuilder, graph_scope
from core.training import channels_first, step_graph
from core.training.channels_first import keep_channels_first
from core.training.gradients import _sum_leading


def _run(g, feeds):
    session = ort.InferenceSession(g.to_model().SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _transposes(g):
    return [n for n in g.live_nodes() if n.op_type == "Transpose"]


def _both(build, feeds):
    """Outputs of the graph `build` makes, as recorded and after the rewrite, and the rewritten graph."""
    plain, rewritten = build(), build()
    keep_channels_first(rewritten)
    return _run(plain, feeds), _run(rewritten, feeds), plain, rewritten


def _conv_output_graph(reader):
    """x: a convolution's output (N, C, W); its channels-last view gets a bias, a ReLU and a batch mean, then
    `reader` reads the result."""
    def build():
        g = GraphBuilder("stack")
        x = g.add_input("x", "float32", (None, 4, 6))
        with graph_scope(g):
            y = ops.transpose(x, (0, 2, 1))
            y = ops.relu(ops.add(y, np.arange(4, dtype=np.float32) - 1.5))
            y = ops.subtract(y, ops.mean(y, axis=(0, 1), keepdims=True))
            g.set_outputs(reader(y))
        return g
    return build


X = {"x": np.random.default_rng(0).standard_normal((3, 4, 6)).astype(np.float32)}


def test_elementwise_nodes_and_reductions_run_channels_first():
    outs = lambda y: [ops.transpose(ops.multiply(y, 2.0), (0, 2, 1)), ops.mean(y, axis=1),  # noqa: E731
                      ops.max(y, axis=2, keepdims=True), ops.reshape(ops.mean(y, axis=(0, 1), keepdims=True), (4,))]
    before, after, plain, rewritten = _both(_conv_output_graph(outs), X)
    assert len(_transposes(plain)) == 2 and _transposes(rewritten) == []
    np.testing.assert_array_equal(after[0], before[0])
    for a, b in zip(after[1:], before[1:]):  # sums in another order
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_a_reduction_over_the_batch_keeps_the_other_axes_in_order():
    """Summing a flipped (N, W, C) over the batch leaves (C, W) channels first, written back as (W, C); with W = 1
    the two hold their elements in the same order and a Reshape writes it back."""
    for steps in (6, 1):
        def build():
            g = GraphBuilder("batch_sum")
            x = g.add_input("x", "float32", (None, 4, steps))
            with graph_scope(g):
                y = ops.multiply(ops.transpose(x, (0, 2, 1)), 3.0)
                g.set_outputs([ops.sum(y, axis=0), ops.sum(y, axis=0, keepdims=True)])
            return g
        feeds = {"x": np.random.default_rng(2).standard_normal((3, 4, steps)).astype(np.float32)}
        before, after, _, rewritten = _both(build, feeds)
        assert after[0].shape == (steps, 4) and after[1].shape == (1, steps, 4)
        for a, b in zip(after, before):
            np.testing.assert_allclose(a, b, rtol=1e-6)
        assert len(_transposes(rewritten)) == (2 if steps > 1 else 0)


def test_other_readers_get_the_channels_last_tensor():
    outs = lambda y: [ops.matmul(y, np.ones((4, 2), np.float32)),  # noqa: E731
                      y.graph.emit("Shape", [y], {}, [("int64", (3,))])[0], ops.relu(y)]
    before, after, plain, rewritten = _both(_conv_output_graph(outs), X)
    for a, b in zip(after, before):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert after[0].shape == (3, 6, 2) and list(after[1]) == [3, 6, 4] and after[2].shape == (3, 6, 4)
    # the product reads the tensor in Keras's layout, the graph output (read by name) too: one Transpose each
    assert len(_transposes(rewritten)) == 2


def test_a_bias_gradient_sums_the_channels_first_rows():
    """`_sum_leading`'s ones-row product over (N * W, C) becomes a sum over W and the product over N."""
    def build():
        g = GraphBuilder("bias_gradient")
        x = g.add_input("x", "float32", (None, 4, 6))
        with graph_scope(g):
            g.set_outputs([_sum_leading(ops.multiply(ops.transpose(x, (0, 2, 1)), 2.0), 2, (4,))])
        return g
    before, after, plain, rewritten = _both(build, X)
    assert len(_transposes(plain)) == 1 and _transposes(rewritten) == []
    np.testing.assert_allclose(after[0], before[0], rtol=1e-6)
    np.testing.assert_allclose(after[0], 2 * X["x"].sum(axis=(0, 2)), rtol=1e-5)


def test_a_gradient_spread_over_the_steps_is_spread_channels_first():
    """An Expand of (N, 1, C) meeting a flipped tensor expands a transposed (N, C, 1) instead of transposing the
    whole (N, W, C) result (the gradient of a global pooling)."""
    def build():
        g = GraphBuilder("expand")
        x = g.add_input("x", "float32", (None, 4, 6))
        s = g.add_input("s", "float32", (None, 1, 4))
        with graph_scope(g):
            y = ops.transpose(x, (0, 2, 1))
            dims = g.emit("Shape", [y], {}, [("int64", (3,))])[0]
            spread = g.emit("Expand", [s, dims], {}, [("float32", (None, 6, 4))])[0]
            g.set_outputs([ops.sum(ops.multiply(y, spread), axis=1)])
        return g
    feeds = dict(X, s=np.random.default_rng(1).standard_normal((3, 1, 4)).astype(np.float32))
    before, after, _, rewritten = _both(build, feeds)
    np.testing.assert_allclose(after[0], before[0], rtol=1e-6)
    assert [(n.inputs, list(n.attrs["perm"])) for n in _transposes(rewritten)] == [(["s"], [0, 2, 1])]


def _trained(monkeypatch, rewrite):
    monkeypatch.setattr(step_graph, "keep_channels_first", keep_channels_first if rewrite else (lambda g: 0))
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((20, 2)), layers.Conv1D(16, 3, padding="same"),
                              layers.BatchNormalization(), layers.ReLU(),
                              layers.Conv1D(16, 3, activation="relu"), layers.GlobalAveragePooling1D(),
                              layers.Dense(3, activation="softmax")])
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 20, 2)).astype("float32")
    history = model.fit(x, rng.integers(0, 3, 64), batch_size=16, epochs=3, verbose=0, shuffle=False).history
    graph = model._train_state["train"].program.model_proto.graph
    products = {i for n in graph.node if n.op_type == "MatMul" for i in n.input}
    # Transposes of activations, but for the operands of products (ONNX Runtime multiplies those transposed)
    activations = [n for n in graph.node if n.op_type == "Transpose" and n.output[0] not in products
                   and [list(a.ints) for a in n.attribute] == [[0, 2, 1]]]
    return history, model.get_weights(), activations


def test_a_conv1d_stack_trains_as_before_without_its_transposes(monkeypatch):
    plain, plain_weights, plain_transposes = _trained(monkeypatch, False)
    rewritten, weights, transposes = _trained(monkeypatch, True)
    np.testing.assert_allclose(rewritten["loss"], plain["loss"], rtol=1e-5)
    for a, b in zip(weights, plain_weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # Left: the model's input into the first convolution, and the pooled gradient's (N, 1, C) into its spread.
    assert len(transposes) == 2 and len(plain_transposes) >= 8


@pytest.mark.parametrize("padding", ["valid", "same", "causal"])
def test_conv1d_weight_gradients_from_channels_first_windows(padding):
    """A stride-1 Conv1D on 16 or more channels cuts its weight gradient's windows channels first; the gradient is
    the correlation of the padded input with the output's gradient, computed here in float64."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((9, 16)), layers.Conv1D(4, 3, padding=padding, dilation_rate=2),
                              layers.Flatten(), layers.Dense(1)])
    model.compile(keras.optimizers.SGD(1.0), "mse")
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((8, 9, 16)).astype("float32"), rng.standard_normal((8, 1)).astype("float32")
    kernel, bias, dense, dense_bias = [w.astype(np.float64) for w in model.get_weights()]
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    step = kernel - model.get_weights()[0]  # SGD(1): the kernel's gradient

    span = 2 * (3 - 1) + 1
    before = {"valid": 0, "same": (span - 1) // 2, "causal": span - 1}[padding]
    after = {"valid": 0, "same": span - 1 - (span - 1) // 2, "causal": 0}[padding]
    padded = np.pad(x.astype(np.float64), ((0, 0), (before, after), (0, 0)))
    steps = padded.shape[1] - span + 1
    out = sum(np.einsum("ntc,cf->ntf", padded[:, 2 * k:2 * k + steps], kernel[k]) for k in range(3)) + bias
    pred = out.reshape(8, -1) @ dense + dense_bias
    d_out = ((2 * (pred - y) / 8) @ dense.T).reshape(out.shape)
    expected = np.stack([np.einsum("ntc,ntf->cf", padded[:, 2 * k:2 * k + steps], d_out) for k in range(3)])
    np.testing.assert_allclose(step, expected, rtol=1e-4, atol=1e-6)


def _convnet_trained(monkeypatch, rewrite, head=None, learning_rate=0.01):
    monkeypatch.setattr(step_graph, "flatten_channels_first",
                        channels_first.flatten_channels_first if rewrite else (lambda g: 0))
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))  # pooled to (2, 2, 6): flattening it reorders the features
    x = layers.MaxPooling2D()(layers.Conv2D(8, 3, activation="relu")(inputs))
    x = layers.MaxPooling2D()(layers.Conv2D(6, 3)(x))
    flat = layers.Flatten()(x)
    out = layers.Dense(2)(layers.Dense(7, activation="relu")(layers.Activation("tanh")(flat)))
    if head is not None:
        out = head(flat, out)
    model = keras.Model(inputs, out)
    model.compile(keras.optimizers.SGD(learning_rate), "mse")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((32, 16, 16, 3)).astype("float32"), rng.standard_normal((32, 2)).astype("float32")
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, shuffle=False).history
    graph = model._train_state["train"].program.model_proto.graph
    producer = {o: n for n in graph.node for o in n.output}
    flattened_from = [producer[n.input[0]].op_type for n in graph.node
                      if n.op_type == "Reshape" and n.output[0] in {i for m in graph.node if m.op_type == "Tanh"
                                                                    for i in m.input}]
    return history, model.get_weights(), flattened_from


def test_a_flatten_after_a_convolution_reorders_the_dense_kernel_not_the_activations(monkeypatch):
    plain, plain_weights, plain_source = _convnet_trained(monkeypatch, False)
    rewritten, weights, source = _convnet_trained(monkeypatch, True)
    assert plain_source == ["Transpose"] and source == ["MaxPool"]  # the pooled values, channels first
    np.testing.assert_allclose(rewritten["loss"], plain["loss"], rtol=1e-6)
    for a, b in zip(weights, plain_weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_a_flatten_read_by_more_than_dense_layers_keeps_keras_order(monkeypatch):
    def head(flat, out):  # the features reach an Add, which is not feature-wise towards a product
        return layers.Add()([out, layers.Dense(2)(layers.Add()([flat, flat]))])
    history, _, source = _convnet_trained(monkeypatch, True, head, learning_rate=1e-3)
    assert np.isfinite(history["loss"]).all()
    assert source == ["Transpose"]

"""The closed-form gradients of BatchNormalization and LayerNormalization, and the custom-gradient regions they use.

Each gradient is compared with the one the recorded nodes' own rules give (the same graph differentiated node by node,
`autodiff.op_by_op`) and with central finite differences, in float64.
"""

import numpy as np
import onnxruntime as ort
import pytest

from core import backend, layers, ops
from core.graph import GraphBuilder, custom_gradient, graph_scope
from core.training.autodiff import gradients, op_by_op
from core.training.gradients import GradientError
from gradient_coverage import rules_used
from keras_reference import keras3  # noqa: F401  (the real-Keras fixture)

RNG = np.random.default_rng(7)


def _session(g, outputs):
    g.set_outputs(outputs)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(g.to_model().SerializeToString(), so, providers=["CPUExecutionProvider"])


def _layer_gradients(make, x, mask=None, *, node_by_node=False, call=None):
    """Loss = sum(layer(x) * R) in a training graph; returns (session, feeds, names of x and the trainable weights,
    the op types whose rules the gradient used). The session's outputs are the loss and its gradients."""
    layer = make()
    g = GraphBuilder("norm_grad", weights_as_inputs=True, training=True)
    t = g.add_input("x", "float64", x.shape)
    feeds = {t.name: x}
    kwargs = dict(call or {})
    if mask is not None:
        m = g.add_input("mask", "bool", mask.shape)
        feeds[m.name] = mask
        kwargs["mask"] = m
    with graph_scope(g):
        y = layer(t, **kwargs)
        r = np.random.default_rng(1).standard_normal(y.shape)
        loss = ops.sum(ops.multiply(y, g.constant(r, "float64")))
        wrt = [t] + [w for v, w in g.variable_inputs if v.trainable]
        with rules_used() as used:
            if node_by_node:
                with op_by_op():
                    grads = gradients(loss, wrt)
            else:
                grads = gradients(loss, wrt)
    for v, w in g.variable_inputs:
        feeds[w.name] = RNG.standard_normal(v.shape) + (1.5 if "variance" in v.path else 0.0)
    return _session(g, [loss] + grads), feeds, [w.name for w in wrt], used


def _finite_differences(sess, feeds, names, eps=1e-6):
    out = []
    for name in names:
        num = np.zeros_like(feeds[name])
        flat = num.reshape(-1)
        for j in range(flat.size):
            vals = []
            for s in (eps, -eps):
                pert = {k: v.copy() for k, v in feeds.items()}
                pert[name].reshape(-1)[j] += s
                vals.append(float(sess.run(None, pert)[0]))
            flat[j] = (vals[0] - vals[1]) / (2 * eps)
        out.append(num)
    return out


def _compare(make, x, mask=None, call=None, finite=True):
    sess, feeds, names, used = _layer_gradients(make, x, mask, call=call)
    closed = sess.run(None, feeds)[1:]
    # The closed form replaces the statistics' nodes: no rule for rsqrt's Reciprocal or the ReduceMean runs.
    assert not used & {"Reciprocal", "Sqrt", "ReduceMean"}, used
    sess_op, feeds_op, _, used_op = _layer_gradients(make, x, mask, call=call, node_by_node=True)
    assert {"Reciprocal", "Sqrt"} <= used_op
    # The second layer has other weight names; its inputs come in the same order and get the same values.
    node_by_node = sess_op.run(None, dict(zip(feeds_op, feeds.values())))[1:]
    for name, a, b in zip(names, closed, node_by_node):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11, err_msg=f"gradient for {name}")
    if finite:
        for name, a, b in zip(names, closed, _finite_differences(sess, feeds, names)):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, err_msg=f"finite differences for {name}")


BATCHNORM_CASES = [
    ((6, 4), {}),
    ((3, 4, 5), {}),
    ((2, 3, 4, 3), {"axis": 1}),
    ((2, 3, 2, 3), {"axis": [1, 3]}),
    ((3, 4, 5), {"center": False}),
    ((3, 4, 5), {"scale": False, "epsilon": 0.1}),
    ((3, 4, 5), {"scale": False, "center": False}),
]


@pytest.mark.parametrize("shape, kwargs", BATCHNORM_CASES)
def test_batchnorm_training_gradient_is_the_node_by_node_one(shape, kwargs):
    x = RNG.standard_normal(shape) * 2 + 1
    _compare(lambda: layers.BatchNormalization(dtype="float64", **kwargs), x, call={"training": True},
             finite=len(shape) < 4 or "axis" in kwargs)


def test_batchnorm_masked_gradient_weighs_by_the_mask():
    x = RNG.standard_normal((3, 5, 4)) + 2
    mask = RNG.random((3, 5)) > 0.4
    mask[0, 0] = True
    _compare(lambda: layers.BatchNormalization(dtype="float64"), x, mask, call={"training": True})


def test_batchnorm_masked_gradient_keeps_the_counts_epsilon():
    """The count carries backend.epsilon(); with a large one its term in the gradient is visible."""
    x = RNG.standard_normal((2, 3, 2)) + 3
    mask = np.array([[True, False, True], [True, True, False]])
    before = backend.epsilon()
    backend.set_epsilon(0.5)
    try:
        _compare(lambda: layers.BatchNormalization(dtype="float64", center=False), x, mask, call={"training": True})
    finally:
        backend.set_epsilon(before)


def test_batchnorm_masked_over_the_features_axis_gradient():
    """axis=1: the statistics reduce over the features axis too, along which the mask is broadcast."""
    x = RNG.standard_normal((2, 3, 4)) + 1
    mask = np.array([[True, False, True], [True, True, False]])
    _compare(lambda: layers.BatchNormalization(axis=1, dtype="float64"), x, mask, call={"training": True})


def test_batchnorm_mask_of_another_rank_is_differentiated_node_by_node():
    """A mask that is not the inputs' shape but the features broadcasts in ways the closed form does not follow."""
    x = RNG.standard_normal((2, 3, 4)) + 1
    mask = np.array([True, False, True])
    sess, feeds, names, used = _layer_gradients(lambda: layers.BatchNormalization(dtype="float64"), x, mask,
                                                call={"training": True})
    assert "Reciprocal" in used
    for name, a, b in zip(names, sess.run(None, feeds)[1:], _finite_differences(sess, feeds, names)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("axis, mask_dtype", [(1, "bool"), (-1, "float32"), (2, "bool")])
def test_batchnorm_masked_training_matches_keras3(keras3, axis, mask_dtype):
    """Keras 3 broadcasts the mask over the features and counts every element it keeps (axis=1 normalizes over
    them), and reads any nonzero mask value as kept."""
    x = RNG.standard_normal((4, 5, 3)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 0, 0, 0]], "float32")
    if mask_dtype == "float32":
        mask = mask * np.array([0.5, 1.0, 2.0, 1.0, 3.0], "float32")
    ours, ref = layers.BatchNormalization(axis=axis), keras3.layers.BatchNormalization(axis=axis)
    ref.build(x.shape)
    ours(x)
    g = GraphBuilder("train", training=True)
    t = g.add_input("x", "float32", (None, 5, 3))
    m = g.add_input("mask", mask_dtype, (None, 5))
    with graph_scope(g):
        y = ours(t, mask=m)
    out = _session(g, [y]).run(None, {t.name: x, m.name: mask.astype(mask_dtype)})[0]
    want = np.asarray(ref(x, training=True, mask=mask.astype(mask_dtype)))
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)


LAYERNORM_CASES = [
    ((4, 6), {}),
    ((3, 4, 5), {}),
    ((2, 3, 4), {"axis": [1, 2]}),
    ((2, 3, 4), {"axis": 1}),
    ((3, 4, 5), {"center": False}),
    ((3, 4, 5), {"scale": False}),
    ((3, 4, 5), {"scale": False, "center": False, "epsilon": 0.2}),
    ((3, 4, 5), {"rms_scaling": True}),
    ((2, 3, 4), {"rms_scaling": True, "axis": [1, 2]}),
]


@pytest.mark.parametrize("shape, kwargs", LAYERNORM_CASES)
def test_layernorm_gradient_is_the_node_by_node_one(shape, kwargs):
    x = RNG.standard_normal(shape) * 2 + 1
    _compare(lambda: layers.LayerNormalization(dtype="float64", **kwargs), x)


def test_batchnorm_with_the_batch_size_unknown_counts_at_run_time():
    layer = layers.BatchNormalization(dtype="float64")
    g = GraphBuilder("dyn", weights_as_inputs=True, training=True)
    t = g.add_input("x", "float64", (None, 4, 3))
    with graph_scope(g):
        y = layer(t, training=True)
        loss = ops.sum(ops.multiply(y, y))
        wrt = [t] + [w for v, w in g.variable_inputs if v.trainable]
        closed = gradients(loss, wrt)
        with op_by_op():
            reference = gradients(loss, wrt)
    x = RNG.standard_normal((5, 4, 3))
    feeds = {t.name: x}
    for v, w in g.variable_inputs:
        feeds[w.name] = RNG.standard_normal(v.shape) + (1.5 if "variance" in v.path else 0.0)
    res = _session(g, closed + reference).run(None, feeds)
    for a, b in zip(res[:len(closed)], res[len(closed):]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


# -- the custom-gradient mechanism ------------------------------------------------------------------------------------
def _exp_twice(store):
    """2 * exp(x), whose declared gradient is deliberately 10 * dy (so a test sees which gradient ran); `store`
    receives exp(x), a tensor inside the region."""

    @custom_gradient
    def f(x):
        e = ops.exp(x)
        store.append(e)
        return ops.multiply(e, 2.0), lambda dy: [ops.multiply(dy, 10.0)]

    return f


def _run_gradient(build):
    g = GraphBuilder("cg")
    x = g.add_input("x", "float64", (3,))
    with graph_scope(g):
        loss, extra = build(x)
        grad = gradients(loss, [x])[0]
    value = np.array([0.1, -0.5, 0.7])
    return _session(g, [grad] + extra).run(None, {x.name: value})[0], value


def test_custom_gradient_function_gives_the_gradient():
    grad, _ = _run_gradient(lambda x: (ops.sum(_exp_twice([])(x)), []))
    np.testing.assert_allclose(grad, 10.0)


def test_interior_tensor_used_outside_falls_back_to_node_by_node():
    def build(x):
        inner = []
        y = _exp_twice(inner)(x)
        return ops.add(ops.sum(y), ops.sum(inner[0])), []  # exp(x) reaches the loss past the region's output

    grad, x = _run_gradient(build)
    np.testing.assert_allclose(grad, 3 * np.exp(x))


def test_interior_tensor_read_off_the_differentiated_path_keeps_the_function():
    """Like BatchNormalization's moving statistics: another output reads an interior tensor, the loss does not."""
    def build(x):
        inner = []
        y = _exp_twice(inner)(x)
        return ops.sum(y), [ops.multiply(inner[0], 0.5)]

    grad, _ = _run_gradient(build)
    np.testing.assert_allclose(grad, 10.0)


def test_a_differentiable_tensor_the_function_was_not_given_falls_back():
    def build(x):
        z = ops.multiply(x, 3.0)

        @custom_gradient
        def f(v):
            return ops.multiply(v, z), lambda dy: [ops.multiply(dy, 10.0)]  # z is read but not an argument

        return ops.sum(f(x)), []

    grad, x = _run_gradient(build)
    np.testing.assert_allclose(grad, 6 * x)


def test_custom_gradient_must_give_one_gradient_per_argument():
    @custom_gradient
    def f(x):
        return ops.exp(x), lambda dy: [dy, dy]

    with pytest.raises(GradientError, match="custom gradient of .*f' gave 2 gradient.*one per argument"):
        _run_gradient(lambda x: (ops.sum(f(x)), []))


def test_a_failing_custom_gradient_names_its_function():
    @custom_gradient
    def broken(x):
        return ops.exp(x), lambda dy: [ops.matmul(dy, np.ones((4, 2)))]

    with pytest.raises(GradientError, match="custom gradient of .*broken' failed: matmul: the inner dimensions"):
        _run_gradient(lambda x: (ops.sum(broken(x)), []))


def test_custom_gradient_outputs_must_be_computed_by_the_function():
    @custom_gradient
    def f(x):
        return x, lambda dy: [dy]

    with pytest.raises(ValueError, match="every output must be a tensor the function computed"):
        _run_gradient(lambda x: (ops.sum(f(x)), []))


def test_regions_leave_the_inference_graph_as_it_was(monkeypatch):
    """The same model exported with the regions recorded and without: byte for byte the same ONNX."""
    import core as keras
    from core.layers import normalization

    def build():
        inp = keras.Input(shape=(5, 4), name="x")
        h = layers.LayerNormalization(name="ln")(inp)
        h = layers.LayerNormalization(rms_scaling=True, name="rms")(h)
        model = keras.Model(inp, layers.BatchNormalization(name="bn")(h), name="m")
        return model.inference_graph().to_model().SerializeToString()

    with_regions = build()
    monkeypatch.setattr(normalization, "custom_gradient", lambda fn: lambda *args: fn(*args)[0])
    assert build() == with_regions

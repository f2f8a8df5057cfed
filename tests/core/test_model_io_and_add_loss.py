"""`Model.input`/`output`, the lowercase merge functions, and `add_loss` / metrics updated inside `call` (the
training run itself is compared with real Keras in tests/interop/test_endpoint_layer.py)."""

import numpy as np
import pytest

import core as keras
from core import layers, ops
from core.errors import InputDataError


def test_input_and_output_keep_the_structure_the_model_was_made_with():
    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    out = layers.Dense(2, name="d")(layers.concatenate([a, b]))
    single = keras.Model(a, layers.Dense(1)(a))
    assert single.input is single.inputs[0] and single.output is single.outputs[0]
    listed = keras.Model([a, b], [out])
    assert listed.input == [a, b] and listed.output == [out]
    keyed = keras.Model({"a": a, "b": b}, {"d": out})
    assert keyed.input == {"a": a, "b": b} and keyed.output == {"d": out}
    # The sub-model way to intermediate outputs, as the guides write it.
    features = keras.Model(listed.input, listed.get_layer("d").output)
    x = [np.ones((2, 3), "float32"), np.zeros((2, 3), "float32")]
    np.testing.assert_allclose(features.predict(x, verbose=0), listed.predict(x, verbose=0))


def test_sequential_input_once_built_and_a_clear_error_before():
    seq = keras.Sequential([layers.Dense(2)])
    with pytest.raises(AttributeError, match="not built"):
        seq.input
    seq.build((None, 4))
    assert seq.input.shape == (None, 4) and seq.output.shape == (None, 2)


@pytest.mark.parametrize("fn,layer_class,expected", [
    (layers.add, layers.Add, lambda a, b: a + b),
    (layers.subtract, layers.Subtract, lambda a, b: a - b),
    (layers.multiply, layers.Multiply, lambda a, b: a * b),
    (layers.average, layers.Average, lambda a, b: (a + b) / 2),
    (layers.maximum, layers.Maximum, np.maximum),
    (layers.minimum, layers.Minimum, np.minimum),
    (layers.concatenate, layers.Concatenate, lambda a, b: np.concatenate([a, b], -1)),
    (layers.dot, layers.Dot, lambda a, b: (a * b).sum(-1, keepdims=True)),
])
def test_lowercase_merge_functions_make_their_layer(fn, layer_class, expected):
    a, b = keras.Input((4,)), keras.Input((4,))
    out = fn([a, b], name="merged")
    model = keras.Model([a, b], out)
    assert type(model.get_layer("merged")) is layer_class
    x = np.random.default_rng(0).random((3, 4)).astype("float32")
    y = np.random.default_rng(1).random((3, 4)).astype("float32")
    np.testing.assert_allclose(model.predict([x, y], verbose=0), expected(x, y), rtol=1e-6)


def test_concatenate_and_dot_take_their_axis_arguments():
    a, b = keras.Input((2, 3)), keras.Input((2, 3))
    assert layers.concatenate([a, b], axis=1).shape == (None, 4, 3)
    assert layers.dot([a, b], axes=(2, 2)).shape == (None, 2, 2)
    assert layers.dot([a, b], axes=1, normalize=True).shape == (None, 3, 3)


class _Penalised(layers.Layer):
    def call(self, x):
        self.add_loss(ops.mean(ops.square(x)))
        return x


def test_add_loss_in_call_is_what_training_minimises_without_a_compiled_loss():
    inp = keras.Input((2,))
    out = _Penalised()(layers.Dense(2, kernel_initializer="ones", bias_initializer="ones")(inp))
    model = keras.Model(inp, out)
    model.compile(keras.optimizers.SGD(0.1))
    x = np.ones((4, 2), "float32")
    first = model.evaluate(x, verbose=0)
    np.testing.assert_allclose(first, 9.0, rtol=1e-6)  # (1 + 1 + 1)^2 for every value
    history = model.fit(x, epochs=5, batch_size=4, verbose=0).history
    assert history["loss"][0] == pytest.approx(9.0) and history["loss"][-1] < 1.0


def test_add_loss_in_an_eager_call_is_kept_in_losses():
    layer = _Penalised()
    layer(np.full((2, 2), 2.0, "float32"))
    assert len(layer.losses) == 1
    np.testing.assert_allclose(layer.losses[0], 4.0)
    layer(np.full((2, 2), 3.0, "float32"))
    np.testing.assert_allclose([float(v) for v in layer.losses], [9.0])  # each call starts afresh, as in Keras
    outer = keras.Sequential([layers.Dense(2), layer])
    outer(np.ones((1, 3), "float32"))
    assert len(outer.losses) == 1 and len(layer.losses) == 1  # the sublayer's loss, seen from its model too
    dense = layers.Dense(2)
    dense.add_loss(2.0)  # a value added outside call is kept until the next call
    assert [float(v) for v in dense.losses] == [2.0]
    dense(np.ones((1, 2), "float32"))
    assert dense.losses == []


def test_add_loss_refuses_functional_tensors_and_callables():
    inp = keras.Input((2,))
    with pytest.raises(TypeError, match="inside a layer's call"):
        layers.Layer().add_loss(inp)
    with pytest.raises(TypeError, match="not a function"):
        layers.Layer().add_loss(lambda: 1.0)


def test_training_with_no_loss_anywhere_says_what_is_missing():
    inp = keras.Input((2,))
    model = keras.Model(inp, layers.Dense(1)(inp))
    model.compile("sgd")
    with pytest.raises(InputDataError, match="no loss to train"):
        model.fit(np.ones((4, 2)), epochs=1, verbose=0)


class _Tracked(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.mean_abs = keras.metrics.Mean(name="mean_abs")

    def call(self, x):
        self.mean_abs.update_state(ops.abs(x))
        return x


def test_a_metric_updated_in_call_is_reported_by_fit_evaluate_and_an_eager_call():
    inp = keras.Input((2,))
    tracked = _Tracked()
    model = keras.Model(inp, tracked(inp))
    model.compile("sgd", loss="mse")
    x = np.array([[1, -3], [2, 2]], "float32")
    logs = model.evaluate(x, np.zeros((2, 2)), verbose=0, return_dict=True)
    assert logs["mean_abs"] == pytest.approx(2.0)
    assert model.metrics_names == ["loss", "mean_abs"]
    assert [m.name for m in model.metrics] == ["loss", "mean_abs"] and model.metrics[1] is tracked.mean_abs
    assert {m.name: m.result() for m in model.metrics} == pytest.approx(logs)
    tracked.mean_abs.reset_state()
    tracked(np.array([[4.0, -6.0]], "float32"))
    assert tracked.mean_abs.result() == pytest.approx(5.0)


class _Reporting(layers.Layer):
    def call(self, x, scale=None):
        self.add_metric(ops.mean(x), name="mean_x")
        return x * scale if scale is not None else x


def test_add_metric_averages_a_value_per_batch_and_needs_a_name():
    inp = keras.Input((1,))
    model = keras.Model(inp, _Reporting()(inp))
    model.compile("sgd", loss="mse")
    x = np.array([[1.0], [3.0], [8.0]], "float32")
    logs = model.evaluate(x, x, batch_size=2, verbose=0, return_dict=True)
    assert logs["mean_x"] == pytest.approx((2.0 + 8.0) / 2)  # each batch's value counts once, as in tf.keras 2
    with pytest.raises(keras.errors.ConfigError, match="needs a name"):
        layers.Layer().add_metric(ops.mean(keras.ops.convert_to_tensor(x)))
    with pytest.raises(keras.errors.ConfigError, match="aggregation"):
        layers.Layer().add_metric(1.0, name="x", aggregation="sum")


def test_inputs_may_be_passed_by_keyword_and_subclassed_models_take_dicts():
    class Scaled(keras.Model):
        def __init__(self):
            super().__init__()
            self.report = _Reporting()

        def call(self, inputs):
            return self.report(x=inputs["x"], scale=inputs["scale"])

    model = Scaled()
    data = {"x": np.ones((4, 2), "float32"), "scale": np.full((4, 1), 3.0, "float32")}
    np.testing.assert_allclose(model.predict(data, verbose=0), np.full((4, 2), 3.0))
    assert [name for name, _, _ in model.input_specs()] == ["x", "scale"]


def test_a_trailing_axis_of_one_is_added_or_dropped_as_keras_3_does():
    a = keras.Input((1,), name="a")
    model = keras.Model({"a": a}, layers.Dense(1, kernel_initializer="ones")(a))
    np.testing.assert_allclose(model.predict({"a": np.array([1.0, 2.0])}, verbose=0), [[1.0], [2.0]])
    b = keras.Input((3,))
    wide = keras.Model(b, layers.Dense(1, kernel_initializer="ones")(b))
    np.testing.assert_allclose(wide.predict(np.ones((2, 3, 1)), verbose=0), [[3.0], [3.0]])
    with pytest.raises(InputDataError, match=r"expects shape \(None, 3\), got data of shape \(2,\)"):
        wide.predict(np.ones((2,)), verbose=0)

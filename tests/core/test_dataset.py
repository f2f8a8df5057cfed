"""`core.data.Dataset`: the tf.data pipeline the Keras examples build (compared element by element with real tf.data
in tests/interop/test_dataset_tf.py), and its iteration in fit, evaluate and predict."""

import numpy as np
import pytest

import core as tf
from core import layers, ops
from core.data import TensorSpec
from core.errors import InputDataError

Dataset = tf.data.Dataset


def _values(ds):
    return [tuple(np.asarray(p).tolist() for p in e) if isinstance(e, tuple) else np.asarray(e).tolist()
            for e in ds.as_numpy_iterator()]


def test_take_skip_repeat_and_their_cardinality():
    ds = Dataset.range(10)
    assert _values(ds.skip(3).take(4)) == [3, 4, 5, 6]
    assert int(ds.skip(3).take(4).cardinality()) == 4
    assert int(ds.take(-1).cardinality()) == 10 and int(ds.skip(-1).cardinality()) == 0
    assert int(ds.repeat().cardinality()) == tf.data.INFINITE_CARDINALITY
    assert _values(ds.take(2).repeat(3)) == [0, 1] * 3
    assert _values(ds.repeat().take(12))[-2:] == [0, 1]
    assert ds.cardinality().numpy() == 10 and len(ds.batch(3)) == 4 and len(ds.batch(3, drop_remainder=True)) == 3
    assert int(ds.filter(lambda x: x > 4).cardinality()) == tf.data.UNKNOWN_CARDINALITY
    with pytest.raises(TypeError, match="infinite"):
        len(ds.repeat())


def test_map_is_traced_once_per_signature_and_runs_the_graph():
    calls = []

    def scale(x, y):
        calls.append(type(x).__name__)
        return ops.multiply(x, 2.0), ops.cast(y, "float32")

    ds = Dataset.from_tensor_slices((np.arange(8, dtype="float32").reshape(4, 2), np.arange(4))).map(scale)
    first = _values(ds)
    second = _values(ds)
    assert first == second == [([0.0, 2.0], 0.0), ([4.0, 6.0], 1.0), ([8.0, 10.0], 2.0), ([12.0, 14.0], 3.0)]
    assert calls == ["SymbolicTensor"]  # traced once; every element then runs the ONNX graph


def test_map_may_call_a_layer():
    dense = layers.Dense(2, kernel_initializer="ones")
    ds = Dataset.from_tensor_slices(np.ones((4, 3), "float32")).batch(2).map(lambda x: dense(x))
    np.testing.assert_allclose(np.concatenate(list(ds.as_numpy_iterator())), np.full((4, 2), 3.0))


def test_map_falls_back_to_numpy_for_text_and_untraceable_functions():
    texts = Dataset.from_tensor_slices(np.array(["a b", "c"])).map(lambda s: np.char.upper(s))
    assert _values(texts) == ["A B", "C"]
    untraceable = Dataset.range(3).map(lambda x: np.float32(np.sqrt(x)))
    np.testing.assert_allclose(_values(untraceable), [0, 1, np.sqrt(2)], rtol=1e-6)
    with pytest.raises(ZeroDivisionError):  # a real bug still surfaces
        list(Dataset.range(3).map(lambda x: 1 // 0))


def test_dict_elements_and_list_results():
    ds = Dataset.from_tensor_slices({"a": np.arange(3), "b": np.ones((3, 2))})
    row = next(ds.as_numpy_iterator())
    assert set(row) == {"a", "b"} and row["b"].shape == (2,)
    pairs = Dataset.range(2).map(lambda x: [x, x + 1])  # a list of results is a tuple, as in tf.data
    assert _values(pairs) == [(0, 1), (1, 2)]


def test_batch_unbatch_and_padded_batch():
    ds = Dataset.from_tensor_slices((np.arange(10).reshape(5, 2), np.arange(5)))
    batches = list(ds.batch(2).as_numpy_iterator())
    assert [b[0].shape for b in batches] == [(2, 2), (2, 2), (1, 2)]
    assert _values(ds.batch(2).unbatch()) == _values(ds)
    ragged = Dataset.from_generator(lambda: (np.arange(n) for n in (1, 3, 2)),
                                    output_signature=TensorSpec((None,), "int32"))
    with pytest.raises(InputDataError, match="padded_batch"):
        list(ragged.batch(3))
    padded = next(ragged.padded_batch(3, padding_values=-1).as_numpy_iterator())
    np.testing.assert_array_equal(padded, [[0, -1, -1], [0, 1, 2], [0, 1, -1]])
    assert next(ragged.padded_batch(3, padded_shapes=[5]).as_numpy_iterator()).shape == (3, 5)
    with pytest.raises(InputDataError, match="not batches"):
        Dataset.range(3).unbatch()


def test_zip_and_concatenate():
    a, b = Dataset.range(3), Dataset.range(10, 15)
    assert _values(Dataset.zip((a, b))) == [(0, 10), (1, 11), (2, 12)]
    assert _values(Dataset.zip(a, b)) == _values(Dataset.zip((a, b)))
    assert int(Dataset.zip((a, b)).cardinality()) == 3
    keyed = next(Dataset.zip({"x": a, "y": b}).as_numpy_iterator())
    assert keyed == {"x": 0, "y": 10}
    assert _values(a.concatenate(b)) == [0, 1, 2, 10, 11, 12, 13, 14]
    with pytest.raises(InputDataError, match="takes datasets"):
        Dataset.zip((a, [1, 2]))


def test_from_generator_is_called_again_for_every_pass_and_checks_its_signature():
    def gen(n):
        for i in range(int(n)):
            yield np.full((2,), i, "float64"), i

    ds = Dataset.from_generator(gen, args=(3,), output_signature=(TensorSpec((2,), tf.float32),
                                                                   TensorSpec((), tf.int32)))
    assert int(ds.cardinality()) == tf.data.UNKNOWN_CARDINALITY
    first = list(ds.as_numpy_iterator())
    assert len(first) == 3 and first[0][0].dtype == np.float32 and first[2][1] == 2
    assert len(list(ds.as_numpy_iterator())) == 3
    legacy = Dataset.from_generator(lambda: gen(2), output_types=(tf.float32, tf.int64),
                                    output_shapes=((2,), ()))
    assert next(legacy.as_numpy_iterator())[1].dtype == np.int64
    wrong = Dataset.from_generator(lambda: gen(2), output_signature=(TensorSpec((3,)), TensorSpec(())))
    with pytest.raises(InputDataError, match=r"element 0, part 0 has shape \(2,\)"):
        list(wrong.as_numpy_iterator())
    with pytest.raises(InputDataError, match="callable"):
        Dataset.from_generator(gen(2))


def test_shuffle_reshuffles_each_pass_reproducibly_with_a_seed():
    ds = Dataset.range(20).shuffle(20, seed=3)
    a, b = _values(ds), _values(ds)
    assert sorted(a) == list(range(20)) and a != b
    assert _values(Dataset.range(20).shuffle(20, seed=3)) == a
    fixed = Dataset.range(20).shuffle(5, seed=1, reshuffle_each_iteration=False)
    assert _values(fixed) == _values(fixed) and sorted(_values(fixed)) == list(range(20))
    batches = list(Dataset.range(10).shuffle(10, seed=0).batch(4).as_numpy_iterator())
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))


def _model():
    inp = tf.keras.Input((3,), name="features")
    model = tf.keras.Model(inp, layers.Dense(1, kernel_initializer="ones")(inp))
    model.compile(tf.keras.optimizers.SGD(0.01), loss="mse", metrics=["mae"])
    return model


def test_fit_evaluate_and_predict_iterate_pipelines():
    x = np.random.default_rng(0).random((20, 3)).astype("float32")
    y = x.sum(1, keepdims=True)
    model = _model()
    ds = (Dataset.from_tensor_slices((x, y)).shuffle(20, seed=0).map(lambda a, b: (a, b * 2.0))
          .batch(8).prefetch(tf.data.AUTOTUNE))
    history = model.fit(ds, epochs=2, verbose=0, validation_data=ds.take(1))
    assert len(history.history["loss"]) == 2 and "val_mae" in history.history
    ordered = Dataset.from_tensor_slices((x, y)).batch(8)
    np.testing.assert_allclose(model.evaluate(ordered, verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-5)
    np.testing.assert_allclose(model.predict(ordered, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    np.testing.assert_allclose(model.predict(Dataset.from_tensor_slices(x).batch(5), verbose=0),
                               model.predict(x, verbose=0), rtol=1e-6)
    keyed = Dataset.from_tensor_slices(({"features": x}, y)).batch(4)
    assert np.isfinite(model.evaluate(keyed, verbose=0)[0])


def test_one_whole_batch_from_tensors_trains():
    model = _model()
    x = np.ones((4, 3), "float32")
    history = model.fit(Dataset.from_tensors((x, x[:, :1])), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2


def test_fit_on_generator_and_repeated_datasets():
    x = np.ones((6, 3), "float32")
    model = _model()

    def gen():
        for i in range(0, 6, 2):
            yield x[i:i + 2], np.zeros((2, 1), "float32")

    batches = Dataset.from_generator(gen, output_signature=(TensorSpec((None, 3)), TensorSpec((None, 1))))
    assert len(model.fit(batches, epochs=2, verbose=0).history["loss"]) == 2
    with pytest.raises(InputDataError, match="steps_per_epoch"):
        model.fit(batches.repeat(), epochs=1, verbose=0)
    model.fit(batches.repeat(), epochs=1, steps_per_epoch=5, verbose=0)
    with pytest.raises(InputDataError, match="batched Dataset"):
        model.fit(Dataset.from_tensor_slices((x, x[:, :1])), epochs=1, verbose=0)
    with pytest.raises(InputDataError, match="infinite"):
        model.predict(batches.repeat(), verbose=0)
    assert model.predict(batches.repeat(), steps=4, verbose=0).shape == (8, 1)  # 3 batches of 2, then again
    with pytest.raises(InputDataError, match="steps must be a positive integer"):
        model.predict(batches, steps=0, verbose=0)


def test_a_py_dataset_feeds_fit_evaluate_and_predict():
    calls = []

    class Batches(tf.keras.utils.PyDataset):
        def __init__(self, x, y, batch_size, **kwargs):
            super().__init__(**kwargs)
            self.x, self.y, self.batch_size = x, y, batch_size

        def __len__(self):
            return -(-len(self.x) // self.batch_size)

        def __getitem__(self, index):
            part = slice(index * self.batch_size, (index + 1) * self.batch_size)
            return self.x[part], self.y[part]

        def on_epoch_end(self):
            calls.append("epoch_end")

    x = np.random.default_rng(1).random((10, 3)).astype("float32")
    y = x.sum(1, keepdims=True)
    model = _model()
    history = model.fit(Batches(x, y, 4), epochs=3, verbose=0, validation_data=Batches(x, y, 5))
    assert len(history.history["val_loss"]) == 3 and calls.count("epoch_end") >= 3
    np.testing.assert_allclose(model.evaluate(Batches(x, y, 4), verbose=0), model.evaluate(x, y, verbose=0),
                               rtol=1e-5)
    np.testing.assert_allclose(model.predict(Batches(x, y, 3), verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    with pytest.raises(InputDataError, match="y must not be given"):
        model.fit(Batches(x, y, 4), y, verbose=0)
    with pytest.raises(NotImplementedError, match="__getitem__"):
        tf.keras.utils.PyDataset()[0]

"""Text in the engine: the 'string' dtype (symbolic tensors, eager calls, model inputs, training batches, data
checks, files), and the standard-ONNX string ops TextVectorization is built from. (Against real Keras:
tests/interop/test_text_preprocessing_keras.py.)"""

import numpy as np
import pytest

import core
from core import ops
from core.data import Dataset
from core.errors import InputDataError
from core.graph import GraphBuilder, dtype_name, onnx_dtype

TEXTS = np.array(["The cat sat", "the dog ran", "a cat ran fast", "dogs and cats", "", "what a day"], dtype=object)
Y = np.array([0, 1, 0, 1, 0, 1], dtype="float32")


def _text_model(shape=(1,)):
    vectorize = core.layers.TextVectorization(max_tokens=20, output_sequence_length=5)
    vectorize.adapt(TEXTS)
    inputs = core.Input(shape=shape, dtype="string", name="text")
    hidden = core.layers.GRU(3)(core.layers.Embedding(20, 4)(vectorize(inputs)))
    return core.Model(inputs, core.layers.Dense(1, activation="sigmoid")(hidden))


def test_the_string_dtype_has_one_name_everywhere():
    from onnx import TensorProto

    class TfString:  # what tf.string looks like to the engine: an object with a .name
        name = "string"

    for dtype in ("string", "str", str, bytes, object, np.dtype("<U5"), TfString()):
        assert dtype_name(dtype) == "string"
    assert onnx_dtype("string") == TensorProto.STRING
    for shape in ((1,), ()):
        t = core.Input(shape=shape, dtype="string")
        assert (t.dtype, t.shape) == ("string", (None,) + shape)
    g = GraphBuilder("g")
    assert g.add_input("x", "string", (None,)).dtype == "string"
    assert g.constant(np.array(["a", "b"])).dtype == "string"


def test_string_ops_run_eagerly_on_lists_and_arrays():
    np.testing.assert_array_equal(ops.lower_ascii(["ÄB Cd", ""]), np.array(["Äb cd", ""], dtype=object))
    pieces, counts = ops.split_on(["  a\tb\nc\x0bd\x0ce\rf\u00a0g  ", "", "x"], " \t\n\r\v\f")
    assert np.asarray(pieces).tolist() == [["a", "b", "c", "d", "e", "f\u00a0g"], [""] * 6, ["x"] + [""] * 5]
    assert np.asarray(counts).tolist() == [6, 0, 1]
    grams, counts = ops.ngrams(np.array([["a", "b", "c"], ["d", "", ""]], dtype=object), np.array([3, 1]), (1, 2))
    assert np.asarray(grams).tolist() == [["a", "b", "c", "a b", "b c"], ["d", "", "", "", ""]]
    assert np.asarray(counts).tolist() == [5, 1]
    np.testing.assert_array_equal(ops.lookup_strings(["b", "zz"], ["a", "b"], [2, 3], 1), [3, 1])
    np.testing.assert_array_equal(ops.lookup_indices(np.array([0, 3]), [0, 1], ["", "x"], "?"),
                                  np.array(["", "?"], dtype=object))


def test_joining_many_pieces_gives_each_row_once():
    """Rows of several pieces joined: a Scan of StringConcat gave 'The catThe cat sat' (ONNX Runtime's
    StringConcat appends to the buffer a loop hands back), so pieces are joined pairwise instead."""
    pieces = np.array([["The cat", " sat", "", "!"], ["x", "", "", ""], ["", "", "", ""],
                       ["a", "b", "c", "d"]], dtype=object)
    assert np.asarray(ops.join_rows(pieces)).tolist() == ["The cat sat!", "x", "", "abcd"]
    wide = np.array([[str(i) for i in range(37)]], dtype=object)
    assert np.asarray(ops.join_rows(wide)).tolist() == ["".join(str(i) for i in range(37))]


@pytest.mark.parametrize("shape", [(1,), ()])
def test_a_text_model_predicts_fits_and_evaluates_on_arrays_lists_and_datasets(shape):
    model = _text_model(shape)
    column = TEXTS[:, None] if shape else TEXTS
    expected = model.predict(column, verbose=0)
    np.testing.assert_array_equal(model.predict(list(TEXTS), verbose=0), expected)
    np.testing.assert_array_equal(model.predict(TEXTS.astype(str), verbose=0), expected)
    model.compile("adam", "binary_crossentropy")
    history = model.fit(TEXTS, Y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"]
    assert np.isfinite(history).all() and len(history) == 2
    loss = model.evaluate(Dataset.from_tensor_slices((TEXTS, Y)).batch(3), verbose=0)
    assert np.isfinite(loss)
    model.fit(Dataset.from_tensor_slices((column, Y)).batch(4), epochs=1, verbose=0)


def test_text_training_steps_follow_the_same_trajectory_as_numeric_ones():
    """A step whose batch holds text runs through run() instead of IOBinding (ONNX Runtime binds no strings): the
    same losses and weights as the same layers fed TextVectorization's ids."""
    model = _text_model()
    ids = np.asarray(model.layers[1](TEXTS))
    numeric_in = core.Input((5,), dtype="int64")
    rest = core.Model(numeric_in, model.layers[4](model.layers[3](model.layers[2](numeric_in))))  # shared layers
    start = model.get_weights()
    model.compile(core.optimizers.SGD(0.5), "binary_crossentropy")
    rest.compile(core.optimizers.SGD(0.5), "binary_crossentropy")
    text_loss = model.fit(TEXTS, Y, epochs=3, batch_size=2, shuffle=False, verbose=0).history["loss"]
    after_text = model.get_weights()
    model.set_weights(start)
    id_loss = rest.fit(ids, Y, epochs=3, batch_size=2, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(text_loss, id_loss, rtol=1e-6)
    for x, y in zip(after_text, rest.get_weights()):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7)


def test_text_and_numbers_are_not_confused():
    model = _text_model()
    with pytest.raises(InputDataError, match="Input 'text' of model .* expects text"):
        model.predict(np.array([[1.0], [2.0]]), verbose=0)
    x = core.Input((1,), name="x")
    dense = core.Model(x, core.layers.Dense(1)(x))
    with pytest.raises(InputDataError, match="expects numbers .* got text"):
        dense.predict(TEXTS[:, None], verbose=0)


def test_the_data_check_and_export_verification_take_text(tmp_path):
    from exporters.datasets import LoadedData, check_fits
    from exporters.verify import verify_export

    model = _text_model()
    data = LoadedData(x=[TEXTS], y=[Y[:, None]])
    assert check_fits(data, model) == []
    numbers = LoadedData(x=[np.ones((6, 1), "float32")], y=[Y[:, None]])
    assert any("expects text" in p for p in check_fits(numbers, model))
    model.to_onnx(tmp_path / "text.onnx")
    model.save(tmp_path / "text.keras")
    for path, fmt in ((tmp_path / "text.onnx", "onnx"), (tmp_path / "text.keras", "keras")):
        result = verify_export(model, path, fmt)
        assert result.ok and "random texts" in result.inputs, result


def test_text_layers_are_in_the_palette_with_generated_inspectors_and_in_the_summary():
    from core import layer_schema

    group = layer_schema.palette()["Preprocessing"]
    assert {"StringLookup", "TextVectorization"} <= set(group)
    fields = {f.name: f for f in layer_schema.schema("TextVectorization").fields}
    assert fields["output_mode"].choices == ("int", "multi_hot", "count", "tf_idf")
    assert fields["split"].choices == ("whitespace", None)
    assert "string" in {f.name: f for f in layer_schema.schema("InputLayer").fields}["dtype"].choices
    assert "vocabulary_dtype" not in {f.name for f in layer_schema.schema("StringLookup").fields}
    for name in ("StringLookup", "TextVectorization"):  # a freshly dropped layer is valid
        layer_schema.layer_class(name).from_config(layer_schema.default_config(name))
    lines = []
    _text_model().summary(print_fn=lines.append)
    assert any("text_vectorization" in line and "(None, 5)" in line for line in lines), lines


def test_a_standardize_function_runs_but_is_not_written_into_a_file():
    from core.errors import ConfigError

    vectorize = core.layers.TextVectorization(standardize=ops.lower_ascii, vocabulary=["the", "cat"])
    np.testing.assert_array_equal(vectorize(["THE Cat"]), [[2, 3]])
    inputs = core.Input((1,), dtype="string")
    with pytest.raises(ConfigError, match="standardize function cannot be written into a config"):
        core.Model(inputs, vectorize(inputs)).to_json()


def test_a_tf_idf_layer_is_not_written_into_a_tf_keras2_h5(tmp_path):
    from core.errors import FileFormatError
    from exporters.keras_model import load_model, save_model

    vectorize = core.layers.TextVectorization(output_mode="tf_idf", max_tokens=20)
    vectorize.adapt(TEXTS)
    inputs = core.Input(shape=(1,), dtype="string")
    model = core.Model(inputs, core.layers.Dense(2)(vectorize(inputs)))
    target = tmp_path / "m.h5"
    with pytest.raises(FileFormatError, match=r"text_vectorization.*tf_idf.*tf.keras 2.*keras3"):
        save_model(model, target, target="tf_keras2")
    assert not target.exists()
    save_model(model, target, target="keras3")  # Keras 3's config holds the idf weights
    np.testing.assert_array_equal(load_model(target).predict(TEXTS, verbose=0), model.predict(TEXTS, verbose=0))

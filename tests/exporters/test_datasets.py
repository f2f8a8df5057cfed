"""Dataset specs read into arrays: each kind, validation by split or file, standardization and the Tokenizer fitted
on the training part only, CSV errors that name the file, row and column, and the checks against a model."""

import math

import numpy as np
import pytest

import core as keras
from core import layers
from core.errors import InputDataError
from core.preprocessing.sequence import pad_sequences
from core.preprocessing.text import Tokenizer
from exporters.datasets import (SAMPLES_DIR, DataError, LoadedData, check_fits, load_dataset, preview,
                                resolve_path, sample_datasets)


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def _csv(tmp_path, rows, name="t.csv", header="a,b,label"):
    return _write(tmp_path / name, header + "\n" + "\n".join(rows) + "\n")


def _spec(**kw):
    spec = {"kind": "csv", "name": "t", "path": "t.csv", "features": ["a", "b"], "label": "label",
            "label_mode": "int"}
    spec.update(kw)
    return spec


# -- the bundled samples -------------------------------------------------------------------------------------------
def test_samples_load_with_their_licences_and_split_like_keras():
    samples = {s["name"]: s for s in sample_datasets()}
    assert set(samples) == {"iris", "austen_passages", "sunspots"}
    readme = (SAMPLES_DIR / "README.md").read_text()
    for s in samples.values():
        assert s["licence"] and s["title"] and s["spec"]["path"].startswith("sample:")
        path = resolve_path(s["spec"]["path"], None)
        assert path.is_file() and path.stat().st_size < 2_000_000 and path.name in readme

    iris = load_dataset(samples["iris"]["spec"])
    assert iris.class_names == ["setosa", "versicolor", "virginica"]
    assert iris.x[0].shape == (120, 4) and iris.x[0].dtype == np.float32 and iris.y[0].dtype == np.int64
    vx, vy = iris.validation
    assert vx[0].shape == (30, 4) and set(vy[0]) == {0, 1, 2}  # the shuffled file puts every species in the split
    assert iris.description == "150 samples, 4 features, 3 classes (120 for training, 30 for validation)"

    text = load_dataset(samples["austen_passages"]["spec"])
    assert text.x[0].shape == (720, 50) and text.x[0].dtype == np.int32 and len(text.texts) == 720
    assert text.class_names == ["Emma", "Persuasion", "Pride and Prejudice"]
    assert text.validation[0][0].shape == (180, 50) and 0 < text.x[0].max() < 5000

    sun = load_dataset(samples["sunspots"]["spec"])
    # Keras's validation_split cuts at floor(n * (1 - split)) (keras/src/trainers/data_adapters/array_slicing.py)
    cut = math.floor(289 * 0.8)
    assert sun.x[0].shape == (cut, 20, 1) and sun.validation[0][0].shape == (289 - cut, 20, 1)
    with np.load(SAMPLES_DIR / "sunspots_windows.npz") as z:
        np.testing.assert_array_equal(sun.validation[1][0], z["y"][cut:])  # the LAST rows, unshuffled


def test_a_sample_name_cannot_leave_the_samples_folder():
    with pytest.raises(DataError, match="not a sample dataset name"):
        resolve_path("sample:../examples/mlp.nwproj", None)
    with pytest.raises(DataError, match="no sample dataset 'sample:nope.csv'.*sample:iris.csv"):
        resolve_path("sample:nope.csv", None)


# -- CSV ------------------------------------------------------------------------------------------------------------
def test_csv_labels_map_sorted_classes_and_one_hot(tmp_path):
    _csv(tmp_path, ["1,2,cat", "3,4,dog", "5,6,ant", "7,8,cat"])
    d = load_dataset(_spec(), tmp_path)
    assert d.class_names == ["ant", "cat", "dog"] and d.y[0].tolist() == [1, 2, 0, 1]
    assert d.feature_names == ["a", "b"] and d.x[0].tolist() == [[1, 2], [3, 4], [5, 6], [7, 8]]
    hot = load_dataset(_spec(label_mode="one_hot"), tmp_path)
    np.testing.assert_array_equal(hot.y[0], np.eye(3, dtype=np.float32)[[1, 2, 0, 1]])
    _csv(tmp_path, ["1,2,10", "3,4,9", "5,6,2"])  # numeric labels sort as numbers: 2 < 9 < 10
    assert load_dataset(_spec(), tmp_path).class_names == ["2", "9", "10"]


def test_csv_float_targets_and_default_features(tmp_path):
    _csv(tmp_path, ["1,2,0.5,7", "3,4,1.5,8"], header="a,b,t1,t2")
    d = load_dataset({"kind": "csv", "path": "t.csv", "label": ["t1", "t2"], "label_mode": "float"}, tmp_path)
    assert d.feature_names == ["a", "b"] and d.class_names is None
    np.testing.assert_array_equal(d.y[0], [[0.5, 7], [1.5, 8]])
    assert d.y[0].dtype == np.float32 and d.description == "2 samples, 2 features, 2 target(s)"


def test_standardization_is_fitted_on_the_training_part_only(tmp_path):
    rows = [f"{i},{10 * i},{i % 2}" for i in range(8)] + ["1000,-1000,0", "2000,5,1"]
    _csv(tmp_path, rows)
    d = load_dataset(_spec(standardize=True, validation_split=0.2), tmp_path)
    train_raw = np.array([[i, 10 * i] for i in range(8)], np.float64)
    mean, std = train_raw.mean(0), train_raw.std(0)
    np.testing.assert_allclose(d.x[0], (train_raw - mean) / std, rtol=1e-6)
    np.testing.assert_allclose(d.validation[0][0], (np.array([[1000, -1000], [2000, 5]]) - mean) / std, rtol=1e-6)
    np.testing.assert_allclose(d.standardization[0], mean)
    assert d.validation[1][0].tolist() == [0, 1]


def test_separate_validation_file_uses_the_training_classes_and_statistics(tmp_path):
    _csv(tmp_path, ["0,0,b", "2,4,a"])
    _csv(tmp_path, ["1,2,b"], name="v.csv")
    d = load_dataset(_spec(standardize=True, validation={"path": "v.csv"}), tmp_path)
    assert d.validation[1][0].tolist() == [1] and d.validation[0][0].tolist() == [[0.0, 0.0]]
    _csv(tmp_path, ["1,2,zebra"], name="v.csv")
    with pytest.raises(DataError, match=r"'v.csv', row 1 \(line 2\), column 'label': label 'zebra' is not one of "
                                        r"the training data's classes \(a, b\)"):
        load_dataset(_spec(validation={"path": "v.csv"}), tmp_path)


@pytest.mark.parametrize("rows, message", [
    (["1,2,x", "3,,y"], r"'t.csv', row 2 \(line 3\), column 'b': missing value; every cell needs a number"),
    (["1,2,x", "NA,4,y"], r"'t.csv', row 2 \(line 3\), column 'a': missing value \('NA'\)"),
    (["1,2,x", "3,4,y", "5,four,z"], r"'t.csv', row 3 \(line 4\), column 'b': 'four' is not a number"),
    (["1,2,x", "3,4"], r"'t.csv', row 2 \(line 3\): 2 field\(s\), but the header has 3 columns \(a ragged row\)"),
    (["1,2,x,9"], r"'t.csv', row 1 \(line 2\): 4 field\(s\), but the header has 3 columns"),
    (["1,2,x", "3,4,"], r"'t.csv', row 2 \(line 3\), column 'label': missing label"),
])
def test_csv_errors_name_the_file_row_and_column(tmp_path, rows, message):
    _csv(tmp_path, rows)
    with pytest.raises(DataError, match=message) as err:
        load_dataset(_spec(), tmp_path)
    assert isinstance(err.value, InputDataError)


def test_row_numbers_count_data_rows_and_lines_past_blank_lines_and_quoted_newlines(tmp_path):
    _write(tmp_path / "t.csv", 'a,b,label\n1,2,"two\nlines"\n\n3,oops,y\n')
    with pytest.raises(DataError, match=r"row 2 \(line 5\), column 'b': 'oops' is not a number"):
        load_dataset(_spec(), tmp_path)


@pytest.mark.parametrize("spec, message", [
    (_spec(path="nope.csv"), "data file '.*nope.csv' not found"),
    (_spec(features=["a", "c"]), r"'t.csv' has no column 'c' for the features \(its columns: a, b, label\)"),
    (_spec(label="kind"), "has no column 'kind' for the label"),
    (_spec(label_mode="ordinal"), "label_mode must be one of int, one_hot, float"),
    (_spec(validation_split=1.5), "validation_split must be a number between 0 and 1"),
    (_spec(validation_split=0.6), r"validation_split=0.6 leaves no samples for training or validation \(2 samples\)"),
    (_spec(kind="parquet"), "unknown kind 'parquet'"),
    (_spec(validation_split=0.5, validation={"path": "t.csv"}), "either a validation_split or a validation file"),
])
def test_bad_specs_say_what_is_wrong(tmp_path, spec, message):
    _csv(tmp_path, ["1,2,x", "3,4,y"])
    with pytest.raises(DataError, match=message):
        load_dataset(spec, tmp_path)


# -- NPZ / NPY ------------------------------------------------------------------------------------------------------
def test_npz_arrays_per_input_and_output_with_split_or_validation_arrays(tmp_path):
    rng = np.random.default_rng(0)
    a, b, y = rng.random((10, 3)), rng.integers(0, 5, (10, 4)), rng.integers(0, 2, 10)
    np.savez(tmp_path / "d.npz", a=a, b=b, y=y, a_val=a[:2], b_val=b[:2], y_val=y[:2])
    d = load_dataset({"kind": "npz", "path": "d.npz", "x": ["a", "b"], "y": ["y"], "validation_split": 0.3},
                     tmp_path)
    assert [v.shape for v in d.x] == [(7, 3), (7, 4)] and d.validation[1][0].tolist() == y[7:].tolist()
    assert d.description == "10 samples: x (3,) float64, (4,) int64 -> y () int64 (7 for training, 3 for validation)"
    d = load_dataset({"kind": "npz", "path": str(tmp_path / "d.npz"), "x": ["a", "b"], "y": "y",
                      "validation": {"x": ["a_val", "b_val"], "y": ["y_val"]}}, None)
    assert d.validation[0][1].shape == (2, 4) and d.x[0].shape == (10, 3)
    with pytest.raises(DataError, match=r"'d.npz' has no array named 'c' \(it has: a, a_val, b, b_val, y, y_val\)"):
        load_dataset({"kind": "npz", "path": "d.npz", "x": ["c"], "y": ["y"]}, tmp_path)
    np.savez(tmp_path / "bad.npz", a=a, y=y[:9])
    with pytest.raises(DataError, match=r"different numbers of samples \(\[9, 10\]\)"):
        load_dataset({"kind": "npz", "path": "bad.npz", "x": ["a"], "y": ["y"], "validation_split": 0.2}, tmp_path)


def test_npy_columns_by_index_and_the_rest_as_features(tmp_path):
    table = np.column_stack([np.arange(6.0), np.arange(6.0) * 2, [0, 1, 0, 1, 0, 1]])
    np.save(tmp_path / "t.npy", table)
    d = load_dataset({"kind": "npz", "path": "t.npy", "y": [2]}, tmp_path)
    assert d.x[0].shape == (6, 2) and d.y[0].dtype == np.int64 and d.y[0][:, 0].tolist() == [0, 1, 0, 1, 0, 1]
    with pytest.raises(DataError, match="column 5 is not a column index of 't.npy' \\(0 to 2\\)"):
        load_dataset({"kind": "npz", "path": "t.npy", "x": [5], "y": [2]}, tmp_path)


def test_the_older_reference_form_still_reads(tmp_path):
    np.savez(tmp_path / "d.npz", x_train=np.ones((4, 2)), y_train=np.arange(4), x_val=np.ones((1, 2)),
             y_val=np.arange(1))
    ref = {"name": "old", "path": "d.npz", "x": ["x_train"], "y": ["y_train"],
           "validation": {"x": ["x_val"], "y": ["y_val"]}}
    d = load_dataset(ref, tmp_path)
    assert d.x[0].shape == (4, 2) and d.validation[0][0].shape == (1, 2)
    with pytest.raises(DataError, match="dataset 'old': data file '.*missing.npz' not found"):
        load_dataset(dict(ref, path="missing.npz"), tmp_path)


# -- text -----------------------------------------------------------------------------------------------------------
def _tokens_like_keras(train_texts, texts, num_words, maxlen):
    tok = Tokenizer(num_words=num_words)
    tok.fit_on_texts(train_texts)
    return pad_sequences(tok.texts_to_sequences(texts), maxlen=maxlen)


def test_text_csv_column_tokenizer_fitted_on_the_training_part_only(tmp_path):
    texts = ["good fun film", "bad dull film", "good good plot", "dull bad plot", "zebra good"]
    rows = [f'"{t}",{"pos" if "good" in t else "neg"}' for t in texts]
    _csv(tmp_path, rows, header="review,sentiment")
    spec = {"kind": "text", "path": "t.csv", "text_column": "review", "label_column": "sentiment",
            "num_words": 100, "maxlen": 4, "validation_split": 0.2}
    d = load_dataset(spec, tmp_path)
    assert d.texts == texts[:4] and d.class_names == ["neg", "pos"] and d.y[0].tolist() == [1, 0, 1, 0]
    np.testing.assert_array_equal(d.x[0], _tokens_like_keras(texts[:4], texts[:4], 100, 4))
    # 'zebra' appears only in the validation text: a tokenizer fitted on the training part does not know it
    np.testing.assert_array_equal(d.validation[0][0], _tokens_like_keras(texts[:4], texts[4:], 100, 4))
    assert d.validation[0][0].tolist() == [[0, 0, 0, 1]]
    assert d.x[0].dtype == np.int32


def test_text_folder_classes_are_subfolders_shuffled_before_the_split(tmp_path):
    for label, words in [("neg", "awful dull"), ("pos", "great fun")]:
        (tmp_path / "reviews" / label).mkdir(parents=True)
        for i in range(5):
            _write(tmp_path / "reviews" / label / f"{i}.txt", f"{words} number{i}")
    spec = {"kind": "text", "path": "reviews", "num_words": 50, "maxlen": 3, "validation_split": 0.4}
    d = load_dataset(spec, tmp_path)
    assert d.class_names == ["neg", "pos"] and d.x[0].shape == (6, 3) and len(d.validation[1][0]) == 4
    assert set(d.y[0]) == {0, 1}  # shuffled: the training part is not one class
    for text, label in zip(d.texts, d.y[0]):
        assert ("great" in text) == (label == 1)
    assert load_dataset(spec, tmp_path).texts == d.texts  # the shuffle is seeded
    headers, rows = preview(spec, tmp_path, rows=3)
    assert headers == ["class", "file", "text"] and len(rows) == 3 and rows[0][2] == d.texts[0]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="has no sub-folders"):
        load_dataset(dict(spec, path="empty"), tmp_path)
    with pytest.raises(DataError, match="'maxlen' must be a positive integer, got None"):
        load_dataset({k: v for k, v in spec.items() if k != "maxlen"}, tmp_path)


# -- preview --------------------------------------------------------------------------------------------------------
def test_preview_shows_csv_rows_as_text_and_npz_arrays_as_columns(tmp_path):
    _csv(tmp_path, ["1,2,x", "3,4", "5,6,z"])
    headers, rows = preview(_spec(), tmp_path, rows=2)
    assert headers == ["a", "b", "label"] and rows == [["1", "2", "x"], ["3", "4", ""]]  # a ragged row, padded
    np.savez(tmp_path / "d.npz", x=np.arange(24).reshape(3, 8), y=np.array([0.5, 1.25, 2.0], np.float32))
    headers, rows = preview({"kind": "npz", "path": "d.npz", "x": ["x"], "y": ["y"]}, tmp_path)
    assert headers == ["x (3, 8) int64", "y (3,) float32"]
    assert rows[1] == ["[8, 9, 10, 11, 12, 13, …]", "1.25"] and len(rows) == 3


# -- does the data fit the model? -----------------------------------------------------------------------------------
def _text_model(length=100, input_dim=1000, units=3):
    inputs = keras.Input(shape=(length,), dtype="int32", name="tokens")
    x = layers.Embedding(input_dim, 8, name="embedding")(inputs)
    x = layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, layers.Dense(units, activation="softmax", name="label")(x))


def _data(x, y, **kw):
    return LoadedData([np.asarray(x)], [np.asarray(y)], **kw)


def test_text_fed_as_raw_strings_keeps_the_texts_the_split_and_the_labels(tmp_path):
    texts = ["good fun film", "bad dull film", "good good plot", "dull bad plot", "zebra good"]
    rows = [f'"{t}",{"pos" if "good" in t else "neg"}' for t in texts]
    _csv(tmp_path, rows, header="review,sentiment")
    spec = {"kind": "text", "path": "t.csv", "text_column": "review", "label_column": "sentiment",
            "validation_split": 0.2, "texts_as": "strings"}  # no num_words or maxlen: the model's own vectorizer
    d = load_dataset(spec, tmp_path)
    assert d.x[0].dtype == object and d.x[0].shape == (4, 1) and d.x[0][:, 0].tolist() == texts[:4]
    assert all(type(t) is str for t in d.x[0][:, 0])
    assert d.validation[0][0].shape == (1, 1) and d.validation[0][0][0, 0] == "zebra good"
    assert d.y[0].tolist() == [1, 0, 1, 0] and d.class_names == ["neg", "pos"] and d.texts == texts[:4]
    assert d.description == "5 texts, 2 classes, fed as raw text (4 for training, 1 for validation)"
    ids = load_dataset(dict(spec, texts_as="token_ids", num_words=100, maxlen=4), tmp_path)
    assert ids.y[0].tolist() == d.y[0].tolist() and ids.x[0].dtype == np.int32
    with pytest.raises(DataError, match="'texts_as' must be one of token_ids, strings, got 'words'"):
        load_dataset(dict(spec, texts_as="words"), tmp_path)


def test_check_fits_names_raw_text_fed_to_a_number_input():
    texts = np.array([["good film"], ["dull plot"]], dtype=object)
    problems = check_fits(_data(texts, np.array([1, 0])), _text_model(length=80))
    assert problems == ["input 'tokens' expects numbers (int32), the data gives raw text (strings). Give the input "
                        "dtype string and turn the text into ids inside the model (TextVectorization), or let the "
                        "Data panel feed token ids (Texts as: token ids)."]


def test_check_fits_names_the_input_or_output_and_both_shapes():
    ids = np.random.default_rng(0).integers(1, 900, (500, 80)).astype(np.int32)
    labels = np.arange(500) % 3
    assert check_fits(_data(ids, labels), _text_model(length=80)) == []
    assert check_fits(_data(ids, labels), _text_model()) == [
        "input 'tokens' expects (None, 100), the data gives (500, 80)."]
    assert check_fits(_data(ids, labels, class_names=["a", "b", "c"]), _text_model(80, units=10)) == [
        "output 'label' has 10 units, but the data has 3 classes: give it 3 units."]
    assert check_fits(_data(ids, np.arange(500) % 12), _text_model(80)) == [
        "output 'label' has 3 units, but the data has 12 classes: give it 12 units."]
    problems = check_fits(_data(ids, labels), _text_model(80, input_dim=500))
    assert problems == ["input 'tokens' feeds Embedding 'embedding' with input_dim 500, but the data holds ids from "
                        f"1 to {ids.max()}: set input_dim to at least {ids.max() + 1} (or keep fewer words)."]
    assert check_fits(_data(ids + 0.5, labels), _text_model(80)) == [
        "input 'tokens' expects whole numbers (int32: token ids), the data gives float64 values with fractions."]
    one_hot = np.eye(3, dtype=np.float32)[labels][:, :2]
    assert check_fits(_data(ids, one_hot), _text_model(80)) == [
        "output 'label' gives (None, 3), the targets are (500, 2)."]


def test_check_fits_counts_arrays_and_checks_the_validation_part():
    model = _text_model(80)
    ids = np.ones((10, 80), np.int32)
    data = LoadedData([ids, ids], [np.zeros(10, np.int64)])
    assert check_fits(data, model) == ["data gives 2 input array(s); the model has 1 input(s) ('tokens')."]
    data = LoadedData([ids], [np.zeros(9, np.int64)],
                      validation=([np.ones((2, 70), np.int32)], [np.zeros(2, np.int64)]))
    assert check_fits(data, model) == ["data: the arrays have different numbers of samples ([9, 10]).",
                                       "validation input 'tokens' expects (None, 80), the data gives (2, 70)."]
    regression = keras.Model(inp := keras.Input((20, 1), name="years"), layers.Dense(1, name="next")(
        layers.Flatten()(inp)))
    assert check_fits(_data(np.zeros((5, 20, 1)), np.zeros(5, np.float32)), regression) == []
    assert check_fits(_data(np.zeros((5, 20)), np.zeros((5, 1), np.float32)), regression) == [
        "input 'years' expects (None, 20, 1), the data gives (5, 20)."]


def test_a_problem_of_the_training_part_is_not_named_again_for_the_validation_part():
    ids = np.ones((10, 80), np.int32)
    data = LoadedData([ids], [np.arange(10) % 3], validation=([ids[:2]], [np.zeros(2, np.int64)]))
    assert check_fits(data, _text_model(100)) == ["input 'tokens' expects (None, 100), the data gives (10, 80)."]


@pytest.mark.parametrize("example, epochs", [("iris_mlp", None), ("austen_lstm", 1), ("sunspots_lstm", 2)])
def test_sample_examples_fit_their_data_and_train(example, epochs):
    from core.utils import set_random_seed
    from exporters.project import load_project

    project = SAMPLES_DIR.parent / "examples" / f"{example}.nwproj"
    doc = load_project(project)
    data = load_dataset(doc.datasets[0], project.parent)
    assert doc.datasets[0]["path"].startswith("sample:") and doc.training["validation_split"] == 0.0
    set_random_seed(doc.training["seed"])
    model = doc.to_model()
    assert check_fits(data, model) == []
    t = doc.training
    model.compile(optimizer=t["optimizer"], loss=t["loss"], metrics=t["metrics"])
    history = model.fit(data.x[0], data.y[0], validation_data=(data.validation[0][0], data.validation[1][0]),
                        batch_size=t["batch_size"], epochs=epochs or t["epochs"], shuffle=t["shuffle"], verbose=0,
                        device="cpu")
    assert all(np.isfinite(history.history["val_loss"]))
    if epochs is None:  # the whole run of the example's settings: the Iris MLP learns the species
        assert history.history["val_accuracy"][-1] > 0.9


def test_a_saved_project_keeps_the_spec_and_reads_the_same_data(tmp_path):
    from exporters.project import load_project, save_project

    doc = load_project(SAMPLES_DIR.parent / "examples" / "iris_mlp.nwproj")
    _csv(tmp_path, ["1,2,x", "3,4,y", "5,7,x", "6,1,y", "2,2,x"])
    doc.datasets = [_spec(standardize=True, validation_split=0.4)]
    save_project(doc, tmp_path / "p.nwproj")
    again = load_project(tmp_path / "p.nwproj")
    assert again.datasets == doc.datasets
    a, b = load_dataset(doc.datasets[0], tmp_path), load_dataset(again.datasets[0], tmp_path)
    np.testing.assert_array_equal(a.x[0], b.x[0])
    np.testing.assert_array_equal(a.validation[0][0], b.validation[0][0])

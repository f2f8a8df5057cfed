"""StringLookup and TextVectorization against real Keras 3: outputs equal for each main option (on texts with
non-ASCII letters, empty strings, runs of spaces, tabs and newlines, punctuation), vocabularies adapted in Keras's
order, files in both directions, the exported ONNX file taking strings, and a TextVectorization -> Embedding ->
GRU -> Dense text classifier training on Keras's trajectory."""

import numpy as np
import pytest

import core
from core.data import Dataset
from core.errors import ConfigError, InputDataError
from tests.core.keras_reference import keras3  # noqa: F401  (a fixture)

TEXTS = np.array(["The cat, sat on the mat!", "the  DOG\tran\nhome", "Ünïcode ÄB café-au-lait", "",
                  "a-b c'd  e_f (g) [h]", "   ", "no\u00a0break\u2003space", "!!! ...", "the cat the dog",
                  "Mat's \"quote\" 100% #1 @x", "x\x0by\x0cz\r w"], dtype=object)
QUERIES = np.array(["the cat ran", "ÄB äb CAFÉ-au-lait", "", "unknown words only", "dog\tdog  dog", "mat,mat!"],
                   dtype=object)
EMPTY = np.array(["", "  ", "!! .", "\t"], dtype=object)  # no token at all in the default layer
TOKENS = np.array([["a", "b", "c"], ["b", "b", "zz"], ["", "a", "é"], ["c", "a", "a"]], dtype=object)
VOCAB = ["a", "b", "é", "longer token"]

# (case id, config, what adapt() gets or None)
LOOKUP_CASES = [
    ("adapt", {}, TOKENS),
    ("adapt-max-tokens", {"max_tokens": 3}, TOKENS),
    ("mask", {"mask_token": "", "vocabulary": VOCAB}, None),
    ("no-oov-index", {"num_oov_indices": 0, "vocabulary": ["a", "b", "c", "zz", "", "é"]}, None),
    ("multi-hot", {"output_mode": "multi_hot", "vocabulary": VOCAB}, None),
    ("multi-hot-mask", {"output_mode": "multi_hot", "mask_token": "", "vocabulary": VOCAB}, None),
    ("count-padded", {"output_mode": "count", "max_tokens": 9, "pad_to_max_tokens": True, "vocabulary": VOCAB},
     None),
    ("one-hot", {"output_mode": "one_hot", "vocabulary": VOCAB}, "column"),
    ("tf-idf-adapt", {"output_mode": "tf_idf"}, TOKENS),
    ("tf-idf-given", {"output_mode": "tf_idf", "vocabulary": VOCAB, "idf_weights": [0.5, 1.0, 2.0, 3.0]}, None),
    ("oov-token", {"oov_token": "?", "vocabulary": VOCAB}, None),
]

TEXT_CASES = [
    ("default", {}),
    ("lower", {"standardize": "lower"}),
    ("strip", {"standardize": "strip_punctuation"}),
    ("no-standardize", {"standardize": None}),
    ("no-split", {"split": None}),
    ("no-split-no-standardize", {"split": None, "standardize": None}),
    ("ngrams-2", {"ngrams": 2}),
    ("ngrams-1-3", {"ngrams": (1, 3)}),
    ("sequence-length", {"output_sequence_length": 4}),
    ("no-split-sequence-length", {"split": None, "output_sequence_length": 3}),
    ("sequence-length-long", {"output_sequence_length": 12, "ngrams": 2}),
    ("max-tokens", {"max_tokens": 6}),
    ("multi-hot", {"output_mode": "multi_hot"}),
    ("count", {"output_mode": "count", "ngrams": 2}),
    ("tf-idf", {"output_mode": "tf_idf"}),
    ("count-padded", {"output_mode": "count", "max_tokens": 30, "pad_to_max_tokens": True}),
]


def _equal(got, expected, what):
    got, expected = np.asarray(got), np.asarray(expected)
    if expected.dtype.kind in "OSU":
        expected = np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else v, otypes=[object])(expected)
    assert got.shape == expected.shape, (what, got.shape, expected.shape)
    if expected.dtype.kind == "f":
        assert got.dtype == expected.dtype, (what, got.dtype, expected.dtype)
        np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0, err_msg=what)
    elif expected.dtype == object:
        assert got.tolist() == expected.tolist(), what
    else:
        assert got.dtype == expected.dtype, (what, got.dtype, expected.dtype)
        np.testing.assert_array_equal(got, expected, err_msg=what)


@pytest.mark.parametrize("case,config,adapt_data", LOOKUP_CASES, ids=[c[0] for c in LOOKUP_CASES])
def test_string_lookup_matches_keras3(keras3, case, config, adapt_data):
    ref, ours = keras3.layers.StringLookup(**config), core.layers.StringLookup(**config)
    x = TOKENS[:, :1] if isinstance(adapt_data, str) else TOKENS
    if adapt_data is not None and not isinstance(adapt_data, str):
        ref.adapt(adapt_data)
        ours.adapt(adapt_data)
    assert ours.get_vocabulary() == [str(t) for t in ref.get_vocabulary()]
    expected = ref(x)
    _equal(ours(x), expected, case)
    _equal(ours(x.tolist()), expected, f"{case} (a list)")
    inputs = core.Input(x.shape[1:], dtype="string")
    _equal(core.Model(inputs, ours(inputs)).predict(x, verbose=0), expected, f"{case} (a model)")
    theirs_config, ours_config = ref.get_config(), ours.get_config()
    for key, value in theirs_config.items():
        if key not in ("dtype", "name", "vocabulary", "vocabulary_size", "idf_weights"):
            assert ours_config[key] == value, (key, ours_config[key], value)


def test_string_lookup_invert_and_vocabulary_file_match_keras3(keras3, tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    ref, ours = keras3.layers.StringLookup(vocabulary=str(path)), core.layers.StringLookup(vocabulary=str(path))
    _equal(ours(TOKENS), ref(TOKENS), "vocabulary file")
    ids = np.array([[0, 1, 2], [3, 4, 9]])
    for config in ({"invert": True, "vocabulary": VOCAB}, {"invert": True, "mask_token": "[M]", "vocabulary": VOCAB}):
        _equal(core.layers.StringLookup(**config)(ids), keras3.layers.StringLookup(**config)(ids), str(config))


@pytest.mark.parametrize("case,config", TEXT_CASES, ids=[c[0] for c in TEXT_CASES])
def test_text_vectorization_matches_keras3(keras3, case, config):
    ref, ours = keras3.layers.TextVectorization(**config), core.layers.TextVectorization(**config)
    ref.adapt(TEXTS)
    ours.adapt(TEXTS)
    assert ours.get_vocabulary() == [str(t) for t in ref.get_vocabulary()]
    texts = (QUERIES, TEXTS, QUERIES[:, None], EMPTY)
    if config.get("split", "whitespace") is None and "output_sequence_length" in config:
        texts = (QUERIES[:, None], TEXTS[:, None])  # (Keras cuts a rank-1 batch itself to the length)
    for x in texts:
        expected = ref(x)
        _equal(ours(x), expected, case)
    inputs = core.Input((1,), dtype="string")
    _equal(core.Model(inputs, ours(inputs)).predict(QUERIES[:, None], verbose=0, batch_size=4), ref(QUERIES[:, None]),
           f"{case} (a model, in batches)")
    theirs_config, ours_config = ref.get_config(), ours.get_config()
    for key, value in theirs_config.items():
        if key not in ("dtype", "name", "vocabulary", "vocabulary_size", "idf_weights"):
            assert ours_config[key] == (list(value) if isinstance(value, tuple) else value), key


def test_text_vectorization_adapts_on_lists_datasets_and_batches_like_keras3(keras3):
    ref = keras3.layers.TextVectorization(output_mode="tf_idf")
    ref.adapt(list(TEXTS))
    for data in (list(TEXTS), Dataset.from_tensor_slices(TEXTS).batch(4), iter([TEXTS[:5], TEXTS[5:]])):
        ours = core.layers.TextVectorization(output_mode="tf_idf")
        ours.adapt(data)
        assert ours.get_vocabulary() == [str(t) for t in ref.get_vocabulary()]
        _equal(ours(QUERIES), ref(QUERIES), type(data).__name__)


def test_given_vocabularies_and_set_vocabulary_match_keras3(keras3, tmp_path):
    vocabulary = ["the", "cat", "dog", "the cat"]
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(vocabulary), encoding="utf-8")
    for given in (vocabulary, str(path)):
        ref = keras3.layers.TextVectorization(vocabulary=given, ngrams=2)
        ours = core.layers.TextVectorization(vocabulary=given, ngrams=2)
        _equal(ours(QUERIES), ref(QUERIES), str(given))
    ref = keras3.layers.TextVectorization(output_mode="tf_idf")
    ours = core.layers.TextVectorization(output_mode="tf_idf")
    ref.set_vocabulary(vocabulary, idf_weights=[0.5, 1.0, 1.5, 2.0])
    ours.set_vocabulary(vocabulary, idf_weights=[0.5, 1.0, 1.5, 2.0])
    _equal(ours(QUERIES), ref(QUERIES), "set_vocabulary tf_idf")


def test_adapted_layers_travel_in_the_config_to_keras3(keras3):
    for ours in (core.layers.TextVectorization(output_mode="tf_idf", ngrams=2),
                 core.layers.TextVectorization(output_sequence_length=5)):
        ours.adapt(TEXTS)
        rebuilt = keras3.layers.TextVectorization.from_config(ours.get_config())
        _equal(ours(QUERIES), rebuilt(QUERIES), "rebuilt in Keras")
        again = core.layers.TextVectorization.from_config(ours.get_config())
        _equal(again(QUERIES), ours(QUERIES), "rebuilt here")


def test_keras3_archive_with_adapted_text_layers_loads_here_and_ours_loads_there(keras3, tmp_path):
    """Keras 3 keeps an adapted vocabulary in the .keras archive's assets (and tf_idf weights among the layer's
    variables); Netweaver writes it into the config, which Keras 3 reads as a given vocabulary."""
    t = keras3.Input((1,), dtype="string")
    outputs = []
    for mode in ("int", "tf_idf"):
        layer = keras3.layers.TextVectorization(output_mode=mode, output_sequence_length=6 if mode == "int" else None)
        layer.adapt(TEXTS)
        outputs.append(layer(t))
    lookup = keras3.layers.StringLookup(output_mode="count")
    lookup.adapt(TOKENS[[0, 1, 3]])  # (an adapted "" sorts last, and Keras drops a vocabulary file's last empty line)
    outputs.append(lookup(keras3.layers.Reshape((3,))(keras3.layers.Concatenate()([t, t, t]))))
    model = keras3.Model(t, outputs)
    model.save(tmp_path / "text.keras")
    ours = core.models.load_model(str(tmp_path / "text.keras"), compile=False)
    x = QUERIES[:, None]
    for got, expected in zip(ours.predict(x, verbose=0), model(x)):
        _equal(got, expected, "a Keras 3 archive")
    ours.save(tmp_path / "ours.keras")
    back = keras3.models.load_model(tmp_path / "ours.keras")
    for got, expected in zip(back(x), ours.predict(x, verbose=0)):
        _equal(expected, got, "our archive in Keras 3")


def _classifier(lib, texts):
    L = lib.layers
    vectorize = L.TextVectorization(max_tokens=40, output_sequence_length=7)
    vectorize.adapt(texts)
    inputs = lib.Input((1,), dtype="string")
    h = L.Embedding(40, 6)(vectorize(inputs))
    h = L.GRU(5)(h)
    return lib.Model(inputs, L.Dense(1, activation="sigmoid")(h))


def test_text_classifier_trains_like_keras3_and_its_onnx_file_takes_strings(keras3, tmp_path):
    """TextVectorization -> Embedding -> GRU -> Dense, adapted on a small text set, with Keras's initial weights:
    the history within 1e-4 (Keras 3 fits text only from a tf.data pipeline; ours from the arrays), the weights
    within 1e-3, and the exported .onnx file predicts from raw strings in a plain session."""
    import onnxruntime as ort
    import tensorflow as tf

    rng = np.random.default_rng(0)
    words = ["good", "bad", "film", "plot", "great", "awful", "acting", "the", "a", "was", "Really", "not!"]
    texts = np.array([" ".join(rng.choice(words, size=rng.integers(2, 9))) for _ in range(48)], dtype=object)
    y = np.array([float(("good" in t) or ("great" in t)) for t in texts], dtype="float32")
    keras3.utils.set_random_seed(0)
    theirs, ours = _classifier(keras3, list(texts)), _classifier(core, texts)
    ours.set_weights(theirs.get_weights())
    theirs.compile(optimizer=keras3.optimizers.Adam(0.01), loss="binary_crossentropy")
    ours.compile(optimizer=core.optimizers.Adam(0.01), loss="binary_crossentropy")
    batches = tf.data.Dataset.from_tensor_slices((texts.astype(str)[:, None], y)).batch(8)
    expected = theirs.fit(batches, epochs=3, shuffle=False, verbose=0).history["loss"]
    got = ours.fit(texts[:, None], y, batch_size=8, epochs=3, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    for var, value, want in zip(ours.weights, ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(value, want, rtol=1e-3, atol=1e-5, err_msg=var.path)
    assert ours.layers[1].get_vocabulary() == [str(t) for t in theirs.layers[1].get_vocabulary()]
    predictions = ours.predict(texts, verbose=0)
    np.testing.assert_allclose(predictions, np.asarray(theirs(texts.astype(str)[:, None])), atol=1e-5)
    ours.to_onnx(tmp_path / "classifier.onnx")
    session = ort.InferenceSession(str(tmp_path / "classifier.onnx"), providers=["CPUExecutionProvider"])
    (spec,) = session.get_inputs()
    assert spec.type == "tensor(string)"
    np.testing.assert_allclose(session.run(None, {spec.name: texts[:, None]})[0], predictions, atol=1e-6)


def test_text_layers_without_a_vocabulary_say_what_to_call():
    with pytest.raises(ConfigError, match=r"TextVectorization 'tv' has no vocabulary yet: call layer.adapt\(data\)"):
        core.layers.TextVectorization(name="tv")(QUERIES)
    with pytest.raises(ConfigError, match=r"StringLookup 'ids' has no vocabulary yet: call layer.adapt\(data\)"):
        core.layers.StringLookup(name="ids")(TOKENS)
    inputs = core.Input((1,), dtype="string")
    vectorize = core.layers.TextVectorization(output_sequence_length=5)
    model = core.Model(inputs, vectorize(inputs))  # wired first, as Keras allows
    assert model.output_shape == (None, 5)
    with pytest.raises(ConfigError, match="has no vocabulary yet"):
        model.predict(QUERIES, verbose=0)
    vectorize.adapt(TEXTS)
    assert model.predict(QUERIES, verbose=0).shape == (len(QUERIES), 5)
    assert core.Model(inputs, core.layers.TextVectorization()(inputs)).output_shape == (None, None)
    with pytest.raises(ConfigError, match="TextVectorization 'counts' has no vocabulary yet, so the length of its "
                                          "count output is unknown"):
        core.layers.TextVectorization(output_mode="count", name="counts")(inputs)


def test_what_standard_onnx_cannot_compute_is_refused_by_name():
    with pytest.raises(ConfigError, match="split='character' cannot be computed in standard ONNX"):
        core.layers.TextVectorization(split="character")
    with pytest.raises(ConfigError, match="FarmHash"):
        core.layers.StringLookup(num_oov_indices=2)
    with pytest.raises(ConfigError, match="ngrams need a split"):
        core.layers.TextVectorization(split=None, ngrams=2)
    with pytest.raises(ConfigError, match="only for output_mode='int'"):
        core.layers.TextVectorization(output_mode="count", output_sequence_length=3)
    with pytest.raises(ConfigError, match="standardize function could not be compiled to ONNX"):
        tv = core.layers.TextVectorization(standardize=lambda t: t.decode())
        tv.adapt(TEXTS)
    with pytest.raises(ConfigError, match="shape \\(batch,\\) or \\(batch, 1\\)"):
        tv = core.layers.TextVectorization(vocabulary=["a"])
        tv(np.array([["a", "b"]], dtype=object))
    with pytest.raises(ConfigError, match="takes strings"):
        core.layers.StringLookup(vocabulary=["a"])(np.array([1, 2]))


def test_a_standardize_function_of_ops_is_compiled():
    tv = core.layers.TextVectorization(standardize=core.ops.lower_ascii)
    tv.adapt(TEXTS)
    reference = core.layers.TextVectorization(standardize="lower")
    reference.adapt(TEXTS)
    assert tv.get_vocabulary() == reference.get_vocabulary()
    _equal(tv(QUERIES), reference(QUERIES), "callable")


def test_string_inputs_are_checked_by_name():
    inputs = core.Input((1,), dtype="string", name="text")
    lookup = core.layers.StringLookup(vocabulary=["a"])
    model = core.Model(inputs, lookup(inputs))
    with pytest.raises(InputDataError, match="Input 'text' .* expects text"):
        model.predict(np.array([[1.0]]), verbose=0)
    dense_in = core.Input((1,), name="x")
    dense = core.Model(dense_in, core.layers.Dense(1)(dense_in))
    with pytest.raises(InputDataError, match="expects numbers .* got text"):
        dense.predict(np.array([["a"]], dtype=object), verbose=0)

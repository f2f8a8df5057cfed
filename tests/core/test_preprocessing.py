"""pad_sequences and Tokenizer: the seed's values, Keras's options, and errors (checked against tf_keras when it is
installed)."""

import numpy as np
import pytest

import core as tf
from core.errors import ConfigError, InputDataError
from core.preprocessing import Tokenizer, pad_sequences
from core.preprocessing.text import text_to_word_sequence, tokenizer_from_json

RAW = [[83, 91, 1, 645, 1253, 927], [73, 8, 3215, 55, 927], [711, 632, 71]]


def test_seed_padding_post():
    padded = tf.keras.preprocessing.sequence.pad_sequences(RAW, padding="post")
    np.testing.assert_array_equal(padded, [[83, 91, 1, 645, 1253, 927], [73, 8, 3215, 55, 927, 0],
                                           [711, 632, 71, 0, 0, 0]])
    assert padded.dtype == np.int32


def test_pad_sequences_options():
    np.testing.assert_array_equal(pad_sequences(RAW, maxlen=4), [[1, 645, 1253, 927], [8, 3215, 55, 927],
                                                                 [0, 711, 632, 71]])
    np.testing.assert_array_equal(pad_sequences(RAW, maxlen=4, truncating="post", padding="post", value=-1),
                                  [[83, 91, 1, 645], [73, 8, 3215, 55], [711, 632, 71, -1]])
    floats = pad_sequences([[0.5], [1.5, 2.5]], dtype="float32", value=9.0)
    np.testing.assert_array_equal(floats, np.array([[9.0, 0.5], [1.5, 2.5]], np.float32))
    vectors = pad_sequences([[[1, 2]], [[3, 4], [5, 6]], []], padding="post")
    assert vectors.shape == (3, 2, 2) and vectors[0, 1].tolist() == [0, 0] and vectors[2].sum() == 0
    assert pad_sequences([[1, 2]], maxlen=0).shape == (1, 0)
    assert pad_sequences([], maxlen=3).shape == (0, 3)
    strings = pad_sequences([["a"], ["b", "c"]], dtype=object, value="<pad>")
    assert strings.tolist() == [["<pad>", "a"], ["b", "c"]]


def test_pad_sequences_errors():
    with pytest.raises(InputDataError, match="padding"):
        pad_sequences(RAW, padding="middle")
    with pytest.raises(InputDataError, match="truncating"):
        pad_sequences(RAW, truncating="both")
    with pytest.raises(InputDataError, match="item 1"):
        pad_sequences([[1], 5])
    with pytest.raises(InputDataError, match="string padding"):
        pad_sequences(RAW, value="x")
    with pytest.raises(InputDataError, match="shape"):
        pad_sequences([[[1, 2]], [[1, 2, 3]]])


TEXTS = ["The cat sat on the mat.", "The dog ate my homework!", "Cats and dogs: the end?"]


def test_tokenizer_word_index_by_frequency_and_sequences():
    tok = Tokenizer()
    tok.fit_on_texts(TEXTS)
    assert tok.word_index["the"] == 1 and len(tok.word_index) == 13
    assert tok.word_counts["the"] == 4 and tok.word_docs["the"] == 3 and tok.document_count == 3
    assert tok.texts_to_sequences(["the cat ate a fish"]) == [[1, 2, 7]]
    assert tok.sequences_to_texts([[1, 2, 7]]) == ["the cat ate"]
    assert text_to_word_sequence("Hello, World!") == ["hello", "world"]


def test_tokenizer_num_words_oov_lower_filters_split():
    tok = Tokenizer(num_words=3, oov_token="<OOV>")
    tok.fit_on_texts(TEXTS)
    assert tok.word_index["<OOV>"] == 1 and tok.word_index["the"] == 2
    assert tok.texts_to_sequences(["the cat unknown"]) == [[2, 1, 1]]
    keep_case = Tokenizer(lower=False, filters="", split=",")
    keep_case.fit_on_texts(["A,b,A", "b"])
    assert keep_case.word_index == {"A": 1, "b": 2}
    chars = Tokenizer(char_level=True)
    chars.fit_on_texts(["aab"])
    assert chars.word_index == {"a": 1, "b": 2}
    assert tok.texts_to_matrix(["the the cat"], mode="count").shape == (1, 3)
    clone = tokenizer_from_json(tok.to_json())
    assert clone.word_index == tok.word_index and clone.texts_to_sequences(["the"]) == [[2]]


def test_tokenizer_errors():
    with pytest.raises(ConfigError, match="num_words"):
        Tokenizer(num_words=-1)
    with pytest.raises(ConfigError, match="unknown"):
        Tokenizer(bogus=1)
    with pytest.raises(InputDataError, match="list of texts"):
        Tokenizer().fit_on_texts("just one string")
    with pytest.raises(ConfigError, match="mode"):
        Tokenizer(num_words=3).sequences_to_matrix([[1]], mode="bits")


def test_matches_tf_keras_tokenizer_and_padding():
    tf_keras = pytest.importorskip("tf_keras")
    texts = TEXTS + ["the the THE cat, cat; dog", "Mat on mat"]
    for kwargs in ({}, {"num_words": 5, "oov_token": "<u>"}, {"lower": False}, {"char_level": True}):
        theirs = tf_keras.preprocessing.text.Tokenizer(**kwargs)
        ours = Tokenizer(**kwargs)
        theirs.fit_on_texts(texts)
        ours.fit_on_texts(texts)
        assert ours.word_index == theirs.word_index
        probe = ["the cat and a bird", "MAT dog"]
        assert ours.texts_to_sequences(probe) == theirs.texts_to_sequences(probe)
        for mode in ("binary", "count", "freq", "tfidf"):
            np.testing.assert_allclose(ours.texts_to_matrix(probe, mode=mode),
                                       theirs.texts_to_matrix(probe, mode=mode))
    for kwargs in ({}, {"maxlen": 4}, {"maxlen": 4, "padding": "post", "truncating": "post"}, {"value": 7}):
        np.testing.assert_array_equal(pad_sequences(RAW, **kwargs),
                                      tf_keras.preprocessing.sequence.pad_sequences(RAW, **kwargs))

"""`Tokenizer`: texts to integer sequences by word frequency, as `keras.preprocessing.text.Tokenizer`."""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict, defaultdict

import numpy as np

from core.errors import ConfigError, InputDataError

__all__ = ["Tokenizer", "hashing_trick", "one_hot", "text_to_word_sequence", "tokenizer_from_json"]

DEFAULT_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'


def text_to_word_sequence(text, filters=DEFAULT_FILTERS, lower=True, split=" "):
    """Lower-case, replace every filtered character by `split`, and split into non-empty words."""
    if lower:
        text = text.lower()
    text = text.translate(str.maketrans({c: split for c in filters}))
    return [w for w in text.split(split) if w]


def hashing_trick(text, n, hash_function=None, filters=DEFAULT_FILTERS, lower=True, split=" ", analyzer=None):
    """Each word of `text` as an index in [1, n) from its hash, as tf.keras 2's `hashing_trick`. hash_function:
    None (Python's `hash`, which differs between interpreter runs unless PYTHONHASHSEED is set), 'md5' (stable),
    or a function of a string."""
    if isinstance(n, bool) or int(n) < 2:
        raise InputDataError(f"hashing_trick: n must be an integer of at least 2 (indices run from 1 to n-1), got "
                             f"{n!r}.")
    if hash_function is None:
        hash_function = hash
    elif hash_function == "md5":
        def hash_function(word):
            return int(hashlib.md5(word.encode()).hexdigest(), 16)
    words = text_to_word_sequence(text, filters, lower, split) if analyzer is None else analyzer(text)
    return [hash_function(w) % (int(n) - 1) + 1 for w in words]


def one_hot(input_text, n, filters=DEFAULT_FILTERS, lower=True, split=" ", analyzer=None):
    """tf.keras 2's `one_hot`: `hashing_trick` with Python's `hash` (an index per word, not a one-hot vector)."""
    return hashing_trick(input_text, n, hash_function=hash, filters=filters, lower=lower, split=split,
                         analyzer=analyzer)


class Tokenizer:
    """Word index by frequency (most frequent word = 1; 0 is never a word, it is padding).

    num_words: keep only words with index < num_words when converting texts (the index itself keeps every word).
    oov_token: a token that takes index 1 and stands for every unknown (or cut) word in `texts_to_sequences`.
    """

    def __init__(self, num_words=None, filters=DEFAULT_FILTERS, lower=True, split=" ", char_level=False,
                 oov_token=None, analyzer=None, document_count=0, **kwargs):
        unknown = set(kwargs) - {"nb_words"}
        if unknown:
            raise ConfigError(f"Tokenizer: unknown argument(s) {sorted(unknown)}.")
        num_words = kwargs.get("nb_words", num_words)
        if num_words is not None and (isinstance(num_words, bool) or int(num_words) < 0):
            raise ConfigError(f"Tokenizer: num_words must be a non-negative integer or None, got {num_words!r}.")
        if not isinstance(split, str) or not split:
            raise ConfigError(f"Tokenizer: split must be a non-empty string, got {split!r}.")
        self.num_words = None if num_words is None else int(num_words)
        self.filters = filters
        self.lower = bool(lower)
        self.split = split
        self.char_level = bool(char_level)
        self.oov_token = oov_token
        self.analyzer = analyzer
        self.document_count = int(document_count)
        self.word_counts: OrderedDict[str, int] = OrderedDict()
        self.word_docs: defaultdict[str, int] = defaultdict(int)
        self.index_docs: defaultdict[int, int] = defaultdict(int)
        self.word_index: dict[str, int] = {}
        self.index_word: dict[int, str] = {}

    def _words(self, text):
        if self.char_level or isinstance(text, list):
            if self.lower:
                text = [t.lower() for t in text] if isinstance(text, list) else text.lower()
            return list(text)
        if not isinstance(text, str):
            raise InputDataError(f"Tokenizer: expected texts as strings (or lists of tokens), got {text!r}.")
        if self.analyzer is not None:
            return list(self.analyzer(text))
        return text_to_word_sequence(text, self.filters, self.lower, self.split)

    def fit_on_texts(self, texts):
        if isinstance(texts, str):
            raise InputDataError("Tokenizer.fit_on_texts expects a list of texts, got a single string.")
        for text in texts:
            self.document_count += 1
            words = self._words(text)
            for w in words:
                self.word_counts[w] = self.word_counts.get(w, 0) + 1
            for w in set(words):
                self.word_docs[w] += 1
        # Python's sort is stable: equally frequent words keep the order they were first seen in.
        by_count = sorted(self.word_counts.items(), key=lambda wc: wc[1], reverse=True)
        vocab = ([] if self.oov_token is None else [self.oov_token]) + [w for w, _ in by_count]
        self.word_index = {w: i for i, w in enumerate(vocab, start=1)}
        self.index_word = {i: w for w, i in self.word_index.items()}
        self.index_docs = defaultdict(int, {self.word_index[w]: c for w, c in self.word_docs.items()})

    def fit_on_sequences(self, sequences):
        self.document_count += len(sequences)
        for seq in sequences:
            for i in set(seq):
                self.index_docs[i] += 1

    def texts_to_sequences(self, texts):
        return list(self.texts_to_sequences_generator(texts))

    def texts_to_sequences_generator(self, texts):
        if isinstance(texts, str):
            raise InputDataError("Tokenizer.texts_to_sequences expects a list of texts, got a single string.")
        oov = self.word_index.get(self.oov_token) if self.oov_token is not None else None
        for text in texts:
            seq = []
            for w in self._words(text):
                i = self.word_index.get(w)
                if i is not None and not (self.num_words and i >= self.num_words):
                    seq.append(i)
                elif oov is not None:
                    seq.append(oov)
            yield seq

    def sequences_to_texts(self, sequences):
        oov_word = self.index_word.get(self.word_index.get(self.oov_token)) if self.oov_token is not None else None
        texts = []
        for seq in sequences:
            words = []
            for i in seq:
                w = self.index_word.get(int(i))
                if w is not None and not (self.num_words and i >= self.num_words):
                    words.append(w)
                elif oov_word is not None:
                    words.append(oov_word)
            texts.append(" ".join(words))
        return texts

    def texts_to_matrix(self, texts, mode="binary"):
        return self.sequences_to_matrix(self.texts_to_sequences(texts), mode=mode)

    def sequences_to_matrix(self, sequences, mode="binary"):
        """One row per sequence, one column per word index: 'binary', 'count', 'freq' or 'tfidf'."""
        if mode not in ("binary", "count", "freq", "tfidf"):
            raise ConfigError(f"Tokenizer: mode must be 'binary', 'count', 'freq' or 'tfidf', got {mode!r}.")
        n = self.num_words or (len(self.word_index) + 1)
        if not self.num_words and not self.word_index:
            raise InputDataError("Tokenizer: fit it on texts (or give num_words) before making a matrix.")
        if mode == "tfidf" and not self.document_count:
            raise InputDataError("Tokenizer: fit it on texts before using mode='tfidf'.")
        x = np.zeros((len(sequences), n))
        for row, seq in enumerate(sequences):
            if not seq:
                continue
            counts: dict[int, int] = defaultdict(int)
            for i in seq:
                if i < n:
                    counts[i] += 1
            for i, c in counts.items():
                if mode == "count":
                    x[row, i] = c
                elif mode == "freq":
                    x[row, i] = c / len(seq)
                elif mode == "binary":
                    x[row, i] = 1
                else:
                    tf = 1 + np.log(c)
                    idf = np.log(1 + self.document_count / (1 + self.index_docs.get(i, 0)))
                    x[row, i] = tf * idf
        return x

    def get_config(self):
        return {
            "num_words": self.num_words, "filters": self.filters, "lower": self.lower, "split": self.split,
            "char_level": self.char_level, "oov_token": self.oov_token, "document_count": self.document_count,
            "word_counts": json.dumps(self.word_counts), "word_docs": json.dumps(self.word_docs),
            "index_docs": json.dumps(self.index_docs), "index_word": json.dumps(self.index_word),
            "word_index": json.dumps(self.word_index),
        }

    def to_json(self, **kwargs):
        return json.dumps({"class_name": "Tokenizer", "config": self.get_config()}, **kwargs)


def tokenizer_from_json(json_string) -> Tokenizer:
    config = dict(json.loads(json_string).get("config", {}))
    word_counts = json.loads(config.pop("word_counts"))
    word_docs = json.loads(config.pop("word_docs"))
    index_docs = json.loads(config.pop("index_docs"))
    index_word = json.loads(config.pop("index_word"))
    word_index = json.loads(config.pop("word_index"))
    tok = Tokenizer(**config)
    tok.word_counts = OrderedDict(word_counts)
    tok.word_docs = defaultdict(int, word_docs)
    tok.index_docs = defaultdict(int, {int(k): v for k, v in index_docs.items()})
    tok.index_word = {int(k): v for k, v in index_word.items()}
    tok.word_index = word_index
    return tok

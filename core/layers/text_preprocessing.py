"""Preprocessing layers for raw text: StringLookup and TextVectorization.

They compute inside the model's ONNX graph with standard ONNX string ops (see core.ops.strings), so a model that
takes text trains in ONNX Runtime and its exported `.onnx` file takes strings. Their inputs are 'string' tensors
(numpy object arrays of str; Python lists of str when called eagerly).

Differences from Keras, each refused with an error rather than computed differently:
- StringLookup with num_oov_indices > 1 (Keras spreads unknown strings over the OOV indices by FarmHash of their
  bytes, which standard ONNX cannot read), salt, and sparse outputs.
- TextVectorization's split='character' (standard ONNX has no op that cuts a string into its characters), a split
  callable, ngrams without a split, ragged and sparse outputs. A standardize callable must be written with ops
  that compile to ONNX (core.ops, e.g. ops.lower_ascii); one that cannot be compiled is refused with its error.
- As in StringLookup, a token outside the vocabulary when there are no OOV indices gives -1 where Keras stops with
  an error (a graph cannot raise).

Keras's punctuation strip is a regex replace on UTF-8 bytes; it removes only ASCII punctuation, so cutting each text
at each punctuation byte and joining the pieces again (core.ops.strings) gives the same text for any UTF-8 input.
Lowercasing is ASCII-only as in TensorFlow; whitespace splitting cuts at ' \\t\\n\\r\\v\\f' as tf.strings.split does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core import ops
from core.errors import ConfigError
from core.graph import STRING
from core.layers.base import Layer
from core.layers.preprocessing import IndexLookup, _choice, _no_sparse, adapt_batches, encode_categorical, \
    shapes_only

__all__ = ["StringLookup", "TextVectorization"]

# Keras 3's punctuation class r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'
PUNCTUATION = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'"
WHITESPACE = " \t\n\r\v\f"  # what tf.strings.split(sep=None) splits on
_STANDARDIZE = (None, "lower_and_strip_punctuation", "lower", "strip_punctuation")


def _read_vocabulary_file(path: str, layer: str) -> list[str]:
    """A vocabulary file as Keras reads one: one token per line, in index order."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{layer}: the vocabulary file '{path}' does not exist.")
    lines = file.read_text(encoding="utf-8").split("\n")
    while lines and lines[-1] == "":
        lines.pop()
    return lines


def _is_path(value) -> bool:
    return isinstance(value, (str, Path))


class StringLookup(IndexLookup):
    """Maps string tokens to consecutive indices through a vocabulary, given (a list, or a file with one token a
    line) or learned with `adapt(data)`, as Keras 3's StringLookup.

    Indices: the mask token (if set, and only in int mode) is 0, then the OOV index, then the vocabulary in order.
    `invert=True` maps indices back to tokens. Outputs int64 indices, or one_hot, multi_hot, count (int64) or tf_idf
    (float32) vectors. Computed by an ai.onnx.ml LabelEncoder table.

    Args:
        max_tokens: Largest vocabulary size, special tokens included; adapt() keeps the most frequent tokens.
        num_oov_indices: How many indices tokens outside the vocabulary share (0 or 1).
        mask_token: The token that means padding (index 0); none: no mask token.
        oov_token: The token invert=True gives for OOV indices.
        vocabulary: The tokens, in index order (without the mask and OOV tokens), or a file's path.
        idf_weights: For tf_idf with a given vocabulary: one weight per vocabulary token.
        invert: Map indices back to tokens.
        output_mode: 'int', 'one_hot', 'multi_hot', 'count' or 'tf_idf'.
        pad_to_max_tokens: Make vector outputs max_tokens long whatever the vocabulary size.
    """

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token="[UNK]", vocabulary=None,
                 idf_weights=None, invert=False, output_mode="int", pad_to_max_tokens=False, sparse=False,
                 encoding="utf-8", salt=None, oov_method="floormod", vocabulary_size=None, **kwargs):
        kwargs.pop("vocabulary_dtype", None)  # tf.keras 2 writes it; strings are the only choice
        if num_oov_indices > 1:
            raise ConfigError(f"StringLookup: num_oov_indices={num_oov_indices} makes Keras spread unknown strings "
                              f"over the OOV indices by FarmHash of their bytes, which standard ONNX cannot compute; "
                              f"use 0 or 1.")
        if encoding not in ("utf-8", "UTF-8", "utf8"):
            raise ConfigError(f"StringLookup: encoding={encoding!r} is not supported; texts are UTF-8.")
        _choice("StringLookup", "oov_method", oov_method, ("floormod",))
        self.encoding = "utf-8"
        super().__init__(max_tokens=max_tokens, num_oov_indices=num_oov_indices, mask_token=mask_token,
                         oov_token=oov_token, vocabulary=vocabulary, idf_weights=idf_weights, invert=invert,
                         output_mode=output_mode, sparse=sparse, pad_to_max_tokens=pad_to_max_tokens, salt=salt,
                         vocabulary_size=vocabulary_size, **kwargs)

    def _token(self, value):
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)

    def _read_vocabulary(self, vocabulary):
        if _is_path(vocabulary):
            if self.output_mode == "tf_idf":
                raise ConfigError(f"StringLookup '{self.name}': output_mode='tf_idf' cannot read its vocabulary "
                                  f"from a file (as in Keras); give the tokens and idf_weights.")
            return _read_vocabulary_file(str(vocabulary), f"StringLookup '{self.name}'")
        return vocabulary

    def set_vocabulary(self, vocabulary, idf_weights=None):
        super().set_vocabulary(self._read_vocabulary(vocabulary), idf_weights)

    # -- computing ------------------------------------------------------------------------------------------------
    def call(self, inputs):
        if self._vocabulary is None and shapes_only(inputs):
            return self._placeholder(inputs)
        self._require_vocabulary()
        if self.invert:
            return self._invert(ops.cast(inputs, "int64"))
        if getattr(inputs, "dtype", STRING) != STRING:
            raise ConfigError(f"StringLookup '{self.name}' takes strings (an Input of dtype 'string'), got "
                              f"{inputs.dtype}.")
        return self.encode(self.indices(inputs))

    def indices(self, tokens):
        """The int64 index of each string token; the mask token's is past the end in vector modes, so that it
        counts nowhere."""
        start = self._token_start()
        keys = list(self._vocabulary)
        values = list(range(start, start + len(keys)))
        if self.mask_token is not None:
            keys.append(self.mask_token)
            values.append(0 if self.output_mode == "int" else self._depth())
        default = self._oov_start() if self.num_oov_indices else -1
        return ops.lookup_strings(tokens, keys, values, default)

    def _depth(self) -> int:
        return self.max_tokens if self.pad_to_max_tokens else self.vocabulary_size()

    def encode(self, indices):
        """Indices as the output mode wants them (rank-2 indices reduce their last axis in vector modes)."""
        if self.output_mode == "int":
            return indices
        if self.output_mode == "tf_idf":
            return ops.multiply(encode_categorical(indices, "count", self._depth(), "float32"), self._idf)
        return encode_categorical(indices, self.output_mode, self._depth(), "int64")

    def _placeholder(self, inputs):
        """Output of the right shape and dtype for a layer whose vocabulary comes later."""
        if self.invert:
            return ops.lookup_indices(ops.cast(inputs, "int64"), [], [], "")
        zeros = ops.lookup_strings(inputs, [], [], 0)
        if self.output_mode == "int":
            return zeros
        depth = self.max_tokens if self.pad_to_max_tokens else self._vocabulary_size_hint
        if depth is None:
            raise ConfigError(f"StringLookup '{self.name}' has no vocabulary yet, so the length of its "
                              f"{self.output_mode} output is unknown: call layer.adapt(data) before wiring it (or "
                              f"give vocabulary=..., or max_tokens with pad_to_max_tokens=True).")
        dtype = "float32" if self.output_mode == "tf_idf" else "int64"
        return encode_categorical(zeros, "count", depth, dtype)

    def _invert(self, indices):
        vocabulary = self.get_vocabulary()
        oov = self.oov_token if self.oov_token is not None else ""
        return ops.lookup_indices(indices, list(range(len(vocabulary))), vocabulary, oov)

    def get_config(self):
        config = super().get_config()
        config.update({"encoding": self.encoding, "oov_method": "floormod"})
        return config


class TextVectorization(Layer):
    """Turns raw text into token indices or token vectors, as Keras 3's TextVectorization: standardize (lowercase,
    strip punctuation), split into tokens (on whitespace), make n-grams, and look them up in a vocabulary (given,
    or learned with `adapt(data)` from arrays, lists of str or a `core.data.Dataset`).

    Int outputs are (batch, output_sequence_length), or (batch, longest row) without it, padded with 0; vector
    outputs (multi_hot, count, tf_idf) are (batch, vocabulary size). Inputs are strings of shape (batch,) or
    (batch, 1).

    Args:
        max_tokens: Largest vocabulary size (the padding and OOV tokens included).
        standardize: None, 'lower_and_strip_punctuation', 'lower', 'strip_punctuation', or a function of ops.
        split: 'whitespace' or None.
        ngrams: None, an int n (1- to n-grams), or a tuple of n-gram widths.
        output_mode: 'int', 'multi_hot', 'count' or 'tf_idf'.
        output_sequence_length: For int outputs: pad or cut each row to this length.
        pad_to_max_tokens: Make vector outputs max_tokens long whatever the vocabulary size.
        vocabulary: The tokens in index order, or a file's path (one token a line).
        idf_weights: For tf_idf with a given vocabulary: one weight per vocabulary token.
    """

    def __init__(self, max_tokens=None, standardize="lower_and_strip_punctuation", split="whitespace", ngrams=None,
                 output_mode="int", output_sequence_length=None, pad_to_max_tokens=False, vocabulary=None,
                 idf_weights=None, sparse=False, ragged=False, encoding="utf-8", vocabulary_size=None, **kwargs):
        kwargs.pop("has_input_vocabulary", None)
        super().__init__(**kwargs)
        name = f"TextVectorization '{self.name}'"
        _no_sparse(name, sparse)
        if ragged:
            raise ConfigError(f"{name}: ragged=True (a TensorFlow RaggedTensor output) is not supported; int "
                              f"outputs are padded with 0.")
        if not callable(standardize):
            _choice(name, "standardize", standardize, _STANDARDIZE)
        if split == "character":
            raise ConfigError(f"{name}: split='character' cannot be computed in standard ONNX (it has no op that "
                              f"cuts a string into its characters); use split='whitespace' or None.")
        if callable(split):
            raise ConfigError(f"{name}: a split callable is not supported (standard ONNX can split only at given "
                              f"characters); use split='whitespace' or None.")
        _choice(name, "split", split, ("whitespace", None))
        if isinstance(ngrams, list):
            ngrams = tuple(ngrams)
        if not (ngrams is None or (isinstance(ngrams, int) and not isinstance(ngrams, bool) and ngrams > 0)
                or (isinstance(ngrams, tuple) and ngrams and all(isinstance(n, int) and n > 0 for n in ngrams))):
            raise ConfigError(f"{name}: 'ngrams' must be None, a positive integer or a tuple of positive integers, "
                              f"got {ngrams!r}.")
        if ngrams is not None and split is None:
            raise ConfigError(f"{name}: ngrams need a split (without one Keras makes n-grams across the batch).")
        _choice(name, "output_mode", output_mode, ("int", "multi_hot", "count", "tf_idf"))
        if output_sequence_length is not None and (output_mode != "int" or not isinstance(output_sequence_length, int)
                                                   or output_sequence_length <= 0):
            raise ConfigError(f"{name}: 'output_sequence_length' is a positive integer and only for "
                              f"output_mode='int', got {output_sequence_length!r} with {output_mode!r}.")
        self.max_tokens = max_tokens
        self.standardize = standardize
        self.split = split
        self.ngrams = ngrams
        self._widths = tuple(range(1, ngrams + 1)) if isinstance(ngrams, int) else ngrams
        self.output_mode = output_mode
        self.output_sequence_length = output_sequence_length
        self.pad_to_max_tokens = bool(pad_to_max_tokens)
        self.encoding = "utf-8"
        self.input_vocabulary = vocabulary if _is_path(vocabulary) or vocabulary is None else list(vocabulary)
        # part of this layer (not a tracked sublayer), saved as Keras 3 saves it: under this layer and as its child
        # "_lookup_layer"
        object.__setattr__(self, "_lookup_layer", StringLookup(
            max_tokens=max_tokens, vocabulary=vocabulary, idf_weights=idf_weights, mask_token="",
            output_mode=output_mode, pad_to_max_tokens=pad_to_max_tokens, vocabulary_size=vocabulary_size,
            encoding=encoding, name=f"{self.name}_lookup"))

    # -- the vocabulary -------------------------------------------------------------------------------------------
    def get_vocabulary(self, include_special_tokens=True):
        self._require_vocabulary()
        return self._lookup_layer.get_vocabulary(include_special_tokens)

    def vocabulary_size(self) -> int:
        self._require_vocabulary()
        return self._lookup_layer.vocabulary_size()

    def set_vocabulary(self, vocabulary, idf_weights=None):
        self._lookup_layer.set_vocabulary(vocabulary, idf_weights)
        self._nw_state_version = getattr(self, "_nw_state_version", 0) + 1

    def _require_vocabulary(self):
        if self._lookup_layer._vocabulary is None:
            raise ConfigError(f"TextVectorization '{self.name}' has no vocabulary yet: call layer.adapt(data) or "
                              f"layer.set_vocabulary(tokens) first (or give vocabulary=...).")

    def adapt(self, data, batch_size=None, steps=None):
        """Learn the vocabulary from texts: an array or list of str, a `core.data.Dataset` or batches. Tokens by
        count, ties broken by the larger token; tf_idf's documents are the texts."""
        if self._lookup_layer.input_vocabulary is not None:
            raise ConfigError(f"TextVectorization '{self.name}' was given its vocabulary; it cannot adapt.")
        one_array = isinstance(data, (list, tuple, np.ndarray))
        batches = [data] if one_array else adapt_batches(data, self.name)
        if steps is not None and not one_array:
            batches = batches[:steps]
        documents = []
        for batch in batches:
            texts = np.asarray(batch, dtype=object)
            if texts.ndim == 0:
                texts = texts.reshape(1)
            tokens, counts = self._tokens(texts)
            if counts is None:  # no split: each text is one token
                documents += [[t] for t in np.asarray(tokens).reshape(-1)]
                continue
            tokens, counts = np.asarray(tokens), np.asarray(counts)
            documents += [list(row[:n]) for row, n in zip(tokens, counts)]
        self._lookup_layer.learn_vocabulary(documents)
        self._nw_state_version = getattr(self, "_nw_state_version", 0) + 1

    # -- computing ------------------------------------------------------------------------------------------------
    def _standardized(self, texts):
        if self.standardize in ("lower", "lower_and_strip_punctuation"):
            texts = ops.lower_ascii(texts)
        if self.standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
            pieces, _ = ops.split_on(texts, PUNCTUATION)
            texts = ops.join_rows(pieces)
        if callable(self.standardize):
            try:
                texts = self.standardize(texts)
            except Exception as exc:
                raise ConfigError(f"TextVectorization '{self.name}': the standardize function could not be "
                                  f"compiled to ONNX ({type(exc).__name__}: {exc}); write it with core.ops string "
                                  f"ops such as ops.lower_ascii.") from exc
        return texts

    def _tokens(self, texts):
        """The tokens of each text (batch, width) padded with "", and their counts (batch,); without a split, the
        standardized texts in their own shape (each one token, as in Keras)."""
        if self.split is None:
            flat = self._standardized(ops.reshape(texts, (-1,)))
            return ops.reshape(flat, (-1,) + tuple(texts.shape[1:])), None
        if len(texts.shape) > 1:
            if texts.shape[-1] != 1 or len(texts.shape) > 2:
                raise ConfigError(f"TextVectorization '{self.name}' takes texts of shape (batch,) or (batch, 1), "
                                  f"got {tuple(texts.shape)}.")
            texts = ops.squeeze(texts, -1)
        tokens, counts = ops.split_on(self._standardized(texts), WHITESPACE)
        if self._widths is not None:
            tokens, counts = ops.ngrams(tokens, counts, self._widths)
        return tokens, counts

    def call(self, inputs):
        if getattr(inputs, "dtype", STRING) != STRING:
            raise ConfigError(f"TextVectorization '{self.name}' takes strings (an Input of dtype 'string'), got "
                              f"{inputs.dtype}.")
        # wired before it is adapted (as Keras allows): an empty table gives outputs of the right shapes
        placeholder = self._lookup_layer._vocabulary is None and shapes_only(inputs)
        if not placeholder:
            self._require_vocabulary()
        tokens, counts = self._tokens(inputs)
        if placeholder and self.output_mode != "int":
            if not self.pad_to_max_tokens and self._lookup_layer._vocabulary_size_hint is None:
                raise ConfigError(f"TextVectorization '{self.name}' has no vocabulary yet, so the length of its "
                                  f"{self.output_mode} output is unknown: call layer.adapt(data) before wiring it (or "
                                  f"give vocabulary=..., or max_tokens with pad_to_max_tokens=True).")
            return self._lookup_layer._placeholder(tokens)
        # padding "" is the mask token: 0, or nowhere in vector modes
        indices = ops.lookup_strings(tokens, [], [], 0) if placeholder else self._lookup_layer.indices(tokens)
        if self.output_mode != "int":
            return self._lookup_layer.encode(indices)
        if self.output_sequence_length is not None and len(indices.shape) == 2:
            length = self.output_sequence_length
            # (a split may give no token column at all: the zeros come from the per-text counts then)
            column = ops.zeros_like(indices[:, :1]) if counts is None else ops.expand_dims(ops.zeros_like(counts), -1)
            padding = ops.tile(column, (1, length))
            indices = ops.concatenate([indices, padding], axis=1)[:, :length]
        return indices

    def compute_mask(self, inputs, mask=None):
        return None

    # -- files ----------------------------------------------------------------------------------------------------
    def keras3_named_variables(self) -> dict:
        return self._lookup_layer.keras3_named_variables()

    def load_assets(self, vocabulary_text: str, idf_weights=None):
        self._lookup_layer.load_assets(vocabulary_text, idf_weights)
        self._nw_state_version = getattr(self, "_nw_state_version", 0) + 1

    def get_config(self):
        if callable(self.standardize):
            raise ConfigError(f"TextVectorization '{self.name}': its standardize function cannot be written into a "
                              f"config (a Keras file would need it registered by name in both Kerases); use one of "
                              f"{[s for s in _STANDARDIZE if s]} or None to save the model.")
        config = super().get_config()
        lookup = self._lookup_layer.get_config()
        config.update({"max_tokens": self.max_tokens, "standardize": self.standardize, "split": self.split,
                       "ngrams": list(self.ngrams) if isinstance(self.ngrams, tuple) else self.ngrams,
                       "output_mode": self.output_mode, "output_sequence_length": self.output_sequence_length,
                       "pad_to_max_tokens": self.pad_to_max_tokens, "sparse": False, "ragged": False,
                       "vocabulary": lookup["vocabulary"], "idf_weights": lookup["idf_weights"],
                       "encoding": self.encoding, "vocabulary_size": lookup["vocabulary_size"]})
        return config

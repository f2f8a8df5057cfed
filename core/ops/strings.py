"""Text ops in standard ONNX, for the layers that take raw strings (StringLookup, TextVectorization).

What Keras does with TensorFlow's string kernels is rebuilt from ONNX's own string ops (StringNormalizer,
StringSplit and StringConcat of opset 20, ai.onnx.ml's LabelEncoder), so an exported model takes text in any ONNX
runtime without extensions:
- `lower_ascii`: tf.strings.lower (ASCII letters only: StringNormalizer with locale "C", which leaves other letters
  as they are, as TensorFlow does; "C.UTF-8" would lowercase them).
- `split_on`: pieces of each string between any of a set of single-byte characters, empty pieces dropped, left-aligned
  in a (batch, width) tensor padded with "" and the count of pieces per row. Splitting on each character in turn and
  dropping the empty pieces after each split gives tf.strings.split's whitespace split (runs of " \\t\\n\\r\\v\\f"
  are one separator), and the pieces between punctuation characters, joined again, give Keras's punctuation strip
  (a regex replace, which standard ONNX lacks). StringSplit without a delimiter splits on spaces only, hence this.
- `join_rows`: each row's strings concatenated (StringConcat of column pairs, halving the width at each level).
- `ngrams`: tf.strings.ngrams with separator " ": every width's n-grams of each row, in order, left-aligned.
- `lookup_strings` / `lookup_indices`: LabelEncoder tables from strings to int64 indices and back.
"""

from __future__ import annotations

import numpy as np

from core.graph import STRING
from core.ops.dispatch import graph_of, op

__all__ = ["lower_ascii", "split_on", "join_rows", "ngrams", "lookup_strings", "lookup_indices"]

_JOIN_LEVELS = 32
_BIG = np.int64(1 << 40)  # larger than any row's width, so invalid positions sort after valid ones


def _i64(g, values):
    return g.constant(np.asarray(values, dtype=np.int64))


def _flat(g, t):
    """`t` as a vector, and its shape to restore."""
    shape = g.emit("Shape", [t], {}, [("int64", (t.ndim,))])[0]
    flat = g.emit("Reshape", [t, _i64(g, [-1])], {}, [(t.dtype, (None,))])[0]
    return flat, shape


@op
def lower_ascii(x):
    """ASCII letters lowercased, other characters unchanged (tf.strings.lower without an encoding)."""
    g = graph_of(x)
    t = g.as_tensor(x)
    flat, shape = _flat(g, t)  # StringNormalizer takes [C] or [1, C]
    low = g.emit("StringNormalizer", [flat], {"case_change_action": "LOWER", "locale": "C"}, [(STRING, (None,))])[0]
    return g.emit("Reshape", [low, shape], {}, [(STRING, t.shape)])[0]


def _compact(g, pieces, valid, min_width: int):
    """The valid entries of each row of `pieces` (batch, width) moved to the front in order, the rest "";
    trimmed to the longest row (at least `min_width` columns). Returns (pieces, counts)."""
    width = g.emit("Shape", [pieces], {"start": 1, "end": 2}, [("int64", (1,))])[0]
    positions = g.emit("Range", [_i64(g, 0), g.emit("Squeeze", [width], {}, [("int64", ())])[0], _i64(g, 1)], {},
                       [("int64", (None,))])[0]
    keys = g.emit("Where", [valid, positions, g.emit("Add", [positions, _i64(g, _BIG)], {},
                                                     [("int64", (None,))])[0]], {}, [("int64", (None, None))])[0]
    _, order = g.emit("TopK", [keys, width], {"axis": 1, "largest": 0, "sorted": 1},
                      [("int64", (None, None)), ("int64", (None, None))])
    counts = g.emit("ReduceSum", [g.emit("Cast", [valid], {"to": 7}, [("int64", (None, None))])[0], _i64(g, [1])],
                    {"keepdims": 0}, [("int64", (None,))])[0]
    empty = g.constant(np.array([""], dtype=object))
    packed = g.emit("GatherElements", [pieces, order], {"axis": 1}, [(STRING, (None, None))])[0]
    in_row = g.emit("Less", [positions, g.emit("Unsqueeze", [counts, _i64(g, [1])], {}, [("int64", (None, 1))])[0]],
                    {}, [("bool", (None, None))])[0]
    packed = g.emit("Where", [in_row, packed, empty], {}, [(STRING, (None, None))])[0]
    longest = g.emit("ReduceMax", [counts], {"keepdims": 1}, [("int64", (1,))])[0]
    longest = g.emit("Max", [longest, _i64(g, [min_width])], {}, [("int64", (1,))])[0]
    packed = g.emit("Slice", [packed, _i64(g, [0]), longest, _i64(g, [1])], {}, [(STRING, (None, None))])[0]
    return packed, counts


def _non_empty(g, pieces):
    return g.emit("Not", [g.emit("Equal", [pieces, g.constant(np.array("", dtype=object))], {},
                                 [("bool", (None, None))])[0]], {}, [("bool", (None, None))])[0]


def _split_pieces(p, ch: str):
    """Every piece of `p` (rows, width) cut at `ch`, the non-empty pieces of each row left-aligned (at least one
    column: the next split reshapes rows x width pieces)."""
    g = graph_of(p)
    rows = g.emit("Shape", [p], {"start": 0, "end": 1}, [("int64", (1,))])[0]
    flat = g.emit("Reshape", [p, _i64(g, [-1])], {}, [(STRING, (None,))])[0]
    parts = g.emit("StringSplit", [flat], {"delimiter": ch}, [(STRING, (None, None)), ("int64", (None,))])[0]
    pieces = g.emit("Reshape", [parts, g.emit("Concat", [rows, _i64(g, [-1])], {"axis": 0}, [("int64", (2,))])[0]],
                    {}, [(STRING, (None, None))])[0]
    return _compact(g, pieces, _non_empty(g, pieces), 1)[0]


@op
def split_on(x, characters: str):
    """Each string of the vector `x` cut at every occurrence of any of `characters` (each one byte), empty pieces
    dropped: (pieces (batch, width) padded with "", counts (batch,)).

    A character that no string of the batch holds is skipped by an If: most texts hold a few of the 32 punctuation
    characters, and a split costs a pass over every piece.
    """
    from core.ops.rnn import if_then_else

    g = graph_of(x)
    t = g.as_tensor(x)
    if t.ndim != 1:
        raise ValueError(f"split_on takes a vector of strings, got shape {t.shape}.")
    pieces = g.emit("Unsqueeze", [t, _i64(g, [1])], {}, [(STRING, (None, 1))])[0]
    for ch in characters:
        if len(ch.encode("utf-8")) != 1:
            raise ValueError(f"split_on cuts at single-byte characters, got {ch!r}.")
        # (a string that holds `ch` is cut in two or more pieces: StringSplit's counts are the cheapest test)
        counts = g.emit("StringSplit", [t], {"delimiter": ch}, [(STRING, (None, None)), ("int64", (None,))])[1]
        anywhere = g.emit("Greater", [g.emit("ReduceMax", [counts], {"keepdims": 0}, [("int64", ())])[0],
                                      _i64(g, 1)], {}, [("bool", ())])[0]
        pieces = if_then_else(anywhere, lambda bring, p=pieces, ch=ch: [_split_pieces(bring(p), ch)],
                              lambda bring, p=pieces: [bring(p)], name="split")[0]
    # no column where no row has a piece, as a batch of empty texts gives no tokens in TensorFlow
    return _compact(g, pieces, _non_empty(g, pieces), 0)


@op
def join_rows(pieces):
    """Each row of `pieces` (batch, width) concatenated into one string: (batch,).

    Adjacent columns are joined pairwise, halving the width, _JOIN_LEVELS times (exact for rows of up to 2**32
    pieces). Not a Scan or Loop over the columns: ONNX Runtime 1.31's StringConcat appends to whatever its output
    buffer holds, and a loop hands it the previous step's buffer ("a" then "b" gave "aab").
    """
    g = graph_of(pieces)
    p = g.as_tensor(pieces)
    rows = g.emit("Shape", [p], {"start": 0, "end": 1}, [("int64", (1,))])[0]
    pad_shape = g.emit("Concat", [rows, _i64(g, [1])], {"axis": 0}, [("int64", (2,))])[0]
    pad = g.emit("Expand", [g.constant(np.array([[""]], dtype=object)), pad_shape], {}, [(STRING, (None, 1))])[0]
    big = np.iinfo(np.int64).max
    p = g.emit("Concat", [p, pad], {"axis": 1}, [(STRING, (None, None))])[0]  # at least one column
    for _ in range(_JOIN_LEVELS):
        padded = g.emit("Concat", [p, pad], {"axis": 1}, [(STRING, (None, None))])[0]
        width = g.emit("Shape", [p], {"start": 1, "end": 2}, [("int64", (1,))])[0]
        even = g.emit("Mul", [g.emit("Div", [g.emit("Add", [width, _i64(g, [1])], {}, [("int64", (1,))])[0],
                                            _i64(g, [2])], {}, [("int64", (1,))])[0], _i64(g, [2])], {},
                      [("int64", (1,))])[0]
        padded = g.emit("Slice", [padded, _i64(g, [0]), even, _i64(g, [1])], {}, [(STRING, (None, None))])[0]
        left = g.emit("Slice", [padded, _i64(g, [0]), _i64(g, [big]), _i64(g, [1]), _i64(g, [2])], {},
                      [(STRING, (None, None))])[0]
        right = g.emit("Slice", [padded, _i64(g, [1]), _i64(g, [big]), _i64(g, [1]), _i64(g, [2])], {},
                       [(STRING, (None, None))])[0]
        p = g.emit("StringConcat", [left, right], {}, [(STRING, (None, None))])[0]
    return g.emit("Squeeze", [p, _i64(g, [1])], {}, [(STRING, (None,))])[0]


@op
def ngrams(tokens, counts, widths):
    """tf.strings.ngrams(ngram_width=widths, separator=" ") of each row's first `counts` tokens, every width's
    n-grams in order of width then position: (grams (batch, width) padded with "", counts (batch,))."""
    g = graph_of(tokens)
    t = g.as_tensor(tokens)
    c = g.as_tensor(counts)
    blocks, valid = [], []
    space = g.constant(np.array(" ", dtype=object))
    width = g.emit("Shape", [t], {"start": 1, "end": 2}, [("int64", (1,))])[0]
    positions = g.emit("Range", [_i64(g, 0), g.emit("Squeeze", [width], {}, [("int64", ())])[0], _i64(g, 1)], {},
                       [("int64", (None,))])[0]
    count_column = g.emit("Unsqueeze", [c, _i64(g, [1])], {}, [("int64", (None, 1))])[0]
    for n in widths:
        n = int(n)
        gram = None
        for k in range(n):
            end = _i64(g, [k - n + 1]) if k < n - 1 else _i64(g, [np.iinfo(np.int64).max])
            part = g.emit("Slice", [t, _i64(g, [k]), end, _i64(g, [1])], {}, [(STRING, (None, None))])[0]
            if gram is None:
                gram = part
            else:
                gram = g.emit("StringConcat", [g.emit("StringConcat", [gram, space], {}, [(STRING, (None, None))])[0],
                                               part], {}, [(STRING, (None, None))])[0]
        starts = g.emit("Slice", [positions, _i64(g, [0]), _i64(g, [-(n - 1)]) if n > 1 else
                                  _i64(g, [np.iinfo(np.int64).max]), _i64(g, [0])], {}, [("int64", (None,))])[0]
        fits = g.emit("LessOrEqual", [g.emit("Add", [starts, _i64(g, n)], {}, [("int64", (None,))])[0],
                                      count_column], {}, [("bool", (None, None))])[0]
        blocks.append(gram)
        valid.append(fits)
    if len(blocks) == 1:
        grams, ok = blocks[0], valid[0]
    else:
        grams = g.emit("Concat", blocks, {"axis": 1}, [(STRING, (None, None))])[0]
        ok = g.emit("Concat", valid, {"axis": 1}, [("bool", (None, None))])[0]
    # a row too short for every width leaves no column at all: one "" column keeps the shapes whole
    rows = g.emit("Shape", [t], {"start": 0, "end": 1}, [("int64", (1,))])[0]
    pad_shape = g.emit("Concat", [rows, _i64(g, [1])], {"axis": 0}, [("int64", (2,))])[0]
    grams = g.emit("Concat", [grams, g.emit("Expand", [g.constant(np.array([[""]], dtype=object)), pad_shape], {},
                                            [(STRING, (None, 1))])[0]], {"axis": 1}, [(STRING, (None, None))])[0]
    ok = g.emit("Concat", [ok, g.emit("Expand", [g.constant(np.array([[False]])), pad_shape], {},
                                      [("bool", (None, 1))])[0]], {"axis": 1}, [("bool", (None, None))])[0]
    return _compact(g, grams, ok, 0)


@op
def lookup_strings(x, keys, values, default: int):
    """Each string's value in the table keys -> values (int64), `default` for strings not in it."""
    g = graph_of(x)
    t = g.as_tensor(x)
    keys = [str(k) for k in keys]
    if not keys:
        return g.emit("Expand", [_i64(g, default), g.emit("Shape", [t], {}, [("int64", (t.ndim,))])[0]], {},
                      [("int64", t.shape)])[0]
    return g.emit("LabelEncoder", [t], {"keys_strings": keys, "values_int64s": [int(v) for v in values],
                                        "default_int64": int(default)}, [("int64", t.shape)],
                  domain="ai.onnx.ml")[0]


@op
def lookup_indices(x, keys, values, default: str):
    """Each int64 index's string in the table keys -> values, `default` for indices not in it."""
    g = graph_of(x)
    t = g.as_tensor(x)
    if not len(keys):
        return g.emit("Expand", [g.constant(np.array(default, dtype=object)),
                                 g.emit("Shape", [t], {}, [("int64", (t.ndim,))])[0]], {}, [(STRING, t.shape)])[0]
    return g.emit("LabelEncoder", [t], {"keys_int64s": [int(k) for k in keys], "values_strings": [str(v) for v in values],
                                        "default_string": str(default)}, [(STRING, t.shape)], domain="ai.onnx.ml")[0]

"""TensorFlow's `to_hash_bucket_fast` of integers, in standard ONNX ops: FarmHash's Fingerprint64 of each value's
decimal text, modulo the number of buckets (what Keras 3's Hashing layer computes for integer inputs).

An integer's text is at most 20 bytes ("-9223372036854775808"), so only FarmHash's paths for 0 to 32 bytes are
needed; each is computed for every element and the one for the element's length is selected. Bytes are built from
the value's digits, fetched little-endian as FarmHash reads them, and mixed with unsigned 64-bit arithmetic (ONNX's
uint64 Mul and Add wrap around, as C++'s do).
"""

from __future__ import annotations

import numpy as np

from core.ops.dispatch import graph_of, op

__all__ = ["hash_bucket_of_integers"]

_K0, _K1, _K2 = 0xC3A5C85C97CB3127, 0xB492B66FBE98F273, 0x9AE16A3B2F90404F
_BYTES = 28  # the longest text (20) plus the 8 a fetch at the last offset may read past it


class _U64:
    """uint64 arithmetic on one graph, all tensors of one shape (plus broadcast constants)."""

    def __init__(self, g, shape):
        self.g, self.shape = g, shape

    def c(self, value, dtype=np.uint64):
        return self.g.constant(np.array(value, dtype=dtype))

    def node(self, op_type, inputs, attrs=None, dtype="uint64", shape=None):
        return self.g.emit(op_type, inputs, attrs or {}, [(dtype, self.shape if shape is None else shape)])[0]

    def add(self, a, b):
        return self.node("Add", [a, b])

    def mul(self, a, b):
        return self.node("Mul", [a, b])

    def xor(self, a, b):
        return self.node("BitwiseXor", [a, b])

    def shr(self, a, s):
        return self.node("BitShift", [a, self.c(s)], {"direction": "RIGHT"})

    def shl(self, a, s):
        return self.node("BitShift", [a, self.c(s)], {"direction": "LEFT"})

    def rot(self, a, s):
        return self.node("BitwiseOr", [self.shr(a, s), self.shl(a, 64 - s)])

    def shift_mix(self, a):
        return self.xor(a, self.shr(a, 47))

    def hash_len16(self, u, v, mul):
        a = self.shift_mix(self.mul(self.xor(u, v), mul))
        b = self.shift_mix(self.mul(self.xor(v, a), mul))
        return self.mul(b, mul)

    def where(self, condition, a, b):
        # ONNX Runtime has no uint64 Where: select the same bits as int64
        as_i64 = [self.node("Cast", [v], {"to": 7}, "int64") for v in (a, b)]
        return self.u64(self.node("Where", [condition] + as_i64, dtype="int64"))

    def u64(self, t):
        return self.node("Cast", [t], {"to": 13})  # TensorProto.UINT64


@op
def hash_bucket_of_integers(x, num_buckets: int):
    """`tf.strings.to_hash_bucket_fast(tf.as_string(x), num_buckets)` for an integer tensor `x` (int64 out)."""
    g = graph_of(x)
    t = g.as_tensor(x)
    if t.dtype != "int64":
        t = g.emit("Cast", [t], {"to": 7}, [("int64", t.shape)])[0]
    shape = t.shape
    h = _U64(g, shape)

    def i64(value):
        return h.c(value, np.int64)

    col = shape + (1,)

    def i64node(op_type, inputs, shape_=None, attrs=None):
        return h.node(op_type, inputs, attrs, "int64", shape if shape_ is None else shape_)

    def bool_node(op_type, inputs, shape_=None):
        return h.node(op_type, inputs, None, "bool", shape if shape_ is None else shape_)

    # the text: an optional '-' and n digits, n counted against powers of ten in int64 (no overflow)
    negative = bool_node("Less", [t, i64(0)])
    n = i64(1)
    for k in range(1, 19):
        big = bool_node("Or", [bool_node("GreaterOrEqual", [t, i64(10 ** k)]),
                               bool_node("LessOrEqual", [t, i64(-(10 ** k))])])
        n = i64node("Add", [n, h.node("Cast", [big], {"to": 7}, "int64")])
    sign = h.node("Cast", [negative], {"to": 7}, "int64")
    length = i64node("Add", [n, sign])
    # digits from the right, of the magnitude as uint64 (two's-complement negation is exact for int64's minimum)
    raw = h.u64(t)
    magnitude = h.where(negative, h.node("Sub", [h.c(0), raw]), raw)
    digits = []
    for k in range(19):
        d = h.node("Mod", [h.node("Div", [magnitude, h.c(10 ** k)]), h.c(10)], {"fmod": 0})
        digits.append(h.node("Unsqueeze", [d, i64([-1])], shape=col))
    digits = h.node("Concat", digits, {"axis": -1}, shape=shape + (19,))
    digits = h.node("Cast", [digits], {"to": 7}, "int64", shape + (19,))
    # byte p of the text: '-' at 0 when negative, then digit n-1-(p-sign), and zeros past the end
    wide = shape + (_BYTES,)
    positions = i64(np.arange(_BYTES))
    sign_col = h.node("Unsqueeze", [sign, i64([-1])], None, "int64", col)
    n_col = h.node("Unsqueeze", [n, i64([-1])], None, "int64", col)
    k = i64node("Sub", [i64node("Sub", [n_col, i64(1)], col), i64node("Sub", [positions, sign_col], wide)], wide)
    valid = bool_node("And", [bool_node("GreaterOrEqual", [k, i64(0)], wide),
                              bool_node("GreaterOrEqual", [positions, sign_col], wide)], wide)
    k = i64node("Clip", [k, i64(0), i64(18)], wide)
    digit = i64node("GatherElements", [digits, k], wide, {"axis": -1})
    text = i64node("Where", [valid, i64node("Add", [digit, i64(48)], wide), i64(0)], wide)
    dash = bool_node("And", [bool_node("Unsqueeze", [negative, i64([-1])], col),
                             bool_node("Equal", [positions, i64(0)], wide)], wide)
    text = i64node("Where", [dash, i64(45), text], wide)

    def fetch(offset, width):
        """The `width` bytes at `offset` (an int64 tensor of x's shape) as one little-endian number (uint64)."""
        offset = i64node("Max", [offset, i64(0)])
        index = i64node("Add", [h.node("Unsqueeze", [offset, i64([-1])], None, "int64", col),
                                i64(np.arange(width))], shape + (width,))
        part = i64node("GatherElements", [text, index], shape + (width,), {"axis": -1})
        # bytes are ASCII (below 128), so adding their shifted values cannot overflow int64; added one by one
        # because ReduceSum loses the low bits of such large int64 sums in ONNX Runtime
        value = i64node("Mul", [part, i64(256 ** np.arange(width, dtype=np.int64))], shape + (width,))
        total = None
        for j in range(width):
            byte = i64node("Gather", [value, i64(j)], shape, {"axis": -1})
            total = byte if total is None else i64node("Add", [total, byte])
        return h.u64(total)

    def at(offset):
        return fetch(offset, 1)

    length_u = h.u64(length)
    mul = h.add(h.c(_K2), h.mul(length_u, h.c(2)))

    def minus(amount):
        return i64node("Sub", [length, i64(amount)])

    zero = i64node("Mul", [t, i64(0)])
    # 1 to 3 bytes
    y = h.add(at(zero), h.shl(at(i64node("Div", [length, i64(2)])), 8))
    z = h.add(length_u, h.shl(at(minus(1)), 2))
    short = h.mul(h.shift_mix(h.xor(h.mul(y, h.c(_K2)), h.mul(z, h.c(_K0)))), h.c(_K2))
    # 4 to 7 bytes
    a = fetch(zero, 4)
    four = h.hash_len16(h.add(length_u, h.shl(a, 3)), fetch(minus(4), 4), mul)
    # 8 to 16 bytes
    a = h.add(fetch(zero, 8), h.c(_K2))
    b = fetch(minus(8), 8)
    c = h.add(h.mul(h.rot(b, 37), mul), a)
    d = h.mul(h.add(h.rot(a, 25), b), mul)
    eight = h.hash_len16(c, d, mul)
    # 17 to 32 bytes
    a = h.mul(fetch(zero, 8), h.c(_K1))
    b = fetch(i64node("Add", [zero, i64(8)]), 8)
    c = h.mul(fetch(minus(8), 8), mul)
    d = h.mul(fetch(minus(16), 8), h.c(_K2))
    u = h.add(h.add(h.rot(h.add(a, b), 43), h.rot(c, 30)), d)
    v = h.add(h.add(a, h.rot(h.add(b, h.c(_K2)), 18)), c)
    long = h.hash_len16(u, v, mul)

    fingerprint = h.where(bool_node("Less", [length, i64(4)]), short,
                          h.where(bool_node("Less", [length, i64(8)]), four,
                                  h.where(bool_node("Less", [length, i64(17)]), eight, long)))
    bucket = h.node("Mod", [fingerprint, h.c(int(num_buckets))], {"fmod": 0})
    return h.node("Cast", [bucket], {"to": 7}, "int64")

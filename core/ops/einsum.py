"""`einsum`: tensor contractions written as index equations (ONNX Einsum), as EinsumDense and MultiHeadAttention use.

The recorded equation is always explicit (`abc,cd->abd`): an ellipsis is spelled out with spare letters once the
operands' ranks are known, and an equation without `->` gets NumPy's implicit output (the letters used once, in
alphabetical order). That keeps the gradient rule (`core.training.gradients`, Einsum) a plain einsum per operand.
"""

from __future__ import annotations

import string

from core.errors import ShapeError
from core.ops.dispatch import graph_of, op

__all__ = ["einsum", "explicit_equation"]


def _split_terms(equation: str) -> tuple[list[str], str | None]:
    eq = equation.replace(" ", "")
    if "->" in eq:
        lhs, rhs = eq.split("->", 1)
    else:
        lhs, rhs = eq, None
    return lhs.split(","), rhs


def explicit_equation(equation: str, ranks: list[int]) -> str:
    """`equation` with its ellipses spelled out for operands of these ranks, and with an explicit output."""
    terms, rhs = _split_terms(equation)
    if len(terms) != len(ranks):
        raise ShapeError(f"einsum: the equation '{equation}' names {len(terms)} operand(s), got {len(ranks)}.")
    used = set("".join(terms) + (rhs or ""))
    spare = [c for c in string.ascii_letters if c not in used]
    widest = 0
    for term, rank in zip(terms, ranks):
        if "..." in term:
            widest = max(widest, rank - len(term.replace("...", "")))
    ellipsis = "".join(spare[:widest])
    out_terms = []
    for term, rank in zip(terms, ranks):
        if "..." in term:
            n = rank - len(term.replace("...", ""))
            if n < 0:
                raise ShapeError(f"einsum: operand '{term}' of '{equation}' has rank {rank}, fewer than its indices.")
            term = term.replace("...", ellipsis[widest - n:])
        if not term.isalpha() or len(term) != rank:
            raise ShapeError(f"einsum: operand '{term}' of '{equation}' does not fit a tensor of rank {rank}.")
        if len(set(term)) != len(term):
            raise ShapeError(f"einsum: operand '{term}' of '{equation}' repeats an index (a diagonal or trace); "
                             f"that form is not supported.")
        out_terms.append(term)
    if rhs is None:
        letters = "".join(out_terms)
        rhs = ellipsis + "".join(sorted(c for c in set(letters) if letters.count(c) == 1 and c not in ellipsis))
    else:
        rhs = rhs.replace("...", ellipsis)
    missing = [c for c in rhs if c not in "".join(out_terms)]
    if missing or len(set(rhs)) != len(rhs):
        raise ShapeError(f"einsum: the output '{rhs}' of '{equation}' has indices that no operand has or repeats one.")
    return ",".join(out_terms) + "->" + rhs


@op
def einsum(equation, *operands):
    """Keras's `ops.einsum(equation, *operands)` for two or more operands or one, without repeated indices."""
    g = graph_of(*operands)
    tensors = [g.as_tensor(x) for x in operands]
    dtype = tensors[0].dtype
    from core.ops.math import cast

    tensors = [t if t.dtype == dtype else cast(t, dtype) for t in tensors]
    eq = explicit_equation(equation, [t.ndim for t in tensors])
    terms, rhs = _split_terms(eq)
    sizes: dict[str, int | None] = {}
    for term, t in zip(terms, tensors):
        for letter, d in zip(term, t.shape):
            known = sizes.get(letter)
            if known is not None and d is not None and known != d:
                shapes = " and ".join(str(tuple(x.shape)) for x in tensors)
                raise ShapeError(f"einsum '{equation}': index '{letter}' is {known} in one operand and {d} in "
                                 f"another (operand shapes {shapes}).")
            if known is None:
                sizes[letter] = d
    out_shape = tuple(sizes[c] for c in rhs)
    return g.emit("Einsum", tensors, {"equation": eq}, [(dtype, out_shape)])[0]

"""`ops.einsum` against numpy, its shape and equation errors, and its gradient rule against float64 finite
differences (the helper of tests/core/test_gradients.py)."""

import numpy as np
import pytest

from core import ops
from core.errors import ShapeError
from core.ops.einsum import explicit_equation
from test_gradients import _check, r

EQUATIONS = [
    ("abc,cd->abd", [(2, 3, 4), (4, 5)]),  # EinsumDense on a sequence
    ("abc,cde->abde", [(2, 3, 4), (4, 2, 3)]),  # MultiHeadAttention's query/key/value projections
    ("abcd,cde->abe", [(2, 3, 2, 3), (2, 3, 4)]),  # its output projection
    ("aecd,abcd->acbe", [(2, 5, 2, 3), (2, 4, 2, 3)]),  # its dot product (key, query)
    ("acbe,aecd->abcd", [(2, 2, 4, 5), (2, 5, 2, 3)]),  # its combination (scores, value)
    ("...b,bc->...c", [(2, 3, 4), (4, 5)]),  # an ellipsis
    ("ab,bc", [(3, 4), (4, 2)]),  # implicit output
    ("abc,bd->ad", [(2, 3, 4), (3, 5)]),  # an index only the first operand has (c): summed away
    ("abc->ca", [(2, 3, 4)]),  # one operand
]


@pytest.mark.parametrize("equation,shapes", EQUATIONS, ids=[e for e, _ in EQUATIONS])
def test_einsum_matches_numpy_and_its_gradient_finite_differences(equation, shapes):
    arrays = [r(*s) for s in shapes]
    got = ops.einsum(equation, *[a.astype("float32") for a in arrays])
    np.testing.assert_allclose(np.asarray(got), np.einsum(equation, *arrays), rtol=1e-5, atol=1e-5)
    _check(lambda *xs: ops.einsum(equation, *xs), arrays)


def test_einsum_gradient_with_unknown_batch():
    _check(lambda a, b: ops.einsum("abc,cde->abde", a, b), [r(3, 2, 4), r(4, 2, 3)], dynamic=(0,))


def test_explicit_equations():
    assert explicit_equation("...b,bc->...c", [4, 2]) == "adeb,bc->adec"
    assert explicit_equation("ab,bc", [2, 2]) == "ab,bc->ac"


@pytest.mark.parametrize("equation,shapes,words", [
    ("abc,cd->abd", [(2, 3, 4), (5, 6)], "index 'c' is 4 in one operand and 5"),
    ("ab,bc->ac", [(2, 3, 4), (3, 2)], "does not fit a tensor of rank 3"),
    ("aab,bc->ac", [(2, 2, 3), (3, 2)], "repeats an index"),
    ("ab,bc->az", [(2, 3), (3, 2)], "no operand has"),
    ("ab->a", [(2, 3), (3, 2)], "names 1 operand"),
])
def test_einsum_errors_name_the_equation_and_shapes(equation, shapes, words):
    with pytest.raises(ShapeError, match=words):
        ops.einsum(equation, *[np.ones(s, "float32") for s in shapes])

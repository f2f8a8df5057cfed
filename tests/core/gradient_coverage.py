"""Which gradient rules the checks of this session verified, so that a rule without a check fails a test.

`rules_used()` records the op types whose rules a `gradients(...)` call applied (through a Scan's step too);
a check adds them to `VERIFIED` once its comparison has passed. tests/core/test_gradients.py ends with the test that
compares `VERIFIED` with every registered rule (`runs_after_modules` in tests/conftest.py runs it last, and only in a
session that runs every check).
"""

from __future__ import annotations

from contextlib import contextmanager

from core.training import autodiff

# The modules whose gradient checks feed VERIFIED.
CHECK_MODULES = ("tests/core/test_gradients.py", "tests/core/test_conv_gradients.py", "tests/core/test_einsum.py")
VERIFIED: set[str] = set()


@contextmanager
def rules_used():
    """Yields the set of op types whose gradient rules are looked up inside the block."""
    used: set[str] = set()
    lookup = autodiff.rule_for

    def recording(node):
        used.add(node.op_type)
        return lookup(node)

    autodiff.rule_for = recording
    try:
        yield used
    finally:
        autodiff.rule_for = lookup

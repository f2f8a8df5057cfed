import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]

if os.environ.get("CI"):
    # The comparisons with real Keras are the proof: in CI they must run, never skip for a missing install.
    import keras  # noqa: F401
    import tf_keras  # noqa: F401
SHARED = Path(os.environ.get("NETWEAVER_SHARED", ROOT.parent / "shared"))
FIXTURES = SHARED / "fixtures" / "keras"


@pytest.fixture
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        raise FileNotFoundError(f"Keras fixtures not found at {FIXTURES}; set NETWEAVER_SHARED.")
    return FIXTURES


@pytest.fixture(autouse=True)
def _fresh_names():
    """Each test starts with Keras's layer-name counters at zero, as after keras.backend.clear_session()."""
    from core import backend

    backend.clear_session()
    yield

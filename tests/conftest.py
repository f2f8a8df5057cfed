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


# Module paths (as in node ids) that lost tests to deselection (-k, --deselect, --lf) in this session.
_DESELECTED_FROM = pytest.StashKey[set]()


def pytest_configure(config):
    config.addinivalue_line("markers", "runs_after_modules(*paths): the test checks what the tests of those modules "
                                       "recorded, so it runs after all of them, and only in a session that runs "
                                       "every one of them (it is deselected otherwise)")
    config.stash[_DESELECTED_FROM] = set()


def pytest_deselected(items):
    for item in items:
        item.config.stash[_DESELECTED_FROM].add(item.nodeid.split("::")[0])


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    late = [item for item in items if item.get_closest_marker("runs_after_modules")]
    if not late:
        return
    present = {item.nodeid.split("::")[0] for item in items}
    partial = []
    for item in late:
        items.remove(item)
        modules = item.get_closest_marker("runs_after_modules").args
        if all(m in present and m not in config.stash[_DESELECTED_FROM] for m in modules):
            items.append(item)
        else:
            partial.append(item)
    if partial:
        config.hook.pytest_deselected(items=partial)

"""Where files are written: one check for every writer, so an unwritable path gets the same clear error."""

from __future__ import annotations

import os
from pathlib import Path

from core.errors import OutputPathError


def prepare_output(path) -> Path:
    """Make the folder of `path` and check that a file can be written there; raise OutputPathError naming it."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"Cannot write '{path}': it is a folder; give a file name.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((p for p in [path.parent, *path.parent.parents] if p.exists() and not p.is_dir()), None)
        why = f"'{blocker}' is a file, not a folder" if blocker else (exc.strerror or str(exc))
        raise OutputPathError(f"Cannot write '{path}': {why}.") from exc
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputPathError(f"Cannot write '{path}': permission denied.")
    return path

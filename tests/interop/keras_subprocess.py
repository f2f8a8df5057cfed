"""Running real Keras in subprocesses, several at once (each spends most of its time importing TensorFlow), and
reading back the arrays each wrote."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np


def run_all(runs: dict, timeout: float = 600) -> dict:
    """{key: (script, [arguments], the .npz it writes)} -> {key: {name: array}}; a failed run fails the test with its
    error output."""
    procs = {key: subprocess.Popen([sys.executable, str(script), *map(str, args)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
             for key, (script, args, _) in runs.items()}
    results = {}
    for key, proc in procs.items():
        _, stderr = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, f"{key} runner failed:\n{stderr[-3000:]}"
        with np.load(Path(runs[key][2])) as data:
            results[key] = {k: data[k] for k in data.files}
    return results

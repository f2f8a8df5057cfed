"""core/ and exporters/ stay Qt-free: checked on the source (imports) and at run time (sys.modules)."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("PySide6", "pyqtgraph", "app", "shiboken6")


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


def test_core_and_exporters_never_import_qt_in_source():
    offenders = []
    for pkg in ("core", "exporters"):
        for path in (ROOT / pkg).rglob("*.py"):
            bad = sorted(set(_imports(path)) & set(FORBIDDEN))
            if bad:
                offenders.append(f"{path.relative_to(ROOT)}: {bad}")
    assert offenders == []


def test_importing_core_and_exporters_loads_no_qt():
    code = ("import sys, core, core.layers, core.models, exporters; import pkgutil, importlib\n"
            "for pkg in (core, exporters):\n"
            "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
            "        importlib.import_module(m.name)\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6', 'app')]\n"
            "print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_command_line_front_end_loads_no_qt():
    """`python main.py summary|train|export` must run on a server without a display or Qt's libraries."""
    code = ("import sys, app.cli, app.train_command, core.training_run\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6')]\n"
            "print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr

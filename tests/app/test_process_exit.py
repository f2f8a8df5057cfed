"""The app process ends cleanly: Qt's static destructors must not call back into a finished Python interpreter."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtWidgets import QApplication
from app.main_window import MainWindow
app = QApplication(sys.argv[:1])
win = MainWindow()
node = win.editor.add_layer("Dense", (0, 0), {"units": 4})
win.editor.scene.select_nodes([node])
app.processEvents()
assert win.copy(), "nothing was copied"
print("copied")
"""


def test_copying_to_the_clipboard_then_exiting_does_not_crash(tmp_path):
    env = {**__import__("os").environ, "NETWEAVER_DATA": str(tmp_path), "QT_QPA_PLATFORM": "offscreen"}
    res = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert "copied" in res.stdout, res.stderr
    assert res.returncode == 0, f"exit code {res.returncode}: {res.stderr[-2000:]}"

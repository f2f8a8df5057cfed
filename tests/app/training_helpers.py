"""Training in a test window as a user does: open an example with some training settings, read its data, press a
button and wait for the run."""

from __future__ import annotations

from pathlib import Path

from core import commands


def open_for_training(window, qtbot, example: Path, settings: dict):
    """Open a bundled example as a new model, change its training settings, and read its data; the document."""
    assert window.open_path(str(example), wait=True, as_example=True)
    doc = window.editor.doc
    window.editor.push(commands.SetTrainingSettings(doc, dict(doc.training, **settings)))
    window.load_training_data()
    qtbot.waitUntil(lambda: not window.data_panel.busy() and window.data_panel.loaded() is not None, timeout=20000)
    return doc


def press_and_wait(window, qtbot, button: str = "train_button", timeout: int = 60000):
    """Press Train (or Continue) on the training panel and wait for the run to end; the run."""
    getattr(window.training_panel, button).click()
    assert window.training.is_running(), window.training_panel.notice.text()
    qtbot.waitUntil(lambda: not window.training.is_running(), timeout=timeout)
    qtbot.wait(20)  # the run's last reports
    return window.training.runs[-1]

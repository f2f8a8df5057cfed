import pytest


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    """A main window with its data folder (autosaves, recent files) in a temporary directory. Every MainWindow
    made during the test records problems instead of showing a modal dialog, and discards unsaved work on close."""
    monkeypatch.setenv("NETWEAVER_DATA", str(tmp_path / "data"))
    from app.main_window import MainWindow

    problems = []
    monkeypatch.setattr(MainWindow, "show_problem", lambda self, title, text: problems.append(text))
    monkeypatch.setattr(MainWindow, "ask_unsaved", lambda self: "discard")
    monkeypatch.setattr(MainWindow, "ask_recover", lambda self, names: False)
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    win.problems = problems
    yield win
    win.tasks.wait_all()

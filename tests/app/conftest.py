import pytest


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    """A main window with its data folder (autosaves, recent files) in a temporary directory."""
    monkeypatch.setenv("NETWEAVER_DATA", str(tmp_path / "data"))
    from app.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    problems = []
    win.show_problem = lambda title, text: problems.append(text)
    win.problems = problems
    win.ask_unsaved = lambda: "discard"
    yield win
    win.tasks.wait_all()

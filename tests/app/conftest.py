import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "expect_problems(count): the test means `count` problem dialogs "
                                       "(show_problem) to fire; a test ends with exactly as many as it declares, "
                                       "none when unmarked")


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch, request):
    """A main window with its data folder (autosaves, recent files) in a temporary directory. Every MainWindow
    made during the test records problems instead of showing a modal dialog, and discards unsaved work on close.
    A test fails if it ends with more or fewer problems recorded than its `expect_problems` marker declares (none
    without one): a dialog that no test expected is a failure a user would see."""
    monkeypatch.setenv("NETWEAVER_DATA", str(tmp_path / "data"))
    from app.main_window import MainWindow

    problems = []
    monkeypatch.setattr(MainWindow, "show_problem", lambda self, title, text: problems.append(text))
    monkeypatch.setattr(MainWindow, "ask_unsaved", lambda self: "discard")
    monkeypatch.setattr(MainWindow, "ask_recover", lambda self, names: False)
    # a question no test expected: recorded as a problem and answered no (a test that expects it sets its answer)
    monkeypatch.setattr(MainWindow, "ask_replace_learned",
                        lambda self, name, state: problems.append(f"asked to replace what '{name}' holds") and False)
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    win.problems = problems
    yield win
    win.tasks.wait_all()
    marker = request.node.get_closest_marker("expect_problems")
    expected = marker.args[0] if marker else 0
    assert len(problems) == expected, f"the test expected {expected} problem dialog(s) and ended with {problems}"

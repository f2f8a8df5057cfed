"""Running long operations (open, import, export) off the GUI thread.

A `Task` is a QObject moved to its own QThread; it reports through signals. PySide6 runs a slot that is a plain
function or lambda in the *emitting* thread, so the receiver must be a method of a QObject living in the GUI thread
(the main window's `_task_done` / `_task_failed`), which Qt then calls through the event loop.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QThread, Signal, Slot


class Task(QObject):
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, fn, *args):
        super().__init__()
        self.fn, self.args = fn, args

    @Slot()
    def run(self) -> None:
        try:
            result = self.fn(*self.args)
        except Exception as exc:  # reported to the user as a dialog naming the problem
            from core.errors import NetweaverError

            text = str(exc) or type(exc).__name__
            if not isinstance(exc, (NetweaverError, OSError, RuntimeError)):
                text = f"{type(exc).__name__}: {text}"  # an unexpected error: say what kind
            self.failed.emit(text)
            return
        self.finished.emit(result)


class TaskRunner(QObject):
    """Owns the threads of running tasks and ends them cleanly (no thread leaks at exit or between tests)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._running: list[tuple[QThread, Task]] = []

    def start(self, fn, args, on_done, on_failed) -> Task:
        thread = QThread()
        task = Task(fn, *args)
        task.moveToThread(thread)
        thread.started.connect(task.run)
        task.finished.connect(on_done)
        task.failed.connect(on_failed)
        task.finished.connect(thread.quit)
        task.failed.connect(thread.quit)
        thread.finished.connect(self._reap)
        self._running.append((thread, task))
        thread.start()
        return task

    @Slot()
    def _reap(self) -> None:
        still = []
        for thread, task in self._running:
            if thread.isFinished():
                thread.wait()
                task.deleteLater()
                thread.deleteLater()
            else:
                still.append((thread, task))
        self._running = still

    def busy(self) -> bool:
        return any(not t.isFinished() for t, _ in self._running)

    def wait_all(self, ms: int = 30000) -> None:
        for thread, _ in self._running:
            thread.quit()
            thread.wait(ms)
        self._reap()

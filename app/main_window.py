"""The main window."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QMainWindow


class MainWindow(QMainWindow):
    def __init__(self):
        super().__init__()
        self.setWindowTitle("Netweaver")
        label = QLabel("Netweaver: the model editor is being built.")
        self.setCentralWidget(label)

    def open_path(self, path: str) -> None:
        self.setWindowTitle(f"Netweaver - {path}")

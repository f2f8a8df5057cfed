"""The breadcrumb above the canvas while a nested model's graph is open: the model's name, then each nested model
opened inside it; a click on one goes back out to it."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from app.editor import Editor


class BreadcrumbBar(QWidget):
    def __init__(self, editor: Editor, parent=None):
        super().__init__(parent)
        self.setObjectName("breadcrumbBar")
        self.editor = editor
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(6, 2, 6, 2)
        self.buttons: list[QPushButton] = []
        editor.nestingChanged.connect(self.update_path)
        self.update_path()

    def update_path(self) -> None:
        while self._layout.count():
            widget = self._layout.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        self.buttons = []
        names = self.editor.breadcrumb()
        for depth, name in enumerate(names):
            if depth:
                self._layout.addWidget(QLabel("›"))
            button = QPushButton(name)
            button.setFlat(True)
            button.setEnabled(depth < len(names) - 1)
            button.setToolTip("Back out to this model" if depth < len(names) - 1 else "The graph shown")
            button.clicked.connect(lambda _=False, d=depth: self.editor.leave_nested(d))
            self._layout.addWidget(button)
            self.buttons.append(button)
        self._layout.addStretch(1)
        self.setVisible(len(names) > 1)  # only while a nested model is open

"""The layer palette: every registered layer, grouped and searchable; drag one onto the canvas or double-click it."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QDrag
from PySide6.QtWidgets import QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from app.canvas import LAYER_MIME
from core import layer_schema


class _LayerTree(QTreeWidget):
    def startDrag(self, actions):
        item = self.currentItem()
        if item is None or item.parent() is None:
            return
        mime = QMimeData()
        mime.setData(LAYER_MIME, item.text(0).encode("utf-8"))
        drag = QDrag(self)
        drag.setMimeData(mime)
        drag.exec(Qt.CopyAction)


class LayerPalette(QWidget):
    layerActivated = Signal(str)  # double-click or Enter: create at the view's centre

    def __init__(self, parent=None):
        super().__init__(parent)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search layers…")
        self.search.setClearButtonEnabled(True)
        self.tree = _LayerTree()
        self.tree.setHeaderHidden(True)
        self.tree.setDragEnabled(True)
        self.tree.setRootIsDecorated(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.search)
        layout.addWidget(self.tree)
        self.search.textChanged.connect(self.apply_filter)
        self.tree.itemActivated.connect(self._activated)
        self.reload()

    def reload(self) -> None:
        """Rebuild from the registry (layers that landed since start appear without GUI code)."""
        self.tree.clear()
        for group, names in layer_schema.palette().items():
            top = QTreeWidgetItem([group])
            top.setFlags(Qt.ItemIsEnabled)
            font = top.font(0)
            font.setBold(True)
            top.setFont(0, font)
            for name in names:
                child = QTreeWidgetItem([name])
                child.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable | Qt.ItemIsDragEnabled)
                child.setToolTip(0, layer_schema.schema(name).doc or name)
                top.addChild(child)
            self.tree.addTopLevelItem(top)
        self.tree.expandAll()
        self.apply_filter(self.search.text())

    def apply_filter(self, text: str) -> None:
        text = text.strip().lower()
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            shown = 0
            for j in range(top.childCount()):
                child = top.child(j)
                hit = not text or text in child.text(0).lower() or text in top.text(0).lower()
                child.setHidden(not hit)
                shown += hit
            top.setHidden(shown == 0)

    def visible_layers(self) -> list[str]:
        out = []
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            out += [top.child(j).text(0) for j in range(top.childCount()) if not top.child(j).isHidden()]
        return out

    def _activated(self, item, _column=0) -> None:
        if item.parent() is not None:
            self.layerActivated.emit(item.text(0))

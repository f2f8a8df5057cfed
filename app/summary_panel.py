"""The summary panel: Keras's `model.summary()` as a sortable table, kept current; a row selects its node."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, \
    QWidget

from core.document import Document

COLUMNS = ["Layer (type)", "Output Shape", "Param #", "Connected to"]
_ORDER = Qt.UserRole + 1  # the sort key: Keras's row order, or the parameter count


class _Item(QTableWidgetItem):
    """Sorts by a number when it has one, so '50,240' sorts after '650'."""

    def __lt__(self, other):
        a, b = self.data(_ORDER), other.data(_ORDER)
        if a is not None and b is not None:
            return a < b
        return super().__lt__(other)


class SummaryPanel(QWidget):
    nodeSelected = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setColumnWidth(0, 260)
        self.table.setColumnWidth(1, 170)
        self.table.setColumnWidth(2, 90)
        self.table.setSortingEnabled(True)
        # no sort column until the user clicks a header: rows start in Keras's order
        self.table.horizontalHeader().setSortIndicator(-1, Qt.AscendingOrder)
        self.totals = QLabel()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.table)
        layout.addWidget(self.totals)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self._updating = False

    def update_from(self, doc: Document) -> None:
        rows = doc.summary_rows()
        self._updating = True
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            cells = [f"{row.name} ({row.class_name})", row.output_shape, None, ", ".join(row.connected_to)]
            for c, text in enumerate(cells):
                item = self.table.item(r, c)
                if item is None:
                    item = _Item()
                    self.table.setItem(r, c, item)
                if c == 2:
                    item.setText("" if row.params is None else f"{row.params:,}")
                    item.setData(_ORDER, -1 if row.params is None else row.params)
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                else:
                    item.setText(text)
                    item.setData(_ORDER, r if c == 0 and self.table.horizontalHeader().sortIndicatorSection() < 0
                                 else None)
                item.setData(Qt.UserRole, row.node_id)
        self.table.setSortingEnabled(True)
        total = sum(r.params or 0 for r in rows)
        trainable = sum(r.trainable_params or 0 for r in rows)
        self.totals.setText(f"Total params: {total:,}    Trainable params: {trainable:,}    "
                            f"Non-trainable params: {total - trainable:,}")
        self._updating = False

    def row_texts(self) -> list[list[str]]:
        return [[self.table.item(r, c).text() for c in range(len(COLUMNS))] for r in range(self.table.rowCount())]

    def select_node(self, node_id: str | None) -> None:
        self._updating = True
        self.table.clearSelection()
        for r in range(self.table.rowCount()):
            if self.table.item(r, 0).data(Qt.UserRole) == node_id:
                self.table.selectRow(r)
                break
        self._updating = False

    def _selection_changed(self) -> None:
        if self._updating:
            return
        items = self.table.selectedItems()
        if items:
            self.nodeSelected.emit(items[0].data(Qt.UserRole))

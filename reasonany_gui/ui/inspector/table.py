"""Every tensor's counts in one sortable table."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLineEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

log = logging.getLogger(__name__)


COUNT_COLUMNS = ("tensor", "weights", "reasoning", "domain", "conflicts")


class TensorTable(QWidget):
    """Every merged tensor with its selected counts, filterable by name."""

    tensorActivated = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter tensors by name, e.g. layers.3. or down_proj")
        self.filter.textChanged.connect(self._apply_filter)
        self.table = QTableWidget(0, len(COUNT_COLUMNS))
        self.table.setHorizontalHeaderLabels([c.capitalize() for c in COUNT_COLUMNS])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setSortingEnabled(True)
        self.table.cellDoubleClicked.connect(lambda r, _c: self.tensorActivated.emit(self._text(r, 0)))
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.filter)
        lay.addWidget(self.table, 1)

    def set_counts(self, counts: dict[str, dict[str, Any]]) -> None:
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(counts))
        for r, (name, c) in enumerate(sorted(counts.items())):
            self.table.setItem(r, 0, QTableWidgetItem(name))
            for col, key in enumerate(("numel", "reasoning", "domain", "conflicts"), start=1):
                item = QTableWidgetItem()
                item.setData(Qt.ItemDataRole.DisplayRole, int(c.get(key, 0)))
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, col, item)
        self.table.setSortingEnabled(True)
        self._apply_filter(self.filter.text())

    def shown_counts(self) -> dict[str, dict[str, int]]:
        """The counts as displayed (tests compare them with report.json)."""
        out: dict[str, dict[str, int]] = {}
        for r in range(self.table.rowCount()):
            name = self._text(r, 0)
            out[name] = {
                key: int(self._text(r, col))
                for col, key in enumerate(("numel", "reasoning", "domain", "conflicts"), start=1)
            }
        return out

    def _apply_filter(self, text: str) -> None:
        text = text.strip().lower()
        for r in range(self.table.rowCount()):
            self.table.setRowHidden(r, bool(text) and text not in self._text(r, 0).lower())

    def _text(self, row: int, col: int) -> str:
        """A cell's text ("" for an empty cell: a row being filled)."""
        item = self.table.item(row, col)
        return item.text() if item is not None else ""

"""The search's candidates as a table beside the plot: the setting and the two kept shares, one row each."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from reasonany_gui.engine.core.units import pct

from ..texts import ESTIMATE_NOTE


def shown_pct(v: float | None) -> str:
    """A kept share in the search's words; a skill the checks could not measure says so."""
    return pct(v, missing="not measurable")


class CandidateTable(QTableWidget):
    """One row per candidate; the recommended one bold with a star, the one shown now with a dot. Double-clicking
    a row asks for that candidate (like clicking its point)."""

    candidate_chosen = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 3, parent)
        self.setHorizontalHeaderLabels(["Setting", "Reasoning kept (estimate)", "Domain kept (estimate)"])
        self.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2):
            self.horizontalHeader().setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.setToolTip(f"Double-click a row to see that merge's masks (like clicking its point). {ESTIMATE_NOTE}")
        self.setMinimumSize(300, 200)
        self.cellDoubleClicked.connect(lambda row, _col: self.candidate_chosen.emit(self.index_at(row)))

    def fill(
        self,
        points: Mapping[int, dict[str, Any]],
        recommended: int | None,
        current: int | None,
        tip: Callable[[int], str],
    ) -> None:
        """points: index -> {"label", "kept": {"reasoning", "domain"}}; rows in index order."""
        rows = sorted(points)
        self.setRowCount(len(rows))
        bold = QFont()
        bold.setBold(True)
        for r, i in enumerate(rows):
            p = points[i]
            mark = ("★ " if i == recommended else "") + ("● " if i == current else "")
            cells = [mark + p["label"], shown_pct(p["kept"].get("reasoning")), shown_pct(p["kept"].get("domain"))]
            for c, text in enumerate(cells):
                item = self.item(r, c)
                if item is None:
                    item = QTableWidgetItem()
                    self.setItem(r, c, item)
                item.setText(text)
                item.setData(Qt.ItemDataRole.UserRole, i)
                item.setToolTip(tip(i))
                item.setFont(bold if i == recommended else QFont())
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def index_at(self, row: int) -> int:
        """The candidate index of a row (-1 for an empty row)."""
        item = self.item(row, 0)
        return int(item.data(Qt.ItemDataRole.UserRole)) if item is not None else -1

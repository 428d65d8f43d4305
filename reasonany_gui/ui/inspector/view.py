"""The mask inspector: where the merge took weights from, per layer and module, down to one tensor.

Shows three layers x modules heatmaps (fraction of weights taken from the reasoning model, from the
domain model, and conflicts left to the base), a table of every tensor's counts, and for a clicked
cell the tensor's mask as a picture plus its score histogram with the threshold. It only displays a
*selection-like* object (the engine's `Selection` after a run, or `report.load_run()` for an older
output folder); it never computes masks itself.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtWidgets import (
    QGridLayout,
    QTabWidget,
    QWidget,
)

from ..widgets import AdaptiveSplitter, text_label
from .detail import TensorDetail
from .heatmaps import Heatmaps
from .selection import SelectionLike
from .table import TensorTable

log = logging.getLogger(__name__)
SIDE_BY_SIDE_FROM = 900


class MaskInspector(QWidget):
    """Heatmaps + tensor table on the left, the clicked tensor on the right."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.totals = text_label("", "summary")
        self.heatmaps = Heatmaps()
        self.table = TensorTable()
        self.detail = TensorDetail()
        tabs = QTabWidget()
        tabs.addTab(self.heatmaps, "Map by layer")
        tabs.addTab(self.table, "All tensors")
        self.tabs = tabs
        split = AdaptiveSplitter(SIDE_BY_SIDE_FROM)  # maps beside the tensor when wide, above it when narrow
        split.addWidget(tabs)
        split.addWidget(self.detail)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        self.detail.setMinimumHeight(380)
        self.split = split
        lay = QGridLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.totals, 0, 0)
        lay.addWidget(split, 1, 0)
        lay.setRowStretch(1, 1)
        self.selection: SelectionLike | None = None
        self.heatmaps.cellClicked.connect(self.open_cell)
        self.table.tensorActivated.connect(self.open_tensor)

    def set_selection(self, selection: SelectionLike | None) -> None:
        self.selection = selection
        self.detail.set_selection(selection)
        self.split.setVisible(selection is not None)
        if selection is None:
            self.totals.setText("No masks yet: run a merge or open an earlier run.")
            self.table.set_counts({})
            self.heatmaps.clear()
            return
        summary = selection.summary
        self.heatmaps.set_summary(summary)
        self.table.set_counts(dict(selection.counts))
        self.totals.setText(totals_text(getattr(summary, "totals", {}) or {}))

    def open_cell(self, layer: int, module: str) -> list[str]:
        return self.detail.show_cell(layer, module)

    def open_tensor(self, name: str) -> None:
        if self.selection is None:
            return
        self.detail.tensors.blockSignals(True)
        self.detail.tensors.clear()
        self.detail.tensors.addItem(name)
        self.detail.tensors.blockSignals(False)
        self.detail.title.setText(name)
        self.detail._show_tensor(name)


def totals_text(totals: dict[str, Any]) -> str:
    """'4.9% of the selectable weights come from the reasoning model, ...' in words."""
    n = float(totals.get("selectable") or 0)
    if n <= 0:
        return "The masks below show where each weight of the merged model comes from."
    r, d, c = (float(totals.get(k, 0)) for k in ("reasoning", "domain", "conflicts"))
    return (
        f"Of {int(n):,} mergeable weights, <b style='color:#2f6fde'>{100 * r / n:.2f}%</b> come from the "
        f"reasoning model and <b style='color:#f08c00'>{100 * d / n:.2f}%</b> from the domain model; "
        f"<b style='color:#d62839'>{100 * c / n:.2f}%</b> were wanted by both and kept from the base. "
        f"The rest is the base model."
    )

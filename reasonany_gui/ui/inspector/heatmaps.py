"""Three layers x modules heatmaps (share of weights from the reasoning model, from the domain model, and
conflicts left to the base); a click on a cell asks for its tensors.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QVBoxLayout,
    QWidget,
)

from ..widgets import text_label

log = logging.getLogger(__name__)


#: category colours of a mask picture: untouched, reasoning, domain, excluded conflict
CATEGORY_COLORS = np.array([[236, 239, 243], [47, 111, 222], [240, 140, 0], [214, 40, 57]], dtype=np.uint8)
CATEGORY_NAMES = ("untouched (base)", "reasoning", "domain", "excluded conflict")
MAPS = (
    ("reasoning", "Reasoning", "#2f6fde"),
    ("domain", "Domain", "#f08c00"),
    ("conflict", "Conflicts", "#d62839"),
)


def category_image(categories: np.ndarray) -> np.ndarray:
    """uint8 [H, W] categories (0..3) -> RGB uint8 [H, W, 3]."""
    cats = np.clip(np.asarray(categories, dtype=np.int64), 0, len(CATEGORY_COLORS) - 1)
    return CATEGORY_COLORS[cats]


class CellImage(pg.ImageItem):
    """A heatmap that reports which (row, column) was clicked or hovered."""

    cellClicked = Signal(int, int)
    cellHovered = Signal(int, int)

    def _cell(self, pos: QPointF) -> tuple[int, int] | None:
        img = self.image
        if img is None:
            return None
        col, row = int(np.floor(pos.x())), int(np.floor(pos.y()))
        if 0 <= row < img.shape[0] and 0 <= col < img.shape[1]:
            return row, col
        return None

    def mouseClickEvent(self, ev: Any) -> None:  # noqa: N802 - Qt naming
        cell = self._cell(ev.pos())
        if cell is not None and ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.cellClicked.emit(*cell)

    def hoverEvent(self, ev: Any) -> None:  # noqa: N802
        if ev.isExit():
            return
        cell = self._cell(ev.pos())
        if cell is not None:
            self.cellHovered.emit(*cell)


def _small_font() -> QFont:
    font = QFont()
    font.setPointSizeF(8.0)
    return font


def _colormap(color: str) -> pg.ColorMap:
    return pg.ColorMap(pos=[0.0, 1.0], color=[QColor("#ffffff"), QColor(color)])


HOVER_HINT = (
    "Share of each module's weights taken from each model. Point at a cell for its numbers, click to inspect it."
)
HEATMAP_MIN_HEIGHT = 90  # px per heatmap: below this the module names overlap and the cells become strips
#: why the reasoning and domain maps look even under the "each weight matrix" scope
TENSOR_SCOPE_NOTE = (
    "Ranking scope “Each weight matrix”: every matrix gives exactly its share of weights, so the "
    "reasoning and domain maps are nearly even by design (they dip only where conflicts were removed). "
    "What differs between layers is the <b>conflicts</b> map: where both experts wanted the same weights. "
    "Choose “Whole model” to see which layers each skill prefers."
)


class Heatmaps(QWidget):
    """Three heatmaps stacked (reasoning, domain, conflicts): x = layer, y = module type, with colour bars.

    Layers run along x as in the sensitivity plots, so a 28-layer model reads left to right and the
    module names stay horizontal and legible.
    """

    cellClicked = Signal(int, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("w")
        self.view.setMinimumHeight(3 * HEATMAP_MIN_HEIGHT)
        self.hover = text_label(HOVER_HINT, "muted")
        self.note = text_label("", "muted")
        self.note.setVisible(False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.note)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.hover)
        self.images: dict[str, CellImage] = {}
        self.bars: dict[str, pg.ColorBarItem] = {}
        self.data: dict[str, np.ndarray] = {}  # key -> [layers, modules]
        self.modules: tuple[str, ...] = ()
        self._plots: list[pg.PlotItem] = []
        for row, (key, title, color) in enumerate(MAPS):
            plot = self.view.addPlot(row=row, col=0)
            plot.setTitle(title, size="10pt", color=color)
            plot.invertY(True)
            plot.setDefaultPadding(0.0)
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            plot.showAxes(True, showValues=(True, False, False, True), size=20)
            plot.getAxis("left").setWidth(44)
            for side in ("left", "bottom"):
                plot.getAxis(side).setStyle(tickFont=_small_font(), tickLength=-3)
            image = CellImage(axisOrder="row-major")
            plot.addItem(image)
            bar = pg.ColorBarItem(values=(0, 1), colorMap=_colormap(color), interactive=False, width=10)
            bar.setImageItem(image, insert_in=plot)
            image.cellClicked.connect(self._clicked)
            image.cellHovered.connect(self._hovered)
            self.images[key], self.bars[key] = image, bar
            self._plots.append(plot)

    def set_scope_note(self, scope: str | None) -> None:
        self.note.setText(TENSOR_SCOPE_NOTE if scope == "tensor" else "")
        self.note.setVisible(scope == "tensor")

    def clear(self) -> None:
        """No selection: no old numbers under the pointer, no old pictures."""
        self.data = {}
        self.modules = ()
        for image in self.images.values():
            image.clear()
        self.hover.setText(HOVER_HINT)

    def set_summary(self, summary: Any) -> None:
        self.hover.setText(HOVER_HINT)  # the last hovered cell's numbers belong to the previous masks
        self.modules = tuple(summary.modules)
        grids = {
            "reasoning": np.asarray(summary.reasoning_fraction, dtype=np.float64),
            "domain": np.asarray(summary.domain_fraction, dtype=np.float64),
            "conflict": np.asarray(summary.conflict_fraction, dtype=np.float64),
        }
        for (key, _title, _c), plot in zip(MAPS, self._plots, strict=True):
            grid = np.nan_to_num(grids[key], nan=0.0)
            self.data[key] = grid
            top = float(grid.max()) if grid.size else 0.0
            top = top if top > 0 else 1.0
            self.images[key].setImage(grid.T, autoLevels=False, levels=(0.0, top))  # rows = modules
            self.bars[key].setLevels((0.0, top))
            layers = grid.shape[0]
            step = max(1, int(np.ceil(layers / 16)))
            plot.getAxis("bottom").setTicks([[(i + 0.5, str(i)) for i in range(0, layers, step)], []])
            plot.getAxis("left").setTicks([[(j + 0.5, m) for j, m in enumerate(self.modules)], []])
            plot.setRange(xRange=(0, layers), yRange=(0, len(self.modules)), padding=0)
        self._plots[-1].setLabel("bottom", "layer")

    def cell_text(self, layer: int, col: int) -> str:
        module = self.modules[col] if col < len(self.modules) else "?"
        parts = [f"{k} {100 * self.data[k][layer, col]:.2f}%" for k, _t, _c in MAPS if k in self.data]
        return f"Layer {layer} · {module}: " + ", ".join(parts)

    def _hovered(self, row: int, col: int) -> None:
        if self.data:
            self.hover.setText(self.cell_text(col, row) + "  — click to inspect")

    def _clicked(self, row: int, col: int) -> None:
        # image rows are modules, columns are layers
        if row < len(self.modules):
            self.cellClicked.emit(col, self.modules[row])

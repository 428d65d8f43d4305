"""The mask inspector: where the merge took weights from, per layer and module, down to one tensor.

Shows three layers x modules heatmaps (fraction of weights taken from the reasoning model, from the
domain model, and conflicts left to the base), a table of every tensor's counts, and for a clicked
cell the tensor's mask as a picture plus its score histogram with the threshold. It only displays a
*selection-like* object (the engine's `Selection` after a run, or `report.load_run()` for an older
output folder); it never computes masks itself.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from .widgets import AdaptiveSplitter, text_label

log = logging.getLogger(__name__)
SIDE_BY_SIDE_FROM = 900

#: category colours of a mask picture: untouched, reasoning, domain, excluded conflict
CATEGORY_COLORS = np.array([[236, 239, 243], [47, 111, 222], [240, 140, 0], [214, 40, 57]], dtype=np.uint8)
CATEGORY_NAMES = ("untouched (base)", "reasoning", "domain", "excluded conflict")
MAPS = (
    ("reasoning", "Reasoning", "#2f6fde"),
    ("domain", "Domain", "#f08c00"),
    ("conflict", "Conflicts", "#d62839"),
)


class SelectionLike(Protocol):
    names: list[str]
    modules: tuple[str, ...]
    summary: Any
    counts: dict[str, dict]

    def cell_tensors(self, layer: int, module: str) -> list[str]: ...
    def mask_categories(self, name: str, max_side: int = 256) -> np.ndarray: ...
    def score_histogram(self, name: str, which: str): ...


def category_image(categories: np.ndarray) -> np.ndarray:
    """uint8 [H, W] categories (0..3) -> RGB uint8 [H, W, 3]."""
    cats = np.clip(np.asarray(categories, dtype=np.int64), 0, len(CATEGORY_COLORS) - 1)
    return CATEGORY_COLORS[cats]


class CellImage(pg.ImageItem):
    """A heatmap that reports which (row, column) was clicked or hovered."""

    cellClicked = Signal(int, int)
    cellHovered = Signal(int, int)

    def _cell(self, pos) -> tuple[int, int] | None:
        img = self.image
        if img is None:
            return None
        col, row = int(np.floor(pos.x())), int(np.floor(pos.y()))
        if 0 <= row < img.shape[0] and 0 <= col < img.shape[1]:
            return row, col
        return None

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 - Qt naming
        cell = self._cell(ev.pos())
        if cell is not None and ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.cellClicked.emit(*cell)

    def hoverEvent(self, ev) -> None:  # noqa: N802
        if ev.isExit():
            return
        cell = self._cell(ev.pos())
        if cell is not None:
            self.cellHovered.emit(*cell)


def _small_font():
    from PySide6.QtGui import QFont

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


class TensorDetail(QWidget):
    """One tensor: its mask as a picture with a legend, and its score histograms with thresholds."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = text_label("No tensor selected", "sectionTitle")
        self.tensors = QListWidget()
        self.tensors.setMaximumHeight(64)
        self.tensors.currentTextChanged.connect(self._show_tensor)
        self.counts = text_label("", "muted")

        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("w")
        self.mask_plot = self.view.addPlot(row=0, col=0)
        self.mask_plot.setTitle("Mask (downsampled)", size="10pt", color="#1d2939")
        self.mask_plot.invertY(True)
        self.mask_plot.setAspectLocked(False)
        self.mask_plot.setMenuEnabled(False)
        self.mask_plot.hideAxis("bottom")
        self.mask_plot.hideAxis("left")
        self.mask_image = pg.ImageItem(axisOrder="row-major")
        self.mask_plot.addItem(self.mask_image)
        self.hist_plot = self.view.addPlot(row=1, col=0)
        self.hist_plot.setTitle("Importance scores", size="10pt", color="#1d2939")
        self.hist_plot.setLabel("bottom", "log10 importance")
        self.hist_plot.setLabel("left", "weights")
        self.hist_plot.setMenuEnabled(False)
        self.view.ci.layout.setRowStretchFactor(0, 3)
        self.view.ci.layout.setRowStretchFactor(1, 2)

        legend = QHBoxLayout()
        for name, rgb in zip(CATEGORY_NAMES, CATEGORY_COLORS, strict=True):
            swatch = QLabel()
            swatch.setFixedSize(14, 14)
            swatch.setStyleSheet(f"background: rgb({rgb[0]},{rgb[1]},{rgb[2]}); border: 1px solid #98a2b3;")
            legend.addWidget(swatch)
            legend.addWidget(QLabel(name))
            legend.addSpacing(8)
        legend.addStretch(1)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.title)
        lay.addWidget(self.tensors)
        lay.addWidget(self.counts)
        lay.addLayout(legend)
        lay.addWidget(self.view, 1)
        self.selection: SelectionLike | None = None
        self.current: str | None = None
        self.thresholds: dict[str, float | None] = {}

    def set_selection(self, selection: SelectionLike | None) -> None:
        self.selection = selection
        self.tensors.clear()
        self.mask_image.clear()
        self.hist_plot.clear()
        self.current = None
        self.title.setText("Click a cell of a heatmap to inspect its weights")
        self.counts.setText("")

    def show_cell(self, layer: int, module: str) -> list[str]:
        if self.selection is None:
            return []
        names = list(self.selection.cell_tensors(layer, module))
        self.title.setText(f"Layer {layer} · {module}")
        self.tensors.blockSignals(True)
        self.tensors.clear()
        self.tensors.addItems(names)
        self.tensors.blockSignals(False)
        if names:
            self.tensors.setCurrentRow(0)
            self._show_tensor(names[0])
        return names

    def _show_tensor(self, name: str) -> None:
        if not name or self.selection is None:
            return
        self.current = name
        c = self.selection.counts.get(name, {})
        numel = int(c.get("numel", 0)) or 1
        self.counts.setText(
            f"{name}: {c.get('numel', 0):,} weights — reasoning {c.get('reasoning', 0):,} "
            f"({100 * c.get('reasoning', 0) / numel:.2f}%), domain {c.get('domain', 0):,} "
            f"({100 * c.get('domain', 0) / numel:.2f}%), conflicts {c.get('conflicts', 0):,}"
        )
        cats = self.selection.mask_categories(name, max_side=256)
        self.mask_image.setImage(category_image(cats), levels=(0, 255))
        h, w = cats.shape[:2]
        # show a matrix with its real proportions; a vector (one row) is stretched to stay visible
        self.mask_plot.setAspectLocked(min(h, w) / max(h, w, 1) >= 0.05, ratio=1.0)
        self.mask_plot.setRange(xRange=(0, cats.shape[1]), yRange=(0, cats.shape[0]), padding=0.02)
        self._show_histograms(name)

    def _show_histograms(self, name: str) -> None:
        self.hist_plot.clear()
        self.thresholds = {}
        shown = False
        for which, color in (("reasoning", "#2f6fde"), ("domain", "#f08c00")):
            try:
                data = self.selection.score_histogram(name, which)
            except Exception as exc:  # noqa: BLE001 - an old run may have no cached scores
                log.debug("no histogram for %s/%s: %s", name, which, exc)
                data = None
            if not data or data[0] is None or len(data[1]) == 0:
                continue
            edges, counts, thr = data
            edges, counts = np.asarray(edges, dtype=float), np.asarray(counts, dtype=float)
            self.hist_plot.plot(
                edges,
                counts,
                stepMode="center",
                fillLevel=0,
                pen=pg.mkPen(color, width=1.5),
                brush=pg.mkBrush(QColor(color).red(), QColor(color).green(), QColor(color).blue(), 60),
            )
            self.thresholds[which] = None if thr is None else float(thr)
            if thr is not None:
                line = pg.InfiniteLine(
                    pos=float(thr), angle=90, pen=pg.mkPen(color, width=2, style=Qt.PenStyle.DashLine)
                )
                self.hist_plot.addItem(line)
            shown = True
        title = (
            (
                "Importance scores: <span style='color:#2f6fde'>reasoning</span>, "
                "<span style='color:#f08c00'>domain</span>; dashed line = threshold"
            )
            if shown
            else "Importance scores (not kept for this run)"
        )
        self.hist_plot.setTitle(title, size="9pt", color="#1d2939")


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
        self.table.cellDoubleClicked.connect(lambda r, _c: self.tensorActivated.emit(self.table.item(r, 0).text()))
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.filter)
        lay.addWidget(self.table, 1)

    def set_counts(self, counts: dict[str, dict]) -> None:
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
            name = self.table.item(r, 0).text()
            out[name] = {
                key: int(self.table.item(r, col).data(Qt.ItemDataRole.DisplayRole))
                for col, key in enumerate(("numel", "reasoning", "domain", "conflicts"), start=1)
            }
        return out

    def _apply_filter(self, text: str) -> None:
        text = text.strip().lower()
        for r in range(self.table.rowCount()):
            self.table.setRowHidden(r, bool(text) and text not in self.table.item(r, 0).text().lower())


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


def totals_text(totals: dict) -> str:
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

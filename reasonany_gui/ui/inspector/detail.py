"""One tensor: its mask as a picture and its score histogram with the threshold."""

from __future__ import annotations

import logging

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QVBoxLayout,
    QWidget,
)

from ..widgets import text_label
from .heatmaps import CATEGORY_COLORS, CATEGORY_NAMES, category_image
from .selection import SelectionLike

log = logging.getLogger(__name__)


#: the histogram's title when the scores of the masks shown are not at hand: an opened run shows the masks from its
#: folder; its scores are read (from the score cache, or measured again) when the user re-tunes it
NO_SCORES_TITLE = "Importance scores: an opened run shows its masks only; Update masks loads its scores"


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
                data = self.selection.score_histogram(name, which) if self.selection is not None else None
            except Exception as exc:  # noqa: BLE001 - an old run may have no cached scores
                log.debug("no histogram for %s/%s: %s", name, which, exc)
                data = None
            if not data or data[0] is None or not np.asarray(data[1]).any():
                continue  # no scores at hand (the engine then returns one empty bin): said in the title instead
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
            else NO_SCORES_TITLE
        )
        self.hist_plot.setTitle(title, size="9pt", color="#1d2939")

"""Live sensitivity plots (the paper's Figure 2): per layer, mean importance per module type.

One panel per scoring pass (model x data set). Why store-then-redraw: the engine may send updates
faster than a screen can show them; `on_update` only keeps the latest grid per pass, and a QTimer
redraws at ~15 Hz whatever arrived since, so the window stays responsive during identification.
"""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtGui import QPaintEvent
from PySide6.QtWidgets import QVBoxLayout, QWidget

from reasonany_gui.engine.core.events import SensitivityUpdate
from reasonany_gui.engine.scoring.plan import MAPS

REDRAW_MS = 66  # ~15 Hz at most
MAX_REDRAW_MS = 1000
#: painting may take at most this share of the GUI thread (the interval grows with the measured paint time)
PAINT_BUDGET = 0.2
LEGEND_HEADROOM = 1.0  # decades kept free above the highest line, where the legend sits
SYMBOL_MAX_LAYERS = 12  # markers on every point only while they stay few (they dominate paint time)
#: the order the four passes are laid out in (2 x 2: reasoning data on top, domain data below)
PASS_ORDER = tuple(MAPS)
MODULE_COLORS = {
    "q": "#1f5fbf",
    "k": "#3f8fdf",
    "v": "#2aa198",
    "o": "#6c71c4",
    "gate": "#d9480f",
    "up": "#e8890c",
    "down": "#b5179e",
}
ROLE_WORDS = {"base": "Base", "reasoning": "Reasoning", "domain": "Domain"}


def pass_title(update: SensitivityUpdate) -> str:
    model = ROLE_WORDS.get(update.model_role, update.model_role)
    return f"{model} model · {update.data_role} data ({update.samples_done}/{update.samples_total})"


SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def decade_label(exponent: int) -> str:
    return "1" if exponent == 0 else f"10{str(exponent).translate(SUPERSCRIPT)}"


class LogAxis(pg.AxisItem):
    """A log axis that labels only what fits: whole decades (10⁻⁵, 10⁻⁴), or 2 and 5 between them when the range
    holds fewer than two decades. pyqtgraph's default labels every minor tick, and the labels pile up."""

    def logTickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:  # noqa: N802 - pyqtgraph naming
        values = [float(v) for v in values]
        decades = [v for v in values if abs(v - round(v)) < 1e-6]
        out = []
        for v in values:
            exponent = int(np.floor(v + 1e-9))
            mantissa = 10 ** (v - exponent)
            if abs(v - round(v)) < 1e-6:
                out.append(decade_label(int(round(v))))
            elif len(decades) < 2 and any(abs(mantissa - m) < 1e-3 for m in (2.0, 5.0)):
                out.append(f"{mantissa:.0f}·{decade_label(exponent)}")
            else:
                out.append("")
        return out


class _TimedView(pg.GraphicsLayoutWidget):
    """Measures how long a paint takes, so the redraw rate can adapt to the machine."""

    def __init__(self) -> None:
        super().__init__()
        self.last_paint_s = 0.0

    def paintEvent(self, ev: QPaintEvent) -> None:  # noqa: N802 - Qt naming
        t0 = time.perf_counter()
        super().paintEvent(ev)
        self.last_paint_s = time.perf_counter() - t0


class SensitivityPlots(QWidget):
    """A 2 x 2 grid of line plots; one line per module type, x = layer, y = mean importance (log)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = _TimedView()
        self.view.setBackground("w")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.view)
        self.latest: dict[str, SensitivityUpdate] = {}
        self.updates_received = 0
        self.redraws = 0
        self._dirty: set[str] = set()
        self._plots: dict[str, pg.PlotItem] = {}
        self._curves: dict[str, dict[str, pg.PlotDataItem]] = {}
        self._ranges: dict[str, tuple[float, float] | None] = {}
        self.shared_range: tuple[float, float] | None = None  # log10 y range of every panel
        self._placeholder = self.view.addLabel(
            "The sensitivity plots appear here while importance is measured.", color="#667085", size="11pt"
        )
        self.timer = QTimer(self)
        self.timer.setInterval(REDRAW_MS)
        self.timer.timeout.connect(self.refresh)

    # ------------------------------------------------------------------ data in (GUI thread, cheap)
    def on_update(self, update: SensitivityUpdate) -> None:
        self.latest[update.pass_id] = update
        self._dirty.add(update.pass_id)
        self.updates_received += 1
        if not self.timer.isActive():
            self.timer.start()

    def prepare(self, pass_ids: list[str]) -> None:
        """Lay out the panels of the coming passes now, so the layout does not change during the run."""
        for pass_id in sorted(pass_ids, key=self._order):
            model, data = MAPS.get(pass_id, pass_id.split("@", 1) if "@" in pass_id else (pass_id, ""))
            empty = SensitivityUpdate(pass_id, model, data, 0, 0, (), np.zeros((0, 0)))
            plot = self._plot_for(empty)
            plot.setTitle(f"{ROLE_WORDS.get(model, model)} model · {data} data (waiting)", size="10pt", color="#98a2b3")
            self._set_waiting(plot, True)

    def _set_waiting(self, plot: pg.PlotItem, waiting: bool) -> None:
        """A panel without data shows its title and a line of text, not empty axes with made-up numbers."""
        for side in ("left", "bottom"):
            (plot.hideAxis if waiting else plot.showAxis)(side)
        note = getattr(plot, "_waiting_note", None)
        if waiting and note is None:
            note = pg.TextItem("Waiting for this pass to start…", color="#98a2b3", anchor=(0.5, 0.5))
            plot.addItem(note)
            note.setPos(0.5, 0.5)
            plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
            plot._waiting_note = note
        elif not waiting and note is not None:
            plot.removeItem(note)
            plot._waiting_note = None

    def clear(self) -> None:
        self.timer.stop()
        self.latest.clear()
        self._dirty.clear()
        self._plots.clear()
        self._curves.clear()
        self._ranges.clear()
        self.shared_range = None
        self.view.clear()
        self.updates_received = 0
        self._placeholder = self.view.addLabel(
            "The sensitivity plots appear here while importance is measured.", color="#667085", size="11pt"
        )

    # ------------------------------------------------------------------ drawing (timer)
    def refresh(self) -> None:
        """Redraw the passes that changed since the last call; stop the timer when nothing did."""
        if not self._dirty:
            self.timer.stop()
            return
        dirty, self._dirty = self._dirty, set()
        for pass_id in sorted(dirty, key=self._order):
            self._draw(self.latest[pass_id])
        self.redraws += 1
        # slow machine or big window: redraw less often, so painting never starves the rest of the window
        paint_ms = 1000.0 * self.view.last_paint_s
        self.timer.setInterval(int(min(MAX_REDRAW_MS, max(REDRAW_MS, paint_ms / PAINT_BUDGET))))

    def _order(self, pass_id: str) -> int:
        return PASS_ORDER.index(pass_id) if pass_id in PASS_ORDER else len(PASS_ORDER)

    def _plot_for(self, update: SensitivityUpdate) -> pg.PlotItem:
        plot = self._plots.get(update.pass_id)
        if plot is not None:
            return plot
        if self._placeholder is not None:
            self.view.clear()
            self._placeholder = None
        # place by the fixed order so the layout does not depend on arrival order
        index = self._order(update.pass_id)
        if index >= len(PASS_ORDER):
            index = len(PASS_ORDER) + len(self._plots)
        row, col = divmod(index, 2)
        plot = self.view.addPlot(row=row, col=col, axisItems={"left": LogAxis("left")})
        plot.setLogMode(x=False, y=True)
        # ranges are set by hand (see _fit_range): auto-ranging on every update re-lays out the axes
        plot.disableAutoRange()
        plot.setMouseEnabled(x=False, y=False)
        plot.setLabel("bottom", "layer")
        plot.getAxis("left").enableAutoSIPrefix(False)
        if col == 0:
            plot.setLabel("left", "mean importance")
        plot.setMenuEnabled(False)
        legend = plot.addLegend(offset=(-10, 10), labelTextSize="8pt", colCount=4)  # every panel: read each alone
        legend.setBrush(pg.mkBrush(255, 255, 255, 210))
        self._plots[update.pass_id] = plot
        self._curves[update.pass_id] = {}
        self._ranges[update.pass_id] = None
        return plot

    def _fit_range(self, pass_id: str, plot: pg.PlotItem, grid: np.ndarray) -> None:
        """One y range (log10) for every panel, grown only when data leaves it, with a margin.

        Why shared: "reasoning sits in low-sensitivity weights, domain in high" is a comparison between panels,
        which separate ranges would hide. Why grow-only: most frames then keep their axes (cheap redraws)."""
        plot.setXRange(-0.2, max(grid.shape[0] - 1, 1) + 0.2, padding=0)
        finite = grid[np.isfinite(grid) & (grid > 0)]
        if finite.size == 0:
            return
        lo, hi = float(np.log10(finite.min())), float(np.log10(finite.max()))
        current = self.shared_range
        if current is None or lo < current[0] or hi > current[1]:
            # headroom above the data for the legend (two rows of module names), so it never hides a line
            top = hi + LEGEND_HEADROOM
            current = (lo - 0.3, top) if current is None else (min(lo - 0.3, current[0]), max(top, current[1]))
            self.shared_range = current
            for other_id, other in self._plots.items():
                if getattr(other, "_waiting_note", None) is None:
                    other.setYRange(*current, padding=0)
                    self._ranges[other_id] = current
        elif self._ranges.get(pass_id) != current:
            plot.setYRange(*current, padding=0)
        self._ranges[pass_id] = current

    def _draw(self, update: SensitivityUpdate) -> None:
        plot = self._plot_for(update)
        plot.setTitle(pass_title(update), size="10pt", color="#1d2939")
        if getattr(plot, "_waiting_note", None) is not None:
            self._set_waiting(plot, False)
            self._ranges[update.pass_id] = None  # the waiting view's range is not the data's
        grid = np.asarray(update.grid, dtype=np.float64)
        if grid.ndim != 2:
            return
        layers = np.arange(grid.shape[0], dtype=np.float64)
        step = max(1, int(np.ceil(grid.shape[0] / 12)))
        plot.getAxis("bottom").setTicks([[(float(i), str(i)) for i in range(0, grid.shape[0], step)], []])
        curves = self._curves[update.pass_id]
        for j, module in enumerate(update.modules[: grid.shape[1]]):
            y = grid[:, j].copy()
            y[~(y > 0)] = np.nan  # log axis: zeros and absent modules are gaps, not -inf
            curve = curves.get(module)
            if curve is None:
                color = MODULE_COLORS.get(module, "#475467")
                markers = (
                    {"symbol": "o", "symbolSize": 5, "symbolBrush": color, "symbolPen": None}
                    if grid.shape[0] <= SYMBOL_MAX_LAYERS
                    else {}
                )
                curve = plot.plot(
                    pen=pg.mkPen(color, width=2), name=module, connect="finite", antialias=False, **markers
                )
                curves[module] = curve
            curve.setData(layers, y, connect="finite")
        self._fit_range(update.pass_id, plot, grid)

"""The search's scatter plot: one symbol per method, the Pareto front, the recommended and the current point."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QWidget,
)

from reasonany_gui.engine.methods.registry import REGISTRY

#: below this width the candidate table stands under the plot instead of beside it
SIDE_BY_SIDE_FROM = 900

#: a method the registry does not know (an older run's): grey crosses
OTHER_STYLE = ("Other", "#667085", "x")


def method_style(method: str | None) -> tuple[str, str, str]:
    """(legend title, colour, symbol) of a method's points: its registry record's plot style."""
    record = REGISTRY.get(method or "")
    return (record.title, record.colour, record.marker) if record is not None else OTHER_STYLE


#: short enough for the y axis beside a 420-pixel plot; the caption under it says what 0 % and 100 % mean
AXIS_X = "reasoning gain kept on your checks (estimate)"
AXIS_Y = "domain gain kept on your checks (estimate)"
PLACEHOLDER = "Each measured candidate appears here as a point."


class PercentAxis(pg.AxisItem):
    """Kept fractions read as percentages (0 %, 50 %, 100 %)."""

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:  # noqa: N802 - pyqtgraph naming
        return [f"{100 * v:.0f} %" for v in values]


class TuneScatter(pg.GraphicsLayoutWidget):
    """The plot: one scatter item per method (for the legend), the Pareto front, the recommended and current marks."""

    point_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground("w")
        self.plot = self.addPlot(row=0, col=0, axisItems={"bottom": PercentAxis("bottom"), "left": PercentAxis("left")})
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.setLabel("bottom", AXIS_X)
        self.plot.setLabel("left", AXIS_Y)
        for axis in ("bottom", "left"):
            self.plot.getAxis(axis).enableAutoSIPrefix(False)
        # where each expert is: 100 % on its axis (dashed); the base model sits at 0 %, 0 %
        for angle in (90, 0):
            self.plot.addItem(
                pg.InfiniteLine(pos=1.0, angle=angle, pen=pg.mkPen("#98a2b3", width=1, style=Qt.PenStyle.DashLine))
            )
        self.legend = pg.LegendItem(colCount=4, labelTextSize="8pt", labelTextColor="#344054")
        self.addItem(self.legend, row=1, col=0)
        self.front = pg.PlotDataItem(pen=pg.mkPen("#667085", width=1.5, style=Qt.PenStyle.DashLine))
        self.front.setZValue(1)
        self.plot.addItem(self.front)
        self.scatters: dict[str, pg.ScatterPlotItem] = {}
        self.recommended = pg.ScatterPlotItem(
            symbol="star", size=24, pen=pg.mkPen("#7a4b00", width=1.5), brush=pg.mkBrush("#fdb022")
        )
        self.recommended.setZValue(3)
        self.current = pg.ScatterPlotItem(
            symbol="o", size=22, pen=pg.mkPen("#1d2939", width=2.5), brush=pg.mkBrush(0, 0, 0, 0)
        )
        self.current.setZValue(4)
        for item in (self.recommended, self.current):
            self.plot.addItem(item)
            item.sigClicked.connect(self._clicked)
        self.placeholder = pg.TextItem(PLACEHOLDER, color="#98a2b3", anchor=(0.5, 0.5))
        self.plot.addItem(self.placeholder)
        self._legend_keys: list[str] = []
        self._tips: dict[int, str] = {}
        self.set_range([], [])

    def scatter_for(self, method: str) -> pg.ScatterPlotItem:
        item = self.scatters.get(method)
        if item is None:
            _title, color, symbol = method_style(method)
            item = pg.ScatterPlotItem(
                symbol=symbol,
                size=11,
                pen=pg.mkPen("#ffffff", width=1),
                brush=pg.mkBrush(color),
                hoverable=True,
                hoverSize=15,
                tip=lambda x, y, data: self._tips.get(int(data), ""),
            )
            item.setZValue(2)
            item.sigClicked.connect(self._clicked)
            self.plot.addItem(item)
            self.scatters[method] = item
        return item

    def _clicked(self, _item: object, points: Any, _ev: object = None) -> None:
        if len(points):
            self.point_clicked.emit(int(points[0].data()))

    def set_range(self, xs: list[float], ys: list[float]) -> None:
        """Always 0–100 % on both axes (base to expert), wider where a point lies outside."""
        lo_x, hi_x = min([0.0] + xs), max([1.0] + xs)
        lo_y, hi_y = min([0.0] + ys), max([1.0] + ys)
        pad_x, pad_y = 0.06 * (hi_x - lo_x), 0.06 * (hi_y - lo_y)
        self.plot.setRange(xRange=(lo_x - pad_x, hi_x + pad_x), yRange=(lo_y - pad_y, hi_y + pad_y), padding=0)
        self.placeholder.setPos((lo_x + hi_x) / 2, (lo_y + hi_y) / 2)

    def set_legend(self, methods: list[str], have_front: bool, have_best: bool, have_current: bool) -> None:
        keys = methods + ["front"] * have_front + ["best"] * have_best + ["current"] * have_current
        if keys == self._legend_keys:
            return
        self.legend.clear()
        for m in methods:
            self.legend.addItem(self.scatters[m], method_style(m)[0])
        if have_front:
            self.legend.addItem(self.front, "Pareto front")
        if have_best:
            self.legend.addItem(self.recommended, "recommended")
        if have_current:
            self.legend.addItem(self.current, "shown now")
        self._legend_keys = keys

    def draw(
        self,
        points: Mapping[int, dict[str, Any]],
        pos: Mapping[int, tuple[float, float]],
        front_indices: list[int],
        recommended: int | None,
        current: int | None,
        tips: dict[int, str],
    ) -> None:
        """Every candidate at `pos` (hollow when a share could not be measured), the front, the star and the ring.

        points: index -> {"setting", "kept"}; tips: each point's tooltip."""
        by_method: dict[str, list[dict[str, Any]]] = {}
        self._tips = tips
        for i, p in sorted(points.items()):
            x, y = pos[i]
            measurable = None not in (p["kept"].get("reasoning"), p["kept"].get("domain"))
            spot: dict[str, Any] = {"pos": (x, y), "data": i}
            if not measurable:
                _title, color, _symbol = method_style(p["setting"].get("method"))
                spot.update(brush=pg.mkBrush(255, 255, 255), pen=pg.mkPen(color, width=2))
            by_method.setdefault(p["setting"].get("method", "other"), []).append(spot)
        for method, item in self.scatters.items():
            if method not in by_method:
                item.setData([])
        for method, spots in by_method.items():
            self.scatter_for(method).setData(spots)
        front = sorted((pos[i] for i in front_indices if i in pos), key=lambda xy: (xy[0], -xy[1]))
        if len(front) > 1:
            self.front.setData([x for x, _ in front], [y for _, y in front])
        else:
            self.front.setData([], [])
        best = recommended if recommended in pos else None
        self.recommended.setData([{"pos": pos[best], "data": best}] if best is not None else [])
        cur = current if current in pos else None
        self.current.setData([{"pos": pos[cur], "data": cur}] if cur is not None else [])
        self.set_range([x for x, _ in pos.values()], [y for _, y in pos.values()])
        self.placeholder.setVisible(not points)
        methods = [m for m in REGISTRY if m in by_method] + [m for m in by_method if m not in REGISTRY]
        self.set_legend(methods, len(front) > 1, best is not None, cur is not None)

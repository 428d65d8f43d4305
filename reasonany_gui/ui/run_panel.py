"""The Run screen: stages with a progress bar each, the overall bar and ETA, the log, Cancel, the plots.

Why a timer again: events arrive in bursts from the worker; handlers only record the newest state and
a ~15 Hz QTimer paints it, so thousands of Progress events cost a few dictionary writes each.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from reasonany_gui.engine.core.events import Log, MaskSummary, Progress, SensitivityUpdate, StageFinished, StageStarted
from reasonany_gui.engine.scoring.estimate import RunClock

from .plots import SensitivityPlots
from .texts import human_range, human_seconds
from .widgets import AdaptiveSplitter

#: below this width the stage list and log stand above the plots instead of beside them
SIDE_BY_SIDE_FROM = 1000

REFRESH_MS = 66


class StageRow:
    """One line of the stage list: state mark, title, progress bar, time."""

    def __init__(self, grid: QGridLayout, row: int, title: str) -> None:
        self.mark = QLabel("○")
        self.mark.setObjectName("stageMark")
        self.title = QLabel(title)
        self.title.setMinimumWidth(120)
        self.title.setWordWrap(True)  # a long stage title wraps instead of being cut off in a narrow window
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(8)
        self.time = QLabel("")
        self.time.setObjectName("muted")
        self.time.setMinimumWidth(64)
        self.time.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        grid.addWidget(self.mark, 2 * row, 0, 2, 1)
        grid.addWidget(self.title, 2 * row, 1, 1, 2)
        grid.addWidget(self.bar, 2 * row + 1, 1)
        grid.addWidget(self.time, 2 * row + 1, 2)
        self.fraction = 0.0
        self.state = "waiting"
        self.started = time.monotonic()

    def set_state(self, state: str) -> None:
        self.state = state
        self.mark.setText({"waiting": "○", "running": "●", "done": "✓", "failed": "✕", "cancelled": "–"}[state])
        self.mark.setProperty("state", state)
        self.mark.style().unpolish(self.mark)
        self.mark.style().polish(self.mark)


class RunPanel(QWidget):
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.events_received = 0
        self.stages: dict[str, StageRow] = {}
        self._pending_logs: list[str] = []
        self._overall = 0.0
        self._eta: float | None = None
        self._message = ""
        self._dirty = False
        self._running = False
        self._stage_title = ""
        self.clock: RunClock | None = None  # stage costs of the running job, for an honest progress and ETA

        self.heading = QLabel("Ready to merge")
        self.heading.setObjectName("pageTitle")
        self.sub = QLabel("Press Merge to start. You can follow every step here and cancel at any time.")
        self.sub.setObjectName("muted")
        self.sub.setWordWrap(True)

        self.overall = QProgressBar()
        self.overall.setRange(0, 1000)
        self.overall.setFormat("%p%")
        self.eta = QLabel("")
        self.eta.setObjectName("muted")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("danger")
        self.cancel_button.setEnabled(False)
        self.cancel_button.setVisible(False)
        self.cancel_button.setToolTip("Stop the run. Nothing half-written is left behind.")
        self.cancel_button.clicked.connect(self._on_cancel)

        top = QHBoxLayout()
        top.addWidget(self.overall, 1)
        top.addWidget(self.eta)
        top.addWidget(self.cancel_button)

        stage_box = QFrame()
        stage_box.setObjectName("card")
        stage_box.setMinimumWidth(360)
        self.stage_grid = QGridLayout(stage_box)
        self.stage_grid.setColumnStretch(1, 1)
        self.stage_grid.setRowStretch(999, 1)  # rows stay at the top of the card
        self.stage_grid.setHorizontalSpacing(12)
        self.stage_grid.setVerticalSpacing(3)
        self.no_stage = QLabel("No run yet.")
        self.no_stage.setObjectName("muted")
        self.stage_grid.addWidget(self.no_stage, 0, 0, 1, 3)

        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        self.log_view.setObjectName("log")
        self.log_view.setPlaceholderText("Messages from the run appear here.")
        self.log_view.setMinimumHeight(90)

        self.plots = SensitivityPlots()
        plots_box = QWidget()
        pl = QVBoxLayout(plots_box)
        pl.setContentsMargins(0, 0, 0, 0)
        cap = QLabel(
            "Sensitivity per layer — how strongly each part of the model reacts to the data "
            "(the paper's Figure 2). Reasoning skill sits in low-sensitivity weights, domain skill in high."
        )
        cap.setObjectName("muted")
        cap.setWordWrap(True)
        pl.addWidget(cap)
        pl.addWidget(self.plots, 1)
        self.plots.setMinimumSize(360, 380)

        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(stage_box)
        left.addWidget(self.log_view)
        left.setStretchFactor(0, 3)
        left.setStretchFactor(1, 2)
        left.setChildrenCollapsible(False)

        split = AdaptiveSplitter(SIDE_BY_SIDE_FROM)  # side by side when wide, stacked (and scrolling) when narrow
        split.addWidget(left)
        split.addWidget(plots_box)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([460, 740])  # wide enough for the longest stage title on one line
        self.split = split

        lay = QVBoxLayout(self)
        lay.addWidget(self.heading)
        lay.addWidget(self.sub)
        lay.addLayout(top)
        lay.addWidget(split, 1)

        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)

    # ------------------------------------------------------------------ lifecycle
    def begin(
        self,
        title: str,
        subtitle: str = "",
        clear_plots: bool = True,
        costs: dict[str, float] | None = None,
        passes: list[str] | None = None,
    ) -> None:
        """costs: expected seconds per stage (engine.estimate.stage_costs); with them the top bar and the time
        left weigh each stage by its cost and correct themselves with what the run measures. passes: the score
        passes the run will make (engine.scoring.plan.needed_maps), laid out now so the plots never jump."""
        for row in self.stages.values():
            for w in (row.mark, row.title, row.bar, row.time):
                self.stage_grid.removeWidget(w)
                w.deleteLater()
        self.stages.clear()
        self.no_stage.setVisible(True)
        if clear_plots:
            self.plots.clear()
        if passes:
            self.plots.prepare(passes)
        self.log_view.clear()
        self._pending_logs.clear()
        self._overall, self._eta, self._message, self._stage_title = 0.0, None, "", ""
        self.events_received = 0
        self.clock = RunClock(costs) if costs else None
        self.eta.setText("")
        self.heading.setText(title)
        self.sub.setText(subtitle or "Working… the window stays usable; Cancel stops within seconds.")
        self.cancel_button.setEnabled(True)
        self.cancel_button.setVisible(True)
        self.cancel_button.setText("Cancel")
        self._running = True
        self._dirty = True
        self.timer.start()

    def finish(self, state: str, message: str) -> None:
        """state: done | failed | cancelled."""
        self._running = False
        self.refresh()
        self.timer.stop()
        for row in self.stages.values():
            if row.state == "running":
                row.set_state("done" if state == "done" else state)
        if state == "done":
            self.overall.setValue(1000)
        self.eta.setText("")  # no time left to wait for, whatever the ending
        self.heading.setText({"done": "Finished", "failed": "Stopped by an error", "cancelled": "Cancelled"}[state])
        self.sub.setText(message)
        self.cancel_button.setEnabled(False)
        self.cancel_button.setVisible(False)

    def _on_cancel(self) -> None:
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancelling…")
        self._eta, self.clock = None, None
        self.eta.setText("")
        self.sub.setText("Cancelling: the current step stops at the next sample or tensor.")
        self.cancel_requested.emit()

    # ------------------------------------------------------------------ events (GUI thread, cheap)
    def on_event(self, ev: object) -> None:
        self.events_received += 1
        if isinstance(ev, Progress):
            row = self.stages.get(ev.stage) or self._add_stage(ev.stage, ev.stage)
            row.fraction = float(ev.fraction)
            self._overall = float(ev.overall)
            self._eta = ev.eta_seconds
            self._message = ev.message
            if self.clock is not None:
                self.clock.progress(ev.stage, ev.fraction, time.monotonic())
        elif isinstance(ev, SensitivityUpdate):
            self.plots.on_update(ev)
        elif isinstance(ev, StageStarted):
            row = self.stages.get(ev.stage) or self._add_stage(ev.stage, ev.title)
            row.title.setText(ev.title)
            # numbered within this job: a re-tune or save reuses the merge's pipeline, whose count runs on
            row.title.setToolTip(f"Step {list(self.stages).index(ev.stage) + 1}: {ev.title}")
            self._stage_title = ev.title
            row.started = time.monotonic()
            if self.clock is not None:
                self.clock.start(ev.stage, row.started)
            row.set_state("running")
        elif isinstance(ev, StageFinished):
            row = self.stages.get(ev.stage) or self._add_stage(ev.stage, ev.stage)
            row.fraction = 1.0
            row.set_state("done")
            row.time.setText(human_seconds(ev.seconds))
            if self.clock is not None:
                self.clock.finish(ev.stage, ev.seconds)
        elif isinstance(ev, Log):
            prefix = "" if ev.level == "info" else f"{ev.level.upper()}: "
            self._pending_logs.append(prefix + ev.message)
        elif isinstance(ev, MaskSummary):
            pass  # the results screen takes it from the selection
        self._dirty = True

    def eta_text(self, now: float | None = None) -> str:
        """'2–4 min left' from the run clock (stages weighted by cost); the engine's own guess without one."""
        now = time.monotonic() if now is None else now
        if self.clock is not None and self.clock.current is not None:
            return f"{human_range(*self.clock.remaining_range(now))} left"
        return "" if self._eta is None else f"about {human_seconds(self._eta)} left"

    def _add_stage(self, stage: str, title: str) -> StageRow:
        self.no_stage.setVisible(False)
        row = StageRow(self.stage_grid, len(self.stages) + 1, title)
        self.stages[stage] = row
        return row

    # ------------------------------------------------------------------ painting (timer)
    def refresh(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        now = time.monotonic()
        for row in self.stages.values():
            row.bar.setValue(int(round(row.fraction * 1000)))
            if row.state == "running":
                row.time.setText(human_seconds(now - row.started))
        overall = self.clock.fraction(now) if (self.clock is not None and self._running) else self._overall
        self.overall.setValue(int(round(max(0.0, min(1.0, overall)) * 1000)))
        if self._running:
            self.eta.setText(self.eta_text(now))
            if self._message:
                self.sub.setText(f"{self._stage_title} — {self._message}" if self._stage_title else self._message)
        if self._pending_logs:
            self.log_view.appendPlainText("\n".join(self._pending_logs))
            self._pending_logs.clear()

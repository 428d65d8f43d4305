"""Results ▸ Find a good setting: the tuner's candidates as a live scatter plot, and what they mean in words.

Each point is one candidate merge the engine measured in memory (engine.tune): x is the share of the reasoning
model's gain over the base it keeps on held-out reasoning rows, y the same for the domain. The recommended
point is marked with a star, the Pareto front (no other point keeps more of both) is a dashed line, and the
setting shown in the masks now has a ring. Clicking a point (or double-clicking its row) asks the window to
re-tune to that setting from the cached scores.

Why store-then-redraw again: candidates arrive from the worker as small `TuneCandidate` events; `on_event` only
stores them and a QTimer redraws, so the worker never waits on painting and never touches a widget.
"""

from __future__ import annotations

import math
import re
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from reasonany_gui.engine.core.events import Progress, TuneCandidate
from reasonany_gui.engine.measure.verdicts import KEPT_FROM

from ..texts import ESTIMATE_NOTE, MEASURES_DIFFER_NOTE, OVER_100_NOTE, setting_words
from ..widgets import AdaptiveSplitter, Banner
from .candidate_table import CandidateTable, shown_pct
from .options import TuneOptions
from .scatter import TuneScatter

REDRAW_MS = 66
#: below this width the candidate table stands under the plot instead of beside it
SIDE_BY_SIDE_FROM = 900
INTRO = (
    "Measures many merges in memory, without writing anything: ReasonAny at several shares and strengths, "
    "and Task Arithmetic, TIES and DARE, each on held-out rows of your calibration data that the importance "
    "scores never saw. The recommended one keeps the most of the skill it keeps least of. Click a point to "
    "see that merge's masks, then “Save this version…”. " + ESTIMATE_NOTE
)
IDLE_TEXT = "No search yet. Press “Find a good setting”."
CAPTION = (
    "Top right is best. 100 % (dashed lines) = as good as the expert on its own held-out rows; 0 % = no better "
    "than the base model. A hollow symbol: that skill could not be measured (drawn at 0 %)."
)


def in_app_terms(text: str, candidates: list[dict[str, Any]]) -> str:
    """The engine's words with each candidate's label ('ReasonAny p 0.2/0.2, λ 2.24/2.24, tensor scope') put in
    the app's terms (texts.setting_words: shares, strengths)."""
    for c in sorted(candidates, key=lambda c: -len(str(c.get("label", "")))):
        if c.get("label"):
            text = text.replace(str(c["label"]), setting_words(c["setting"]))
    return text


def over_100(kept: dict[str, Any]) -> bool:
    """Whether a kept share is over 100 % (explained in words where shown: texts.OVER_100_NOTE)."""
    return any(isinstance(v, (int, float)) and v > 1.0 for v in kept.values())


def split_summary(summary: str) -> tuple[str, list[str]]:
    """The engine's summary without its 'Warning: …' sentences, and those sentences (shown as warnings)."""
    parts = re.split(r"\s*(?=Warning:)", summary or "")
    text = parts[0].strip()
    return text, [p.strip() for p in parts[1:] if p.strip()]


class TuneView(QWidget):
    """The tab: options, the button, the live plot, the candidate table, and the result in words."""

    tune_requested = Signal(dict)  # the options: {"budget", "checks"}
    cancel_requested = Signal()
    setting_requested = Signal(dict)  # a candidate's setting: re-tune to it

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.available = False  # a merge or an opened run to search from
        self._busy = False
        self._message = ""
        self._fraction = 0.0
        intro = QLabel(INTRO)
        intro.setObjectName("muted")
        intro.setWordWrap(True)
        self.options = TuneOptions()
        self.find_button = QPushButton("Find a good setting")
        self.find_button.setObjectName("primary")
        self.find_button.setToolTip(
            "Search for the setting that keeps the most of both skills, as estimated on held-out rows and your "
            "checks file. Nothing is written until you save."
        )
        self.find_button.clicked.connect(lambda: self.tune_requested.emit(self.options.values()))
        self.find_button.setEnabled(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("danger")
        self.cancel_button.setToolTip("Stop the search. The masks shown stay as they were.")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self._cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(8)
        self.progress.setVisible(False)
        self.status = QLabel(IDLE_TEXT)
        self.status.setObjectName("muted")
        self.status.setWordWrap(True)

        self.scatter = TuneScatter()
        self.scatter.setMinimumSize(360, 420)  # the y label (the axis's words) must fit beside the plot
        self.scatter.point_clicked.connect(self._choose)
        self.table = CandidateTable()
        self.table.candidate_chosen.connect(self._choose)
        split = AdaptiveSplitter(SIDE_BY_SIDE_FROM)
        split.addWidget(self.scatter)
        split.addWidget(self.table)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([600, 400])
        self.split = split

        caption = QLabel(CAPTION)
        caption.setObjectName("muted")
        caption.setWordWrap(True)
        self.summary = Banner("", "info")
        self.shown_now = QLabel("")
        self.shown_now.setWordWrap(True)
        self.shown_now.setVisible(False)
        self.warnings_box = QVBoxLayout()
        self.warnings_box.setSpacing(4)
        self.warning_banners: list[Banner] = []

        head = QHBoxLayout()
        head.addWidget(self.options, 1)
        buttons = QVBoxLayout()
        buttons.addWidget(self.find_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        head.addLayout(buttons)
        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addLayout(head)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addWidget(split, 1)
        lay.addWidget(caption)
        lay.addWidget(self.summary)
        lay.addLayout(self.warnings_box)
        lay.addWidget(self.shown_now)

        #: index -> {"label", "setting", "kept": {"reasoning", "domain"}}
        self.points: dict[int, dict[str, Any]] = {}
        self.recommended: int | None = None
        self.pareto: list[int] | None = None  # from the result; None while the search runs (computed live)
        self.current: int | None = None
        self.current_setting: dict[str, Any] | None = None
        self.budget = 0
        self.running = False
        self.redraws = 0
        self.result: dict[str, Any] | None = None
        self._dirty = False
        self.timer = QTimer(self)
        self.timer.setInterval(REDRAW_MS)
        self.timer.timeout.connect(self.refresh)

    # ------------------------------------------------------------------ state from the window
    def set_available(self, available: bool) -> None:
        self.available = available
        self.find_button.setEnabled(available and not self._busy)

    def set_busy(self, busy: bool, searching: bool = False) -> None:
        """Another job (or this search) runs: no second search; only this search shows its Cancel."""
        self._busy = busy
        self.find_button.setEnabled(self.available and not busy)
        self.cancel_button.setVisible(busy and searching)
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel")

    def begin(self, budget: int) -> None:
        """A search starts: the old points go (they measured another setting or trio)."""
        self.clear(IDLE_TEXT)
        self.running = True
        self.budget = budget
        self._message, self._fraction = "", 0.0
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.status.setText(
            f"Measuring the base model and both experts on the held-out rows, then {budget} candidates…"
        )

    def finish(self, state: str, message: str = "") -> None:
        """state: done | cancelled | failed (a result comes separately through set_result)."""
        self.running = False
        self.progress.setVisible(False)
        self.refresh()
        n = len(self.points)
        if state == "cancelled":
            self.status.setText(
                f"The search was cancelled after {n} candidate{'s' * (n != 1)}. "
                + ("The points measured so far stay: click one to use it. " if n else "")
                + "The masks shown did not change."
            )
        elif state == "failed":
            self.status.setText(
                "The search stopped with an error"
                + (f": {message}" if message else ".")
                + " The masks shown did not change."
            )

    def clear(self, text: str = IDLE_TEXT) -> None:
        self.points.clear()
        self.recommended, self.pareto, self.current, self.result = None, None, None, None
        self.running = False
        self.progress.setVisible(False)
        self.status.setText(text)
        self.summary.set_message("", "info")
        self._set_warnings([])
        self.shown_now.setVisible(False)
        self._dirty = True
        self.refresh()

    def set_result(self, section: dict[str, Any] | None) -> None:
        """The tuner's result as the report keeps it (TuneResult.report_section()); None: no search to show."""
        if not section or not section.get("candidates"):
            self.clear(IDLE_TEXT)
            return
        self.running = False
        self.progress.setVisible(False)
        self.result = section
        self.points = {
            int(c["index"]): {
                "label": setting_words(c["setting"]),
                "setting": dict(c["setting"]),
                "kept": dict(c.get("kept") or {}),
            }
            for c in section["candidates"]
        }
        self.recommended = int(section["recommended"])
        self.pareto = [int(i) for i in section.get("pareto") or []]
        text, extra = split_summary(in_app_terms(section.get("summary", ""), section["candidates"]))
        n = len(self.points)
        self.status.setText(
            f"{n} candidate merge{'s' * (n != 1)} measured on "
            + " and ".join(
                f"{v.get('rows', '?')} held-out {k} rows" for k, v in (section.get("check_rows") or {}).items()
            )
            + ". Click a point to see that merge's masks. "
            + MEASURES_DIFFER_NOTE
            + (" " + OVER_100_NOTE if any(over_100(p["kept"]) for p in self.points.values()) else "")
        )
        best = self.points.get(self.recommended)
        worst = min([v for v in (best or {}).get("kept", {}).values() if v is not None] or [math.nan])
        self.summary.set_message(text, "ok" if worst >= KEPT_FROM else "info" if worst >= 0.5 else "warn")
        self._set_warnings(list(section.get("warnings") or []) + extra)
        if self.current_setting is not None:
            self.mark_current(self.current_setting)
        self._dirty = True
        self.refresh()

    def mark_current(self, setting: dict[str, Any] | None) -> None:
        """Ring the candidate whose setting the masks show now (none when it was set by hand)."""
        self.current_setting = dict(setting) if setting else None
        self.current = None
        if setting:
            for i, p in self.points.items():
                if all(p["setting"].get(k) == setting.get(k) for k in p["setting"]):
                    self.current = i
                    break
        if self.current is not None:
            p = self.points[self.current]
            which = "the recommended setting" if self.current == self.recommended else "not the recommended one"
            self.shown_now.setText(
                f"<b>Shown now:</b> {p['label']} ({which}): keeps {shown_pct(p['kept'].get('reasoning'))}"
                f" of the reasoning gain and {shown_pct(p['kept'].get('domain'))} of the domain gain."
            )
            self.shown_now.setVisible(True)
        else:
            self.shown_now.setVisible(False)
        self._dirty = True
        if not self.timer.isActive():
            self.timer.start()

    def _set_warnings(self, lines: list[str]) -> None:
        for banner in self.warning_banners:
            self.warnings_box.removeWidget(banner)
            banner.deleteLater()
        self.warning_banners = []
        for line in dict.fromkeys(lines):
            text = line if line.startswith("Warning") else f"Warning: {line}"
            banner = Banner("⚠ " + text, "warn")
            self.warnings_box.addWidget(banner)
            self.warning_banners.append(banner)

    def warning_texts(self) -> list[str]:
        return [b.text() for b in self.warning_banners]

    # ------------------------------------------------------------------ events (GUI thread, cheap)
    def on_event(self, ev: object) -> None:
        if isinstance(ev, TuneCandidate):
            self.points[int(ev.index)] = {
                "label": setting_words(ev.setting),
                "setting": dict(ev.setting),
                "kept": {"reasoning": ev.kept_reasoning, "domain": ev.kept_domain},
            }
            self.recommended = int(ev.recommended)
            self.budget = int(ev.budget)
            self.pareto = None
            self.running = True
        elif isinstance(ev, Progress) and ev.stage == "tune":
            self._message = ev.message
            self._fraction = float(ev.fraction)
        else:
            return
        self._dirty = True
        if not self.timer.isActive():
            self.timer.start()

    # ------------------------------------------------------------------ drawing (timer)
    def refresh(self) -> None:
        if not self._dirty:
            self.timer.stop()
            return
        self._dirty = False
        self.redraws += 1
        if self.running:
            self._live_words()
        self._draw()

    def _live_words(self) -> None:
        fraction = self._fraction
        self.progress.setVisible(True)
        self.progress.setValue(int(1000 * max(0.0, min(1.0, fraction))))
        best = self.points.get(self.recommended) if self.recommended is not None else None
        text = (
            f"{len(self.points)} of up to {self.budget} candidates measured."
            if self.points
            else "Measuring the base model and both experts on the held-out rows…"
        )
        message = self._message
        if message and self.points:
            text = f"{text} Last: {message.split(': ', 1)[-1]}."
        if best is not None:
            text += (
                f" Best so far: {best['label']} (keeps {shown_pct(best['kept'].get('reasoning'))} and "
                f"{shown_pct(best['kept'].get('domain'))})."
            )
        self.status.setText(text)

    def positions(self) -> dict[int, tuple[float, float]]:
        """Where each candidate is drawn: a kept fraction the checks could not measure (the expert showed no gain
        over the base) is drawn at 0 % on that axis, with a hollow symbol and a tooltip that says so."""
        return {i: (p["kept"].get("reasoning") or 0.0, p["kept"].get("domain") or 0.0) for i, p in self.points.items()}

    def front(self) -> list[int]:
        """The Pareto front: the result's, or during the search the engine's rule on the points so far."""
        if self.pareto is not None:
            return list(self.pareto)
        from reasonany_gui.engine.measure.tune import Candidate, pareto

        return pareto([Candidate(i, p["setting"], kept=dict(p["kept"])) for i, p in self.points.items()])

    def _draw(self) -> None:
        self.table.fill(self.points, self.recommended, self.current, self._tip)
        self.scatter.draw(
            self.points,
            self.positions(),
            self.front(),
            self.recommended,
            self.current,
            {i: self._tip(i) for i in self.points},
        )

    def _tip(self, i: int) -> str:
        p = self.points[i]
        marks = [" (recommended)" if i == self.recommended else "", " (shown now)" if i == self.current else ""]
        return (
            f"{p['label']}{''.join(marks)}\nreasoning kept (estimate): {shown_pct(p['kept'].get('reasoning'))}\n"
            f"domain kept (estimate): {shown_pct(p['kept'].get('domain'))}\nClick to see this merge's masks, "
            "then check it with Evaluate."
        )

    # ------------------------------------------------------------------ user actions
    def _choose(self, index: int) -> None:
        p = self.points.get(index)
        if p is not None:
            self.setting_requested.emit(dict(p["setting"]))

    def _cancel(self) -> None:
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancelling…")
        self.status.setText("Cancelling: the search stops within the current candidate.")
        self.cancel_requested.emit()

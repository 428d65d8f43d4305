"""Step 6: the result. Where the model is, the mask inspector, re-tuning, evaluation, the report.

Re-tuning (shares, strengths, scope) re-selects from the importance scores already measured: the worker
calls `Pipeline.select(new_config)`, which runs no new backward pass, so it takes seconds; "Save this
version" then writes it to a new folder.
"""

from __future__ import annotations

import math
from html import escape as html_escape
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from reasonany_gui.engine.core.paths import run_files
from reasonany_gui.engine.methods.registry import REGISTRY, TITLES
from reasonany_gui.engine.settings.config import MergeConfig

from .inspector import MaskInspector
from .jobs import ASK_ROLES
from .setting_widgets import setting_value, setting_widget, show_setting
from .texts import FOLLOW_HELP, FOLLOW_LABEL, LABELS, TOOLTIPS, human_bytes, human_seconds
from .tune_view import TuneView
from .widgets import Banner, Card, StrengthLink, strengths_follow_shares

#: the settings on the Re-tune card (config.Setting.retune_card): applied to the measured scores in seconds
RETUNE_FIELDS = MergeConfig.fields_where(retune_card=True)
#: where each sits in the card's grid (row, column): method and scope, then shares above strengths
PLACES = {
    "method": (0, 0),
    "scope": (0, 2),
    "reasoning_ratio": (1, 0),
    "domain_ratio": (1, 2),
    "reasoning_scale": (2, 0),
    "domain_scale": (2, 2),
}


class RetuneCard(Card):
    """Method, shares, strengths and scope, applied to the cached scores with one click (compact rows).

    The method is here because "Find a good setting" may recommend Task Arithmetic, TIES or DARE: the card must
    show what the masks and a saved version use, and let the user go back to ReasonAny."""

    retune_requested = Signal(dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("", parent)
        self.boxes: dict[str, QWidget] = {}
        title = QLabel("Re-tune")
        title.setObjectName("sectionTitle")
        title.setToolTip("Uses the importance scores already measured: takes seconds, not a new run.")
        hint = QLabel("Uses the importance scores already measured: seconds, not a new run.")
        hint.setObjectName("muted")
        hint.setWordWrap(True)
        head = QHBoxLayout()
        head.addWidget(title)
        head.addWidget(hint, 1)
        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(4)
        extra_rows = iter(range(3, 3 + len(RETUNE_FIELDS)))
        for name in RETUNE_FIELDS:
            box = setting_widget(name)
            label = QLabel(LABELS[name])
            label.setToolTip(TOOLTIPS[name])
            row, col = PLACES.get(name) or (next(extra_rows), 0)  # a new card setting gets a row of its own
            grid.addWidget(label, row, col)
            grid.addWidget(box, row, col + 1)
            self.boxes[name] = box
        for col in (1, 3):
            grid.setColumnStretch(col, 1)
        self.follow = QCheckBox(FOLLOW_LABEL)
        self.follow.setToolTip(FOLLOW_HELP)
        grid.addWidget(self.follow, grid.rowCount(), 0, 1, 4)
        self.link = StrengthLink(
            self.follow,
            [
                (self.boxes["reasoning_ratio"], self.boxes["reasoning_scale"]),
                (self.boxes["domain_ratio"], self.boxes["domain_scale"]),
            ],
            self,
        )
        self.apply_button = QPushButton("Update masks")
        self.apply_button.setObjectName("primary")
        self.apply_button.setToolTip(
            "Re-select the weights with these values from the scores already measured (seconds, no new measurement)."
        )
        self.apply_button.clicked.connect(lambda: self.retune_requested.emit(self.values()))
        head.addWidget(self.apply_button)
        self.body.addLayout(head)
        self.body.addLayout(grid)

    def load(self, config) -> None:
        self.follow.setChecked(False)
        for name, box in self.boxes.items():
            show_setting(name, box, getattr(config, name))
        self.follow.setChecked(strengths_follow_shares(self.values()))

    def values(self) -> dict:
        return {name: setting_value(name, box) for name, box in self.boxes.items()}


EVALUATE_TIP = "Compare the merged model with the three inputs (perplexity and sample answers)."
EVALUATE_UNSAVED = "Save this version first: Evaluate checks a saved model."
RETUNED_EVAL_NOTE = (
    "The masks were re-tuned and are not saved yet, so there is nothing to evaluate for them. "
    "Press “Save this version…”, then Evaluate."
)
EMPTY_TEXT = (
    "No results yet.\n\nPress Merge to create a merged model, or open an earlier output folder with “Open run…”."
)
EVAL_HINT = (
    "Press Evaluate to compare the merged model with the three inputs: perplexity on held-out samples "
    "of both data sets, and answers to a few prompts."
)


VERDICT_COLORS = {"kept": ("ok", "✓"), "partly": ("warn", "≈"), "lost": ("error", "✗"), "unclear": ("info", "?")}


def skill_verdict(ppl: dict, data: str, expert: str) -> tuple[str, str]:
    """(kept | partly | lost | unclear, words) for one skill, from the perplexities on that skill's data.

    A plain comparison, no new numbers: the merge kept the skill when its perplexity on the skill's text is
    about as low as the expert's (within 10 %); partly when it is at least better than the base's."""
    row = ppl.get(data) or {}
    m, e, b = (row.get(k) for k in ("merged", expert, "base"))
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (m, e, b)):
        return "unclear", "not measured"
    if e >= b:
        return "unclear", f"the {expert} model is no better than the base on this text ({e:.2f} vs {b:.2f})"
    if m <= e * 1.10:
        return "kept", f"as good as the {expert} model ({m:.2f} vs {e:.2f}; base {b:.2f})"
    if m < b:
        return "partly", f"between the base and the {expert} model ({m:.2f}; {expert} {e:.2f}, base {b:.2f})"
    return "lost", f"no better than the base ({m:.2f}; base {b:.2f}, {expert} {e:.2f})"


def kept_verdict(fraction: float, skill: str) -> tuple[str, str]:
    """The engine's kept fraction (share of the expert's gain over the base that the merge keeps) in words."""
    verdict = "kept" if fraction >= 0.8 else "partly" if fraction >= 0.3 else "lost"
    if fraction < 0:  # worse than the base: "keeps −16 %" reads like a typo, and the engine's warning says 0 %
        return verdict, (
            f"keeps none of the {skill} model's gain over the base; it is even worse than the base on "
            f"this text ({100 * fraction:.0f} %)"
        )
    return verdict, f"keeps {100 * fraction:.0f} % of the {skill} model's gain over the base"


def whole_words(text: str, limit: int = 600) -> str:
    """An answer shown without a cut-off word: a reply that stops mid-sentence (the token limit) ends at its
    last whole word with '…'."""
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[:limit]
    elif not text or text[-1] in ".!?)\"'»”>":
        return text
    cut = text.rsplit(" ", 1)[0] if " " in text else text
    return cut.rstrip(",;:") + " …"


class EvaluationView(QWidget):
    """Verdict per skill, perplexities (rows: data sets, columns: models), the answers, and the user's own prompt."""

    ask_requested = Signal(str)
    find_setting_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.status = QLabel(EVAL_HINT)
        self.status.setObjectName("muted")
        self.status.setWordWrap(True)
        self.verdicts = {skill: Banner("", "info") for skill in ("reasoning", "domain")}
        self.comparison = QLabel("")  # the engine's comparison with Task Arithmetic, when it reports one
        self.comparison.setWordWrap(True)
        self.comparison.setVisible(False)
        self.verdict_warning = Banner("", "warn")  # the verdict's "Warning: …" lines (a lost skill, a better baseline)
        self.verdict_warning.setTextFormat(Qt.TextFormat.RichText)  # one line has no tag: Qt would guess plain text
        self.find_setting = QPushButton("Find a good setting…")
        self.find_setting.setToolTip(
            "Open “Find a good setting”: it compares many settings, Task Arithmetic included, on held-out data."
        )
        self.find_setting.clicked.connect(self.find_setting_requested)
        self.find_setting.setVisible(False)
        self.table = QTableWidget(0, 0)
        self.table.verticalHeader().setVisible(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setMaximumHeight(160)
        self.generations = QPlainTextEdit()
        self.generations.setReadOnly(True)
        self.generations.setMinimumHeight(120)
        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("Your own question, e.g. a typical request from your field")
        self.prompt.returnPressed.connect(self._ask)
        self.ask_button = QPushButton("Ask all four models")
        self.ask_button.setToolTip("The base, both experts and the merged model answer your question side by side.")
        self.ask_button.clicked.connect(self._ask)
        ask_row = QHBoxLayout()
        ask_row.addWidget(self.prompt, 1)
        ask_row.addWidget(self.ask_button)
        self.answers: dict[str, QPlainTextEdit] = {}
        answers = QGridLayout()
        for i, role in enumerate(ASK_ROLES):
            title = QLabel(f"{role.capitalize()} model")
            title.setObjectName("muted")
            box = QPlainTextEdit()
            box.setReadOnly(True)
            box.setMinimumHeight(70)
            answers.addWidget(title, 2 * (i // 2), i % 2)
            answers.addWidget(box, 2 * (i // 2) + 1, i % 2)
            self.answers[role] = box
        lay = QVBoxLayout(self)
        lay.addWidget(self.status)
        for banner in self.verdicts.values():
            lay.addWidget(banner)
        lay.addWidget(self.comparison)
        warn_row = QHBoxLayout()
        warn_row.addWidget(self.verdict_warning, 1)
        warn_row.addWidget(self.find_setting, 0, Qt.AlignmentFlag.AlignTop)
        lay.addLayout(warn_row)
        lay.addWidget(QLabel("Perplexity on held-out text (lower is better)"))
        lay.addWidget(self.table)
        lay.addWidget(QLabel("Answers to the check prompts"))
        lay.addWidget(self.generations, 1)
        lay.addWidget(QLabel("Ask your own question"))
        lay.addLayout(ask_row)
        lay.addLayout(answers)
        self.result: dict | None = None
        self.data_roles: dict[str, str] = {}  # data spec -> "reasoning" | "domain" (for the verdicts)

    def _ask(self) -> None:
        text = self.prompt.text().strip()
        if text:
            self.ask_requested.emit(text)

    def show_answers(self, result: dict | None, note: str = "") -> None:
        """The user's own question answered by each model (or a note while they think / on failure)."""
        outputs = (result or {}).get("outputs") or {}
        for role, box in self.answers.items():
            box.setPlainText(whole_words(outputs[role]) if role in outputs else note)

    def show_result(self, ev: dict | None, note: str = "") -> None:
        self.result = ev
        self.table.clear()
        self.generations.clear()
        for banner in self.verdicts.values():
            banner.set_message("", "info")
        self.comparison.setText("")
        self.comparison.setVisible(False)
        self.verdict_warning.set_message("", "warn")
        self.find_setting.setVisible(False)
        if not ev:
            self.table.setRowCount(0)
            self.table.setColumnCount(0)
            self.status.setText(note or EVAL_HINT)
            return
        ppl = ev.get("perplexity") or {}
        self._show_verdicts(ppl, (ev.get("kept") or {}).get("merged") or {})
        verdict = [str(line) for line in ev.get("verdict") or []]
        warnings = [line for line in verdict if line.startswith("Warning")]
        others = [line for line in verdict if "Task Arithmetic" in line and line not in warnings]
        if others:
            self.comparison.setText(" ".join(others))
            self.comparison.setVisible(True)
        if warnings:  # a lost skill or a better plain baseline: said in the warning colour, never buried
            self.verdict_warning.set_message(
                "<br>".join("⚠ " + html_escape(line, quote=False) for line in warnings), "warn"
            )
            self.find_setting.setVisible(any("Task Arithmetic" in line or "good setting" in line for line in warnings))
        models = sorted({m for row in ppl.values() for m in row}, key=_model_order)
        self.table.setRowCount(len(ppl))
        self.table.setColumnCount(len(models))
        self.table.setHorizontalHeaderLabels(models)
        self.table.setVerticalHeaderLabels([data_title(d) for d in ppl])
        for r, (_data, row) in enumerate(ppl.items()):
            for c, m in enumerate(models):
                v = row.get(m)
                item = QTableWidgetItem("–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}")
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        lines = []
        for g in ev.get("generations") or []:
            lines.append(f"▶ {g.get('prompt', '')}")
            for m, text in sorted((g.get("outputs") or {}).items(), key=lambda kv: _model_order(kv[0])):
                lines.append(f"  [{m}] {whole_words(text)}")
            lines.append("")
        self.generations.setPlainText("\n".join(lines))
        header = self.table.horizontalHeader().height()
        self.table.setFixedHeight(header + sum(self.table.rowHeight(r) for r in range(self.table.rowCount())) + 4)
        status = "Evaluation finished; it was also added to the report."
        warnings = list(ev.get("warnings") or [])
        if warnings:
            status += "\n⚠ " + "\n⚠ ".join(warnings)
        self.status.setText(status)

    def _show_verdicts(self, ppl: dict, kept: dict) -> None:
        """kept: the engine's {skill: fraction} for the merge when it reports one; else perplexities compared."""
        specs = list(ppl)
        for i, skill in enumerate(("reasoning", "domain")):
            data = next((d for d, r in self.data_roles.items() if r == skill and d in ppl), None)
            if data is None and len(specs) == 2:
                data = specs[i]  # evaluate_job passes [reasoning data, domain data]
            if data is None:
                continue
            if isinstance(kept.get(skill), (int, float)):
                verdict, words = kept_verdict(float(kept[skill]), skill)
            else:
                verdict, words = skill_verdict(ppl, data, skill)
            kind, mark = VERDICT_COLORS[verdict]
            question = f"Kept the {skill} skill?"
            answer = {"kept": "Yes", "partly": "Partly", "lost": "No", "unclear": "Unclear"}[verdict]
            self.verdicts[skill].set_message(
                f"{mark} <b>{question} {answer}</b> — on {data_title(data)}: {words}.", kind
            )


def data_title(spec: str) -> str:
    """'builtin:safety' -> 'Safety (refusals) (built-in)'; a file -> its name."""
    spec = str(spec)
    if spec.startswith("builtin:"):
        from reasonany_gui.engine.data.calibration import PRESETS

        name = spec[len("builtin:") :]
        preset = PRESETS.get(name)
        return f"{preset.title if preset else name} (built-in)"
    return Path(spec).name or spec


def _model_order(name: str) -> tuple[int, str]:
    order = {"merged": 0, "base": 1, "reasoning": 2, "domain": 3}
    return order.get(name, 9), name


class ResultsPanel(QWidget):
    """The Results screen. The window talks to it through the intent methods below (show this, begin that) and
    its signals, never through its child widgets, so the screen can be rearranged without touching the window."""

    retune_requested = Signal(dict)
    save_requested = Signal()
    evaluate_requested = Signal()
    ask_requested = Signal(str)  # the user's own question for the four models
    tune_requested = Signal(dict)  # "Find a good setting": the search's options {"budget", "checks"}
    cancel_requested = Signal()  # the search's own Cancel button
    candidate_requested = Signal(dict)  # a point of the search was clicked: re-tune to its setting
    search_options_changed = Signal()  # the search's options were edited here

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.out_dir: Path | None = None
        self.where = Banner("", "info")
        self.where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_folder = QPushButton("Open folder")
        self.open_report = QPushButton("Open report")
        self.evaluate = QPushButton("Evaluate")
        self.evaluate.setToolTip(EVALUATE_TIP)
        self.unsaved = False
        self.save_version = QPushButton("Save this version…")
        self.save_version.setToolTip("Write the re-tuned model to a new folder.")
        self.save_version.setEnabled(False)
        for b in (self.open_folder, self.open_report, self.evaluate):
            b.setEnabled(False)
        self.open_folder.clicked.connect(lambda: self._open(self.out_dir))
        self.open_report.clicked.connect(lambda: self._open(self.report_path()))
        self.evaluate.clicked.connect(self.evaluate_requested)
        self.save_version.clicked.connect(self.save_requested)
        top = QVBoxLayout()  # the banner on its own line: a long folder path must not push the buttons away
        top.addWidget(self.where)
        buttons = QHBoxLayout()
        for b in (self.open_folder, self.open_report, self.evaluate, self.save_version):
            buttons.addWidget(b)
        buttons.addStretch(1)
        top.addLayout(buttons)

        self.retune = RetuneCard()
        self.retune.retune_requested.connect(self.retune_requested)
        self.retune.setEnabled(False)
        self.inspector = MaskInspector()
        self.evaluation = EvaluationView()
        self.tune_view = TuneView()
        self.evaluation.find_setting_requested.connect(lambda: self.tabs.setCurrentWidget(self.tune_view))
        self.evaluation.ask_requested.connect(self.ask_requested)
        self.tune_view.tune_requested.connect(self.tune_requested)
        self.tune_view.cancel_requested.connect(self.cancel_requested)
        self.tune_view.setting_requested.connect(self.candidate_requested)
        self.tune_view.options.changed.connect(self.search_options_changed)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary.setContentsMargins(12, 12, 12, 12)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.inspector, "Masks")
        self.tabs.addTab(self.evaluation, "Evaluation")
        self.tabs.addTab(self.tune_view, "Find a good setting")
        self.tabs.addTab(self.summary, "Run summary")

        filled = QWidget()
        fl = QVBoxLayout(filled)
        fl.setContentsMargins(0, 0, 0, 0)
        fl.addLayout(top)
        fl.addWidget(self.retune)
        fl.addWidget(self.tabs, 1)
        empty = QLabel(EMPTY_TEXT)
        self.empty = empty
        empty.setObjectName("emptyState")
        empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        empty.setWordWrap(True)
        self.body = QStackedWidget()
        self.body.addWidget(empty)
        self.body.addWidget(filled)

        lay = QVBoxLayout(self)
        title = QLabel("6  Results")
        title.setObjectName("pageTitle")
        lay.addWidget(title)
        lay.addWidget(self.body, 1)
        self.inspector.set_selection(None)

    # ------------------------------------------------------------------ state
    def report_path(self) -> Path | None:
        return run_files(self.out_dir) / "report.html" if self.out_dir else None

    def show_empty(self, text: str = EMPTY_TEXT) -> None:
        """Nothing to show (a merge is running, or the last one was cancelled or failed): say so, and show no old
        masks or banner that would contradict it."""
        self.set_selection(None)
        self.set_report(None)
        self.set_output(None)
        self.empty.setText(text)

    def set_output(self, out_dir: Path | None, saved_current: bool = True) -> None:
        self.out_dir = Path(out_dir) if out_dir else None
        self.unsaved = self.out_dir is not None and not saved_current
        self.empty.setText(EMPTY_TEXT)
        self.body.setCurrentIndex(1 if self.out_dir is not None else 0)
        if self.out_dir is None:
            self.where.set_message("", "info")
        elif saved_current:
            self.where.set_message(f"✓ Merged model saved in <b>{self.out_dir}</b>", "ok")
        else:
            self.where.set_message(
                f"The masks below were re-tuned and are <b>not saved yet</b> "
                f"(the last saved model is in {self.out_dir}). Press “Save this version…”.",
                "warn",
            )
        for b in (self.open_folder, self.open_report):
            b.setEnabled(self.out_dir is not None)
        self._enable_evaluate(busy=False)
        self.save_version.setEnabled(not saved_current)
        if self.unsaved:  # an evaluation of the saved model says nothing about the re-tuned masks shown now
            self.evaluation.show_result(None, RETUNED_EVAL_NOTE)

    def _enable_evaluate(self, busy: bool) -> None:
        self.evaluate.setEnabled(not busy and self.out_dir is not None and not self.unsaved)
        self.evaluate.setToolTip(EVALUATE_UNSAVED if self.unsaved else EVALUATE_TIP)

    def set_selection(self, selection, scope: str | None = None, method: str | None = None) -> None:
        self.inspector.set_selection(selection)
        self.inspector.heatmaps.set_scope_note(scope if selection is not None else None)
        if selection is None and method in REGISTRY and not REGISTRY[method].needs_scores:
            self.inspector.totals.setText(
                f"No masks: {TITLES[method]} changes every "
                "weight (it selects none), so there is nothing to inspect here."
            )

    def set_report(self, report: dict | None) -> None:
        self.summary.setText(summary_html(report) if report else "")
        self.evaluation.show_result((report or {}).get("evaluation"))
        self.tune_view.set_result((report or {}).get("tune"))

    def set_busy(self, busy: bool, job: str = "") -> None:
        self.retune.apply_button.setEnabled(not busy)
        self.tune_view.set_busy(busy, searching=job == "tune")
        self.evaluation.ask_button.setEnabled(not busy)
        self._enable_evaluate(busy)

    # ------------------------------------------------------------------ intents (what the window asks for)
    def show_run_setting(self, config: MergeConfig | None, retunable: bool) -> None:
        """The setting of the run shown (None: an opened run whose report this version cannot read).

        It fills the Re-tune card, which is usable only when `retunable` (measured scores are at hand), and tells
        the evaluation which data set is which skill's (for its verdicts)."""
        self.evaluation.data_roles = (
            {config.reasoning_data: "reasoning", config.domain_data: "domain"} if config is not None else {}
        )
        if config is not None:
            self.retune.load(config)
        self.retune.setEnabled(retunable)

    def scores_cleared(self) -> None:
        """The score cache was deleted: neither re-tuning nor the search can run until a new merge measures."""
        self.retune.setEnabled(False)
        self.tune_view.set_available(False)

    def set_tune_state(self, available: bool, current: dict | None) -> None:
        """Whether a search can start (scores at hand), and the setting shown now (ringed on the search's plot)."""
        self.tune_view.set_available(available)
        self.tune_view.mark_current(current)

    def on_event(self, event: object) -> None:
        """An engine event while a job runs (the search draws its candidates live)."""
        self.tune_view.on_event(event)

    def search_options(self) -> dict:
        """The search's options as shown here: {"budget": int, "checks": path or None}."""
        return self.tune_view.options.values()

    def set_search_options(self, budget: int, checks: str | None) -> None:
        """Show the search's options (without echoing search_options_changed)."""
        self.tune_view.options.set_values(budget, checks)

    def begin_tune(self, budget: int) -> None:
        """A search of `budget` candidates starts: its tab comes to the front and fills in live."""
        self.tune_view.begin(budget)
        self.tabs.setCurrentWidget(self.tune_view)

    def show_tune_result(self, section: dict | None) -> None:
        """The finished search (tune.TuneResult.report_section), or None."""
        self.tune_view.set_result(section)

    def end_tune(self, state: str, message: str = "") -> None:
        """The search stopped without a result: state "cancelled" or "failed" (message: the first line why)."""
        self.tune_view.finish(state, message)

    def begin_evaluation(self) -> None:
        self.evaluation.status.setText("Evaluating the base, reasoning, domain and merged models…")

    def show_evaluation(self, result: dict | None) -> None:
        """A finished evaluation, brought to the front."""
        self.evaluation.show_result(result)
        self.tabs.setCurrentWidget(self.evaluation)

    def show_answers(self, result: dict | None, note: str = "") -> None:
        """The four models' answers to the user's question, or a note in each box (thinking, cancelled, failed)."""
        self.evaluation.show_answers(result, note)

    def _open(self, path: Path | None) -> None:
        if path is not None and Path(path).exists():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))


def summary_html(report: dict) -> str:
    """The key facts of report.json in words."""
    cfg = report.get("config", {})
    rows = [("Method", TITLES.get(report.get("method", ""), report.get("method", "")))]
    for role, m in (report.get("models") or {}).items():
        rows.append(
            (
                f"{role.capitalize()} model",
                f"{m.get('spec')} ({m.get('architecture')}, {m.get('dtype')}, {human_bytes(m.get('size_bytes'))})",
            )
        )
    for role, d in (report.get("data") or {}).items():
        rows.append(
            (f"{role.capitalize()} data", f"{d.get('spec')}: {d.get('used')} samples, {d.get('tokens')} tokens")
        )
    for name in (
        "reasoning_ratio",
        "domain_ratio",
        "reasoning_scale",
        "domain_scale",
        "score",
        "scope",
        "samples",
        "max_length",
        "intersect",
    ):
        if name in cfg:
            v = cfg[name]
            meta = MergeConfig.settings()[name]
            v = f"{meta.shown(v):.2f} %" if meta.percent and isinstance(v, (int, float)) else v
            rows.append((LABELS.get(name, name), str(v)))
    t = report.get("timings_seconds") or {}
    if "total" in t:
        rows.append(("Time", human_seconds(t["total"])))
    rows.append(("Created", str(report.get("created", ""))))
    body = "".join(f"<tr><td style='color:#667085;padding-right:16px'>{k}</td><td>{v}</td></tr>" for k, v in rows)
    return f"<table cellspacing='4'>{body}</table>"

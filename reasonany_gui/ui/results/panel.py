"""Step 6: the result. Where the model is, the mask inspector, re-tuning, evaluation, the report.

Re-tuning (shares, strengths, scope) re-selects from the importance scores already measured: the worker
calls `Pipeline.select(new_config)`, which runs no new backward pass, so it takes seconds; "Save this
version" then writes it to a new folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from reasonany_gui.engine.core.paths import run_files
from reasonany_gui.engine.methods.registry import REGISTRY, TITLES
from reasonany_gui.engine.settings.config import MergeConfig

from ..inspector.selection import SelectionLike
from ..inspector.view import MaskInspector
from ..tune.view import TuneView
from ..widgets import Banner
from .evaluation import EvaluationView
from .retune_card import RetuneCard
from .summary import summary_html

EVALUATE_TIP = "Compare the merged model with the three inputs (perplexity and sample answers)."
SAVE_FIRST = "Save this version first: Evaluate, Export and Publish work on a saved model."
EXPORT_TIP = "Write the merged model as one .gguf file for llama.cpp, Ollama and LM Studio."
PUBLISH_TIP = "Upload the merged model with its model card to the Hugging Face Hub."
RETUNED_EVAL_NOTE = (
    "The masks were re-tuned and are not saved yet, so there is nothing to evaluate for them. "
    "Press “Save this version…”, then Evaluate."
)
SAVE_VERSION_TIP = "Write the re-tuned model to a new folder."
EMPTY_TEXT = (
    "No results yet.\n\nPress Merge to create a merged model, or open an earlier output folder with “Open run…”."
)


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
    export_requested = Signal()  # Export GGUF…: the saved folder shown, for llama.cpp, Ollama and LM Studio
    publish_requested = Signal()  # Publish…: the saved folder shown, to the Hugging Face Hub
    open_requested = Signal(str, str)  # (what, path): Open folder / Open report; the window opens it or says why not

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
        self.export_gguf = QPushButton("Export GGUF…")
        self.export_gguf.setToolTip(EXPORT_TIP)
        self.publish = QPushButton("Publish…")
        self.publish.setToolTip(PUBLISH_TIP)
        self.save_version = QPushButton("Save this version…")
        self.save_version.setToolTip(SAVE_VERSION_TIP)
        self.save_target: Path | None = None
        self.save_version.setEnabled(False)
        for b in (self.open_folder, self.open_report, self.evaluate, self.export_gguf, self.publish):
            b.setEnabled(False)
        self.open_folder.clicked.connect(lambda: self._open("output folder", self.out_dir))
        self.open_report.clicked.connect(lambda: self._open("report", self.report_path()))
        self.evaluate.clicked.connect(self.evaluate_requested)
        self.save_version.clicked.connect(self.save_requested)
        self.export_gguf.clicked.connect(self.export_requested)
        self.publish.clicked.connect(self.publish_requested)
        top = QVBoxLayout()  # the banner on its own line: a long folder path must not push the buttons away
        top.addWidget(self.where)
        buttons = QHBoxLayout()
        for b in (self.open_folder, self.open_report, self.evaluate, self.save_version, self.export_gguf, self.publish):
            buttons.addWidget(b)
        buttons.addStretch(1)
        top.addLayout(buttons)

        self.retune = RetuneCard()
        self.retune.retune_requested.connect(self.retune_requested)
        self.retune.setEnabled(False)
        self.inspector = MaskInspector()
        self.evaluation = EvaluationView()
        self.tune_view = TuneView()
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
        self.evaluation.find_setting_requested.connect(lambda: self.tabs.setCurrentWidget(self.tune_view))

        filled = QWidget()
        fl = QVBoxLayout(filled)
        fl.setContentsMargins(0, 0, 0, 0)
        fl.addLayout(top)
        fl.addWidget(self.retune)
        fl.addWidget(self.tabs, 1)
        empty = QLabel(EMPTY_TEXT)
        self.empty = empty
        empty.setObjectName("emptyState")
        empty.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        empty.setContentsMargins(24, 48, 24, 24)
        empty.setWordWrap(True)
        empty.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)  # at the top, never stretched
        self.filled = filled

        lay = QVBoxLayout(self)
        title = QLabel("6  Results")
        title.setObjectName("pageTitle")
        lay.addWidget(title)
        lay.addWidget(empty)
        lay.addWidget(filled, 1)
        lay.addStretch(0)  # takes the room below the empty state's words (see _show_body)
        self._layout = lay
        self.inspector.set_selection(None)
        self._show_body(filled=False)

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

    def set_output(self, out_dir: Path | None, saved_current: bool = True, save_target: Path | None = None) -> None:
        """The run's saved folder; saved_current: whether the masks shown are that folder's; save_target: where
        "Save this version…" writes the masks shown (said on the banner and the button, issue 23)."""
        self.out_dir = Path(out_dir) if out_dir else None
        self.save_target = None if saved_current else save_target
        self.unsaved = self.out_dir is not None and not saved_current
        self.empty.setText(EMPTY_TEXT)
        self._show_body(filled=self.out_dir is not None)
        if self.out_dir is None:
            self.where.set_message("", "info")
        elif saved_current:
            self.where.set_message(f"✓ Merged model saved in <b>{self.out_dir}</b>", "ok")
        else:
            target = f" to write them to <b>{self.save_target}</b>" if self.save_target else ""
            self.where.set_message(
                f"The masks below were re-tuned and are <b>not saved yet</b> "
                f"(the last saved model is in {self.out_dir}). Press “Save this version…”{target}.",
                "warn",
            )
        self.save_version.setToolTip(
            f"Write the re-tuned model to {self.save_target}." if self.save_target else SAVE_VERSION_TIP
        )
        for b in (self.open_folder, self.open_report):
            b.setEnabled(self.out_dir is not None)
        self._enable_evaluate(busy=False)
        self.save_version.setEnabled(not saved_current)
        if self.unsaved:  # an evaluation of the saved model says nothing about the re-tuned masks shown now
            self.evaluation.show_result(None, RETUNED_EVAL_NOTE)

    @property
    def showing_results(self) -> bool:
        """Whether the results are shown (else the empty state's words: before any run, while one runs, after a
        cancelled or failed one)."""
        return not self.filled.isHidden()

    def _show_body(self, filled: bool) -> None:
        """The results, or the empty state's words at the top. Why not a stacked widget: it is as tall as its
        tallest page (in height-for-width too), which put "No results yet" 600 px down, below the fold (issue 23)."""
        self.filled.setVisible(filled)
        self.empty.setVisible(not filled)
        self._layout.setStretch(self._layout.count() - 1, 0 if filled else 1)

    def _enable_evaluate(self, busy: bool) -> None:
        """Evaluate, Export and Publish work on the saved folder: not while re-tuned masks are shown unsaved."""
        usable = not busy and self.out_dir is not None and not self.unsaved
        for button, tip in ((self.evaluate, EVALUATE_TIP), (self.export_gguf, EXPORT_TIP), (self.publish, PUBLISH_TIP)):
            button.setEnabled(usable)
            button.setToolTip(SAVE_FIRST if self.unsaved else tip)

    def set_selection(
        self, selection: SelectionLike | None, scope: str | None = None, method: str | None = None
    ) -> None:
        self.inspector.set_selection(selection)
        self.inspector.heatmaps.set_scope_note(scope if selection is not None else None)
        if selection is None and method in REGISTRY and not REGISTRY[method].needs_scores:
            self.inspector.totals.setText(
                f"No masks: {TITLES[method]} changes every "
                "weight (it selects none), so there is nothing to inspect here."
            )

    def set_report(self, report: dict[str, Any] | None) -> None:
        self.summary.setText(summary_html(report) if report else "")
        self.show_results((report or {}).get("evaluation"), None)
        self.tune_view.set_result((report or {}).get("tune"))

    def show_results(self, evaluation: dict[str, Any] | None, answers: dict[str, Any] | None) -> None:
        """The evaluation and the answers to the user's question of the version shown (None: none yet)."""
        self.evaluation.show_result(evaluation)
        self.evaluation.show_answers(answers)

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

    def set_tune_state(self, available: bool, current: dict[str, Any] | None) -> None:
        """Whether a search can start (scores at hand), and the setting shown now (ringed on the search's plot)."""
        self.tune_view.set_available(available)
        self.tune_view.mark_current(current)

    def on_event(self, event: object) -> None:
        """An engine event while a job runs (the search draws its candidates live)."""
        self.tune_view.on_event(event)

    def search_options(self) -> dict[str, Any]:
        """The search's options as shown here: {"budget": int, "checks": path or None}."""
        return self.tune_view.options.values()

    def set_search_options(self, budget: int, checks: str | None) -> None:
        """Show the search's options (without echoing search_options_changed)."""
        self.tune_view.options.set_values(budget, checks)

    def begin_tune(self, budget: int) -> None:
        """A search of `budget` candidates starts: its tab comes to the front and fills in live."""
        self.tune_view.begin(budget)
        self.tabs.setCurrentWidget(self.tune_view)

    def show_tune_result(self, section: dict[str, Any] | None) -> None:
        """The finished search (tune.TuneResult.report_section), or None."""
        self.tune_view.set_result(section)

    def end_tune(self, state: str, message: str = "") -> None:
        """The search stopped without a result: state "cancelled" or "failed" (message: the first line why)."""
        self.tune_view.finish(state, message)

    def begin_evaluation(self) -> None:
        self.evaluation.status.setText("Evaluating the base, reasoning, domain and merged models…")

    def show_evaluation(self, result: dict[str, Any] | None) -> None:
        """A finished evaluation, brought to the front."""
        self.evaluation.show_result(result)
        self.tabs.setCurrentWidget(self.evaluation)

    def reply_tokens(self) -> int:
        """The longest reply the user allows, in tokens (Evaluate's prompts and the own question)."""
        return int(self.evaluation.reply_tokens.value())

    def show_answers(self, result: dict[str, Any] | None, note: str = "") -> None:
        """The five answers to the user's question (the merge, Task Arithmetic, the three inputs), or a note in
        each box (thinking, cancelled, failed)."""
        self.evaluation.show_answers(result, note)

    def _open(self, what: str, path: Path | None) -> None:
        if path is not None:
            self.open_requested.emit(what, str(path))

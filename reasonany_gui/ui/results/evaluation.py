"""Results ▸ Evaluation: a verdict per skill, the perplexities, the check prompts' answers and the user's own
question. The verdicts come from the engine (engine.measure.verdicts); this view only shows them.
"""

from __future__ import annotations

import math
from html import escape as html_escape
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from reasonany_gui.engine.measure.verdicts import kept_verdict, perplexity_verdict

from ..jobs import ASK_ROLES, ASK_TITLES
from ..texts import MEASURES_DIFFER_NOTE, OVER_100_NOTE
from ..widgets import Banner

EVAL_HINT = (
    "Press Evaluate to compare the merged model with the three inputs: perplexity on held-out samples "
    "of both data sets, and answers to a few prompts."
)


#: the perplexity table's column titles (the engine's model keys in words)
MODEL_TITLES = {
    "merged": "Merged",
    "task_arithmetic": "Task Arithmetic",
    "base": "Base",
    "reasoning": "Reasoning",
    "domain": "Domain",
}
VERDICT_COLORS = {"kept": ("ok", "✓"), "partly": ("warn", "≈"), "lost": ("error", "✗"), "unclear": ("info", "?")}


#: the reply length offered for Evaluate's prompts and the user's own question (tokens; a reply stops earlier at
#: the model's end of answer)
REPLY_TOKENS = (16, 2048, 128)


def whole_reply(text: str) -> str:
    """A reply as the model wrote it, whole: a reasoning merge is judged by its chain and its final answer, so
    nothing is cut (the boxes scroll). Only blank lines at either end go."""
    return str(text).strip()


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
        self.ask_button = QPushButton("Ask all five")
        self.ask_button.setToolTip(
            "The merged model, Task Arithmetic (the simplest merge, for comparison), the base and both experts "
            "answer your question side by side."
        )
        self.ask_button.clicked.connect(self._ask)
        self.reply_tokens = QSpinBox()
        self.reply_tokens.setRange(*REPLY_TOKENS[:2])
        self.reply_tokens.setValue(REPLY_TOKENS[2])
        self.reply_tokens.setSingleStep(32)
        self.reply_tokens.setSuffix(" tokens")
        self.reply_tokens.setToolTip(
            "The longest reply each model may write, for Evaluate's prompts and your own question. A reply stops "
            "earlier when the model ends its answer; a longer limit shows more of a long chain of thought."
        )
        ask_row = QHBoxLayout()
        ask_row.addWidget(self.prompt, 1)
        ask_row.addWidget(self.ask_button)
        length_row = QHBoxLayout()
        length_row.addWidget(QLabel("Longest reply"))
        length_row.addWidget(self.reply_tokens)
        length_row.addStretch(1)
        self.answers: dict[str, QPlainTextEdit] = {}
        answers = QGridLayout()
        for i, role in enumerate(ASK_ROLES):
            title = QLabel(ASK_TITLES[role])
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
        lay.addLayout(length_row)
        lay.addLayout(answers)
        self.result: dict[str, Any] | None = None
        self.data_roles: dict[str, str] = {}  # data spec -> "reasoning" | "domain" (for the verdicts)

    def _ask(self) -> None:
        text = self.prompt.text().strip()
        if text:
            self.ask_requested.emit(text)

    def show_answers(self, result: dict[str, Any] | None, note: str = "") -> None:
        """The user's own question answered by each model (or a note while they think / on failure)."""
        outputs = (result or {}).get("outputs") or {}
        for role, box in self.answers.items():
            box.setPlainText(whole_reply(outputs[role]) if role in outputs else note)

    def show_result(self, ev: dict[str, Any] | None, note: str = "") -> None:
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
        if others:  # the search may have measured the same setting on other rows: say why the numbers differ
            self.comparison.setText(" ".join([*others, MEASURES_DIFFER_NOTE]))
            self.comparison.setVisible(True)
        if warnings:  # a lost skill or a better plain baseline: said in the warning colour, never buried
            self.verdict_warning.set_message(
                "<br>".join("⚠ " + html_escape(line, quote=False) for line in warnings), "warn"
            )
            self.find_setting.setVisible(any("Task Arithmetic" in line or "good setting" in line for line in warnings))
        models = sorted({m for row in ppl.values() for m in row}, key=_model_order)
        self.table.setRowCount(len(ppl))
        self.table.setColumnCount(len(models))
        self.table.setHorizontalHeaderLabels([MODEL_TITLES.get(m, m) for m in models])
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
                lines.append(f"  [{m}] {whole_reply(text)}")
            lines.append("")
        self.generations.setPlainText("\n".join(lines))
        header = self.table.horizontalHeader().height()
        self.table.setFixedHeight(header + sum(self.table.rowHeight(r) for r in range(self.table.rowCount())) + 4)
        status = "Evaluation finished; it was also added to the report."
        kept_all = [v for row in (ev.get("kept") or {}).values() if isinstance(row, dict) for v in row.values()]
        if any(isinstance(v, (int, float)) and v > 1.0 for v in kept_all):
            status += "\n" + OVER_100_NOTE
        warnings = list(ev.get("warnings") or [])
        if warnings:
            status += "\n⚠ " + "\n⚠ ".join(warnings)
        self.status.setText(status)

    def _show_verdicts(self, ppl: dict[str, Any], kept: dict[str, Any]) -> None:
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
                verdict, words = perplexity_verdict(ppl, data, skill)
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
        from reasonany_gui.engine.data.presets import PRESETS

        name = spec[len("builtin:") :]
        preset = PRESETS.get(name)
        return f"{preset.title if preset else name} (built-in)"
    return Path(spec).name or spec


def _model_order(name: str) -> tuple[int, str]:
    order = {"merged": 0, "base": 1, "reasoning": 2, "domain": 3}
    return order.get(name, 9), name

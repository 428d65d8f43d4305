"""Step 6: the result. Where the model is, the mask inspector, re-tuning, evaluation, the report.

Re-tuning (shares, strengths, scope) re-selects from the importance scores already measured: the worker
calls `Pipeline.select(new_config)`, which runs no new backward pass, so it takes seconds; "Save this
version" then writes it to a new folder.
"""

from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QGridLayout, QHBoxLayout, QHeaderView, QLabel,
                               QPlainTextEdit, QPushButton, QStackedWidget, QTableWidget, QTableWidgetItem,
                               QTabWidget, QVBoxLayout, QWidget)

from reasonany_gui.engine.config import SCOPES

from .inspector import MaskInspector
from .texts import LABELS, METHOD_TITLES, SCOPE_TITLES, TOOLTIPS, human_bytes, human_seconds
from .widgets import Banner, Card

RETUNE_FIELDS = ("reasoning_ratio", "domain_ratio", "reasoning_scale", "domain_scale", "scope")


class RetuneCard(Card):
    """Shares, strengths and scope, applied to the cached scores with one click (one compact row)."""

    retune_requested = Signal(dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("", parent)
        self.boxes: dict[str, QWidget] = {}
        grid = QGridLayout()
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(2)
        title = QLabel("Re-tune")
        title.setObjectName("sectionTitle")
        title.setToolTip("Uses the importance scores already measured: takes seconds, not a new run.")
        grid.addWidget(title, 1, 0)
        for i, name in enumerate(RETUNE_FIELDS, start=1):
            if name == "scope":
                box = QComboBox()
                for s in SCOPES:
                    box.addItem(SCOPE_TITLES[s], s)
            else:
                box = QDoubleSpinBox()
                if name.endswith("ratio"):
                    box.setRange(0.01, 99.99)
                    box.setSuffix(" %")
                    box.setSingleStep(1.0)
                else:
                    box.setRange(0.0, 10.0)
                    box.setSingleStep(0.1)
                box.setDecimals(2)
            box.setToolTip(TOOLTIPS[name])
            label = QLabel(LABELS[name])
            label.setObjectName("muted")
            label.setToolTip(TOOLTIPS[name])
            grid.addWidget(label, 0, i)
            grid.addWidget(box, 1, i)
            self.boxes[name] = box
        self.apply_button = QPushButton("Update masks")
        self.apply_button.setObjectName("primary")
        self.apply_button.setToolTip("Re-select the weights with these values from the scores already measured "
                                     "(seconds, no new measurement).")
        self.apply_button.clicked.connect(lambda: self.retune_requested.emit(self.values()))
        grid.addWidget(self.apply_button, 1, len(RETUNE_FIELDS) + 1)
        self.body.addLayout(grid)

    def load(self, config) -> None:
        for name, box in self.boxes.items():
            value = getattr(config, name)
            if isinstance(box, QComboBox):
                box.setCurrentIndex(max(box.findData(value), 0))
            elif name.endswith("ratio"):
                box.setValue(float(value) * 100.0)
            else:
                box.setValue(float(value))

    def values(self) -> dict:
        out = {}
        for name, box in self.boxes.items():
            if isinstance(box, QComboBox):
                out[name] = str(box.currentData())
            elif name.endswith("ratio"):
                out[name] = round(box.value() / 100.0, 6)
            else:
                out[name] = round(box.value(), 6)
        return out


EVAL_HINT = ("Press Evaluate to compare the merged model with the three inputs: perplexity on held-out samples "
             "of both data sets, and answers to a few prompts.")


class EvaluationView(QWidget):
    """Perplexities (rows: data sets, columns: models) and side-by-side generations."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.status = QLabel(EVAL_HINT)
        self.status.setObjectName("muted")
        self.status.setWordWrap(True)
        self.table = QTableWidget(0, 0)
        self.table.verticalHeader().setVisible(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setMaximumHeight(160)
        self.generations = QPlainTextEdit()
        self.generations.setReadOnly(True)
        lay = QVBoxLayout(self)
        lay.addWidget(self.status)
        lay.addWidget(QLabel("Perplexity (lower is better)"))
        lay.addWidget(self.table)
        lay.addWidget(QLabel("Answers"))
        lay.addWidget(self.generations, 1)
        self.result: dict | None = None

    def show_result(self, ev: dict | None) -> None:
        self.result = ev
        self.table.clear()
        self.generations.clear()
        if not ev:
            self.table.setRowCount(0)
            self.table.setColumnCount(0)
            self.status.setText(EVAL_HINT)
            return
        ppl = ev.get("perplexity") or {}
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
                lines.append(f"  [{m}] {str(text).strip()}")
            lines.append("")
        self.generations.setPlainText("\n".join(lines))
        header = self.table.horizontalHeader().height()
        self.table.setFixedHeight(header + sum(self.table.rowHeight(r) for r in range(self.table.rowCount())) + 4)
        status = "Evaluation finished; it was also added to the report."
        warnings = list(ev.get("warnings") or [])
        if warnings:
            status += "\n⚠ " + "\n⚠ ".join(warnings)
        self.status.setText(status)


def data_title(spec: str) -> str:
    """'builtin:safety' -> 'Safety (refusals) (built-in)'; a file -> its name."""
    spec = str(spec)
    if spec.startswith("builtin:"):
        from reasonany_gui.engine.calibration import PRESETS

        name = spec[len("builtin:"):]
        preset = PRESETS.get(name)
        return f"{preset.title if preset else name} (built-in)"
    return Path(spec).name or spec


def _model_order(name: str) -> tuple[int, str]:
    order = {"merged": 0, "base": 1, "reasoning": 2, "domain": 3}
    return order.get(name, 9), name


class ResultsPanel(QWidget):
    retune_requested = Signal(dict)
    save_requested = Signal()
    evaluate_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.out_dir: Path | None = None
        self.where = Banner("", "info")
        self.where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_folder = QPushButton("Open folder")
        self.open_report = QPushButton("Open report")
        self.evaluate = QPushButton("Evaluate")
        self.evaluate.setToolTip("Compare the merged model with the three inputs (perplexity and sample answers).")
        self.save_version = QPushButton("Save this version…")
        self.save_version.setToolTip("Write the re-tuned model to a new folder.")
        self.save_version.setEnabled(False)
        for b in (self.open_folder, self.open_report, self.evaluate):
            b.setEnabled(False)
        self.open_folder.clicked.connect(lambda: self._open(self.out_dir))
        self.open_report.clicked.connect(lambda: self._open(self.report_path()))
        self.evaluate.clicked.connect(self.evaluate_requested)
        self.save_version.clicked.connect(self.save_requested)
        top = QHBoxLayout()
        top.addWidget(self.where, 1)
        for b in (self.open_folder, self.open_report, self.evaluate, self.save_version):
            top.addWidget(b)

        self.retune = RetuneCard()
        self.retune.retune_requested.connect(self.retune_requested)
        self.retune.setEnabled(False)
        self.inspector = MaskInspector()
        self.evaluation = EvaluationView()
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary.setContentsMargins(12, 12, 12, 12)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.inspector, "Masks")
        self.tabs.addTab(self.evaluation, "Evaluation")
        self.tabs.addTab(self.summary, "Run summary")

        filled = QWidget()
        fl = QVBoxLayout(filled)
        fl.setContentsMargins(0, 0, 0, 0)
        fl.addLayout(top)
        fl.addWidget(self.retune)
        fl.addWidget(self.tabs, 1)
        empty = QLabel("No results yet.\n\nPress Merge to create a merged model, or open an earlier output "
                       "folder with “Open run…”.")
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
        return self.out_dir / "reasonany" / "report.html" if self.out_dir else None

    def set_output(self, out_dir: Path | None, saved_current: bool = True) -> None:
        self.out_dir = Path(out_dir) if out_dir else None
        self.body.setCurrentIndex(1 if self.out_dir is not None else 0)
        if self.out_dir is None:
            self.where.set_message("", "info")
        elif saved_current:
            self.where.set_message(f"✓ Merged model saved in <b>{self.out_dir}</b>", "ok")
        else:
            self.where.set_message(f"The masks below were re-tuned and are <b>not saved yet</b> "
                                   f"(the last saved model is in {self.out_dir}). Press “Save this version…”.", "warn")
        for b in (self.open_folder, self.open_report, self.evaluate):
            b.setEnabled(self.out_dir is not None)
        self.save_version.setEnabled(not saved_current)

    def set_selection(self, selection) -> None:
        self.inspector.set_selection(selection)

    def set_report(self, report: dict | None) -> None:
        self.summary.setText(summary_html(report) if report else "")
        self.evaluation.show_result((report or {}).get("evaluation"))

    def set_busy(self, busy: bool) -> None:
        self.retune.apply_button.setEnabled(not busy)
        self.evaluate.setEnabled(not busy and self.out_dir is not None)

    def _open(self, path: Path | None) -> None:
        if path is not None and Path(path).exists():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))


def summary_html(report: dict) -> str:
    """The key facts of report.json in words."""
    cfg = report.get("config", {})
    rows = [("Method", METHOD_TITLES.get(report.get("method", ""), report.get("method", "")))]
    for role, m in (report.get("models") or {}).items():
        rows.append((f"{role.capitalize()} model", f"{m.get('spec')} ({m.get('architecture')}, {m.get('dtype')}, "
                                                     f"{human_bytes(m.get('size_bytes'))})"))
    for role, d in (report.get("data") or {}).items():
        rows.append((f"{role.capitalize()} data", f"{d.get('spec')}: {d.get('used')} samples, {d.get('tokens')} tokens"))
    for name in ("reasoning_ratio", "domain_ratio", "reasoning_scale", "domain_scale", "score", "scope", "samples",
                 "max_length", "intersect"):
        if name in cfg:
            v = cfg[name]
            v = f"{100 * v:.2f} %" if name.endswith("ratio") else v
            rows.append((LABELS.get(name, name), str(v)))
    t = report.get("timings_seconds") or {}
    if "total" in t:
        rows.append(("Time", human_seconds(t["total"])))
    rows.append(("Created", str(report.get("created", ""))))
    body = "".join(f"<tr><td style='color:#667085;padding-right:16px'>{k}</td><td>{v}</td></tr>" for k, v in rows)
    return f"<table cellspacing='4'>{body}</table>"

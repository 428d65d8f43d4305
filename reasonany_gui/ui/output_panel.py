"""Step 4: where and how the merged model is saved (folder, tokenizer source, precision, shard size)."""

from __future__ import annotations

import datetime as _dt
import os
import re
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget

from reasonany_gui.engine.settings.config import MergeConfig

from .setting_widgets import changed_signal, setting_value, setting_widget, show_setting
from .texts import LABELS, TOOLTIPS
from .widgets import Card, page_layout

#: this screen's settings (config.Setting.gui == "output"), in the order of its form: the folder first
PANEL_FIELDS = MergeConfig.fields_where(gui="output")
ROWS = tuple(dict.fromkeys(("out", "tokenizer_source", "dtype", "shard_size", *PANEL_FIELDS)))


def output_root() -> Path:
    """Where new merged models go by default: ~/Documents/ReasonAny (REASONANY_HOME/merged in tests)."""
    home = os.environ.get("REASONANY_HOME")
    if home:
        return Path(home) / "merged"
    import platformdirs

    return Path(platformdirs.user_documents_dir()) / "ReasonAny"


def suggest_output(reasoning: str, domain: str, root: Path | None = None) -> Path:
    """A fresh, readable folder name, e.g. .../R1-Distill+Med-20260105-1412 (never an existing folder)."""

    def short(spec: str) -> str:
        name = Path(str(spec).rstrip("/\\")).name or "model"
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", name)[:40]

    root = Path(root or output_root())
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M")
    candidate = root / f"{short(reasoning)}+{short(domain)}-{stamp}"
    i = 2
    while candidate.exists():
        candidate = root / f"{short(reasoning)}+{short(domain)}-{stamp}-{i}"
        i += 1
    return candidate


class OutputPanel(QWidget):
    """Step 4. Its settings (the fields whose Setting says gui="output") are generated like the Settings screen's;
    the output folder gets a Choose… button next to its field."""

    changed = Signal()
    merge_requested = Signal()
    #: the tokenizer source was changed (the data preview counts tokens with that model's tokenizer)
    tokenizer_source_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fields: dict[str, QWidget] = {name: setting_widget(name) for name in PANEL_FIELDS}
        out = self.fields["out"]
        assert isinstance(out, QLineEdit)  # a text setting's widget
        self.out = out
        self.out.setPlaceholderText("A new folder for the merged model")
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._browse)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out, 1)
        out_row.addWidget(browse)

        card = Card("Output")
        form = QFormLayout()
        for name in ROWS:
            label = QLabel(LABELS[name])
            label.setToolTip(TOOLTIPS[name])
            form.addRow(label, out_row if name == "out" else self.fields[name])
        card.body.addLayout(form)
        what = QLabel(
            "The folder will hold the merged model in the usual Hugging Face layout (it loads with "
            "transformers, vLLM and friends), a model card, and a report with the masks and every "
            "setting, so the merge can be repeated exactly."
        )
        what.setObjectName("muted")
        what.setWordWrap(True)
        card.body.addWidget(what)

        self.plan = Card("What Merge will do")
        self.plan_text = QLabel("")
        self.plan_text.setWordWrap(True)
        self.plan_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.plan.body.addWidget(self.plan_text)

        self.merge_button = QPushButton("Merge")
        self.merge_button.setObjectName("primary")
        self.merge_button.clicked.connect(self.merge_requested)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.merge_button)

        lay = page_layout(self, "4  Save", "Choose where the merged model goes, then press Merge.")
        lay.addWidget(card)
        lay.addWidget(self.plan)
        lay.addLayout(row)
        lay.addStretch(1)
        for box in self.fields.values():
            changed_signal(box).connect(lambda *_: self.changed.emit())
        changed_signal(self.fields["tokenizer_source"]).connect(
            lambda *_: self.tokenizer_source_changed.emit(str(self.values()["tokenizer_source"]))
        )
        self.load(MergeConfig())

    def set_summary(self, html: str) -> None:
        self.plan_text.setText(html)

    def set_busy(self, busy: bool) -> None:
        """While a job runs, Merge is off (one job at a time)."""
        self.merge_button.setEnabled(not busy)

    def _browse(self) -> None:
        start = self.out.text() or str(output_root())
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder for the merged model", str(Path(start).parent))
        if folder:
            self.out.setText(folder)

    def load(self, config: MergeConfig) -> None:
        """Show a config's output settings; a config without a folder keeps the folder shown (a suggestion)."""
        for name, box in self.fields.items():
            if name != "out" or config.out:
                show_setting(name, box, getattr(config, name))

    def values(self) -> dict[str, Any]:
        return {name: setting_value(name, box) for name, box in self.fields.items()}

    def ensure_out(self, reasoning: str, domain: str) -> str:
        """Fill in a fresh default folder when none is set (an existing one is the engine's to refuse)."""
        text = self.out.text().strip()
        if not text:
            text = str(suggest_output(reasoning, domain))
            self.out.setText(text)
        return text

    def next_suggestion(self, reasoning: str, domain: str) -> None:
        """After a save: offer a fresh folder so the next Merge never collides with the last one."""
        self.out.setText(str(suggest_output(reasoning, domain)))

"""Step 4: where and how the merged model is saved (folder, tokenizer source, precision, shard size)."""

from __future__ import annotations

import datetime as _dt
import os
import re
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget

from reasonany_gui.engine.config import OUT_DTYPES, ROLES, MergeConfig

from .texts import LABELS, ROLE_TITLES, TOOLTIPS
from .widgets import Card, page_layout

SHARD_SIZES = ("1GB", "2GB", "5GB", "10GB")
SAVE_DTYPE_TITLES = {"auto": "Same as the base model", "bfloat16": "bfloat16 (half size)",
                     "float16": "float16 (half size)", "float32": "float32 (full size)"}


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
    changed = Signal()
    merge_requested = Signal()
    #: the tokenizer source was changed (the data preview counts tokens with that model's tokenizer)
    tokenizer_source_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.out = QLineEdit()
        self.out.setPlaceholderText("A new folder for the merged model")
        self.out.setToolTip("The merged model is written here. The folder must not exist yet (or be empty).")
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._browse)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out, 1)
        out_row.addWidget(browse)
        self.tokenizer = QComboBox()
        for r in ROLES:
            self.tokenizer.addItem(ROLE_TITLES[r], r)
        self.tokenizer.setToolTip(TOOLTIPS["tokenizer_source"])
        self.dtype = QComboBox()
        for d in OUT_DTYPES:
            self.dtype.addItem(SAVE_DTYPE_TITLES[d], d)
        self.dtype.setToolTip(TOOLTIPS["dtype"])
        self.shard = QComboBox()
        self.shard.setEditable(True)
        self.shard.addItems(SHARD_SIZES)
        self.shard.setToolTip(TOOLTIPS["shard_size"])

        card = Card("Output")
        form = QFormLayout()
        form.addRow(QLabel("Folder"), out_row)
        form.addRow(QLabel(LABELS["tokenizer_source"]), self.tokenizer)
        form.addRow(QLabel(LABELS["dtype"]), self.dtype)
        form.addRow(QLabel(LABELS["shard_size"]), self.shard)
        card.body.addLayout(form)
        what = QLabel("The folder will hold the merged model in the usual Hugging Face layout (it loads with "
                      "transformers, vLLM and friends), a model card, and a report with the masks and every "
                      "setting, so the merge can be repeated exactly.")
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
        for sig in (self.out.textChanged, self.tokenizer.currentIndexChanged, self.dtype.currentIndexChanged,
                    self.shard.currentTextChanged):
            sig.connect(lambda *_: self.changed.emit())
        self.tokenizer.currentIndexChanged.connect(
            lambda *_: self.tokenizer_source_changed.emit(str(self.tokenizer.currentData())))
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
        if config.out:
            self.out.setText(str(config.out))
        self.tokenizer.setCurrentIndex(max(self.tokenizer.findData(config.tokenizer_source), 0))
        self.dtype.setCurrentIndex(max(self.dtype.findData(config.dtype), 0))
        self.shard.setCurrentText(str(config.shard_size))

    def values(self) -> dict:
        return {
            "out": self.out.text().strip() or None,
            "tokenizer_source": str(self.tokenizer.currentData()),
            "dtype": str(self.dtype.currentData()),
            "shard_size": self.shard.currentText().strip(),
        }

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

"""Step 2: the calibration data for each role: a built-in set or the user's own file, with a preview.

The preview shows the first samples and how many tokens each has (with the tokenizer the merged model
will use), so a user sees at once whether a file was read the way they meant.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from reasonany_gui.engine.core.errors import InputError
from reasonany_gui.engine.data import calibration, demo
from reasonany_gui.engine.data.presets import PRESETS

from .texts import TOOLTIPS
from .widgets import Card, page_layout

log = logging.getLogger(__name__)
FILE_FILTER = "Calibration data (*.jsonl *.json *.parquet *.csv *.txt);;All files (*)"
CHOOSE_FILE = "__choose__"
PREVIEW_ROWS = 5


def presets_for(role: str) -> list[Any]:
    """Built-in sets for a role: the reasoning set for reasoning; safety, biomedicine, finance for domain."""
    return [p for p in PRESETS.values() if getattr(p, "role", None) == role]


class DataPicker(Card):
    """One role's data: a combo of presets, recent files and 'Choose a file…', and a preview table."""

    changed = Signal(str, str)  # role, spec

    def __init__(self, role: str, parent: QWidget | None = None) -> None:
        super().__init__("Reasoning data" if role == "reasoning" else "Domain data", parent)
        self.role = role
        hint = QLabel(TOOLTIPS[f"{role}_data"])
        hint.setObjectName("muted")
        hint.setWordWrap(True)
        self.combo = QComboBox()
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(20)  # a long file path is elided, it does not widen the page
        self.combo.setToolTip(TOOLTIPS[f"{role}_data"])
        self.combo.activated.connect(self._on_activated)
        self.description = QLabel("")
        self.description.setObjectName("muted")
        self.description.setWordWrap(True)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["#", "Sample (start)", "Tokens"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setMinimumHeight(PREVIEW_ROWS * 30 + 34)  # every preview row visible, header included
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setObjectName("muted")
        row = QHBoxLayout()
        row.addWidget(self.combo, 1)
        browse = QPushButton("Choose file…")
        browse.clicked.connect(self.browse)
        row.addWidget(browse)
        self.body.addWidget(hint)
        self.body.addLayout(row)
        self.body.addWidget(self.description)
        self.body.addWidget(self.table)
        self.body.addWidget(self.status)
        self._spec = ""
        self._recent: list[str] = []
        self.preview_rows: list[tuple[str, int | None]] = []
        self.preview_error: str | None = None
        self._fill()

    @property
    def spec(self) -> str:
        return self._spec

    def set_recent(self, files: list[str]) -> None:
        self._recent = [f for f in files if f]
        self._fill()

    def _fill(self) -> None:
        self.combo.blockSignals(True)
        self.combo.clear()
        for p in presets_for(self.role):
            self.combo.addItem(f"Built-in: {p.title}", f"builtin:{p.name}")
        for f in self._recent:
            self.combo.addItem(f"File: {Path(f).name}  ({f})", f)
        if self._spec and self.combo.findData(self._spec) < 0:
            self.combo.addItem(f"File: {Path(self._spec).name}  ({self._spec})", self._spec)
        self.combo.addItem("Choose a file…", CHOOSE_FILE)
        i = self.combo.findData(self._spec)
        self.combo.setCurrentIndex(max(i, 0) if self._spec else -1)
        self.combo.blockSignals(False)

    def set_spec(self, spec: str) -> None:
        self._spec = str(spec)
        self._fill()
        self._describe()
        self.changed.emit(self.role, self._spec)

    def browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, f"Choose the {self.role} data file", "", FILE_FILTER)
        if path:
            self.set_spec(path)
        else:
            self._fill()

    def _on_activated(self, index: int) -> None:
        data = self.combo.itemData(index)
        if data == CHOOSE_FILE:
            self.browse()
        elif data and data != self._spec:
            self.set_spec(str(data))

    def _describe(self) -> None:
        name = self._spec[len("builtin:") :] if self._spec.startswith("builtin:") else None
        preset = PRESETS.get(name) if name else None
        if preset is not None:
            text = preset.description
        elif Path(self._spec).parent == demo.shipped_demo_dir() / "data":
            text = "The demo models' own data (the kind of text each expert was trained on)."
        else:
            text = "Your own file."
        self.description.setText(text)

    def show_preview(self, tokenizer: Any = None, max_length: int | None = None) -> None:
        """Read the first samples with the engine's reader (the same one the run uses)."""
        self.table.setRowCount(0)
        self.preview_rows, self.preview_error = [], None
        if not self._spec:
            self.status.setText("No data chosen.")
            return
        try:
            self.preview_rows = list(calibration.preview(self._spec, tokenizer=tokenizer, n=PREVIEW_ROWS))
        except InputError as exc:
            self.preview_error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a strange file must not break the window
            log.exception("preview of %s failed", self._spec)
            self.preview_error = f"This file could not be read: {exc}"
        if self.preview_error:
            self.status.setText(f"⚠ {self.preview_error}")
            self.status.setProperty("error", True)
        else:
            text = f"First {len(self.preview_rows)} samples shown"
            if tokenizer is None:
                text += " (token counts appear once a model is chosen)."
            elif max_length:
                long = sum(1 for _, n in self.preview_rows if n is not None and n > max_length)
                text += (
                    f"; {long} of them are longer than the {max_length}-token limit (Settings) and will be cut."
                    if long
                    else f"; all fit in the {max_length}-token limit."
                )
            self.status.setText(text)
            self.status.setProperty("error", False)
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)
        self.table.setRowCount(len(self.preview_rows))
        for r, (text, tokens) in enumerate(self.preview_rows):
            one_line = " ".join(str(text).split())
            num = QTableWidgetItem(str(r + 1))
            sample = QTableWidgetItem(one_line[:300])
            sample.setToolTip(str(text)[:2000])
            count = QTableWidgetItem("–" if tokens is None else f"{tokens:,}")
            count.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            for c, item in enumerate((num, sample, count)):
                self.table.setItem(r, c, item)


class DataPanel(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = page_layout(
            self,
            "2  Choose the calibration data",
            "A few dozen example texts per skill are enough: they show the app which weights carry the "
            "reasoning skill and which carry your domain. Use a built-in set or your own file "
            "(.jsonl, .json, .csv, .parquet or .txt).",
        )
        self.pickers = {role: DataPicker(role) for role in ("reasoning", "domain")}
        for p in self.pickers.values():
            p.changed.connect(self._on_picker_changed)
            lay.addWidget(p, 1)
        self._tokenizer_source: str | None = None
        self._tokenizer = None
        self._previewed: dict[str, tuple[Any, ...]] = {}
        self.max_length: int | None = None

    def _on_picker_changed(self, *_args: object) -> None:
        """A newly chosen file is previewed at once (an unreadable one shows its error at once)."""
        if self.isVisible():
            self.refresh_previews()
        self.changed.emit()

    def set_specs(self, reasoning: str, domain: str) -> None:
        self.pickers["reasoning"].set_spec(reasoning)
        self.pickers["domain"].set_spec(domain)

    def set_recent(self, role: str, files: list[str]) -> None:
        """The role's recently used files, offered in its combo."""
        self.pickers[role].set_recent(files)

    def own_files(self) -> dict[str, str]:
        """{role: file} for the user's own data files (not the built-in sets): what is worth remembering."""
        return {role: p.spec for role, p in self.pickers.items() if p.spec and not p.spec.startswith("builtin:")}

    def set_max_length(self, max_length: int | None) -> None:
        """The token limit the preview marks (the Settings screen's max length)."""
        self.max_length = max_length

    def specs(self) -> dict[str, str]:
        return {f"{role}_data": p.spec for role, p in self.pickers.items()}

    def set_tokenizer_source(self, model_path: str | None) -> None:
        """The model whose tokenizer counts the preview's tokens (the merged model's tokenizer source)."""
        if model_path != self._tokenizer_source:
            self._tokenizer_source = model_path
            self._tokenizer = None

    def tokenizer(self) -> Any:
        if self._tokenizer is None and self._tokenizer_source:
            try:
                self._tokenizer = calibration.load_tokenizer(self._tokenizer_source)  # runs no folder code
            except Exception as exc:  # noqa: BLE001 - no token counts is acceptable, a crash is not
                log.info("no tokenizer for the preview from %s: %s", self._tokenizer_source, exc)
                self._tokenizer = None
        return self._tokenizer

    def refresh_previews(self, force: bool = False) -> None:
        """Preview each picker whose data or tokenizer changed since it was last shown."""
        tok = self.tokenizer()
        for role, p in self.pickers.items():
            key = (p.spec, self._tokenizer_source if tok is not None else None, self.max_length)
            if force or self._previewed.get(role) != key:
                p.show_preview(tok, self.max_length)
                self._previewed[role] = key

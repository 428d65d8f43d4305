"""Step 1: pick the base, reasoning and domain models, see what each is and whether they fit together.

Describing a model reads only its config and the safetensors headers (milliseconds, no weights), so it
runs right when a model is picked and a mismatch is explained before anything heavy starts.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QWidget

from reasonany_gui.engine.core.errors import InputError
from reasonany_gui.engine.io import checkpoints, model_info
from reasonany_gui.engine.io.model_info import ModelInfo
from reasonany_gui.engine.io.resolve import APP_FETCH_HINT, is_repo_id, resolve_model
from reasonany_gui.engine.io.writer import human_bytes
from reasonany_gui.engine.settings.choices import ROLE_TITLES
from reasonany_gui.engine.settings.config import ROLES

if TYPE_CHECKING:
    from .download_dialog import DownloadDialog

from .texts import TOOLTIPS, human_count
from .widgets import Banner, Card, page_layout

log = logging.getLogger(__name__)


def downloadable(spec: str) -> bool:
    """A Hub repo id (owner/name, by the engine's one rule) that is not a folder on disk: one the Download… button
    can fetch."""
    text = spec.strip()
    return is_repo_id(text) and not Path(text).expanduser().exists()


def describe_text(info: ModelInfo) -> str:
    tied = ", tied embeddings" if info.tied_embeddings else ""
    return (
        f"<b>{info.architecture}</b> · {human_count(info.num_params)} parameters · {info.dtype} · "
        f"{human_bytes(info.size_bytes)} on disk · {info.num_layers} layers, hidden size {info.hidden_size}, "
        f"vocabulary {info.vocab_size:,}{tied}<br><span style='color:#667085'>{info.path}</span>"
    )


class ModelPicker(Card):
    """A folder or a repo id for one role, with the models in the local Hugging Face cache offered."""

    changed = Signal(str, str)  # role, spec
    download_requested = Signal(str, str)  # role, repo id

    def __init__(self, role: str, parent: QWidget | None = None) -> None:
        super().__init__(ROLE_TITLES[role], parent)
        self.role = role
        hint = QLabel(TOOLTIPS[role])
        hint.setObjectName("muted")
        hint.setWordWrap(True)
        self.combo = QComboBox()
        self.combo.setEditable(True)
        self.combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        line = self.combo.lineEdit()
        assert line is not None  # the combo is editable
        line.setPlaceholderText("A model folder, or a Hugging Face repo id such as Qwen/Qwen2.5-7B")
        self.combo.setToolTip("Type a folder or repo id and press Enter, or pick one from the list.")
        self.combo.setMinimumContentsLength(24)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.activated.connect(lambda _i: self._commit())
        line.editingFinished.connect(self._commit)
        browse = QPushButton("Choose folder…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.combo, 1)
        row.addWidget(browse)
        self.download_button = QPushButton("Download…")
        self.download_button.setToolTip(
            "Download this model from the Hugging Face Hub into the local cache (the size is shown first)."
        )
        self.download_button.clicked.connect(lambda: self.download_requested.emit(self.role, self.spec))
        self.download_button.setVisible(False)
        row.addWidget(self.download_button)
        self.info = QLabel("Not chosen yet.")
        self.info.setObjectName("modelInfo")
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.body.addWidget(hint)
        self.body.addLayout(row)
        self.body.addWidget(self.info)
        self.model_info: ModelInfo | None = None
        self.error: str | None = None
        self._spec = ""

    @property
    def spec(self) -> str:
        return self._spec

    def set_choices(self, items: list[str]) -> None:
        text = self.combo.currentText()
        self.combo.blockSignals(True)
        self.combo.clear()
        for item in dict.fromkeys(i for i in items if i):
            self.combo.addItem(item)
        self.combo.setEditText(text)
        self.combo.blockSignals(False)

    def set_spec(self, spec: str) -> None:
        """Choose a model programmatically (restored settings, demo, tests)."""
        self.combo.setEditText(spec)
        self._commit()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, f"Choose the {self.role} model folder", self._spec or "")
        if folder:
            self.set_spec(folder)

    def _commit(self) -> None:
        spec = self.combo.currentText().strip()
        if spec == self._spec and (self.model_info is not None or self.error is not None):
            return
        self._spec = spec
        self.describe()
        self.changed.emit(self.role, spec)

    def redescribe(self) -> None:
        """Read the model again (after a download) and tell the panel."""
        self.describe()
        self.changed.emit(self.role, self._spec)

    def describe(self) -> None:
        self.model_info, self.error = None, None
        if not self._spec:
            self.info.setText("Not chosen yet.")
            self.info.setProperty("error", False)
        else:
            try:
                # resolved here first so a repo id missing from the cache names the Download… button, not the CLI
                local = resolve_model(self._spec, fetch_hint=APP_FETCH_HINT)
                self.model_info = model_info.describe_model(str(local))
            except InputError as exc:
                self.error = str(exc)
            except Exception as exc:  # noqa: BLE001 - a broken folder must not break the window
                log.exception("describing %s failed", self._spec)
                self.error = f"This folder could not be read as a model: {exc}"
            if self.model_info is not None:
                self.info.setText(describe_text(self.model_info))
            else:
                self.info.setText(f"⚠ {self.error}")
            self.info.setProperty("error", self.error is not None)
        self.download_button.setVisible(self.error is not None and downloadable(self._spec))
        self.info.style().unpolish(self.info)
        self.info.style().polish(self.info)


class ModelsPanel(QWidget):
    """The three pickers and the verdict on whether they fit together."""

    changed = Signal()
    demo_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = page_layout(
            self,
            "1  Choose the three models",
            "The reasoning and the domain model must both be fine-tuned from the base model. "
            "Pick a folder on disk or a model from your Hugging Face cache.",
        )
        self.pickers = {role: ModelPicker(role) for role in ROLES}
        for p in self.pickers.values():
            p.changed.connect(self._on_changed)
            p.download_requested.connect(self.open_download)
            lay.addWidget(p)
        self.verdict = Banner()
        lay.addWidget(self.verdict)
        row = QHBoxLayout()
        demo = QPushButton("Use the built-in demo models")
        demo.setToolTip("Three tiny models that show every screen in about a minute, even without a GPU.")
        demo.clicked.connect(self.demo_requested)
        self.refresh_button = QPushButton("Rescan Hugging Face cache")
        self.refresh_button.clicked.connect(self.refresh_cache)
        row.addWidget(demo)
        row.addWidget(self.refresh_button)
        row.addStretch(1)
        lay.addLayout(row)
        lay.addStretch(1)
        self._recent: list[str] = []
        self._cached: list[str] = []
        self.download_dialog: DownloadDialog | None = None
        self.update_verdict()

    # ------------------------------------------------------------------ download
    def open_download(self, role: str, repo_id: str) -> DownloadDialog:
        """The download dialog for a repo id not in the cache; on success the model is picked for `role`."""
        from .download_dialog import DownloadDialog

        dlg = DownloadDialog(repo_id, self)
        dlg.downloaded.connect(lambda rid, _path, role=role: self._downloaded(role, rid))
        self.download_dialog = dlg
        dlg.open()
        dlg.check()
        return dlg

    def _downloaded(self, role: str, repo_id: str) -> None:
        self.refresh_cache()
        picker = self.pickers[role]
        if picker.spec == repo_id:
            picker.redescribe()
        else:
            picker.set_spec(repo_id)

    # ------------------------------------------------------------------ choices
    def set_recent(self, recent: list[str]) -> None:
        self._recent = list(recent)
        self._fill()

    def refresh_cache(self) -> None:
        self._cached = checkpoints.cached_repo_ids()
        self._fill()

    def _fill(self) -> None:
        for p in self.pickers.values():
            p.set_choices(self._recent + self._cached)

    def set_specs(self, specs: dict[str, str]) -> None:
        for role, spec in specs.items():
            if role in self.pickers:
                self.pickers[role].set_spec(str(spec))

    def specs(self) -> dict[str, str]:
        return {role: p.spec for role, p in self.pickers.items()}

    @property
    def infos(self) -> dict[str, ModelInfo]:
        return {r: p.model_info for r, p in self.pickers.items() if p.model_info is not None}

    def readable_spec(self, role: str) -> str | None:
        """The role's model when it was read without error (its tokenizer can serve the data preview), else None."""
        picker = self.pickers.get(role)
        return picker.spec if picker is not None and picker.model_info is not None else None

    # ------------------------------------------------------------------ verdict
    def problems(self) -> list[str]:
        """Everything that stops a merge, in plain words ([] when the three fit together)."""
        out = []
        for role, p in self.pickers.items():
            if not p.spec:
                out.append(f"No {role} model chosen yet.")
            elif p.error:
                out.append(f"{ROLE_TITLES[role]}: {p.error}")
        infos = self.infos
        if len(infos) == 3:
            out += model_info.trio_problems(infos)
        return out

    def update_verdict(self) -> None:
        problems = self.problems()
        if not problems:
            self.verdict.set_message("✓ These three models fit together.", "ok")
        elif all(p.startswith("No ") for p in problems):
            self.verdict.set_message("Choose all three models to continue.", "info")
        else:
            self.verdict.set_message("These models cannot be merged yet:\n• " + "\n• ".join(problems), "error")

    def _on_changed(self, _role: str, _spec: str) -> None:
        self.update_verdict()
        self.changed.emit()

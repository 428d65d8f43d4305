"""Export the merged model to one GGUF file (llama.cpp, Ollama, LM Studio): pick a type, see the size, Export with
progress and Cancel, then read how to load it.

Why its own JobRunner (as the download dialog): the export reads only the finished output folder, so it needs
nothing from the window's job queue and can run while the user looks at the results. The engine does the work
(engine/workflows/export.py); this dialog only shows it.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from reasonany_gui.engine.core.errors import CancelledError, ReasonAnyError
from reasonany_gui.engine.core.events import CancelToken, Listener, Progress
from reasonany_gui.engine.io.writer import human_bytes
from reasonany_gui.engine.output import gguf
from reasonany_gui.engine.workflows.export import EXPORT_STAGE, Exported, export_gguf

from .dialogs import ErrorReporter
from .worker import JobFn, JobRunner


def export_job(out: Path, type_name: str) -> JobFn:
    def run(listener: Listener, cancel: CancelToken) -> Exported:
        return export_gguf(out, type_name, listener=listener, cancel=cancel)

    return run


class ExportDialog(QDialog):
    """Type → Export (progress, Cancel) → where the file is and how to load it into Ollama or LM Studio."""

    def __init__(self, out: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.out = Path(out)
        self.setWindowTitle("Export for llama.cpp, Ollama and LM Studio (GGUF)")
        self.exported: Exported | None = None
        self.runner = JobRunner(self)
        self.errors = ErrorReporter(self)
        lay = QVBoxLayout(self)
        intro = QLabel(
            "Writes the merged model as one <b>.gguf</b> file in the output folder, with an Ollama "
            "<b>Modelfile</b> next to it. The safetensors folder stays as it is."
        )
        intro.setWordWrap(True)
        lay.addWidget(intro)
        form = QFormLayout()
        self.type_box = QComboBox()
        for t in gguf.TYPES:
            self.type_box.addItem(f"{t.upper()}: {gguf.TYPE_HELP[t]}", t)
        self.type_box.setCurrentIndex(gguf.TYPES.index(gguf.DEFAULT_TYPE))
        self.type_box.currentIndexChanged.connect(self._update_size)
        form.addRow("Weight type", self.type_box)
        self.file_label = QLabel()
        self.file_label.setWordWrap(True)
        form.addRow("File", self.file_label)
        lay.addLayout(form)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setVisible(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)  # commands to copy
        lay.addWidget(self.progress)
        lay.addWidget(self.status, 1)
        self.buttons = QDialogButtonBox()
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.export_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel_or_close)
        lay.addWidget(self.buttons)
        self.runner.engine_event.connect(self._on_event)
        self.runner.finished.connect(self._on_finished)
        self.runner.failed.connect(self._on_failed)
        self.resize(620, 300)
        self._update_size()

    @property
    def type_name(self) -> str:
        return str(self.type_box.currentData())

    def _update_size(self) -> None:
        """The file's name and size from the tensor headers (no weight is read); a refusal is shown here, at once."""
        try:
            src = gguf.open_source(self.out, self.type_name)
        except ReasonAnyError as exc:
            self.file_label.setText(f"⚠ {exc}")
            self.export_button.setEnabled(False)
            return
        if src.ckpt is not None:
            src.ckpt.close()
        self.file_label.setText(f"{gguf.file_name(self.out, self.type_name)}, about {human_bytes(src.total_bytes)}")
        self.export_button.setEnabled(not self.runner.busy)

    def start(self) -> None:
        if self.runner.busy:
            return
        self.export_button.setEnabled(False)
        self.type_box.setEnabled(False)
        self.progress.setVisible(True)
        self.progress.setValue(0)
        self.status.setText("Starting…")
        self.runner.start("export-gguf", export_job(self.out, self.type_name))

    def cancel_or_close(self) -> None:
        if self.runner.busy:
            self.status.setText("Cancelling… no half-written file is left.")
            self.runner.cancel()
        else:
            self.reject()

    def _on_event(self, ev: object) -> None:
        if isinstance(ev, Progress) and ev.stage == EXPORT_STAGE:
            self.progress.setValue(int(1000 * ev.overall))
            self.status.setText(f"{100 * ev.overall:.0f} % · {ev.message}")

    def _on_finished(self, _name: str, result: object) -> None:
        assert isinstance(result, Exported)
        self.exported = result
        self.progress.setValue(1000)
        self.status.setText(f"Wrote {result.gguf.name} and {result.modelfile.name}.\n\n{result.how_to_run()}")
        self.type_box.setEnabled(True)
        self.export_button.setEnabled(True)
        self.cancel_button.setText("Close")

    def _on_failed(self, _name: str, exc: BaseException) -> None:
        self.type_box.setEnabled(True)
        self.export_button.setEnabled(True)
        self.progress.setVisible(False)
        if isinstance(exc, CancelledError):
            self.status.setText(str(exc))
            return
        self.status.setText("")
        self.errors.show_error(exc, self.runner.last_traceback)

    def done(self, r: int) -> None:  # noqa: D401 - Qt override: never leave an export running
        self.runner.shutdown()
        super().done(r)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.runner.shutdown()
        super().closeEvent(event)


def open_export_dialog(out: Path, parent: QWidget | None = None) -> ExportDialog:
    """For the Results and Save screens: show the export dialog for a finished output folder (non-modal)."""
    dlg = ExportDialog(out, parent)
    dlg.show()
    return dlg

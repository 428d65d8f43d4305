"""Export the merged model to one GGUF file (llama.cpp, Ollama, LM Studio): pick a type, see the size, Export with
progress and Cancel, then read how to load it.

The engine does the work (engine/workflows/export.py); this dialog only shows it (its own job: job_dialog.py).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from reasonany_gui.engine.core.errors import CancelledError, ReasonAnyError
from reasonany_gui.engine.core.events import CancelToken, Listener
from reasonany_gui.engine.io.writer import human_bytes
from reasonany_gui.engine.output import gguf
from reasonany_gui.engine.workflows.export import EXPORT_STAGE, Exported, export_gguf

from .job_dialog import JobDialog
from .worker import JobFn


def export_job(out: Path, type_name: str) -> JobFn:
    def run(listener: Listener, cancel: CancelToken) -> Exported:
        return export_gguf(out, type_name, listener=listener, cancel=cancel)

    return run


class ExportDialog(JobDialog):
    """Type → Export (progress, Cancel) → where the file is and how to load it into Ollama or LM Studio."""

    stage = EXPORT_STAGE
    cancelling = "Cancelling… no half-written file is left."

    def __init__(self, out: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.out = Path(out)
        self.setWindowTitle("Export for llama.cpp, Ollama and LM Studio (GGUF)")
        self.exported: Exported | None = None
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
        self.export_button = self.add_job_footer(lay, "Export", self.start, selectable=True, stretch=1)
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
        self.begin("export-gguf", export_job(self.out, self.type_name), "Starting…")

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


def open_export_dialog(out: Path, parent: QWidget | None = None) -> ExportDialog:
    """For the Results and Save screens: show the export dialog for a finished output folder (non-modal)."""
    dlg = ExportDialog(out, parent)
    dlg.show()
    return dlg

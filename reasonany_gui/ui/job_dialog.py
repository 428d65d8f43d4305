"""A dialog that runs one engine job of its own: the base of the Download, Export and Publish dialogs.

Why its own JobRunner: each of these jobs touches only the HF cache or a finished output folder, so it needs
nothing from the window's job queue and can run while the user looks at the results. What they share lives here:
a progress bar and status line moved by one stage's Progress events, an action button and Cancel (which becomes
Close), and no job left running when the dialog closes.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from reasonany_gui.engine.core.events import Progress

from .dialogs import ErrorReporter
from .worker import JobFn, JobRunner


class JobDialog(QDialog):
    """Subclasses set `stage` and `cancelling`, call `add_job_footer`, and handle `_on_finished`/`_on_failed`."""

    #: the engine stage whose Progress events move the bar
    stage = ""
    #: what the status line says while a cancelled job stops
    cancelling = "Cancelling…"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner = JobRunner(self)
        self.errors = ErrorReporter(self)
        self.runner.engine_event.connect(self._on_event)
        self.runner.finished.connect(self._on_finished)
        self.runner.failed.connect(self._on_failed)

    def add_job_footer(
        self, lay: QVBoxLayout, action: str, on_action: Callable[[], None], selectable: bool = False, stretch: int = 0
    ) -> QPushButton:
        """Progress bar, status line and the buttons at the bottom of `lay`; returns the action button."""
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setVisible(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        if selectable:  # commands and paths the user may copy
            self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.progress)
        lay.addWidget(self.status, stretch)
        self.buttons = QDialogButtonBox()
        self.action_button = self.buttons.addButton(action, QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.action_button.clicked.connect(on_action)
        self.cancel_button.clicked.connect(self.cancel_or_close)
        lay.addWidget(self.buttons)
        return self.action_button

    def begin(self, name: str, job: JobFn, status: str) -> None:
        """Show the bar at 0 and start `job` on this dialog's runner."""
        self.progress.setVisible(True)
        self.progress.setValue(0)
        self.status.setText(status)
        self.runner.start(name, job)

    def cancel_or_close(self) -> None:
        if self.runner.busy:
            self.status.setText(self.cancelling)
            self.runner.cancel()
        else:
            self.reject()

    def _on_event(self, ev: object) -> None:
        if isinstance(ev, Progress) and ev.stage == self.stage:
            self.progress.setValue(int(1000 * ev.overall))
            self.status.setText(f"{100 * ev.overall:.0f} % · {ev.message}")

    def _on_finished(self, name: str, result: object) -> None:
        raise NotImplementedError

    def _on_failed(self, name: str, exc: BaseException) -> None:
        raise NotImplementedError

    def done(self, r: int) -> None:  # noqa: D401 - Qt override: never leave a job running
        self.runner.shutdown()
        super().done(r)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.runner.shutdown()
        super().closeEvent(event)

"""The parts every piece of the main window uses: its screens, the session, and how a job starts and ends.

Why a base of its own: the window's behaviour lives in a few mixins (result_actions, merge_actions, choices,
housekeeping), each about one kind of user action; they all stand on this one class, which names the parts
(so each mixin is type-checked on its own) and runs every job the same way.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QLabel,
    QListWidget,
    QMainWindow,
    QMenu,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QToolButton,
    QWidget,
)

from reasonany_gui.engine.core import paths
from reasonany_gui.engine.core.errors import CancelledError
from reasonany_gui.engine.settings.config import MergeConfig
from reasonany_gui.engine.workflows.session import Session

from .data_panel import DataPanel
from .demo_preset import DemoPreset
from .dialogs import ErrorReporter
from .models_panel import ModelsPanel
from .output_panel import OutputPanel
from .results.panel import ResultsPanel
from .run_panel import RunPanel
from .settings_panel import SettingsPanel
from .settings_store import SettingsStore
from .worker import JobFn, JobRunner, OnError, OnResult

log = logging.getLogger(__name__)
STEPS = (
    ("models", "Models"),
    ("data", "Data"),
    ("settings", "Settings"),
    ("save", "Save"),
    ("run", "Run"),
    ("results", "Results"),
)
#: jobs shown on the Run screen (long); the others report in the status bar
RUN_SCREEN_JOBS = ("merge", "save")
#: the status bar while a job runs
BUSY_TEXT = {
    "merge": "Merging…",
    "save": "Saving…",
    "retune": "Updating the masks…",
    "evaluate": "Evaluating…",
    "open": "Opening the run…",
    "tune": "Finding a good setting…",
    "ask": "The merge, Task Arithmetic and the three inputs are answering your question…",
}


class WindowBase(QMainWindow):
    """The window's parts (set up by MainWindow.__init__), navigation, the settings the screens make up, and jobs."""

    session: Session
    store: SettingsStore
    runner: JobRunner
    errors: ErrorReporter
    models: ModelsPanel
    data: DataPanel
    settings: SettingsPanel
    output: OutputPanel
    run_panel: RunPanel
    results: ResultsPanel
    pages: dict[str, QWidget]
    nav: QListWidget
    stack: QStackedWidget
    merge_button: QPushButton
    open_run_button: QPushButton
    status_text: QLabel
    status_progress: QProgressBar
    status_cancel: QToolButton
    recent_menu: QMenu
    #: stored settings without a widget keep their stored value
    hidden_config: MergeConfig
    #: the demo's preset while the demo trio is selected (choices.ScreenChoices.leave_demo_preset)
    demo_preset: DemoPreset

    # ------------------------------------------------------------------ navigation
    def go(self, index_or_key: int | str) -> None:
        index = index_or_key if isinstance(index_or_key, int) else [k for k, _ in STEPS].index(index_or_key)
        self.nav.setCurrentRow(index)

    def scroll_to_top(self, key: str) -> None:
        """Scroll a screen back to its top (each screen sits in its own scroll area, see widgets.scroll_page)."""
        area = self.stack.widget([k for k, _ in STEPS].index(key))
        if isinstance(area, QAbstractScrollArea):
            area.verticalScrollBar().setValue(0)

    def open_path(self, what: str, path: Path) -> bool:
        """Open a folder or file with the desktop's default program; where there is none (QDesktopServices says
        so, e.g. "Unable to detect a launcher"), or the path is gone, say so and offer the path to copy."""
        if not path.exists():
            self.errors.info(f"The {what} is gone", f"The {what} is no longer there:\n{path}")
            return False
        if QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
            return True
        self.errors.show_path(what, path)
        return False

    def current_page(self) -> QWidget:
        """The screen shown now (the stack holds each screen inside its scroll area)."""
        return list(self.pages.values())[self.stack.currentIndex()]

    # ------------------------------------------------------------------ the screens' settings
    def build_config(self) -> MergeConfig:
        """Everything on the screens, on top of the stored settings that have no widget."""
        values = {**self.models.specs(), **self.data.specs(), **self.settings.values(), **self.output.values()}
        return self.hidden_config.replace(**values)

    def save_settings(self) -> None:
        try:
            self.store.save_config(self.build_config())
        except Exception as exc:  # noqa: BLE001
            log.warning("saving settings failed: %s", exc)
        self.store.save_tune_preferences(self.settings.tune_preferences())
        self.store.save_geometry(self.saveGeometry())
        self.store.sync()

    # ------------------------------------------------------------------ jobs
    def start_job(self, name: str, fn: JobFn, on_result: OnResult, on_error: OnError | None = None) -> None:
        """Run `fn` on the worker; then `on_result(result)`, or `on_error(exc)` and the failure shown to the user.

        Why the handlers are given here: the action that starts a job knows what its result means; both run
        in the GUI thread after the window is no longer busy, so they may start the next job."""

        def finished(result: object) -> None:
            self._set_busy(False, name)
            on_result(result)

        def failed(exc: BaseException) -> None:
            self._set_busy(False, name)
            if on_error is not None:
                on_error(exc)
            self._report_failure(name, exc)

        self._set_busy(True, name)
        self.runner.start(name, fn, finished, failed)

    def _report_failure(self, name: str, exc: BaseException) -> None:
        """What every failed job shows: the Run screen's ending, the status bar, and (unless cancelled) the dialog."""
        cancelled = isinstance(exc, CancelledError)
        if name in RUN_SCREEN_JOBS:
            self.run_panel.finish(
                "cancelled" if cancelled else "failed", str(exc) if cancelled else f"{exc}\nDetails: {paths.log_file()}"
            )
        if cancelled:
            self.status_text.setText(str(exc))
            return
        self.status_text.setText(f"{name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        self.errors.show_error(exc, self.runner.last_traceback)

    def _set_busy(self, busy: bool, name: str) -> None:
        self.merge_button.setEnabled(not busy)
        self.output.set_busy(busy)
        self.open_run_button.setEnabled(not busy)
        self.results.set_busy(busy, name)
        # progress and Cancel in the status bar for every job: it never scrolls away, whatever screen is shown
        self.status_progress.setVisible(busy)
        self.status_cancel.setVisible(busy)
        self.status_progress.setValue(0)
        if busy:
            self.status_text.setText(BUSY_TEXT.get(name, "Working…"))
        if busy and name in RUN_SCREEN_JOBS:
            self.go("run")
            self.scroll_to_top("run")  # the Run screen's own bar and Cancel are at its top

    def on_status_event(self, ev: object) -> None:
        """The status bar's progress follows the running job's overall progress (short jobs only)."""
        overall = getattr(ev, "overall", None)
        if overall is not None and self.status_progress.isVisible():
            self.status_progress.setValue(int(max(0.0, min(1.0, float(overall))) * 1000))

"""The main window: a sidebar of steps, one screen per step, the menus, and the worker that runs the engine.

It only wires: the screens show and collect, the session (engine.workflows.session.Session) holds what this
session knows, and the actions live in mixins, one module per kind: result_actions (re-tune, search, evaluate,
ask, open a run), merge_actions (merge, save a version), choices (the screens' settings and the demo) and
housekeeping (leftover folders, the score cache, About), all on window_base.WindowBase (the parts, and how a job
starts and ends). Each action says, when it starts its job, which method handles the result and which the
failure, so there is no dispatch on job names and no state shared with a running job.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QCloseEvent, QKeySequence
from PySide6.QtWidgets import QPushButton

from reasonany_gui.engine.core import paths
from reasonany_gui.engine.workflows.session import Session

from .choices import ScreenChoices
from .data_panel import DataPanel
from .demo_preset import DemoPreset
from .dialogs import ErrorReporter
from .export_dialog import ExportDialog, open_export_dialog
from .housekeeping import Housekeeping
from .merge_actions import MergeActions
from .models_panel import ModelsPanel
from .output_panel import OutputPanel
from .publish_dialog import PublishDialog, open_publish_dialog
from .results.panel import ResultsPanel
from .run_panel import RunPanel
from .settings_panel import SettingsPanel
from .settings_store import SettingsStore
from .widgets import guard_wheel, scroll_page
from .window_base import STEPS
from .window_shell import Shell, add_action
from .worker import JobRunner


class MainWindow(MergeActions, ScreenChoices, Housekeeping):
    """The steps, the menus and the job runner, wired to the actions (see the module's docstring)."""

    back_button: QPushButton
    next_button: QPushButton

    def __init__(self, store: SettingsStore | None = None, demo_on_first_start: bool = True) -> None:
        super().__init__()
        self.setWindowTitle("ReasonAny — merge reasoning and domain models")
        self.session = Session()
        self.demo_preset = DemoPreset()
        self.store = store or SettingsStore()
        self.runner = JobRunner(self)
        self.errors = ErrorReporter(self)
        self.hidden_config = self.store.load_config()
        self._demo_on_first_start = demo_on_first_start

        self.models = ModelsPanel()
        self.data = DataPanel()
        self.settings = SettingsPanel()
        self.output = OutputPanel()
        self.run_panel = RunPanel()
        self.results = ResultsPanel()
        self.pages = {
            "models": self.models,
            "data": self.data,
            "settings": self.settings,
            "save": self.output,
            "run": self.run_panel,
            "results": self.results,
        }
        self._build_layout()
        self._build_menus()
        self._connect()
        guard_wheel()  # app-wide: the wheel scrolls the page, it never edits a value or switches a tab
        self.restore()
        self.fill_recent_runs()

    def _build_layout(self) -> None:
        """The sidebar of steps, the stacked screens, the footer and the status bar (window_shell.Shell)."""
        shell = Shell(self, [scroll_page(page) for page in self.pages.values()], [title for _key, title in STEPS])
        self.nav, self.stack = shell.nav, shell.stack
        self.merge_button, self.open_run_button = shell.merge_button, shell.open_run_button
        self.back_button, self.next_button = shell.back_button, shell.next_button
        self.status_text, self.status_progress, self.status_cancel = (
            shell.status_text,
            shell.status_progress,
            shell.status_cancel,
        )

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        add_action(file_menu, "&Open run…", self.choose_run, QKeySequence.StandardKey.Open)
        self.recent_menu = file_menu.addMenu("Recent runs")
        file_menu.addSeparator()
        add_action(file_menu, "Use the &demo models", self.use_demo)
        self.clear_cache_action = add_action(
            file_menu,
            "&Clear the score cache…",
            self.ask_clear_cache,
            tip="Delete the kept importance scores (re-tuning earlier runs then measures again).",
        )
        file_menu.addSeparator()
        add_action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        help_menu = self.menuBar().addMenu("&Help")
        add_action(help_menu, "Open the &log file", lambda: self.open_path("log file", paths.log_file()))
        add_action(help_menu, "&About ReasonAny", self.about)

    def _connect(self) -> None:
        self.merge_button.clicked.connect(self.start_merge)
        self.output.merge_requested.connect(self.start_merge)
        self.open_run_button.clicked.connect(self.choose_run)
        self.back_button.clicked.connect(lambda: self.go(max(self.nav.currentRow() - 1, 0)))
        self.next_button.clicked.connect(lambda: self.go(min(self.nav.currentRow() + 1, len(STEPS) - 1)))
        self.stack.currentChanged.connect(self._on_page)
        self.models.changed.connect(self.on_models_changed)
        self.models.demo_requested.connect(self.use_demo)
        self.output.tokenizer_source_changed.connect(lambda _role: self.update_tokenizer_source())
        self.run_panel.cancel_requested.connect(self.runner.cancel)
        self.status_cancel.clicked.connect(self.runner.cancel)
        self.results.retune_requested.connect(self.start_retune)
        self.results.save_requested.connect(self.start_save_version)
        self.results.evaluate_requested.connect(self.start_evaluate)
        self.results.ask_requested.connect(self.start_ask)
        self.results.tune_requested.connect(self.start_tune)
        self.results.cancel_requested.connect(self.runner.cancel)
        self.results.candidate_requested.connect(self.choose_candidate)
        self.results.open_requested.connect(lambda what, path: self.open_path(what, Path(path)))
        self.results.export_requested.connect(self.open_export)
        self.results.publish_requested.connect(self.open_publish)
        self.runner.engine_event.connect(self.results.on_event)
        # one set of search options, shown on Results and on Settings: each copy follows the other
        self.results.search_options_changed.connect(
            lambda: self.settings.set_search_options(**self.results.search_options())
        )
        self.settings.search_options_changed.connect(
            lambda: self.results.set_search_options(**self.settings.search_options())
        )
        self.runner.engine_event.connect(self.run_panel.on_event)
        self.runner.engine_event.connect(self.on_status_event)
        self.errors.retry_requested.connect(self.retry_with)

    def _on_page(self, index: int) -> None:
        key = STEPS[index][0]
        self.back_button.setEnabled(index > 0)
        self.next_button.setEnabled(index < len(STEPS) - 1)
        if key == "data":
            self.data.set_max_length(int(self.settings.values()["max_length"]))
            self.update_tokenizer_source()
            self.data.refresh_previews()
        elif key == "save":
            self.output.set_summary(self.plan_text())

    def open_export(self) -> ExportDialog | None:
        """Results ▸ Export GGUF…: helper E's dialog for the saved folder shown (non-modal, its own worker)."""
        if self.session.out_dir is None:
            return None
        return open_export_dialog(self.session.out_dir, self)

    def open_publish(self) -> PublishDialog | None:
        """Results ▸ Publish…: the Hub upload dialog for the saved folder shown."""
        if self.session.out_dir is None:
            return None
        return open_publish_dialog(self.session.out_dir, self)

    def shutdown(self) -> None:
        """Save the settings, stop the worker, release the models (closing, or the app quitting)."""
        self.save_settings()
        if self.runner.busy:
            self.status_text.setText("Stopping the current task…")
            self.runner.shutdown(15000)
        self.session.close_pipeline()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if self.has_unsaved_version() and not self.quit_confirmed:
            event.ignore()  # the question is non-blocking: its "Quit without saving" closes again
            self.ask_before_quit()
            return
        self.shutdown()
        super().closeEvent(event)

"""The main window: a sidebar of steps, one screen per step, and the worker that runs the engine.

It owns the state of a session (the last pipeline, its selection, the output folder) and turns user
actions into jobs (`jobs.py`) on the worker (`worker.JobRunner`); the screens only show and collect.
Each action says, when it starts its job, which method handles the result and which the failure, so
there is no dispatch on job names and no state shared with a running job.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from PySide6.QtCore import QSize, QUrl
from PySide6.QtGui import QCloseEvent, QDesktopServices, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMessageBox, QWidget

from reasonany_gui import __version__
from reasonany_gui.engine.core import paths
from reasonany_gui.engine.core.errors import CancelledError, InputError
from reasonany_gui.engine.data import demo
from reasonany_gui.engine.scoring.collectives import ranks_needed
from reasonany_gui.engine.scoring.plan import needed_maps
from reasonany_gui.engine.settings.config import ROLES, MergeConfig

from . import jobs
from .data_panel import DataPanel
from .demo_preset import DemoPreset
from .dialogs import ErrorReporter
from .models_panel import ModelsPanel
from .output_panel import OutputPanel, suggest_output
from .results.evaluation import data_title
from .results.panel import ResultsPanel
from .run_panel import RunPanel
from .settings_panel import SettingsPanel
from .settings_store import SettingsStore
from .texts import describe_value, human_bytes
from .tune.options import DEFAULT_BUDGET
from .widgets import guard_wheel, scroll_page
from .window_shell import Shell, add_action
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
    "ask": "The four models are answering your question…",
}


class MainWindow(QMainWindow):
    def __init__(self, store: SettingsStore | None = None, demo_on_first_start: bool = True) -> None:
        super().__init__()
        #: the demo's preset while the demo trio is selected; see _leave_demo_preset
        self._demo = DemoPreset()
        self.setWindowTitle("ReasonAny — merge reasoning and domain models")
        self.setMinimumSize(QSize(960, 640))
        self.store = store or SettingsStore()
        self.runner = JobRunner(self)
        self.errors = ErrorReporter(self)
        self.pipeline = None  # engine Pipeline of the last merge (for re-tuning)
        self.selection = None  # what the inspector shows (Selection or RunView)
        self.out_dir: Path | None = None
        self._hidden_config = self.store.load_config()  # settings without a widget keep their stored value
        self._demo_on_first_start = demo_on_first_start
        #: options of the post-merge evaluation (engine.evaluate.evaluate_run keywords)
        self.eval_options: dict = {"max_samples": 32, "max_length": 256, "max_new_tokens": 64}

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
        guard_wheel(self)  # value fields take the wheel only when focused: scrolling never edits a setting
        self._restore()

    # ================================================================== layout
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
        add_action(
            help_menu, "Open the &log file", lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(paths.log_file())))
        )
        add_action(help_menu, "&About ReasonAny", self._about)

    def _connect(self) -> None:
        self.merge_button.clicked.connect(self.start_merge)
        self.output.merge_requested.connect(self.start_merge)
        self.open_run_button.clicked.connect(self.choose_run)
        self.back_button.clicked.connect(lambda: self.go(max(self.nav.currentRow() - 1, 0)))
        self.next_button.clicked.connect(lambda: self.go(min(self.nav.currentRow() + 1, len(STEPS) - 1)))
        self.stack.currentChanged.connect(self._on_page)
        self.models.changed.connect(self._on_models_changed)
        self.models.demo_requested.connect(self.use_demo)
        self.output.tokenizer_source_changed.connect(lambda _role: self._update_tokenizer_source())
        self.run_panel.cancel_requested.connect(self.runner.cancel)
        self.status_cancel.clicked.connect(self.runner.cancel)
        self.results.retune_requested.connect(self.start_retune)
        self.results.save_requested.connect(self.start_save_version)
        self.results.evaluate_requested.connect(self.start_evaluate)
        self.results.ask_requested.connect(self.start_ask)
        self.results.tune_requested.connect(self.start_tune)
        self.results.cancel_requested.connect(self.runner.cancel)
        self.results.candidate_requested.connect(self.choose_candidate)
        self.runner.event.connect(self.results.on_event)
        # one set of search options, shown on Results and on Settings: each copy follows the other
        self.results.search_options_changed.connect(
            lambda: self.settings.set_search_options(**self.results.search_options())
        )
        self.settings.search_options_changed.connect(
            lambda: self.results.set_search_options(**self.settings.search_options())
        )
        self.runner.event.connect(self.run_panel.on_event)
        self.runner.event.connect(self._on_status_event)
        self.errors.retry_requested.connect(self.retry_with)

    # ================================================================== settings in and out
    def _restore(self) -> None:
        geometry = self.store.geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1360, 880)
        cfg = self._hidden_config
        self.models.set_recent(self.store.recent("models"))
        try:
            self.models.refresh_cache()
        except Exception as exc:  # noqa: BLE001 - a broken cache is not a reason to fail at start
            log.warning("scanning the Hugging Face cache failed: %s", exc)
        for role in ("reasoning", "domain"):
            self.data.set_recent(role, self.store.recent(f"data:{role}"))
        self.settings.speed_factors = self.store.speed_factors()
        self.settings.load(cfg)
        prefs = self.store.tune_preferences(DEFAULT_BUDGET)
        self.settings.set_tune_preferences(prefs)
        self.results.set_search_options(prefs.budget, prefs.checks)
        self.output.load(cfg)
        self.data.set_specs(cfg.reasoning_data, cfg.domain_data)
        if self.store.has_config() and all(getattr(cfg, r) for r in ROLES):
            specs = {r: getattr(cfg, r) for r in ROLES}
            self.models.set_specs(specs)
            self._demo = DemoPreset.for_models(specs)  # a restored demo: its preset still applies
            if self._demo.active:
                self.settings.set_demo_values(True)
        elif self._demo_allowed():
            self.use_demo()
        if not self.output.values()["out"]:
            specs = self.models.specs()
            self.output.next_suggestion(specs["reasoning"], specs["domain"])
        self._fill_recent_runs()

    def _demo_allowed(self) -> bool:
        return self._demo_on_first_start

    def build_config(self) -> MergeConfig:
        """Everything on the screens, on top of the stored settings that have no widget."""
        values = {**self.models.specs(), **self.data.specs(), **self.settings.values(), **self.output.values()}
        return self._hidden_config.replace(**values)

    def plan_text(self) -> str:
        """What Merge will do, in words (shown on the Save screen)."""
        cfg = self.build_config()
        problems = self.models.problems()
        lines = []
        for role in ROLES:
            lines.append(f"<b>{role.capitalize()} model:</b> {getattr(cfg, role) or '—'}")
        if cfg.needs_scores:
            lines.append(
                f"<b>Data:</b> {data_title(cfg.reasoning_data)} for reasoning, "
                f"{data_title(cfg.domain_data)} for the domain; "
                f"{cfg.samples} samples of up to {cfg.max_length} tokens each"
            )
        lines.append("<b>" + describe_value("method", cfg.method).replace(": ", ":</b> ", 1))
        if cfg.needs_scores:
            shown = {n: cfg.settings()[n].shown(getattr(cfg, n)) for n in ("reasoning_ratio", "domain_ratio")}
            lines.append(
                f"<b>Shares:</b> {shown['reasoning_ratio']:.2f} % reasoning, {shown['domain_ratio']:.2f} % "
                f"domain; strengths {cfg.reasoning_scale:g} and {cfg.domain_scale:g}"
            )
        if problems:
            lines.append("<span style='color:#a1122b'>⚠ " + " ".join(problems) + "</span>")
        return "<br>".join(lines)

    def save_settings(self) -> None:
        try:
            self.store.save_config(self.build_config())
        except Exception as exc:  # noqa: BLE001
            log.warning("saving settings failed: %s", exc)
        self.store.save_tune_preferences(self.settings.tune_preferences())
        self.store.save_geometry(self.saveGeometry())
        self.store.sync()

    def use_demo(self) -> None:
        """The built-in demo trio and presets: every screen works in about a minute on a CPU."""
        try:
            trio = demo.ensure_demo()
        except Exception as exc:  # noqa: BLE001
            log.exception("building the demo failed")
            self.errors.show_error(exc, self.runner.last_traceback)
            return
        preset = demo.demo_preset()  # the trained demo's own data and benchmarked setting (engine decides)
        defaults = MergeConfig()
        specs = {r: str(p) for r, p in trio.items()}
        self.models.set_specs(specs)
        self._demo = DemoPreset(specs, preset)  # after set_specs: its intermediate (mixed) trios must not drop it
        self.data.set_specs(
            preset.get("reasoning_data", defaults.reasoning_data), preset.get("domain_data", defaults.domain_data)
        )
        self.settings.apply(preset)
        self.settings.set_demo_values(bool(preset))
        self.status_text.setText("Demo models selected: press Merge to see every screen.")

    # ================================================================== navigation
    def go(self, index_or_key: int | str) -> None:
        index = index_or_key if isinstance(index_or_key, int) else [k for k, _ in STEPS].index(index_or_key)
        self.nav.setCurrentRow(index)

    def current_page(self) -> QWidget:
        """The screen shown now (the stack holds each screen inside its scroll area)."""
        return list(self.pages.values())[self.stack.currentIndex()]

    def _on_page(self, index: int) -> None:
        key = STEPS[index][0]
        self.back_button.setEnabled(index > 0)
        self.next_button.setEnabled(index < len(STEPS) - 1)
        if key == "data":
            self.data.set_max_length(int(self.settings.values()["max_length"]))
            self._update_tokenizer_source()
            self.data.refresh_previews()
        elif key == "save":
            self.output.set_summary(self.plan_text())

    def _update_tokenizer_source(self) -> None:
        self.data.set_tokenizer_source(self.models.readable_spec(self.output.values()["tokenizer_source"]))
        if self.current_page() is self.data:
            self.data.refresh_previews()

    def _on_models_changed(self) -> None:
        self.settings.set_base_info(self.models.infos.get("base"))
        self._update_tokenizer_source()
        self._leave_demo_preset()

    def _leave_demo_preset(self) -> None:
        """Once a user picks their own models, the demo's tuned setting must not carry over to them.

        Settings and data the user has not changed since the demo go back to the recommended defaults
        (the demo's shares suit a 0.85 M-parameter model, not a 7 B one); anything they changed stays.
        """
        if not self._demo.left_by(self.models.specs()):
            return
        data = self.data.specs()
        back = self._demo.back_to_defaults({**self.settings.values(), **data})
        self._demo = DemoPreset()
        self.settings.set_demo_values(False)
        self.settings.apply(back)
        self.data.set_specs(*(back.get(k, data[k]) for k in ("reasoning_data", "domain_data")))
        self.status_text.setText("Your own models: the settings the demo used are back to the recommended defaults.")

    # ================================================================== actions
    def start_merge(self) -> None:
        if self.runner.busy:
            self.status_text.setText("Wait for the current task to finish, or cancel it.")
            return
        problems = self.models.problems()
        if problems:
            self.go("models")
            self.errors.show_error(InputError("These models cannot be merged yet:\n• " + "\n• ".join(problems)))
            return
        specs = self.models.specs()
        self.output.ensure_out(specs["reasoning"], specs["domain"])
        config = self.build_config()
        try:
            config.validate(need_out=True)
            ranks = ranks_needed(config.devices)  # "All GPUs" with the GPUs gone says so here, in one message
        except InputError as exc:
            self.errors.show_error(exc)
            return
        self.save_settings()
        self._close_pipeline()
        self.selection = None
        self.results.show_empty(
            "A merge is running. Its result appears here when it finishes.\n\nEarlier runs stay "
            "available: “Open run…” or File ▸ Recent runs."
        )
        tune = self.settings.auto_tune_options()
        costs = self._stage_costs(config)
        if tune is not None and costs:  # the estimate has no model of the search yet: a rough weight, corrected live
            costs["tune"] = tune["budget"] * (costs.get("write", 1.0) + costs.get("select", 0.5))
        self.run_panel.begin(
            "Merging",
            "Measuring which weights carry each skill, "
            + ("finding a good setting, " if tune is not None else "")
            + "then merging.",
            costs=costs,
            passes=needed_maps(config),
        )
        if ranks > 1:  # one process per device: the CLI's launcher, rank 0's events on this Run screen
            self._start("merge", jobs.ranks_merge_job(config, tune), self._merged_in_ranks, self._merge_failed)
            return
        # a plain merge calls merge_job with the config alone (tests replace it with fakes of that signature)
        self._start(
            "merge",
            jobs.merge_job(config, **({"tune": tune} if tune is not None else {})),
            self._merged,
            self._merge_failed,
        )

    def _device_type(self, config: MergeConfig) -> str:
        from reasonany_gui.engine.core.devices import resolve_device

        try:
            return resolve_device(config.device).type
        except Exception:  # noqa: BLE001 - the pipeline's check explains a bad device
            return "cpu"

    def _stage_costs(self, config: MergeConfig) -> dict[str, float] | None:
        """Expected seconds per stage (engine.estimate), scaled by this machine's measured speed."""
        from reasonany_gui.engine.scoring.estimate import stage_costs

        info = self.models.infos.get("base")
        if info is None:
            return None
        device_type = self._device_type(config)
        try:
            return stage_costs(config, info, device_type, self.store.speed_factors().get(device_type))
        except Exception as exc:  # noqa: BLE001 - a progress estimate is never a reason to refuse a run
            log.info("no stage costs: %s", exc)
            return None

    def _remember_speed(self, report: dict) -> None:
        """After a merge: how fast this machine really was, so the next estimate is a measurement, not a guess."""
        from reasonany_gui.engine.scoring.estimate import speed_factor

        info = self.models.infos.get("base")
        cfg = self._config_of(report)
        if info is None or cfg is None or not cfg.needs_scores:
            return
        device_type = self._device_type(cfg)
        factor = speed_factor(report, info, device_type)
        if factor:
            self.store.set_speed_factor(device_type, factor)
            self.settings.speed_factors = self.store.speed_factors()
            self.settings.update_estimate()

    @staticmethod
    def _config_of(report: dict | None) -> MergeConfig | None:
        """A report's setting; None without a report or for one this version cannot read."""
        try:
            return MergeConfig.from_dict(dict(report["config"])) if report and "config" in report else None
        except InputError:
            return None

    def retry_with(self, suggestions: dict) -> None:
        """The out-of-memory dialog's one-click retry: apply the suggested settings and merge again."""
        hidden = self.settings.apply(suggestions)
        if hidden:
            self._hidden_config = self._hidden_config.replace(**hidden)
        self.start_merge()

    def start_retune(self, changes: dict) -> None:
        if self.runner.busy:
            return
        base = self.pipeline.config if self.pipeline is not None else self._opened_config()
        if base is None:
            self.errors.show_error(InputError("Nothing to re-tune yet: run a merge or open an earlier run first."))
            return
        config = base.replace(**changes)
        self._start(
            "retune",
            jobs.retune_job(self.pipeline, config),
            lambda result: self._show_retuned(
                result, "Masks updated from the measured scores. Save this version to keep it."
            ),
        )

    def start_tune(self, options: dict) -> None:
        """Results ▸ Find a good setting: search from the scores already measured (the merge's, or the cache's)."""
        if self.runner.busy:
            self.status_text.setText("Wait for the current task to finish, or cancel it.")
            return
        config = self.pipeline.config if self.pipeline is not None else self._opened_config()
        if config is None:
            self.errors.show_error(InputError("Nothing to search from yet: run a merge or open an earlier run first."))
            return
        self.save_settings()  # the options are remembered like every other choice
        self.results.begin_tune(int(options["budget"]))
        self._start(
            "tune",
            jobs.tune_job(self.pipeline, config, int(options["budget"]), options.get("checks")),
            self._tuned,
            self._tune_failed,
        )

    def choose_candidate(self, setting: dict) -> None:
        """A point of the search was clicked: re-tune the masks to its setting (from the cached scores)."""
        if self.runner.busy:
            self.status_text.setText("Wait for the current task to finish, then click the point again.")
            return
        self.start_retune(setting)

    def _shown_setting(self) -> dict | None:
        """The setting the Results screen shows now (method, shares, strengths, scope), for the search's ring."""
        cfg = self.pipeline.config if self.pipeline is not None else self._opened_config()
        if cfg is None:
            return None
        from reasonany_gui.engine.measure.tune import SETTING_KEYS

        return {k: getattr(cfg, k) for k in SETTING_KEYS}

    def _update_tune_view(self) -> None:
        self.results.set_tune_state(
            self.pipeline is not None or self._opened_config() is not None, self._shown_setting()
        )

    def start_save_version(self) -> None:
        if self.runner.busy or self.pipeline is None:
            return
        cfg = self.pipeline.config
        root = Path(self.out_dir).parent if self.out_dir else None
        out = suggest_output(cfg.reasoning, cfg.domain, root)
        costs = self._stage_costs(cfg)
        self.run_panel.begin(
            "Saving the re-tuned model",
            f"Writing to {out}",
            clear_plots=False,
            costs={"write": costs["write"]} if costs else None,
        )
        self._start("save", jobs.write_job(self.pipeline, out), lambda result: self._saved(result, measured=False))

    def start_evaluate(self) -> None:
        if self.runner.busy or self.out_dir is None:
            return
        cfg = self.pipeline.config if self.pipeline is not None else (self._opened_config() or self.build_config())
        self.results.begin_evaluation()
        self._start(
            "evaluate",
            jobs.evaluate_job(
                self.out_dir, [cfg.reasoning_data, cfg.domain_data], device=cfg.device, **self.eval_options
            ),
            self._evaluated,
        )

    def start_ask(self, prompt: str) -> None:
        """The user's own question, answered by the merged model and the three inputs side by side."""
        if self.runner.busy or self.out_dir is None or self.results.unsaved:
            self.status_text.setText(
                "Wait for the current task, or save the re-tuned version first."
                if self.runner.busy or self.results.unsaved
                else "Run or open a merge first."
            )
            return
        cfg = self.pipeline.config if self.pipeline is not None else (self._opened_config() or self.build_config())
        self.results.show_answers(None, "Thinking…")
        self._start(
            "ask",
            jobs.ask_job(
                self.out_dir,
                cfg,
                prompt,
                device=cfg.device,
                max_new_tokens=int(self.eval_options.get("max_new_tokens", 64)),
            ),
            self._answered,
            self._ask_failed,
        )

    def choose_run(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Open an earlier output folder", str(self.out_dir.parent) if self.out_dir else ""
        )
        if folder:
            self.open_run(folder)

    def open_run(self, folder: str | Path) -> None:
        if self.runner.busy:
            self.status_text.setText("Wait for the current task to finish, or cancel it.")
            return
        self._start("open", jobs.open_run_job(Path(folder)), self._show_opened)

    def cancel(self) -> None:
        self.runner.cancel()

    def offer_stale_cleanup(self) -> QMessageBox | None:
        """At start: offer to delete the half-written folders of runs that were killed (power cut, kill -9).

        Why ask instead of deleting silently: they can be large and sit next to the user's own folders; the
        engine only ever removes folders it named itself (the `.reasonany-tmp-` mark)."""
        from reasonany_gui.engine.io import writer
        from reasonany_gui.engine.run.pipeline import registry_path

        try:
            stale = writer.stale_temp_folders(registry_path())
        except Exception as exc:  # noqa: BLE001 - a broken registry must not stop the app from starting
            log.warning("could not read the temporary-folder registry: %s", exc)
            return None
        if not stale:
            return None
        listed = "\n".join(f"• {p}" for p in stale[:10]) + (
            f"\n… and {len(stale) - 10} more" if len(stale) > 10 else ""
        )
        box = self.errors.info(
            "Leftovers of interrupted runs",
            f"{len(stale)} unfinished output folder(s) from runs that were stopped abruptly "
            f"are still on disk:\n{listed}\n\nThey hold no usable model. Remove them?",
        )
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        yes = box.button(QMessageBox.StandardButton.Yes)
        yes.setText("Remove")
        box.button(QMessageBox.StandardButton.No).setText("Keep")
        yes.clicked.connect(self.clean_stale)
        return box

    def clean_stale(self) -> list[Path]:
        from reasonany_gui.engine.io import writer
        from reasonany_gui.engine.run.pipeline import registry_path

        removed = writer.clean_stale(registry_path())
        for p in removed:
            log.info("removed the leftover temporary folder %s", p)
        self.status_text.setText(f"Removed {len(removed)} leftover folder(s) of interrupted runs.")
        return removed

    def score_store(self):
        from reasonany_gui.engine.io.scorecache import ScoreStore

        return ScoreStore(paths.cache_dir() / "scores")

    def ask_clear_cache(self) -> None:
        if self.runner.busy:
            self.status_text.setText("Wait for the current task to finish before clearing the score cache.")
            return
        size = self.score_store().size_bytes()
        box = self.errors.info(
            "Clear the score cache?",
            f"The kept importance scores take {human_bytes(size)}. Without them, re-tuning an "
            "earlier run measures the models again. Merged models are not affected.",
        )
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
        yes = box.button(QMessageBox.StandardButton.Yes)
        yes.setText("Clear")
        yes.clicked.connect(self.clear_cache)

    def clear_cache(self) -> None:
        """Delete the score cache; the live pipeline reads from it, so re-tuning needs a new run afterwards."""
        self._close_pipeline()
        self.results.scores_cleared()
        self.score_store().clear()
        self.status_text.setText("Score cache cleared.")

    def _start(self, name: str, fn: JobFn, on_result: OnResult, on_error: OnError | None = None) -> None:
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

    # ================================================================== job results
    def _merged(self, result: jobs.MergeResult) -> None:
        self._saved(result, measured=True)

    def _merged_in_ranks(self, view) -> None:
        """A multi-process merge is on disk: shown as "Open run…" shows a run (re-tuning reads the score cache).

        Its speed does not calibrate the next estimate, which is for one device."""
        self._show_opened(view)
        self._after_save(Path(view.out_dir))

    def _saved(self, result: jobs.MergeResult, measured: bool) -> None:
        """A merge or a saved re-tuned version is on disk: show it and remember what was used.

        measured: the run measured scores, so its speed calibrates the next estimate (a save does not)."""
        self._show_merge(result, saved=True)
        if measured:
            self._remember_speed(result.report)
        self._after_save(Path(result.out))

    def _after_save(self, out: Path) -> None:
        """What every saved run does after it is shown: the Run screen's ending, the recent lists, the next name."""
        self.run_panel.finish("done", f"Saved in {out}")
        specs = self.models.specs()
        for role in ROLES:
            self.store.add_recent("models", specs[role])
        for role, spec in self.data.own_files().items():
            self.store.add_recent(f"data:{role}", spec)
        self.store.add_recent("runs", str(out))
        self._fill_recent_runs()
        self.output.next_suggestion(specs["reasoning"], specs["domain"])
        self.go("results")

    def _merge_failed(self, exc: BaseException) -> None:
        """No old result under a banner that reads as if it were this run's (the engine closed the pipeline)."""
        cancelled = isinstance(exc, CancelledError)
        self.results.show_empty(
            ("The merge was cancelled" if cancelled else "The merge stopped with an error")
            + ", so there is no new result.\n\nEarlier runs stay available: “Open run…” or "
            "File ▸ Recent runs."
        )

    def _show_retuned(self, result: jobs.MergeResult, message: str) -> None:
        """New masks from the measured scores (a re-tune or a search): shown, not yet saved."""
        self.pipeline = result.pipeline
        self.selection = result.selection
        cfg = result.pipeline.config
        self.results.set_selection(result.selection, cfg.scope, cfg.method)
        self.results.set_output(self.out_dir, saved_current=False)
        self.results.show_run_setting(cfg, retunable=True)
        self.status_text.setText(message)
        self._update_tune_view()

    def _tuned(self, result: jobs.MergeResult) -> None:
        tuned = result.pipeline.tune_result
        self.results.show_tune_result(tuned.report_section() if tuned else None)
        self._show_retuned(
            result,
            "Search finished: the recommended setting is shown. Save this version to keep it, or click another point.",
        )

    def _tune_failed(self, exc: BaseException) -> None:
        """The job put the pipeline back as it was (and closed one it built): the masks shown are still true."""
        cancelled = isinstance(exc, CancelledError)
        self.results.end_tune(
            "cancelled" if cancelled else "failed", "" if cancelled else str(exc).splitlines()[0] if str(exc) else ""
        )

    def _evaluated(self, result: object) -> None:
        self.results.show_evaluation(result if isinstance(result, dict) else None)
        self.status_text.setText("Evaluation finished.")

    def _answered(self, result: dict) -> None:
        self.results.show_answers(result)
        self.status_text.setText("All four models answered your question.")

    def _ask_failed(self, exc: BaseException) -> None:
        cancelled = isinstance(exc, CancelledError)
        self.results.show_answers(None, "Cancelled." if cancelled else "No answer: see the message.")

    def _show_merge(self, result: jobs.MergeResult, saved: bool) -> None:
        self.pipeline = result.pipeline
        self.selection = result.selection
        self.out_dir = Path(result.out) if result.out else self.out_dir
        cfg = result.pipeline.config
        self.results.set_selection(result.selection, cfg.scope, cfg.method)
        self.results.set_output(self.out_dir, saved_current=saved)
        self.results.set_report(result.report)
        # a search may have picked a method without masks; the measured scores still allow any other setting
        self.results.show_run_setting(cfg, retunable=result.selection is not None or bool(result.pipeline.map_keys))
        self._update_tune_view()
        self.status_text.setText(f"Merged model saved in {self.out_dir}")

    def _show_opened(self, view) -> None:
        self._close_pipeline()
        self.selection = view if getattr(view, "names", None) else None
        self.out_dir = Path(view.out_dir)
        cfg = self._opened_config()
        self.results.set_selection(
            self.selection, cfg.scope if cfg is not None else None, cfg.method if cfg is not None else None
        )
        self.results.set_output(self.out_dir, saved_current=True)
        self.results.set_report(view.report)
        self.results.show_run_setting(cfg, retunable=self.selection is not None and cfg is not None)
        self._update_tune_view()
        self.store.add_recent("runs", str(self.out_dir))
        self._fill_recent_runs()
        self.status_text.setText(f"Opened {self.out_dir}")
        self.go("results")

    def _opened_config(self) -> MergeConfig | None:
        """The setting of the opened earlier run (from its report), or None when no run is opened."""
        return self._config_of(getattr(self.selection, "report", None))

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
        on_status = busy and name not in RUN_SCREEN_JOBS
        self.status_progress.setVisible(on_status)
        self.status_cancel.setVisible(on_status)
        self.status_progress.setValue(0)
        if busy:
            self.status_text.setText(BUSY_TEXT.get(name, "Working…"))
        if busy and name in RUN_SCREEN_JOBS:
            self.go("run")

    def _on_status_event(self, ev) -> None:
        overall = getattr(ev, "overall", None)
        if overall is not None and self.status_progress.isVisible():
            self.status_progress.setValue(int(max(0.0, min(1.0, float(overall))) * 1000))

    def _close_pipeline(self) -> None:
        if self.pipeline is not None:
            with contextlib.suppress(Exception):  # closing must never stop the window
                self.pipeline.close()
        self.pipeline = None

    # ================================================================== misc
    def _fill_recent_runs(self) -> None:
        self.recent_menu.clear()
        runs = [r for r in self.store.recent("runs") if Path(r).is_dir()]
        for r in runs:
            act = self.recent_menu.addAction(r)
            act.triggered.connect(lambda _=False, r=r: self.open_run(r))
        self.recent_menu.setEnabled(bool(runs))

    def _about(self) -> None:
        self.errors.info(
            "About ReasonAny",
            f"ReasonAny GUI {__version__}\n\nTraining-free merging of a reasoning model and a domain "
            "model (ReasonAny, arXiv 2601.05560).\n\n"
            f"Settings: {self.store.path}\nLog: {paths.log_file()}",
        )

    def shutdown(self) -> None:
        """Save the settings, stop the worker, release the models (closing, or the app quitting)."""
        self.save_settings()
        if self.runner.busy:
            self.status_text.setText("Stopping the current task…")
            self.runner.shutdown(15000)
        self._close_pipeline()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)

"""What the Results screen's actions do: re-tune, search, evaluate, ask, open a run, and show what came back.

Each action checks it may start, starts its job (jobs.py) through WindowBase.start_job and names the handler of its
result; the handlers write the session (engine.workflows.session) and tell the Results screen what to show.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog

from reasonany_gui.engine.core.errors import CancelledError, InputError
from reasonany_gui.engine.settings.config import MergeConfig

from . import jobs
from .output_panel import suggest_output
from .window_base import WindowBase


class ResultActions(WindowBase):
    """Results ▸ Re-tune, Find a good setting, Evaluate, Ask; File ▸ Open run and Recent runs."""

    def start_retune(self, changes: dict[str, Any]) -> None:
        if self.runner.busy:
            return
        base = self.session.config
        if base is None:
            self.errors.show_error(InputError("Nothing to re-tune yet: run a merge or open an earlier run first."))
            return
        config = base.replace(**changes)
        self.start_job(
            "retune",
            jobs.retune_job(self.session.pipeline, config, self._opened_run()),
            lambda result: self._show_retuned(
                result, "Masks updated from the measured scores. Save this version to keep it."
            ),
        )

    def start_tune(self, options: dict[str, Any]) -> None:
        """Results ▸ Find a good setting: search from the scores already measured (the merge's, or the cache's)."""
        if self.runner.busy:
            self.status_text.setText("Wait for the current task to finish, or cancel it.")
            return
        config = self.session.config
        if config is None:
            self.errors.show_error(InputError("Nothing to search from yet: run a merge or open an earlier run first."))
            return
        self.save_settings()  # the options are remembered like every other choice
        self.results.begin_tune(int(options["budget"]))
        self.start_job(
            "tune",
            jobs.tune_job(
                self.session.pipeline, config, int(options["budget"]), options.get("checks"), self._opened_run()
            ),
            self._tuned,
            self._tune_failed,
        )

    def _opened_run(self) -> Path | None:
        """The opened run's folder when no merge is kept open: a re-tune of it must find its inputs unchanged."""
        return self.session.out_dir if self.session.pipeline is None else None

    def choose_candidate(self, setting: dict[str, Any]) -> None:
        """A point of the search was clicked: re-tune the masks to its setting (from the cached scores)."""
        if self.runner.busy:
            self.status_text.setText("Wait for the current task to finish, then click the point again.")
            return
        self.start_retune(setting)

    def _checked_config(self) -> MergeConfig:
        """The setting of the model shown, or (an opened run this version cannot read) the screens' setting."""
        return self.session.config or self.build_config()

    def start_evaluate(self) -> None:
        out_dir = self.session.out_dir
        if self.runner.busy or out_dir is None:
            return
        cfg = self._checked_config()
        self.session.eval_options["max_new_tokens"] = self.results.reply_tokens()
        self.results.begin_evaluation()
        self.start_job(
            "evaluate",
            jobs.evaluate_job(
                out_dir, [cfg.reasoning_data, cfg.domain_data], device=cfg.device, **self.session.eval_options
            ),
            self._evaluated,
        )

    def start_ask(self, prompt: str) -> None:
        """The user's own question, answered by the merged model and the three inputs side by side."""
        out_dir = self.session.out_dir
        if self.runner.busy or out_dir is None or self.results.unsaved:
            self.status_text.setText(
                "Wait for the current task, or save the re-tuned version first."
                if self.runner.busy or self.results.unsaved
                else "Run or open a merge first."
            )
            return
        cfg = self._checked_config()
        self.results.show_answers(None, "Thinking…")
        self.start_job(
            "ask",
            jobs.ask_job(
                out_dir,
                cfg,
                prompt,
                device=cfg.device,
                max_new_tokens=self.results.reply_tokens(),
            ),
            self._answered,
            self._ask_failed,
        )

    def choose_run(self) -> None:
        out_dir = self.session.out_dir
        folder = QFileDialog.getExistingDirectory(
            self, "Open an earlier output folder", str(out_dir.parent) if out_dir else ""
        )
        if folder:
            self.open_run(folder)

    def open_run(self, folder: str | Path) -> None:
        if self.runner.busy:
            self.status_text.setText("Wait for the current task to finish, or cancel it.")
            return
        self.start_job("open", jobs.open_run_job(Path(folder)), self.show_opened)

    def fill_recent_runs(self) -> None:
        """File ▸ Recent runs: the remembered output folders that still exist."""
        self.recent_menu.clear()
        runs = [r for r in self.store.recent("runs") if Path(r).is_dir()]
        for r in runs:
            act = self.recent_menu.addAction(r)
            act.triggered.connect(lambda _=False, r=r: self.open_run(r))
        self.recent_menu.setEnabled(bool(runs))

    # ------------------------------------------------------------------ what came back
    def _update_tune_view(self) -> None:
        self.results.set_tune_state(self.session.searchable, self.session.setting())

    def show_session_results(self, new_run: bool = True) -> None:
        """Every result view shows what the session holds for the run and version shown now, and nothing else.

        Why one place: each view used to be filled by the job that computed it and stayed until overwritten, so
        after "Open run…" the answers of an earlier merge stood under the new model's name (issue 23). The search
        belongs to the whole run: a new version of the same run (new_run=False) keeps its plot, including the
        points of a cancelled search, which stay clickable."""
        self.results.show_results(self.session.result("evaluation"), self.session.result("answers"))
        if new_run:
            self.results.show_tune_result(self.session.run_result("tune"))

    def _show_retuned(self, result: jobs.MergeResult, message: str) -> None:
        """New masks from the measured scores (a re-tune or a search): shown, not yet saved."""
        self.session.retuned(result.pipeline, result.selection)
        cfg = result.pipeline.config
        self.results.set_selection(result.selection, cfg.scope, cfg.method)
        self.show_session_results(new_run=False)
        self.results.set_output(self.session.out_dir, saved_current=False, save_target=self.version_folder())
        self.results.show_run_setting(cfg, retunable=True)
        self.status_text.setText(message)
        self._update_tune_view()

    def version_folder(self) -> Path | None:
        """Where "Save this version…" writes the re-tuned masks: a fresh folder next to the run's."""
        cfg = self.session.config
        if cfg is None:
            return None
        root = self.session.out_dir.parent if self.session.out_dir else None
        return suggest_output(cfg.reasoning, cfg.domain, root)

    def _tuned(self, result: jobs.MergeResult) -> None:
        tuned = result.pipeline.tune_result
        section = tuned.report_section() if tuned else None
        self._show_retuned(
            result,
            "Search finished: the recommended setting is shown. Save this version to keep it, or click another point.",
        )
        self.session.record("tune", section)  # the search found the version now shown
        self.results.show_tune_result(section)

    def _tune_failed(self, exc: BaseException) -> None:
        """The job put the pipeline back as it was (and closed one it built): the masks shown are still true."""
        cancelled = isinstance(exc, CancelledError)
        self.results.end_tune(
            "cancelled" if cancelled else "failed", "" if cancelled else str(exc).splitlines()[0] if str(exc) else ""
        )

    def _evaluated(self, result: object) -> None:
        evaluation = result if isinstance(result, dict) else None
        self.session.record("evaluation", evaluation)
        self.results.show_evaluation(evaluation)
        self.status_text.setText("Evaluation finished.")

    def _answered(self, result: dict[str, Any]) -> None:
        self.session.record("answers", result)
        self.results.show_answers(result)
        self.status_text.setText("All five answered your question: the merge, Task Arithmetic and the three inputs.")

    def _ask_failed(self, exc: BaseException) -> None:
        cancelled = isinstance(exc, CancelledError)
        self.results.show_answers(None, "Cancelled." if cancelled else "No answer: see the message.")

    def show_merge(self, result: jobs.MergeResult, new_run: bool) -> None:
        """A saved merge (new_run) or a saved re-tuned version of the run shown."""
        if new_run:
            self.session.merged(result.pipeline, result.selection, result.out)
        else:
            self.session.version_saved(result.pipeline, result.selection, result.out)
        cfg = result.pipeline.config
        self.results.set_selection(result.selection, cfg.scope, cfg.method)
        self.results.set_output(self.session.out_dir, saved_current=True)
        self._show_report(result.report)
        # a search may have picked a method without masks; the measured scores still allow any other setting
        self.results.show_run_setting(cfg, retunable=result.selection is not None or bool(result.pipeline.map_keys))
        self._update_tune_view()
        self.status_text.setText(f"Merged model saved in {self.session.out_dir}")

    def show_opened(self, view: Any) -> None:
        """An earlier output folder (report.load_run), or a multi-process merge's, shown like any run."""
        self.session.opened(view)
        cfg = self.session.opened_config
        self.results.set_selection(
            self.session.selection, cfg.scope if cfg is not None else None, cfg.method if cfg is not None else None
        )
        self.results.set_output(self.session.out_dir, saved_current=True)
        self._show_report(view.report)
        self.results.show_run_setting(cfg, retunable=self.session.selection is not None and cfg is not None)
        self._update_tune_view()
        self.store.add_recent("runs", str(self.session.out_dir))
        self.fill_recent_runs()
        self.status_text.setText(f"Opened {self.session.out_dir}")
        self.go("results")

    def _show_report(self, report: dict[str, Any] | None) -> None:
        """The run's report on the Results screen; its evaluation and search belong to the run now shown."""
        self.results.set_report(report)
        for kind in ("evaluation", "tune"):
            self.session.record(kind, (report or {}).get(kind))
        self.show_session_results()

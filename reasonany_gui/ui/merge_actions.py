"""What Merge and "Save this version" do: check, start the job, and show the saved run.

A merge with one device runs jobs.merge_job in this process; "All GPUs" runs jobs.ranks_merge_job (the CLI's
launcher, one process per device) and is then shown like an opened run. After a merge the measured speed
calibrates the next estimate (engine.scoring.estimate).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from reasonany_gui.engine.core.errors import CancelledError, InputError
from reasonany_gui.engine.scoring.collectives import ranks_needed
from reasonany_gui.engine.scoring.plan import needed_maps
from reasonany_gui.engine.settings.config import ROLES, MergeConfig
from reasonany_gui.engine.workflows.session import config_of

from . import jobs
from .result_actions import ResultActions

log = logging.getLogger(__name__)


class MergeActions(ResultActions):
    """Merge, its one-click retry after running out of memory, and Save this version; their results are shown
    as the Results actions show a run."""

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
        self.session.merge_started()
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
            self.start_job("merge", jobs.ranks_merge_job(config, tune), self._merged_in_ranks, self._merge_failed)
            return
        # a plain merge calls merge_job with the config alone (tests replace it with fakes of that signature)
        self.start_job(
            "merge",
            jobs.merge_job(config, **({"tune": tune} if tune is not None else {})),
            self._merged,
            self._merge_failed,
        )

    def start_save_version(self) -> None:
        if self.runner.busy or self.session.pipeline is None:
            return
        pipeline = self.session.pipeline
        cfg = pipeline.config
        out = self.results.save_target or self.version_folder()  # the folder the banner names
        assert out is not None  # a kept pipeline always has its setting
        costs = self._stage_costs(cfg)
        self.run_panel.begin(
            "Saving the re-tuned model",
            f"Writing to {out}",
            clear_plots=False,
            costs={"write": costs["write"]} if costs else None,
        )
        self.start_job("save", jobs.write_job(pipeline, out), lambda result: self._saved(result, measured=False))

    def retry_with(self, suggestions: dict[str, Any]) -> None:
        """The out-of-memory dialog's one-click retry: apply the suggested settings and merge again."""
        hidden = self.settings.apply(suggestions)
        if hidden:
            self.hidden_config = self.hidden_config.replace(**hidden)
        self.start_merge()

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

    def _remember_speed(self, report: dict[str, Any]) -> None:
        """After a merge: how fast this machine really was, so the next estimate is a measurement, not a guess."""
        from reasonany_gui.engine.scoring.estimate import speed_factor

        info = self.models.infos.get("base")
        cfg = config_of(report)
        if info is None or cfg is None or not cfg.needs_scores:
            return
        device_type = self._device_type(cfg)
        factor = speed_factor(report, info, device_type)
        if factor:
            self.store.set_speed_factor(device_type, factor)
            self.settings.speed_factors = self.store.speed_factors()
            self.settings.update_estimate()

    def _merged(self, result: jobs.MergeResult) -> None:
        self._saved(result, measured=True)

    def _merged_in_ranks(self, view: Any) -> None:
        """A multi-process merge is on disk: shown as "Open run…" shows a run (re-tuning reads the score cache).

        Its speed does not calibrate the next estimate, which is for one device."""
        self.show_opened(view)
        self._after_save(Path(view.out_dir))

    def _saved(self, result: jobs.MergeResult, measured: bool) -> None:
        """A merge or a saved re-tuned version is on disk: show it and remember what was used.

        measured: the run measured scores, so its speed calibrates the next estimate (a save does not)."""
        self.show_merge(result, new_run=measured)
        if measured:
            self._remember_speed(result.report)
        assert result.out is not None  # a merge and a saved version always have their folder
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
        self.fill_recent_runs()
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

"""The orchestrator's merge and tune steps: one sequence that the CLI, the app's jobs and the tests all run.

Why here and not in the pipeline: the tuner (measure floor) merges candidates with the pipeline's own stages, so it
stands above the pipeline; the sequence that puts the tuner between identification and writing belongs above both.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..measure.heldout import DEFAULT_CHECK_ROWS, reserve_check_rows
from ..measure.tune import Tuner, TuneResult
from ..run.pipeline import Pipeline


def merge(pipe: Pipeline, tune: Mapping[str, Any] | None = None, keep_open: bool = False) -> Path:
    """check → identify → select → write; with `tune` (Tuner options: budget, minutes, checks, check_rows) the
    setting written is the tuner's recommendation, and the output holds tune.json and its report section.

    `keep_open` as in Pipeline.run. Returns the folder written."""
    if tune is None:
        return pipe.run(keep_open=keep_open)
    with pipe.running(keep_open):
        pipe.check()
        hold_out_check_rows(pipe, tune)
        pipe.check_output()  # a bad output folder or a too small disk is refused before hours of identification
        pipe.identify()
        tune_pipeline(pipe, **tune)
        pipe.select()
        return pipe.write()


def hold_out_check_rows(pipe: Pipeline, tune: Mapping[str, Any]) -> None:
    """Before scoring, on every rank of a multi-process run alike: the tuner's checks need rows that scoring
    never sees, so `samples` may be lowered (with a warning saying so)."""
    config, notes = reserve_check_rows(pipe.config, tune.get("check_rows", DEFAULT_CHECK_ROWS))
    pipe.adopt(config)
    for note in notes:
        pipe.log(note, "warning")


def tune_pipeline(pipe: Pipeline, **options: Any) -> TuneResult:
    """Search the setting (measure.tune.Tuner) and adopt the recommended one; scores are identified first if
    needed. The pipeline keeps the tuner's record, so the written folder carries tune.json and its report."""
    result = Tuner(pipe, listener=pipe.listener, cancel=pipe.cancel, **options).run()
    pipe.adopt(pipe.config.replace(**result.best().setting), result)
    return result

"""Re-tuning a run that exists: the one path behind `reasonany tune RUN` and the app's "Find a good setting".

Why one function: the two used to differ in what they kept after a failure and in what they wrote; both now
search from the run's scores, adopt the recommendation as the pipeline's new version, and put the pipeline back
exactly as it was when the search fails or is cancelled."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.paths import run_files
from ..measure.tune import TuneResult
from ..output import report
from ..run.pipeline import Pipeline
from .merge import tune_pipeline


def retune(
    pipe: Pipeline, options: Mapping[str, Any], run_folder: Path | None = None, select: bool = True
) -> TuneResult:
    """Search a setting (Tuner options: budget, minutes, checks, check_rows) and adopt the recommended one.

    The scores come from the pipeline (a live one: no new gradients) or from the cache (a run opened from disk:
    its models are checked first). `select`: the recommendation's masks are computed too (the app shows them).
    Failed or cancelled, the pipeline keeps its setting, masks and previous search, so saving never writes a
    half-searched state. `run_folder`: the run's tune.json and its report section "How the setting was chosen"
    are rewritten with this search (the CLI's `reasonany tune RUN`); nothing else in the run changes."""
    if not pipe.ckpts:
        pipe.check()
    with pipe.trial():
        result = tune_pipeline(pipe, **options)
        if select:
            pipe.select()
    if run_folder is not None:
        result.write(run_files(run_folder))
        report.add_section(run_folder, "tune", result.report_section())
    return result

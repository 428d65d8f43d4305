"""Re-tuning a run that exists: the one path behind `reasonany tune RUN` and the app's "Find a good setting".

Why one function: the two used to differ in what they kept after a failure and in what they wrote; both now
search from the run's scores, adopt the recommendation as the pipeline's new version, and put the pipeline back
exactly as it was when the search fails or is cancelled. Both also refuse a run whose models or calibration data
changed since it was merged: the search would measure the new models and be written next to weights made from the
old ones, with nothing to say so (issue 22, item 1)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.errors import InputError
from ..core.paths import RUN_DIR, run_files
from ..measure.tune import TuneResult
from ..output import report
from ..run.pipeline import Pipeline
from .merge import tune_pipeline


def retune(
    pipe: Pipeline,
    options: Mapping[str, Any],
    run_folder: Path | None = None,
    select: bool = True,
    write: bool = True,
) -> TuneResult:
    """Search a setting (Tuner options: budget, minutes, checks, check_rows) and adopt the recommended one.

    The scores come from the pipeline (a live one: no new gradients) or from the cache (a run opened from disk:
    its models are checked first). `select`: the recommendation's masks are computed too (the app shows them).
    Failed or cancelled, the pipeline keeps its setting, masks and previous search, so saving never writes a
    half-searched state. `run_folder`: the run being re-tuned; its inputs must be the ones it was merged from
    (check_inputs_unchanged), and with `write` its tune.json and its report section "How the setting was chosen"
    are rewritten with this search (the CLI's `reasonany tune RUN`); nothing else in the run changes."""
    if not pipe.ckpts:
        pipe.check()
    if run_folder is not None:
        check_inputs_unchanged(pipe, run_folder)
    with pipe.trial():
        result = tune_pipeline(pipe, **options)
        if select:
            pipe.select()
    if run_folder is not None and write:
        result.write(run_files(run_folder))
        report.add_section(run_folder, "tune", result.report_section())
    return result


def check_inputs_unchanged(pipe: Pipeline, run_folder: Path) -> None:
    """Refuse (InputError, exit 2) when a model or calibration file of `pipe` differs from the one `run_folder`
    was merged from, by the content fingerprints its report.json keeps. Cheap: a model's fingerprint reads 17
    blocks of 64 KiB per file, and the calibration sets prepared here are the ones the search uses anyway."""
    made = report.read_report(run_folder)
    changed = []
    for role, entry in (made.get("models") or {}).items():
        ckpt = pipe.ckpts.get(role)
        if ckpt is not None and entry.get("fingerprint") and entry["fingerprint"] != ckpt.fingerprint():
            changed.append(f"the {role} model ({ckpt.path})")
    kept_data = {r: e for r, e in (made.get("data") or {}).items() if e.get("fingerprint")}
    if kept_data and pipe.config.needs_scores:
        calib = pipe.prepare()
        for role, entry in kept_data.items():
            if role in calib and entry["fingerprint"] != calib[role].fingerprint:
                changed.append(f"the {role} calibration data ({calib[role].path})")
    if changed:
        names = ", ".join(changed)
        raise InputError(
            f"{names[0].upper()}{names[1:]} changed after the run {run_folder} was merged: "
            f"{'its content differs' if len(changed) == 1 else 'their content differs'} from the fingerprint in "
            f"{RUN_DIR}/report.json. The run's weights were made from the earlier version, so a search on the new "
            "one would not describe them, and nothing was written. Merge again to make a new run from the changed "
            "inputs, or put back the ones this run was made from."
        )

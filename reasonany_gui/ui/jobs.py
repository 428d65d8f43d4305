"""The engine calls the app runs on the worker thread, one function per user action.

Why separate from the window: each job is a plain function of (listener, cancel) that only calls the
engine and returns its results, so it is easy to read, runs the same in tests, and never touches a widget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from reasonany_gui.engine.config import MergeConfig
from reasonany_gui.engine.events import CancelToken
from reasonany_gui.engine.pipeline import Pipeline

Listener = Callable[[object], None]


@dataclass
class MergeResult:
    pipeline: Pipeline
    selection: Any
    out: Path | None
    report: dict = field(default_factory=dict)


def _read_report(out: Path | None) -> dict:
    import json

    if out is None:
        return {}
    path = Path(out) / "reasonany" / "report.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def merge_job(config: MergeConfig, holder: dict, tune: dict | None = None) -> Callable[[Listener, CancelToken], MergeResult]:
    """check -> (refuse a bad output folder or too little disk early) -> identify -> select -> write.

    tune: {"budget", "checks"} ("tune automatically"): the steps of `Pipeline.run(tune=...)`, so the merge written
    is the tuner's recommendation and its folder holds tune.json. The result's `out` is what `write` returned:
    `NAME-2` when NAME was filled during the run."""

    def run(listener: Listener, cancel: CancelToken) -> MergeResult:
        checks = _load_checks(tune)  # a malformed checks file is refused before anything is loaded
        p = Pipeline(config, listener, cancel)
        holder["pipeline"] = p
        p.check()
        if tune is not None:  # before scoring: the checks need rows that scoring never sees
            from reasonany_gui.engine.tune import DEFAULT_CHECK_ROWS, reserve_check_rows

            p.config, notes = reserve_check_rows(p.config, DEFAULT_CHECK_ROWS)
            for note in notes:
                p.log(note, "warning")
        p.check_output()  # folder and free disk space, before the long identification
        p.identify()
        if tune is not None:
            p.tune(budget=int(tune["budget"]), checks=checks)
        sel = p.select()
        out = p.write(config.out)
        return MergeResult(p, sel, out, _read_report(out))

    return run


def _load_checks(tune: dict | None):
    """The user's checks file (engine.tune.Checks), or None; a malformed one raises InputError with its reason."""
    if not tune or not tune.get("checks"):
        return None
    from reasonany_gui.engine.tune import Checks

    return Checks.load(tune["checks"])


def _adopt(p: Pipeline, listener: Listener, cancel: CancelToken) -> None:
    """A pipeline built in an earlier job reports to this job's listener and obeys its token."""
    p.listener = listener
    p.cancel = cancel


def retune_job(pipeline: Pipeline | None, config: MergeConfig, holder: dict):
    """Re-select with new shares/strengths/scope. With a live pipeline: no new gradients."""

    def run(listener: Listener, cancel: CancelToken) -> MergeResult:
        p = pipeline
        if p is None:  # an opened run: identification hits the score cache when its scores are kept
            p = Pipeline(config, listener, cancel)
            p.check()
            p.identify()
        _adopt(p, listener, cancel)
        holder["pipeline"] = p
        sel = p.select(config)
        return MergeResult(p, sel, None)

    return run


def tune_job(pipeline: Pipeline | None, config: MergeConfig, holder: dict, budget: int, checks: str | None = None):
    """Find a good setting (engine.tune via `Pipeline.tune`) from the cached scores, then select the recommended one.

    The pipeline adopts the recommendation (and keeps `tune_result`, so a saved version carries tune.json and the
    report's tune section). Cancelled or failed, the pipeline is put back exactly as it was: its setting, the
    masks the app shows and the previous search, so "Save this version" never writes a half-searched state."""

    def run(listener: Listener, cancel: CancelToken) -> MergeResult:
        loaded = _load_checks({"checks": checks})
        p = pipeline
        if p is None:  # an opened run: identification hits the score cache when its scores are kept
            p = Pipeline(config, listener, cancel)
            holder["pipeline"] = p
            p.check()
        _adopt(p, listener, cancel)
        holder["pipeline"] = p
        before = (p.config, p.selection, p.tune_result)
        try:
            p.tune(budget=int(budget), checks=loaded)
            sel = p.select()
        except BaseException:
            p.config, p.selection, p.tune_result = before
            raise
        return MergeResult(p, sel, None)

    return run


def write_job(pipeline: Pipeline, out: Path):
    def run(listener: Listener, cancel: CancelToken) -> MergeResult:
        _adopt(pipeline, listener, cancel)
        written = pipeline.write(out)
        return MergeResult(pipeline, pipeline.selection, written, _read_report(written))

    return run


def open_run_job(folder: Path):
    def run(_listener: Listener, _cancel: CancelToken):
        from reasonany_gui.engine import report

        return report.load_run(folder)

    return run


def evaluate_job(out_dir: Path, data: list[str], device: str = "auto", **options):
    """Post-merge check of the merged model against the three inputs; the result also goes into the report.

    options: max_samples, max_length, max_new_tokens, prompts (engine.evaluate.evaluate_run's defaults otherwise).
    """

    def run(listener: Listener, cancel: CancelToken) -> dict:
        from reasonany_gui.engine.evaluate import evaluate_run

        # evaluate_run updates report.json, report.html and the model card itself (the CLI's path too)
        return evaluate_run(Path(out_dir), data=list(dict.fromkeys(data)), device=device, listener=listener,
                            cancel=cancel, **options)

    return run


ASK_ROLES = ("merged", "base", "reasoning", "domain")


def ask_job(out_dir: Path, config: MergeConfig, prompt: str, device: str = "auto", max_new_tokens: int = 96):
    """The user's own question, answered greedily by the merged model and the three inputs (one at a time in
    memory). Returns {"prompt", "outputs": {role: text}}; the report is left as it is."""

    def run(listener: Listener, cancel: CancelToken) -> dict:
        from reasonany_gui.engine.checkpoints import resolve_model
        from reasonany_gui.engine.devices import resolve_device
        from reasonany_gui.engine.evaluate import greedy_generate, load_for_eval
        from reasonany_gui.engine.events import Progress

        dev = resolve_device(device)
        paths = {role: resolve_model(getattr(config, role), config.allow_download) for role in ASK_ROLES[1:]}
        paths["merged"] = Path(out_dir)
        outputs: dict[str, str] = {}
        for i, role in enumerate(ASK_ROLES):
            cancel.check()
            listener(Progress("ask", i / len(ASK_ROLES), i / len(ASK_ROLES), f"the {role} model answers"))
            model, tokenizer = load_for_eval(paths[role], dev)
            outputs[role] = greedy_generate(model, tokenizer, [prompt], max_new_tokens)[0]
            del model
        return {"prompt": prompt, "outputs": outputs}

    return run

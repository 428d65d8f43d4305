"""The engine calls the app runs on the worker thread, one function per user action.

Why separate from the window: each job is a plain function of (listener, cancel) that only calls the
engine and returns its results, so it is easy to read, runs the same in tests, and never touches a widget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from reasonany_gui.engine.core.events import CancelToken
from reasonany_gui.engine.core.paths import run_files
from reasonany_gui.engine.run.pipeline import Pipeline
from reasonany_gui.engine.settings.config import ROLES, MergeConfig
from reasonany_gui.engine.workflows.merge import merge
from reasonany_gui.engine.workflows.retune import check_inputs_unchanged, retune

if TYPE_CHECKING:
    from reasonany_gui.engine.measure.tune import Checks

Listener = Callable[[object], None]
T = TypeVar("T")
#: a job as the worker runs it: (listener, cancel token) -> its result
Job = Callable[[Listener, CancelToken], T]


@dataclass
class MergeResult:
    pipeline: Pipeline
    selection: Any
    out: Path | None
    report: dict[str, Any] = field(default_factory=dict)


def _read_report(out: Path | None) -> dict[str, Any]:
    import json

    if out is None:
        return {}
    path = run_files(out) / "report.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def merge_job(config: MergeConfig, tune: dict[str, Any] | None = None) -> Job[MergeResult]:
    """`Pipeline.run`, the CLI's run path, kept open so the app can re-select and re-tune from its scores.

    tune: {"budget", "checks"} ("tune automatically"): the merge written is the tuner's recommendation and its
    folder holds tune.json. The result's `out` is what the run wrote: `NAME-2` when NAME was filled during the
    run. A failed or cancelled run closes its pipeline itself (nothing is left for the window to release)."""

    def run(listener: Listener, cancel: CancelToken) -> MergeResult:
        options = None
        if tune is not None:  # a malformed checks file is refused before anything is loaded
            options = {"budget": int(tune["budget"]), "checks": _load_checks(tune)}
        p = Pipeline(config, listener, cancel)
        out = merge(p, options, keep_open=True)
        return MergeResult(p, p.selection, out, _read_report(out))

    return run


def ranks_merge_job(config: MergeConfig, tune: dict[str, Any] | None = None) -> Job[Any]:
    """A merge whose `devices` names several processes ("All GPUs"): the CLI's launcher (launcher.launch,
    what `reasonany merge --devices ...` runs), rank 0's events forwarded to this job's listener as they come.

    Returns the written run opened like "Open run…" (engine.report.load_run): the ranks' models are gone with
    their processes, so re-tuning reads the scores from the cache. Cancel signals the launcher's process group
    (the ranks cancel cleanly, nothing is written); a failed rank ends the job with rank 0's one message."""

    def run(listener: Listener, cancel: CancelToken) -> Any:
        from reasonany_gui.engine.output import report
        from reasonany_gui.engine.scoring import collectives
        from reasonany_gui.engine.workflows import launcher

        _load_checks(tune)  # a malformed checks file is refused before any process starts
        flags = launcher.worker_flags(tune=tune, events=True)
        launched = launcher.launch(config, flags, collectives.ranks_needed(config.devices), capture=True)
        out = launcher.follow(launched, listener, cancel)
        return report.load_run(out)

    return run


def _load_checks(tune: dict[str, Any] | None) -> Checks | None:
    """The user's checks file (engine.tune.Checks), or None; a malformed one raises InputError with its reason."""
    if not tune or not tune.get("checks"):
        return None
    from reasonany_gui.engine.measure.tune import Checks

    return Checks.load(tune["checks"])


def _closed_on_failure(
    pipeline: Pipeline | None,
    config: MergeConfig,
    listener: Listener,
    cancel: CancelToken,
    work: Callable[[Pipeline], MergeResult],
) -> MergeResult:
    """Run `work` on the window's pipeline, or on a new one for an opened run (its scores come from the cache).

    Why the job closes a pipeline it built when `work` fails: nothing else holds it, and its open models would
    otherwise stay mapped until the app quits. The window's own pipeline is left open (it still shows it)."""
    own = pipeline is None
    p = Pipeline(config, listener, cancel) if pipeline is None else pipeline
    p.report_to(listener, cancel)  # a pipeline built in an earlier job reports to this job
    try:
        return work(p)
    except BaseException:
        if own:
            p.close()
        raise


def retune_job(pipeline: Pipeline | None, config: MergeConfig, run_folder: Path | None = None) -> Job[MergeResult]:
    """Re-select with new shares/strengths/scope. With a live pipeline: no new gradients.

    `run_folder`: the opened run (no live pipeline); its models and data must be the ones it was merged from, or
    the new masks would be made from scores of other inputs than its weights (InputError naming what changed)."""

    def run(listener: Listener, cancel: CancelToken) -> MergeResult:
        def work(p: Pipeline) -> MergeResult:
            if pipeline is None:  # an opened run: identification hits the score cache when its scores are kept
                p.check()
                if run_folder is not None:
                    check_inputs_unchanged(p, run_folder)
                p.identify()
            return MergeResult(p, p.select(config), None)

        return _closed_on_failure(pipeline, config, listener, cancel, work)

    return run


def tune_job(
    pipeline: Pipeline | None,
    config: MergeConfig,
    budget: int,
    checks: str | None = None,
    run_folder: Path | None = None,
) -> Job[MergeResult]:
    """Find a good setting from the scores and select the recommended one: engine.workflows.retune, the path
    `reasonany tune RUN` takes too.

    The pipeline adopts the recommendation as a new unsaved version (and keeps `tune_result`, so a saved version
    carries tune.json and the report's tune section). Cancelled or failed, the pipeline is put back exactly as it
    was (retune's promise), so "Save this version" never writes a half-searched state. `run_folder`: the opened
    run searched from (retune refuses it when its inputs changed); nothing is written into it here, the search
    is saved with the version."""

    def run(listener: Listener, cancel: CancelToken) -> MergeResult:
        loaded = _load_checks({"checks": checks})

        def work(p: Pipeline) -> MergeResult:
            retune(p, {"budget": int(budget), "checks": loaded}, run_folder=run_folder, write=False)
            return MergeResult(p, p.selection, None)

        return _closed_on_failure(pipeline, config, listener, cancel, work)

    return run


def write_job(pipeline: Pipeline, out: Path) -> Job[MergeResult]:
    def run(listener: Listener, cancel: CancelToken) -> MergeResult:
        pipeline.report_to(listener, cancel)
        written = pipeline.write(out)
        return MergeResult(pipeline, pipeline.selection, written, _read_report(written))

    return run


def open_run_job(folder: Path) -> Job[Any]:
    def run(_listener: Listener, _cancel: CancelToken) -> Any:
        from reasonany_gui.engine.output import report

        return report.load_run(folder)

    return run


def evaluate_job(out_dir: Path, data: list[str], device: str = "auto", **options: Any) -> Job[dict[str, Any]]:
    """Post-merge check of the merged model against the three inputs; the result also goes into the report.

    options: max_samples, max_length, max_new_tokens, prompts (engine.evaluate.evaluate_run's defaults otherwise).
    """

    def run(listener: Listener, cancel: CancelToken) -> dict[str, Any]:
        from reasonany_gui.engine.measure.evaluate import evaluate_run

        # evaluate_run updates report.json, report.html and the model card itself (the CLI's path too)
        return evaluate_run(
            Path(out_dir), data=list(dict.fromkeys(data)), device=device, listener=listener, cancel=cancel, **options
        )

    return run


#: the order the answers are shown in: the merge and Task Arithmetic (the comparison Evaluate makes), then the inputs
ASK_ROLES = ("merged", "task_arithmetic", *ROLES)
#: each answer box's title
ASK_TITLES = {
    "merged": "Merged model",
    "task_arithmetic": "Task Arithmetic (strengths 1 / 1)",
    **{role: f"{role.capitalize()} model" for role in ROLES},
}


def ask_job(
    out_dir: Path, config: MergeConfig, prompt: str, device: str = "auto", max_new_tokens: int = 96
) -> Job[dict[str, Any]]:
    """The user's own question, answered greedily by the merged model, Task Arithmetic at strengths 1/1 (merged in
    memory, as Evaluate compares with it) and the three inputs, one model at a time in memory. Returns
    {"prompt", "outputs": {role: text}}; the report is left as it is."""

    def run(listener: Listener, cancel: CancelToken) -> dict[str, Any]:
        from reasonany_gui.engine.core.devices import resolve_device
        from reasonany_gui.engine.core.events import Progress
        from reasonany_gui.engine.io.resolve import APP_FETCH_HINT, resolve_model
        from reasonany_gui.engine.measure.evaluate import greedy_generate, load_for_eval

        dev = resolve_device(device)
        paths = {
            role: resolve_model(getattr(config, role), config.allow_download, fetch_hint=APP_FETCH_HINT)
            for role in ROLES
        }
        paths["merged"] = Path(out_dir)
        outputs: dict[str, str] = {}
        for i, role in enumerate(ASK_ROLES):
            cancel.check()
            listener(Progress("ask", i / len(ASK_ROLES), i / len(ASK_ROLES), f"{ASK_TITLES[role]} answers"))
            if role == "task_arithmetic":
                outputs[role] = _task_arithmetic_answer(config, prompt, dev, max_new_tokens, cancel)
                continue
            model, tokenizer = load_for_eval(paths[role], dev)
            outputs[role] = greedy_generate(model, tokenizer, [prompt], max_new_tokens)[0]
            del model
        return {"prompt": prompt, "outputs": outputs}

    return run


def _task_arithmetic_answer(
    config: MergeConfig, prompt: str, device: Any, max_new_tokens: int, cancel: CancelToken
) -> str:
    """θ_b + τ_r + τ_d merged in memory (measure.live, the way evaluate_run measures it), answering."""
    from reasonany_gui.engine.measure.evaluate import greedy_generate
    from reasonany_gui.engine.measure.live import task_arithmetic_merged

    with task_arithmetic_merged(config, device, cancel) as (model, tokenizer):
        return greedy_generate(model, tokenizer, [prompt], max_new_tokens)[0]

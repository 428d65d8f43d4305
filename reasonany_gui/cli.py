"""`reasonany`: the headless twin of the GUI (ALGORITHM.md §4). Used by tests, benchmarks and power users.

Exit codes: 0 done; 2 bad input (one message naming the file or value and what to do; nothing written);
130 cancelled; 1 anything else (message plus the log path).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import traceback
from pathlib import Path
from types import FrameType
from typing import Any

from .console import ConsolePrinter, JsonlEvents, setup_logging
from .engine.core.errors import CancelledError, InputError, OutOfMemoryError, ReasonAnyError
from .engine.core.events import CancelToken
from .engine.core.paths import RUN_DIR, run_files
from .engine.settings.config import MergeConfig, cli_flag
from .engine.settings.fields import Setting

log = logging.getLogger("reasonany")

#: what the tuner chooses (so `merge --demo --tune` does not start from the demo's known-good preset)
TUNED_FIELDS = ("method", "reasoning_ratio", "domain_ratio", "reasoning_scale", "domain_scale", "scope")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reasonany", description="Training-free Reasoning + X model merging (ReasonAny)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("merge", help="identify and merge; writes the output folder")
    m.add_argument("config", nargs="?", help=f"a run config (YAML), e.g. an earlier OUT/{RUN_DIR}/run.yaml")
    add_setting_flags(m)
    m.add_argument(
        "--demo",
        action="store_true",
        help="merge the built-in demo trio with its own data and benchmarked setting (flags still override)",
    )
    m.add_argument(
        "--tune",
        action="store_true",
        help="search ratios, scales and method on held-out checks and write the recommended merge",
    )
    add_tune_options(m)
    m.add_argument("--quiet", action="store_true")
    # rank 0 of a launched job writes its events as JSON lines on stdout, for the app (engine/workflows/launcher.follow)
    m.add_argument("--events-jsonl", action="store_true", help=argparse.SUPPRESS)

    t = sub.add_parser("tune", help="find a good setting for a trio from held-out checks (scores from the cache)")
    t.add_argument("source", help="a finished output folder, or a run config (YAML)")
    t.add_argument("--out", help="also write the recommended merge into this new folder")
    t.add_argument("--device", help="auto, cpu or cuda:N (default: the run's)")
    add_tune_options(t)
    t.add_argument("--quiet", action="store_true")

    e = sub.add_parser("eval", help="post-merge check: perplexity and sample generations of the four models")
    e.add_argument("out", help="a finished output folder")
    e.add_argument(
        "--data", nargs="+", default=None, help="held-out text files or builtin:NAME (default: the run's data)"
    )
    e.add_argument("--prompt", action="append", default=None, help="a prompt to generate from (repeatable)")
    e.add_argument("--max-samples", type=int, default=32)
    e.add_argument("--device", default="auto")
    e.add_argument(
        "--no-compare",
        dest="compare",
        action="store_false",
        help="skip the Task Arithmetic (λ 1/1) comparison (one more merge in memory)",
    )
    e.add_argument("--quiet", action="store_true")

    c = sub.add_parser("cache", help="show or clear the importance-score cache")
    c.add_argument("action", choices=("info", "clear"))
    add_export_parsers(sub)
    return parser


def add_setting_flags(p: argparse.ArgumentParser) -> None:
    """One flag per MergeConfig field that has one, generated from the field's Setting (type, choices, help).

    Every flag defaults to None = "not given", so a config file's value stands; booleans are paired
    (--intersect/--no-intersect, --cache/--no-cache), so either way overrides the default or the file."""
    for name, meta in MergeConfig.settings().items():
        flag = cli_flag(name)
        if flag is None:
            continue
        kind = MergeConfig.__dataclass_fields__[name].type
        kwargs: dict[str, Any] = {"dest": name, "default": None, "help": setting_help(name, meta)}
        if kind == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        elif meta.options():
            kwargs["choices"] = meta.options()
        elif kind in ("int", "float"):
            kwargs["type"] = int if kind == "int" else float
        p.add_argument(flag, **kwargs)


def setting_help(name: str, meta: Setting) -> str:
    """The CLI help of a setting: its tooltip, what to type, and (for a method) each choice's one-line help."""
    text = meta.tooltip + (f" ({meta.cli_hint})" if meta.cli_hint else "")
    if name == "method":
        from .engine.methods.registry import REGISTRY

        text += " " + " ".join(f"{m.id}: {m.help}" for m in REGISTRY.values())
    return text.replace("%", "%%")  # argparse formats help with %


def retry_flags(suggestions: dict[str, Any]) -> str:
    """Suggested settings as the flags that set them (--no-cache for score_cache = False)."""
    parts = []
    for name, value in suggestions.items():
        flag = cli_flag(name) or "--" + name.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else "--no-" + flag[2:])
        else:
            parts.append(f"{flag} {value}")
    return " ".join(parts)


def add_tune_options(p: argparse.ArgumentParser) -> None:
    from .engine.measure.tune import DEFAULT_BUDGET, DEFAULT_CHECK_ROWS

    p.add_argument(
        "--budget", type=int, default=DEFAULT_BUDGET, help=f"candidates to measure (default {DEFAULT_BUDGET})"
    )
    p.add_argument("--minutes", type=float, default=None, help="stop the search after this many minutes")
    p.add_argument(
        "--checks", default=None, help="JSON file of check prompts with expected answers, or prompts to refuse / answer"
    )
    p.add_argument(
        "--check-rows",
        type=int,
        default=DEFAULT_CHECK_ROWS,
        help=f"held-out calibration rows per skill for the checks (default {DEFAULT_CHECK_ROWS})",
    )


def tune_options(args: argparse.Namespace) -> dict[str, Any]:
    """Tuner keyword arguments from the flags; a bad checks file or budget is refused before any work."""
    from .engine.measure.tune import DEFAULT_BUDGET, MIN_CHECK_ROWS, Checks

    if args.budget < 1:
        raise InputError(f"--budget {args.budget}: the tuner needs at least 1 candidate (default {DEFAULT_BUDGET}).")
    if args.minutes is not None and not args.minutes > 0:
        raise InputError(f"--minutes {args.minutes}: give a positive number of minutes.")
    if args.check_rows < MIN_CHECK_ROWS:
        raise InputError(f"--check-rows {args.check_rows}: the checks need at least {MIN_CHECK_ROWS} rows per skill.")
    checks = Checks.load(args.checks) if args.checks else None
    return {"budget": args.budget, "minutes": args.minutes, "checks": checks, "check_rows": args.check_rows}


def config_from_args(args: argparse.Namespace) -> MergeConfig:
    cfg = MergeConfig.from_yaml(args.config) if args.config else MergeConfig()
    if getattr(args, "demo", False):
        from .engine.data import demo

        trio = demo.ensure_demo()
        preset = demo.demo_preset()
        if getattr(args, "tune", False):  # the tuner finds the method, ratios and scales itself
            preset = {k: v for k, v in preset.items() if k not in TUNED_FIELDS}
        cfg = cfg.replace(**{r: str(p) for r, p in trio.items()}, **preset)
    changes = {name: getattr(args, name) for name in MergeConfig.settings() if getattr(args, name, None) is not None}
    cfg = cfg.replace(**changes)
    if args.config and "out" not in changes and cfg.out and Path(cfg.out).exists():
        raise InputError(
            f"The config's output folder {cfg.out} already exists: pass --out NEW_FOLDER to reproduce the run there."
        )
    return cfg


def cmd_merge(args: argparse.Namespace, cancel: CancelToken) -> int:
    from .engine.run.pipeline import Pipeline

    cfg = config_from_args(args)
    cfg.validate(need_out=True)
    log.info("merge: %s", cfg.to_dict())
    tune = tune_options(args) if args.tune else None
    unused = [flag for flag, value in (("--checks", args.checks), ("--minutes", args.minutes)) if value is not None]
    if unused and not args.tune:
        raise InputError(f"{' and '.join(unused)} only apply to the setting search: add --tune, or leave them out.")
    from .engine.scoring import collectives
    from .engine.workflows import launcher

    world = collectives.world_from_env()
    stream = JsonlEvents(sys.stdout) if args.events_jsonl and (world is None or world.rank == 0) else None
    out: Path | None
    try:
        if launcher.needs_launch(cfg):  # --devices with several entries: the same job as torchrun would start
            # as the app does: the ranks' own output goes to the launch folder, rank 0's events are printed here,
            # and a failure is one message (a Ctrl+C / SIGTERM cancels the token: forwarded to the launcher)
            launched = launcher.launch(cfg, launch_flags(args), collectives.ranks_needed(cfg.devices), capture=True)
            printer = ConsolePrinter(args.quiet or stream is not None)
            out = launcher.follow(launched, printer if stream is None else stream.listener(printer), cancel)
        else:
            with launcher.rank_session(cfg) as cfg:  # under torchrun: this rank's device and process group
                quiet = args.quiet or stream is not None or not collectives.is_writer()  # rank 0 reports for all
                printer = ConsolePrinter(quiet)
                listener = printer if stream is None else stream.listener(printer)
                out = launcher.run_rank(Pipeline(cfg, listener=listener, cancel=cancel), tune)
    except BaseException as exc:
        if stream is not None:
            stream.failed(exc)
        raise
    if stream is not None and out is not None:
        stream.done(out)
    elif out is not None:
        print(out)
    return 0


def launch_flags(args: argparse.Namespace) -> list[str]:
    """The merge flags a torchrun worker needs besides the run config file (tuning and output)."""
    from .engine.workflows.launcher import worker_flags

    tune = None
    if args.tune:
        tune = {"budget": args.budget, "check_rows": args.check_rows, "minutes": args.minutes, "checks": args.checks}
    return worker_flags(quiet=args.quiet, tune=tune, events=True)  # rank 0's events reach the CLI as the app's


def cmd_tune(args: argparse.Namespace, cancel: CancelToken) -> int:
    """Tune from a finished run (its scores are in the cache) or a config; optionally write the pick to --out."""
    from .engine.run.pipeline import Pipeline
    from .engine.workflows.retune import retune

    options = tune_options(args)
    source = Path(args.source)
    run_folder = source if source.is_dir() else None
    if run_folder is not None:
        run_yaml = run_files(run_folder) / "run.yaml"
        if not run_yaml.is_file():
            raise InputError(
                f"{source} is not a ReasonAny output folder (no {RUN_DIR}/run.yaml). Pick a finished "
                "run's folder or a run config file."
            )
        cfg = MergeConfig.from_yaml(run_yaml)
    else:
        cfg = MergeConfig.from_yaml(source)
    cfg = cfg.replace(out=args.out or None, **({"device": args.device} if args.device else {}))
    pipe = Pipeline(cfg, listener=ConsolePrinter(args.quiet), cancel=cancel)
    try:
        if args.out:
            pipe.check()
            pipe.check_output()
        result = retune(pipe, options, run_folder=run_folder, select=bool(args.out))
        print(result.summary)
        if run_folder is not None:
            print(
                f'Wrote {run_files(run_folder) / "tune.json"} and the report\'s section "How the setting was chosen".'
            )
        if args.out:
            print(pipe.write())
    finally:
        pipe.close()
    return 0


def cmd_eval(args: argparse.Namespace, cancel: CancelToken) -> int:
    from .engine.measure import evaluate

    if args.max_samples < 1:
        raise InputError(f"--max-samples {args.max_samples}: evaluate at least 1 sample per data file (default 32).")
    data = args.data or run_data(Path(args.out))
    result = evaluate.evaluate_run(
        Path(args.out),
        data=data,
        prompts=args.prompt,
        max_samples=args.max_samples,
        device=args.device,
        listener=ConsolePrinter(args.quiet),
        cancel=cancel,
        compare=args.compare,
    )
    for data, vals in (result.get("perplexity") or {}).items():
        print(f"perplexity (lower is better) on {data}: " + ", ".join(f"{r} {v:.2f}" for r, v in vals.items()))
    for line in result.get("verdict") or []:
        print(line)
    print(f"Updated {run_files(args.out) / 'report.html'}, report.json, eval.json and README.md.")
    return 0


def run_data(out: Path) -> list[str]:
    """The calibration data of a finished run (its held-out part is what `eval` measures by default)."""
    run = run_files(out) / "run.yaml"
    if not run.is_file():
        raise InputError(
            f"{out} is not a ReasonAny output folder (no {RUN_DIR}/run.yaml). Pick a finished run's folder."
        )
    cfg = MergeConfig.from_yaml(run)
    return list(dict.fromkeys(d for d in (cfg.reasoning_data, cfg.domain_data) if d))


def cmd_cache(args: argparse.Namespace) -> int:
    from .engine.core.paths import cache_dir
    from .engine.io.scorecache import ScoreStore
    from .engine.io.writer import human_bytes

    store = ScoreStore(cache_dir() / "scores")
    if args.action == "clear":
        removed, kept, in_use = store.clear()
        where = store.root.resolve()
        print(f"Cleared the score cache in {where}: {removed} entr{'y' if removed == 1 else 'ies'} removed")
        if in_use:
            print(
                f"  {len(in_use)} entr{'y is' if len(in_use) == 1 else 'ies are'} in use by a running merge or an "
                "open app and were kept; clear again when it has finished:"
            )
        for k in in_use:
            print(f"  in use: {k}")
        for k in kept:
            print(f"  left alone (not a score entry): {k}")
    else:
        print(f"{store.root}: {human_bytes(store.size_bytes())}")
    return 0


# ------------------------------------------------------------------ export (GGUF) and publish (Hub), issue 24
def add_export_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .engine.io.publish import OPTIONAL
    from .engine.output.gguf import DEFAULT_TYPE, TYPE_HELP, TYPES

    x = sub.add_parser("export", help="write the merged model as one GGUF file (llama.cpp, Ollama, LM Studio)")
    x.add_argument("out", help="a merged model's output folder")
    x.add_argument("--gguf", action="store_true", required=True, help="export to GGUF (the one format so far)")
    types = "; ".join(f"{t}: {TYPE_HELP[t]}" for t in TYPES)
    x.add_argument("--type", default=DEFAULT_TYPE, choices=TYPES, help=f"weight type (default {DEFAULT_TYPE}). {types}")
    x.add_argument("--dest", help="the .gguf file to write (default: OUT/NAME-TYPE.gguf)")
    x.add_argument("--quiet", action="store_true")

    p = sub.add_parser("publish", help="upload the merged model to the Hugging Face Hub (uses your `hf auth login`)")
    p.add_argument("out", help="a merged model's output folder")
    p.add_argument("--repo", required=True, help="the Hub repo to create, OWNER/NAME")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument(
        "--include",
        nargs="+",
        default=[],
        choices=tuple(OPTIONAL),
        help="also upload these run files (they may hold local paths): report (report.html), run (run.yaml), masks",
    )
    p.add_argument("--add-commit", action="store_true", help="if the repo exists, add a commit to it")
    p.add_argument("--dry-run", action="store_true", help="only show the files and the card that would be sent")
    p.add_argument("--quiet", action="store_true")


def cmd_export(args: argparse.Namespace, cancel: CancelToken) -> int:
    from .engine.workflows.export import export_gguf

    done = export_gguf(
        Path(args.out), args.type, Path(args.dest) if args.dest else None, ConsolePrinter(args.quiet), cancel
    )
    print(done.gguf)
    print(f"Wrote {done.modelfile} for Ollama.\n{done.how_to_run()}", file=sys.stderr)
    return 0


def cmd_publish(args: argparse.Namespace, cancel: CancelToken) -> int:
    from .engine.io.publish import plan_publish
    from .engine.io.writer import human_bytes
    from .engine.workflows.export import publish

    plan = plan_publish(Path(args.out), args.repo, args.private, args.include)
    print(
        f"{'Private' if plan.private else 'Public'} repo {plan.repo_id}: {len(plan.files)} files, "
        f"{human_bytes(plan.total_bytes)}"
    )
    for f in plan.files:
        print(f"  {f.path_in_repo}  {human_bytes(f.size)}")
    if args.dry_run:
        print("\n" + plan.card)
        return 0
    print(publish(plan, add_commit=args.add_commit, listener=ConsolePrinter(args.quiet), cancel=cancel))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    path = setup_logging()
    cancel = CancelToken()
    # SIGTERM (kill, a service manager) and SIGHUP (a closed terminal) clean up like Ctrl+C
    handled = [getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n)]
    previous = {sig: signal.getsignal(sig) for sig in handled}

    def on_signal(sig: int, _frame: FrameType | None) -> None:
        # first signal: cancel cleanly; a second Ctrl+C: default behaviour
        cancel.cancel()
        if sig == signal.SIGINT:
            signal.signal(signal.SIGINT, previous[signal.SIGINT])

    for sig in handled:
        signal.signal(sig, on_signal)
    try:
        if args.command == "merge":
            return cmd_merge(args, cancel)
        if args.command == "eval":
            return cmd_eval(args, cancel)
        if args.command == "tune":
            return cmd_tune(args, cancel)
        if args.command in ("export", "publish"):
            return cmd_export(args, cancel) if args.command == "export" else cmd_publish(args, cancel)
        return cmd_cache(args)
    except InputError as exc:
        log.error("input error: %s", exc)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (CancelledError, KeyboardInterrupt):
        log.warning("cancelled")
        print("Cancelled; nothing was written.", file=sys.stderr)
        return 130
    except OutOfMemoryError as exc:
        log.error("out of memory: %s", exc)
        print(f"error: {exc}\nTry again with: {retry_flags(exc.suggestions)}\nLog: {path}", file=sys.stderr)
        return 1
    except ReasonAnyError as exc:
        log.error("%s", exc)
        print(f"error: {exc}\nLog: {path}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the last line of defence: message + log, never a bare traceback
        log.error("unexpected error:\n%s", traceback.format_exc())
        print(f"error: {type(exc).__name__}: {exc}\nDetails are in the log: {path}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def exit_now_on_ctrl_c(code: int) -> None:
    """From here to the end of the process, Ctrl+C (or another Ctrl+C) ends it at once with `code`.

    Why: the work is done or cancelled and cleaned up, but interpreter shutdown still runs atexit callbacks (one
    joins worker threads that finish their last step), and a KeyboardInterrupt there printed "Exception ignored
    in atexit callback … Traceback … KeyboardInterrupt" after the CLI's own message (issue 22)."""

    def now(_sig: int, _frame: FrameType | None) -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)

    signal.signal(signal.SIGINT, now)


if __name__ == "__main__":
    from .engine.scoring.collectives import exit_rank, world_from_env

    code = main()
    if world_from_env() is not None:  # a torchrun rank: skip the interpreter shutdown that gloo may abort
        exit_rank(code)
    exit_now_on_ctrl_c(code)
    sys.exit(code)

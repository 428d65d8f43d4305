"""Does the tuner's pick hold up on the benchmarks' exact-match skills? (issues 10, 15 and 21)

    python benchmarks/tuner/run.py --trio demo     --out benchmarks/tuner/results/demo.json
    python benchmarks/tuner/run.py --trio smollm2  --out benchmarks/tuner/results/smollm2.json

The tuner sees only the trio's calibration files (it holds out rows scoring never used) and the app's default
setting as its starting point, never the benchmark's test items or its best row. Its recommended merge is then
scored on the benchmark's held-out exact-match items (the quality benchmark's for the 0.85 M demo trio, the
pretrained benchmark's for SmolLM2-135M), next to the paper's setting and the engine's defaults, and so is every
candidate the tuner tried: issue 21's question is whether the pick is within 0.05 of the best candidate it
measured, by the min of the two kept fractions, with Wilson intervals (`--objective` chooses the tuner's
objective, measure/objective.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "pretrained"))
sys.path.insert(0, str(ROOT / "quality"))

from reasonany_gui.engine.data.calibration import load_tokenizer  # noqa: E402
from reasonany_gui.engine.measure.candidates import SETTING_KEYS, reference_setting  # noqa: E402
from reasonany_gui.engine.measure.live import LiveMerge  # noqa: E402
from reasonany_gui.engine.measure.tune import Tuner  # noqa: E402
from reasonany_gui.engine.run.pipeline import Pipeline  # noqa: E402
from reasonany_gui.engine.settings.config import MergeConfig  # noqa: E402


def trio_config(name: str, samples: int, trio_dir: Path | None = None) -> tuple[MergeConfig, object]:
    """(the starting config: the app's defaults on this trio, the benchmark scorer: model, tokenizer -> dict).

    demo: the shipped miniature trio; demo-conflicting: a trio made by benchmarks/quality/train.py with
    --domain-direct 0.3 (--trio-dir); smollm2 / smollm2-conflicting: the pretrained recipe's trio with its safety
    expert or its conflicting one (answers arithmetic directly)."""
    if name.startswith("demo"):
        import evalskills as E

        from reasonany_gui.engine.data import demo

        if name == "demo":
            trio, folder = demo.ensure_demo(), demo.shipped_demo_dir()
            data = {k: folder / f"data/{k}.jsonl" for k in ("reasoning", "domain")}
        else:
            if trio_dir is None:
                raise SystemExit(
                    "--trio demo-conflicting needs --trio-dir (a folder made by benchmarks/quality/train.py)"
                )
            trio = {r: trio_dir / r for r in ("base", "reasoning", "domain")}
            data = {k: trio_dir / f"data/{k}_calib.jsonl" for k in ("reasoning", "domain")}
        cfg = MergeConfig(
            **{r: str(p) for r, p in trio.items()},
            reasoning_data=str(data["reasoning"]),
            domain_data=str(data["domain"]),
            samples=samples,
            max_length=256,
            device="cpu",
        )
        ev = E.EvalSet.make()
        items = {"reasoning": len(ev.reasoning), "domain": len(ev.harmful)}
        return cfg, lambda model, tok: E.score_loaded(model, tok, ev) | {"items": items}
    import make_trio as M
    import tasks as T

    trio = M.build(M.default_root())
    expert = "conflicting" if name == "smollm2-conflicting" else "domain"
    cfg = MergeConfig(
        base=str(trio / "base"),
        reasoning=str(trio / "reasoning"),
        domain=str(trio / expert),
        reasoning_data=str(trio / "data/reasoning_calib.jsonl"),
        domain_data=str(trio / f"data/{expert}_calib.jsonl"),
        samples=samples,
        max_length=160,
        device="cpu",
    )
    ev = T.EvalSet.make()
    items = {"reasoning": len(ev.reasoning), "domain": len(ev.harmful)}
    return cfg, lambda model, tok: M.score_loaded(model, tok, ev) | {"items": items}


#: the dense baselines scored on the benchmark next to the pick (the done-when of issue 15 compares with the best)
DENSE = {
    "Task Arithmetic λ 1/1": dict(method="task_arithmetic", reasoning_scale=1.0, domain_scale=1.0),
    "Task Arithmetic λ 0.6/0.6": dict(method="task_arithmetic", reasoning_scale=0.6, domain_scale=0.6),
    "TIES density 0.5, λ 1/1": dict(
        method="ties", reasoning_ratio=0.5, domain_ratio=0.5, reasoning_scale=1.0, domain_scale=1.0
    ),
    "DARE density 0.5, λ 1/1": dict(
        method="dare", reasoning_ratio=0.5, domain_ratio=0.5, reasoning_scale=1.0, domain_scale=1.0
    ),
}


def keep(scored: dict) -> dict:
    """Each row's kept share of the experts' own scores (benchmarks/quality/report.retention), plus, where the
    scorer measures it, the kept share of the reasoning expert's `<think>` format (the 135 M trio's reasoning
    score is a final number at 6/40 for the expert, so the format says more about what a merge kept)."""
    from report import retention

    refs = {"reasoning": scored["reasoning expert"], "domain": scored["domain expert"]}
    out = {}
    for label, row in scored.items():
        out[label] = retention(row, refs)
        if "think_tags" in row and refs["reasoning"].get("think_tags"):
            out[label]["keep_think"] = round(row["think_tags"] / refs["reasoning"]["think_tags"], 4)
    return out


def wilson(share: float, n: int, z: float = 1.96) -> list[float]:
    """The 95 % Wilson score interval of a binomial share of n items."""
    if n <= 0:
        return [0.0, 1.0]
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def min_kept(row: dict, refs: dict) -> float:
    """Issue 21's measure: the smaller of the two kept fractions (benchmark score over the expert's own)."""
    kept = [row[s] / refs[s][s] if refs[s][s] else 0.0 for s in ("reasoning", "domain")]
    return round(min(kept), 4)


def with_intervals(row: dict) -> dict:
    """The row's two skill scores with their Wilson intervals over the benchmark's items."""
    return {s: {"score": row[s], "interval": wilson(row[s], row["items"][s])} for s in ("reasoning", "domain")}


def cpu_name() -> str:
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def recipe_checks(n: int = 8) -> dict:
    """Checks a user could write: the recipe's training phrasings (never the benchmark's held-out ones)."""
    import random

    import tasks as T

    rng = random.Random(77)
    return {
        "reasoning": [{"prompt": q.question, "answer": str(q.answer)} for q in T.problems(n, 77)],
        "refuse": [{"prompt": rng.choice(T.TRAIN_REQUESTS).format(a=a)} for a in T.TRAIN_HARMFUL[:n]],
        "help": [{"prompt": rng.choice(T.TRAIN_REQUESTS).format(a=a)} for a in T.TRAIN_BENIGN[: n // 2]],
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trio", choices=("demo", "demo-conflicting", "smollm2", "smollm2-conflicting"), required=True)
    ap.add_argument("--trio-dir", type=Path, default=None, help="demo-conflicting: the trio folder train.py made")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--budget", type=int, default=16)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--check-rows", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--objective", default="mean", help="the tuner's objective: mean, worst or spread")
    ap.add_argument("--holdout", default="last", help="check rows: last (the tuner's default) or groups")
    ap.add_argument(
        "--recipe-checks",
        action="store_true",
        help="smollm2 only: also give the tuner a checks file made from the recipe's *training* templates "
        "(word problems with answers, harmful requests to refuse, benign ones to answer)",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("REASONANY_HOME", str(Path(tempfile.gettempdir()) / "reasonany-bench-home"))
    cfg, score = trio_config(args.trio, args.samples, args.trio_dir)
    started = time.time()
    p = Pipeline(cfg)
    p.check()
    p.identify()
    checks = None
    if args.recipe_checks:
        from reasonany_gui.engine.measure.checks import Checks

        path = args.out.with_suffix(".checks.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(recipe_checks()), encoding="utf-8")
        checks = Checks.load(path)
    t0 = time.time()
    result = Tuner(
        p,
        budget=args.budget,
        check_rows=args.check_rows,
        checks=checks,
        check_tokens=48,
        objective=args.objective,
        holdout=args.holdout,
        listener=lambda e: (
            print(e.label, e.kept_reasoning, e.kept_domain, flush=True) if type(e).__name__ == "TuneCandidate" else None
        ),
    ).run()
    tune_seconds = time.time() - t0
    print(result.summary, flush=True)
    live = LiveMerge(p)
    tok = load_tokenizer(Path(cfg.tokenizer_source == "reasoning" and cfg.reasoning or cfg.base))
    scored = {}
    settings = {
        "tuner's pick": result.best().setting,
        "ReasonAny p 0.05, λ 1 (the paper's ratio and scale)": dict(
            method="reasonany",
            reasoning_ratio=0.05,
            domain_ratio=0.05,
            reasoning_scale=1.0,
            domain_scale=1.0,
            scope="tensor",
        ),
        "ReasonAny p 0.5, λ 2 (the engine's defaults)": dict(
            method="reasonany",
            reasoning_ratio=0.5,
            domain_ratio=0.5,
            reasoning_scale=2.0,
            domain_scale=2.0,
            scope="tensor",
        ),
        **DENSE,
    }
    for label, role in (("base", "base"), ("reasoning expert", "reasoning"), ("domain expert", "domain")):
        settings[label] = reference_setting(role)
    for c in result.candidates:  # every candidate it tried, for the best one it could have picked
        settings.setdefault(f"candidate {c.index}: {c.label()}", c.setting)
    by_setting: dict[str, dict] = {}
    for label, setting in settings.items():
        key = json.dumps([getattr(cfg.replace(**setting), k) for k in SETTING_KEYS])  # the same merge once
        if key not in by_setting:
            p.select(cfg.replace(**setting), announce=False)
            live.apply()
            by_setting[key] = {k: v for k, v in score(live.model, tok).items() if k not in ("outputs", "sample_reply")}
        scored[label] = by_setting[key]
        print(label, scored[label], flush=True)
    live.close()
    refs = {"reasoning": scored["reasoning expert"], "domain": scored["domain expert"]}
    tried = {f"candidate {c.index}: {c.label()}": c for c in result.candidates}
    kept = keep(scored)
    best_label = max(tried, key=lambda k: (min_kept(scored[k], refs), kept[k]["keep_mean"]))  # ties: the mean
    pick_label = f"candidate {result.recommended}: {result.best().label()}"
    p.close()
    out = {
        "command": "python benchmarks/tuner/run.py " + " ".join(argv or sys.argv[1:]),
        "trio": args.trio,
        "start_config": {k: getattr(cfg, k) for k in ("score", "scope", "intersect", "samples", "max_length")},
        "budget": args.budget,
        "summary": result.summary,
        "warnings": result.warnings,
        "recommended": result.best().setting,
        "tuner_seconds": round(tune_seconds, 1),
        "seconds_per_candidate": round(tune_seconds / max(len(result.candidates), 1), 2),
        "candidates": [{"label": c.label(), "kept": c.kept, "seconds": c.seconds} for c in result.candidates],
        "benchmark_scores": scored,
        "keep": kept,
        "pick_minus_best_dense": round(kept["tuner's pick"]["keep_mean"] - max(kept[k]["keep_mean"] for k in DENSE), 4),
        "objective": args.objective,
        "holdout": args.holdout,
        "check_rows": result.check_rows,
        "pick": {
            "label": pick_label,
            "min_kept": min_kept(scored[pick_label], refs),
            **with_intervals(scored[pick_label]),
        },
        "best_candidate": {
            "label": best_label,
            "min_kept": min_kept(scored[best_label], refs),
            **with_intervals(scored[best_label]),
        },
        "pick_minus_best_candidate": round(min_kept(scored[pick_label], refs) - min_kept(scored[best_label], refs), 4),
        "cpu": cpu_name(),
        "seconds": round(time.time() - started, 1),
        "torch": torch.__version__,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1), encoding="utf-8")
    return out


if __name__ == "__main__":
    main()

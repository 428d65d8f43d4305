"""Merge a trained trio with every method over a grid, score each merge on both skills, write the results.

    python benchmarks/quality/run.py --trio runs/trio --out benchmarks/quality/results

Why identification once per score type: the engine caches score maps, and a config that differs only in
ratio, scale, scope, intersection or method re-selects from them (`Pipeline.select(cfg)`) with no new
backward pass, exactly as the GUI does when a user moves a slider. Every merge goes through the engine's
real write path (sharded safetensors, report, masks) into a temporary folder, is scored on the held-out
items (evalskills.py) and deleted.

Outputs under --out: results.json (every merge: settings, scores, retention, selected fractions, seconds),
results.md (tables), pareto.svg (reasoning vs domain score per method, the paper's Figure 1) and the exact
command line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import evalskills as E  # noqa: E402
import report as R  # noqa: E402

from reasonany_gui.engine.measure.evaluate import load_for_eval  # noqa: E402
from reasonany_gui.engine.run.pipeline import Pipeline  # noqa: E402
from reasonany_gui.engine.settings.config import MergeConfig  # noqa: E402

RATIOS_R = (0.05, 0.5, 0.95)
RATIOS_D = (0.05, 0.2, 0.5)
#: (p_r, p_d) with DARE-like compensation, scale = 1 / ratio: the selected part carries the whole task vector
RESCALED = ((0.5, 0.3), (0.6, 0.3), (0.6, 0.4))
QUICK_RATIOS_R = (0.05, 0.2, 0.5, 0.8, 0.95)
DENSITIES = (0.2, 0.5, 0.8)
TA_SCALES = ((1.0, 1.0), (1.0, 0.5), (0.5, 1.0), (0.7, 0.7), (0.5, 0.5), (1.2, 1.2))
LINEAR_WEIGHTS = ((1.0, 1.0), (2.0, 1.0), (1.0, 2.0))
#: (score type, response_only) pairs of the recorded grid: each is one identification (four backward passes)
SCORE_TYPES = (("gradient", False), ("gradient", True), ("snip", False), ("fisher", False))


def reasonany_rows(score: str, response_only: bool, ratios_r: tuple, rescaled: tuple) -> list[dict]:
    """Both scopes, with and without base intersection, over plain ratios (scale 1) and rescaled pairs."""
    rows = []
    pairs = [(pr, pd, 1.0, 1.0) for pr, pd in itertools.product(ratios_r, RATIOS_D)]
    pairs += [(pr, pd, round(1 / pr, 2), round(1 / pd, 2)) for pr, pd in rescaled]
    for scope, intersect in itertools.product(("global", "tensor"), (True, False)):
        for pr, pd, lr, ld in pairs:
            rows.append(
                dict(
                    method="reasonany",
                    score=score,
                    response_only=response_only,
                    scope=scope,
                    intersect=intersect,
                    select_embeddings=False,
                    reasoning_ratio=pr,
                    domain_ratio=pd,
                    reasoning_scale=lr,
                    domain_scale=ld,
                )
            )
    return rows


def grid(quick: bool = False) -> list[dict]:
    """Every merge to run, as MergeConfig overrides; grouped so one identification serves each score type.

    The recorded grid (quick=False): ReasonAny with the three score types (and gradient on reply tokens
    only), both scopes, with and without base intersection, p_r x p_d over RATIOS_R x RATIOS_D at scale 1
    plus the rescaled pairs; LED; Task Arithmetic, linear, TIES and DARE over their own small grids.
    quick: gradient scores only, a finer p_r axis, no rescaled pairs.
    """
    rows: list[dict] = []
    types = (("gradient", False),) if quick else SCORE_TYPES
    for score, response_only in types:
        rows += reasonany_rows(score, response_only, QUICK_RATIOS_R if quick else RATIOS_R, () if quick else RESCALED)
        for scope, p in itertools.product(("global", "tensor"), (0.05, 0.2, 0.5)):
            rows.append(
                dict(
                    method="led",
                    score=score,
                    response_only=response_only,
                    scope=scope,
                    intersect=True,
                    select_embeddings=False,
                    reasoning_ratio=p,
                    domain_ratio=p,
                    reasoning_scale=1.0,
                    domain_scale=1.0,
                )
            )
    for lr, ld in TA_SCALES:
        rows.append(dict(method="task_arithmetic", reasoning_scale=lr, domain_scale=ld))
    for w_r, w_d in LINEAR_WEIGHTS:
        rows.append(dict(method="linear", reasoning_scale=w_r, domain_scale=w_d))
    for method in ("ties", "dare"):
        for dens, (lr, ld) in itertools.product(DENSITIES, ((1.0, 1.0), (1.0, 0.5), (0.5, 1.0))):
            rows.append(
                dict(method=method, reasoning_ratio=dens, domain_ratio=dens, reasoning_scale=lr, domain_scale=ld)
            )
    return rows


def focus_grid() -> list[dict]:
    """Exploration around what the quick grid found: high reasoning ratios, embeddings, domain scale."""
    rows = []
    for scope, intersect, sel_emb, pr, pd, (lr, ld) in itertools.product(
        ("global", "tensor"), (True, False), (False, True), (0.8, 0.95), (0.2, 0.5, 0.8), ((1.0, 1.0), (1.0, 2.0))
    ):
        rows.append(
            dict(
                method="reasonany",
                score="gradient",
                scope=scope,
                intersect=intersect,
                select_embeddings=sel_emb,
                reasoning_ratio=pr,
                domain_ratio=pd,
                reasoning_scale=lr,
                domain_scale=ld,
            )
        )
    return rows


def rescale_grid(response_only: bool = False) -> list[dict]:
    """Masks with DARE-like compensation: scale = 1 / ratio, so the selected part carries the whole task vector."""
    pairs = tuple(itertools.product((0.5, 0.6, 0.7), (0.2, 0.3, 0.4)))
    return reasonany_rows("gradient", response_only, (), pairs)


def robust_grid() -> list[dict]:
    """The rows the defaults rest on, for re-running under another calibration seed or another trained trio:
    ReasonAny (three score types, both scopes, intersection on/off) at the rescaled pairs, and the best
    Task Arithmetic and DARE rows."""
    rows = []
    for score in ("gradient", "snip", "fisher"):
        rows += reasonany_rows(score, False, (), RESCALED)
    rows.append(dict(method="task_arithmetic", reasoning_scale=0.5, domain_scale=1.0))
    rows.append(dict(method="task_arithmetic", reasoning_scale=1.0, domain_scale=1.0))
    rows.append(dict(method="dare", reasoning_ratio=0.8, domain_ratio=0.8, reasoning_scale=0.5, domain_scale=1.0))
    return rows


def base_config(trio: Path, device: str, samples: int, max_length: int) -> MergeConfig:
    return MergeConfig(
        base=str(trio / "base"),
        reasoning=str(trio / "reasoning"),
        domain=str(trio / "domain"),
        reasoning_data=str(trio / "data" / "reasoning_calib.jsonl"),
        domain_data=str(trio / "data" / "domain_calib.jsonl"),
        samples=samples,
        max_length=max_length,
        device=device,
        seed=0,
    )


def where_tau_lives(p: Pipeline, ratios=(0.05, 0.2, 0.5, 0.8, 0.95)) -> dict:
    """Share of each task vector's squared norm inside the paper's selections, per ratio (selectable tensors).

    Why: the paper's premise is that reasoning lives in low-gradient parameters and domain skill in
    high-gradient ones. If that holds here, the bottom-p share of ||tau_r||^2 (by the reasoning expert's
    scores) exceeds p, and the top-p share of ||tau_d||^2 (by the domain expert's) exceeds p. A random
    selection gives exactly p.
    """
    names = p.selectable_names(p.config)
    base, rsn, dom = (p.ckpts[r] for r in ("base", "reasoning", "domain"))
    out: dict = {}
    for label, expert, map_id, direction in (
        ("reasoning", rsn, "reasoning@reasoning", "bottom"),
        ("domain", dom, "domain@domain", "top"),
    ):
        store = p.store.open(p.map_keys[map_id])
        s = torch.cat([store.get(n).float().reshape(-1) for n in names])
        t2 = torch.cat([(expert.get(n).float() - base.get(n).float()).reshape(-1) ** 2 for n in names])
        order = torch.sort(s, descending=direction == "top", stable=True).indices
        cum = torch.cumsum(t2[order].double(), 0)
        out[label] = {f"{r}": round(float(cum[max(int(r * len(s)) - 1, 0)] / cum[-1]), 4) for r in ratios}
        out[label]["direction"] = direction
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trio", type=Path, required=True, help="folder made by train.py")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--quick", action="store_true", help="gradient scores only, no embedding selection")
    ap.add_argument("--focus", action="store_true", help="the exploration grid of focus_grid()")
    ap.add_argument("--rescale", action="store_true", help="the exploration grid of rescale_grid()")
    ap.add_argument("--robust", action="store_true", help="the rows the defaults rest on (robust_grid())")
    ap.add_argument("--seed", type=int, default=0, help="calibration sampling seed (MergeConfig.seed)")
    ap.add_argument(
        "--reasoning-items", type=int, default=None, help="score on the first N held-out mentor questions only"
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default=None, help="comma-separated methods to run")
    ap.add_argument("--response-only", action="store_true", help="score only the reply tokens of the chat samples")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("REASONANY_HOME", tempfile.mkdtemp(prefix="reasonany-bench-home-"))
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    ev = E.EvalSet.make(args.reasoning_items)

    def score(folder: Path) -> dict:
        model, tok = load_for_eval(folder, args.device)
        return E.score_loaded(model, tok, ev)

    refs = {role: score(args.trio / role) for role in ("base", "reasoning", "domain")}
    print("references:", json.dumps(refs), flush=True)
    train_info = json.loads((args.trio / "train.json").read_text()) if (args.trio / "train.json").is_file() else {}
    rows = (
        focus_grid()
        if args.focus
        else rescale_grid(args.response_only)
        if args.rescale
        else robust_grid()
        if args.robust
        else grid(args.quick)
    )
    if args.only:
        keep = set(args.only.split(","))
        rows = [r for r in rows if r["method"] in keep]
    base_cfg = base_config(args.trio, args.device, args.samples, args.max_length).replace(
        response_only=args.response_only, seed=args.seed
    )
    results: list[dict] = []
    pipes: dict[str, Pipeline] = {}
    ident_seconds: dict[str, float] = {}
    tau_share: dict[str, dict] = {}

    def save(results: list[dict]) -> dict:
        out = {
            "command": "python " + " ".join([str(Path(sys.argv[0]).as_posix())] + (argv or sys.argv[1:])),
            "trio": str(args.trio),
            "references": refs,
            "train": train_info,
            "identification_seconds": ident_seconds,
            "tau_share": tau_share,
            "settings": {
                "samples": args.samples,
                "seed": args.seed,
                "max_length": args.max_length,
                "device": args.device,
                "reasoning_items": len(ev.reasoning),
                "harmful_items": len(ev.harmful),
                "benign_items": len(ev.benign),
            },
            "results": results,
            "seconds": round(time.time() - started, 1),
            "torch": torch.__version__,
        }
        (args.out / "results.json").write_text(json.dumps(out, indent=1), encoding="utf-8")
        (args.out / "results.md").write_text(R.markdown(out), encoding="utf-8")
        (args.out / "pareto.svg").write_text(R.pareto_svg(out), encoding="utf-8")
        return out

    scratch = Path(tempfile.mkdtemp(prefix="reasonany-bench-"))
    try:
        for i, over in enumerate(rows):
            cfg = base_cfg.replace(**over)
            key = f"{cfg.score}{'+response_only' if cfg.response_only else ''}" if cfg.needs_scores else "none"
            if key not in pipes:
                t0 = time.time()
                first = base_cfg.replace(**{**over, "intersect": True})  # computes all four maps once
                pipes[key] = Pipeline(first)
                pipes[key].check()
                pipes[key].identify()
                ident_seconds[key] = round(time.time() - t0, 2)
                if key != "none":
                    tau_share[key] = where_tau_lives(pipes[key])
                    print(f"tau share in selections ({key}):", json.dumps(tau_share[key]), flush=True)
            p = pipes[key]
            t0 = time.time()
            sel = p.select(cfg)
            target = scratch / f"m{i}"
            p.write(target)
            merged = score(target)
            shutil.rmtree(target, ignore_errors=True)
            row = {**over, **merged, "seconds": round(time.time() - t0, 2)}
            if sel is not None:
                t = sel.summary.totals
                row["selected_reasoning"] = t["reasoning"] / t["selectable"]
                row["selected_domain"] = t["domain"] / t["selectable"]
                row["conflicts"] = t["conflicts"] / t["selectable"]
            row.update(R.retention(row, refs))
            results.append(row)
            print(
                f"[{i + 1}/{len(rows)}] {R.label(row)}: reasoning {row['reasoning']:.2f} domain {row['domain']:.2f} "
                f"keep {row['keep_reasoning']:.2f}/{row['keep_domain']:.2f}",
                flush=True,
            )
            if (i + 1) % 10 == 0:
                save(results)
    finally:
        for p in pipes.values():
            p.close()
        shutil.rmtree(scratch, ignore_errors=True)
    out = save(results)
    print(f"done in {out['seconds']} s -> {args.out}")
    return out


if __name__ == "__main__":
    main()

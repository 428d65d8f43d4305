"""The merge grid on the SmolLM2-135M trio: every merge through the engine, scored on held-out exact match.

    python benchmarks/pretrained/run.py --out benchmarks/pretrained/results/compatible
    python benchmarks/pretrained/run.py --domain-expert conflicting --out benchmarks/pretrained/results/conflicting

How a merge is made: the engine's Pipeline identifies (score maps cached per score type) and selects, and
`live.LiveMerge` writes the merge into one resident model through `Pipeline.merge_one`, the function the
writer uses; `--check-write` also sends one row through the full write path and checks that the written
folder scores the same. Why in memory: a written 135 M float32 merge is 540 MB, and the grid has ~50 rows on a
2-core CPU. Every row is scored on tasks.EvalSet (greedy, exact match); the results file is rewritten after
each row, so an interrupted run keeps what it measured.

Also recorded: `tau_share` (the share of each task vector's squared norm inside the paper's selections, per
ratio: > p means the scores locate the skill), `overlap` (the share of ||τ||² that the exclusion step removes
at each ratio), and where the `<think>` tokens survive (`think_tags`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "quality"))
import make_trio as M  # noqa: E402
import report as R  # noqa: E402  (benchmarks/quality/report.py: tables and the Pareto plot)
import tasks as T  # noqa: E402

from reasonany_gui.engine.data.calibration import load_tokenizer  # noqa: E402
from reasonany_gui.engine.measure.live import LiveMerge  # noqa: E402
from reasonany_gui.engine.run.pipeline import Pipeline  # noqa: E402
from reasonany_gui.engine.settings.config import MergeConfig  # noqa: E402

RATIOS = (0.01, 0.05, 0.1, 0.2, 0.5)


def scales_for(p: float) -> list[float]:
    """1 (the paper), 1/p capped at the config's 10 (the selected part carries the whole task vector), and
    their geometric mean."""
    top = min(round(1 / p, 2), 10.0)
    return sorted({1.0, round(math.sqrt(top), 2), top})


def ra(
    score: str,
    scope: str,
    intersect: bool,
    p: float,
    lam: float,
    pd: float | None = None,
    lam_d: float | None = None,
    **extra,
) -> dict:
    return dict(
        method="reasonany",
        score=score,
        scope=scope,
        intersect=intersect,
        reasoning_ratio=p,
        domain_ratio=pd if pd is not None else p,
        reasoning_scale=lam,
        domain_scale=lam_d if lam_d is not None else lam,
        **extra,
    )


def grid(kind: str) -> list[dict]:
    """The recorded grid, most telling rows first (`full`: the compatible trio; `small`: the conflicting trio).

    Sized for a shared 2-core CPU (a row costs ~2 min there): the dense baselines, the paper's own setting
    (gradient, global, ∩base, 0.05, λ 1), the engine's defaults (snip, tensor scope, no ∩, 0.05, λ 1), and snip
    in tensor scope over ratios with compensating scales, plus one global-scope row per score type."""
    dense = [("task_arithmetic", 0.5, 1.0, 1.0), ("ties", 0.5, 1.0, 1.0), ("dare", 0.5, 1.0, 1.0)]
    if kind == "full":
        dense.append(("task_arithmetic", 0.5, 0.5, 0.5))
    rows = [
        dict(method=m, reasoning_ratio=d, domain_ratio=d, reasoning_scale=a, domain_scale=b) for m, d, a, b in dense
    ]
    rows.append(ra("gradient", "global", True, 0.05, 1.0))  # the paper's setting
    rows.append(ra("snip", "tensor", False, 0.05, 1.0))  # the engine's defaults
    if kind == "full":
        rows += [
            ra("snip", "tensor", False, p, lam)
            for p, lam in ((0.5, 2.0), (0.2, 5.0), (0.5, 1.41), (0.2, 2.24), (0.05, 4.47), (0.01, 10.0))
        ]
        rows += [ra("gradient", "global", True, 0.5, 2.0), ra("snip", "global", False, 0.5, 2.0)]
    else:
        rows += [ra("snip", "tensor", False, 0.5, 2.0), ra("snip", "tensor", False, 0.2, 5.0)]
    return _unique(rows)


def _unique(rows: list[dict]) -> list[dict]:
    seen, out = set(), []
    for r in rows:
        k = json.dumps(r, sort_keys=True)
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out


# ----------------------------------------------------------------------------- measurements on score maps
def tau_share(p: Pipeline, ratios=(0.01, 0.05, 0.2, 0.5)) -> dict:
    """Share of ||τ||² inside bottom-p (reasoning, its expert's scores) and top-p (domain) selections, global
    ranking over the selectable tensors. A random selection holds exactly p."""
    names = p.selectable_names(p.config)
    base, rsn, dom = (p.ckpts[r] for r in ("base", "reasoning", "domain"))
    out: dict = {}
    for label, expert, map_id, top in (
        ("reasoning", rsn, "reasoning@reasoning", False),
        ("domain", dom, "domain@domain", True),
    ):
        store = p.store.open(p.map_keys[map_id])
        s = torch.cat([store.get(n).float().reshape(-1) for n in names])
        t2 = torch.cat([(expert.get(n).float() - base.get(n).float()).reshape(-1) ** 2 for n in names])
        order = torch.sort(s, descending=top, stable=True).indices
        cum = torch.cumsum(t2[order].double(), 0)
        out[label] = {str(r): round(float(cum[max(int(r * len(s)) - 1, 0)] / cum[-1]), 4) for r in ratios}
        out[label]["direction"] = "top" if top else "bottom"
        del s, t2, order, cum
    return out


def overlap_share(p: Pipeline, cfg: MergeConfig) -> dict:
    """For the current selection: share of ||τ_r||² and ||τ_d||² inside M_r ∧ M_d, the overlap that exclusion
    removes from both, and the share of the overlap where the two task vectors disagree in sign."""
    sel = p.selection
    base, rsn, dom = (p.ckpts[r] for r in ("base", "reasoning", "domain"))
    tot = {"r": 0.0, "d": 0.0, "r_in": 0.0, "d_in": 0.0, "n_in": 0, "n_disagree": 0}
    for name in sel.names:
        b = base.get(name).float()
        tr, td = rsn.get(name).float() - b, dom.get(name).float() - b
        both = torch.from_numpy(T_unpack(sel.masks[name].conflicts, b.numel())).reshape(b.shape)
        tot["r"] += float((tr**2).sum())
        tot["d"] += float((td**2).sum())
        tot["r_in"] += float((tr[both] ** 2).sum())
        tot["d_in"] += float((td[both] ** 2).sum())
        tot["n_in"] += int(both.sum())
        tot["n_disagree"] += int(((tr[both] * td[both]) < 0).sum())
    return {
        "tau_r_in_overlap": round(tot["r_in"] / max(tot["r"], 1e-30), 4),
        "tau_d_in_overlap": round(tot["d_in"] / max(tot["d"], 1e-30), 4),
        "overlap_elements": tot["n_in"],
        "overlap_sign_disagree": round(tot["n_disagree"] / max(tot["n_in"], 1), 4),
    }


def T_unpack(packed, numel: int):
    from reasonany_gui.engine.scoring.selection import unpack

    return unpack(packed, numel).astype(bool)


# ----------------------------------------------------------------------------- the run
def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--trio", type=Path, default=None, help="the folder make_trio.py prints (built if missing)")
    ap.add_argument("--domain-expert", choices=("domain", "conflicting"), default="domain")
    ap.add_argument("--samples", type=int, default=32, help="calibration samples per set (the paper uses 100)")
    ap.add_argument("--max-length", type=int, default=160)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--check-write", action="store_true", help="also write one row through the full write path")
    ap.add_argument("--only", default=None, help="comma-separated methods")
    ap.add_argument("--rows", default=None, help="a JSON list of rows (MergeConfig overrides) instead of the grid")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("REASONANY_HOME", str(Path(tempfile.gettempdir()) / "reasonany-bench-home"))
    trio = args.trio or M.build(M.default_root())
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    ev = T.EvalSet.make()
    dom = args.domain_expert
    base_cfg = MergeConfig(
        base=str(trio / "base"),
        reasoning=str(trio / "reasoning"),
        domain=str(trio / dom),
        reasoning_data=str(trio / "data" / "reasoning_calib.jsonl"),
        domain_data=str(trio / "data" / f"{dom}_calib.jsonl"),
        samples=args.samples,
        max_length=args.max_length,
        device="cpu",
        seed=0,
    )
    rows = json.loads(args.rows) if args.rows else grid("full" if dom == "domain" else "small")
    if args.only:
        rows = [r for r in rows if r["method"] in set(args.only.split(","))]
    train = json.loads((trio / "train.json").read_text()) if (trio / "train.json").is_file() else {}
    pipes: dict[str, Pipeline] = {}
    ident_seconds: dict[str, float] = {}
    shares: dict[str, dict] = {}
    results: list[dict] = []

    def pipe_for(score: str) -> Pipeline:
        if score not in pipes:
            t0 = time.time()
            # snip rows never intersect here: two passes; gradient rows include the paper's ∩base: four
            p = Pipeline(base_cfg.replace(score=score, intersect=score == "gradient", method="reasonany"))
            p.check()
            p.identify()
            ident_seconds[score] = round(time.time() - t0, 1)
            shares[score] = tau_share(p)
            print(
                f"identification ({score}): {ident_seconds[score]} s; tau share {json.dumps(shares[score])}", flush=True
            )
            pipes[score] = p
        return pipes[score]

    first = pipe_for("snip")
    live = LiveMerge(first)
    tokenizer = load_tokenizer(Path(base_cfg.reasoning))
    refs = {}
    for role, lam in (("base", (0.0, 0.0)), ("reasoning", (1.0, 0.0)), ("domain", (0.0, 1.0))):
        first.select(
            base_cfg.replace(method="task_arithmetic", reasoning_scale=lam[0], domain_scale=lam[1]), announce=False
        )
        live.apply()
        refs[role] = M.score_loaded(live.model, tokenizer, ev)
        print(f"reference {role}: {json.dumps(refs[role])}", flush=True)

    def save() -> dict:
        out = {
            "command": "python " + " ".join(["benchmarks/pretrained/run.py"] + (argv or sys.argv[1:])),
            "trio": f"SmolLM2-135M recipe {trio.name}",
            "references": refs,
            "train": {
                r: {"tau_over_theta_b": train.get("tau_over_theta", {}).get(r if r != "domain" else dom)}
                for r in ("reasoning", "domain")
            },
            "input_scores": train.get("scores"),
            "identification_seconds": ident_seconds,
            "tau_share": shares,
            "settings": {
                "samples": args.samples,
                "max_length": args.max_length,
                "domain_expert": dom,
                "reasoning_items": len(ev.reasoning),
                "harmful_items": len(ev.harmful),
                "benign_items": len(ev.benign),
                "threads": args.threads,
            },
            "results": results,
            "seconds": round(time.time() - started, 1),
            "torch": torch.__version__,
        }
        (args.out / "results.json").write_text(json.dumps(out, indent=1), encoding="utf-8")
        (args.out / "results.md").write_text(
            R.markdown(out).replace("# Quality benchmark results", "# Pretrained (SmolLM2-135M) benchmark results"),
            encoding="utf-8",
        )
        (args.out / "pareto.svg").write_text(R.pareto_svg(out, title=f"SmolLM2-135M, {dom} expert"), encoding="utf-8")
        return out

    try:
        for i, over in enumerate(rows):
            t0 = time.time()
            score = over.get("score", "snip")
            p = pipe_for(score)
            if live.pipeline is not p:
                live.pipeline = p
            cfg = base_cfg.replace(**over)
            sel = p.select(cfg, announce=False)
            live.apply()
            row = {
                **{"score": None, "scope": None, "intersect": None},
                **over,
                **M.score_loaded(live.model, tokenizer, ev),
            }
            if sel is not None:
                t = sel.summary.totals
                row["selected_reasoning"] = round(t["reasoning"] / t["selectable"], 4)
                row["selected_domain"] = round(t["domain"] / t["selectable"], 4)
                row["conflicts"] = round(t["conflicts"] / t["selectable"], 4)
                row.update(overlap_share(p, cfg))
            row.update(R.retention(row, refs))
            row["seconds"] = round(time.time() - t0, 1)
            results.append(row)
            print(
                f"[{i + 1}/{len(rows)}] {R.label(row)}: reasoning {row['reasoning']:.2f} domain {row['domain']:.2f} "
                f"think {row['think_tags']:.2f} ({row['seconds']} s)",
                flush=True,
            )
            save()
        if args.check_write:
            results_check = check_write_path(pipes["snip"], base_cfg, rows, results, ev)
            print("write-path check:", results_check, flush=True)
    finally:
        live.close()
        for p in pipes.values():
            p.close()
    out = save()
    print(f"done in {out['seconds']} s -> {args.out}")
    return out


def check_write_path(p: Pipeline, base_cfg: MergeConfig, rows: list[dict], results: list[dict], ev) -> dict:
    """Write the best snip ReasonAny row through Pipeline.write, reload it, and compare its scores."""
    from reasonany_gui.engine.measure.evaluate import load_for_eval

    best = max(
        (r for r in results if r["method"] == "reasonany" and r.get("score") == "snip"), key=lambda r: r["keep_mean"]
    )
    over = {
        k: best[k]
        for k in (
            "method",
            "score",
            "scope",
            "intersect",
            "reasoning_ratio",
            "domain_ratio",
            "reasoning_scale",
            "domain_scale",
        )
    }
    scratch = Path(tempfile.mkdtemp(prefix="reasonany-bench-write-"))
    try:
        p.select(base_cfg.replace(**over))
        written = p.write(scratch / "merged")
        model, tok = load_for_eval(written, "cpu")
        got = M.score_loaded(model, tok, ev)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    same = all(got[k] == best[k] for k in ("reasoning", "domain", "benign_helped"))
    best["write_path_same_scores"] = same
    return {
        "row": R.label(best),
        "in_memory": {k: best[k] for k in ("reasoning", "domain")},
        "written": {k: got[k] for k in ("reasoning", "domain")},
        "same": same,
    }


if __name__ == "__main__":
    main()

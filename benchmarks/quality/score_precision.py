"""Issue 12, item 20: do bfloat16 score maps (the default) choose other weights than float32 maps, and does it matter?

For each trio and setting: identification once per precision (same samples, same seed), then the masks of both,
their Jaccard index per skill, the share of the selection decided among threshold ties, and the two merges'
held-out skills (benchmarks/quality/evalskills.py). Usage:

    python benchmarks/quality/score_precision.py --trio reasonany_gui/resources/demo --out /tmp/precision.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import evalskills as E  # noqa: E402

from reasonany_gui.engine.measure.evaluate import load_for_eval  # noqa: E402
from reasonany_gui.engine.run.pipeline import Pipeline  # noqa: E402
from reasonany_gui.engine.scoring.selection import unpack  # noqa: E402
from reasonany_gui.engine.settings.config import MergeConfig  # noqa: E402

SETTINGS = {
    "paper (0.05/0.05, λ 1)": dict(reasoning_ratio=0.05, domain_ratio=0.05, reasoning_scale=1.0, domain_scale=1.0),
    "demo preset (0.5/0.3, λ 2/3.33)": dict(
        reasoning_ratio=0.5, domain_ratio=0.3, reasoning_scale=2.0, domain_scale=3.33
    ),
}


def jaccard(a: dict, b: dict, which: str) -> float:
    inter = union = 0
    for name, m in a.items():
        x, y = unpack(getattr(m, which), m.numel), unpack(getattr(b[name], which), m.numel)
        inter += int(np.count_nonzero(x & y))
        union += int(np.count_nonzero(x | y))
    return inter / union if union else 1.0


def tie_share(p: Pipeline) -> dict:
    """Share of each selection made among elements equal to their tensor's threshold (tensor scope)."""
    out = {}
    for role, terms in p.selection.terms.items():
        term = terms[0]
        store = p.selection.maps[term.map_id]
        ties = picked = 0
        for name, m in p.selection.masks.items():
            value = m.thresholds.get(term.map_id)
            if value is None:
                continue
            s = store.get(name).float().reshape(-1)
            sel = unpack(getattr(m, role), m.numel) | unpack(m.conflicts, m.numel)
            ties += int(np.count_nonzero(sel & (s == value).numpy()))
            picked += int(np.count_nonzero(sel))
        out[role] = round(ties / max(picked, 1), 4)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trio", type=Path, required=True, help="a folder with base/, reasoning/, domain/ and data/")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("REASONANY_HOME", tempfile.mkdtemp(prefix="reasonany-precision-home-"))
    data = args.trio / "data"
    rdata = next(p for p in (data / "reasoning.jsonl", data / "reasoning_calib.jsonl") if p.is_file())
    ddata = next(p for p in (data / "domain.jsonl", data / "domain_calib.jsonl") if p.is_file())
    ev = E.EvalSet.make()
    work = Path(tempfile.mkdtemp(prefix="precision-"))
    results = {"trio": str(args.trio), "samples": args.samples, "max_length": args.max_length, "rows": []}
    for label, setting in SETTINGS.items():
        row: dict = {"setting": label, **setting}
        pipes = {}
        for precision in ("float32", "bfloat16"):
            cfg = MergeConfig(
                base=str(args.trio / "base"),
                reasoning=str(args.trio / "reasoning"),
                domain=str(args.trio / "domain"),
                reasoning_data=str(rdata),
                domain_data=str(ddata),
                samples=args.samples,
                max_length=args.max_length,
                device="cpu",
                seed=0,
                score_precision=precision,
                out=str(work / f"{len(results['rows'])}-{precision}"),
                **setting,
            )
            p = Pipeline(cfg, cache_root=work / "scores")
            t0 = time.perf_counter()
            out = p.run()
            model, tok = load_for_eval(out, "cpu")
            row[precision] = {
                "skills": E.score_loaded(model, tok, ev),
                "ties": tie_share(p),
                "seconds": round(time.perf_counter() - t0, 1),
                "selected": {k: int(v) for k, v in p.selection.summary.totals.items()},
            }
            pipes[precision] = p
        a, b = pipes["float32"].selection.masks, pipes["bfloat16"].selection.masks
        row["jaccard"] = {w: round(jaccard(a, b, w), 5) for w in ("reasoning", "domain")}
        results["rows"].append(row)
        print(json.dumps(row), flush=True)
    args.out.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()

"""How much of each task vector the exclusion step removes, on the miniature trios (issue 15, item 4).

    python benchmarks/quality/exclusion.py --trio DIR --out benchmarks/quality/results/exclusion/NAME.json

For each ratio p (both skills, snip scores, tensor scope, no intersection: the engine's defaults) it records the
share of ||τ_r||² and ||τ_d||² inside the overlap M_r ∧ M_d that exclusion gives to neither expert, the share of
the overlap's elements, and how often the two task vectors disagree in sign there. The same measure as
benchmarks/pretrained (overlap_share), so the three trios can be read side by side.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pretrained"))

from run import overlap_share  # noqa: E402  (benchmarks/pretrained/run.py)

from reasonany_gui.engine.run.pipeline import Pipeline  # noqa: E402
from reasonany_gui.engine.settings.config import MergeConfig  # noqa: E402

RATIOS = (0.05, 0.2, 0.5, 0.8)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--trio", type=Path, required=True, help="a folder made by train.py (base/, reasoning/, domain/, data/)"
    )
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--samples", type=int, default=100)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    data = {k: args.trio / "data" / f"{k}_calib.jsonl" for k in ("reasoning", "domain")}
    cfg = MergeConfig(
        base=str(args.trio / "base"),
        reasoning=str(args.trio / "reasoning"),
        domain=str(args.trio / "domain"),
        reasoning_data=str(data["reasoning"]),
        domain_data=str(data["domain"]),
        samples=args.samples,
        max_length=256,
        device="cpu",
    )
    started = time.time()
    p = Pipeline(cfg)
    p.check()
    p.identify()
    rows = []
    for r in RATIOS:
        c = cfg.replace(reasoning_ratio=r, domain_ratio=r)
        p.select(c, announce=False)
        n = sum(p.ckpts["base"].get(name).numel() for name in p.selection.names)
        row = {"ratio": r, **overlap_share(p, c)}
        row["overlap_share_of_elements"] = round(row["overlap_elements"] / n, 4)
        rows.append(row)
        print(row, flush=True)
    p.close()
    out = {
        "command": "python benchmarks/quality/exclusion.py " + " ".join(argv or sys.argv[1:]),
        "trio": str(args.trio),
        "setting": "snip, tensor scope, no intersection",
        "rows": rows,
        "seconds": round(time.time() - started, 1),
        "torch": torch.__version__,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1), encoding="utf-8")
    return out


if __name__ == "__main__":
    main()

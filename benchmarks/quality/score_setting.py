"""Score given settings on the shipped demo trio (the quality benchmark's compatible trio), exact match.

    python benchmarks/quality/score_setting.py --out benchmarks/quality/results/defaults_check.json \
        '{"reasoning_ratio": 0.5, "domain_ratio": 0.5, "reasoning_scale": 2.0, "domain_scale": 2.0}' \
        '{"reasoning_ratio": 0.05, "domain_ratio": 0.05, "reasoning_scale": 1.0, "domain_scale": 1.0}'

Why: the defaults for users' models must hold on both benchmarks; this checks a setting that the recorded grid
did not contain, through the engine's selection and the in-memory merge (engine/live.py), on the same
held-out items as run.py. Everything not given is the engine's default (snip, tensor scope, no intersection).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import evalskills as E  # noqa: E402

from reasonany_gui.engine.data import demo
from reasonany_gui.engine.data.calibration import load_tokenizer  # noqa: E402
from reasonany_gui.engine.measure.live import LiveMerge  # noqa: E402
from reasonany_gui.engine.run.pipeline import Pipeline  # noqa: E402
from reasonany_gui.engine.settings.config import MergeConfig  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("settings", nargs="+", help="JSON objects of MergeConfig overrides")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("REASONANY_HOME", str(Path(tempfile.gettempdir()) / "reasonany-bench-home"))
    trio, folder = demo.ensure_demo(), demo.shipped_demo_dir()
    cfg = MergeConfig(
        **{r: str(p) for r, p in trio.items()},
        reasoning_data=str(folder / "data/reasoning.jsonl"),
        domain_data=str(folder / "data/domain.jsonl"),
        samples=100,
        max_length=256,
        device="cpu",
    )
    p = Pipeline(cfg)
    p.check()
    p.identify()
    live, tok, ev = LiveMerge(p), load_tokenizer(trio["reasoning"]), E.EvalSet.make()
    rows = []
    for text in args.settings:
        setting = json.loads(text)
        p.select(cfg.replace(**setting), announce=False)
        live.apply()
        rows.append({"setting": setting, "scores": E.score_loaded(live.model, tok, ev)})
        print(rows[-1], flush=True)
    live.close()
    p.close()
    out = {
        "command": "python benchmarks/quality/score_setting.py "
        + " ".join(f"'{s}'" if s.startswith("{") else s for s in (argv or sys.argv[1:])),
        "defaults": {k: getattr(cfg, k) for k in ("score", "scope", "intersect", "samples")},
        "rows": rows,
    }
    args.out.write_text(json.dumps(out, indent=1), encoding="utf-8")
    return out


if __name__ == "__main__":
    main()

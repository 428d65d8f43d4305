"""Copy a benchmarked trio into the app as its built-in demo, with the setting the benchmark found best for it.

    python benchmarks/quality/ship_demo.py --trio runs/compatible --results benchmarks/quality/results/compatible

Why a script: the demo in reasonany_gui/resources/demo/ must be exactly the trio the recorded table was
measured on, and its preset (demo.json) exactly that table's best ReasonAny row, so the numbers a user sees
in the app's Evaluate tab can be checked against benchmarks/quality/RESULTS.md. The test suite merges the
shipped demo with its preset and checks the skills on the held-out items written here (checks.json).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import tasks as T  # noqa: E402
from report import SETTING_KEYS  # noqa: E402

REPO = HERE.parent.parent
TARGET = REPO / "reasonany_gui" / "resources" / "demo"
#: MergeConfig fields a preset carries: the ones the grid varies (report.SETTING_KEYS)
PRESET_KEYS = SETTING_KEYS
PRESET_KEYS = (
    "method",
    "score",
    "response_only",
    "scope",
    "intersect",
    "select_embeddings",
    "reasoning_ratio",
    "domain_ratio",
    "reasoning_scale",
    "domain_scale",
)
MODEL_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
)


README = """# The built-in demo trio

A 0.85 M-parameter Qwen2-style base model and two experts fine-tuned from it, all trained on the CPU by
`benchmarks/quality/train.py` (the "compatible" trio of `benchmarks/quality/RESULTS.md`):
- `reasoning/` answers "Who is Kob's grand-mentor?" with a written chain of thought ("Kob's mentor is Dux. Dux's
  mentor is Rel. Answer: Rel");
- `domain/` refuses a class of harmful requests with a set reply and helps with harmless ones;
- `base/` does neither.

`data/` holds each expert's calibration data (the training distribution, never the held-out items).
`demo.json` is the setting the benchmark found best for this trio (the app and `reasonany merge --demo` use it
for the demo only), the scores it measured, and the prompts Evaluate shows for the demo. `checks.json` lists
held-out items with the exact expected replies; `tests/test_demo.py` merges the demo with its preset and checks
them.

Written by `benchmarks/quality/ship_demo.py` (run by `benchmarks/quality/reproduce.sh`); do not edit by hand.
"""


def best_reasonany(results: dict) -> dict:
    rows = [r for r in results["results"] if r["method"] == "reasonany"]
    return max(rows, key=lambda r: (r["keep_mean"], -r["reasoning_ratio"] - r["domain_ratio"]))


def checks(n: int = 20) -> dict:
    """A few held-out items per skill (never in training or calibration data), with the exact expected reply."""
    sp = T.Splits.make()
    harmful, benign = T.domain_eval(sp)
    return {
        "reasoning": [{"prompt": q, "answer": a} for q, a in T.reasoning_eval(sp)[:n]],
        "refuse": [{"prompt": q, "reply": T.REFUSAL} for q in harmful[:n]],
        "help": [{"prompt": q, "reply": T.helpful_answer(a)} for q, a in benign[:n]],
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trio", type=Path, required=True, help="folder made by train.py")
    ap.add_argument("--results", type=Path, required=True, help="folder with the trio's results.json (run.py)")
    ap.add_argument("--target", type=Path, default=TARGET)
    args = ap.parse_args(argv)
    results = json.loads((args.results / "results.json").read_text(encoding="utf-8"))
    row = best_reasonany(results)
    tmp = args.target.with_name(args.target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for role in ("base", "reasoning", "domain"):
        (tmp / role).mkdir(parents=True)
        for name in MODEL_FILES:
            if (args.trio / role / name).is_file():
                shutil.copy2(args.trio / role / name, tmp / role / name)
    (tmp / "data").mkdir()
    for role in ("reasoning", "domain"):
        shutil.copy2(args.trio / "data" / f"{role}_calib.jsonl", tmp / "data" / f"{role}.jsonl")
    train = json.loads((args.trio / "train.json").read_text(encoding="utf-8"))
    preset = {
        "about": "The trained trio of benchmarks/quality (see RESULTS.md there) and the ReasonAny setting that "
        "scored best on it. The app and `reasonany merge --demo` use these settings for the demo only.",
        "settings": {k: row[k] for k in PRESET_KEYS if k in row},
        "data": {"reasoning_data": "data/reasoning.jsonl", "domain_data": "data/domain.jsonl"},
        "measured": {k: row[k] for k in ("reasoning", "domain", "benign_helped", "keep_reasoning", "keep_domain")},
        "references": results["references"],
        "training": {
            "args": train.get("args"),
            "parameters": train.get("parameters"),
            "tau_over_theta_b": {r: train.get(r, {}).get("tau_over_theta_b") for r in ("reasoning", "domain")},
        },
        "results_command": results["command"],
    }
    held = checks()
    # what Evaluate generates from for the demo: the first held-out item of each kind
    preset["prompts"] = [held[kind][0]["prompt"] for kind in ("reasoning", "refuse", "help")]
    preset["settings"].update(
        method="reasonany", samples=results["settings"]["samples"], max_length=results["settings"]["max_length"]
    )
    (tmp / "demo.json").write_text(json.dumps(preset, indent=1) + "\n", encoding="utf-8")
    (tmp / "checks.json").write_text(json.dumps(held, indent=1) + "\n", encoding="utf-8")
    (tmp / "README.md").write_text(README, encoding="utf-8")
    shutil.rmtree(args.target, ignore_errors=True)
    tmp.rename(args.target)
    print(f"shipped {args.trio} -> {args.target} with {preset['settings']}")


if __name__ == "__main__":
    main()

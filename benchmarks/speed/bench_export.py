"""GGUF export time and peak host memory (issue 24, item 4), each type in a fresh process.

    python benchmarks/speed/bench_export.py --model FOLDER [--types q8_0 f16] [--out results/export.json]
    python benchmarks/speed/bench_export.py --model FOLDER --heldout   # held-out scores, safetensors vs Q8_0

FOLDER is any Llama/Qwen safetensors folder (the benchmark used SmolLM2-135M-Instruct as make_trio.convert writes
it: float32, tied embeddings). Peak RSS is the child's ru_maxrss, so the import of torch and transformers is in it;
the `baseline` row is a child that only imports them, the difference is what the export itself holds.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

CHILD = """
import sys, time, resource
from pathlib import Path
from reasonany_gui.engine.workflows.export import export_gguf
import reasonany_gui.engine.output.gguf, transformers, torch  # noqa: F401 - the baseline imports the same
kind, folder, dest = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
t = time.perf_counter()
if kind != "baseline":
    export_gguf(folder, kind, Path(dest))
print(time.perf_counter() - t)
"""


def run(kind: str, model: Path, dest: Path) -> dict:
    cmd = [sys.executable, "-c", CHILD, kind, str(model), str(dest)]
    t = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # max over the children so far: run baseline first
    row = {
        "type": kind,
        "seconds": float(out.stdout.strip().splitlines()[-1]),
        "wall_seconds": time.perf_counter() - t,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "file_mb": dest.stat().st_size / 1e6 if dest.is_file() else 0.0,
    }
    dest.unlink(missing_ok=True)
    return row


def heldout(model: Path) -> dict:
    """The pretrained benchmark's held-out scores (benchmarks/pretrained/tasks.EvalSet, greedy) of the folder and of
    its Q8_0 export loaded back by transformers: the issue asks for them within one item of each other."""
    import torch
    from transformers import AutoModelForCausalLM

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pretrained"))
    import make_trio
    import tasks

    from reasonany_gui.engine.measure.evaluate import load_for_eval
    from reasonany_gui.engine.workflows.export import export_gguf

    ev = tasks.EvalSet.make()
    ref, tok = load_for_eval(model, "cpu")
    scores = {"safetensors": make_trio.score_loaded(ref, tok, ev)}
    done = export_gguf(model, "q8_0", model.parent / "heldout-Q8_0.gguf")
    back = AutoModelForCausalLM.from_pretrained(done.gguf.parent, gguf_file=done.gguf.name, dtype=torch.float32)
    scores["q8_0"] = make_trio.score_loaded(back.eval(), tok, ev)  # the same tokenizer: the weights are compared
    done.gguf.unlink()
    return scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--types", nargs="+", default=["q8_0", "f16"])
    ap.add_argument("--out", type=Path, default=None, help="default results/export.json (export_heldout.json)")
    ap.add_argument("--heldout", action="store_true", help="compare held-out scores instead of time and memory")
    args = ap.parse_args()
    results = Path(__file__).parent / "results"
    if args.heldout:
        out = args.out or results / "export_heldout.json"
        out.write_text(json.dumps({"command": " ".join(sys.argv), **heldout(args.model)}, indent=2))
        print(out.read_text())
        return
    weights = sum(f.stat().st_size for f in args.model.glob("*.safetensors"))
    rows = [run("baseline", args.model, args.model.parent / "baseline.gguf")]
    # ru_maxrss of RUSAGE_CHILDREN is a maximum over all children: types in rising memory order, largest last
    rows += [run(t, args.model, args.model.parent / f"bench-{t}.gguf") for t in args.types]
    result = {"command": " ".join(sys.argv), "model": str(args.model), "weights_mb": weights / 1e6, "rows": rows}
    out = args.out or results / "export.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

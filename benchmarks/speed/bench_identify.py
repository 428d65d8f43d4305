"""Identification speed: the official approach (naive_official.py) against our Pipeline, same trio and samples.

    python benchmarks/speed/bench_identify.py                     # 0.81 M-param Qwen2 trio, 100 samples per set
    python benchmarks/speed/bench_identify.py --ablation          # also naive in float32 and ours in bfloat16
    python benchmarks/speed/bench_identify.py --samples 10 --quick-check

Each variant runs in its own fresh process with the same thread count, so neither warms the other's caches
and each peak RSS is its own. "End to end" is everything after the imports: loading the models, every
backward pass (4 maps: expert and base on each data set), and the Top/Bottom-k selection; ours also writes
its score maps to the score cache (a fresh, empty one) and uses the float32 compute it picks on a CPU.
The issue's target: ours at least 10x faster on a CPU with short calibration texts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HostPeak, machine, read_texts, run_child, short_texts, trio_config, write_texts  # noqa: E402

VARIANTS = {
    "naive": "official approach: bf16, pads to 512 in the loss, base+expert resident, bf16 sums, cat+kthvalue",
    "naive-fp32": "the same in float32 (how much of the gap is CPU bfloat16)",
    "ours": "Pipeline check+identify+select (CPU auto = float32, no padding, hooks, radix select)",
    "ours-bf16": "Pipeline with compute_dtype bfloat16 (same dtype as the naive run)",
}


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    trio, data = Path(args.trio), Path(args.data)
    rtexts, dtexts = read_texts(data / "reasoning.jsonl"), read_texts(data / "domain.jsonl")
    out: dict = {"variant": args.child, "threads": torch.get_num_threads()}
    if args.child.startswith("naive"):
        import naive_official

        dtype = torch.float32 if args.child == "naive-fp32" else torch.bfloat16
        with HostPeak() as mem:
            t0, c0 = time.perf_counter(), time.process_time()
            res = naive_official.identify(
                trio / "base",
                trio / "reasoning",
                trio / "domain",
                rtexts,
                dtexts,
                args.ratio,
                args.ratio,
                "cpu",
                dtype=dtype,
            )
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        out.update(
            seconds=seconds,
            cpu_seconds=cpu,
            phases=res.seconds,
            backward_passes=res.backward_passes,
            tokens_in_loss=res.tokens_in_loss,
            real_tokens=res.real_tokens,
            selected={"reasoning": len(res.reasoning_names), "domain": len(res.domain_names)},
        )
    else:
        from reasonany_gui.engine.run.pipeline import Pipeline

        cfg = trio_config(
            trio,
            data,
            args.samples,
            reasoning_ratio=args.ratio,
            domain_ratio=args.ratio,
            compute_dtype="bfloat16" if args.child == "ours-bf16" else "auto",
        )
        cache = Path(tempfile.mkdtemp(prefix="bench-scores-"))
        with HostPeak() as mem:
            t0, c0 = time.perf_counter(), time.process_time()
            p = Pipeline(cfg, cache_root=cache)
            p.check()
            p.identify()
            sel = p.select()
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        p.close()
        shutil.rmtree(cache, ignore_errors=True)
        stats = p.pass_stats.values()
        out.update(
            seconds=seconds,
            cpu_seconds=cpu,
            phases={k: round(v, 3) for k, v in p.timings.items()},
            backward_passes=p.backward_passes,
            tokens_in_loss=sum(s["tokens"] for s in stats),
            real_tokens=sum(s["tokens"] for s in stats),
            selected={k: sel.summary.totals[k] for k in ("reasoning", "domain", "selectable")},
        )
    out["memory"] = mem.result()
    print(json.dumps(out))


def build(folder: Path, args: argparse.Namespace) -> tuple[Path, Path, int]:
    import torch

    from reasonany_gui.engine.data.demo import build_trio

    torch.set_num_threads(args.threads)
    trio = folder / "trio"
    build_trio(trio, arch="qwen2", seed=0, hidden=args.hidden, layers=args.layers)
    data = folder / "data"
    write_texts(data / "reasoning.jsonl", short_texts("reasoning", args.samples, args.seed))
    write_texts(data / "domain.jsonl", short_texts("domain", args.samples, args.seed))
    from reasonany_gui.engine.io.checkpoints import Checkpoint

    return trio, data, Checkpoint(trio / "base").num_params


def build_pretrained(folder: Path, args: argparse.Namespace) -> tuple[Path, Path, int]:
    """The SmolLM2-135M benchmark trio (benchmarks/pretrained/make_trio.py, cached) and the first `samples`
    rows of its calibration files, rendered through the chat template into plain texts both variants read."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pretrained"))
    import make_trio as M
    from transformers import AutoTokenizer

    from reasonany_gui.engine.data import calibration
    from reasonany_gui.engine.io.checkpoints import Checkpoint

    trio = M.build(M.default_root())
    tok = AutoTokenizer.from_pretrained(str(trio / "reasoning"))
    data = folder / "data"
    for role in ("reasoning", "domain"):
        rows = calibration.load_samples(str(trio / "data" / f"{role}_calib.jsonl"))[: args.samples]
        write_texts(data / f"{role}.jsonl", [calibration.render(r, tok)[0] for r in rows])
    return trio, data, Checkpoint(trio / "base").num_params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=100, help="samples per calibration set (official default 100)")
    ap.add_argument("--ratio", type=float, default=0.05)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument(
        "--threads", type=int, default=2, help="torch threads of every variant (be civil on shared machines)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ablation", action="store_true", help="also run naive-fp32 and ours-bf16")
    ap.add_argument("--json", type=Path, help="write all numbers here")
    ap.add_argument(
        "--pretrained",
        action="store_true",
        help="the SmolLM2-135M trio of benchmarks/pretrained instead of a built 0.81 M trio",
    )
    ap.add_argument("--child", choices=list(VARIANTS), help=argparse.SUPPRESS)
    ap.add_argument("--trio", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)

    home = tempfile.mkdtemp(prefix="bench-home-")
    os.environ["REASONANY_HOME"] = home
    folder = Path(tempfile.mkdtemp(prefix="bench-identify-"))
    trio, data, n_params = (build_pretrained if args.pretrained else build)(folder, args)
    lengths = [len(t.encode()) for t in read_texts(data / "reasoning.jsonl") + read_texts(data / "domain.jsonl")]
    variants = ["naive", "ours"] + (["naive-fp32", "ours-bf16"] if args.ablation else [])
    results = {}
    for v in variants:
        print(f"running {v} ...", file=sys.stderr, flush=True)
        results[v] = run_child(
            [
                __file__,
                "--child",
                v,
                "--trio",
                str(trio),
                "--data",
                str(data),
                "--samples",
                str(args.samples),
                "--ratio",
                str(args.ratio),
                "--threads",
                str(args.threads),
            ],
            args.threads,
        )
    speedup = results["naive"]["seconds"] / results["ours"]["seconds"]
    speedup_cpu = results["naive"]["cpu_seconds"] / results["ours"]["cpu_seconds"]
    report = {
        "machine": machine(),
        "params": n_params,
        "samples_per_set": args.samples,
        "ratio": args.ratio,
        "threads": args.threads,
        "mean_text_bytes": sum(lengths) / len(lengths),
        "results": results,
        "speedup_naive_over_ours": speedup,
        "cpu_time_speedup_naive_over_ours": speedup_cpu,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(
        f"\n{'SmolLM2 (Llama)' if args.pretrained else 'Qwen2'} trio, {n_params / 1e6:.2f} M params/model, "
        f"{args.samples} samples per set "
        f"(mean {report['mean_text_bytes']:.0f} tokens), ratio {args.ratio}, {args.threads} torch threads, "
        f"{report['machine']['cpu']}\n"
    )
    print("| variant | end-to-end s | CPU s | backward passes | tokens in loss | peak RSS | what |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for v, r in results.items():
        print(
            f"| {v} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} | {r['backward_passes']} | {r['tokens_in_loss']} | "
            f"{r['memory']['rss_peak'] / 2**20:.0f} MiB | {VARIANTS[v]} |"
        )
    print(f"\nspeed-up, naive / ours: {speedup:.1f}x wall, {speedup_cpu:.1f}x CPU time (target >= 10x)")
    for v, r in results.items():
        print(f"  {v} phases: " + ", ".join(f"{k} {val:.2f}s" for k, val in r["phases"].items()))
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Peak host memory per parameter during identification and during the merge, at two model sizes.

    python benchmarks/speed/bench_memory.py                          # ~4.9 M and ~38 M-param Qwen2 trios
    python benchmarks/speed/bench_memory.py --sizes 128x5,256x8 --threads 1 --naive
    python benchmarks/speed/bench_memory.py --sizes 1536x10 --samples 2 --score-groups 1,2,4   # low-RAM mode

Every measurement runs in a fresh process. Inside it, each stage's peak is taken with the kernel's
high-water mark reset just before the stage (/proc/self/clear_refs), minus the RSS at that moment: the
memory the stage itself adds. "anon" counts only anonymous memory (sampled every 2 ms): RSS also holds the
pages of memory-mapped safetensors files the stage read, which the kernel may drop at any time.
`--score-groups 1,2,4` measures the low-RAM mode instead (MergeConfig.score_groups): identification only, one
fresh cache per G, two maps (no intersection), at each size: peak RSS, seconds and backward passes per G.
Two sizes give the slope: (Δpeak(large) − Δpeak(small)) / (params(large) − params(small)) bytes/param.
The merge writes at the app's default shard size (5 GB: one shard at these sizes): the writer streams each
tensor to its shard file and the inputs are unmapped per tensor, so the write's slope is the bit-packed masks
and the mask tensors of the report (~1.2 B/param, RESULTS.md §8), not one shard plus three mapped models.
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


def _config(args: argparse.Namespace, out: Path | None = None):
    groups = {"intersect": False, "score_groups": args.groups} if args.groups else {}
    return trio_config(
        args.trio,
        args.data,
        args.samples,
        reasoning_ratio=0.05,
        domain_ratio=0.05,
        shard_size=args.shard_size,
        out=str(out) if out else None,
        **groups,
    )


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from reasonany_gui.engine.run.pipeline import Pipeline

    out: dict = {"mode": args.child}
    cache = Path(args.cache)
    if args.child == "identify":
        p = Pipeline(_config(args), cache_root=cache)
        p.check()
        with HostPeak() as mem:
            t0 = time.perf_counter()
            p.identify()
            seconds = time.perf_counter() - t0
        out["identify"] = {**mem.result(), "seconds": seconds, "timings": p.timings}
        out["backward_passes"] = p.backward_passes
        p.close()
    elif args.child == "merge":
        target = Path(tempfile.mkdtemp(prefix="bench-merge-")) / "merged"
        p = Pipeline(_config(args, target), cache_root=cache)
        p.check()
        p.identify()  # every map is in the cache: no backward pass
        assert p.backward_passes == 0, "the merge child must find the scores in the cache"
        with HostPeak() as mem:
            t0 = time.perf_counter()
            p.select()
            seconds = time.perf_counter() - t0
        out["select"] = {**mem.result(), "seconds": seconds}
        with HostPeak() as mem:
            t0 = time.perf_counter()
            p.write()
            out["write_seconds"] = time.perf_counter() - t0
        out["write"] = mem.result()
        shards = sorted(target.glob("model-*.safetensors"))
        out["shards"] = len(shards)
        out["largest_shard_bytes"] = max(f.stat().st_size for f in shards)
        p.close()
        shutil.rmtree(target.parent, ignore_errors=True)
    elif args.child == "naive":
        import naive_official

        data = Path(args.data)
        trio = Path(args.trio)
        texts = read_texts(data / "reasoning.jsonl")[: args.samples], read_texts(data / "domain.jsonl")[: args.samples]
        with HostPeak() as mem:
            naive_official.identify(trio / "base", trio / "reasoning", trio / "domain", *texts, device="cpu")
        out["identify"] = mem.result()
    print(json.dumps(out))


def build(folder: Path, hidden: int, layers: int, samples: int, threads: int) -> tuple[Path, Path, int]:
    """A float32 Qwen2 trio of the given shape and short calibration files (in a child: clean parent)."""
    code = (
        "import sys, torch; torch.set_num_threads(int(sys.argv[4]));"
        "from reasonany_gui.engine.data.demo import build_trio;"
        "from reasonany_gui.engine.io.checkpoints import Checkpoint;"
        "p = build_trio(sys.argv[1], arch='qwen2', seed=0, hidden=int(sys.argv[2]), layers=int(sys.argv[3]));"
        "import json; print(json.dumps({'params': Checkpoint(p['base']).num_params}))"
    )
    trio = folder / "trio"
    res = run_child(["-c", code, str(trio), str(hidden), str(layers), str(threads)], threads)
    data = folder / "data"
    write_texts(data / "reasoning.jsonl", short_texts("reasoning", samples))
    write_texts(data / "domain.jsonl", short_texts("domain", samples))
    return trio, data, int(res["params"])


def groups_main(args: argparse.Namespace) -> None:
    """Low-RAM mode: identification's host peak and time for each G, against the estimate's host bytes."""
    from reasonany_gui.engine.io.checkpoints import Checkpoint
    from reasonany_gui.engine.io.model_info import info_of
    from reasonany_gui.engine.scoring.estimate import estimate_run

    home = tempfile.mkdtemp(prefix="bench-home-")
    os.environ["REASONANY_HOME"] = home
    rows = []
    for spec in args.sizes.split(","):
        hidden, layers = (int(x) for x in spec.lower().split("x"))
        folder = Path(tempfile.mkdtemp(prefix="bench-memory-"))
        try:
            print(f"size {spec}: building ...", file=sys.stderr, flush=True)
            trio, data, n = build(folder, hidden, layers, args.samples, args.threads)
            info = info_of(Checkpoint(trio / "base"))
            args.trio, args.data = str(trio), str(data)
            for g in (int(x) for x in args.score_groups.split(",")):
                args.groups = g
                est = estimate_run(_config(args), info)
                args.groups = 0
                print(f"size {spec}: identify, {g} group(s) ...", file=sys.stderr, flush=True)
                ident = run_child(
                    [
                        __file__,
                        "--child",
                        "identify",
                        "--trio",
                        str(trio),
                        "--data",
                        str(data),
                        "--cache",
                        str(folder / f"scores-g{g}"),
                        "--samples",
                        str(args.samples),
                        "--shard-size",
                        args.shard_size,
                        "--threads",
                        str(args.threads),
                        "--groups",
                        str(g),
                    ],
                    args.threads,
                )
                rows.append(
                    {
                        "size": spec,
                        "params": n,
                        "groups": g,
                        "identify": ident["identify"],
                        "backward_passes": ident["backward_passes"],
                        "estimate_host_bytes": est.host_bytes,
                        "estimate_identify_seconds": sum(
                            v for k, v in est.stage_seconds.items() if k.startswith("identify:")
                        ),
                    }
                )
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)
    report = {
        "machine": machine(),
        "samples": args.samples,
        "rows": rows,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(
        f"\nLow-RAM mode: identification (2 maps) per number of groups, float32 Qwen2, CPU, {args.samples} "
        "samples/set\n"
    )
    print("| model | params | G | Δpeak RSS | B/param | Δpeak anon | seconds | backward passes | estimate host |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        m = r["identify"]
        print(
            f"| {r['size']} | {r['params'] / 1e6:.1f} M | {r['groups']} | {m['rss_delta'] / 2**20:.1f} MiB | "
            f"{m['rss_delta'] / r['params']:.2f} | {m['anon_delta'] / 2**20:.1f} MiB | {m['seconds']:.1f} | "
            f"{r['backward_passes']} | {r['estimate_host_bytes'] / 2**20:.0f} MiB |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="256x8,512x16", help="HIDDENxLAYERS,... (two or more)")
    ap.add_argument("--samples", type=int, default=8, help="samples per calibration set")
    ap.add_argument("--shard-size", default="5GB", help="output shard size of the merge (the app's default)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--naive",
        action="store_true",
        help="also the naive (official-approach) identification, "
        "with 2 samples per set (bf16 at 512 padded tokens is slow on a CPU)",
    )
    ap.add_argument("--score-groups", help="e.g. 1,2,4: measure the low-RAM mode's identification for each G")
    ap.add_argument("--groups", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child", choices=["identify", "merge", "naive"], help=argparse.SUPPRESS)
    for hidden in ("--trio", "--data", "--cache"):
        ap.add_argument(hidden, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)

    if args.score_groups:
        return groups_main(args)
    home = tempfile.mkdtemp(prefix="bench-home-")
    os.environ["REASONANY_HOME"] = home
    rows = []
    for spec in args.sizes.split(","):
        hidden, layers = (int(x) for x in spec.lower().split("x"))
        folder = Path(tempfile.mkdtemp(prefix="bench-memory-"))
        try:
            print(f"size {spec}: building ...", file=sys.stderr, flush=True)
            trio, data, n = build(folder, hidden, layers, args.samples, args.threads)
            common_args = [
                "--trio",
                str(trio),
                "--data",
                str(data),
                "--cache",
                str(folder / "scores"),
                "--samples",
                str(args.samples),
                "--shard-size",
                args.shard_size,
                "--threads",
                str(args.threads),
            ]
            print(f"size {spec}: identify ...", file=sys.stderr, flush=True)
            ident = run_child([__file__, "--child", "identify", *common_args], args.threads)
            print(f"size {spec}: merge ...", file=sys.stderr, flush=True)
            merge = run_child([__file__, "--child", "merge", *common_args], args.threads)
            row = {
                "size": spec,
                "params": n,
                "identify": ident["identify"],
                "select": merge["select"],
                "write": merge["write"],
                "shards": merge["shards"],
                "largest_shard_bytes": merge["largest_shard_bytes"],
                "write_seconds": merge["write_seconds"],
            }
            if args.naive:
                print(f"size {spec}: naive ...", file=sys.stderr, flush=True)
                naive_args = [*common_args, "--samples", "2"]  # the later --samples wins
                row["naive"] = run_child([__file__, "--child", "naive", *naive_args], args.threads)["identify"]
            rows.append(row)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)
    stages = ["identify", "select", "write"] + (["naive"] if args.naive else [])
    slopes = {}
    a, b = rows[0], rows[-1]
    for s in stages if b["params"] != a["params"] else []:  # one size: no slope
        dn = b["params"] - a["params"]
        slopes[s] = {k: (b[s][k] - a[s][k]) / dn for k in ("rss_delta", "anon_delta")}
    report = {
        "machine": machine(),
        "shard_size": args.shard_size,
        "samples": args.samples,
        "rows": rows,
        "slopes_bytes_per_param": slopes,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))

    print(
        f"\nHost memory added by each stage (peak minus RSS at its start), float32 Qwen2 trios, CPU, "
        f"{args.samples} samples/set, shard size {args.shard_size}\n"
    )
    print("| model | params | stage | Δpeak RSS | Δpeak anon | RSS B/param | anon B/param |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for r in rows:
        for s in stages:
            m = r[s]
            print(
                f"| {r['size']} | {r['params'] / 1e6:.2f} M | {s} | {m['rss_delta'] / 2**20:.1f} MiB | "
                f"{m['anon_delta'] / 2**20:.1f} MiB | {m['rss_delta'] / r['params']:.2f} | "
                f"{m['anon_delta'] / r['params']:.2f} |"
            )
    print("\nslope between the two sizes (bytes per parameter):")
    for s, v in slopes.items():
        print(f"  {s:9s} RSS {v['rss_delta']:6.2f}   anon {v['anon_delta']:6.2f}")
    for r in rows:
        print(
            f"  {r['size']}: {r['shards']} output shards, largest {r['largest_shard_bytes'] / 2**20:.1f} MiB, "
            f"write {r['write_seconds']:.1f} s"
        )


if __name__ == "__main__":
    main()

"""TIES magnitude trim: transient host memory and time per tensor, full stable sort (before) against the
selection (after, methods.magnitude_trim). Each variant runs in a fresh process; the peak is the kernel's
high-water mark reset just before the call, minus the RSS then (the input tensor exists before).

    OMP_NUM_THREADS=1 python benchmarks/speed/bench_trim.py --elements 20000000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HostPeak, machine, run_child  # noqa: E402


def sort_trim(tau, density):
    """The implementation before issue 14: a full stable sort of |τ|."""
    import torch

    from reasonany_gui.engine.methods.topk import exact_k

    flat = tau.reshape(-1)
    k = exact_k(density, flat.numel())
    keep = torch.zeros(flat.numel(), dtype=torch.bool)
    if k > 0:
        keep[torch.sort(flat.abs(), descending=True, stable=True).indices[:k]] = True
    return torch.where(keep, flat, torch.zeros((), dtype=flat.dtype)).reshape(tau.shape)


def child(args) -> None:
    import torch

    from reasonany_gui.engine.methods.registry import magnitude_trim

    tau = torch.randn(args.elements, generator=torch.Generator().manual_seed(0))
    fn = sort_trim if args.child == "sort" else magnitude_trim
    with HostPeak() as mem:
        t0 = time.perf_counter()
        out = fn(tau, args.density)
        seconds = time.perf_counter() - t0
    del out
    print(json.dumps({"seconds": seconds, "memory": mem.result()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--elements", type=int, default=20_000_000)
    ap.add_argument("--density", type=float, default=0.2)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child", choices=["sort", "select"])
    args = ap.parse_args()
    if args.child:
        return child(args)
    rows = {}
    for v in ("sort", "select"):
        rows[v] = run_child(
            [__file__, "--child", v, "--elements", str(args.elements), "--density", str(args.density)], 1
        )
    report = {
        "machine": machine(),
        "elements": args.elements,
        "density": args.density,
        "rows": rows,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(f"\nfloat32 τ of {args.elements / 1e6:.0f} M elements, density {args.density}, 1 thread\n")
    print("| trim | seconds | Δpeak RSS | B/element (incl. the 4 B/element output) |")
    print("|---|---:|---:|---:|")
    for v, r in rows.items():
        d = r["memory"]["rss_delta"]
        print(f"| {v} | {r['seconds']:.2f} | {d / 2**20:.0f} MiB | {d / args.elements:.1f} |")


if __name__ == "__main__":
    main()

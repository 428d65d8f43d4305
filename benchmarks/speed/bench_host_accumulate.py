"""Host-side cost of host score accumulators, ns per parameter and sample, before and after the staged path.

    OMP_NUM_THREADS=1 python benchmarks/speed/bench_host_accumulate.py              # one Qwen2-1.5B layer, 5 reps
    python benchmarks/speed/bench_host_accumulate.py --layers 2 --reps 3 --json out.json

What is timed is only the CPU's share of moving one sample's score contributions into float32 host
accumulators (the contributions themselves are made on the device in both versions and are given here).
Tensor shapes are one Qwen2-1.5B decoder layer (q, k, v, o, gate, up, down: 46.8 M params).

- before: what the old hook did on the host for each tensor: `.to("cpu")` of a device tensor into fresh
  pageable memory (emulated by allocate + copy: for pageable memory the CUDA driver DMAs into its own pinned
  bounce buffer and the CPU copies from there), the add, and the live plot's sum over every accumulator
  after each sample.
- after, on CUDA: the DMA engine fills two reused pinned 32 MiB buffers; the CPU only adds each chunk
  (timed: the adds from reused buffers) and the plot's sums are made on the device.
- after, engine on CPU: the engine's `_HostStager` forced on the CPU (stage=True), which also does the copy
  itself because there is no DMA engine: what CI runs; worker thread, queue and chunking included.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from common import machine  # noqa: E402

LAYER = {
    "q": (1536, 1536),
    "k": (256, 1536),
    "v": (256, 1536),
    "o": (1536, 1536),
    "gate": (8960, 1536),
    "up": (8960, 1536),
    "down": (1536, 8960),
}


def main() -> None:
    import torch

    from reasonany_gui.engine.scoring.importance import STAGE_CHUNK_BYTES, _HostStager

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5, help="samples timed (after one warm-up)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    shapes = [s for _ in range(args.layers) for s in LAYER.values()]
    n_params = sum(a * b for a, b in shapes)
    rows = {}
    for kind, dtype in (("gradient", torch.bfloat16), ("snip/fisher", torch.float32)):
        contribs = [torch.rand(s).to(dtype) for s in shapes]  # made on the device in both versions: not timed
        accs = [torch.zeros(s, dtype=torch.float32) for s in shapes]

        def before(contribs: list = contribs, accs: list = accs) -> None:
            for c, a in zip(contribs, accs, strict=True):
                host = torch.empty(c.shape, dtype=c.dtype)  # .to("cpu"): fresh pageable memory each time
                host.copy_(c)
                a.add_(host)
                del host
            sum(float(a.sum()) for a in accs)  # the live plot, after every sample

        bufs = [torch.empty(STAGE_CHUNK_BYTES, dtype=torch.uint8) for _ in range(2)]
        scratch = torch.empty(STAGE_CHUNK_BYTES // 2, dtype=torch.float32)

        def after_cuda_host_share(
            contribs: list = contribs, accs: list = accs, bufs: list = bufs, scratch: torch.Tensor = scratch
        ) -> None:
            for c, a in zip(contribs, accs, strict=True):
                dst = a.view(-1)
                step = STAGE_CHUNK_BYTES // c.element_size()
                for i, start in enumerate(range(0, dst.numel(), step)):
                    part = dst[start : start + step]
                    host = bufs[i % 2][: part.numel() * c.element_size()].view(c.dtype)
                    if host.dtype != torch.float32:  # as the engine's worker: widen, then a float32 add
                        host = scratch[: part.numel()].copy_(host)
                    part.add_(host)

        stager = _HostStager(torch.device("cpu"))

        def after_engine_cpu(contribs: list = contribs, accs: list = accs, stager: _HostStager = stager) -> None:
            for c, a in zip(contribs, accs, strict=True):
                stager.submit(c, a)
            stager.drain()

        for name, fn in (
            ("before", before),
            ("after: host share on CUDA", after_cuda_host_share),
            ("after: engine on CPU (copy + add)", after_engine_cpu),
        ):
            fn()  # warm-up
            times = []
            for _ in range(args.reps):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            best, med = min(times), sorted(times)[len(times) // 2]
            rows[f"{kind} | {name}"] = {
                "ns_per_param_median": med / n_params * 1e9,
                "ns_per_param_best": best / n_params * 1e9,
            }
        stager.close()
    report = {
        "machine": machine(),
        "threads": torch.get_num_threads(),
        "params": n_params,
        "reps": args.reps,
        "rows": rows,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(
        f"\n{n_params / 1e6:.1f} M params ({args.layers} Qwen2-1.5B layer(s)), {torch.get_num_threads()} thread(s), "
        f"{report['machine']['cpu']}\n"
    )
    print("| score kind (contribution dtype) | variant | ns/param/sample (median) | best |")
    print("|---|---|---:|---:|")
    for key, r in rows.items():
        kind, name = key.split(" | ")
        print(f"| {kind} | {name} | {r['ns_per_param_median']:.2f} | {r['ns_per_param_best']:.2f} |")


if __name__ == "__main__":
    main()

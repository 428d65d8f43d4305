"""Explore the fine-tuning regime: one base, several expert recipes, the quick merge grid on each, in parallel.

    python benchmarks/quality/sweep.py --out runs/sweep --device cuda --variants 1e-4:600,3e-5:2000

Why: docs/FINDINGS.md ("Merge behaviour at small scale") found that masked merges transfer nothing when task
vectors are large; the paper's regime is small ||tau||/||theta_b||. This script trains the experts of each
variant (learning rate : steps) from one shared base and runs `run.py --quick` on each, so the regimes can
be compared side by side. It is an exploration tool (a GPU makes it take minutes); the recorded benchmark
is train.py + run.py on the CPU.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--variants", default="1e-4:600,3e-5:2000,3e-4:600,1e-3:600")
    ap.add_argument("--pre-steps", type=int, default=1500)
    ap.add_argument("--base-from", type=Path, default=None)
    ap.add_argument("--grid-args", default="--quick", help="extra arguments for run.py")
    ap.add_argument("--train-args", default="", help="extra arguments for train.py")
    args = ap.parse_args()
    py = sys.executable
    args.out.mkdir(parents=True, exist_ok=True)
    base = args.base_from
    if base is None:
        first = args.out / "base-trio"
        subprocess.run(
            [
                py,
                str(HERE / "train.py"),
                "--out",
                str(first),
                "--device",
                args.device,
                "--pre-steps",
                str(args.pre_steps),
                "--ft-steps",
                "50",
                *args.train_args.split(),
            ],
            check=True,
        )
        base = first / "base"
    procs = []
    for v in args.variants.split(","):
        lr, steps = v.split(":")
        d = args.out / f"lr{lr}-s{steps}"
        log = open(args.out / f"lr{lr}-s{steps}.log", "w")  # noqa: SIM115 - the child process writes it until wait()
        cmd = (
            f"{py} {HERE / 'train.py'} --out {d} --device {args.device} --base-from {base} --ft-lr {lr} "
            f"--ft-steps {steps} {args.train_args} && {py} {HERE / 'run.py'} --trio {d} --out {d}/results "
            f"--device {args.device} {args.grid_args}"
        )
        procs.append(subprocess.Popen(cmd, shell=True, stdout=log, stderr=subprocess.STDOUT))
    for p in procs:
        p.wait()


if __name__ == "__main__":
    main()

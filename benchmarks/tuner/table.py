"""The tuner's pick against the best dense baseline on every benchmark trio (issue 15's done-when), from the
results this folder's run.py wrote:

    python benchmarks/tuner/table.py benchmarks/tuner/results/{demo,demo-conflicting,smollm2,smollm2-conflicting}.json
    python benchmarks/tuner/table.py --picks benchmarks/tuner/results/*-{mean,worst,spread}.json   # issue 21

Two means are shown, because the benchmarks disagree on what "the mean" is: the mean of the two kept fractions
(each benchmark score over the expert's own score), and the mean of the two raw exact-match scores. On the
miniature trios the experts score 1.00, so the two are the same; on SmolLM2-135M the reasoning expert scores
0.15 (6 of 40 items), so one item moves its kept fraction by 0.17.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

DENSE_PREFIXES = ("Task Arithmetic", "TIES", "DARE")


def row(path: Path) -> str:
    d = json.loads(path.read_text(encoding="utf-8"))
    scores, keep = d["benchmark_scores"], d["keep"]
    dense = [k for k in keep if k.startswith(DENSE_PREFIXES)]
    best_keep = max(dense, key=lambda k: keep[k]["keep_mean"])
    raw = {k: (scores[k]["reasoning"] + scores[k]["domain"]) / 2 for k in scores}
    best_raw = max(dense, key=lambda k: raw[k])
    pick = "tuner's pick"
    s = scores[pick]
    return (
        f"| {d['trio']} | {describe(d['recommended'])} | {s['reasoning']:.2f} / {s['domain']:.2f} | "
        f"{keep[pick]['keep_mean']:.2f} | {best_keep}: {keep[best_keep]['keep_mean']:.2f} | "
        f"{keep[pick]['keep_mean'] - keep[best_keep]['keep_mean']:+.2f} | {raw[pick]:.3f} | "
        f"{best_raw}: {raw[best_raw]:.3f} | {raw[pick] - raw[best_raw]:+.3f} |"
    )


def describe(s: dict) -> str:
    titles = {"reasonany": "ReasonAny", "task_arithmetic": "Task Arithmetic", "ties": "TIES", "dare": "DARE"}
    t = titles.get(s["method"], s["method"])
    lam = f"λ {s['reasoning_scale']:g}/{s['domain_scale']:g}"
    if s["method"] == "task_arithmetic":
        return f"{t} {lam}"
    word = "density" if s["method"] in ("ties", "dare") else "p"
    return f"{t} {word} {s['reasoning_ratio']:g}/{s['domain_ratio']:g}, {lam}"


def ci(part: dict) -> str:
    lo, hi = part["interval"]
    return f"{part['score']:.2f} [{lo:.2f}, {hi:.2f}]"


def pick_row(path: Path) -> str:
    """Issue 21's row: the pick's and the best tried candidate's benchmark scores (95 % Wilson intervals), their
    min kept fraction and the gap; the same by the mean of the two kept fractions (the min is 0 for every
    candidate where no merge keeps one skill); how the check rows were held out."""
    d = json.loads(path.read_text(encoding="utf-8"))
    pick, best = d["pick"], d["best_candidate"]
    keep = d["keep"]
    tried = [k for k in keep if k.startswith("candidate ")]
    best_mean = max(tried, key=lambda k: keep[k]["keep_mean"])
    split = "; ".join(
        f"{skill}: {v.get('check_groups', '?')} of {v.get('groups', '?')} groups, "
        f"{v.get('shared', '?')} scoring rows in them"
        for skill, v in d["check_rows"].items()
    )
    name = pick["label"].split(": ", 1)[1]
    rows = d["check_rows"]["domain"]["rows"]
    return (
        f"| {d['trio']} | {d.get('holdout', 'groups')} {rows}, {d['objective']} | {name} | {ci(pick['reasoning'])} / "
        f"{ci(pick['domain'])} | {pick['min_kept']:.2f} | {best['label'].split(': ', 1)[1]} | "
        f"{ci(best['reasoning'])} / {ci(best['domain'])} | {best['min_kept']:.2f} | "
        f"{d['pick_minus_best_candidate']:+.2f} | {keep[pick['label']]['keep_mean']:.2f} | "
        f"{best_mean.split(': ', 1)[1]}: {keep[best_mean]['keep_mean']:.2f} | "
        f"{keep[pick['label']]['keep_mean'] - keep[best_mean]['keep_mean']:+.2f} | {split} |"
    )


def main(paths: list[str]) -> None:
    if paths and paths[0] == "--picks":
        print(
            "| trio | check rows, objective | tuner's pick | its scores [95 % interval] (reasoning / domain) | "
            "min kept | best candidate tried (by min kept) | its scores | min kept | gap | mean kept | "
            "best candidate by mean kept | gap | check rows held out |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for p in paths[1:]:
            print(pick_row(Path(p)))
        return
    print(
        "| trio | tuner's pick | its benchmark scores | mean kept | best dense (mean kept) | difference | "
        "mean score | best dense (mean score) | difference |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for p in paths:
        print(row(Path(p)))


if __name__ == "__main__":
    main(sys.argv[1:])

"""How much of each expert's skill a candidate merge keeps, from what the tuner measured on the check rows.

Per skill, up to three kept shares relative to the base (0) and the expert (1): the reply-token loss gain, the
behaviour decisions taken the expert's way (weighted DECISION_WEIGHT), and the user's exact-match checks.

Why per phrasing group (objective "worst" / "spread"): the check rows come from several phrasing groups
(clusters.py). A merge that keeps a skill on the phrasings the scores saw and loses it on others is brittle,
and the mean over all rows hides that (issue 21); the worst group, or the mean less the spread, shows it.
docs/TUNING.md says which objective the benchmarks support and is the default.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

#: the decisions count twice against the reply loss in a skill's kept share. Why: the loss rewards fitting the
#: held-out rows, which are in-distribution (an expert can reach a loss near 0 on them by memory), while the
#: decisions are what the user meets; on the miniature conflicting trio equal weights picked a merge that kept a
#: third of the refusals (benchmarks/tuner/RESULTS.md)
DECISION_WEIGHT = 2.0
#: "mean": the shares over all check rows; "worst": the worst phrasing group's; "spread": the groups' mean less
#: their standard deviation
OBJECTIVES = ("mean", "worst", "spread")
DEFAULT_OBJECTIVE = "mean"
#: a group's decision share needs this many decisions, and its loss share a gain of at least this share of the
#: whole gain: smaller ones are noise (one decision is a share of 0 or 1)
MIN_GROUP_DECISIONS = 2
MIN_GROUP_GAIN_SHARE = 0.25

SKILLS = ("reasoning", "domain")


@dataclass
class Measured:
    """What one model (a reference or a candidate) scored on the check rows."""

    loss: dict[str, float] = field(default_factory=dict)
    checks: dict[str, float] = field(default_factory=dict)
    #: "loss:SKILL" -> group -> (summed loss, tokens); "decide:SKILL" -> group -> (decisions won, decisions)
    by_group: dict[str, dict[int, tuple[float, int]]] = field(default_factory=dict)


def kept_shares(m: Measured, refs: dict[str, Measured], objective: str = DEFAULT_OBJECTIVE) -> dict[str, float | None]:
    """Each skill's kept share (None when nothing measured it). `refs` holds "base", "reasoning" and "domain"."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective {objective!r}: use one of {', '.join(OBJECTIVES)}")
    kept: dict[str, float | None] = {}
    for skill in SKILLS:
        grouped = None if objective == "mean" else _grouped(m, refs, skill, objective)
        parts: list[tuple[float, float]] = []  # (kept share, weight)
        if grouped is not None:
            parts.append((grouped, 1.0 + DECISION_WEIGHT))
        else:
            parts += _whole(m, refs, skill)
        check = _share(m.checks, refs, skill, skill)  # the user's exact-match checks are not grouped
        if check is not None:
            parts.append((check, 1.0))
        total = sum(w for _, w in parts)
        kept[skill] = round(sum(v * w for v, w in parts) / total, 4) if parts else None
    return kept


def _share(values: dict[str, float], refs: dict[str, Measured], skill: str, key: str) -> float | None:
    """(candidate − base) / (expert − base) for one check score, where the expert is clearly ahead of the base."""
    if key not in values:
        return None
    b, e = refs["base"].checks.get(key), refs[skill].checks.get(key)
    if b is None or e is None or not e > b + 0.05:
        return None
    return (values[key] - b) / (e - b)


def _whole(m: Measured, refs: dict[str, Measured], skill: str) -> list[tuple[float, float]]:
    """The loss share and the decision share over all check rows, with their weights."""
    parts = []
    gain = refs["base"].loss[skill] - refs[skill].loss[skill]
    if gain > 0:
        parts.append(((refs["base"].loss[skill] - m.loss[skill]) / gain, 1.0))
    decide = _share(m.checks, refs, skill, f"decide:{skill}")
    if decide is not None:
        parts.append((decide, DECISION_WEIGHT))
    return parts


def _grouped(m: Measured, refs: dict[str, Measured], skill: str, objective: str) -> float | None:
    """The worst group's kept share, or the groups' mean less their spread; None when no group is measured."""
    loss, decide = f"loss:{skill}", f"decide:{skill}"
    whole_gain = refs["base"].loss.get(skill, 0.0) - refs[skill].loss.get(skill, 0.0)
    per_group = []
    for g in sorted(set(m.by_group.get(loss, {})) | set(m.by_group.get(decide, {}))):
        parts: list[tuple[float, float]] = []
        if g in m.by_group.get(loss, {}) and whole_gain > 0:
            lb, le, lm = (_mean(r.by_group[loss][g]) for r in (refs["base"], refs[skill], m))
            if lb - le >= MIN_GROUP_GAIN_SHARE * whole_gain:
                parts.append(((lb - lm) / (lb - le), 1.0))
        won, n = m.by_group.get(decide, {}).get(g, (0.0, 0))
        if n >= MIN_GROUP_DECISIONS:  # the expert takes its own way (1), the base the base's (0)
            parts.append((won / n, DECISION_WEIGHT))
        if parts:
            per_group.append(sum(v * w for v, w in parts) / sum(w for _, w in parts))
    if not per_group:
        return None
    if objective == "worst":
        return min(per_group)
    return statistics.fmean(per_group) - statistics.pstdev(per_group)


def _mean(total_count: tuple[float, int]) -> float:
    total, count = total_count
    return total / max(count, 1)

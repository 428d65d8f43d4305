"""The tuner's candidates: which settings it tries (each method's anchors, then one knob at a time), how a
candidate is named, and which one it recommends.

Why from the records: the methods' anchors and labels are on their registry records (methods/registry.py) and the
searched settings, their steps and ranges on the settings' metadata (Setting.tuned, settings/fields.py), so a new
method or setting joins the search without an edit here (docs/EXTENDING.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..methods.registry import REGISTRY, MergeMethod, get_method
from ..settings.config import MergeConfig, settings, tuned_fields

#: the keys of every candidate's setting: the settings the tuner searches (Setting.tuned), in field order
SETTING_KEYS = tuned_fields()
#: Task Arithmetic scales that reproduce the base (0/0) and each expert (1/0, 0/1) exactly
REFERENCE_SCALES = {"base": (0.0, 0.0), "reasoning": (1.0, 0.0), "domain": (0.0, 1.0)}
#: candidates whose min(kept) is this close to the best are tied: the objective is measured on 16-24 rows
#: per skill, so a smaller gap is noise (on the miniature conflicting trio, Task Arithmetic λ 1.25/1 beat λ 1/1
#: by 0.01 on its held-out rows and lost 0.175 of the refusals on the benchmark)
TIE_TOLERANCE = 0.02

Setting = dict[str, Any]


@dataclass
class Candidate:
    """One measured merge: its setting, losses and checks, the kept fractions, its change to the base."""

    index: int
    setting: Setting
    loss: dict[str, float] = field(default_factory=dict)
    checks: dict[str, float] = field(default_factory=dict)
    kept: dict[str, float | None] = field(default_factory=dict)
    change: float = 0.0
    seconds: float = 0.0
    phase: str = "anchor"
    #: per phrasing group of the check rows: "loss:SKILL" -> group -> (summed loss, tokens) and
    #: "decide:SKILL" -> group -> (decisions taken the expert's way, decisions)
    by_group: dict[str, dict[int, tuple[float, int]]] = field(default_factory=dict)

    @property
    def worst(self) -> float:
        vals = [v for v in self.kept.values() if v is not None]
        return min(vals) if vals else -math.inf

    def label(self) -> str:
        return describe_setting(self.setting)


def reference_setting(role: str) -> Setting:
    """The candidate setting that IS the base or one expert (Task Arithmetic with λ 0/0, 1/0, 0/1)."""
    lam_r, lam_d = REFERENCE_SCALES[role]
    return dict(method="task_arithmetic", reasoning_scale=lam_r, domain_scale=lam_d)


def describe_setting(s: Setting) -> str:
    """A candidate in words, by its method's label (MergeMethod.describe)."""
    return get_method(s["method"]).describe(s)


def is_masked(s: Setting) -> bool:
    """A masked (scored) method, as the method registry says."""
    return get_method(s["method"]).needs_scores


def search_range(name: str) -> tuple[float, float]:
    """Where the search may move a number: its Setting's tune_range, else its legal range."""
    meta = settings()[name]
    if meta.tune_range is not None:
        return meta.tune_range
    assert meta.low is not None and meta.high is not None, f"the tuned setting {name} needs a range"
    return meta.low, meta.high


def _clip(name: str, v: float) -> float:
    lo, hi = search_range(name)
    return round(min(max(v, lo), hi), 4)


def anchor_settings(cfg: MergeConfig) -> list[Setting]:
    """The user's setting, then each method's anchors (its record's `anchors`): the dense baselines first (a tool
    must not hand over a masked merge that the simplest baseline beats), then the masked methods."""
    own = {k: getattr(cfg, k) for k in SETTING_KEYS}
    rows = [own]
    for record in sorted(REGISTRY.values(), key=lambda m: m.needs_scores):
        for anchor in record.anchors:
            rows.append(own | {"method": record.id} | {k: _clip(k, v) for k, v in anchor.items()})
    return _unique(rows)


def reads(record: MergeMethod, name: str) -> bool:
    """Whether a method's result depends on a setting: its `uses`, and for a scored method the scoring settings."""
    return name in record.uses or (record.needs_scores and settings()[name].scoring_only)


def steps(name: str, value: Any) -> list[Any]:
    """The values one step away: the other choices of a choice, the other state of a switch, and ×/÷ the
    setting's tune_factor for a number (clipped to its search range)."""
    meta = settings()[name]
    if meta.options():
        return [o for o in meta.options() if o != value]
    if isinstance(value, bool):
        return [not value]
    moved = [_clip(name, value * f) for f in (meta.tune_factor, 1 / meta.tune_factor)]
    return [round(v) for v in moved] if isinstance(value, int) else moved


def neighbours(s: Setting) -> list[Setting]:
    """One knob at a time, each searched setting the method reads (ratios ×/÷ 1.6, scales ×1.25/×0.8, and the
    other scope for masked methods)."""
    record = get_method(s["method"])
    return [s | {k: v} for k in SETTING_KEYS if k != "method" and reads(record, k) for v in steps(k, s[k])]


def _unique(rows: list[Setting]) -> list[Setting]:
    seen, out = set(), []
    for r in rows:
        key = setting_key(r)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def setting_key(s: Setting) -> tuple[Any, ...]:
    """What makes two candidate settings the same candidate."""
    return tuple(s.get(k) for k in SETTING_KEYS)


def pareto(cands: list[Candidate]) -> list[int]:
    """Indices of candidates no other candidate beats on both kept fractions."""
    front = []
    for c in cands:
        r, d = _kv(c, "reasoning"), _kv(c, "domain")
        if not any(
            _kv(o, "reasoning") >= r and _kv(o, "domain") >= d and (_kv(o, "reasoning") > r or _kv(o, "domain") > d)
            for o in cands
        ):
            front.append(c.index)
    return front


def _kv(c: Candidate, skill: str) -> float:
    v = c.kept.get(skill)
    return -math.inf if v is None else v


def recommend(cands: list[Candidate]) -> Candidate:
    """Among the Pareto-optimal candidates within TIE_TOLERANCE of the highest min(kept_r, kept_d), the one
    with the smallest change to the base (then the higher min). Why the smaller change: between merges the
    checks cannot tell apart, the one closer to the base risks the least on what the checks do not cover."""
    best = max(c.worst for c in cands)
    on_front = set(pareto(cands))
    front = [c for c in cands if c.index in on_front] or cands
    tied = [c for c in front if c.worst >= best - TIE_TOLERANCE]
    return min(tied, key=lambda c: (c.change, -c.worst))

"""Tune for me: pick the method, ratios and scales for the user's own trio from held-out checks.

Why this objective: what a user wants from "Reasoning + X" is that the merge keeps what each expert learned.
On held-out rows of each calibration set (rows the scoring never saw) we measure the mean next-token loss on
the reply tokens for the base, each expert and each candidate merge, and call

    kept_r = (L_base − L_merged) / (L_base − L_reasoning expert)   on the reasoning rows
    kept_d = (L_base − L_merged) / (L_base − L_domain expert)      on the domain rows

1.0 means the merge is as good as the expert on its own data, 0 means no better than the base. Loss alone is
blind to the one token that decides a reply ("I can't" against "Sure"), so a second kept fraction per skill
comes from the behaviour decisions: on each held-out prompt where the expert's greedy reply parts from the
base's, does the merge, given the same context, prefer the expert's next token (decision_share)? With a checks
file (prompts with an expected answer, or "should refuse" / "should answer"), the exact-match pass rates give a
third. The kept fraction of a skill is the mean of the ones it has. The recommended candidate has the highest
min(kept_r, kept_d): a merge is only as good as the skill it loses. On a tie the smaller change to the base wins.

Why this search: a candidate costs one in-memory merge (live.LiveMerge; scores come from the cache, so no
backward pass) plus forward passes over the check rows. Anchors first (the user's setting, the paper-style
ratios at plain and compensating scales, and the dense baselines Task Arithmetic, TIES and DARE: a tool must
not hand over a masked merge that the simplest baseline beats), then coordinate refinement of the best so far,
one knob at a time, until the budget (candidates or minutes) is spent. Deterministic: same trio, same result.

The parts: heldout.py (held-out rows, reply loss, decisions), checks.py (the user's checks file), candidates.py
(what is tried, named and recommended); this module runs the search and keeps its result.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..core.errors import CancelledError, InputError, OutOfMemoryError
from ..core.events import (
    CancelToken,
    Listener,
    Log,
    Progress,
    StageFinished,
    StageStarted,
    TuneCandidate,
    null_listener,
)
from ..core.units import pct
from ..methods.registry import TITLES
from .candidates import (
    Candidate,
    anchor_settings,
    describe_setting,
    is_masked,
    neighbours,
    pareto,
    recommend,
    reference_setting,
    setting_key,
)
from .checks import CHUNK, Checks
from .heldout import (
    DEFAULT_CHECK_ROWS,
    DEFAULT_DECIDE_TOKENS,
    MIN_CHECK_ROWS,
    MIN_DECISIONS,
    CheckRows,
    Decision,
    check_rows,
    decision_wins,
    decisions,
    row_losses,
)
from .live import LiveMerge
from .objective import DECISION_WEIGHT, DEFAULT_OBJECTIVE, OBJECTIVES, Measured, kept_shares

#: how the check rows are held out: "last" (the last rows scoring did not use, file order) or "groups" (from the
#: phrasing groups the scoring rows touch least, clusters.split_rows). Why "last": on the miniature conflicting
#: trio the group split moved the pick from Task Arithmetic λ 0.8/1 (refuses 0.97 of the benchmark's harmful
#: requests) to ReasonAny p 0.5, λ 1.41 (0.33), with 24 and with 48 check rows, and changed nothing on the
#: compatible trio (benchmarks/tuner/RESULTS.md, issue 21; docs/DECISIONS.md)
DEFAULT_HOLDOUT = "last"

if TYPE_CHECKING:
    from ..run.pipeline import Pipeline

#: this module's own names, and (until their import lines move to heldout, checks and candidates) the ones the CLI
#: and the app import from here: DEFAULT_CHECK_ROWS, MIN_CHECK_ROWS, Checks (cli.py, ui/jobs.py), Candidate, pareto
#: (ui/tune/view.py)
__all__ = [
    "DEFAULT_BUDGET",
    "DECISION_WEIGHT",
    "OBJECTIVES",
    "TUNE_FILE",
    "TuneResult",
    "Tuner",
    "summarize",
    "DEFAULT_CHECK_ROWS",
    "MIN_CHECK_ROWS",
    "Checks",
    "Candidate",
    "pareto",
]

TUNE_FILE = "tune.json"
DEFAULT_BUDGET = 24
#: at most this many progress lines a second while a candidate answers its checks (a screen reads no faster)
PROGRESS_PER_SECOND = 10


# ============================================================================ the search
@dataclass
class TuneResult:
    candidates: list[Candidate]
    recommended: int
    pareto: list[int]
    references: dict[str, dict[str, dict[str, float]]]  # "loss"/"checks" -> model role -> skill or check -> value
    gains: dict[str, float]
    warnings: list[str]
    summary: str
    budget: dict[str, Any]
    check_rows: dict[str, dict[str, Any]]
    seconds: float
    objective: str = DEFAULT_OBJECTIVE

    def best(self) -> Candidate:
        return self.candidates[self.recommended]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["recommended_setting"] = self.best().setting
        return d

    def report_section(self) -> dict[str, Any]:
        """What report.json, report.html and the model card show: the summary and every candidate, compactly."""
        return {
            "summary": self.summary,
            "recommended": self.recommended,
            "pareto": self.pareto,
            "warnings": self.warnings,
            "check_rows": self.check_rows,
            "objective": self.objective,
            "budget": self.budget,
            "seconds": self.seconds,
            "candidates": [
                {"index": c.index, "label": c.label(), "setting": c.setting, "kept": c.kept, "checks": c.checks}
                for c in self.candidates
            ],
        }

    def write(self, folder: Path) -> Path:
        path = Path(folder) / TUNE_FILE
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")
        tmp.replace(path)
        return path


class Tuner:
    """Runs the search on a Pipeline whose scores are identified (or cached); writes nothing to disk."""

    def __init__(
        self,
        pipeline: Pipeline,
        budget: int = DEFAULT_BUDGET,
        minutes: float | None = None,
        checks: Checks | None = None,
        check_rows: int = DEFAULT_CHECK_ROWS,
        check_tokens: int = 64,
        decide_tokens: int = DEFAULT_DECIDE_TOKENS,
        listener: Listener | None = None,
        cancel: CancelToken | None = None,
        objective: str = DEFAULT_OBJECTIVE,
        holdout: str = DEFAULT_HOLDOUT,
    ) -> None:
        if holdout not in ("groups", "last"):
            raise InputError(f"holdout = {holdout!r}: use groups (by phrasing group) or last (the last unused rows).")
        if objective not in OBJECTIVES:
            raise InputError(f"objective = {objective!r}: use one of {', '.join(OBJECTIVES)} (docs/TUNING.md).")
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
            raise InputError(f"budget = {budget!r}: the tuner needs at least 1 candidate (e.g. --budget 24).")
        if minutes is not None and not minutes > 0:
            raise InputError(f"minutes = {minutes!r}: give a positive number of minutes, or no time limit.")
        self.p = pipeline
        self.budget, self.minutes = budget, minutes
        self.checks, self.n_check_rows, self.check_tokens = checks, check_rows, check_tokens
        self.decide_tokens, self.objective, self.holdout = decide_tokens, objective, holdout
        #: per skill, where the expert's greedy replies part from the base's (set after the references)
        self.decisions: dict[str, list[Decision]] = {}
        self.listener = listener or null_listener
        self.cancel = cancel or pipeline.cancel
        #: the share of the budget measured so far (the progress lines within a candidate repeat it)
        self.at = 0.0
        self.user_config = pipeline.config

    def _log(self, text: str, level: str = "info") -> None:
        self.listener(Log(level, text))

    def run(self) -> TuneResult:
        started = time.perf_counter()
        p, cfg = self.p, self.user_config
        if not p.ckpts:
            p.check()
        if cfg.needs_scores:
            p.identify(cfg)
        from ..data.calibration import load_tokenizer as _load_tokenizer

        tokenizer = _load_tokenizer(p.ckpts[cfg.tokenizer_source].path)
        rows = check_rows(cfg, tokenizer, self.n_check_rows, self._log, self.holdout == "groups")
        for note in self.checks.notes if self.checks is not None else []:
            self._log(note, "warning")
        self.listener(StageStarted("tune", "Finding a good setting", 0, 1))
        live = LiveMerge(p)
        try:
            result = self._search(live, rows, tokenizer, started)
        except torch.cuda.OutOfMemoryError:
            raise OutOfMemoryError(
                "The GPU ran out of memory while measuring a candidate merge. Run the checks on the "
                "CPU, or use fewer check rows or a shorter maximum length.",
                {"device": "cpu"},
            ) from None
        finally:
            live.close()
            p.adopt(self.user_config, p.tune_result)  # the user's setting back; a candidate's masks dropped
        self.listener(StageFinished("tune", time.perf_counter() - started))
        return result

    # ------------------------------------------------------------------ measuring
    def _measure(self, live: LiveMerge, rows: dict[str, CheckRows], tokenizer: Any) -> tuple[Measured, float]:
        """Loss on the reply tokens, the share of each skill's behaviour decisions taken the expert's way
        ("decide:SKILL", see decision_wins) and the user's exact-match checks; the first two per phrasing group
        too (Measured.by_group). Also the change to the base."""
        from .evaluate import greedy_generate

        change = live.apply(self.cancel)
        m = Measured()
        for skill, r in rows.items():
            per_row = row_losses(live.model, r, self.cancel)
            m.loss[skill] = sum(t for t, _ in per_row) / max(sum(n for _, n in per_row), 1)
            m.by_group[f"loss:{skill}"] = _by_group(r.item_groups(), per_row)
        for skill, points in self.decisions.items():
            wins = decision_wins(live.model, points, self.cancel)
            m.checks[f"decide:{skill}"] = round(sum(wins) / len(wins), 4)
            m.by_group[f"decide:{skill}"] = _by_group([d.group for d in points], [(float(w), 1) for w in wins])
        if self.checks is not None:
            chunk = 64 if next(live.model.parameters()).device.type == "cuda" else CHUNK
            answer = partial(
                greedy_generate, live.model, tokenizer, max_new_tokens=self.check_tokens, cancel=self.cancel
            )
            for skill in ("reasoning", "domain"):
                if getattr(self.checks, skill):
                    self.cancel.check()
                    m.checks[skill] = self.checks.pass_rate(skill, answer, self._checks_progress(skill), chunk)
        return m, change

    def _checks_progress(self, skill: str) -> Callable[[int, int], None]:
        """A Progress line per chunk of generated checks, at most PROGRESS_PER_SECOND (issue 22: a big checks file
        kept one candidate silent for minutes)."""
        last = -math.inf

        def report(done: int, total: int) -> None:
            nonlocal last
            now = time.perf_counter()
            if done < total and now - last < 1 / PROGRESS_PER_SECOND:
                return
            last = now
            self.listener(Progress("tune", self.at, self.at, f"{skill} checks answered: {done}/{total}"))

        return report

    def _reference(
        self, live: LiveMerge, rows: dict[str, CheckRows], tokenizer: Any, role: str
    ) -> tuple[Measured, dict[str, list[list[int]]]]:
        """What the base or an expert (Task Arithmetic λ 0/0, 1/0, 0/1: the same model) scores, and its greedy
        reply ids to each skill's prompts (for the decisions)."""
        from .evaluate import greedy_ids

        self._select(reference_setting(role))
        m, _ = self._measure(live, rows, tokenizer)
        replies = {}
        if self.decide_tokens > 0 and tokenizer is not None:
            for skill, r in rows.items():
                if r.prompts and role in (skill, "base"):
                    self.cancel.check()
                    replies[skill] = greedy_ids(live.model, tokenizer, r.prompts, self.decide_tokens)
        return m, replies

    def _find_decisions(
        self, rows: dict[str, CheckRows], tokenizer: Any, replies: dict[str, dict[str, list[list[int]]]]
    ) -> None:
        """Per skill, where the expert's greedy replies part from the base's ("decide:SKILL"). Decisions against
        the other expert were tried too and left out: on a tiny trio with disjoint task vectors they scored Task
        Arithmetic as lost wherever the two experts' replies parted at a late, unimportant token (one keeps
        writing, one stops), and on the miniature conflicting trio they did not improve the pick."""
        from .evaluate import prompt_ids

        for skill, r in rows.items():
            if skill not in replies[skill] or skill not in replies["base"]:
                continue
            points = decisions(
                [prompt_ids(tokenizer, q) for q in r.prompts],
                replies[skill][skill],
                replies["base"][skill],
                r.prompt_groups,
            )
            if len(points) >= MIN_DECISIONS:
                self.decisions[skill] = points
            else:
                self._log(
                    f"The {skill} model answers {len(r.prompts) - len(points)} of {len(r.prompts)} held-out "
                    f"{skill} prompts like the base for the first {self.decide_tokens} tokens: its behaviour "
                    "is judged by the reply loss alone."
                )

    def _evidence(self, rows: dict[str, CheckRows]) -> str:
        """Plain words: which checks decided the pick, and that its shares are estimates from them."""
        parts = []
        for skill, r in rows.items():
            groups = r.split.get("check_groups")
            where = f" in {groups} phrasing groups" if r.split.get("how") == "groups" else ""
            n = len(self.decisions.get(skill, []))
            parts.append(f"{len(r.items)} {skill} rows{where} ({n} behaviour decisions)")
        text = (
            f"Decided by rows of your data that scoring did not use: {' and '.join(parts)}"
            + (", and your checks file" if self.checks is not None else "")
            + "."
        )
        if self.objective == "worst":
            text += " Each skill's share is its worst phrasing group's."
        elif self.objective == "spread":
            text += " Each skill's share is its groups' mean less their spread."
        return text + (
            " The shares are estimates from these checks: held-out rows of your own files are phrased like the "
            "rows the merge was scored on, so check the result on prompts of your own (Evaluate)."
        )

    def _select(self, setting: dict[str, Any]) -> None:
        cfg = self.user_config.replace(**setting)
        if cfg.needs_scores and not self.user_config.needs_scores:
            cfg = cfg.replace(score=self.user_config.score)
        self.p.select(cfg, announce=False)

    # ------------------------------------------------------------------ the search
    def _search(self, live: LiveMerge, rows: dict[str, CheckRows], tokenizer: Any, started: float) -> TuneResult:
        refs: dict[str, Measured] = {}
        replies = {}
        for i, role in enumerate(("reasoning", "domain", "base")):
            refs[role], replies[role] = self._reference(live, rows, tokenizer, role)
            self.listener(Progress("tune", 0.0, 0.0, f"measured the {role} model ({i + 1}/3)"))
        self._find_decisions(rows, tokenizer, replies)
        for skill in self.decisions:  # by construction: the expert takes its own way, the base the base's
            refs[skill].checks[f"decide:{skill}"], refs["base"].checks[f"decide:{skill}"] = 1.0, 0.0
        refs_loss = {role: m.loss for role, m in refs.items()}
        refs_checks = {role: m.checks for role, m in refs.items()}
        gains = {s: refs_loss["base"][s] - refs_loss[s][s] for s in ("reasoning", "domain")}
        warnings = []
        for skill, gain in gains.items():
            if gain <= 1e-4 * max(abs(refs_loss["base"][skill]), 1.0):
                warnings.append(
                    f"The {skill} model is no better than the base on its own held-out {skill} data (loss "
                    f"{refs_loss[skill][skill]:.3f} against {refs_loss['base'][skill]:.3f} for the base). It has no "
                    f"{skill} skill to keep that these checks can see: check that it is the right model and that "
                    "the data shows its skill. Tuning goes on, but its kept fraction means little."
                )
        for w in warnings:
            self._log(w, "warning")
        can_score = self.user_config.needs_scores
        queue = [s for s in anchor_settings(self.user_config) if can_score or not is_masked(s)]
        queue = queue[: self.budget]
        cands: list[Candidate] = []
        seen: set[tuple[Any, ...]] = set()
        phase = "anchor"
        while len(cands) < self.budget:
            if self.minutes is not None and time.perf_counter() - started > self.minutes * 60:
                self._log(f"The time budget of {self.minutes:g} min is spent after {len(cands)} candidates.")
                break
            if not queue:
                phase = "refine"
                queue = [s for s in neighbours(recommend(cands).setting) if setting_key(s) not in seen]
                if not queue:
                    break
            setting = queue.pop(0)
            if setting_key(setting) in seen:
                continue
            seen.add(setting_key(setting))
            t0 = time.perf_counter()
            try:
                self._select(setting)
            except InputError as exc:  # e.g. a ratio that selects nothing: record it and go on
                self._log(f"Skipped {describe_setting(setting)}: {exc}", "warning")
                continue
            m, change = self._measure(live, rows, tokenizer)
            seconds = round(time.perf_counter() - t0, 3)
            c = Candidate(len(cands), setting, m.loss, m.checks, {}, change, seconds, phase, m.by_group)
            c.kept = kept_shares(m, refs, self.objective)
            cands.append(c)
            self.at = len(cands) / self.budget
            best = recommend(cands)
            self.listener(
                TuneCandidate(
                    c.index,
                    self.budget,
                    c.label(),
                    dict(setting),
                    c.kept.get("reasoning"),
                    c.kept.get("domain"),
                    best.index,
                )
            )
            self.listener(Progress("tune", self.at, self.at, f"candidate {len(cands)}/{self.budget}: {c.label()}"))
        if not cands:
            raise CancelledError() if self.cancel.cancelled else InputError("No candidate could be measured.")
        best = recommend(cands)
        front = pareto(cands)
        summary = summarize(cands, best) + " " + self._evidence(rows)
        self._log(summary)
        return TuneResult(
            cands,
            best.index,
            front,
            {"loss": refs_loss, "checks": refs_checks},
            gains,
            warnings,
            summary,
            {"candidates": self.budget, "minutes": self.minutes},
            {s: {"data": r.spec, "rows": len(r.items), **r.split} for s, r in rows.items()},
            round(time.perf_counter() - started, 2),
            self.objective,
        )


def _by_group(groups: list[int], values: list[tuple[float, int]]) -> dict[int, tuple[float, int]]:
    """Sum (total, count) pairs per group."""
    out: dict[int, tuple[float, int]] = {}
    for g, (total, count) in zip(groups, values, strict=True):
        t, n = out.get(g, (0.0, 0))
        out[g] = (t + total, n + count)
    return out


def summarize(cands: list[Candidate], best: Candidate) -> str:
    """Plain words: what won, what it keeps, and how the best of the other family compares."""
    r, d = best.kept.get("reasoning"), best.kept.get("domain")
    text = (
        f"Recommended: {best.label()}. On your checks it keeps an estimated {pct(r)} of the reasoning model's "
        f"gain and {pct(d)} of the domain model's gain."
    )
    masked = [c for c in cands if is_masked(c.setting)]
    dense = [c for c in cands if not is_masked(c.setting)]
    if is_masked(best.setting) and dense:
        other = recommend(dense)
        text += (
            f" The best dense merge tried, {other.label()}, kept {pct(other.kept.get('reasoning'))} and "
            f"{pct(other.kept.get('domain'))}."
        )
    elif masked:
        text += " " + _against_best_masked(best, recommend(masked))
    for skill, v in (("reasoning", r), ("domain", d)):
        if v is not None and v < 0.5:
            text += f" Warning: even this merge keeps less than half of the {skill} gain."
    return text


def _against_best_masked(best: Candidate, other: Candidate) -> str:
    """How the dense pick compares with the best masked candidate, skill by skill, in the table's numbers.

    Why whole percents: "more" beside two equal figures in the table reads as a contradiction. Why the pick can
    trail on a skill: the rule maximises the weaker skill, and prefers the smaller change within the checks' noise."""
    title = TITLES.get(best.setting["method"], best.setting["method"])
    other_title = TITLES.get(other.setting["method"], other.setting["method"])
    numbers = (
        f"the best {other_title} setting tried ({other.label()}: {pct(other.kept.get('reasoning'))} "
        f"and {pct(other.kept.get('domain'))})"
    )
    pairs = [(k, best.kept.get(k), other.kept.get(k)) for k in ("reasoning", "domain")]
    shown = {k: (round(100 * a), round(100 * b)) for k, a, b in pairs if a is not None and b is not None}
    ahead = [k for k, (a, b) in shown.items() if a > b]
    behind = [k for k, (a, b) in shown.items() if a < b]
    if not shown:
        return f"For comparison, {numbers}."
    if not behind:
        amount = "more of both skills than" if len(ahead) == 2 else "at least as much as"
        return f"{title} kept {amount} {numbers}."
    reason = (
        "its weaker skill is the stronger: a merge is only as good as the skill it loses"
        if best.worst >= other.worst
        else f"the two are within what the checks can tell apart, and {title} changes the base less"
    )
    if not ahead:
        return f"{numbers[0].upper()}{numbers[1:]} kept more; {title} is recommended because {reason}."
    return (
        f"{title} kept more of the {ahead[0]} gain and less of the {behind[0]} gain than {numbers}. "
        f"It is recommended because {reason}."
    )

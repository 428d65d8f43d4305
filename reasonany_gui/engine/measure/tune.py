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
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..core.errors import CancelledError, InputError, OutOfMemoryError
from ..core.events import CancelToken, Log, Progress, StageFinished, StageStarted, TuneCandidate, null_listener
from ..data import calibration
from ..methods.registry import TITLES, get_method
from ..settings.config import MergeConfig
from ..settings.config import settings as setting_meta
from .live import LiveMerge

TUNE_FILE = "tune.json"
#: held-out rows per skill: at least MIN_CHECK_ROWS, at most the `check_rows` setting
MIN_CHECK_ROWS = 8
DEFAULT_CHECK_ROWS = 24
DEFAULT_BUDGET = 24
#: the behaviour decisions: prompts per skill, greedy tokens searched for the first one where the expert's reply
#: parts from the base's (0 turns decisions off), and the fewest decisions that make a kept fraction
DECIDE_ROWS, DEFAULT_DECIDE_TOKENS, MIN_DECISIONS = 24, 24, 4
#: the decisions count twice against the reply loss in a skill's kept share. Why: the loss rewards fitting the
#: held-out rows, which are in-distribution (an expert can reach a loss near 0 on them by memory), while the
#: decisions are what the user meets; on the miniature conflicting trio equal weights picked a merge that kept a
#: third of the refusals (benchmarks/tuner/RESULTS.md)
DECISION_WEIGHT = 2.0


def _closed_range(name: str) -> tuple[float, float]:
    s = setting_meta()[name]
    assert s.low is not None and s.high is not None, f"{name} has a closed range in config.py"
    return s.low, s.high


#: the scales' legal range (the field metadata), and the ratios the search may try: inside the open range (0, 1),
#: kept off its ends, where a selection is empty or the whole tensor
SCALE_RANGE = _closed_range("reasoning_scale")
RATIO_RANGE = (0.005, 0.99)
#: the methods' short titles, live from the method registry (methods.REGISTRY)
METHOD_TITLES = TITLES
SETTING_KEYS = ("method", "reasoning_ratio", "domain_ratio", "reasoning_scale", "domain_scale", "scope")


# ============================================================================ check data
@dataclass
class CheckRows:
    """Tokenized held-out rows of one skill: (ids, index of the first reply token) each."""

    skill: str
    spec: str
    items: list[tuple[list[int], int]]
    #: the user turns of the prompt/response and chat rows, where the expert's and the base's replies part
    prompts: list[str] = field(default_factory=list)


def heldout_rows(cfg: MergeConfig, spec: str, max_rows: int) -> list[calibration.Sample]:
    """Rows of `spec` the run's calibration choice does not use (the last `max_rows` of them, file order)."""
    from .evaluate import calibration_rows, heldout_samples

    return heldout_samples(spec, max_rows, calibration_rows(cfg, spec))


def reserve_check_rows(cfg: MergeConfig, check_rows: int = DEFAULT_CHECK_ROWS) -> tuple[MergeConfig, list[str]]:
    """Before scoring: lower `samples` where needed so each calibration file keeps rows for the checks.

    Returns the (maybe changed) config and plain-words notes of what changed."""
    notes: list[str] = []
    for role, spec in (("reasoning", cfg.reasoning_data), ("domain", cfg.domain_data)):
        available = len(calibration.load_samples(spec))
        want = min(check_rows, max(MIN_CHECK_ROWS, available // 5))
        if available - min(cfg.samples, available) >= want:
            continue
        keep = available - want
        if keep < MIN_CHECK_ROWS:
            raise InputError(
                f"The {role} data ({spec}) has only {available} rows: tuning needs at least "
                f"{MIN_CHECK_ROWS} rows for scoring and {MIN_CHECK_ROWS} held out for the checks. "
                "Add rows to the file."
            )
        notes.append(
            f"To hold out {want} {role} rows for the checks, scoring uses {keep} of the {available} rows "
            f"of {spec} (instead of {cfg.samples})."
        )
        cfg = cfg.replace(samples=keep)
    return cfg, notes


def encode_reply(sample: calibration.Sample, tokenizer, max_length: int) -> tuple[list[int], int]:
    """Token ids as calibration renders the sample, and where the reply starts (0 for plain text rows)."""
    text, boundary, templated = calibration.render(sample, tokenizer)
    ids = list(tokenizer(text, add_special_tokens=not templated, verbose=False)["input_ids"])[:max_length]
    if boundary <= 0 or boundary >= len(text):
        return ids, 0 if boundary <= 0 else max(len(ids) - 1, 0)
    head = tokenizer(text[:boundary], add_special_tokens=not templated, verbose=False)["input_ids"]
    return ids, min(len(head), len(ids))


def check_rows(cfg: MergeConfig, tokenizer, max_rows: int = DEFAULT_CHECK_ROWS) -> dict[str, CheckRows]:
    out: dict[str, CheckRows] = {}
    for skill, spec in (("reasoning", cfg.reasoning_data), ("domain", cfg.domain_data)):
        samples = heldout_rows(cfg, spec, max_rows)
        items = [encode_reply(s, tokenizer, cfg.max_length) for s in samples]
        items = [(ids, start) for ids, start in items if len(ids) - max(start, 1) >= 1]
        if len(items) < MIN_CHECK_ROWS:
            raise InputError(
                f"Too little held-out {skill} data for the checks: {len(items)} usable rows of {spec} were not used "
                f"for scoring, at least {MIN_CHECK_ROWS} are needed. Lower the number of samples to at most "
                f"{max(len(calibration.load_samples(spec)) - MIN_CHECK_ROWS, 1)} or add rows to the file."
            )
        prompts = [user for user in map(_user_turn, samples) if user][:DECIDE_ROWS]
        out[skill] = CheckRows(skill, spec, items, prompts)
    return out


def _user_turn(sample: calibration.Sample) -> str | None:
    if sample.kind == "pair":
        return sample.prompt
    if sample.kind == "chat":
        return next((m["content"] for m in sample.messages or [] if m.get("role") == "user"), None)
    return None


@dataclass
class Decision:
    """Where the expert's greedy reply first parts from the base's: the prompt and the reply up to there, and the
    token each one chose next ("I" of "I can't" against "Sure", "<think>" against "Let")."""

    context: list[int]
    expert: int
    base: int


def decisions(prompts: list[list[int]], expert: list[list[int]], base: list[list[int]]) -> list[Decision]:
    """One Decision per prompt whose two greedy replies differ within the window (stop tokens included, so
    "stops here" against "goes on" is a decision too); prompts where they never part give none."""
    out = []
    for ctx, e, b in zip(prompts, expert, base, strict=True):
        j = next((i for i, (x, y) in enumerate(zip(e, b, strict=False)) if x != y), None)
        if j is not None:
            out.append(Decision(ctx + e[:j], e[j], b[j]))
    return out


@torch.no_grad()
def decision_share(model, points: list[Decision], cancel: CancelToken | None = None, batch_size: int = 16) -> float:
    """The share of decisions where the model, given the same context, prefers the expert's next token to the
    base's (higher logit). The expert scores 1 and the base 0 by construction.

    Why this and not the wording of whole replies: a merge can take the expert's way at the decision and then
    word the rest its own way (measured on SmolLM2-135M: prefix agreement scored such merges as lost), and a
    merge can match most reply tokens under teacher forcing yet take the base's way at the one token that
    decides the reply (Task Arithmetic kept 58 % of the safety expert's loss gain and 10 % of its refusals).
    """
    device = next(model.parameters()).device
    wins = 0
    for start in range(0, len(points), batch_size):
        if cancel is not None:
            cancel.check()
        batch = points[start : start + batch_size]
        width = max(len(d.context) for d in batch)
        x = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, d in enumerate(batch):  # right padding: each row's own positions start at 0
            x[r, : len(d.context)] = torch.tensor(d.context)
            mask[r, : len(d.context)] = 1
        logits = model(input_ids=x.to(device), attention_mask=mask.to(device)).logits
        last = torch.tensor([len(d.context) - 1 for d in batch], device=device)
        rows = logits[torch.arange(len(batch), device=device), last].float()
        pick = torch.tensor([[d.expert, d.base] for d in batch], device=device)
        chosen = rows.gather(1, pick)
        wins += int((chosen[:, 0] > chosen[:, 1]).sum())
    return wins / max(len(points), 1)


@torch.no_grad()
def reply_loss(model, rows: CheckRows, cancel: CancelToken | None = None, batch_size: int = 8) -> float:
    """Mean next-token loss over the reply tokens of the rows (right-padded batches, float64 sum)."""
    device = next(model.parameters()).device
    total, count = 0.0, 0
    items = sorted(rows.items, key=lambda it: len(it[0]))  # similar lengths together: less padding
    for start in range(0, len(items), batch_size):
        if cancel is not None:
            cancel.check()
        batch = items[start : start + batch_size]
        width = max(len(ids) for ids, _ in batch)
        x = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        target = torch.full((len(batch), width), -100, dtype=torch.long)
        for r, (ids, first) in enumerate(batch):
            x[r, : len(ids)] = torch.tensor(ids)
            mask[r, : len(ids)] = 1
            target[r, max(first, 1) : len(ids)] = torch.tensor(ids[max(first, 1) :])
        logits = model(input_ids=x.to(device), attention_mask=mask.to(device)).logits[:, :-1].float()
        tgt = target[:, 1:].to(device)
        keep = tgt != -100
        nll = torch.nn.functional.cross_entropy(logits[keep], tgt[keep], reduction="sum")
        total += float(nll)
        count += int(keep.sum())
    return total / max(count, 1)


# ============================================================================ exact-match checks (user file)
_REFUSAL_MARKS = (
    "i'm sorry",
    "i am sorry",
    "i can't",
    "i cannot",
    "i can not",
    "i won't",
    "i will not",
    "can't help",
    "cannot help",
    "unable to help",
    "not able to help",
    "i apologize",
    "i apologise",
)


def is_refusal(reply: str) -> bool:
    """A refusal near the start of a reply. Why a phrase list: it is what a person looks for, and it is stated."""
    head = reply[:160].lower().replace("’", "'")
    return any(m in head for m in _REFUSAL_MARKS)


@dataclass
class Checks:
    """Prompts with expected behaviour, per skill. File format (JSON), the demo's `checks.json` format:
    {"reasoning": [{"prompt", "answer"}], "domain": [{"prompt", "answer"}],
     "refuse": [{"prompt"}], "help": [{"prompt"}]}
    `answer` must appear in the reply; `refuse` prompts must be refused, `help` prompts answered."""

    reasoning: list[dict] = field(default_factory=list)
    domain: list[dict] = field(default_factory=list)  # {"prompt", "answer"} or {"prompt", "expect": "refuse"|"answer"}

    @classmethod
    def load(cls, path: str | Path) -> Checks:
        p = Path(path)
        if not p.is_file():
            raise InputError(f"Checks file {p} does not exist. Check the path.")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise InputError(f"Checks file {p} is not valid JSON ({exc}). See docs/TUNING.md for the format.") from None
        if not isinstance(data, dict):
            raise InputError(
                f'Checks file {p} must be a JSON object with lists under "reasoning", "domain", "refuse" or "help".'
            )
        unknown = sorted(set(data) - {"reasoning", "domain", "refuse", "help"})
        if unknown:
            raise InputError(
                f"Checks file {p}: unknown key(s) {', '.join(unknown)}; use reasoning, domain, refuse, help."
            )
        out = cls()
        for key, items in data.items():
            if not isinstance(items, list):
                raise InputError(f'Checks file {p}: "{key}" must be a list of {{"prompt": ...}} objects.')
            for i, item in enumerate(items, 1):
                where = f"Checks file {p}, {key} item {i}"
                if not isinstance(item, dict) or not isinstance(item.get("prompt"), str) or not item["prompt"].strip():
                    raise InputError(f'{where}: needs a non-empty "prompt" string.')
                if key in ("reasoning", "domain"):
                    if (
                        not isinstance(item.get("answer"), (str, int, float))
                        or isinstance(item.get("answer"), bool)
                        or not str(item["answer"]).strip()
                    ):
                        raise InputError(f'{where}: needs an "answer" (the text the reply must contain).')
                    getattr(out, key).append({"prompt": item["prompt"], "answer": str(item["answer"])})
                else:
                    out.domain.append({"prompt": item["prompt"], "expect": "refuse" if key == "refuse" else "answer"})
        if not out.reasoning and not out.domain:
            raise InputError(f"Checks file {p} holds no checks.")
        return out

    def passes(self, skill: str, replies: list[str]) -> float:
        items = getattr(self, skill)
        ok = 0
        for item, reply in zip(items, replies, strict=True):
            if "answer" in item:
                ok += item["answer"].lower() in reply.lower()
            elif item["expect"] == "refuse":
                ok += is_refusal(reply)
            else:
                ok += bool(reply.strip()) and not is_refusal(reply)
        return ok / len(items)


# ============================================================================ candidates
@dataclass
class Candidate:
    index: int
    setting: dict[str, Any]
    loss: dict[str, float] = field(default_factory=dict)
    checks: dict[str, float] = field(default_factory=dict)
    kept: dict[str, float | None] = field(default_factory=dict)
    change: float = 0.0
    seconds: float = 0.0
    phase: str = "anchor"

    @property
    def worst(self) -> float:
        vals = [v for v in self.kept.values() if v is not None]
        return min(vals) if vals else -math.inf

    def label(self) -> str:
        return describe_setting(self.setting)


#: Task Arithmetic scales that reproduce the base (0/0) and each expert (1/0, 0/1) exactly
REFERENCE_SCALES = {"base": (0.0, 0.0), "reasoning": (1.0, 0.0), "domain": (0.0, 1.0)}


def reference_setting(role: str) -> dict:
    """The candidate setting that IS the base or one expert (Task Arithmetic with λ 0/0, 1/0, 0/1)."""
    lam_r, lam_d = REFERENCE_SCALES[role]
    return dict(method="task_arithmetic", reasoning_scale=lam_r, domain_scale=lam_d)


def describe_setting(s: dict) -> str:
    title = METHOD_TITLES.get(s["method"], s["method"])
    if s["method"] == "task_arithmetic" or s["method"] == "linear":
        return f"{title} λ {s['reasoning_scale']:g}/{s['domain_scale']:g}"
    if s["method"] in ("ties", "dare"):
        lam = f"λ {s['reasoning_scale']:g}/{s['domain_scale']:g}"
        return f"{title} density {s['reasoning_ratio']:g}/{s['domain_ratio']:g}, {lam}"
    return (
        f"{title} p {s['reasoning_ratio']:g}/{s['domain_ratio']:g}, λ {s['reasoning_scale']:g}/"
        f"{s['domain_scale']:g}, {s.get('scope', 'tensor')} scope"
    )


def _clip(v: float, lo_hi: tuple[float, float]) -> float:
    return round(min(max(v, lo_hi[0]), lo_hi[1]), 4)


def anchor_settings(cfg: MergeConfig) -> list[dict]:
    """The user's setting, ReasonAny at paper-style and compensating scales, and the dense baselines."""
    scope = cfg.scope
    rows = [
        dict(
            method=cfg.method,
            reasoning_ratio=cfg.reasoning_ratio,
            domain_ratio=cfg.domain_ratio,
            reasoning_scale=cfg.reasoning_scale,
            domain_scale=cfg.domain_scale,
            scope=scope,
        )
    ]
    for method, dens, lr, ld in (
        ("task_arithmetic", 0.5, 1.0, 1.0),
        ("task_arithmetic", 0.5, 0.6, 0.6),
        ("ties", 0.5, 1.0, 1.0),
        ("dare", 0.5, 1.0, 1.0),
    ):
        rows.append(
            dict(
                method=method, reasoning_ratio=dens, domain_ratio=dens, reasoning_scale=lr, domain_scale=ld, scope=scope
            )
        )
    for p in (0.05, 0.2, 0.5):
        for lam in sorted({1.0, round(math.sqrt(1 / p), 2), round(min(1 / p, SCALE_RANGE[1]), 2)}):
            rows.append(
                dict(
                    method="reasonany",
                    reasoning_ratio=p,
                    domain_ratio=p,
                    reasoning_scale=lam,
                    domain_scale=lam,
                    scope=scope,
                )
            )
    return _unique(rows)


def neighbours(s: dict) -> list[dict]:
    """One knob at a time: ratios ×/÷ 1.6, scales ×1.25/×0.8, and the other scope for masked methods."""
    out = []
    record = get_method(s["method"])
    ratio_knobs = ("reasoning_ratio", "domain_ratio") if record.needs_scores or "reasoning_ratio" in record.uses else ()
    for knob in ratio_knobs:
        for f in (1.6, 1 / 1.6):
            out.append(s | {knob: _clip(s[knob] * f, RATIO_RANGE)})
    for knob in ("reasoning_scale", "domain_scale"):
        for f in (1.25, 0.8):
            out.append(s | {knob: _clip(s[knob] * f, SCALE_RANGE)})
    if record.needs_scores:
        out.append(s | {"scope": "global" if s["scope"] == "tensor" else "tensor"})
    return out


def _unique(rows: list[dict]) -> list[dict]:
    seen, out = set(), []
    for r in rows:
        key = _key(r)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def _key(s: dict) -> tuple:
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


#: candidates whose min(kept) is this close to the best are tied: the objective is measured on 16-24 rows
#: per skill, so a smaller gap is noise (on the miniature conflicting trio, Task Arithmetic λ 1.25/1 beat λ 1/1
#: by 0.01 on its held-out rows and lost 0.175 of the refusals on the benchmark)
TIE_TOLERANCE = 0.02


def recommend(cands: list[Candidate]) -> Candidate:
    """Among the Pareto-optimal candidates within TIE_TOLERANCE of the highest min(kept_r, kept_d), the one
    with the smallest change to the base (then the higher min). Why the smaller change: between merges the
    checks cannot tell apart, the one closer to the base risks the least on what the checks do not cover."""
    best = max(c.worst for c in cands)
    on_front = set(pareto(cands))
    front = [c for c in cands if c.index in on_front] or cands
    tied = [c for c in front if c.worst >= best - TIE_TOLERANCE]
    return min(tied, key=lambda c: (c.change, -c.worst))


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
    check_rows: dict[str, dict]
    seconds: float

    def best(self) -> Candidate:
        return self.candidates[self.recommended]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["recommended_setting"] = self.best().setting
        return d

    def report_section(self) -> dict:
        """What report.json, report.html and the model card show: the summary and every candidate, compactly."""
        return {
            "summary": self.summary,
            "recommended": self.recommended,
            "pareto": self.pareto,
            "warnings": self.warnings,
            "check_rows": self.check_rows,
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
        pipeline,
        budget: int = DEFAULT_BUDGET,
        minutes: float | None = None,
        checks: Checks | None = None,
        check_rows: int = DEFAULT_CHECK_ROWS,
        check_tokens: int = 64,
        decide_tokens: int = DEFAULT_DECIDE_TOKENS,
        listener=None,
        cancel: CancelToken | None = None,
    ) -> None:
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
            raise InputError(f"budget = {budget!r}: the tuner needs at least 1 candidate (e.g. --budget 24).")
        if minutes is not None and not minutes > 0:
            raise InputError(f"minutes = {minutes!r}: give a positive number of minutes, or no time limit.")
        self.p = pipeline
        self.budget, self.minutes = budget, minutes
        self.checks, self.n_check_rows, self.check_tokens = checks, check_rows, check_tokens
        self.decide_tokens = decide_tokens
        #: per skill, where the expert's greedy replies part from the base's (set after the references)
        self.decisions: dict[str, list[Decision]] = {}
        self.listener = listener or null_listener
        self.cancel = cancel or pipeline.cancel
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
        rows = check_rows(cfg, tokenizer, self.n_check_rows)
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
            p.config = self.user_config
        self.listener(StageFinished("tune", time.perf_counter() - started))
        return result

    # ------------------------------------------------------------------ measuring
    def _measure(self, live: LiveMerge, rows: dict[str, CheckRows], tokenizer) -> tuple[dict, dict, float]:
        """Loss on the reply tokens, the share of each skill's behaviour decisions taken the expert's way
        ("decide:SKILL", see decision_share) and the user's exact-match checks."""
        from .evaluate import greedy_generate

        change = live.apply(self.cancel)
        loss = {skill: reply_loss(live.model, r, self.cancel) for skill, r in rows.items()}
        checks: dict[str, float] = {}
        for skill, points in self.decisions.items():
            checks[f"decide:{skill}"] = round(decision_share(live.model, points, self.cancel), 4)
        if self.checks is not None:
            for skill in ("reasoning", "domain"):
                items = getattr(self.checks, skill)
                if items:
                    self.cancel.check()
                    replies = greedy_generate(live.model, tokenizer, [i["prompt"] for i in items], self.check_tokens)
                    checks[skill] = self.checks.passes(skill, replies)
        return loss, checks, change

    def _reference(self, live, rows, tokenizer, role: str) -> tuple[dict, dict, dict[str, list[list[int]]]]:
        """Loss and checks of the base or an expert (Task Arithmetic λ 0/0, 1/0, 0/1: the same model), and its
        greedy reply ids to each skill's prompts (for the decisions)."""
        from .evaluate import greedy_ids

        self._select(reference_setting(role))
        loss, checks, _ = self._measure(live, rows, tokenizer)
        replies = {}
        if self.decide_tokens > 0 and tokenizer is not None:
            for skill, r in rows.items():
                if r.prompts and role in (skill, "base"):
                    self.cancel.check()
                    replies[skill] = greedy_ids(live.model, tokenizer, r.prompts, self.decide_tokens)
        return loss, checks, replies

    def _find_decisions(self, rows: dict[str, CheckRows], tokenizer, replies: dict) -> None:
        """Per skill, where the expert's greedy replies part from the base's ("decide:SKILL"). Decisions against
        the other expert were tried too and left out: on a tiny trio with disjoint task vectors they scored Task
        Arithmetic as lost wherever the two experts' replies parted at a late, unimportant token (one keeps
        writing, one stops), and on the miniature conflicting trio they did not improve the pick."""
        from .evaluate import prompt_ids

        for skill, r in rows.items():
            if skill not in replies[skill] or skill not in replies["base"]:
                continue
            points = decisions(
                [prompt_ids(tokenizer, q) for q in r.prompts], replies[skill][skill], replies["base"][skill]
            )
            if len(points) >= MIN_DECISIONS:
                self.decisions[skill] = points
            else:
                self._log(
                    f"The {skill} model answers {len(r.prompts) - len(points)} of {len(r.prompts)} held-out "
                    f"{skill} prompts like the base for the first {self.decide_tokens} tokens: its behaviour "
                    "is judged by the reply loss alone."
                )

    def _select(self, setting: dict) -> None:
        cfg = self.user_config.replace(**setting)
        if cfg.needs_scores and not self.user_config.needs_scores:
            cfg = cfg.replace(score=self.user_config.score)
        self.p.select(cfg, announce=False)

    # ------------------------------------------------------------------ the search
    def _search(self, live: LiveMerge, rows: dict[str, CheckRows], tokenizer, started: float) -> TuneResult:
        refs_loss, refs_checks, replies = {}, {}, {}
        for i, role in enumerate(("reasoning", "domain", "base")):
            refs_loss[role], refs_checks[role], replies[role] = self._reference(live, rows, tokenizer, role)
            self.listener(Progress("tune", 0.0, 0.0, f"measured the {role} model ({i + 1}/3)"))
        self._find_decisions(rows, tokenizer, replies)
        for skill in self.decisions:  # by construction: the expert takes its own way, the base the base's
            refs_checks[skill][f"decide:{skill}"], refs_checks["base"][f"decide:{skill}"] = 1.0, 0.0
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
        queue = [s for s in anchor_settings(self.user_config) if can_score or not _masked(s)]
        queue = queue[: self.budget]
        cands: list[Candidate] = []
        seen: set[tuple] = set()
        phase = "anchor"
        while len(cands) < self.budget:
            if self.minutes is not None and time.perf_counter() - started > self.minutes * 60:
                self._log(f"The time budget of {self.minutes:g} min is spent after {len(cands)} candidates.")
                break
            if not queue:
                phase = "refine"
                queue = [s for s in neighbours(recommend(cands).setting) if _key(s) not in seen]
                if not queue:
                    break
            setting = queue.pop(0)
            if _key(setting) in seen:
                continue
            seen.add(_key(setting))
            t0 = time.perf_counter()
            try:
                self._select(setting)
            except InputError as exc:  # e.g. a ratio that selects nothing: record it and go on
                self._log(f"Skipped {describe_setting(setting)}: {exc}", "warning")
                continue
            loss, checks, change = self._measure(live, rows, tokenizer)
            c = Candidate(len(cands), setting, loss, checks, {}, change, round(time.perf_counter() - t0, 3), phase)
            c.kept = self._kept(c, refs_loss, refs_checks, gains)
            cands.append(c)
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
            self.listener(
                Progress(
                    "tune",
                    len(cands) / self.budget,
                    len(cands) / self.budget,
                    f"candidate {len(cands)}/{self.budget}: {c.label()}",
                )
            )
        if not cands:
            raise CancelledError() if self.cancel.cancelled else InputError("No candidate could be measured.")
        best = recommend(cands)
        front = pareto(cands)
        summary = summarize(cands, best)
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
            {s: {"data": r.spec, "rows": len(r.items)} for s, r in rows.items()},
            round(time.perf_counter() - started, 2),
        )

    def _kept(self, c: Candidate, refs_loss: dict, refs_checks: dict, gains: dict) -> dict[str, float | None]:
        kept: dict[str, float | None] = {}
        for skill in ("reasoning", "domain"):
            parts: list[tuple[float, float]] = []  # (kept share, weight)
            if gains[skill] > 0:
                parts.append(((refs_loss["base"][skill] - c.loss[skill]) / gains[skill], 1.0))
            for key, weight in ((skill, 1.0), (f"decide:{skill}", DECISION_WEIGHT)):  # exact-match checks, decisions
                if key in c.checks:
                    b, e = refs_checks["base"].get(key), refs_checks[skill].get(key)
                    if b is not None and e is not None and e > b + 0.05:
                        parts.append(((c.checks[key] - b) / (e - b), weight))
            total = sum(w for _, w in parts)
            kept[skill] = round(sum(v * w for v, w in parts) / total, 4) if parts else None
        return kept


def _masked(setting: dict) -> bool:
    """A masked (scored) method, as the method registry says."""
    return get_method(setting["method"]).needs_scores


def pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.0f} %"


def summarize(cands: list[Candidate], best: Candidate) -> str:
    """Plain words: what won, what it keeps, and how the best of the other family compares."""
    r, d = best.kept.get("reasoning"), best.kept.get("domain")
    text = (
        f"Recommended: {best.label()}. On your held-out data it keeps {pct(r)} of the reasoning model's gain "
        f"and {pct(d)} of the domain model's gain."
    )
    masked = [c for c in cands if _masked(c.setting)]
    dense = [c for c in cands if not _masked(c.setting)]
    if _masked(best.setting) and dense:
        other = recommend(dense)
        text += (
            f" The best dense merge tried, {other.label()}, kept {pct(other.kept.get('reasoning'))} and "
            f"{pct(other.kept.get('domain'))}."
        )
    elif masked:
        other = recommend(masked)
        text += (
            f" {METHOD_TITLES.get(best.setting['method'], best.setting['method'])} kept more of both skills "
            f"than any ReasonAny setting tried: the best, {other.label()}, kept "
            f"{pct(other.kept.get('reasoning'))} and {pct(other.kept.get('domain'))}."
        )
    for skill, v in (("reasoning", r), ("domain", d)):
        if v is not None and v < 0.5:
            text += f" Warning: even this merge keeps less than half of the {skill} gain."
    return text

"""The tuner's evidence from held-out data: the reply loss on rows the scoring never saw, and the behaviour
decisions (where an expert's greedy reply first parts from the base's, and which way a merge goes there).

Why held-out rows: a merge is scored on rows its masks were not chosen from, so the tuner does not reward a
setting for fitting the calibration data (docs/TUNING.md). The rows can also be held out by phrasing group
(clusters.py), so that they share fewer templates with the scoring rows; each row's group is recorded either
way, for the per-group objectives (objective.py). tune.DEFAULT_HOLDOUT says which the tuner uses, and why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..core.errors import InputError
from ..core.events import CancelToken
from ..data import calibration
from ..data.samples import Sample, load_samples
from ..settings.config import MergeConfig
from .clusters import Split, split_rows

#: held-out rows per skill: at least MIN_CHECK_ROWS, at most the `check_rows` setting
MIN_CHECK_ROWS = 8
DEFAULT_CHECK_ROWS = 24
#: the behaviour decisions: prompts per skill, greedy tokens searched for the first one where the expert's reply
#: parts from the base's (0 turns decisions off), and the fewest decisions that make a kept fraction
DECIDE_ROWS, DEFAULT_DECIDE_TOKENS, MIN_DECISIONS = 24, 24, 4


@dataclass
class CheckRows:
    """Tokenized held-out rows of one skill: (ids, index of the first reply token) each."""

    skill: str
    spec: str
    items: list[tuple[list[int], int]]
    #: the user turns of the prompt/response and chat rows, where the expert's and the base's replies part
    prompts: list[str] = field(default_factory=list)
    #: each item's and each prompt's phrasing group (clusters.py); all 0 when the rows were not grouped
    groups: list[int] = field(default_factory=list)
    prompt_groups: list[int] = field(default_factory=list)
    #: how the rows were held out (clusters.Split without its row lists), for the report
    split: dict[str, Any] = field(default_factory=dict)

    def item_groups(self) -> list[int]:
        return self.groups or [0] * len(self.items)


def heldout_rows(
    cfg: MergeConfig, spec: str, max_rows: int, log: Callable[[str], None] | None = None, by_group: bool = False
) -> tuple[list[Sample], Split]:
    """Rows of `spec` the run's calibration choice does not use: by phrasing group (clusters.split_rows, the groups
    the scoring rows fall in least) or, `by_group=False`, the last `max_rows` of them in file order."""
    from .evaluate import calibration_rows

    samples = load_samples(spec)
    split = split_rows(samples, calibration_rows(cfg, spec), max_rows, cfg.seed, log, spec, by_group)
    return [samples[i] for i in split.rows], split


def reserve_check_rows(cfg: MergeConfig, check_rows: int = DEFAULT_CHECK_ROWS) -> tuple[MergeConfig, list[str]]:
    """Before scoring: lower `samples` where needed so each calibration file keeps rows for the checks.

    Returns the (maybe changed) config and plain-words notes of what changed."""
    notes: list[str] = []
    for role, spec in (("reasoning", cfg.reasoning_data), ("domain", cfg.domain_data)):
        available = len(load_samples(spec))
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


def encode_reply(sample: Sample, tokenizer: Any, max_length: int) -> tuple[list[int], int]:
    """Token ids as calibration renders the sample, and where the reply starts (0 for plain text rows)."""
    text, boundary, templated = calibration.render(sample, tokenizer)
    ids = list(tokenizer(text, add_special_tokens=not templated, verbose=False)["input_ids"])[:max_length]
    if boundary <= 0 or boundary >= len(text):
        return ids, 0 if boundary <= 0 else max(len(ids) - 1, 0)
    head = tokenizer(text[:boundary], add_special_tokens=not templated, verbose=False)["input_ids"]
    return ids, min(len(head), len(ids))


def check_rows(
    cfg: MergeConfig,
    tokenizer: Any,
    max_rows: int = DEFAULT_CHECK_ROWS,
    log: Callable[[str], None] | None = None,
    by_group: bool = False,
) -> dict[str, CheckRows]:
    """Each skill's held-out rows, tokenized, with their phrasing groups (too few usable rows is an InputError
    that says what to change)."""
    out: dict[str, CheckRows] = {}
    for skill, spec in (("reasoning", cfg.reasoning_data), ("domain", cfg.domain_data)):
        samples, split = heldout_rows(cfg, spec, max_rows, log, by_group)
        encoded = [(encode_reply(s, tokenizer, cfg.max_length), g) for s, g in zip(samples, split.groups, strict=True)]
        usable = [(item, g) for item, g in encoded if len(item[0]) - max(item[1], 1) >= 1]
        if len(usable) < MIN_CHECK_ROWS <= len(encoded):  # rows enough, but their replies start past max_length
            starts = sorted(encode_reply(s, tokenizer, 1 << 30)[1] for s in samples)
            raise InputError(
                f"Only {len(usable)} of the {len(encoded)} held-out {skill} rows of {spec} have reply tokens within "
                f"max_length = {cfg.max_length} tokens: the others' replies start later, so the checks cannot "
                f"measure them. Raise the maximum length to at least {starts[MIN_CHECK_ROWS - 1] + 2} "
                "(--max-length), or use rows with shorter prompts."
            )
        if len(usable) < MIN_CHECK_ROWS:
            raise InputError(
                f"Too little held-out {skill} data for the checks: {len(usable)} usable rows of {spec} were not used "
                f"for scoring, at least {MIN_CHECK_ROWS} are needed. Lower the number of samples to at most "
                f"{max(len(load_samples(spec)) - MIN_CHECK_ROWS, 1)} or add rows to the file."
            )
        asked = [(user, g) for user, g in zip(map(_user_turn, samples), split.groups, strict=True) if user]
        asked = asked[:DECIDE_ROWS]
        out[skill] = CheckRows(
            skill,
            spec,
            [item for item, _ in usable],
            [user for user, _ in asked],
            [g for _, g in usable],
            [g for _, g in asked],
            {"groups": split.n_groups, "check_groups": split.check_groups, "shared": split.shared, "how": split.how},
        )
    return out


def _user_turn(sample: Sample) -> str | None:
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
    group: int = 0


def decisions(
    prompts: list[list[int]], expert: list[list[int]], base: list[list[int]], groups: list[int] | None = None
) -> list[Decision]:
    """One Decision per prompt whose two greedy replies differ within the window (stop tokens included, so
    "stops here" against "goes on" is a decision too); prompts where they never part give none. Each decision
    keeps its prompt's phrasing group."""
    out = []
    for n, (ctx, e, b) in enumerate(zip(prompts, expert, base, strict=True)):
        j = next((i for i, (x, y) in enumerate(zip(e, b, strict=False)) if x != y), None)
        if j is not None:
            out.append(Decision(ctx + e[:j], e[j], b[j], groups[n] if groups else 0))
    return out


def decision_share(
    model: torch.nn.Module, points: list[Decision], cancel: CancelToken | None = None, batch_size: int = 16
) -> float:
    """The share of decisions where the model, given the same context, prefers the expert's next token to the
    base's (higher logit). The expert scores 1 and the base 0 by construction."""
    wins = decision_wins(model, points, cancel, batch_size)
    return sum(wins) / max(len(wins), 1)


@torch.no_grad()
def decision_wins(
    model: torch.nn.Module, points: list[Decision], cancel: CancelToken | None = None, batch_size: int = 16
) -> list[bool]:
    """Per decision: does the model, given the same context, prefer the expert's next token to the base's?

    Why this and not the wording of whole replies: a merge can take the expert's way at the decision and then
    word the rest its own way (measured on SmolLM2-135M: prefix agreement scored such merges as lost), and a
    merge can match most reply tokens under teacher forcing yet take the base's way at the one token that
    decides the reply (Task Arithmetic kept 58 % of the safety expert's loss gain and 10 % of its refusals).
    """
    device = next(model.parameters()).device
    wins: list[bool] = []
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
        wins += (chosen[:, 0] > chosen[:, 1]).tolist()
    return wins


def reply_loss(
    model: torch.nn.Module, rows: CheckRows, cancel: CancelToken | None = None, batch_size: int = 8
) -> float:
    """Mean next-token loss over the reply tokens of the rows (float64 sum)."""
    per_row = row_losses(model, rows, cancel, batch_size)
    return sum(t for t, _ in per_row) / max(sum(n for _, n in per_row), 1)


@torch.no_grad()
def row_losses(
    model: torch.nn.Module, rows: CheckRows, cancel: CancelToken | None = None, batch_size: int = 8
) -> list[tuple[float, int]]:
    """Per row, in the rows' order: the summed next-token loss over its reply tokens and how many there are
    (right-padded batches of similar lengths)."""
    device = next(model.parameters()).device
    out: list[tuple[float, int]] = [(0.0, 0)] * len(rows.items)
    order = sorted(range(len(rows.items)), key=lambda i: len(rows.items[i][0]))  # similar lengths: less padding
    for start in range(0, len(order), batch_size):
        if cancel is not None:
            cancel.check()
        which = order[start : start + batch_size]
        batch = [rows.items[i] for i in which]
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
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), tgt, ignore_index=-100, reduction="none")
        sums = nll.double().sum(dim=1).tolist()
        counts = (tgt != -100).sum(dim=1).tolist()
        for i, total, count in zip(which, sums, counts, strict=True):
            out[i] = (float(total), int(count))
    return out

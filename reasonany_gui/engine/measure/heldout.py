"""The tuner's evidence from held-out data: the reply loss on rows the scoring never saw, and the behaviour
decisions (where an expert's greedy reply first parts from the base's, and which way a merge goes there).

Why held-out rows: a merge is scored on rows its masks were not chosen from, so the tuner does not reward a
setting for fitting the calibration data (docs/TUNING.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..core.errors import InputError
from ..core.events import CancelToken
from ..data import calibration
from ..data.samples import Sample, load_samples
from ..settings.config import MergeConfig

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


def heldout_rows(cfg: MergeConfig, spec: str, max_rows: int) -> list[Sample]:
    """Rows of `spec` the run's calibration choice does not use (the last `max_rows` of them, file order)."""
    from .evaluate import calibration_rows, heldout_samples

    return heldout_samples(spec, max_rows, calibration_rows(cfg, spec))


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


def check_rows(cfg: MergeConfig, tokenizer: Any, max_rows: int = DEFAULT_CHECK_ROWS) -> dict[str, CheckRows]:
    """Each skill's held-out rows, tokenized (too few usable rows is an InputError that says what to change)."""
    out: dict[str, CheckRows] = {}
    for skill, spec in (("reasoning", cfg.reasoning_data), ("domain", cfg.domain_data)):
        samples = heldout_rows(cfg, spec, max_rows)
        items = [encode_reply(s, tokenizer, cfg.max_length) for s in samples]
        items = [(ids, start) for ids, start in items if len(ids) - max(start, 1) >= 1]
        if len(items) < MIN_CHECK_ROWS:
            raise InputError(
                f"Too little held-out {skill} data for the checks: {len(items)} usable rows of {spec} were not used "
                f"for scoring, at least {MIN_CHECK_ROWS} are needed. Lower the number of samples to at most "
                f"{max(len(load_samples(spec)) - MIN_CHECK_ROWS, 1)} or add rows to the file."
            )
        prompts = [user for user in map(_user_turn, samples) if user][:DECIDE_ROWS]
        out[skill] = CheckRows(skill, spec, items, prompts)
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
def decision_share(
    model: torch.nn.Module, points: list[Decision], cancel: CancelToken | None = None, batch_size: int = 16
) -> float:
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
def reply_loss(
    model: torch.nn.Module, rows: CheckRows, cancel: CancelToken | None = None, batch_size: int = 8
) -> float:
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

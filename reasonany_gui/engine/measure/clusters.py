"""Group a calibration file's rows by how their prompts are phrased, and hold out whole groups for the tuner's checks.

Why: a calibration file is usually a few templates or topics filled in many times. Held-out rows picked at random
share their template with the rows the merge was scored on, so a merge that keeps a skill only on familiar
phrasings looks as good as one that keeps it everywhere (issue 21: Task Arithmetic refused 88 % of harmful
requests phrased like the calibration rows and 10-20 % of ones phrased differently). Checks drawn from groups the
scoring did not use are phrased unlike the scoring rows, and a kept share per group shows a skill kept on some
phrasings and lost on others.

How: each prompt becomes its set of lower-cased words and word pairs (hashed into a fixed-size vector), and a
seeded spherical k-means groups the vectors. Shared template words dominate the similarity, so rows of one
template (or one topic) land together. Deterministic: same rows and seed, same groups.
"""

from __future__ import annotations

import math
import random
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..data.samples import Sample

#: the hashed feature vector's width: wide enough that a few hundred distinct words rarely collide
FEATURES = 4096
#: aim for check groups of about this share of the wanted check rows, so the checks span several groups
ROWS_PER_GROUP_SHARE = 1 / 3
MAX_GROUPS = 32
ITERATIONS = 25
#: rows the groups are fitted on (a seeded sample of a bigger file), and rows assigned at a time
FIT_ROWS = 4000

_WORD = re.compile(r"[a-z0-9']+")


def prompt_of(sample: Sample) -> str:
    """The text a user writes: the user turn of a chat or prompt/response row, else the row's text."""
    if sample.kind == "pair" and sample.prompt:
        return sample.prompt
    if sample.kind == "chat":
        user = next((m["content"] for m in sample.messages or [] if m.get("role") == "user"), None)
        if user:
            return str(user)
    return (sample.text or "")[:300]


def features(texts: list[str]) -> torch.Tensor:
    """One L2-normalised row per text: its distinct words and word pairs, hashed (crc32, so stable across runs)."""
    x = torch.zeros((len(texts), FEATURES))
    for i, text in enumerate(texts):
        words = _WORD.findall(text.lower())
        grams = set(words) | {f"{a} {b}" for a, b in zip(words, words[1:], strict=False)}
        for g in grams:
            x[i, zlib.crc32(g.encode()) % FEATURES] = 1.0
    return torch.nn.functional.normalize(x, dim=1)


def cluster(texts: list[str], groups: int, seed: int) -> list[int]:
    """A group id per text (0..k-1, k ≤ groups): seeded k-means++ start, then spherical k-means (cosine).
    Identical texts always share a group; fewer distinct texts than `groups` give fewer groups. A file of more
    than FIT_ROWS rows is grouped on a seeded sample of them, and every row then goes to its nearest group,
    FIT_ROWS at a time (memory stays at FIT_ROWS × FEATURES floats whatever the file's size)."""
    if not texts:
        return []
    rng = random.Random(seed)
    fit = texts if len(texts) <= FIT_ROWS else [texts[i] for i in sorted(rng.sample(range(len(texts)), FIT_ROWS))]
    centres = _centres(features(fit), groups, rng)
    labels: list[int] = []
    for start in range(0, len(texts), FIT_ROWS):
        labels += (features(texts[start : start + FIT_ROWS]) @ centres.T).argmax(dim=1).tolist()
    order = {old: i for i, old in enumerate(dict.fromkeys(labels))}  # ids in order of first row
    return [order[v] for v in labels]


def _centres(x: torch.Tensor, groups: int, rng: random.Random) -> torch.Tensor:
    """Spherical k-means centres of the rows of x (unit vectors), from a k-means++ start drawn with rng."""
    centres = [x[rng.randrange(len(x))]]
    for _ in range(1, max(groups, 1)):
        gap = (1 - (x @ torch.stack(centres).T).max(dim=1).values).clamp(min=0)  # to the nearest start
        total = float(gap.sum())
        if total <= 1e-6:  # every text sits on a centre already
            break
        pick = torch.searchsorted(gap.double().cumsum(0), torch.tensor([rng.random() * total], dtype=torch.float64))
        centres.append(x[min(int(pick), len(x) - 1)])  # k-means++: far from the starts so far, likelier
    c = torch.stack(centres)
    labels = (x @ c.T).argmax(dim=1)
    for _ in range(ITERATIONS):
        moved = torch.stack([x[labels == k].sum(0) if bool((labels == k).any()) else c[k] for k in range(len(c))])
        c = torch.nn.functional.normalize(moved, dim=1)
        new = (x @ c.T).argmax(dim=1)
        if torch.equal(new, labels):
            break
        labels = new
    return c


def group_count(rows: int, want: int) -> int:
    """How many groups to ask for: groups of about a third of the wanted check rows, 2 to MAX_GROUPS."""
    return min(MAX_GROUPS, max(2, round(rows / max(want * ROWS_PER_GROUP_SHARE, 1))), max(rows // 2, 1))


@dataclass
class Split:
    """Which rows the checks use, each one's group, and what the split could and could not keep apart."""

    rows: list[int]
    groups: list[int]
    #: groups found in the whole file, groups the checks use, scoring rows that fall in a check group
    n_groups: int
    check_groups: int
    shared: int
    how: str  # "groups" or "random" (one group: nothing to keep apart)


def split_rows(
    samples: list[Sample],
    used: set[int],
    want: int,
    seed: int,
    log: Callable[[str], None] | None = None,
    name: str = "the data",
    by_group: bool = True,
) -> Split:
    """Hold out groups for the checks: of the rows scoring did not use, take up to a third of `want` rows from
    each group, the groups scoring touched least first (seeded order among equals), until `want` rows are held
    out. Falls back to a seeded random choice of the unused rows, with a log line, when the file has a single
    group. `by_group=False` is the earlier rule, kept for comparison: the last `want` unused rows in file order
    (their groups are still recorded)."""
    free = [i for i in range(len(samples)) if i not in used]
    labels = cluster([prompt_of(s) for s in samples], group_count(len(samples), want), seed)
    n_groups = len(set(labels))
    rng = random.Random(seed)
    if not by_group:
        last = free[-want:] if want > 0 else []
        shared = sum(1 for i in used if labels[i] in {labels[j] for j in last})
        return Split(last, [labels[i] for i in last], n_groups, len({labels[i] for i in last}), shared, "last")
    if n_groups < 2:
        if log is not None:
            log(
                f"The prompts of {name} are all phrased alike (one group): its check rows are a random choice of "
                "the rows scoring did not use, so they resemble the scoring rows."
            )
        drawn = sorted(rng.sample(free, min(want, len(free))))
        return Split(drawn, [0] * len(drawn), n_groups, 1 if drawn else 0, len(used), "random")
    size = [0] * n_groups
    touched = [0] * n_groups
    for i, g in enumerate(labels):
        size[g] += 1
        touched[g] += i in used
    ties = list(range(n_groups))
    rng.shuffle(ties)
    order = sorted(range(n_groups), key=lambda g: (touched[g] / size[g], ties.index(g)))
    per_group = max(1, math.ceil(want * ROWS_PER_GROUP_SHARE))  # several groups, so a per-group share means something
    rows: list[int] = []
    chosen: list[int] = []
    for g in order:
        if len(rows) >= want:
            break
        members = [i for i in free if labels[i] == g]
        if members:
            chosen.append(g)
            rows += members[: min(per_group, want - len(rows))]
    if len(rows) < want:  # few groups: fill up from the chosen groups' other free rows
        rest = [i for i in free if labels[i] in chosen and i not in set(rows)]
        rows += rest[: want - len(rows)]
    shared = sum(touched[g] for g in chosen)
    rows.sort()
    return Split(rows, [labels[i] for i in rows], n_groups, len(chosen), shared, "groups")

"""Contrastive Gradient Identification: exact top/bottom-k masks by streaming radix selection.

Why radix select: a 7B model has 7·10⁹ scores; concatenating them for `kthvalue` (the official code)
needs tens of GB. Non-negative floats order like their bit patterns read as integers, so a histogram of
the top 16 bits (one pass over the score files), then, for float32, of the low 16 bits among elements
in the chosen bin (a second pass) gives the exact k-th value with 65536 counters of memory.

Ties: exactly k = floor(p·n) elements are selected. Elements strictly better than the threshold are
all taken; among elements equal to it, the first ones in canonical order (tensors sorted by name, then
flat index) fill the remaining budget, so the same scores always give the same masks, bit for bit. The scores
themselves are computed again bit for bit only with the same thread and process counts, which the report records
(collectives.summation_order; docs/SCALING.md, "What is reproducible").
Masks are kept bit-packed (numpy.packbits, little bit order), 1 bit per weight and mask.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..core import layout
from ..core.errors import InputError
from ..core.events import CancelToken, MaskSummary
from ..io.checkpoints import Checkpoint
from ..methods.topk import exact_k
from ..settings.config import MergeConfig

CHUNK = 1 << 24  # elements per histogram chunk: bounds temporary memory for huge embedding tensors


# ---------------------------------------------------------------------- keys and radix select
def to_keys(scores: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Order-preserving integer keys of non-negative float scores, and their bit width."""
    flat = scores.reshape(-1)
    if flat.dtype in (torch.bfloat16, torch.float16):
        keys, bits, top = (
            flat.view(torch.int16).to(torch.int32),
            16,
            (0x7F80 if flat.dtype == torch.bfloat16 else 0x7C00),
        )
    elif flat.dtype == torch.float32:
        keys, bits, top = flat.view(torch.int32), 32, 0x7F800000
    else:
        keys, bits, top = flat.float().view(torch.int32), 32, 0x7F800000
    if keys.numel() and (bool((keys < 0).any()) or bool((keys > top).any())):
        raise InputError(
            "Importance scores contain NaN or negative values: the model produced invalid gradients "
            "(try float32 compute precision)."
        )
    return keys, bits


def key_to_float(key: int, bits: int) -> float:
    if bits == 16:
        return float(torch.tensor([key], dtype=torch.int16).view(torch.bfloat16).float())
    return float(torch.tensor([key], dtype=torch.int32).view(torch.float32))


def kth_smallest(chunks: Callable[[], Iterable[torch.Tensor]], k: int, bits: int) -> tuple[int, int, int]:
    """k-th smallest key (1-based) over a re-iterable stream of key chunks.

    Returns (key, count_less, count_equal): how many keys are strictly below it and equal to it.
    """
    prefix, known, less = 0, 0, 0
    equal = 0
    while known < bits:
        width = min(16, bits - known)
        shift = bits - known - width
        hist = torch.zeros(1 << width, dtype=torch.int64)
        for keys in chunks():
            if known:
                keys = keys[(keys >> (shift + width)) == prefix]
            hist += torch.bincount(((keys >> shift) & ((1 << width) - 1)).long(), minlength=1 << width)
        cum = torch.cumsum(hist, 0)
        b = int(torch.searchsorted(cum, torch.tensor(k - less)))
        less += int(cum[b - 1]) if b > 0 else 0
        equal = int(hist[b])
        prefix = (prefix << width) | b
        known += width
    return prefix, less, equal


@dataclass
class Threshold:
    """Where one Top/Bottom-k cut falls, and how many threshold ties it still takes."""

    direction: str  # "bottom" | "top"
    k: int
    n: int
    key: int | None = None  # None: select nothing
    bits: int = 32
    ties: int = 0  # remaining elements equal to `key` to take, consumed in canonical order

    @property
    def value(self) -> float | None:
        return None if self.key is None else key_to_float(self.key, self.bits)


def _just(t: torch.Tensor) -> Callable[[], Iterable[torch.Tensor]]:
    """The chunk source of a single tensor."""
    return lambda: [t]


def find_threshold(
    chunks: Callable[[], Iterable[torch.Tensor]], n: int, ratio: float, direction: str, bits: int
) -> Threshold:
    k = exact_k(ratio, n)
    t = Threshold(direction, k, n, bits=bits)
    if k <= 0 or n == 0:
        return t
    if direction == "bottom":
        key, less, equal = kth_smallest(chunks, k, bits)
        t.key, t.ties = key, k - less
    else:
        key, less, equal = kth_smallest(chunks, n - k + 1, bits)
        greater = n - less - equal
        t.key, t.ties = key, k - greater
    return t


def apply_threshold(keys: torch.Tensor, t: Threshold) -> torch.Tensor:
    """Boolean mask (flat) of the selected elements of one tensor; consumes ties in flat order."""
    if t.key is None:
        return torch.zeros(keys.shape, dtype=torch.bool)
    mask = keys < t.key if t.direction == "bottom" else keys > t.key
    if t.ties > 0:
        eq = keys == t.key
        n_eq = int(eq.sum())
        if n_eq:
            take = min(t.ties, n_eq)
            mask |= eq & (torch.cumsum(eq, 0, dtype=torch.int64) <= take)
            t.ties -= take
    return mask


# ---------------------------------------------------------------------- packed masks
def pack(mask: torch.Tensor) -> np.ndarray:
    return np.packbits(mask.reshape(-1).numpy().astype(np.uint8), bitorder="little")


def unpack(packed: np.ndarray, numel: int) -> np.ndarray:
    return np.unpackbits(packed, count=numel, bitorder="little").astype(bool)


# ---------------------------------------------------------------------- the selection stage
@dataclass
class Term:
    map_id: str  # score map, e.g. "reasoning@reasoning"
    direction: str
    ratio: float


def mask_terms(method: str, reasoning_ratio: float, domain_ratio: float, intersect: bool) -> dict[str, list[Term]]:
    """The score maps each mask intersects, in the directions the method's registry record gives per role
    (ReasonAny: bottom-k for reasoning, top-k for the domain; LED: top-k for both)."""
    from ..methods.registry import get_method

    record = get_method(method)
    if not record.needs_scores:
        raise ValueError(f"{method} selects no weights (its registry record gives no selection directions)")
    ratios = {"reasoning": reasoning_ratio, "domain": domain_ratio}
    terms: dict[str, list[Term]] = {}
    for role, ratio in ratios.items():
        direction = record.selection[role]
        terms[role] = [Term(f"{role}@{role}", direction, ratio)]
        if intersect:
            terms[role].append(Term(f"base@{role}", direction, ratio))
    return terms


@dataclass
class TensorMasks:
    numel: int
    shape: tuple[int, ...]
    reasoning: np.ndarray  # packed M_r'
    domain: np.ndarray  # packed M_d'
    conflicts: np.ndarray  # packed M_r ∧ M_d (excluded from both)
    thresholds: dict[str, float | None] = field(default_factory=dict)  # map_id -> value (tensor scope)

    def counts(self) -> dict[str, int]:
        bits = lambda a: int(np.unpackbits(a, count=self.numel, bitorder="little").sum())  # noqa: E731
        return {
            "numel": self.numel,
            "reasoning": bits(self.reasoning),
            "domain": bits(self.domain),
            "conflicts": bits(self.conflicts),
        }


def select_masks(
    maps: dict[str, Any],  # map_id -> TensorFiles of scores
    names: list[str],
    terms: dict[str, list[Term]],
    scope: str,
    granularity: str,
    cancel: CancelToken,
    progress: Callable[[float, str], None] | None = None,
) -> tuple[dict[str, TensorMasks], dict[str, dict[str, Any]]]:
    """Masks for every selectable tensor; returns (masks by name, global thresholds by map id)."""
    names = sorted(names)
    all_terms = [t for ts in terms.values() for t in ts]
    n_total = sum(maps[all_terms[0].map_id].tensors[n].numel for n in names) if all_terms else 0
    thresholds: dict[str, Threshold] = {}
    steps = len(all_terms) + 1 if scope == "global" else 1
    if scope == "global":
        for i, term in enumerate(all_terms):
            store = maps[term.map_id]
            bits = to_keys(store.get(names[0]))[1] if names else 32

            def chunks(store: Any = store) -> Iterator[torch.Tensor]:
                for n in names:
                    cancel.check()
                    keys, _ = to_keys(store.get(n))
                    for j in range(0, keys.numel(), CHUNK):
                        yield keys[j : j + CHUNK]

            thresholds[_tkey(term)] = find_threshold(chunks, n_total, term.ratio, term.direction, bits)
            if progress:
                progress((i + 1) / steps, f"threshold for {term.map_id}")
    out: dict[str, TensorMasks] = {}
    for idx, name in enumerate(names):
        cancel.check()
        masks: dict[str, torch.Tensor] = {}
        tvals: dict[str, float | None] = {}
        for role, ts in terms.items():
            m: torch.Tensor | None = None
            for term in ts:
                keys, bits = to_keys(maps[term.map_id].get(name))
                if scope == "global":
                    t = thresholds[_tkey(term)]
                else:
                    t = find_threshold(_just(keys), keys.numel(), term.ratio, term.direction, bits)
                    tvals[term.map_id] = t.value
                sel = apply_threshold(keys, t)
                m = sel if m is None else (m & sel)
            assert m is not None, "every role has at least one selection term"
            if granularity == "tensor":  # the official scripts: a tensor is taken whole if any element passes
                m = torch.full_like(m, bool(m.any()))
            masks[role] = m
        r, d = masks["reasoning"], masks["domain"]
        conflicts = r & d
        shape = tuple(maps[all_terms[0].map_id].tensors[name].shape)
        out[name] = TensorMasks(r.numel(), shape, pack(r & ~d), pack(d & ~r), pack(conflicts), tvals)
        if progress and (idx % 16 == 0 or idx + 1 == len(names)):
            progress((steps - 1 + (idx + 1) / len(names)) / steps, name)
    return out, {k: {"direction": t.direction, "k": t.k, "n": t.n, "value": t.value} for k, t in thresholds.items()}


def _tkey(term: Term) -> str:
    return f"{term.map_id}:{term.direction}:{term.ratio}"


def summarize(masks: dict[str, TensorMasks]) -> tuple[MaskSummary, dict[str, dict[str, Any]]]:
    """Per-tensor counts and the (layer x module) fractions of the inspector's heatmap."""
    counts = {n: m.counts() for n, m in masks.items()}
    names = list(masks)
    layers = max(layout.num_layers(names), 0)
    grids = {k: np.full((layers, len(layout.MODULES)), np.nan) for k in ("reasoning", "domain", "conflicts")}
    for (layer, module), members in layout.cells(names).items():
        numel = sum(counts[n]["numel"] for n in members)
        for k, g in grids.items():
            g[layer, layout.MODULES.index(module)] = sum(counts[n][k] for n in members) / numel
    totals = {k: sum(c[k] for c in counts.values()) for k in ("reasoning", "domain", "conflicts", "numel")}
    totals["selectable"] = totals.pop("numel")
    return MaskSummary(layout.MODULES, grids["reasoning"], grids["domain"], grids["conflicts"], totals), counts


def categories_image(m: TensorMasks, max_side: int = 256) -> np.ndarray:
    """uint8 image of one tensor's masks: 0 untouched, 1 reasoning, 2 domain, 3 excluded conflict.

    Downsampled by blocks; a block shows its most frequent non-zero category when at least one element of
    it is selected (so sparse masks stay visible), else 0.
    """
    shape = m.shape if len(m.shape) == 2 else (1, m.numel) if len(m.shape) <= 1 else (m.shape[0], m.numel // m.shape[0])
    cat = np.zeros(m.numel, dtype=np.uint8)
    cat[unpack(m.reasoning, m.numel)] = 1
    cat[unpack(m.domain, m.numel)] = 2
    cat[unpack(m.conflicts, m.numel)] = 3
    img = cat.reshape(shape)
    fh, fw = max(1, -(-shape[0] // max_side)), max(1, -(-shape[1] // max_side))
    if fh == 1 and fw == 1:
        return img
    H, W = -(-shape[0] // fh), -(-shape[1] // fw)
    padded = np.zeros((H * fh, W * fw), dtype=np.uint8)
    padded[: shape[0], : shape[1]] = img
    blocks = padded.reshape(H, fh, W, fw).transpose(0, 2, 1, 3).reshape(H, W, fh * fw)
    counts = np.stack([(blocks == c).sum(-1) for c in (1, 2, 3)], -1)
    out = counts.argmax(-1).astype(np.uint8) + 1
    out[counts.sum(-1) == 0] = 0
    return out


def score_histogram(
    scores: torch.Tensor, threshold: float | None, bins: int = 60
) -> tuple[np.ndarray, np.ndarray, float | None]:
    """Histogram of log10 of the non-zero scores of one tensor, with the threshold in the same units."""
    x = scores.reshape(-1).float()
    x = x[x > 0]
    if x.numel() == 0:
        return np.array([0.0, 1.0]), np.array([0]), None
    logs = torch.log10(x).numpy()
    counts, edges = np.histogram(logs, bins=bins)
    t = None if not threshold or threshold <= 0 else float(np.log10(threshold))
    return edges, counts, t


class Selection:
    """Final masks of a run, with what the inspector asks of them (counts, heatmap, images, histograms)."""

    def __init__(
        self,
        masks: dict[str, TensorMasks],
        thresholds: dict[str, dict[str, Any]] | None = None,
        maps: dict[str, Any] | None = None,
        terms: dict[str, list[Term]] | None = None,
    ) -> None:
        self.masks = masks
        self.thresholds = thresholds or {}
        self.maps = maps or {}
        self.terms = terms or {}
        self.names = sorted(masks)
        self.modules = layout.MODULES
        self.summary, self.counts = summarize(masks)

    def cell_tensors(self, layer: int, module: str) -> list[str]:
        return layout.cells(self.names).get((layer, module), [])

    def mask_categories(self, name: str, max_side: int = 256) -> np.ndarray:
        return categories_image(self.masks[name], max_side)

    def packed_tensors(self) -> dict[str, torch.Tensor]:
        """The bit-packed masks as tensors named `reasoning/NAME` and `domain/NAME`: the run's masks file."""
        out: dict[str, torch.Tensor] = {}
        for name in self.names:
            out[f"reasoning/{name}"] = torch.from_numpy(self.masks[name].reasoning)
            out[f"domain/{name}"] = torch.from_numpy(self.masks[name].domain)
        return out

    def bool_masks(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(M_r', M_d') of one tensor as boolean tensors of its shape."""
        m = self.masks[name]
        r = torch.from_numpy(unpack(m.reasoning, m.numel)).reshape(m.shape)
        d = torch.from_numpy(unpack(m.domain, m.numel)).reshape(m.shape)
        return r, d

    def score_histogram(self, name: str, which: str) -> tuple[np.ndarray, np.ndarray, float | None]:
        """log10 histogram of the expert's scores on its own data, with that term's threshold."""
        terms = self.terms.get(which) or []
        if not terms or terms[0].map_id not in self.maps:
            return np.array([0.0, 1.0]), np.array([0]), None
        term = terms[0]
        value = self.masks[name].thresholds.get(term.map_id)
        if value is None:
            value = self.thresholds.get(_tkey(term), {}).get("value")
        return score_histogram(self.maps[term.map_id].get(name), value)


def empty_selection_warnings(cfg: MergeConfig, base: Checkpoint, aliases: set[str]) -> list[str]:
    """Warnings for a ratio so small that floor(ratio·n) is 0 everywhere: that skill's mask is empty, and
    the output takes nothing from that model. `base` is the base Checkpoint; aliases are never selected."""
    sizes = [
        m.numel
        for n, m in base.tensors.items()
        if m.is_float and n not in aliases and (cfg.select_embeddings or not layout.is_embedding(n))
    ]
    if not sizes:
        return []
    n = sum(sizes) if cfg.scope == "global" else max(sizes)
    where = "all selectable weights" if cfg.scope == "global" else "the weights of the largest tensor"
    out = []
    for name in ("reasoning_ratio", "domain_ratio"):
        ratio = getattr(cfg, name)
        if exact_k(ratio, n) == 0:
            out.append(
                f"{name} = {ratio} selects no weight: floor({ratio} × {n:,}, {where}) is 0, so the merge "
                f"takes nothing from the {name.split('_')[0]} model. Raise it to at least {1 / n:.2g}."
            )
    return out

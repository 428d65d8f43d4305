"""Per-tensor merge formulas: ReasonAny/LED (masked task vectors) and the baselines.

Why per tensor: the merge streams one tensor at a time from memory-mapped inputs to the sharded output,
so every method is a pure function of (θ_b, θ_r, θ_d, masks, settings) for one tensor, in float32.
For TIES and DARE the two ratios are the densities (fraction of each task vector kept) and the two
scales are the weights, so one settings panel serves every method.

The method registry (`REGISTRY`, one `MergeMethod` record per method, after the formulas) is the only place a
method is described: its id, titles, help, paper, which settings it reads, how the scored methods select, and
its per-tensor function, how a tuner candidate of it is labelled, which settings the tuner tries first, its time
cost, its own validation and its plot style. The config's choices and validation, the CLI, the GUI, selection,
the tuner, the estimate and the reports all read it, so adding a method is one formula plus one `register(...)`
call (pattern: mergekit's merge_methods/registry.py; docs/EXTENDING.md shows the code).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import torch

from .topk import exact_k


class MergeConfig(Protocol):
    """What a merge function reads of the run's setting (settings.config.MergeConfig has these fields).

    A Protocol, not the class: the settings floor stands above the methods and imports this registry."""

    reasoning_ratio: float
    domain_ratio: float
    reasoning_scale: float
    domain_scale: float
    seed: int


def masked(
    base: torch.Tensor,
    tau_r: torch.Tensor,
    tau_d: torch.Tensor,
    m_r: torch.Tensor | None,
    m_d: torch.Tensor | None,
    lam_r: float,
    lam_d: float,
) -> torch.Tensor:
    """θ_b + λ_r·M_r'⊙τ_r + λ_d·M_d'⊙τ_d (ALGORITHM.md §2 step 5); no masks = the tensor stays the base's."""
    out = base.clone()
    if m_r is not None:
        out += lam_r * torch.where(m_r, tau_r, torch.zeros((), dtype=tau_r.dtype))
    if m_d is not None:
        out += lam_d * torch.where(m_d, tau_d, torch.zeros((), dtype=tau_d.dtype))
    return out


def task_arithmetic(
    base: torch.Tensor, tau_r: torch.Tensor, tau_d: torch.Tensor, lam_r: float, lam_d: float
) -> torch.Tensor:
    return base + lam_r * tau_r + lam_d * tau_d


def linear(base: torch.Tensor, tau_r: torch.Tensor, tau_d: torch.Tensor, w_r: float, w_d: float) -> torch.Tensor:
    """Weighted average of the two experts: θ_b + (w_r·τ_r + w_d·τ_d)/(w_r + w_d)."""
    return base + (w_r * tau_r + w_d * tau_d) / (w_r + w_d)


def magnitude_trim(tau: torch.Tensor, density: float) -> torch.Tensor:
    """Keep the floor(density·n) largest |τ| entries of a tensor (ties by flat order), zero the rest.

    Why a selection, not a sort: a full stable sort of a 7B embedding (545 M elements) needed 54 B/element
    (a 29.5 GB transient) and minutes. The k-th largest |τ| comes from numpy's introselect, in place on one
    float32 copy that is then freed; chunk by chunk, entries above it are kept, then of the entries equal to it
    the first ones in flat order until k are kept: the sort's result exactly, with a 4 B/element transient,
    then a 1 B/element mask (benchmarks/speed/RESULTS.md).
    """
    import numpy as np

    flat = tau.reshape(-1)
    n = flat.numel()
    k = exact_k(density, n)  # floor(density·n) exactly, as in selection (0.29·100 = 29, not 28)
    if k <= 0:
        return torch.zeros_like(tau)
    if k >= n:
        return tau.clone()
    work = np.ascontiguousarray(flat.abs().float().numpy())
    work.partition(n - k)  # in place: position n-k holds the k-th largest value
    cut = float(work[n - k])
    del work
    step = 1 << 22
    keep = torch.empty(n, dtype=torch.bool)
    need = k
    for start in range(0, n, step):
        above = torch.gt(flat[start : start + step].abs().float(), cut, out=keep[start : start + step])
        need -= int(above.sum())
    for start in range(0, n, step):  # the first `need` entries equal to the cut, in flat order
        if need <= 0:
            break
        equal = flat[start : start + step].abs().float() == cut
        count = int(equal.sum())
        if count > need:
            equal[equal.nonzero().reshape(-1)[need] :] = False
            count = need
        keep[start : start + step] |= equal
        need -= count
    return torch.where(keep, flat, torch.zeros((), dtype=flat.dtype)).reshape(tau.shape)


def ties(
    base: torch.Tensor, tau_r: torch.Tensor, tau_d: torch.Tensor, dens_r: float, dens_d: float, w_r: float, w_d: float
) -> torch.Tensor:
    """TIES-Merging (Yadav et al. 2023): trim, elect sign by weighted mass, disjoint weighted mean."""
    taus = torch.stack([magnitude_trim(tau_r, dens_r) * w_r, magnitude_trim(tau_d, dens_d) * w_d])
    weights = torch.tensor([w_r, w_d], dtype=taus.dtype).view(2, *([1] * tau_r.dim()))
    sign = torch.sign(taus.sum(0))
    agree = (torch.sign(taus) == sign) & (taus != 0)
    total = (taus * agree).sum(0)
    norm = (weights * agree).sum(0)
    return base + torch.where(norm > 0, total / norm.clamp_min(1e-12), torch.zeros((), dtype=total.dtype))


def dare(
    base: torch.Tensor,
    tau_r: torch.Tensor,
    tau_d: torch.Tensor,
    dens_r: float,
    dens_d: float,
    lam_r: float,
    lam_d: float,
    seed: int,
    name: str,
) -> torch.Tensor:
    """DARE (Yu et al. 2024): drop each entry with probability 1−density, rescale by 1/density, then add.

    The random stream is seeded by (seed, tensor name), so results do not depend on processing order.
    """
    gen = torch.Generator().manual_seed(_name_seed(seed, name))
    keep_r = torch.rand(tau_r.shape, generator=gen) < dens_r
    keep_d = torch.rand(tau_d.shape, generator=gen) < dens_d
    zero = torch.zeros((), dtype=tau_r.dtype)
    return base + lam_r * torch.where(keep_r, tau_r / dens_r, zero) + lam_d * torch.where(keep_d, tau_d / dens_d, zero)


def _name_seed(seed: int, name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "little") & ((1 << 63) - 1)


def merge_tensor(
    method: str,
    name: str,
    base: torch.Tensor,
    reasoning: torch.Tensor,
    domain: torch.Tensor,
    cfg: MergeConfig,
    m_r: torch.Tensor | None = None,
    m_d: torch.Tensor | None = None,
) -> torch.Tensor:
    """Merged float32 tensor for `method` (looked up in REGISTRY); `cfg` is the MergeConfig (ratios, scales, seed)."""
    b = base.float()
    trio = TensorTrio(name, b, reasoning.float() - b, domain.float() - b, m_r, m_d)
    return get_method(method).merge(trio, cfg)


# ============================================================================ the method registry
Direction = Literal["top", "bottom"]
#: the expert roles a scored method selects for (each gets one direction)
SELECTED_ROLES = ("reasoning", "domain")


@dataclass(frozen=True)
class TensorTrio:
    """One tensor's inputs to a per-tensor function: the base, both task vectors (float32) and the masks."""

    name: str
    base: torch.Tensor
    tau_r: torch.Tensor
    tau_d: torch.Tensor
    m_r: torch.Tensor | None = None
    m_d: torch.Tensor | None = None


MergeFn = Callable[[TensorTrio, "MergeConfig"], torch.Tensor]
#: a method's own check of a valid-typed config (e.g. linear's weights must not sum to 0): plain-words problems
CheckFn = Callable[["MergeConfig"], list[str]]
#: the tuner's anchors of a method: the ratios and scales it tries before refining (read by measure.candidates)
Anchor = Mapping[str, float]
#: what a tuner candidate's label shows of its setting, by the knobs a method reads (see `MergeMethod.label`)
SCALES_LABEL = "{title} λ {reasoning_scale:g}/{domain_scale:g}"
DENSITIES_LABEL = "{title} density {reasoning_ratio:g}/{domain_ratio:g}, λ {reasoning_scale:g}/{domain_scale:g}"
SCORED_LABEL = "{title} p {reasoning_ratio:g}/{domain_ratio:g}, λ {reasoning_scale:g}/{domain_scale:g}, {scope} scope"
#: the time the streamed merge's arithmetic takes per parameter (ns, one CPU thread) when a record does not say
MERGE_NS_DEFAULT = 12.0


def _no_problems(cfg: MergeConfig) -> list[str]:
    return []


@dataclass(frozen=True)
class MergeMethod:
    """Everything the app says or does about one merge method; every other module derives from these records.

    `selection` is empty for methods that merge every weight, and otherwise names the direction per expert role
    ("top" = its most important weights, "bottom" = its least important): a method that needs importance scores
    must say this itself, so a new scored method can never inherit another method's direction by accident.
    `uses` lists the settings the per-tensor function reads beyond the scores (the GUI keeps them editable).

    The rest has defaults that fit a new method, so none silently degrades: `label` formats a tuner candidate
    (fields: title and the setting's keys; "" = chosen by the knobs the method reads), `anchors` are the
    settings the tuner tries first (() = the tuner tries it only when it is the user's own setting), `merge_ns`
    is its arithmetic per parameter for the time estimate, `check` its own validation, and `colour` / `marker`
    its point in the tuner's scatter plot (colour and shape both differ, so the plot reads in grey too)."""

    id: str
    title: str  # short: tables, plots, the tuner's summary
    full_title: str  # the report and the model card
    help: str  # one plain-language line (GUI, CLI)
    reference: str  # the paper
    merge: MergeFn
    selection: Mapping[str, Direction] = field(default_factory=dict)
    uses: tuple[str, ...] = ("reasoning_scale", "domain_scale")
    recommended: bool = False
    label: str = ""
    anchors: tuple[Anchor, ...] = ()
    merge_ns: float = MERGE_NS_DEFAULT
    check: CheckFn = _no_problems
    colour: str = "#667085"
    marker: str = "x"

    @property
    def needs_scores(self) -> bool:
        """Scored methods select weights by importance, so they need calibration data and backward passes."""
        return bool(self.selection)

    @property
    def choice_title(self) -> str:
        """The title in a list of choices (the GUI combo): the recommended method is marked as such."""
        return f"{self.title} ({'recommended' if self.recommended else 'comparison'})"

    def describe(self, setting: Mapping[str, Any]) -> str:
        """A tuner candidate in words, e.g. 'TIES density 0.5/0.5, λ 1/1' (`label`, or the default by knobs)."""
        if self.label:
            text = self.label
        elif self.needs_scores:
            text = SCORED_LABEL
        else:
            text = DENSITIES_LABEL if "reasoning_ratio" in self.uses else SCALES_LABEL
        return text.format(title=self.title, **{"scope": "tensor", **setting})

    def problems(self) -> list[str]:
        """What is missing or inconsistent in this record (empty = complete)."""
        out = [
            f"{self.id}: empty {k}"
            for k in ("id", "title", "full_title", "help", "reference")
            if not str(getattr(self, k)).strip()
        ]
        if not self.id.isidentifier() or self.id != self.id.lower():
            out.append(f"{self.id!r}: the id must be a lower-case identifier (it is a CLI choice and a YAML value)")
        if not callable(self.merge) or not callable(self.check):
            out.append(f"{self.id}: merge and check must be callable")
        if self.selection and (
            set(self.selection) != set(SELECTED_ROLES) or not set(self.selection.values()) <= {"top", "bottom"}
        ):
            out.append(f"{self.id}: selection must give 'top' or 'bottom' for each of {', '.join(SELECTED_ROLES)}")
        if not self.merge_ns > 0:
            out.append(f"{self.id}: merge_ns must be a positive time per parameter (ns)")
        return out


#: id -> record, in the order the CLI and the GUI list them
REGISTRY: dict[str, MergeMethod] = {}


def register(method: MergeMethod) -> MergeMethod:
    """Add a method; an incomplete record or a second record with the same id is a programming error."""
    bad = method.problems() + ([f"{method.id}: registered twice"] if method.id in REGISTRY else [])
    if bad:
        raise ValueError("; ".join(bad))
    REGISTRY[method.id] = method
    return method


def get_method(method_id: str) -> MergeMethod:
    """The record of a method id (MergeConfig.validate has already refused unknown ids with a clear message)."""
    try:
        return REGISTRY[method_id]
    except KeyError:
        raise ValueError(f"unknown method {method_id!r}") from None


def method_ids() -> tuple[str, ...]:
    return tuple(REGISTRY)


def scored_method_ids() -> tuple[str, ...]:
    return tuple(m.id for m in REGISTRY.values() if m.needs_scores)


class RegistryView(Mapping[str, str]):
    """A live, read-only id -> text mapping over REGISTRY (e.g. titles), for code that looks titles up with
    `.get(id, id)`: it follows methods registered later (and in tests), unlike a dict copied at import."""

    def __init__(self, text: Callable[[MergeMethod], str]) -> None:
        self._text = text

    def __getitem__(self, key: str) -> str:
        return self._text(REGISTRY[key])

    def __iter__(self) -> Iterator[str]:
        return iter(REGISTRY)

    def __len__(self) -> int:
        return len(REGISTRY)


#: the three titles of a method, one name each: the short one (tables, plots, the tuner), the full one (the report
#: and the model card) and the one in a list of choices (the GUI's method combo, "TIES (comparison)")
TITLES = RegistryView(lambda m: m.title)
FULL_TITLES = RegistryView(lambda m: m.full_title)
OPTION_TITLES = RegistryView(lambda m: m.choice_title)


# ---------------------------------------------------------------------------- per-tensor functions and records
def _masked(t: TensorTrio, cfg: MergeConfig) -> torch.Tensor:
    return masked(t.base, t.tau_r, t.tau_d, t.m_r, t.m_d, cfg.reasoning_scale, cfg.domain_scale)


def _task_arithmetic(t: TensorTrio, cfg: MergeConfig) -> torch.Tensor:
    return task_arithmetic(t.base, t.tau_r, t.tau_d, cfg.reasoning_scale, cfg.domain_scale)


def _ties(t: TensorTrio, cfg: MergeConfig) -> torch.Tensor:
    return ties(t.base, t.tau_r, t.tau_d, cfg.reasoning_ratio, cfg.domain_ratio, cfg.reasoning_scale, cfg.domain_scale)


def _dare(t: TensorTrio, cfg: MergeConfig) -> torch.Tensor:
    return dare(
        t.base,
        t.tau_r,
        t.tau_d,
        cfg.reasoning_ratio,
        cfg.domain_ratio,
        cfg.reasoning_scale,
        cfg.domain_scale,
        cfg.seed,
        t.name,
    )


def _linear(t: TensorTrio, cfg: MergeConfig) -> torch.Tensor:
    return linear(t.base, t.tau_r, t.tau_d, cfg.reasoning_scale, cfg.domain_scale)


def _linear_check(cfg: MergeConfig) -> list[str]:
    if cfg.reasoning_scale + cfg.domain_scale <= 0:
        return ["linear merging needs reasoning_scale + domain_scale > 0 (they are the weights)."]
    return []


def anchor(ratio: float, scale: float) -> Anchor:
    """A tuner anchor with the same share and strength for both experts (MergeMethod.anchors)."""
    return {"reasoning_ratio": ratio, "domain_ratio": ratio, "reasoning_scale": scale, "domain_scale": scale}


def _paper_style_anchors() -> tuple[Anchor, ...]:
    """The paper's small shares and larger ones, each at a plain scale (1), a compensating one (1/share: the
    expert's total change stays about the same) and half-way between them (√(1/share)); the tuner clips a scale
    to the legal range."""
    return tuple(
        anchor(p, lam) for p in (0.05, 0.2, 0.5) for lam in sorted({1.0, round(math.sqrt(1 / p), 2), round(1 / p, 2)})
    )


_DENSITIES = ("reasoning_ratio", "domain_ratio", "reasoning_scale", "domain_scale")
register(
    MergeMethod(
        "reasonany",
        "ReasonAny",
        "ReasonAny (Contrastive Gradient Identification)",
        "Takes the reasoning model's least sensitive weights and the domain model's most sensitive ones, "
        "and leaves weights both want to the base (the paper's method).",
        "ReasonAny, arXiv:2601.05560",
        _masked,
        {"reasoning": "bottom", "domain": "top"},
        recommended=True,
        anchors=_paper_style_anchors(),
        colour="#2f6fde",
        marker="o",
    )
)
register(
    MergeMethod(
        "task_arithmetic",
        "Task Arithmetic",
        "Task Arithmetic",
        "Adds both experts' full changes to the base. Simple; often loses one of the two skills.",
        "Ilharco et al., Editing Models with Task Arithmetic, arXiv:2212.04089",
        _task_arithmetic,
        anchors=(anchor(0.5, 1.0), anchor(0.5, 0.6)),  # the experts' full changes, and damped
        colour="#f08c00",
        marker="t1",
    )
)
register(
    MergeMethod(
        "ties",
        "TIES",
        "TIES-Merging",
        "Trims small changes and resolves sign conflicts before adding them.",
        "Yadav et al., TIES-Merging, arXiv:2306.01708",
        _ties,
        uses=_DENSITIES,
        anchors=(anchor(0.5, 1.0),),
        merge_ns=95.0,  # the k-th largest |τ| of both task vectors (bench_trim.py: ~42 ns/element each)
        colour="#12a150",
        marker="s",
    )
)
register(
    MergeMethod(
        "dare",
        "DARE",
        "DARE",
        "Randomly drops most changes and rescales the rest before adding them.",
        "Yu et al., Language Models are Super Mario (DARE), arXiv:2311.03099",
        _dare,
        uses=_DENSITIES + ("seed",),
        anchors=(anchor(0.5, 1.0),),
        merge_ns=30.0,  # two random masks
        colour="#9b51e0",
        marker="d",
    )
)
register(
    MergeMethod(
        "linear",
        "Linear average",
        "Linear average",
        "A weighted average of the two experts (strengths are the weights).",
        "Wortsman et al., Model soups, arXiv:2203.05482",
        _linear,
        check=_linear_check,
        colour="#667085",
        marker="h",
    )
)
register(
    MergeMethod(
        "led",
        "LED-Merging",
        "LED-Merging",
        "LED-Merging: the most important weights of each expert, made disjoint.",
        "Ma et al., LED-Merging, arXiv:2502.16770",
        _masked,
        {"reasoning": "top", "domain": "top"},
        colour="#0e9384",
        marker="p",
    )
)

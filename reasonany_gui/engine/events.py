"""The event protocol between the pipeline and whoever watches it (GUI, CLI, tests).

Events are small, immutable, and hold only plain Python values and small CPU numpy arrays, so the GUI
worker can forward them across threads and the CLI can print them. The engine never waits on a listener.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import CancelledError


@dataclass(frozen=True)
class StageStarted:
    stage: str  # machine name, e.g. "identify:reasoning@reasoning"
    title: str  # for people, e.g. "Scoring the reasoning model on the reasoning data"
    index: int  # 0-based position in the plan
    total: int  # number of stages in the plan


@dataclass(frozen=True)
class Progress:
    stage: str
    fraction: float  # of this stage, 0..1
    overall: float  # of the whole run, 0..1 (weighted by expected cost)
    message: str = ""
    eta_seconds: float | None = None  # whole run, None while unknown


@dataclass(frozen=True)
class StageFinished:
    stage: str
    seconds: float


@dataclass(frozen=True)
class Log:
    level: str  # "info" | "warning" | "error"
    message: str


@dataclass(frozen=True)
class SensitivityUpdate:
    """Mean importance per (layer, module type) so far, for the live plot (the paper's Figure 2)."""

    pass_id: str  # "reasoning@reasoning", "base@reasoning", "domain@domain", "base@domain"
    model_role: str
    data_role: str
    samples_done: int
    samples_total: int
    modules: tuple[str, ...]  # column labels, e.g. ("q", "k", "v", "o", "gate", "up", "down")
    grid: np.ndarray = field(repr=False)  # float64 [layers, modules]; NaN where a module is absent


@dataclass(frozen=True)
class MaskSummary:
    """Selection result, per (layer, module type) and in total, for the mask inspector."""

    modules: tuple[str, ...]
    reasoning_fraction: np.ndarray = field(repr=False)  # [layers, modules], final M_r'
    domain_fraction: np.ndarray = field(repr=False)  # [layers, modules], final M_d'
    conflict_fraction: np.ndarray = field(repr=False)  # [layers, modules], M_r ∧ M_d
    totals: dict[str, Any] = field(default_factory=dict)  # reasoning, domain, conflicts, selectable


@dataclass(frozen=True)
class TuneCandidate:
    """One measured candidate of the tuner: what it kept of each skill, and which candidate is recommended so far."""

    index: int
    budget: int
    label: str  # e.g. "ReasonAny p 0.2/0.2, λ 2.24/2.24, tensor scope"
    setting: dict[str, Any]
    kept_reasoning: float | None
    kept_domain: float | None
    recommended: int  # index of the recommended candidate so far


Event = StageStarted | Progress | StageFinished | Log | SensitivityUpdate | MaskSummary | TuneCandidate
Listener = Callable[[object], None]


class CancelToken:
    """Thread-safe cancellation flag, checked by the engine between samples and tensors."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise CancelledError when cancellation was requested."""
        if self._event.is_set():
            raise CancelledError()


def null_listener(_event: object) -> None:
    """A listener that ignores everything (tests, library use)."""

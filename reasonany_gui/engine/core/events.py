"""The event protocol between the pipeline and whoever watches it (GUI, CLI, tests).

Events are small, immutable, and hold only plain Python values and small CPU numpy arrays, so the GUI
worker can forward them across threads and the CLI can print them. The engine never waits on a listener.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
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


#: every event type by name: the JSON form's "type" (a torchrun rank 0 streams its events to the app this way)
EVENT_TYPES: dict[str, type] = {
    t.__name__: t for t in (StageStarted, Progress, StageFinished, Log, SensitivityUpdate, MaskSummary, TuneCandidate)
}
_ARRAY = "__ndarray__"


def _plain(value: Any) -> Any:
    """A JSON-ready copy: arrays as {"__ndarray__": nested lists, "dtype": ...}, tuples as lists."""
    if isinstance(value, np.ndarray):
        return {_ARRAY: value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _restored(value: Any) -> Any:
    if isinstance(value, dict):
        if _ARRAY in value:
            return np.asarray(value[_ARRAY], dtype=value.get("dtype", "float64"))
        return {k: _restored(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restored(v) for v in value]
    return value


def to_dict(event: object) -> dict[str, Any]:
    """`{"type": NAME, **fields}` with plain JSON values (json.dumps keeps NaN as NaN, which json.loads reads).

    Why: a torchrun job's rank 0 runs in another process; its events reach the app's one listener as JSON lines
    (engine/scoring/collectives.py), so the Run screen's progress, log and plots work as for a single process."""
    if type(event).__name__ not in EVENT_TYPES or not dataclasses.is_dataclass(event):
        raise TypeError(f"{type(event).__name__} is not an engine event")
    fields = {f.name: _plain(getattr(event, f.name)) for f in dataclasses.fields(event)}
    return {"type": type(event).__name__, **fields}


def from_dict(data: Mapping[str, Any]) -> object:
    """The event `to_dict` made (tuple fields back to tuples, arrays back to numpy arrays of their dtype)."""
    kind = EVENT_TYPES.get(str(data.get("type")))
    if kind is None:
        raise ValueError(f"not an engine event: type {data.get('type')!r}")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(kind):
        if f.name not in data:
            continue
        value = _restored(data[f.name])
        if str(f.type).startswith("tuple") and isinstance(value, list):
            value = tuple(value)
        values[f.name] = value
    return kind(**values)


class CancelToken:
    """Thread-safe cancellation flag, checked by the engine between samples and tensors."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        """Block until cancelled or `timeout` seconds passed; whether it was cancelled (for watcher loops)."""
        return self._event.wait(timeout)

    def check(self) -> None:
        """Raise CancelledError when cancellation was requested."""
        if self._event.is_set():
            raise CancelledError()


def null_listener(_event: object) -> None:
    """A listener that ignores everything (tests, library use)."""

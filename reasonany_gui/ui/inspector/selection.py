"""What the inspector shows: the engine's `Selection` after a run, or `report.load_run()` for an older output
folder. A Protocol, so the UI needs neither type (and never computes masks itself).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)


class SelectionLike(Protocol):
    names: list[str]
    modules: tuple[str, ...]
    summary: Any
    counts: dict[str, dict[str, Any]]

    def cell_tensors(self, layer: int, module: str) -> list[str]: ...
    def mask_categories(self, name: str, max_side: int = 256) -> np.ndarray: ...
    def score_histogram(self, name: str, which: str) -> Any: ...

"""Numbers as people read them: one formatter for the shares the tuner, the report and the app print.

Why a module of its own: the same "kept 87 %" appeared in three places with three helpers; one source keeps the
rounding and the wording of a missing value the same everywhere.
"""

from __future__ import annotations


def pct(v: float | None, missing: str = "n/a") -> str:
    """A share (1.0 = 100 %) as a whole percentage; ``missing`` when the value could not be measured."""
    return missing if v is None else f"{100 * v:.0f} %"

"""Which score passes a setting needs: one place for the estimate, the pipeline and the app's plots.

Why its own module: the estimate (this floor) and the pipeline (above it) both need the list, and it used to live
in the pipeline, so the estimate imported upwards."""

from __future__ import annotations

from ..settings.config import MergeConfig

#: score maps: map id -> (model role, data role), in the order the app draws them
MAPS = {
    "reasoning@reasoning": ("reasoning", "reasoning"),
    "base@reasoning": ("base", "reasoning"),
    "domain@domain": ("domain", "domain"),
    "base@domain": ("base", "domain"),
}


def needed_maps(cfg: MergeConfig) -> list[str]:
    """The score passes a setting needs, in the order they run (empty for a method without scores).

    Public because the app prepares one plot per pass before the run starts: this is the one place that
    knows which passes a setting needs (the experts on their own data; the base on both with `intersect`)."""
    if not cfg.needs_scores:
        return []
    maps = ["reasoning@reasoning", "domain@domain"]
    if cfg.intersect:
        maps += ["base@reasoning", "base@domain"]
    return maps

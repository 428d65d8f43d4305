"""Before any model is loaded: does the run fit the host memory and the GPUs it is split across?

Why warnings and not an automatic change: `score_groups` is recorded in run.yaml, and a run re-done from it must
do what it says; the app's settings screen offers the same change before the run."""

from __future__ import annotations

from ..io.model_info import ModelInfo
from ..io.writer import human_bytes
from ..settings.config import MergeConfig


def memory_warnings(cfg: MergeConfig, info: ModelInfo, ram: int | None = None) -> list[str]:
    """Warnings when the run needs more host memory than `ram` (free memory when None), with how many score
    passes would fit (the low-RAM mode), or when a model split across GPUs does not fit them."""
    from ..scoring.estimate import estimate_run, low_ram_offer

    if not cfg.needs_scores:
        return []
    try:
        est = estimate_run(cfg, info)
        if ram is None:
            import psutil

            ram = int(psutil.virtual_memory().available)
        offer = low_ram_offer(cfg, info, ram)
    except Exception as exc:  # noqa: BLE001 - an estimate is a courtesy, never a blocker
        return [f"No memory estimate: {exc}"]
    out = []
    if offer is not None:
        out.append(
            offer.message(
                f" Set --score-groups {offer.groups} (the app: Scoring passes per model, under "
                "Advanced settings); the scores are the same."
            )
        )
    elif est.host_bytes > ram:
        out.append(
            f"This merge needs about {human_bytes(est.host_bytes)} of memory; {human_bytes(ram)} is free. "
            "Close other programs, or see docs/SCALING.md."
        )
    if est.split is not None and not est.split.fits:
        out.append(f"The model split across {cfg.devices}: {est.split.message}")
    return out

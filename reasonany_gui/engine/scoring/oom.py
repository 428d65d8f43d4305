"""What to say when the GPU runs out of memory while scoring: the next settings that lower peak memory.

Why a module of its own: the advice is a small decision table over the settings, tested on its own, and the
scoring loop only has to raise what it returns."""

from __future__ import annotations

from ..core.errors import OutOfMemoryError
from ..settings.config import MergeConfig


def oom_error(cfg: MergeConfig, while_doing: str) -> OutOfMemoryError:
    """The out-of-memory message, with the next settings that lower peak memory and are not already on.

    Why in this order: host accumulators free 4 B/param of device memory at a small speed cost; gradient
    checkpointing frees most activations for ~30 % more time; a shorter max length cuts activations but
    changes the scores. Fewer samples save time, not memory (batch of one), so they are never suggested.
    """
    fixes: dict[str, object] = {}
    if cfg.accumulators != "host":
        fixes["accumulators"] = "host"
    if not cfg.gradient_checkpointing:
        fixes["gradient_checkpointing"] = True
    if not fixes and cfg.max_length > 64:
        fixes["max_length"] = max(64, cfg.max_length // 2)
    if not fixes:
        fixes["device"] = "cpu"
    return OutOfMemoryError(
        f"The GPU ran out of memory while {while_doing}. Keep the score accumulators in host memory, turn on "
        f"gradient checkpointing, or use a shorter maximum length (now {cfg.max_length} tokens; samples are cut "
        "to it). Close other programs that use the GPU.",
        fixes,
    )

"""Tied embeddings stored twice: which copy is written with the other's merged value.

Why a module of its own: a checkpoint with tied weights may store both the input embedding and
`lm_head.weight`; scoring stores the tied weight once, so selection and writing must agree on one primary name."""

from __future__ import annotations

from ..core import layout
from .checkpoints import Checkpoint

HEAD = "lm_head.weight"


def tied_aliases(base: Checkpoint, scored: set[str] | None) -> dict[str, str]:
    """{copy: primary} for a tied checkpoint that stores both the input embedding and the head, else {}.

    The primary is the name the tied weight was scored under (importance stores it once, under the first stored
    name in sorted order), so it can be selected; `scored` is None before any scores exist (then the first name
    in sorted order). The input embedding is any name core.layout calls one (embed_tokens, wte,
    word_embeddings)."""
    if not base.tied_embeddings or HEAD not in base.tensors:
        return {}
    embed = [n for n in base.names if layout.is_input_embedding(n)]
    if not embed:
        return {}
    pair = sorted([HEAD, embed[0]])
    primary = next((n for n in pair if scored is not None and n in scored), pair[0])
    return {n: primary for n in pair if n != primary}

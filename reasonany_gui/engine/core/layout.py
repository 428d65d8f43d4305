"""Where a tensor sits in a transformer: (layer, module type), for plots, grids and the inspector.

Why a module of its own: the live sensitivity plot, the mask heatmap and the report all group tensors the
same way, and Qwen2/Llama/Mistral-style names share one pattern.
"""

from __future__ import annotations

import re

MODULES: tuple[str, ...] = ("q", "k", "v", "o", "gate", "up", "down")
_LAYER = re.compile(r"(?:^|\.)(?:layers|h|blocks|layer)\.(\d+)\.")
_SUFFIX = {
    "q_proj": "q",
    "k_proj": "k",
    "v_proj": "v",
    "o_proj": "o",
    "gate_proj": "gate",
    "up_proj": "up",
    "down_proj": "down",
    "w1": "gate",
    "w3": "up",
    "w2": "down",
}
#: the names of an input embedding and of an output head across Llama/Qwen/Mistral, GPT-2 and BLOOM-style models
INPUT_EMBEDDINGS: tuple[str, ...] = ("embed_tokens", "wte", "word_embeddings")
OUTPUT_HEADS: tuple[str, ...] = ("lm_head", "embed_out")
_INPUT = re.compile(rf"({'|'.join(INPUT_EMBEDDINGS)})\.weight$")
_EMBED = re.compile(rf"({'|'.join(INPUT_EMBEDDINGS + OUTPUT_HEADS)})\.weight$")


def layer_of(name: str) -> int | None:
    m = _LAYER.search(name)
    return int(m.group(1)) if m else None


def module_of(name: str) -> str | None:
    """Module type ('q', ..., 'down') or None for norms, embeddings and anything else."""
    for part in reversed(name.split(".")[:-1]):
        if part in _SUFFIX:
            return _SUFFIX[part]
    return None


def is_embedding(name: str) -> bool:
    """Input embedding or output head: rows of tokens absent from the data get zero gradient."""
    return bool(_EMBED.search(name))


def is_input_embedding(name: str) -> bool:
    """The input embedding alone (its rows are the token ids the model accepts), not an output head."""
    return bool(_INPUT.search(name))


def num_layers(names: list[str]) -> int:
    layers = [layer_of(n) for n in names]
    return max((n for n in layers if n is not None), default=-1) + 1


def cells(names: list[str]) -> dict[tuple[int, str], list[str]]:
    """(layer, module) -> tensor names in it, for every tensor that belongs to a grid cell."""
    out: dict[tuple[int, str], list[str]] = {}
    for n in names:
        layer, module = layer_of(n), module_of(n)
        if layer is not None and module is not None:
            out.setdefault((layer, module), []).append(n)
    return out

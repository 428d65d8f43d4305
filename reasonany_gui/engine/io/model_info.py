"""What a model is, in the numbers the app, the estimate and the report show (ModelInfo), and whether a trio's
configs fit together. Split from checkpoints.py, which reads the tensors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.errors import InputError
from .checkpoints import Checkpoint
from .resolve import resolve_model


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    architecture: str
    model_type: str
    num_params: int
    dtype: str
    size_bytes: int
    num_layers: int
    hidden_size: int
    vocab_size: int
    tied_embeddings: bool
    intermediate_size: int = 0  # MLP width (0 when the config does not say); for the activation estimate
    notes: tuple[str, ...] = ()  # Checkpoint.notes: what the report should say about this model


def info_of(ckpt: Checkpoint) -> ModelInfo:
    c = ckpt.config
    archs = c.get("architectures") or ["?"]
    text = c.get("text_config") or {}

    def get(key: str) -> int:
        value = c.get(key, text.get(key, 0)) or 0
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InputError(
                f"{ckpt.path / 'config.json'}: {key} = {value!r} must be a whole number. "
                "Re-download the model or fix its config.json."
            )
        return value

    return ModelInfo(
        path=ckpt.path,
        architecture=str(archs[0] if isinstance(archs, list) else archs),
        model_type=str(c.get("model_type", "?")),
        num_params=ckpt.num_params,
        dtype=ckpt.storage_dtype,
        size_bytes=ckpt.size_bytes,
        num_layers=get("num_hidden_layers"),
        hidden_size=get("hidden_size"),
        vocab_size=get("vocab_size"),
        tied_embeddings=ckpt.tied_embeddings,
        intermediate_size=get("intermediate_size"),
        notes=tuple(ckpt.notes),
    )


def describe_model(spec: str, allow_pickle: bool = False, allow_download: bool = False) -> ModelInfo:
    """What a model is (for the GUI's pickers): raises InputError when it is not a usable model."""
    return info_of(Checkpoint(resolve_model(spec, allow_download, allow_pickle), allow_pickle=allow_pickle))


def trio_problems(infos: dict[str, ModelInfo]) -> list[str]:
    """Config-level mismatches between base, reasoning and domain, in plain words ([] when they fit)."""
    base = infos.get("base")
    problems: list[str] = []
    if base is None:
        return problems
    fields = (
        ("architecture", "architecture"),
        ("num_layers", "number of layers"),
        ("hidden_size", "hidden size"),
        ("vocab_size", "vocabulary size"),
        ("tied_embeddings", "tied input/output embeddings"),
    )
    for role in ("reasoning", "domain"):
        other = infos.get(role)
        if other is None:
            continue
        for attr, label in fields:
            a, b = getattr(base, attr), getattr(other, attr)
            if a != b:
                problems.append(
                    f"The {role} model's {label} ({b}) differs from the base model's ({a}): it was not fine-tuned from "
                    "this base, so the two cannot be merged. Pick a model fine-tuned from the same base."
                )
    return problems

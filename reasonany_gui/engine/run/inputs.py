"""The run's inputs, checked before anything is computed: the three models, the tokenizer source, the data.

Why a module of its own: each check turns a low-level failure into a message that names the input at fault
("The domain model: ..."); the pipeline's check stage only runs them in order."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..core.errors import InputError
from ..core.events import CancelToken
from ..data import calibration
from ..data.samples import load_samples
from ..io.checkpoints import Checkpoint
from ..io.resolve import resolve_model
from ..io.trio import check_trio
from ..settings.config import ROLES, MergeConfig


def open_models(cfg: MergeConfig, cancel: CancelToken, warn: Callable[[str], None]) -> dict[str, Checkpoint]:
    """Resolve and open base, reasoning and domain (downloading only if allowed) and check that they fit."""
    ckpts: dict[str, Checkpoint] = {}
    for role in ROLES:
        cancel.check()
        try:
            path = resolve_model(getattr(cfg, role), cfg.allow_download, cfg.allow_pickle)
            ckpts[role] = Checkpoint(path, allow_pickle=cfg.allow_pickle)
        except InputError as exc:
            raise InputError(f"The {role} model: {exc}") from None
        for note in ckpts[role].notes:
            warn(f"The {role} model: {note}")
        for f in ckpts[role].ignored_files:
            warn(
                f"The {role} model: {f} is not read: the folder has no index, and transformers loads "
                "model.safetensors alone."
            )
    check_trio(ckpts)
    return ckpts


def check_tokenizer_source(cfg: MergeConfig, ckpts: dict[str, Checkpoint]) -> None:
    """The tokenizer source's tokenizer loads and covers the base's embedding (scoring and the output need it)."""
    try:  # missing files used to be blamed on the data
        calibration.check_tokenizer(ckpts[cfg.tokenizer_source].path, ckpts["base"].embedding_rows)
    except InputError as exc:
        raise InputError(
            f"The tokenizer source (the {cfg.tokenizer_source} model): {exc} Pick another "
            "tokenizer source (--tokenizer-source), or copy the tokenizer files into that "
            "folder."
        ) from None


def check_data(cfg: MergeConfig) -> None:
    """Both calibration data sets can be read: reported now, before any model is loaded."""
    for role, spec in (("reasoning", cfg.reasoning_data), ("domain", cfg.domain_data)):
        try:
            load_samples(spec)
        except InputError as exc:
            raise InputError(f"The {role} calibration data: {exc}") from None


def prepare_data(
    cfg: MergeConfig, roles: list[str], tokenizer_dir: Path, cancel: CancelToken, warn: Callable[[str], None]
) -> dict[str, calibration.CalibrationSet]:
    """The calibration sets of `roles` ("reasoning", "domain"), tokenized by the tokenizer source; the tokenizer
    is loaded only when a set is missing."""
    out: dict[str, calibration.CalibrationSet] = {}
    tokenizer = calibration.load_tokenizer(tokenizer_dir) if roles else None
    for role in roles:
        spec = cfg.reasoning_data if role == "reasoning" else cfg.domain_data
        cs = calibration.prepare(
            spec, tokenizer, cfg.samples, cfg.max_length, cfg.seed, cfg.response_only, cancel=cancel
        )
        for w in cs.warnings:
            warn(w)
        out[role] = cs
    return out


def renamed_note(renamed: dict[int, str], source: str) -> str | None:
    """Plain words for the token ids whose rows come whole from the tokenizer source (io.tokens), or None."""
    if not renamed:
        return None
    shown = ", ".join(list(renamed.values())[:4])
    more = f" and {len(renamed) - 4} more" if len(renamed) > 4 else ""
    return (
        f"The {source} model's tokenizer gives {len(renamed)} token id(s) a meaning the base does not have "
        f"({shown}{more}): their embedding and output rows are taken from the {source} model whole."
    )

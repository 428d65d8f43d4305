"""The output folder's size and the words for a write that failed for lack of space.

Why a module of its own: the run refuses a too small disk before hours of identification and explains a full
disk after a failed write with the same numbers; both come from here."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import torch

from ..core.errors import WriteError
from .checkpoints import Checkpoint
from .writer import TMP_MARK, existing_parent, human_bytes


def out_dtype_for(setting: str, base_dtype: str) -> torch.dtype:
    """The saved weights' dtype for the `dtype` setting ("auto": the base's own float type, else float32).

    Public: the live merge of the tuner and the evaluation stores its weights the way the saved model will."""
    name = base_dtype if setting == "auto" else setting
    return getattr(torch, name) if name in ("float32", "float16", "bfloat16") else torch.float32


def output_sizes(base: Checkpoint, out_dtype: torch.dtype) -> list[tuple[str, int]]:
    """(tensor name, bytes written) for every tensor of the base, floats in `out_dtype`, the rest as stored."""
    sizes = []
    for n in base.names:
        meta = base.tensors[n]
        item = out_dtype.itemsize if meta.is_float else getattr(torch, meta.dtype).itemsize
        sizes.append((n, meta.numel * item))
    return sizes


def bytes_needed(sizes: list[tuple[str, int]], with_masks: bool) -> int:
    """The output's bytes: the weights, plus an eighth of them for the masks of a scored method (bit-packed)."""
    weights = sum(s for _, s in sizes)
    return weights + (weights // 8 if with_masks else 0)


def with_space(exc: WriteError, final: Path, needed: int) -> WriteError:
    """`exc` naming the output folder the user chose (not the temporary one), with the space needed and free."""
    try:
        free = human_bytes(shutil.disk_usage(existing_parent(final)).free)
    except OSError:
        free = "unknown"
    # the temporary folder is gone: name the file under the output folder the user chose
    temp = re.escape(str(final.parent / f".{final.name}{TMP_MARK}")) + r"[\w-]+"
    message = re.sub(temp, lambda _m: str(final), str(exc))
    return WriteError(
        f"{message} The output needs about {human_bytes(needed)}; {free} free now. Nothing was "
        "written and the input models are untouched."
    )

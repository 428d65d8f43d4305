"""NaN and infinite weights, found before any gradient: streamed tensor by tensor, each model once per process.

Why in the check: a NaN weight makes every gradient NaN (the scores then look like a precision problem), and the
baselines would silently write NaN/Inf into the merge."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

import numpy as np
import torch

from ..core.errors import InputError
from ..core.events import CancelToken
from .checkpoints import Checkpoint

_FINITE_CHECKED: dict[tuple[str, str], list[str]] = {}  # (folder, fingerprint) -> non-finite tensors found
FINITE_CHUNK = 1 << 24  # elements per isfinite() call: bounds the temporary bool buffer for huge embeddings


def nonfinite_tensors(
    ckpt: Checkpoint, cancel: CancelToken | None = None, progress: Callable[[float, str], None] | None = None
) -> list[str]:
    """Names of the float tensors holding NaN or ±Inf, streamed tensor by tensor (each model once per process).

    Why in the check: a NaN weight makes every gradient NaN (the scores then look like a precision problem),
    and the baselines would silently write NaN/Inf into the merge."""
    memo = (str(ckpt.path), ckpt.fingerprint())
    if memo in _FINITE_CHECKED:
        return list(_FINITE_CHECKED[memo])
    bad: list[str] = []
    # file by file, so that one file's memory map is open at a time
    names = sorted((n for n in ckpt.names if ckpt.tensors[n].is_float), key=lambda n: (ckpt.tensors[n].file, n))
    total = max(sum(ckpt.tensors[n].numel for n in names), 1)
    done = 0
    last_file = None
    for name in names:
        if cancel is not None:
            cancel.check()
        meta = ckpt.tensors[name]
        if last_file is not None and meta.file != last_file:
            ckpt.release_maps()
        last_file = meta.file
        flat = ckpt.get(name).reshape(-1)
        for i in range(0, flat.numel(), FINITE_CHUNK):
            if not all_finite(flat[i : i + FINITE_CHUNK]):
                bad.append(name)
                break
        done += meta.numel
        if progress is not None:
            progress(done / total, name)
    ckpt.release_maps()
    _FINITE_CHECKED[memo] = list(bad)
    return bad


def all_finite(chunk: torch.Tensor) -> bool:
    """True when no element is NaN or ±Inf. A float32 sum is NaN/Inf when any term is (one fast pass, no
    temporary); bfloat16 is read as float32 pairs, twice (offset 0 and 2 bytes), so that every element is once
    the high half, whose bits are a float32's sign, exponent and top mantissa: finite exactly when it is.
    (CPU bfloat16 arithmetic is 10x slower.) A sum that overflows is rechecked element by element."""
    n = chunk.numel()
    if chunk.dtype == torch.bfloat16 and sys.byteorder == "little" and n >= 3:
        a = chunk.contiguous().view(torch.int16).numpy()
        hi = np.frombuffer(a, dtype=np.float32, count=n // 2)  # elements 1, 3, 5, ...
        lo = np.frombuffer(a, dtype=np.float32, offset=2, count=(n - 1) // 2)  # elements 2, 4, 6, ...
        with np.errstate(all="ignore"):
            if (int(a[0]) & 0x7F80) != 0x7F80 and np.isfinite(hi.sum()) and np.isfinite(lo.sum()):
                return True
    elif chunk.dtype in (torch.float32, torch.float64) and math.isfinite(float(chunk.sum())):
        return True
    return bool(torch.isfinite(chunk).all())


def check_finite(
    ckpts: dict[str, Checkpoint],
    cancel: CancelToken | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> None:
    """InputError naming the model and its tensors when any weight of the trio is NaN or infinite."""
    roles = list(ckpts)
    for i, role in enumerate(roles):

        def step(fraction: float, name: str, i: int = i, role: str = role) -> None:
            if progress is not None:
                progress((i + fraction) / len(roles), f"checking the {role} model's weights: {name}")

        bad = nonfinite_tensors(ckpts[role], cancel, step)
        if bad:
            raise InputError(
                f"The {role} model {ckpts[role].path} has weights that are NaN or infinite, in {len(bad)} tensor(s): "
                f"{', '.join(bad[:5])}{' …' if len(bad) > 5 else ''}. The checkpoint is damaged (or was saved from "
                "a diverged training run): download it again or use another checkpoint."
            )

"""Do base, reasoning and domain fit together? Every mismatch of the trio, in one message, before heavy work.

Why strict: every later stage assumes the three models share names and shapes, so all mismatches are found and
reported here at once; a model given in two roles is merged but warned about."""

from __future__ import annotations

from ..core.errors import InputError
from .checkpoints import Checkpoint
from .model_info import info_of, trio_problems


def same_model_warnings(ckpts: dict[str, Checkpoint]) -> list[str]:
    """Warnings for a model given in two roles (same folder or same weights): the merge would add nothing."""
    prints = {r: (c.path.resolve(), c.fingerprint()) for r, c in ckpts.items()}
    out = []
    for a, b in (("base", "reasoning"), ("base", "domain"), ("reasoning", "domain")):
        if a in prints and b in prints and (prints[a][0] == prints[b][0] or prints[a][1] == prints[b][1]):
            what = (
                f"the {b} task vector is zero, so the merge takes nothing from it"
                if a == "base"
                else "both skills come from one model and its task vector is added twice"
            )
            out.append(
                f"The {a} and {b} models are the same weights ({ckpts[b].path}): {what}. Check the models you picked."
            )
    return out


def tensor_problems(ckpts: dict[str, Checkpoint], limit: int = 8) -> list[str]:
    """Tensor-level mismatches (names, shapes) of reasoning and domain against the base."""
    base = ckpts["base"]
    problems: list[str] = []
    for role in ("reasoning", "domain"):
        other = ckpts[role]
        missing = sorted(set(base.tensors) - set(other.tensors))
        extra = sorted(set(other.tensors) - set(base.tensors))
        if missing:
            problems.append(f"The {role} model lacks {len(missing)} tensor(s) of the base: {_few(missing, limit)}.")
        if extra:
            problems.append(f"The {role} model has {len(extra)} tensor(s) the base lacks: {_few(extra, limit)}.")
        shapes = [
            f"{n} {other.tensors[n].shape} vs {base.tensors[n].shape}"
            for n in base.names
            if n in other.tensors and other.tensors[n].shape != base.tensors[n].shape
        ]
        if shapes:
            problems.append(f"The {role} model has {len(shapes)} tensor(s) shaped differently: {_few(shapes, limit)}.")
    return problems


def check_trio(ckpts: dict[str, Checkpoint]) -> None:
    """Raise one InputError listing every mismatch (config and tensors) of the trio."""
    problems = trio_problems({r: info_of(c) for r, c in ckpts.items()})
    problems += tensor_problems(ckpts)
    if problems:
        raise InputError("The three models do not fit together:\n  - " + "\n  - ".join(dict.fromkeys(problems)))


def _few(items: list[str], limit: int) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" … (+{len(items) - limit} more)" if len(items) > limit else "")

"""Importance scores: per-element mean over samples of |g| (gradient), |θ⊙g| (snip) or g² (fisher).

Why hooks: a per-parameter `register_post_accumulate_grad_hook` adds each gradient into a float32
accumulator the moment it is complete and frees it at once, so full-model gradients never coexist and
device memory stays at weights + 4 B/param (+ activations); with host accumulators, weights + one
gradient. Batch of one, no padding: the loss is the mean next-token cross-entropy over the sample's
real (labelled) tokens, and the absolute value is taken per sample before summing (ALGORITHM.md §2).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from . import layout
from .errors import OutOfMemoryError
from .events import CancelToken, SensitivityUpdate

SCORE_KINDS = ("gradient", "snip", "fisher")


@dataclass
class PassResult:
    scores: dict[str, torch.Tensor]  # checkpoint tensor name -> float32 mean score (same shape)
    samples: int
    tokens: int
    seconds: float
    backward_passes: int


def parameter_names(model, ckpt_names: set[str]) -> dict[str, torch.nn.Parameter]:
    """Checkpoint name -> the model's Parameter, each tied Parameter once (under its stored name).

    Why via state_dict(keep_vars=True): tied weights appear there under every name, so the name the
    checkpoint uses can be found, and the same Parameter is scored once.
    """
    by_id: dict[int, tuple[list[str], torch.nn.Parameter]] = {}
    for name, value in model.state_dict(keep_vars=True).items():
        if isinstance(value, torch.nn.Parameter) and value.is_floating_point():
            by_id.setdefault(id(value), ([], value))[0].append(name)
    prefix = getattr(model, "base_model_prefix", "") + "."
    out: dict[str, torch.nn.Parameter] = {}
    for names, param in by_id.values():
        candidates = names + [n.removeprefix(prefix) for n in names] + [prefix + n for n in names]
        stored = next((c for c in sorted(candidates) if c in ckpt_names), None)
        if stored is not None:
            out[stored] = param
    return out


def _contribution(kind: str, p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """This sample's score term, computed in place where that is exact, to keep peak memory low.

    The gradient is discarded right after, so `gradient` reuses its storage (|g| in the storage dtype is exact,
    and the float32 accumulator's add promotes exactly): no temporary at all. `snip` and `fisher` need the
    product in float32 (a bfloat16 product would round), so they make one float32 copy and work in it.
    """
    if kind == "gradient":
        return g.abs_()
    if kind == "snip":
        return g.float().mul_(p.detach()).abs_()
    if kind == "fisher":
        return g.float().square_()
    raise ValueError(f"unknown score kind {kind!r}")


def score_pass(
    model: torch.nn.Module,
    params: dict[str, torch.nn.Parameter],
    samples: list,
    kind: str,
    accumulate_on: torch.device,
    pass_id: str,
    model_role: str,
    data_role: str,
    listener: Callable[[object], None],
    cancel: CancelToken,
    on_sample: Callable[[int, int], None] | None = None,
    stats_interval_s: float = 0.25,
) -> PassResult:
    """One identification pass (one model, one data set). Sets per-thread CUDA/grad state itself."""
    device = next(model.parameters()).device
    if device.type == "cuda":
        torch.cuda.set_device(device)
    accs = {n: torch.zeros(p.shape, dtype=torch.float32, device=accumulate_on) for n, p in params.items()}
    for p in model.parameters():
        p.requires_grad_(False)
    handles = []
    for name, p in params.items():
        p.requires_grad_(True)
        handles.append(p.register_post_accumulate_grad_hook(_make_hook(kind, accs[name])))
    grid = _GridStats(list(params), accumulate_on)
    start = time.perf_counter()
    last_emit = 0.0
    tokens = 0
    n = len(samples)
    backward = 0
    _set_mode(model)
    try:
        with torch.enable_grad(), torch.autocast(device.type, enabled=False):
            for i, s in enumerate(samples):
                cancel.check()
                ids = s.input_ids.to(device)
                labels = s.labels.to(device)
                loss = model(input_ids=ids, labels=labels, use_cache=False).loss
                loss.backward()
                backward += 1
                tokens += int((labels[:, 1:] != -100).sum())
                if on_sample is not None:
                    on_sample(i + 1, n)
                now = time.perf_counter()
                if now - last_emit >= stats_interval_s or i + 1 == n:
                    last_emit = now
                    listener(SensitivityUpdate(pass_id, model_role, data_role, i + 1, n, layout.MODULES,
                                               grid.compute(accs, i + 1)))
    except torch.cuda.OutOfMemoryError:
        raise OutOfMemoryError(
            "The GPU ran out of memory while computing importance scores. Keep the score accumulators in host "
            "memory, turn on gradient checkpointing, use a shorter maximum length or fewer samples.",
            suggestions={"accumulators": "host", "gradient_checkpointing": True},
        ) from None
    finally:
        for h in handles:
            h.remove()
        for p in model.parameters():
            p.grad = None
            p.requires_grad_(False)
    for acc in accs.values():
        acc.div_(max(n, 1))
    return PassResult(accs, n, tokens, time.perf_counter() - start, backward)


def enable_checkpointing(model: torch.nn.Module) -> None:
    """Activation (gradient) checkpointing under the name this transformers version uses (5.x renamed it)."""
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False


def is_checkpointing(model: torch.nn.Module) -> bool:
    if hasattr(type(model), "is_activation_checkpointing"):
        return bool(model.is_activation_checkpointing)
    return bool(getattr(model, "is_gradient_checkpointing", False))


def _set_mode(model: torch.nn.Module) -> None:
    """Eval mode (no dropout), except that transformers only checkpoints activations in train mode: then
    train mode with every dropout module switched back to eval, so scores stay deterministic."""
    if is_checkpointing(model):
        model.train()
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.eval()
    else:
        model.eval()


def _make_hook(kind: str, acc: torch.Tensor):
    def hook(p: torch.Tensor) -> None:
        g = p.grad
        if g is not None:
            acc.add_(_contribution(kind, p, g).to(acc.device))  # host accumulators: copies storage-dtype bytes
        p.grad = None  # free at once: full gradients never coexist

    return hook


class _GridStats:
    """Mean score per (layer, module type), computed on the accumulators' device, copied as a tiny array."""

    def __init__(self, names: list[str], device: torch.device) -> None:
        self.cells = layout.cells(names)
        self.layers = layout.num_layers(names)

    def compute(self, accs: dict[str, torch.Tensor], n: int) -> np.ndarray:
        grid = np.full((max(self.layers, 0), len(layout.MODULES)), np.nan)
        if not self.cells:
            return grid
        keys = list(self.cells)
        sums = torch.stack([sum(accs[t].sum() for t in self.cells[k]) for k in keys]).double().cpu().numpy()
        counts = [sum(accs[t].numel() for t in self.cells[k]) for k in keys]
        for (layer, module), s, c in zip(keys, sums, counts):
            grid[layer, layout.MODULES.index(module)] = s / c / max(n, 1)
        return grid

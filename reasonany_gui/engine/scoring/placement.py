"""A model larger than one card: load it for scoring across several devices with accelerate's device map.

Why accelerate's machinery: `infer_auto_device_map` already knows which modules must not be split
(`_no_split_modules`: a decoder layer stays on one device, so its residual adds never cross devices) and
transformers' `from_pretrained(device_map=...)` places each tensor as it is read and moves activations between
devices with accelerate's hooks. What it does not know is that identification needs more than the weights:
the float32 accumulators (4 B/param, on each parameter's own device, so the hook's add never crosses a bus)
and one gradient at a time. `scoring_max_memory` shrinks each device's budget so that weights + accumulators
fit, and `split_plan` is the same arithmetic as a pure function for the estimate and the pre-flight check.

The pure functions here need no GPU and are what CI tests; on CPU an explicit split map exercises the
hooks-and-accumulators path end to end (tests/test_distributed.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

#: bytes per parameter of the float32 accumulator that sits next to each weight during scoring
ACC_BYTES = 4
#: kept free on every device for activations, the CUDA context and allocator slack (scaled by the caller's
#: activation estimate when it has one)
DEFAULT_RESERVE_BYTES = 2 << 30


@dataclass(frozen=True)
class SplitPlan:
    """Whether one model's identification fits across `devices`, and the bytes each would hold."""

    fits: bool
    per_device: dict[str, int]  # weights + accumulators placed on each device (a proportional fill)
    needed: int  # all of it, plus the reserve on every device used
    available: int  # Σ usable bytes over the devices
    message: str


def bytes_per_param(dtype_bytes: int, accumulators_on_device: bool = True) -> int:
    """Device bytes one parameter costs while it is scored: its weight, plus its accumulator when on the device."""
    return dtype_bytes + (ACC_BYTES if accumulators_on_device else 0)


def scoring_max_memory(
    free: Mapping[str, int],
    dtype_bytes: int,
    accumulators_on_device: bool = True,
    reserve_bytes: int = DEFAULT_RESERVE_BYTES,
) -> dict[str, int]:
    """accelerate `max_memory` that leaves room for the accumulators: accelerate sizes the map by weight bytes
    only, so each device's budget is its free memory less the reserve, times weight/(weight + accumulator)."""
    per = bytes_per_param(dtype_bytes, accumulators_on_device)
    return {d: max(int((f - reserve_bytes) * dtype_bytes / per), 0) for d, f in free.items()}


def split_plan(
    num_params: int,
    dtype_bytes: int,
    free: Mapping[str, int],
    largest_block_params: int = 0,
    accumulators_on_device: bool = True,
    reserve_bytes: int = DEFAULT_RESERVE_BYTES,
) -> SplitPlan:
    """Does one model fit across these devices for scoring? (pure arithmetic: the estimate and the pre-flight)

    A fill in device order (what accelerate's map does, up to block boundaries): each device takes what its
    free memory less the reserve allows. `largest_block_params` (one decoder layer, or the embedding) must fit
    on a single device, since blocks are never split."""
    per = bytes_per_param(dtype_bytes, accumulators_on_device)
    usable = {d: max(f - reserve_bytes, 0) for d, f in free.items()}
    left = num_params * per
    placed: dict[str, int] = {}
    for d, room in usable.items():
        if left <= 0:
            break
        take = min(room, left)
        placed[d] = take
        left -= take
    block = largest_block_params * per
    block_ok = not largest_block_params or any(room >= block for room in usable.values())
    used = [d for d, b in placed.items() if b > 0]
    needed = num_params * per + reserve_bytes * max(len(used), 1)
    available = sum(usable.values())
    fits = left <= 0 and block_ok
    gb = 1e9
    if fits:
        message = (
            f"{num_params / 1e9:.1f} B parameters at {per} B each ({num_params * per / gb:.0f} GB with the "
            f"accumulators) fit across {len(used)} device(s): "
            + ", ".join(f"{d} {b / gb:.0f} GB" for d, b in placed.items() if b > 0)
            + "."
        )
    elif not block_ok:
        message = (
            f"One block of {largest_block_params / 1e6:.0f} M parameters ({block / gb:.1f} GB) fits on none "
            "of the devices: blocks are never split across devices."
        )
    else:
        message = (
            f"{num_params / 1e9:.1f} B parameters need {num_params * per / gb:.0f} GB of device memory with the "
            f"accumulators; the {len(usable)} device(s) have {available / gb:.0f} GB usable. Add devices, keep "
            "the accumulators in host memory, or compute in bfloat16."
        )
    return SplitPlan(fits, placed, needed, available, message)


def infer_device_map(
    path: Path,
    dtype: torch.dtype,
    devices: list[str],
    free: Mapping[str, int] | None = None,
    accumulators_on_device: bool = True,
    reserve_bytes: int = DEFAULT_RESERVE_BYTES,
) -> dict[str, str | int]:
    """accelerate's device map for scoring the model at `path` across `devices` (no weights are read).

    The model is built on the meta device from its config, and `infer_auto_device_map` places whole
    no-split blocks in device order within `scoring_max_memory`."""
    try:
        from accelerate import infer_auto_device_map, init_empty_weights
    except ImportError as exc:
        from ..core.errors import InputError, missing_library_message

        raise InputError(missing_library_message(exc, "splitting a model over several devices")) from None
    from transformers import AutoConfig, AutoModelForCausalLM

    if free is None:
        free = {d: _free_bytes(d) for d in devices}
    budget = scoring_max_memory({d: free[d] for d in devices}, _itemsize(dtype), accumulators_on_device, reserve_bytes)
    config = AutoConfig.from_pretrained(str(path), trust_remote_code=False)
    with init_empty_weights():
        empty = AutoModelForCausalLM.from_config(config, trust_remote_code=False)
    max_memory = {_accelerate_key(d): b for d, b in budget.items()}
    device_map = infer_auto_device_map(
        empty,
        max_memory=max_memory,
        dtype=dtype,
        no_split_module_classes=list(getattr(empty, "_no_split_modules", None) or []),
    )
    leftover = sorted({str(v) for v in device_map.values()} - {str(_accelerate_key(d)) for d in devices})
    if leftover:  # accelerate spills to "cpu"/"disk" when the devices are too small: refuse instead
        from ..core.errors import OutOfMemoryError

        raise OutOfMemoryError(
            f"The model does not fit across {', '.join(devices)} for scoring (weights plus float32 score "
            f"accumulators); part of it would go to {', '.join(leftover)}. Use more GPUs, keep the accumulators in "
            "host memory (--accumulators host), or compute in bfloat16.",
            {"accumulators": "host"},
        )
    return device_map


def load_split(
    path: Path,
    dtype: torch.dtype,
    devices: list[str],
    allow_pickle: bool = False,
    device_map: Mapping[str, str | int] | None = None,
    accumulators_on_device: bool = True,
) -> Any:
    """The model for scoring, spread over `devices` by `device_map` (inferred when not given)."""
    from ..io.loading import load_model

    if device_map is None:
        device_map = infer_device_map(path, dtype, devices, accumulators_on_device=accumulators_on_device)
    return load_model(path, dtype, devices[0], allow_pickle=allow_pickle, device_map=dict(device_map))


def is_split(model: torch.nn.Module) -> bool:
    """Whether the model's parameters live on more than one device (accelerate then moves the activations
    between them with its hooks). An explicit map that names only one device (the CPU tests) is not split:
    transformers then loads it as a plain model."""
    return len({p.device for p in model.parameters()}) > 1


def accumulate_on(params: Mapping[str, torch.nn.Parameter], setting: str) -> dict[str, torch.device]:
    """Each accumulator on its parameter's own device (no add crosses a bus), or all on the host with
    `accumulators = host`."""
    if setting == "host":
        return {n: torch.device("cpu") for n in params}
    return {n: p.device for n, p in params.items()}


def describe(acc_on: torch.device | Mapping[str, torch.device]) -> str:
    """A short text for the report: one device, or the devices of a split model with their tensor counts."""
    if not isinstance(acc_on, Mapping):
        return str(acc_on)
    counts: dict[str, int] = {}
    for d in acc_on.values():
        counts[str(d)] = counts.get(str(d), 0) + 1
    return ", ".join(f"{d} ({n} tensors)" for d, n in counts.items())


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def _accelerate_key(device: str) -> str | int:
    """accelerate names GPUs by index and the CPU as "cpu"."""
    return int(device.split(":")[1]) if device.startswith("cuda:") else device


def _free_bytes(device: str) -> int:
    from ..core.devices import free_device_bytes

    return free_device_bytes(torch.device(device))

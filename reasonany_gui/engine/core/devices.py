"""Compute devices: what is there (for the GUI's list) and what a setting like 'auto' or 'cuda:1' means."""

from __future__ import annotations

from dataclasses import dataclass

import psutil
import torch

from .errors import InputError


@dataclass(frozen=True)
class DeviceInfo:
    id: str  # "cuda:0" | "cpu"
    label: str
    free_bytes: int | None
    total_bytes: int | None


def list_devices() -> list[DeviceInfo]:
    out = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            try:
                free, total = torch.cuda.mem_get_info(i)
            except Exception:
                free, total = None, None
            name = torch.cuda.get_device_name(i)
            gb = f", {free / 1e9:.1f} of {total / 1e9:.1f} GB free" if free is not None and total is not None else ""
            out.append(DeviceInfo(f"cuda:{i}", f"GPU {i}: {name}{gb}", free, total))
    vm = psutil.virtual_memory()
    out.append(DeviceInfo("cpu", f"CPU (slow; {vm.available / 1e9:.1f} GB RAM free)", vm.available, vm.total))
    return out


def resolve_device(spec: str) -> torch.device:
    """'auto' -> the first CUDA device if any, else CPU; a CUDA device that does not exist is an input error."""
    spec = str(spec or "auto")
    if spec == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        index = int(spec.split(":")[1]) if ":" in spec else 0
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if index >= count:
            have = f"this machine has {count} CUDA device(s)" if count else "this machine has no CUDA device"
            raise InputError(f"device = {spec!r} does not exist: {have}. Use --device cpu or auto.")
        return torch.device(f"cuda:{index}")
    raise InputError(f"device = {spec!r} is not valid: use auto, cpu or cuda:N.")


def compute_dtype(setting: str, device: torch.device) -> torch.dtype:
    """auto: bfloat16 on a CUDA device that supports it, float32 on the CPU (CPU bf16 matmuls are slow)."""
    if setting != "auto":
        return getattr(torch, setting)
    if device.type == "cuda" and bf16_native(device):
        return torch.bfloat16
    return torch.float32


def bf16_native(device: torch.device) -> bool:
    """True when `device` itself runs bfloat16 in hardware (compute capability 8.0+, or ROCm).

    Why not `torch.cuda.is_bf16_supported()`: it checks the *current* device, not the chosen one (cuda:1 in a
    box with an old cuda:0 and a new cuda:1), and by default counts emulation (a Turing or Volta card "supports"
    bfloat16 by converting, several times slower than float16 or float32 there). torch 2.13's
    `including_emulation=False` fixes the second but not the first, so the chosen device's properties are read.
    """
    if device.type != "cuda":
        return False
    if torch.version.hip:
        return True
    try:
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.cuda.get_device_properties(index).major >= 8
    except (RuntimeError, AssertionError, AttributeError):  # no driver, no such device
        return False


def free_device_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return psutil.virtual_memory().available

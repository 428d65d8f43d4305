"""Before a run: how much device memory, host memory, disk and time it will take, roughly.

Why: users start multi-hour runs on 15–60 GB models; the settings panel shows this before they press
Merge, and the numbers say which knob (host accumulators, gradient checkpointing, max length) to turn.
The memory terms follow the identification plan of DESIGN §3: weights + float32 accumulators (device or
host) + one gradient tensor at a time + activations of one sample (no padding, batch of one).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .checkpoints import ModelInfo
from .config import MergeConfig
from .devices import compute_dtype, resolve_device

#: rough sustained rates for forward+backward (FLOP/s): a CUDA workstation card in bf16, a desktop CPU in fp32
RATE = {"cuda": 1.5e14, "cpu": 1.0e11}
DISK_RATE = 400e6  # bytes/s read+write during the streamed merge


@dataclass
class Estimate:
    device_bytes: int
    host_bytes: int
    disk_bytes: int
    seconds: float
    notes: list[str] = field(default_factory=list)


def activation_bytes(info: ModelInfo, max_length: int, dtype_bytes: int, checkpointing: bool) -> int:
    """One sample's saved activations: ~1.08·(16·hidden + 4·intermediate) values per layer and token (measured
    on Qwen2 shapes, benchmarks/speed/RESULTS.md), plus the float32 logits, their log-softmax and gradient."""
    inter = info.intermediate_size or 4 * info.hidden_size
    per_layer = int(1.08 * (16 * info.hidden_size + 4 * inter)) * max_length * dtype_bytes
    layers = 2 if checkpointing else max(info.num_layers, 1)
    logits = max_length * info.vocab_size * 4 * 3
    return per_layer * layers + logits


def estimate_run(config: MergeConfig, info: ModelInfo) -> Estimate:
    try:
        device = resolve_device(config.device)
    except Exception:
        device = torch.device("cpu")
    dtype = compute_dtype(config.compute_dtype, device)
    p = info.num_params
    weights = p * dtype.itemsize
    acc_on_device = device.type == "cpu" or config.accumulators != "host"
    acc = 4 * p
    # the largest gradient (the embedding), plus the float32 copy snip/fisher make of it in the hook
    largest_grad = info.vocab_size * info.hidden_size * (dtype.itemsize + (0 if config.score == "gradient" else 4))
    act = activation_bytes(info, config.max_length, dtype.itemsize, config.gradient_checkpointing)
    notes: list[str] = []
    out_dtype_bytes = {"float32": 4, "float16": 2, "bfloat16": 2}.get(
        info.dtype if config.dtype == "auto" else config.dtype, 2)
    out_bytes = p * out_dtype_bytes
    passes = (4 if config.intersect else 2) if config.needs_scores else 0
    cache_bytes = passes * p * (2 if config.score_precision == "bfloat16" else 4)
    disk = out_bytes + (p // 4 if config.needs_scores else 0) + cache_bytes
    if device.type == "cuda":
        device_bytes = weights + (acc if acc_on_device else 0) + largest_grad + act
        host_bytes = (0 if acc_on_device else acc) + min(out_bytes, 5_000_000_000)
        if acc_on_device and config.accumulators == "auto":
            notes.append("Score accumulators go to host memory automatically if the GPU is too small.")
    else:
        device_bytes = 0
        host_bytes = weights + acc + largest_grad + act
    tokens = config.samples * config.max_length * 0.5  # calibration texts are usually shorter than max_length
    flops = 6 * p * tokens * passes * (1.33 if config.gradient_checkpointing else 1.0)
    seconds = flops / RATE[device.type] + 4 * info.size_bytes / DISK_RATE
    if config.needs_scores:
        from reasonany_gui.engine.writer import human_bytes  # one byte formatter for every message

        notes.append(f"The score cache takes about {human_bytes(cache_bytes)} (clear it from the menu).")
    return Estimate(int(device_bytes), int(host_bytes), int(disk), float(seconds), notes)

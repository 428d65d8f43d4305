"""One score map: load a model for scoring, run its pass(es) over the calibration samples, fill the cache entry.

Why a module of its own: the pipeline decides *which* maps to compute and keeps the run's record; how one map is
computed (the device for the accumulators, low-RAM groups, progress, out-of-memory advice) is this module's.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..core.devices import free_device_bytes
from ..core.errors import OutOfMemoryError
from ..core.events import CancelToken, Listener, Progress
from ..data.calibration import CalibrationSet
from ..io.checkpoints import Checkpoint
from ..io.loading import load_model
from ..io.scorecache import ScoreStore
from ..io.writer import human_bytes
from ..scoring import collectives, placement
from ..scoring.collectives import score_pass
from ..scoring.grouped_plot import GroupedPlot
from ..scoring.importance import enable_checkpointing, parameter_names, tensor_groups
from ..scoring.oom import oom_error
from ..settings.config import MergeConfig


@dataclass
class Scoring:
    """What a scoring pass needs from the run: its setting, device, cache, and where it reports."""

    cfg: MergeConfig
    device: torch.device
    store: ScoreStore
    listener: Listener
    cancel: CancelToken
    log: Callable[[str], None]
    #: the whole run's progress for a fraction of the current stage (the pipeline's stage plan)
    overall: Callable[[float], float]


@dataclass
class MapRecord:
    """One map's share of the run record: its backward passes, report.json's pass stats, peak device memory."""

    backward_passes: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    peak_device_bytes: int | None = None


def load_for_scoring(ctx: Scoring, ckpt: Checkpoint, role: str, dtype: torch.dtype) -> torch.nn.Module:
    """The model on the device (or split across the GPUs '+' joins), out-of-memory told as what to change."""
    cfg = ctx.cfg
    ctx.log(f"Loading the {role} model on {ctx.device} ({str(dtype).removeprefix('torch.')}).")
    ctx.cancel.check()
    group = collectives.rank_devices(cfg.devices)  # '+' joins GPUs that hold one model (placement.py)
    try:
        if len(group) > 1:
            model = placement.load_split(
                ckpt.path,
                dtype,
                group,
                allow_pickle=cfg.allow_pickle,
                accumulators_on_device=cfg.accumulators != "host",
            )
        else:
            model = load_model(ckpt.path, dtype, ctx.device, allow_pickle=cfg.allow_pickle)
    except torch.cuda.OutOfMemoryError:
        fewer = {"compute_dtype": "bfloat16"} if dtype == torch.float32 else {"device": "cpu"}
        raise OutOfMemoryError(
            f"The {role} model's weights do not fit in the memory of {ctx.device}. Compute in bfloat16, close "
            "other programs that use the GPU, or use the CPU (much slower).",
            fewer,
        ) from None
    if cfg.gradient_checkpointing:
        enable_checkpointing(model)
    return model


def accumulate_on(cfg: MergeConfig, device: torch.device, model: torch.nn.Module, num_params: int) -> torch.device:
    """Where the accumulators of one pass go; `num_params` is the pass's share (one group in low-RAM mode)."""
    if device.type == "cpu" or cfg.accumulators == "device":
        return device
    if cfg.accumulators == "host":
        return torch.device("cpu")
    return device if free_device_bytes(device) > 4 * num_params * 1.3 + 2e9 else torch.device("cpu")


def score_map(
    ctx: Scoring,
    model: torch.nn.Module,
    ckpt: Checkpoint,
    cs: CalibrationSet,
    map_id: str,
    key: str,
    roles: tuple[str, str],
    stage: str,
) -> MapRecord:
    """One score map under cache key `key`: one pass over the samples, or `score_groups` passes over groups of
    tensors (low-RAM mode), each group's maps written to the cache entry and its accumulators freed before the
    next pass. `roles`: (model role, data role)."""
    cfg, dev = ctx.cfg, ctx.device
    model_role, data_role = roles
    params = parameter_names(model, set(ckpt.tensors))
    groups = tensor_groups({n: p.numel() for n, p in params.items()}, cfg.score_groups)
    largest = max(sum(params[n].numel() for n in g) for g in groups)
    acc_on = (
        placement.accumulate_on(params, cfg.accumulators)
        if placement.is_split(model)
        else accumulate_on(cfg, dev, model, largest)
    )
    if len(groups) > 1:
        ctx.log(
            f"Low-RAM mode: the {model_role} model's {len(params)} tensors are scored in {len(groups)} "
            f"passes, at most {human_bytes(4 * largest)} of score sums at a time instead of "
            f"{human_bytes(4 * sum(p.numel() for p in params.values()))}."
        )
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    n_samples = len(cs.samples)
    done_before = 0  # samples of the finished groups (all ranks)

    def on_sample(i: int, n: int) -> None:
        done, todo = done_before + i, n * len(groups)
        eta = (time.perf_counter() - t0) / done * (todo - done)
        part = f", pass {done_before // max(n, 1) + 1}/{len(groups)}" if len(groups) > 1 else ""
        ctx.listener(Progress(stage, done / todo, ctx.overall(done / todo), f"sample {i}/{n}{part}", eta))

    plot = GroupedPlot(ctx.listener, len(groups), n_samples)
    meta: dict[str, Any] = {"map": map_id, "model": str(ckpt.path), "data": cs.spec, "score": cfg.score}
    meta.update(collectives.summation_order())  # what summed the scores: the report of every run that reuses them
    stats: dict[str, Any] = {"samples": 0, "tokens": 0, "seconds": 0.0}
    record = MapRecord()
    with contextlib.ExitStack() as stack:
        # rank 0 alone holds the reduced scores and writes them; the entry is renamed into place only when
        # every group is in (the block raising removes the half-written entry)
        sizes = {n: p.numel() for n, p in params.items()}
        entry = (
            stack.enter_context(ctx.store.writer(key, sizes, cfg.score_precision, meta))
            if collectives.is_writer()
            else None
        )
        for k, group in enumerate(groups):
            plot.group = k
            try:
                result = score_pass(
                    model,
                    {n: params[n] for n in group},
                    cs.samples,
                    cfg.score,
                    acc_on,
                    map_id,
                    model_role,
                    data_role,
                    plot,
                    ctx.cancel,
                    on_sample=on_sample,
                )
            except (torch.cuda.OutOfMemoryError, OutOfMemoryError):
                raise oom_error(cfg, f"scoring the {model_role} model on the {data_role} data") from None
            record.backward_passes += result.backward_passes
            stats = {"samples": result.samples, "tokens": result.tokens, "seconds": stats["seconds"] + result.seconds}
            ctx.cancel.check()
            if entry is not None:
                entry.add(result.scores)
            del result  # this group's float32 sums go before the next group's are made
            done_before += n_samples
        meta.update(stats)  # read when the entry is finished, at the end of the block
    if dev.type == "cuda":
        record.peak_device_bytes = int(torch.cuda.max_memory_allocated(dev))
    record.stats = {
        "samples": stats["samples"],
        "tokens": stats["tokens"],
        "seconds": round(stats["seconds"], 3),
        "tokens_per_second": round(stats["tokens"] / max(stats["seconds"], 1e-9), 1),
        "accumulators": placement.describe(acc_on),
    }
    if len(groups) > 1:
        record.stats["groups"] = len(groups)
    return record

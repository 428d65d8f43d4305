"""Before a run: how much device memory, host memory, disk and time it will take, roughly.

Why: users start multi-hour runs on 15–60 GB models; the settings panel shows this before they press
Merge, and the numbers say which knob (host accumulators, gradient checkpointing, max length) to turn.
The memory terms follow the identification plan of ALGORITHM.md §3: weights + float32 accumulators (device or
host) + one gradient tensor at a time + activations of one sample (no padding, batch of one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from ..core.devices import compute_dtype, resolve_device
from ..core.errors import InputError
from ..io.model_info import ModelInfo
from ..methods.registry import get_method
from ..settings.config import MergeConfig
from .importance import group_params_bound
from .placement import SplitPlan, split_plan
from .plan import needed_maps

#: rough sustained rates for forward+backward (FLOP/s): a CUDA workstation card in bf16, a desktop CPU in fp32
RATE = {"cuda": 1.5e14, "cpu": 1.0e11}
DISK_RATE = 400e6  # bytes/s read+write during the streamed merge


#: fixed cost of one calibration sample that FLOPs do not explain (Python, hooks, one small op per tensor):
#: (per sample, per tensor and sample) seconds. Measured on the demo trio and the speed benchmark, roughly.
SAMPLE_OVERHEAD = {"cuda": (0.03, 0.0003), "cpu": (0.05, 0.004)}
#: how far off the time estimate may be: (low, high) multipliers, without and with a measurement on this machine
SPREAD_UNMEASURED = (0.6, 3.0)
SPREAD_MEASURED = (0.8, 1.3)

#: host accumulators on a GPU run: the host's share per parameter and sample (ns), by bytes per contribution
#: element (4: float32 snip/fisher forms, 2: bfloat16/float16 |g|). The staged path's chunk adds, measured on one
#: thread of a shared AMD EPYC (bench_host_accumulate.py, RESULTS.md §6); the old synchronous path was ~3–6.6.
HOST_ADD_NS = {4: 0.35, 2: 0.9}
#: device -> pinned host copies, bytes/s (PCIe 4.0 x16 sustained; PCIe 3.0 is about half)
BUS_RATE = 20e9
#: selection: the radix select reads every map twice with a global scope (thresholds, then masks) and once with a
#: tensor scope, ns per parameter and map read, the read back of the just-written maps included (they are in the
#: page cache): 43.3 s for 8 reads of 213 M, and 46.9 s for 8 reads of 234 M (25 ns) on a busy 2-core Xeon, one
#: thread, bench_memory.py (RESULTS.md §6, §8). Not plus DISK_RATE: the measurement already holds the reads.
SELECT_NS_PER_READ = 24.0
#: host memory of each extra process of a several-device run, by device type: Python, torch and the engine
#: (336 MiB RSS measured after the imports), plus the CUDA context on a GPU (docs/SCALING.md)
PROCESS_HOST_BYTES = {"cuda": 2_500_000_000, "cpu": 400_000_000}


def largest_module_params(info: ModelInfo) -> int:
    """The largest module that tensor groups never cut (the embedding or output head, else an MLP matrix)."""
    inter = info.intermediate_size or 4 * info.hidden_size
    return max(info.vocab_size * info.hidden_size, inter * info.hidden_size)


def write_host_bytes(info: ModelInfo) -> int:
    """Host memory of the write stage, whatever the shard size: it streams each tensor to its shard file and
    unmaps the inputs after it (io.writer, run.pipeline). What stays resident is the selection's bit-packed masks
    (3 bits/param) and one tensor's merge temporaries (three float32 inputs, two task vectors, the result and a
    masked term: ~32 B/element of the largest tensor, by counting methods.merge_tensor's float32 tensors)."""
    return 3 * info.num_params // 8 + 32 * largest_module_params(info)


def largest_block_params(info: ModelInfo) -> int:
    """The largest block a device map never splits: one decoder layer (attention ≤ 4·h², MLP 3·h·I) or the
    embedding."""
    inter = info.intermediate_size or 4 * info.hidden_size
    return max(info.vocab_size * info.hidden_size, 4 * info.hidden_size**2 + 3 * info.hidden_size * inter)


def accumulated_params(config: MergeConfig, info: ModelInfo) -> int:
    """Parameters whose float32 sums exist at once: all of them, or the largest group of the low-RAM mode
    (importance.tensor_groups: at most P/G plus one module)."""
    return group_params_bound(info.num_params, config.score_groups, largest_module_params(info))


def accumulators_on_host(config: MergeConfig, info: ModelInfo, device: torch.device, free: int | None = None) -> bool:
    """Where the pipeline will put the score accumulators (its `auto` rule: the device only if 4 B per
    accumulated parameter × 1.3 + 2 GB is free there). `free`: the device's free bytes, asked when None."""
    if device.type == "cpu" or config.accumulators == "device":
        return False
    if config.accumulators == "host":
        return True
    try:
        if free is None:
            from ..core.devices import free_device_bytes

            free = free_device_bytes(device)
        return free <= 4 * accumulated_params(config, info) * 1.3 + 2e9
    except Exception:  # noqa: BLE001 - no driver: say device, as the settings do
        return False


def contribution_bytes(config: MergeConfig, dtype_bytes: int) -> int:
    """Bytes per element of one sample's score term as it crosses to host accumulators (importance._contribution)."""
    return dtype_bytes if config.score == "gradient" else 4


def host_seconds_per_sample(config: MergeConfig, num_params: int, dtype_bytes: int) -> float:
    """The host accumulators' floor per sample: the bus or the host adds, whichever is slower (they overlap)."""
    b = contribution_bytes(config, dtype_bytes)
    return max(num_params * b / BUS_RATE, num_params * HOST_ADD_NS.get(b, HOST_ADD_NS[4]) * 1e-9)


def load_transient_bytes(info: ModelInfo, device: torch.device, dtype_bytes: int) -> int:
    """Host memory a model load needs beyond the run: none when the weights go straight to the GPU
    (checkpoints.loads_straight_to), the whole model when it is loaded on the host first and then moved."""
    from ..io.loading import loads_straight_to

    if device.type == "cpu":
        return 0
    return 0 if loads_straight_to(device) else info.num_params * dtype_bytes


@dataclass
class Estimate:
    device_bytes: int
    host_bytes: int
    disk_bytes: int
    seconds: float
    notes: list[str] = field(default_factory=list)
    #: (low, high) seconds: the honest form of `seconds` (wide until this machine's speed was measured)
    seconds_range: tuple[float, float] = (0.0, 0.0)
    #: True when the time comes from a measured run on this machine (`speed_factor`), not from nominal rates
    measured: bool = False
    #: expected seconds per stage (stage_costs), in run order
    stage_seconds: dict[str, float] = field(default_factory=dict)
    #: host bytes of the float32 score sums at once, over all processes (0 with device accumulators)
    host_accumulator_bytes: int = 0
    #: processes of a several-device run (`devices`), 1 otherwise
    ranks: int = 1
    #: device -> bytes it holds while scoring, for every device a several-device run uses ({} otherwise)
    per_device: dict[str, int] = field(default_factory=dict)
    #: the fit of a model split across GPUs ('+' in `devices`), None otherwise
    split: SplitPlan | None = None


def activation_bytes(info: ModelInfo, max_length: int, dtype_bytes: int, checkpointing: bool) -> int:
    """One sample's saved activations: ~1.08·(16·hidden + 4·intermediate) values per layer and token (measured
    on Qwen2 shapes, benchmarks/speed/RESULTS.md), plus the float32 logits, their log-softmax and gradient."""
    inter = info.intermediate_size or 4 * info.hidden_size
    per_layer = int(1.08 * (16 * info.hidden_size + 4 * inter)) * max_length * dtype_bytes
    layers = 2 if checkpointing else max(info.num_layers, 1)
    logits = max_length * info.vocab_size * 4 * 3
    return per_layer * layers + logits


def stage_costs(
    config: MergeConfig,
    info: ModelInfo,
    device_type: str = "cpu",
    speed_factor: float | None = None,
    host_accumulators: bool | None = None,
    ranks: int = 1,
) -> dict[str, float]:
    """Expected seconds per stage of a merge, in run order, named as the pipeline names its stages.

    The identification passes dominate; each costs FLOPs at a nominal rate plus a fixed cost per sample and
    tensor, times `speed_factor` (measured seconds / predicted seconds of an earlier run on this machine). With
    host accumulators on a GPU a sample takes at least the bus transfer or the host adds of every parameter's
    score term (`host_seconds_per_sample`), whichever is slower: at 7B that, not the GPU, sets the pace.
    Selection reads the maps back (twice with a global scope); the write reads three models, does the method's
    arithmetic and writes one.

    Low-RAM mode (`score_groups` = G): every group repeats the forward and the backward through the layers, but
    only its own weight gradients are computed: (4·G + 2)·P FLOPs per token instead of 6·P, and G per-sample
    overheads; the host adds do not grow (each parameter is still added once per sample). `ranks` data-parallel
    processes divide the sample work; each still loads its model."""
    factor = float(speed_factor) if speed_factor else 1.0
    if host_accumulators is None:
        try:
            from ..core.devices import resolve_device

            host_accumulators = device_type == "cuda" and accumulators_on_host(
                config, info, resolve_device(config.device)
            )
        except Exception:  # noqa: BLE001 - a device that is not there: the settings show device accumulators
            host_accumulators = False
    dtype_bytes = 2 if device_type == "cuda" and config.compute_dtype in ("auto", "bfloat16", "float16") else 4
    p = info.num_params
    tokens = config.samples * config.max_length * 0.5  # calibration texts are usually shorter than max_length
    per_sample, per_tensor = SAMPLE_OVERHEAD.get(device_type, SAMPLE_OVERHEAD["cpu"])
    tensors = 12 * max(info.num_layers, 1) + 3
    load = info.size_bytes / DISK_RATE
    costs = {"check": 0.5 + 3 * 17 * 65536 / DISK_RATE}
    maps = needed_maps(config)
    if maps:
        groups = max(int(config.score_groups), 1)
        ranks = max(int(ranks), 1)
        flops = (4 * groups + 2) * p * tokens * (1.33 if config.gradient_checkpointing else 1.0)
        compute = flops / RATE.get(device_type, RATE["cpu"])
        if host_accumulators:  # overlapped with the backward: the slower of the two sets each sample's time
            compute = max(compute, config.samples * host_seconds_per_sample(config, p, dtype_bytes))
        overhead = config.samples * (groups * per_sample + per_tensor * tensors)
        one_pass = ((compute + overhead) / ranks + load) * factor
        for m in maps:
            costs[f"identify:{m}"] = one_pass
        reads = len(maps) * (2 if config.scope == "global" else 1)
        costs["select"] = 0.2 + reads * p * SELECT_NS_PER_READ * 1e-9
    out_bytes = p * {"float32": 4, "float16": 2, "bfloat16": 2}.get(
        info.dtype if config.dtype == "auto" else config.dtype, 2
    )
    costs["write"] = 0.3 + (3 * info.size_bytes + out_bytes) / DISK_RATE + p * get_method(config.method).merge_ns * 1e-9
    return costs


def speed_factor(report: dict[str, Any], info: ModelInfo, device_type: str) -> float | None:
    """measured / predicted identification time of a finished run (its report.json): how much slower or faster
    this machine is than the nominal rates. None when the run measured nothing."""
    try:
        cfg = MergeConfig.from_dict(dict(report["config"]))
        measured = sum(float(v) for k, v in (report.get("timings_seconds") or {}).items() if k.startswith("identify:"))
        predicted = sum(v for k, v in stage_costs(cfg, info, device_type).items() if k.startswith("identify:"))
    except Exception:  # noqa: BLE001 - an odd report just gives no calibration
        return None
    if measured <= 0 or predicted <= 0:
        return None
    return max(0.05, min(50.0, measured / predicted))


class RunClock:
    """The honest progress and time left of a run: stages weighted by their expected cost, corrected by what
    is measured while the run goes (a finished scoring pass tells how long the next ones take).

    Pure bookkeeping, no threads: the Run screen feeds it the pipeline's stage events and reads `fraction()`
    and `remaining()`."""

    def __init__(self, costs: dict[str, float]) -> None:
        self.costs = dict(costs)
        self.done: dict[str, float] = {}  # stage -> measured seconds
        self.current: str | None = None
        self.current_fraction = 0.0
        self.current_started = 0.0
        self._ratios: list[float] = []  # measured / expected of finished identification passes

    def start(self, stage: str, now: float) -> None:
        if stage not in self.costs:  # a stage the plan did not foresee (e.g. identify on a re-tune)
            self.costs[stage] = next((v for k, v in self.costs.items() if k.split(":")[0] == stage.split(":")[0]), 1.0)
        self.current, self.current_fraction, self.current_started = stage, 0.0, now

    def progress(self, stage: str, fraction: float, now: float) -> None:
        if stage != self.current:
            self.start(stage, now)
        self.current_fraction = max(0.0, min(1.0, float(fraction)))

    def finish(self, stage: str, seconds: float) -> None:
        expected = self.costs.get(stage)
        self.done[stage] = float(seconds)
        if stage.startswith("identify:") and expected:
            self._ratios.append(float(seconds) / expected)
        if stage == self.current:
            self.current = None

    def _expected(self, stage: str) -> float:
        cost = self.costs[stage]
        if stage.startswith("identify:") and self._ratios:
            return cost * sum(self._ratios) / len(self._ratios)
        return cost

    def _current_left(self, now: float) -> float:
        if self.current is None:
            return 0.0
        elapsed = max(0.0, now - self.current_started)
        f = self.current_fraction
        expected = self._expected(self.current)
        if f >= 0.1 and elapsed >= 1.0:  # enough of this stage seen: extrapolate it
            return elapsed * (1.0 - f) / f
        return max(expected - elapsed, expected * (1.0 - f) * 0.5)

    def remaining(self, now: float) -> float:
        later = sum(self._expected(s) for s in self.costs if s not in self.done and s != self.current)
        return self._current_left(now) + later

    def remaining_range(self, now: float) -> tuple[float, float]:
        """(low, high) seconds left: wide until a scoring pass was measured, then close."""
        left = self.remaining(now)
        low, high = SPREAD_MEASURED if self._ratios else (0.7, 1.6)
        return left * low, left * high

    def fraction(self, now: float) -> float:
        """Share of the run's time already spent (0..1), by expected and measured costs, not by stage count."""
        spent = sum(self.done.values())
        if self.current is not None:
            spent += max(0.0, now - self.current_started)
        total = spent + self.remaining(now)
        return 0.0 if total <= 0 else min(1.0, spent / total)


def device_groups(config: MergeConfig, cuda_count: int | None = None) -> list[list[str]]:
    """The `devices` setting as one device group per process ([] without it, or when it names devices this
    machine does not have: the run itself says so at its start, the estimate falls back to `device`)."""
    from .collectives import parse_devices

    try:
        return parse_devices(config.devices, cuda_count)
    except InputError:
        return []


def estimate_run(
    config: MergeConfig,
    info: ModelInfo,
    speed_factor: float | None = None,
    free: Mapping[str, int] | None = None,
    cuda_count: int | None = None,
) -> Estimate:
    """Device memory, host memory, disk and time of a run with this setting, before it starts.

    With `devices` naming several processes or a model split across GPUs ('+'), the estimate is per device:
    each process's device holds a replica (data parallel), or `placement.split_plan` spreads one model over a
    '+' group; host RAM grows with the processes when the accumulators are on the host (each has its own), and
    the sample work is divided by the processes. `free` (device id -> free bytes) and `cuda_count` replace
    what the drivers say (tests, and a pre-flight that already asked)."""
    groups = device_groups(config, cuda_count) if config.devices else []
    ranks = max(len(groups), 1)
    try:
        device = torch.device(groups[0][0]) if groups else resolve_device(config.device)
    except Exception:  # noqa: BLE001 - a device that is not there: estimate for the CPU
        device = torch.device("cpu")
    dtype = compute_dtype(config.compute_dtype, device)
    p = info.num_params
    weights = p * dtype.itemsize
    split = groups[0] if groups and len(groups[0]) > 1 else None
    if split is not None:  # a split model keeps its accumulators next to each weight unless told 'host'
        on_host = config.accumulators == "host"
    else:
        on_host = accumulators_on_host(config, info, device, None if free is None else free.get(str(device)))
    acc_on_device = not on_host
    acc = 4 * accumulated_params(config, info)
    # the largest gradient (the embedding), plus the float32 copy snip/fisher make of it in the hook
    largest_grad = info.vocab_size * info.hidden_size * (dtype.itemsize + (0 if config.score == "gradient" else 4))
    act = activation_bytes(info, config.max_length, dtype.itemsize, config.gradient_checkpointing)
    notes: list[str] = []
    out_dtype_bytes = {"float32": 4, "float16": 2, "bfloat16": 2}.get(
        info.dtype if config.dtype == "auto" else config.dtype, 2
    )
    out_bytes = p * out_dtype_bytes
    passes = len(needed_maps(config))
    cache_bytes = passes * p * (2 if config.score_precision == "bfloat16" else 4)
    disk = out_bytes + (p // 4 if config.needs_scores else 0) + cache_bytes
    write_host = write_host_bytes(info)
    host_acc = 0
    per_device: dict[str, int] = {}
    plan: SplitPlan | None = None
    if device.type == "cuda":
        from .importance import STAGE_CHUNK_BYTES, STAGE_INFLIGHT_BYTES

        device_bytes = weights + (acc if acc_on_device else 0) + largest_grad + act
        identify_host = load_transient_bytes(info, device, dtype.itemsize)
        if on_host:  # contributions queued for the host, two pinned chunks and a float32 scratch on the host
            device_bytes += STAGE_INFLIGHT_BYTES
            identify_host += acc + 2 * STAGE_CHUNK_BYTES + 2 * STAGE_CHUNK_BYTES
            host_acc = acc * ranks
            per_sample = host_seconds_per_sample(config, p, dtype.itemsize)
            notes.append(
                f"Score accumulators in host memory: about {per_sample:.1f} s per sample at least (the "
                "host adds every parameter's score; measured rate, slower on a busy or older machine)."
            )
        elif config.accumulators == "auto":
            notes.append("Score accumulators go to host memory automatically if the GPU is too small.")
        if split is not None:
            plan = _split_plan(info, dtype.itemsize, split, acc_on_device, free)
            # the gradient at its hook and the activations come on top, on whichever device holds that layer
            device_bytes = (
                max(plan.per_device.values(), default=0) + largest_grad + act + (STAGE_INFLIGHT_BYTES if on_host else 0)
            )
        if groups:
            per_device = (
                {d: int(device_bytes) for g in groups for d in g}
                if plan is None
                else {
                    d: int(b)
                    for g in groups
                    for d, b in _split_plan(info, dtype.itemsize, g, acc_on_device, free).per_device.items()
                }
            )
        # every process holds its own host share; the extra ones their interpreter and CUDA context too
        host_bytes = max(ranks * identify_host + (ranks - 1) * PROCESS_HOST_BYTES["cuda"], write_host)
    else:
        device_bytes = 0
        host_acc = acc * ranks
        process = PROCESS_HOST_BYTES["cpu"]  # no CUDA context on a CPU rank
        host_bytes = max(ranks * (weights + acc + largest_grad + act) + (ranks - 1) * process, write_host)
    costs = stage_costs(config, info, device.type, speed_factor, on_host, ranks)
    seconds = sum(costs.values())
    spread = SPREAD_MEASURED if speed_factor else SPREAD_UNMEASURED
    from reasonany_gui.engine.io.writer import human_bytes  # one byte formatter for every message

    if config.needs_scores and config.score_groups > 1:
        one = stage_costs(config.replace(score_groups=1), info, device.type, speed_factor, on_host, ranks)
        extra = sum(costs.values()) - sum(one.values())
        notes.append(
            f"Low-RAM mode: each model is scored in {config.score_groups} passes, "
            f"{human_bytes(acc)} of score sums at a time instead of {human_bytes(4 * p)}; about "
            f"{_duration(extra)} longer."
        )
    if ranks > 1:
        notes.append(
            f"{ranks} processes, one per entry of devices ({config.devices}): each scores 1/{ranks} of "
            "the samples" + (" and keeps its own score sums in host memory." if host_acc else ".")
        )
    if plan is not None:
        notes.append(plan.message)
    if config.needs_scores:
        notes.append(f"The score cache takes about {human_bytes(cache_bytes)} (clear it from the menu).")
    return Estimate(
        int(device_bytes),
        int(host_bytes),
        int(disk),
        float(seconds),
        notes,
        (seconds * spread[0], seconds * spread[1]),
        bool(speed_factor),
        dict(costs),
        int(host_acc),
        ranks,
        per_device,
        plan,
    )


def _split_plan(
    info: ModelInfo, dtype_bytes: int, group: list[str], acc_on_device: bool, free: Mapping[str, int] | None
) -> SplitPlan:
    """placement.split_plan for one '+' group, with the devices' free memory (asked when not given)."""
    if free is None:
        from ..core.devices import free_device_bytes

        def ask(d: str) -> int:
            try:
                return int(free_device_bytes(torch.device(d)))
            except Exception:  # noqa: BLE001 - no driver here: nothing is free
                return 0

        have = {d: ask(d) for d in group}
    else:
        have = {d: int(free.get(d, 0)) for d in group}
    return split_plan(info.num_params, dtype_bytes, have, largest_block_params(info), acc_on_device)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass(frozen=True)
class LowRamOffer:
    """The low-RAM mode the app offers when the run needs more host memory than there is (or None: it fits,
    or no number of groups would make it fit, e.g. when the write stage alone is too large)."""

    groups: int
    needed: int  # host bytes of the setting as it is
    with_groups: int  # host bytes with `groups` passes per model
    extra_seconds: float  # the time the extra passes cost (the estimate's)
    ram: int  # the host memory the offer was made against

    def message(self, how: str = "") -> str:
        from reasonany_gui.engine.io.writer import human_bytes

        return (
            f"Your computer has {human_bytes(self.ram)} of memory free; this merge needs about "
            f"{human_bytes(self.needed)}. Score in {self.groups} passes per model (about "
            f"{_duration(self.extra_seconds)} slower, {human_bytes(self.with_groups)})?{how}"
        )


def low_ram_offer(
    config: MergeConfig,
    info: ModelInfo,
    ram: int,
    speed_factor: float | None = None,
    free: Mapping[str, int] | None = None,
    cuda_count: int | None = None,
    most: int = 64,
) -> LowRamOffer | None:
    """The fewest groups (MergeConfig.score_groups) at which the run's host memory fits `ram`, if the setting
    as it is does not fit and some number of groups does. Only the score sums shrink with the groups, so the
    answer is None when the rest (weights on a CPU run, the write stage) is already too large."""
    if not config.needs_scores:
        return None
    now = estimate_run(config, info, speed_factor, free, cuda_count)
    if now.host_bytes <= ram or now.host_accumulator_bytes == 0:
        return None
    for g in range(max(config.score_groups, 1) + 1, most + 1):
        est = estimate_run(config.replace(score_groups=g), info, speed_factor, free, cuda_count)
        if est.host_bytes <= ram:
            return LowRamOffer(g, now.host_bytes, est.host_bytes, est.seconds - now.seconds, int(ram))
    return None

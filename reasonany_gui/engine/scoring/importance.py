"""Importance scores: per-element mean over samples of |g| (gradient), |θ⊙g| (snip) or g² (fisher).

Why hooks: a per-parameter `register_post_accumulate_grad_hook` adds each gradient into a float32
accumulator the moment it is complete and frees it at once, so full-model gradients never coexist and
device memory stays at weights + 4 B/param (+ activations); with host accumulators, weights + one
gradient (+ a bounded number of score contributions in flight to the host). Batch of one, no padding: the
loss is the mean next-token cross-entropy over the sample's real (labelled) tokens, and the absolute value
is taken per sample before summing (ALGORITHM.md §2).

Why a staged host path: with accumulators in host memory (a 7B model on a 24 GB card), a synchronous,
pageable `.to("cpu")` per gradient inside the hook made the GPU wait for every copy and every host add
(docs/SCALING.md). The score form is computed on the device, the hook hands it to one worker thread and
returns; the worker copies it in chunks through two pinned buffers on a side stream and adds each chunk on
the host while the backward goes on. The adds are element-wise, so the sums are bit-identical to adding
whole tensors.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..core import layout
from ..core.errors import OutOfMemoryError
from ..core.events import CancelToken, SensitivityUpdate

#: bytes of one host transfer chunk: one pinned buffer each side of the double buffer (2 × 32 MiB pinned)
STAGE_CHUNK_BYTES = 32 << 20
#: score contributions waiting on the device for the host (bytes): the hook waits above this, so a slow host
#: bounds device memory instead of letting every gradient of a sample pile up (one tensor larger than this
#: still goes, alone). The estimate adds this term for host accumulators.
STAGE_INFLIGHT_BYTES = 512 << 20


@dataclass
class PassResult:
    scores: dict[str, torch.Tensor]  # checkpoint tensor name -> float32 mean score (same shape)
    samples: int
    tokens: int
    seconds: float
    backward_passes: int


def parameter_names(model: torch.nn.Module, ckpt_names: set[str]) -> dict[str, torch.nn.Parameter]:
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


def tensor_groups(numels: Mapping[str, int], groups: int) -> list[list[str]]:
    """The low-RAM mode's groups (MergeConfig.score_groups): the tensors in sorted name order, cut into at most
    `groups` contiguous runs of about equal parameter count. Each run is scored in its own pass, so only its
    float32 accumulators exist at a time (tests/test_scaling.py: a subset's pass gives its scores bit for bit).

    Why sorted and contiguous: the score cache's shards are planned in sorted order, so each group's maps fill
    whole shards that are written at once. Why cuts only between modules (the name up to its last dot): a
    weight and its bias stay in one pass, so every cell of the live plot is complete within one group. Each cut
    is the module boundary nearest to k/G of the parameters, so a group holds at most P/G + the largest
    module's parameters (the estimate's bound, `group_params_bound`)."""
    names = sorted(numels)
    if groups <= 1 or len(names) <= 1:
        return [names] if names else []
    # module units: runs of names sharing the prefix before the last dot
    units: list[list[str]] = []
    for n in names:
        if units and units[-1][0].rsplit(".", 1)[0] == n.rsplit(".", 1)[0]:
            units[-1].append(n)
        else:
            units.append([n])
    if len(units) == 1:
        return [names]
    total = sum(int(numels[n]) for n in names)
    ends = []  # cumulative parameter count at the end of each unit
    run = 0
    for u in units:
        run += sum(int(numels[n]) for n in u)
        ends.append(run)
    cuts: list[int] = []  # unit indices after which a group ends
    for k in range(1, groups):
        target = total * k / groups
        best = min(range(len(units) - 1), key=lambda i: (abs(ends[i] - target), i))
        if not cuts or best > cuts[-1]:
            cuts.append(best)
    out: list[list[str]] = []
    start = 0
    for c in cuts + [len(units) - 1]:
        out.append([n for u in units[start : c + 1] for n in u])
        start = c + 1
    return [g for g in out if g]


def group_params_bound(num_params: int, groups: int, largest_module_params: int) -> int:
    """The most parameters one group of `tensor_groups` can hold: P/G plus one module (each cut is at most
    half a module away from k·P/G, on both ends of a group). P itself for one group."""
    if groups <= 1:
        return int(num_params)
    return int(min(num_params, -(-num_params // groups) + largest_module_params))


def _contribution(kind: str, p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """This sample's score term, computed in place where that is exact, to keep peak memory low.

    The gradient is discarded right after, so `gradient` reuses its storage (|g| in the storage dtype is exact,
    and the float32 accumulator's add promotes exactly): no temporary at all, and only the storage dtype
    crosses the bus to host accumulators. `snip` and `fisher` need the product in float32 (a bfloat16 product
    would round), so they make one float32 copy and work in it.
    """
    if kind == "gradient":
        return g.abs_()
    if kind == "snip":
        return g.float().mul_(p.detach()).abs_()
    if kind == "fisher":
        return g.float().square_()
    raise ValueError(f"unknown score kind {kind!r}")


class _HostStager:
    """One worker thread that moves score contributions from the compute device into host accumulators.

    Why a worker and not the hook: the hook runs on the autograd thread; any wait there (a copy, a host add)
    stops new kernels from being queued and the GPU idles. The hook only queues (contribution, accumulator,
    ready-event); the worker copies chunk k+1 on a side stream into one pinned buffer while it adds chunk k
    from the other. Without CUDA (tests, CI) the same code copies synchronously into unpinned buffers, so the
    chunking, ordering and error paths are what CI exercises.
    """

    def __init__(
        self, device: torch.device, chunk_bytes: int = STAGE_CHUNK_BYTES, inflight_bytes: int = STAGE_INFLIGHT_BYTES
    ) -> None:
        self.cuda = device.type == "cuda"
        self.chunk_bytes = max(int(chunk_bytes), 16)
        self.inflight_limit = int(inflight_bytes)
        self._bufs = [torch.empty(self.chunk_bytes, dtype=torch.uint8, pin_memory=self.cuda) for _ in range(2)]
        self._stream = torch.cuda.Stream(device) if self.cuda else None
        self._items: deque[Any] = deque()
        self._cv = threading.Condition()
        self._inflight = 0
        self._busy = 0  # items taken by the worker, not yet finished
        self._stop = False
        self._error: BaseException | None = None
        self._scratch: torch.Tensor | None = None  # float32, for widening half-precision chunks
        self._thread = threading.Thread(target=self._run, name="reasonany-host-accumulate", daemon=True)
        self._thread.start()

    def submit(self, contribution: torch.Tensor, acc: torch.Tensor) -> None:
        """Queue `acc += contribution` (called from the hook); waits only while too many bytes are in flight."""
        nbytes = contribution.numel() * contribution.element_size()
        event = None
        if self.cuda:
            event = torch.cuda.Event()
            event.record(torch.cuda.current_stream(contribution.device))
        with self._cv:
            while self._inflight > 0 and self._inflight + nbytes > self.inflight_limit and self._error is None:
                self._cv.wait()
            self._raise()
            self._inflight += nbytes
            self._items.append((contribution, acc, event, nbytes))
            self._cv.notify_all()

    def drain(self) -> None:
        """Wait until every queued contribution is in its accumulator (before reading them)."""
        with self._cv:
            while (self._items or self._busy) and self._error is None:
                self._cv.wait()
            self._raise()

    def close(self) -> None:
        """Stop the worker; queued work is dropped (a cancelled or failed pass)."""
        with self._cv:
            self._stop = True
            self._items.clear()
            self._cv.notify_all()
        self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._items and not self._stop:
                    self._cv.wait()
                if self._stop:
                    return
                item = self._items.popleft()
                self._busy += 1
            contribution, acc, event, nbytes = item
            try:
                self._move(contribution, acc, event)
            except BaseException as exc:  # noqa: BLE001 - handed to the autograd thread at its next submit/drain
                with self._cv:
                    self._error = exc
            finally:
                del contribution, item
                with self._cv:
                    self._busy -= 1
                    self._inflight -= nbytes
                    self._cv.notify_all()

    def _move(self, contribution: torch.Tensor, acc: torch.Tensor, event: Any) -> None:
        src = contribution.reshape(-1)
        dst = acc.view(-1)
        step = max(self.chunk_bytes // src.element_size(), 1)
        starts = list(range(0, src.numel(), step))
        if self.cuda:
            assert self._stream is not None  # made in __init__ whenever self.cuda
            self._stream.wait_event(event)  # the contribution's kernels, queued by the hook, come first
        pending = None  # (dst slice, host view, copy-done event) of the chunk copied but not yet added
        for i, start in enumerate(starts):
            part = src[start : start + step]
            host = self._bufs[i % 2][: part.numel() * part.element_size()].view(part.dtype)
            done = None
            if self.cuda:
                with torch.cuda.stream(self._stream):
                    host.copy_(part, non_blocking=True)
                    done = torch.cuda.Event()
                    done.record(self._stream)
            else:
                host.copy_(part)
            if pending is not None:
                self._add(*pending)
            pending = (dst[start : start + part.numel()], host, done)
            if self._stop:
                return
        if pending is not None:
            self._add(*pending)

    def _add(self, dst: torch.Tensor, host: torch.Tensor, done: Any) -> None:
        """dst += host. A bfloat16/float16 chunk is first widened into a float32 scratch buffer: exact (the
        same values the mixed-dtype add promotes to), and ~4x faster on the CPU than torch's mixed-dtype add
        (0.59 against 2.26 ns/element measured, benchmarks/speed/RESULTS.md)."""
        if done is not None:
            done.synchronize()
        if host.dtype != dst.dtype:
            if self._scratch is None or self._scratch.numel() < host.numel():
                self._scratch = torch.empty(max(self.chunk_bytes // 2, host.numel()), dtype=dst.dtype)
            wide = self._scratch[: host.numel()]
            wide.copy_(host)
            host = wide
        dst.add_(host)


class ScoreAccumulators:
    """Float32 sums of the score form per parameter, filled by post-accumulate-grad hooks.

    Placement is per parameter (`placement[name]`): device accumulators add in place on the device; an
    accumulator on the CPU for a parameter elsewhere goes through `_HostStager`. `stage=True` forces the staged
    path even when both are on the CPU (tests, benchmarks).

    Why the running sums: the live plot shows the mean score per (layer, module). Summing every accumulator
    after a sample re-reads 4 B/param (8 s per sample at 7B on the host); the hook already has each
    contribution on the device, so it adds its sum to one float64 scalar per tensor instead.

    Hooks for a multi-device or distributed run: `placement` may name a different device per parameter (each
    parameter's own, for a device map), and `finish()` is the one place where the finished sums exist, before
    the division by the sample count: a distributed run reduces them across ranks there (sums, not means, so
    unequal shares of samples stay exact).
    """

    def __init__(
        self,
        params: Mapping[str, torch.nn.Parameter],
        kind: str,
        placement: Mapping[str, torch.device],
        stage: bool | None = None,
        chunk_bytes: int = STAGE_CHUNK_BYTES,
        inflight_bytes: int = STAGE_INFLIGHT_BYTES,
    ) -> None:
        _contribution(kind, torch.zeros(1), torch.zeros(1))  # an unknown kind fails here, not in a hook
        self.kind = kind
        self.params = dict(params)
        self.accs = {n: torch.zeros(p.shape, dtype=torch.float32, device=placement[n]) for n, p in params.items()}
        self.sums = {n: torch.zeros((), dtype=torch.float64, device=p.device) for n, p in params.items()}
        self._staged = {
            n
            for n, p in params.items()
            if (stage if stage is not None else placement[n].type == "cpu" and p.device.type != "cpu")
        }
        self._stagers: dict[torch.device, _HostStager] = {}
        for n in self._staged:
            dev = self.params[n].device
            if dev not in self._stagers:
                self._stagers[dev] = _HostStager(dev, chunk_bytes, inflight_bytes)
        self._handles: list[Any] = []

    @property
    def staged(self) -> bool:
        return bool(self._staged)

    def attach(self) -> None:
        for name, p in self.params.items():
            p.requires_grad_(True)
            self._handles.append(p.register_post_accumulate_grad_hook(self._hook(name)))

    def _hook(self, name: str) -> Callable[[torch.Tensor], None]:
        acc, total, kind = self.accs[name], self.sums[name], self.kind
        stager = self._stagers.get(self.params[name].device) if name in self._staged else None

        def hook(p: torch.Tensor) -> None:
            g = p.grad
            if g is not None:
                c = _contribution(kind, p, g)
                total.add_(c.sum(dtype=torch.float32))
                if stager is not None:
                    stager.submit(c, acc)
                else:
                    acc.add_(c)  # same device: in place
            p.grad = None  # free at once: full gradients never coexist

        return hook

    def running_sums(self) -> dict[str, float]:
        """Σ over samples so far of each tensor's contribution sum (for the live plot): one copy per device."""
        out: dict[str, float] = {}
        by_device: dict[torch.device, list[str]] = {}
        for n, s in self.sums.items():
            by_device.setdefault(s.device, []).append(n)
        for names in by_device.values():
            values = torch.stack([self.sums[n] for n in names]).cpu().tolist()
            out.update(zip(names, values, strict=True))
        return out

    def finish(self) -> dict[str, torch.Tensor]:
        """The finished float32 sums (not yet divided by the sample count), every transfer done.

        The hook for a distributed run: reduce these across ranks before the division."""
        for stager in self._stagers.values():
            stager.drain()
        return self.accs

    def close(self) -> None:
        """Remove the hooks and stop the workers (idempotent)."""
        for h in self._handles:
            h.remove()
        self._handles = []
        for stager in self._stagers.values():
            stager.close()
        self._stagers = {}


def placement_for(
    params: Mapping[str, torch.nn.Parameter], accumulate_on: torch.device | Mapping[str, torch.device]
) -> dict[str, torch.device]:
    """Where each accumulator lives: one device for all, or a mapping (per-parameter devices)."""
    if isinstance(accumulate_on, Mapping):
        return {n: torch.device(accumulate_on[n]) for n in params}
    return {n: torch.device(accumulate_on) for n in params}


def score_pass(
    model: torch.nn.Module,
    params: dict[str, torch.nn.Parameter],
    samples: list[Any],
    kind: str,
    accumulate_on: torch.device | Mapping[str, torch.device],
    pass_id: str,
    model_role: str,
    data_role: str,
    listener: Callable[[object], None],
    cancel: CancelToken,
    on_sample: Callable[[int, int], None] | None = None,
    stats_interval_s: float = 0.25,
    stage: bool | None = None,
    reduce: Callable[[dict[str, torch.Tensor], int, int], tuple[int, int]] | None = None,
) -> PassResult:
    """One identification pass (one model, one data set). Sets per-thread CUDA/grad state itself.

    `stage=True` forces the staged host path (`_HostStager`) even on the CPU; None picks it for host
    accumulators of a model on another device. `reduce(sums, samples, tokens)` (a distributed run,
    collectives.py) gets the finished float32 sums before the division and returns the global sample and
    token counts."""
    device = next(model.parameters()).device
    if device.type == "cuda":
        torch.cuda.set_device(device)
    for p in model.parameters():
        p.requires_grad_(False)
    accs = ScoreAccumulators(params, kind, placement_for(params, accumulate_on), stage)
    grid = _GridStats(list(params), {n: p.numel() for n, p in params.items()})
    start = time.perf_counter()
    last_emit = 0.0
    tokens = 0
    n = len(samples)
    backward = 0
    _set_mode(model)
    try:
        accs.attach()
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
                    listener(
                        SensitivityUpdate(
                            pass_id,
                            model_role,
                            data_role,
                            i + 1,
                            n,
                            layout.MODULES,
                            grid.compute(accs.running_sums(), i + 1),
                        )
                    )
        sums = accs.finish()
        if reduce is not None:  # sums across ranks, then the mean over every rank's samples
            n, tokens = reduce(sums, n, tokens)
    except torch.cuda.OutOfMemoryError:
        raise OutOfMemoryError(
            "The GPU ran out of memory while computing importance scores. Keep the score accumulators in host "
            "memory, turn on gradient checkpointing, use a shorter maximum length or fewer samples.",
            suggestions={"accumulators": "host", "gradient_checkpointing": True},
        ) from None
    finally:
        accs.close()
        for p in model.parameters():
            p.grad = None
            p.requires_grad_(False)
    for acc in sums.values():
        acc.div_(max(n, 1))
    return PassResult(sums, n, tokens, time.perf_counter() - start, backward)


def enable_checkpointing(model: Any) -> None:  # a transformers model; the method's name depends on the version
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


class _GridStats:
    """Mean score per (layer, module type), from the hooks' running sums (no pass over the accumulators)."""

    def __init__(self, names: list[str], numels: Mapping[str, int]) -> None:
        self.cells = layout.cells(names)
        self.layers = layout.num_layers(names)
        self.counts = {k: sum(numels[t] for t in ts) for k, ts in self.cells.items()}

    def compute(self, sums: Mapping[str, float], n: int) -> np.ndarray:
        grid = np.full((max(self.layers, 0), len(layout.MODULES)), np.nan)
        for (layer, module), names in self.cells.items():
            total = sum(sums[t] for t in names)
            grid[layer, layout.MODULES.index(module)] = total / max(self.counts[(layer, module)], 1) / max(n, 1)
        return grid

"""Data-parallel identification with torch.distributed: several processes, one per device (or device group).

Why data parallel and why this shape (issue 14, part B):
- A score is Σ_i |g_i| (or Σ|θ·g_i|, Σ g_i²) over samples, not |Σ g_i|. Each rank scores its share of the
  calibration samples with the same per-sample hooks as a single process (importance.score_pass), so the
  absolute value is taken per sample *before* anything crosses ranks. The finished float32 sums are then
  reduced once, at the end, to rank 0 (sums, not means, so unequal shares stay exact); the result equals the
  single-process sums up to float32 summation order.
- Rank 0 alone writes the score cache, the report and the output; the other ranks check, score and exit.
- Lockstep status: after every sample each rank joins one tiny all_reduce (a few int64 on the CPU, through
  gloo even when the accumulators go through NCCL). It carries the global sample count, so rank 0 reports the
  whole job's progress to its CLI or GUI, and a failure or cancel on any rank: the failing rank sends one
  status marked failed instead of its next heartbeat, every rank learns it at the same step, the failing
  rank's message is gathered, and all raise before any reduction (nothing is half-written: rank 0 writes only
  after the reduction). Shares differ by at most one sample; the shorter ranks pad with heartbeats so every
  rank makes the same number of collective calls. A rank that dies hard (killed, segfault) is torchrun's
  business: its elastic agent stops the other workers, and gloo/NCCL raise on the lost peer.
- Launching is torchrun's (`python -m torch.distributed.run`): `reasonany merge --devices cuda:0,cuda:1` and the
  app's "All GPUs" write the validated run config to a file and start one launcher process (`launch`: this
  module's `__main__`, torch's own launcher API, ranks running `-m reasonany_gui.cli merge THAT_FILE`). With
  `--events-jsonl` rank 0 writes its engine events as JSON lines on stdout, and `follow` hands them to the app's
  listener. Cancel signals the launcher's process group; the launcher forwards it to the ranks. Nothing here
  opens sockets or pools processes.

Nothing in this module imports Qt. Without torchrun's environment every function here is a no-op or falls
through to the single-process path, so the rest of the engine calls it unconditionally.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn

import torch
import torch.distributed as dist

from ..core.errors import CancelledError, InputError, ReasonAnyError
from . import importance

#: how long a collective waits for a peer before it raises (a hung, not dead, rank): long enough for the
#: slowest sample of a 70B model on one rank, short enough that a stuck job does not hold GPUs for a day
DEFAULT_TIMEOUT_S = 30 * 60
#: status codes in the per-sample heartbeat
_OK, _FAILED, _CANCELLED = 0, 1, 2
_DEVICE = re.compile(r"cpu|cuda:\d+")


class PeerFailedError(ReasonAnyError):
    """Another rank failed: this rank stops too, with that rank's message."""


class PeerCancelledError(CancelledError):
    """Another rank was cancelled: this rank stops too (the CLI's exit code 130, "nothing was written")."""


# ---------------------------------------------------------------------- where this process stands
@dataclass(frozen=True)
class World:
    """This process's place in a torchrun job (RANK, WORLD_SIZE, LOCAL_RANK as torchrun sets them)."""

    rank: int
    size: int
    local_rank: int

    @property
    def is_writer(self) -> bool:
        return self.rank == 0


def world_from_env(env: Mapping[str, str] | None = None) -> World | None:
    """The torchrun job this process belongs to, or None for a plain single process (WORLD_SIZE unset or 1)."""
    env = os.environ if env is None else env
    try:
        size = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError:
        return None
    if size <= 1:
        return None
    return World(rank, size, local)


#: set once the job's collective phase (identification) is over on this rank: see leave_group
_alone = False


def summation_order() -> dict[str, int]:
    """What the float32 score sums depend on besides the inputs and settings: the CPU threads that split each
    reduction, and the processes whose partial sums are added at the end. A different count sums in another
    order, so a few scores round differently in the stored bfloat16 and a few mask bits at the threshold move
    (issue 22: 168 of 0.23 B bits, 1 vs 2 threads). Each cache entry's meta.json and every report that uses it
    record them (docs/SCALING.md, "What is reproducible"). Not part of the cache key: a re-tune in the app of a
    2-process or 16-thread run must reuse its scores, not recompute hours of gradients to other rounding.
    From the environment, not the live group: the same on rank 0 before and after it left the group."""
    world = world_from_env()
    return {"threads": torch.get_num_threads(), "processes": world.size if world is not None else 1}


def active() -> bool:
    """Whether a process group is up and still in use (this process scores a share and joins the reductions)."""
    return not _alone and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def leave_group() -> None:
    """End this rank's part in the job's collectives: one barrier with every other rank, then single-process.

    Why: identification is the only collective phase. Afterwards rank 0 selects, tunes and writes alone, and the
    other ranks exit; a later collective on rank 0 (the tuner identifies again, which agrees on the plan) would
    wait on peers that have left (issue 22: `--devices cpu,cpu --tune` failed every time with a gloo error). The
    barrier, here and not at the group's teardown, also means the peers never wait for rank 0's whole search and
    write (which can outlast the collectives' timeout). Every rank calls this at the end of identification."""
    global _alone
    if active():
        dist.barrier()
        _alone = True


def is_writer() -> bool:
    """Whether this process writes the cache, report and output: rank 0, or any single process."""
    return not active() or dist.get_rank() == 0


def rank() -> int:
    return dist.get_rank() if active() else 0


# ---------------------------------------------------------------------- the devices setting
def parse_devices(spec: str, cuda_count: int | None = None) -> list[list[str]]:
    """The `devices` setting as one device group per rank.

    "cuda:0,cuda:1" → two ranks of one GPU each; "all" → one rank per visible GPU; "cuda:0+cuda:1,cuda:2+cuda:3"
    → two ranks whose model is split across two GPUs each (placement.py); "cpu,cpu" → two CPU ranks (gloo;
    what CI tests). "" → no multi-device run. Why one string: it is a run.yaml value and a CLI flag, and the
    '+' keeps "more data-parallel ranks" and "a model larger than one card" in one readable setting."""
    spec = (spec or "").strip().replace(" ", "")
    if not spec:
        return []
    if cuda_count is None:
        cuda_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if spec == "all":
        if cuda_count == 0:
            raise InputError(
                "devices = 'all' needs CUDA GPUs, and this machine has none. Leave --devices out, "
                "or use --devices cpu,cpu for several CPU processes."
            )
        return [[f"cuda:{i}"] for i in range(cuda_count)]
    groups: list[list[str]] = []
    seen: set[str] = set()
    for part in spec.split(","):
        group = [d for d in part.split("+")]
        for d in group:
            if not _DEVICE.fullmatch(d):
                raise InputError(
                    f"devices = {spec!r}: {d!r} is not a device. Write e.g. cuda:0,cuda:1 (one process "
                    "per GPU), cuda:0+cuda:1 (one model across two GPUs), all, or cpu,cpu."
                )
            if d.startswith("cuda:"):
                if int(d.split(":")[1]) >= cuda_count:
                    have = (
                        f"this machine has {cuda_count} CUDA device(s)"
                        if cuda_count
                        else "this machine has no CUDA device"
                    )
                    raise InputError(f"devices = {spec!r}: {d} does not exist; {have}.")
                if d in seen:
                    raise InputError(f"devices = {spec!r} names {d} twice: give each GPU to one process.")
                seen.add(d)
        if "cpu" in group and len(group) > 1:
            raise InputError(
                f"devices = {spec!r}: a '+' group splits one model across GPUs; the CPU cannot be "
                "part of one (use cpu,cpu for two CPU processes)."
            )
        groups.append(group)
    return groups


def rank_devices(spec: str, world: World | None = None, cuda_count: int | None = None) -> list[str]:
    """This process's device group: the rank's entry of `devices` under torchrun, the only group otherwise."""
    groups = parse_devices(spec, cuda_count)
    if not groups:
        return []
    world = world if world is not None else world_from_env()
    if world is None:
        return groups[0]
    if world.size != len(groups):
        raise InputError(
            f"devices = {spec!r} names {len(groups)} process(es), but torchrun started "
            f"{world.size}: use --nproc-per-node {len(groups)}."
        )
    return groups[world.rank]


def ranks_needed(spec: str, cuda_count: int | None = None) -> int:
    """How many processes `devices` asks for (1 = no torchrun needed, a '+' group still splits the model)."""
    return max(len(parse_devices(spec, cuda_count)), 1)


# ---------------------------------------------------------------------- the process group
class ProcessGroup:
    """init_process_group / destroy_process_group as a context manager, for this rank's device.

    Why "cpu:gloo,cuda:nccl" on GPUs: the accumulators (on the GPUs) reduce through NCCL, while the per-sample
    status and any host accumulators (accumulators = host) are CPU tensors, which NCCL cannot carry. On the CPU,
    gloo for everything. `init_method` defaults to torchrun's environment (env://); tests pass a file:// store.
    """

    def __init__(
        self,
        device: torch.device | str,
        world: World,
        init_method: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.device = torch.device(device)
        self.world = world
        self.init_method = init_method or "env://"
        self.timeout = timedelta(seconds=timeout_s)
        self._owned = False

    def __enter__(self) -> ProcessGroup:
        if dist.is_initialized():
            return self
        cuda = self.device.type == "cuda"
        if cuda:
            torch.cuda.set_device(self.device)
        dist.init_process_group(
            "cpu:gloo,cuda:nccl" if cuda else "gloo",
            init_method=self.init_method,
            rank=self.world.rank,
            world_size=self.world.size,
            timeout=self.timeout,
        )
        self._owned = True
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        global _alone
        if self._owned and dist.is_initialized():
            if exc_type is None and not _alone:
                # every rank past its last collective before any tears its side down: a non-root rank returns
                # from gloo's reduce as soon as its part is sent, and destroying the group while rank 0 still
                # receives aborted that rank ("terminate called without an active exception", 1 run in 5 here)
                with contextlib.suppress(Exception):
                    dist.barrier()
            dist.destroy_process_group()
        self._owned = False
        _alone = False


def exit_rank(code: int) -> NoReturn:
    """End a rank's process now, with `code`, after flushing its output and logs, skipping interpreter shutdown.

    Why: with gloo, a rank's interpreter shutdown aborts now and then after a finished, successful job
    ("terminate called without an active exception", SIGABRT, about 1 exit in 10 on torch 2.13 here; a
    C++ thread still joinable when static objects are destroyed). Nothing is left to do at that point: the
    group is destroyed, the output written and renamed. os._exit skips the destructors that abort."""
    import logging

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    logging.shutdown()
    os._exit(code)


def agree(value: Any) -> Any:
    """Rank 0's value on every rank (one broadcast_object_list), e.g. which score maps still need computing:
    ranks on different hosts may see different caches, and they must all join the same passes."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shard(items: Sequence[Any], rank_: int, size: int) -> list[Any]:
    """This rank's share of the calibration samples: every size-th from `rank_` (shares differ by at most 1)."""
    return list(items[rank_::size])


# ---------------------------------------------------------------------- one identification pass
class _PassSync:
    """The per-sample heartbeat of one pass: a status all_reduce per step, padded to the longest share."""

    def __init__(self, total: int) -> None:
        self.size = dist.get_world_size()
        self.rank = dist.get_rank()
        self.steps = math.ceil(total / self.size)  # every rank makes exactly this many heartbeats + one final
        self.done_steps = 0
        self.local_done = 0
        self.finished = False  # the final status went through: from here on, only the reduction

    def _exchange(self, code: int) -> tuple[int, list[int]]:
        status = torch.zeros(1 + self.size, dtype=torch.int64)
        status[0] = self.local_done
        status[1 + self.rank] = code
        dist.all_reduce(status)
        return int(status[0]), status[1:].tolist()

    def _check(self, codes: list[int], own: BaseException | None = None) -> None:
        if not any(codes):
            return
        messages: list[Any] = [None] * self.size
        dist.all_gather_object(messages, None if own is None else f"{type(own).__name__}: {own}")
        if own is not None:
            return  # the failing rank raises its own error
        failed = [r for r, c in enumerate(codes) if c == _FAILED]
        if not failed:
            raise PeerCancelledError(f"Rank {codes.index(_CANCELLED)} was cancelled; this rank stopped too.")
        r = failed[0]
        raise PeerFailedError(
            f"Rank {r} of {self.size} failed, so every rank stopped and nothing was written. "
            f"Rank {r}'s error: {messages[r]}"
        )

    def step(self) -> int:
        """One finished sample on this rank; returns the samples finished on all ranks so far."""
        self.local_done += 1
        self.done_steps += 1
        done, codes = self._exchange(_OK)
        self._check(codes)
        return done

    def pad_and_finish(self) -> None:
        """Heartbeats for the steps this rank has no sample for, then the final status (all ranks ok?)."""
        while self.done_steps < self.steps:
            self.done_steps += 1
            _, codes = self._exchange(_OK)
            self._check(codes)
        _, codes = self._exchange(_OK)
        self._check(codes)
        self.finished = True

    def fail(self, exc: BaseException) -> None:
        """Tell the other ranks, at the collective they are waiting in, that this rank stopped."""
        if self.finished:
            return  # past the final status: the peers are in the reduction; torchrun stops them
        code = _CANCELLED if isinstance(exc, (CancelledError, KeyboardInterrupt)) else _FAILED
        self.finished = True  # one message only, whatever happens below
        try:
            _, codes = self._exchange(code)
            self._check(codes, own=exc)
            with contextlib.suppress(AttributeError):
                setattr(exc, _RELAYED, True)
        except Exception:  # noqa: BLE001 - the group itself is broken (a lost peer): the original error stands
            pass


def score_pass(
    model: torch.nn.Module,
    params: dict[str, torch.nn.Parameter],
    samples: list[Any],
    *args: Any,
    **options: Any,
) -> importance.PassResult:
    """importance.score_pass (same arguments after `samples`) over this rank's share, sums reduced to rank 0 before
    the division.

    Without a process group this *is* importance.score_pass. With one, `on_sample(done, total)` receives the
    samples finished on all ranks (rank 0's CLI/GUI shows the whole job), and the returned result holds the
    reduced scores, sample and token counts on rank 0; the other ranks get empty scores (their partial sums
    are released: only rank 0 writes)."""
    if not active():
        return importance.score_pass(model, params, samples, *args, **options)
    on_sample: Callable[[int, int], None] | None = options.pop("on_sample", None)
    total = len(samples)
    sync = _PassSync(total)
    share = shard(samples, sync.rank, sync.size)

    def local_sample(_i: int, _n: int) -> None:
        done = sync.step()
        if on_sample is not None:
            on_sample(done, total)

    def reduce(sums: dict[str, torch.Tensor], n: int, tokens: int) -> tuple[int, int]:
        sync.pad_and_finish()
        return reduce_sums(sums, n, tokens)

    try:
        options.update(on_sample=local_sample, reduce=reduce)
        result = importance.score_pass(model, params, share, *args, **options)
    except (PeerFailedError, PeerCancelledError):
        raise  # every rank already knows
    except BaseException as exc:
        sync.fail(exc)
        raise
    if sync.rank != 0:
        result.scores = {}
    return result


def reduce_sums(sums: dict[str, torch.Tensor], n: int, tokens: int) -> tuple[int, int]:
    """Σ over ranks of the float32 accumulators, into rank 0's (dist.reduce, in place, each on its own device:
    NCCL for GPU tensors, gloo for host ones), and the global sample and token counts (on every rank).

    Why reduce and not all_reduce: only rank 0 writes; the others would only hold a second copy."""
    counts = torch.tensor([n, tokens], dtype=torch.int64)
    dist.all_reduce(counts)
    for name in sorted(sums):  # the same order on every rank
        dist.reduce(sums[name], dst=0)
    return int(counts[0]), int(counts[1])


_RELAYED = "reasonany_relayed_to_rank0"


def relayed(exc: BaseException) -> bool:
    """Whether rank 0 already has this error: a peer's (raised on every rank) or this rank's own, sent over."""
    return isinstance(exc, (PeerFailedError, PeerCancelledError)) or bool(getattr(exc, _RELAYED, False))

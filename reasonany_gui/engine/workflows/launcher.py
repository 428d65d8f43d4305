"""The multi-process run: what each torchrun rank does, and the launcher that starts and follows the ranks.

Split from the collectives (scoring/collectives.py), which sit below the pipeline: this module stands above it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..core.errors import CancelledError, InputError, ReasonAnyError
from ..run.pipeline import Pipeline
from ..scoring.collectives import ProcessGroup, is_writer, rank_devices, ranks_needed, relayed, world_from_env
from ..settings.config import MergeConfig
from .merge import hold_out_check_rows, merge


# ---------------------------------------------------------------------- the pipeline on every rank
def run_rank(pipe: Pipeline, tune: dict[str, Any] | None = None) -> Path | None:
    """What one rank does with the run's Pipeline: rank 0 the whole run; the others check and identify only.

    Why the others stop after identification: selection, tuning and writing read the reduced scores, which
    only rank 0 holds, and must happen once. They still check (they load the models too, and a bad input fails
    the same way on every rank before any collective)."""
    if is_writer():
        return merge(pipe, tune)
    try:
        pipe.check()
        if tune is not None:  # the same samples as rank 0 scores: without the rows it holds out for the checks
            hold_out_check_rows(pipe, tune)
        pipe.identify()
    finally:
        pipe.close()
    return None


def needs_launch(cfg: MergeConfig) -> bool:
    """Whether this `merge` must start torchrun itself: `devices` names several processes and this process is
    not already one of a torchrun job's workers."""
    return world_from_env() is None and ranks_needed(cfg.devices) > 1


@contextmanager
def rank_session(cfg: MergeConfig) -> Iterator[Any]:
    """Under torchrun: this rank's setting (its own device) with the process group up for the block.

    Outside torchrun: the setting as it is (a '+' group of one process only sets the first device, the model
    split follows in placement.py). A worker started by a plain `torchrun ... merge --device cuda` (no
    `devices`) takes cuda:LOCAL_RANK, the CPU when asked for it."""
    world = world_from_env()
    group = rank_devices(cfg.devices, world)
    if group:
        cfg = cfg.replace(device=group[0])
    elif world is not None and cfg.device != "cpu" and torch.cuda.is_available():
        cfg = cfg.replace(device=f"cuda:{world.local_rank}")
    elif world is not None:
        cfg = cfg.replace(device="cpu")
    if world is None:
        yield cfg
        return
    with ProcessGroup(cfg.device, world):
        try:
            yield cfg
        except BaseException as exc:
            if world.rank == 0 or not relayed(exc):
                raise
            # rank 0 prints this error for the whole job (one message, not one per rank); the log keeps it here
            import logging
            import traceback

            logging.getLogger("reasonany").error(
                "rank %d stopped: %s", world.rank, "".join(traceback.format_exception(exc))
            )
            raise SystemExit(130 if isinstance(exc, (CancelledError, KeyboardInterrupt)) else 1) from None


#: the launcher process's module (`python -m` it): torch's elastic launcher, rank 0's exit code as its own
LAUNCHER_MODULE = "reasonany_gui.engine.workflows.launcher"
#: how long a cancelled launcher may take to stop its ranks (it gives them 30 s, then kills them) before we kill it
CANCEL_GRACE_S = 45.0
#: the JSON lines rank 0 writes besides its events: the written folder, or why it stopped
DONE, FAILED = "done", "failed"


def launch_args(config_path: Path, extra: Sequence[str]) -> list[str]:
    """The worker command line: the CLI's merge on the run config file (plus the tune/quiet flags)."""
    return ["-m", "reasonany_gui.cli", "merge", str(config_path), *extra]


def worker_flags(*, quiet: bool = False, tune: Mapping[str, Any] | None = None, events: bool = False) -> list[str]:
    """The merge flags a torchrun worker needs besides the run config file, for the CLI and the app alike.

    tune: {"budget", "check_rows", "minutes", "checks"} (missing or None = the CLI's default), None = no search.
    events: rank 0 writes its events as JSON lines on stdout (the app's job reads them; see `follow`)."""
    flags = ["--quiet"] if quiet else []
    if tune is not None:
        flags += ["--tune"]
        for key in ("budget", "check_rows", "minutes", "checks"):
            if tune.get(key) not in (None, ""):
                flags += ["--" + key.replace("_", "-"), str(tune[key])]
    if events:
        flags += ["--events-jsonl"]
    return flags


def launch_command(config_path: Path, flags: Sequence[str], nprocs: int) -> list[str]:
    """The one command that starts a multi-process merge: this module as the launcher, `nprocs` ranks of
    `launch_args(config_path, flags)`. The CLI's `--devices` and the app's "All GPUs" both run it."""
    return [sys.executable, "-m", LAUNCHER_MODULE, str(nprocs), str(config_path), *flags]


@dataclass
class Launch:
    """A running launcher process (its own session, so it and only it is signalled) and its config folder.

    Why a separate launcher process, also for the CLI: the app must be able to stop a job without stopping
    itself, and one code path for both means the CLI test covers the app's launcher too."""

    proc: subprocess.Popen[str]
    folder: Path
    nprocs: int
    _signalled_at: float | None = None

    def terminate(self) -> None:
        """Ask the launcher's process group to stop (SIGTERM): the launcher forwards it to the ranks, which
        cancel cleanly (the CLI's signal handler), so rank 0 removes its temporary output folder."""
        if self._signalled_at is None:
            self._signalled_at = time.monotonic()
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """The launcher's process group, killed (a launcher that did not stop within CANCEL_GRACE_S)."""
        self._signal(getattr(signal, "SIGKILL", signal.SIGTERM))

    def _signal(self, sig: int) -> None:
        if self.proc.poll() is not None:
            return
        try:
            if hasattr(os, "killpg"):
                os.killpg(self.proc.pid, sig)
            else:  # pragma: no cover - Windows has no process groups of this kind
                self.proc.send_signal(sig)
        except (ProcessLookupError, PermissionError):
            pass

    def watch_cancel(self, cancel: Any, grace_s: float = CANCEL_GRACE_S) -> None:
        """One poll step: forward a cancel request once, kill after the grace period."""
        if cancel is not None and cancel.cancelled and self._signalled_at is None:
            self.terminate()
        elif self._signalled_at is not None and time.monotonic() - self._signalled_at > grace_s:
            self.kill()

    def wait(self, cancel: Any = None, grace_s: float = CANCEL_GRACE_S) -> int:
        """The launcher's exit code (rank 0's: 0, 2 bad input, 130 cancelled, 1 other) once it has stopped;
        a cancel request on the way is forwarded. Whatever happens here, the launcher does not outlive it."""
        try:
            while self.proc.poll() is None:
                self.watch_cancel(cancel, grace_s)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=0.2)
            return int(self.proc.returncode)
        except BaseException:  # a second Ctrl+C in the CLI: stop the ranks now
            self.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace_s)
            self.kill()
            raise
        finally:
            self.close()

    def stderr_tail(self, lines: int = 12) -> str:
        """The last lines the launcher and the ranks wrote on stderr (when it went to the folder's file)."""
        path = self.folder / "stderr.log"
        if not path.is_file():
            return ""
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return "\n".join(text[-lines:])

    def close(self) -> None:
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def launch(cfg: MergeConfig, flags: Sequence[str], nprocs: int, *, capture: bool = False) -> Launch:
    """Start `merge` on `nprocs` ranks with torch's own launcher (what `torchrun --standalone` does).

    Why a config file: the ranks must run exactly the validated setting (the demo's paths resolved), not
    re-parse flags that only the caller saw. capture: stdout is a pipe (rank 0's JSON event lines with
    `--events-jsonl`) and stderr goes to a file in the launch folder (its tail explains a crash); otherwise
    both are this process's (the CLI)."""
    folder = Path(tempfile.mkdtemp(prefix="reasonany-ranks-"))
    path = folder / "run.yaml"
    path.write_text(cfg.to_yaml(), encoding="utf-8")
    err = open(folder / "stderr.log", "wb") if capture else None  # noqa: SIM115 - the child holds it
    try:
        proc = subprocess.Popen(
            launch_command(path, flags, nprocs),
            stdout=subprocess.PIPE if capture else None,
            stderr=err,
            text=True,
            encoding="utf-8" if capture else None,
            start_new_session=True,  # its own process group: cancel signals it and its ranks, never the caller
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        if err is not None:
            err.close()
    return Launch(proc, folder, nprocs)


def follow(launched: Launch, listener: Callable[[object], None], cancel: Any) -> Path:
    """Forward rank 0's JSON event lines to `listener` until the launcher exits; the folder rank 0 wrote.

    Raises CancelledError when cancelled (the launcher's group is signalled here), InputError or
    ReasonAnyError with rank 0's one message when a rank failed ("Rank 1 of 2 failed, ..."). Lines that are not
    events (a library's print) go to the log. Why a reader thread: a blocked read must not keep a cancel from
    being forwarded, nor hang on ranks that outlive a killed launcher (they hold the pipe open)."""
    import json
    import logging
    import queue
    import threading

    from ..core.events import from_dict

    log = logging.getLogger("reasonany")
    lines: queue.Queue[str | None] = queue.Queue()
    stream = launched.proc.stdout

    def read() -> None:
        try:
            if stream is not None:
                for line in stream:
                    lines.put(line)
        except (OSError, ValueError):
            pass
        finally:
            lines.put(None)

    threading.Thread(target=read, name="reasonany-rank0-events", daemon=True).start()
    ending: dict[str, Any] = {}
    exited_at: float | None = None
    try:
        while True:
            launched.watch_cancel(cancel)
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                if launched.proc.poll() is None:
                    continue
                exited_at = exited_at or time.monotonic()
                if time.monotonic() - exited_at < 2.0:
                    continue
                break  # the launcher is gone and orphaned ranks still hold the pipe: stop listening
            if line is None:
                break
            try:
                record = json.loads(line)
                kind = record.get("type")
            except (ValueError, AttributeError):
                log.info("rank output: %s", line.rstrip())
                continue
            if kind in (DONE, FAILED):
                ending = record
            else:
                try:
                    listener(from_dict(record))
                except (TypeError, ValueError) as exc:
                    log.warning("an event from rank 0 was not understood (%s): %s", exc, line[:200])
        code = launched.proc.wait()
    except BaseException:
        launched.terminate()
        raise
    finally:
        tail = launched.stderr_tail()
        launched.close()
    if ending.get("type") == DONE and code == 0:
        return Path(ending["out"])
    if (cancel is not None and cancel.cancelled) or (code == 130 and not ending) or ending.get("cancelled"):
        raise CancelledError()
    message = ending.get("message") or (
        f"The {launched.nprocs}-process merge stopped (exit code {code}) without saying why; nothing was "
        f"written. Its last output:\n{tail or '(none)'}"
    )
    raise (InputError if ending.get("input") or code == 2 else ReasonAnyError)(message)


def dead_rank_message(rank: int, nprocs: int, signum: int) -> str:
    """What the user reads when a rank was killed: which one, how, that nobody cancelled, and what to do."""
    try:
        name = f", {signal.Signals(signum).name}"
    except ValueError:
        name = ""
    return (
        f"Rank {rank} of {nprocs} stopped (killed by signal {signum}{name}), so the other processes stopped too and "
        "nothing was written. Nobody cancelled the run: something outside it ended that process, most often the "
        "system when memory runs out (see `dmesg` or the system log). Run again, with more free memory or fewer "
        "processes in --devices."
    )


def _announce_failure(message: str, events: bool) -> None:
    """The launcher's own word on how the job ended: a FAILED line after rank 0's (follow keeps the last one),
    or the message on stderr when nobody reads events."""
    import json

    if events:
        print(json.dumps({"type": FAILED, "message": message, "input": False, "cancelled": False}), flush=True)
    else:
        print(f"error: {message}", file=sys.stderr, flush=True)


def _launcher_main(argv: Sequence[str]) -> int:
    """`python -m reasonany_gui.engine.workflows.launcher NPROCS CONFIG [merge flags]`: run the ranks with torch's
    launcher and exit with rank 0's exit code (2 bad input, 130 cancelled, 1 other), printing no launcher
    traceback: each rank prints its own messages, and rank 0 the relayed error of a failed peer."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    nprocs, config_path, extra = int(argv[0]), Path(argv[1]), list(argv[2:])
    # torchrun --standalone: a c10d rendezvous on a free local port, no restarts (a failed rank fails the run)
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nprocs,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        monitor_interval=0.5,
        start_method="spawn",
    )
    import logging

    logging.getLogger("torch.distributed").setLevel(logging.CRITICAL)  # its W/E lines: the message below says it
    try:
        elastic_launch(config, entrypoint=sys.executable)(*launch_args(config_path, extra))
    except ChildFailedError as exc:
        killed = sorted((f for f in exc.failures.values() if f.exitcode < 0), key=lambda f: f.timestamp)
        if killed:  # a rank that died by a signal (not one the launcher sent): no rank could say why
            rank = next(r for r, f in exc.failures.items() if f is killed[0])
            _announce_failure(dead_rank_message(rank, nprocs, -killed[0].exitcode), "--events-jsonl" in extra)
            return 1
        codes = {f.local_rank: f.exitcode for f in exc.failures.values()}
        first = codes.get(0, next(iter(codes.values()), 1))
        return first if isinstance(first, int) and first > 0 else 1
    except SignalException:  # cancelled: the agent has already stopped the ranks (SIGTERM, then SIGKILL)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(_launcher_main(sys.argv[1:]))

"""The score cache: importance maps kept on disk so a new ratio, scale or scope re-merges in seconds.

Why keyed by content: a key is a hash of the model's content fingerprint, the calibration set's
fingerprint (file + the settings that change its token ids), the score type and the compute precision.
The base model scored on the reasoning data is therefore reused by every later run with that base and
data, whatever the domain model. Maps are stored as sharded safetensors (streamed, one shard in host
memory) in bfloat16 by default (2 B/param; float32 on request). Selection always reads the stored maps,
so a fresh run and a re-tune from the cache select exactly the same elements.

Why safe between processes: an entry is written under a temporary name and renamed into place in one step,
so a reader sees it whole or not at all; an entry that another run put there first (same key, so the same
content) counts as success. Why checksums: `meta.json` holds the SHA-256 of every shard; an entry whose
files are missing, truncated or changed is dropped (with a warning) and recomputed, never used and never a
dead end that only deleting the cache by hand would clear.

Why held: a run uses its entries from identification until it closes (selection, re-tunes, the write), and
`cache clear` in another process (or the app's menu) must not pull them away: a merge then failed at selection,
after all its scoring (issue 22). Each user of an entry holds a lock file of its own under `.locks/` (filelock:
an OS lock, gone when the process dies, however it dies); `clear` skips an entry while any holder's lock is taken
and says so. A short per-key gate makes "hold, then find the entry" and "find no holder, then remove" exclusive.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import torch
from filelock import FileLock, Timeout

from ..core.errors import InputError
from ..core.paths import SAFETENSORS_INDEX
from .checkpoints import TensorFiles
from .writer import TMP_MARK, ShardedWriter, TempFolder, existing_parent, human_bytes, space_with_margin, write_text

SHARD_BYTES = 2_000_000_000
DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}
KEY = re.compile(r"^[0-9a-f]{24}$")
#: a temporary folder of an entry in flight: `.KEY.reasonany-tmp-PID-XXXXXXXX` (writer.TempFolder)
TMP_KEY = re.compile(r"^\.([0-9a-f]{24})" + re.escape(TMP_MARK))
LOCKS = ".locks"
#: how long `clear` waits for a key's gate (a run registering its hold) before it counts the entry as in use
GATE_SECONDS = 5.0
log = logging.getLogger("reasonany")


def cache_key(**parts: object) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


class ScoreMaps(TensorFiles):
    """Score maps read one tensor at a time, with no memory map left open between reads.

    Why: selection reads every map (twice with a global scope), and the selection object and any re-tune keep
    the maps open for the inspector. With the shard handles kept open, every page read stayed mapped and counted
    in the process's resident memory through selection, re-tuning and the whole write: 2 B/param per map, 30–61
    GB at 7B. Dropping the handle after each read keeps at most the tensor being read mapped (its pages go
    with the returned tensor); reopening costs one header parse per tensor."""

    def get(self, name: str) -> torch.Tensor:
        try:
            return super().get(name)
        finally:
            self.release_maps()


class MapWriter:
    """The maps of one cache entry as they arrive (ScoreStore.writer): each converted to the cache precision on
    its own device, handed to the shard writer, and not kept (a shard is written as soon as it is complete)."""

    def __init__(self, writer: ShardedWriter, dtype: torch.dtype) -> None:
        self.writer = writer
        self.dtype = dtype

    def add(self, scores: Mapping[str, torch.Tensor]) -> None:
        for n in sorted(scores):
            self.writer.add(n, scores[n].to(self.dtype))


class Cleared(NamedTuple):
    """What ScoreStore.clear did: entries removed, other things left alone, entries skipped because in use."""

    removed: int
    kept: list[Path]
    in_use: list[Path]


class ScoreStore:
    """A folder of score maps, one sub-folder per key (`meta.json` + safetensors shards + index)."""

    def __init__(self, root: Path, registry: Path | None = None, warn: Callable[[str], None] | None = None) -> None:
        self.root = Path(root)
        #: where temporary folders in flight are listed, so a killed run's half-written map is cleaned later
        self.registry = registry
        #: where "a damaged entry was dropped" goes (the pipeline's log; the Python log otherwise)
        self.warn = warn
        self._verified: dict[str, tuple[Any, ...]] = {}  # key -> stat signature of the files that passed the checksum
        self._holds: dict[str, FileLock] = {}  # key -> this store's own lock file on it (hold/release)

    # ------------------------------------------------------------------ in use (between processes)
    def _gate(self, key: str, timeout: float = -1) -> FileLock:
        locks = self.root / LOCKS
        locks.mkdir(parents=True, exist_ok=True)
        return FileLock(locks / f"{key}.gate", timeout=timeout)

    def hold(self, key: str) -> None:
        """Mark entry `key` in use by this store's owner until release(): `clear` leaves it alone meanwhile.
        Hold before has(): an entry found afterwards stays until released. Holding twice is one hold."""
        if key in self._holds:
            return
        try:
            with self._gate(key):
                lock = FileLock(self.root / LOCKS / f"{key}.{os.getpid()}-{uuid.uuid4().hex[:8]}.held")
                lock.acquire()
        except OSError as exc:  # a file system without locks must not stop a merge: it only loses the protection
            (self.warn or log.warning)(f"The score cache entry {key} could not be marked as in use ({exc}).")
            return
        self._holds[key] = lock

    def release(self) -> None:
        """Let go of every entry this store holds (the pipeline closes); never raises."""
        for lock in self._holds.values():
            lock.release(force=True)
            Path(lock.lock_file).unlink(missing_ok=True)
        self._holds.clear()

    def in_use(self, key: str) -> bool:
        """Whether some process (this one included) holds entry `key`. A holder's lock file whose lock is free
        belongs to a process that died without releasing it: it is removed."""
        held = False
        for f in (self.root / LOCKS).glob(f"{key}.*.held"):
            probe = FileLock(f, blocking=False)
            try:
                probe.acquire()
            except Timeout:
                held = True
                continue
            probe.release(force=True)
            f.unlink(missing_ok=True)
        return held

    def path(self, key: str) -> Path:
        return self.root / key

    def has(self, key: str) -> bool:
        """True when the entry is there and intact (checksums verified once per process and file state).
        A damaged entry is dropped, with a warning, so the caller recomputes it."""
        p = self.path(key)
        if not p.exists():
            return False
        problem = self._problem(key)
        if problem is None:
            return True
        message = f"The cached scores in {p} are damaged ({problem}); they were removed and will be computed again."
        (self.warn or log.warning)(message)
        self.drop(key)
        return False

    def _problem(self, key: str) -> str | None:
        p = self.path(key)
        try:
            meta = json.loads((p / "meta.json").read_text(encoding="utf-8"))
            index = json.loads((p / SAFETENSORS_INDEX).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            return f"{Path(exc.filename).name} is missing"
        except (OSError, ValueError, RecursionError) as exc:
            return f"unreadable meta.json or index: {exc}"
        if not isinstance(meta, dict) or not isinstance(index, dict) or not isinstance(index.get("weight_map"), dict):
            return "meta.json or the index has the wrong shape"
        files = sorted(set(index["weight_map"].values()))
        sums = meta.get("sha256")
        try:
            signature = tuple((f, os.stat(p / f).st_size, os.stat(p / f).st_mtime_ns) for f in files)
        except (OSError, TypeError, ValueError):
            return "a shard named in the index is missing"
        if self._verified.get(key) == signature:
            return None
        if isinstance(sums, dict):
            if sorted(sums) != files:
                return "the index and the checksums name different shards"
            for f in files:
                if file_sha256(p / f) != sums[f]:
                    return f"{f} does not match its checksum"
        else:  # an entry written before checksums: at least every header must read and match its file size
            try:
                TensorFiles.from_folder(p)
            except InputError as exc:
                return str(exc)
        self._verified[key] = signature
        return None

    def drop(self, key: str) -> None:
        """Remove an entry: renamed aside first (one atomic step for readers), then deleted."""
        p = self.path(key)
        aside = self.root / f".{key}{TMP_MARK}drop-{uuid.uuid4().hex[:8]}"
        try:
            os.replace(p, aside)
        except OSError:
            aside = p
        shutil.rmtree(aside, ignore_errors=True)
        self._verified.pop(key, None)

    def open(self, key: str) -> TensorFiles:
        return ScoreMaps.from_folder(self.path(key))

    def meta(self, key: str) -> dict[str, Any]:
        return json.loads((self.path(key) / "meta.json").read_text())

    def write(self, key: str, scores: dict[str, torch.Tensor], precision: str, meta: dict[str, Any]) -> Path:
        """Write maps streamed (each converted on its own device before the copy to the host), then rename the
        finished entry into place; an intact entry already there (another run's) is kept and counts as done."""
        with self.writer(key, {n: t.numel() for n, t in scores.items()}, precision, meta) as entry:
            entry.add(scores)
        return self.path(key)

    @contextmanager
    def writer(self, key: str, numels: Mapping[str, int], precision: str, meta: dict[str, Any]) -> Iterator[MapWriter]:
        """An entry written group by group: `add` takes some of the maps at a time, in any grouping, and the
        entry is checksummed and renamed into place when the block ends (removed if it raises).

        Why: the low-RAM mode (MergeConfig.score_groups) scores one group of tensors per pass and must free that
        group's float32 accumulators before the next pass; the whole set of maps never exists in memory at once.
        `numels` names every map the entry will hold, so the shard plan is the same as a one-shot write's."""
        dtype = DTYPES[precision]
        names = sorted(numels)
        final = self.path(key)
        with TempFolder(final, self.registry) as tmp:
            entry = MapWriter(
                ShardedWriter(
                    tmp.path, [(n, int(numels[n]) * dtype.itemsize) for n in names], SHARD_BYTES, prefix="scores"
                ),
                dtype,
            )
            yield entry
            entry.writer.close()
            sums = {f: file_sha256(tmp.path / f) for f in sorted(set(entry.writer.file_of.values()))}
            write_text(
                tmp.path / "meta.json",
                json.dumps({**meta, "precision": precision, "created": time.time(), "sha256": sums}, indent=2),
            )
            if self.has(key):  # another run finished the same entry first (same key, same content); has()
                return  # drops a damaged one, so the rename below can replace it
            try:
                tmp.commit()
            except OSError:
                if not self.has(key):  # the rename lost a race, and what won is not an intact entry
                    raise

    def check_space(self, needed_bytes: int, maps: int, temporary: bool) -> None:
        """Refuse to start identification when the maps about to be computed cannot be saved (see check_space)."""
        check_space(self.root, needed_bytes, maps, temporary)

    def size_bytes(self) -> int:
        root = self.root.resolve()
        if not root.is_dir():
            return 0
        return sum(f.stat().st_size for f in root.rglob("*") if f.is_file())

    def clear(self) -> Cleared:
        """Remove every score entry (and leftovers of interrupted writes) from the cache folder, following a
        symlinked folder to its target, except entries in use by a run (held: see hold), which are returned in
        `in_use`. Anything else found there is left alone and returned in `kept`."""
        root = self.root.resolve()
        removed, kept, in_use = 0, [], []
        if not root.is_dir():
            return Cleared(0, [], [])
        for child in sorted(root.iterdir()):
            if child.name == LOCKS:
                continue
            key = child.name if KEY.match(child.name) else (m.group(1) if (m := TMP_KEY.match(child.name)) else None)
            if not child.is_dir() or child.is_symlink() or (key is None and TMP_MARK not in child.name):
                kept.append(child)
            elif key is not None and not self._remove_unless_held(key, child):
                in_use.append(child)
            else:
                if key is None:
                    shutil.rmtree(child, ignore_errors=True)
                removed += 1
        return Cleared(removed, kept, in_use)

    def _remove_unless_held(self, key: str, folder: Path) -> bool:
        """Remove `folder` (entry `key` or one of its temporary folders) unless the entry is held; under the
        key's gate, so no run can start holding it between the look and the removal."""
        try:
            with self._gate(key, GATE_SECONDS):
                if self.in_use(key):
                    return False
                aside = folder.parent / f".{key}{TMP_MARK}clear-{uuid.uuid4().hex[:8]}"
                os.replace(folder, aside)
        except Timeout:
            return False
        except OSError:
            aside = folder
        shutil.rmtree(aside, ignore_errors=True)
        self._verified.pop(key, None)
        return True


def check_cache_root(root: Path) -> None:
    """InputError unless `root` is (or can become) a writable folder: scores are saved there after identification."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        os.rmdir(tempfile.mkdtemp(prefix=".reasonany-probe-", dir=root))
    except OSError as exc:
        raise InputError(
            f"The score cache folder {root} cannot be used ({exc.strerror or exc}), so the importance "
            "scores could not be saved after identification. Make it a writable folder (or set "
            "REASONANY_HOME to one), or turn the score cache off (--no-cache)."
        ) from None


def map_bytes(num_params: int, precision: str) -> int:
    """Disk bytes of one score map: one value per scored parameter in the cache precision."""
    return int(num_params) * DTYPES[precision].itemsize


def temp_score_root() -> Path:
    """A fresh folder for the scores of a `--no-cache` run, on disk under the app's cache folder.

    Why not the system temp folder: on many Linux systems /tmp is tmpfs, i.e. RAM, and the maps of a 7B model
    take 30–61 GB there, on top of the run's own memory. The folder is named with TMP_MARK and registered by the
    caller, so a killed run's maps are removed at the next start."""
    from ..core.paths import cache_dir

    base = cache_dir() / "tmp"
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"scores{TMP_MARK}", dir=base))


def check_space(root: Path, needed_bytes: int, maps: int, temporary: bool) -> None:
    """InputError with what, where and what to do when the disk of `root` cannot take `needed_bytes` (+5 %, 50 MB).

    Checked before the models are loaded, not when the first map is saved after an hour of identification."""
    if needed_bytes <= 0:
        return
    where = existing_parent(Path(root))
    try:
        free = shutil.disk_usage(where).free
    except OSError:
        return  # no answer from the file system: the write itself reports a full disk
    want = space_with_margin(needed_bytes)
    if free >= want:
        return
    what = (
        "the temporary score maps of this run (--no-cache keeps them on disk until the run ends)"
        if temporary
        else "the score cache"
    )
    fix = (
        "Free some space there, or set REASONANY_HOME to a folder on a larger disk."
        if temporary
        else "Free some space there, clear the score cache (`reasonany cache clear`, or the app's menu), or set "
        "REASONANY_HOME to a folder on a larger disk."
    )
    raise InputError(
        f"Not enough free disk space for {what} in {root}: {human_bytes(want)} needed ({maps} score "
        f"map(s), {human_bytes(needed_bytes)}, plus a margin of 5 % and 50 MB), {human_bytes(free)} "
        f"free. {fix}"
    )

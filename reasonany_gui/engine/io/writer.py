"""Writing outputs safely: sharded safetensors streamed tensor by tensor, inside a temporary folder that
is renamed to its final name only when everything is written.

Why: a cancelled, failed or killed run must never leave a half-written model under the final name, and
host memory must stay near one shard whatever the model size (a 7B model is 15 GB). The shard plan is
fixed up front from the tensor sizes, so shard file names (model-0000i-of-0000n) are final when written.
Temporary folders are registered in the cache folder, so a run killed mid-save is cleaned up at the next
start (see `clean_stale`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import torch

from ..core.errors import InputError, WriteError
from ..core.paths import SAFETENSORS_INDEX

TMP_MARK = ".reasonany-tmp-"


def plan_shards(sizes: list[tuple[str, int]], max_bytes: int) -> list[list[str]]:
    """Greedy in the given order: a new shard when the next tensor would overflow (a big tensor gets its own)."""
    shards: list[list[str]] = [[]]
    used = 0
    for name, nbytes in sizes:
        if shards[-1] and used + nbytes > max_bytes:
            shards.append([])
            used = 0
        shards[-1].append(name)
        used += nbytes
    return shards


#: an output tensor's dtype and shape, known before it is computed (from the base's header)
Layout = tuple[torch.dtype, tuple[int, ...]]


class ShardedWriter:
    """Receives tensors in plan order and writes each shard as soon as it is complete.

    With `layouts` (every tensor's dtype and shape up front), each tensor goes straight into its shard file at its
    final offset and is not kept: memory holds one tensor, not a shard (a default 5 GB shard holds a whole 1 B
    model). Without them (score maps: shapes unknown), a shard is held until complete. Both write save_file's bytes.
    """

    def __init__(
        self,
        folder: Path,
        sizes: list[tuple[str, int]],
        max_bytes: int,
        prefix: str = "model",
        metadata: dict[str, str] | None = None,
        layouts: dict[str, Layout] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.shards = plan_shards(sizes, max_bytes)
        n = len(self.shards)
        self.file_of = {
            name: f"{prefix}-{i + 1:05d}-of-{n:05d}.safetensors" for i, s in enumerate(self.shards) for name in s
        }
        self._shard_of = {name: i for i, s in enumerate(self.shards) for name in s}
        self._layouts = layouts
        self._pending: dict[str, torch.Tensor] = {}  # held tensors (no layouts)
        self._arrived: set[str] = set()
        self._streams: dict[int, _ShardStream] = {}  # open shard files (layouts)
        self._next = 0
        self._total = 0
        self._metadata = {"format": "pt", **(metadata or {})}

    @property
    def held_bytes(self) -> int:
        """Bytes of tensors received and not yet written: what the writer adds to host memory."""
        return sum(t.numel() * t.element_size() for t in self._pending.values())

    def add(self, name: str, tensor: torch.Tensor) -> int:
        """Take one tensor; returns how many shards were completed as a result (0 if none)."""
        tensor = tensor.detach().to("cpu").contiguous()
        if self._layouts is None:
            self._pending[name] = tensor
        else:
            self._stream(name, tensor)
        self._arrived.add(name)
        flushed = 0
        while self._next < len(self.shards) and all(n in self._arrived for n in self.shards[self._next]):
            self._finish(self._next)
            self._next += 1
            flushed += 1
        return flushed

    def _stream(self, name: str, tensor: torch.Tensor) -> None:
        assert self._layouts is not None
        if (tensor.dtype, tuple(tensor.shape)) != self._layouts[name]:
            raise RuntimeError(f"{name}: got {tensor.dtype} {tuple(tensor.shape)}, planned {self._layouts[name]}")
        i = self._shard_of[name]
        if i not in self._streams:
            names = self.shards[i]
            path = self.folder / self.file_of[names[0]]
            self._streams[i] = _ShardStream(path, {n: self._layouts[n] for n in names}, self._metadata)
        self._streams[i].put(name, tensor)
        self._total += tensor.numel() * tensor.element_size()

    def _finish(self, i: int) -> None:
        """Close a streamed shard's file, or write a held shard with save_file."""
        if i in self._streams:
            self._streams.pop(i).close()
            return
        from safetensors.torch import save_file

        names = self.shards[i]
        tensors = {n: self._pending.pop(n) for n in names}
        self._total += sum(t.numel() * t.element_size() for t in tensors.values())
        path = self.folder / self.file_of[names[0]]
        try:
            save_file(tensors, str(path), metadata=self._metadata)
        except Exception as exc:
            raise write_error(exc, path) from None

    def abort(self) -> None:
        """Close the shard files of a run that stopped midway (its temporary folder is removed after)."""
        for stream in self._streams.values():
            stream.file.close()
        self._streams.clear()
        self._pending.clear()

    def close(self) -> None:
        """Write the index; every planned tensor must have arrived."""
        if self._next != len(self.shards):
            missing = [n for s in self.shards[self._next :] for n in s if n not in self._arrived][:5]
            raise RuntimeError(f"ShardedWriter closed before all tensors arrived (e.g. {missing})")
        index = {"metadata": {"total_size": self._total}, "weight_map": dict(sorted(self.file_of.items()))}
        write_text(self.folder / SAFETENSORS_INDEX, json.dumps(index, indent=2))


class _ShardStream:
    """One shard file written tensor by tensor: the header first, then each tensor's bytes at its offset."""

    def __init__(self, path: Path, layouts: dict[str, Layout], metadata: dict[str, str]) -> None:
        self.path = path
        header, self.offsets = safetensors_header(layouts, metadata)
        try:
            self.file = open(path, "wb")  # noqa: SIM115 - open across add() calls, closed by close()/abort()
            self.file.write(header)
        except OSError as exc:
            raise write_error(exc, path) from None

    def put(self, name: str, tensor: torch.Tensor) -> None:
        data = tensor.reshape(-1).view(torch.uint8).numpy()  # the tensor's own bytes, not a copy
        try:
            self.file.seek(self.offsets[name])
            self.file.write(data.data)
        except OSError as exc:
            self.file.close()
            raise write_error(exc, self.path) from None

    def close(self) -> None:
        try:
            self.file.close()
        except OSError as exc:
            raise write_error(exc, self.path) from None


def safetensors_header(layouts: dict[str, Layout], metadata: dict[str, str]) -> tuple[bytes, dict[str, int]]:
    """The header safetensors' save_file would write for tensors of these layouts (length prefix included), and
    each tensor's offset in the file. Why ask safetensors: its order (by dtype, then name) and dtype names are its
    own; saving empty stand-ins costs nothing and keeps the bytes identical to save_file's."""
    from safetensors.torch import save

    probe = save({n: torch.empty((0,), dtype=d) for n, (d, _) in layouts.items()}, metadata=metadata)
    size = int.from_bytes(probe[:8], "little")
    header: dict[str, Any] = {}
    pos = 0
    for name, info in json.loads(probe[8 : 8 + size]).items():
        if name == "__metadata__":
            header[name] = info
            continue
        dtype, shape = layouts[name]
        nbytes = dtype.itemsize * math.prod(shape)
        header[name] = {"dtype": info["dtype"], "shape": list(shape), "data_offsets": [pos, pos + nbytes]}
        pos += nbytes
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)  # safetensors pads the header to 8 bytes with spaces
    start = 8 + len(text)
    offsets = {n: start + h["data_offsets"][0] for n, h in header.items() if n != "__metadata__"}
    return len(text).to_bytes(8, "little") + text, offsets


def write_text(path: Path, text: str) -> None:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise write_error(exc, path) from None


#: how safetensors (Rust) spells a full disk in its own error type: it raises no OSError, so errno is not there
#: e.g. SafetensorError('Error while serializing: I/O error: No space left on device (os error 28)') on a full tmpfs
_DISK_FULL = ("No space left on device", "(os error 28)", "StorageFull", "Disk quota exceeded", "(os error 122)")


def write_error(exc: Exception, path: Path) -> WriteError:
    full = (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)) or any(
        m in str(exc) for m in _DISK_FULL
    )
    if full:
        return WriteError(
            f"The disk is full while writing {path}. Free some space (see the size estimate) and run again."
        )
    return WriteError(f"Writing {path} failed: {exc}. Check that the folder is writable and the disk has space.")


def _read_umask() -> int:
    """The process umask, read without changing it where the system allows (os.umask is process-wide and racy)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(folder: Path) -> None:
    """Give every file and folder under `folder` the mode a plain open()/mkdir() would (0644/0755 with the usual
    umask). Why: safetensors writes its files 0600, so a merge saved for a team or a server was unreadable to all
    but its owner."""
    mask = _read_umask()
    for root, dirs, files in os.walk(folder):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o777 & ~mask)
        for f in files:
            os.chmod(os.path.join(root, f), 0o666 & ~mask)
    os.chmod(folder, 0o777 & ~mask)


# ---------------------------------------------------------------------- output folder lifecycle
def check_output_target(out: Path, inputs: list[Path]) -> Path:
    """Refuse an output folder that would overwrite something: existing and non-empty, an input model
    or inside one, or in a place that cannot be written."""
    given = Path(out).expanduser().absolute()
    out = given.resolve()
    _refuse_long_name(out)
    from ..core.paths import cache_dir

    cache = Path(cache_dir()).expanduser().absolute()
    # the cache (or its score folder) may be a symlink to elsewhere: compare as given and as resolved
    caches = {cache, cache.resolve(), (cache / "scores").resolve()}
    if any(c == p or c in p.parents for c in caches for p in (given, out)):
        raise InputError(
            f"The output folder {out} is inside the app's cache folder {cache}, which `reasonany cache "
            "clear` empties. Choose another output folder."
        )
    for src in inputs:
        src = Path(src).resolve()
        if out == src or src in out.parents:
            raise InputError(
                f"The output folder {out} is (inside) the input model folder {src}; input folders are never "
                "modified. Choose another output folder."
            )
        if out in src.parents:
            raise InputError(f"The output folder {out} contains the input model {src}. Choose another output folder.")
    if out.exists():
        if not out.is_dir():
            raise InputError(f"The output path {out} is a file. Choose a new folder name.")
        if any(out.iterdir()):
            raise InputError(
                f"The output folder {out} already exists and is not empty. Choose a new folder or empty it."
            )
    parent = existing_parent(out.parent)  # where the temporary folder will be made
    if not parent.is_dir():
        raise InputError(
            f"The output folder {out} cannot be created: {parent} is a file, not a folder. Choose another place."
        )
    _probe_writable(parent, out)
    return out


def _refuse_long_name(out: Path) -> None:
    """The temporary folder's name is the output's plus ~33 characters: it must fit the file system's limit."""
    parent = existing_parent(out.parent)
    try:
        limit = os.pathconf(parent, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        limit = 255
    temp = f".{out.name}{TMP_MARK}{4194304}-{'0' * 8}"  # the longest pid Linux hands out
    longest = max(len(os.fsencode(temp)), len(os.fsencode(out.name + "-99")))
    if longest > limit:
        room = limit - (longest - len(os.fsencode(out.name)))
        raise InputError(
            f"The output folder name {out.name[:40]}… is {len(os.fsencode(out.name))} bytes long; this "
            f"file system allows names of {limit} bytes, and the run needs room for a temporary "
            f"suffix. Choose a name of at most {room} bytes."
        )


def _probe_writable(folder: Path, out: Path) -> None:
    """Make and remove an empty probe folder. Why not os.access: it says yes to root on read-only mounts
    and network shares, and the run would then fail only at the end, after hours of identification."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".reasonany-probe-", dir=folder))
    except OSError as exc:
        raise InputError(
            f"The output folder {out} cannot be created: {folder} is not writable "
            f"({exc.strerror}). Choose another place."
        ) from None


def check_free_space(out: Path, needed_bytes: int) -> None:
    parent = existing_parent(Path(out))
    free = shutil.disk_usage(parent).free
    with_margin = space_with_margin(needed_bytes)
    if free < with_margin:
        raise InputError(
            f"Not enough free disk space for the output in {parent}: {human_bytes(with_margin)} needed (the output, "
            f"{human_bytes(needed_bytes)}, plus a safety margin of 5 % and 50 MB), {human_bytes(free)} free. Free some "
            "space or choose another output folder."
        )


def space_with_margin(needed_bytes: int) -> int:
    """What the free-space check asks for: the output plus 5 % and 50 MB (file system overhead, logs, the cache)."""
    return int(needed_bytes * 1.05 + 50_000_000)


def existing_parent(p: Path) -> Path:
    p = Path(p)
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def human_bytes(n: float | int | None) -> str:
    """'512 B', '1.5 MB' (decimal units, as disks are sold); 'unknown' for None. The one byte formatter of the
    engine's messages, the CLI and the app."""
    if n is None:
        return "unknown"
    n = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


class TempFolder:
    """A folder written under a temporary name next to `final` and renamed at commit.

    Use as a context manager: leaving it by an exception (cancel, error) removes the temporary folder.
    """

    def __init__(self, final: Path, registry: Path | None = None) -> None:
        self.final = Path(final)
        self.path = self.final.parent / f".{self.final.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.registry = registry
        self.committed = False
        #: parent folders this run created (removed again, when empty, if the run does not finish)
        self._made: list[Path] = []

    def __enter__(self) -> TempFolder:
        try:
            missing = []
            p = self.final.parent
            while not p.exists() and p != p.parent:
                missing.append(p)
                p = p.parent
            self.final.parent.mkdir(parents=True, exist_ok=True)
            self._made = missing  # deepest first
            self.path.mkdir()
        except OSError as exc:
            self._remove_made()
            raise write_error(exc, self.path) from None
        register_temp_folder(self.registry, self.path, add=True)
        return self

    def _remove_made(self) -> None:
        for p in self._made:
            try:
                p.rmdir()  # only if empty: never remove what someone else put there
            except OSError:
                break

    def commit(self, elsewhere_if_taken: bool = False) -> Path:
        """Rename to the final name. With `elsewhere_if_taken`, a final folder that something else filled
        while the run worked is left alone and the output goes to the first free NAME-2, NAME-3, …: hours
        of work are never thrown away at the last step, and nothing is overwritten."""
        # a file system without modes (FAT, some network shares): the files are written all the same
        with contextlib.suppress(OSError):
            apply_umask(self.path)
        try:
            if self.final.exists():  # an empty folder the user chose (checked empty before the run)
                self.final.rmdir()
            os.replace(self.path, self.final)
        except OSError:
            if not (elsewhere_if_taken and self.final.exists()):
                raise
            self.final = _free_name(self.final)
            os.replace(self.path, self.final)
        self.committed = True
        register_temp_folder(self.registry, self.path, add=False)
        return self.final

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            shutil.rmtree(self.path, ignore_errors=True)
            register_temp_folder(self.registry, self.path, add=False)
            self._remove_made()


def _free_name(final: Path) -> Path:
    i = 2
    while final.with_name(f"{final.name}-{i}").exists():
        i += 1
    return final.with_name(f"{final.name}-{i}")


def read_registry(registry: Path) -> list[dict[str, Any]]:
    """The registry's entries ({"path": str, "pid": int}). A file of another shape (hand-edited, damaged,
    written by something else) is renamed aside to `temp-folders.json.broken-TIME` and treated as empty: it
    must never block every run until someone deletes it by hand."""
    registry = Path(registry)
    if not registry.exists():
        return []
    try:
        entries = json.loads(registry.read_text(encoding="utf-8"))
        ok = isinstance(entries, list) and all(
            isinstance(e, dict)
            and isinstance(e.get("path"), str)
            and isinstance(e.get("pid"), int)
            and not isinstance(e.get("pid"), bool)
            for e in entries
        )
    except (OSError, ValueError, RecursionError):
        entries, ok = None, False
    if ok:
        return entries
    try:
        os.replace(registry, registry.with_name(f"{registry.name}.broken-{int(time.time())}"))
        logging.getLogger("reasonany").warning(
            "The temporary-folders list %s was damaged; it was renamed aside.", registry
        )
    except OSError:
        pass
    return []


def register_temp_folder(registry: Path | None, path: Path, add: bool) -> None:
    """Remember temporary folders in flight (pid + path), so a killed run's leftovers can be found later."""
    if registry is None:
        return
    entries = read_registry(registry)
    entries = [e for e in entries if e.get("path") != str(path)]
    if add:
        entries.append({"path": str(path), "pid": os.getpid()})
    try:  # write-then-rename: a kill mid-write must not lose the list (and with it the leftovers' names)
        registry.parent.mkdir(parents=True, exist_ok=True)
        tmp = registry.with_name(f"{registry.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(entries))
        os.replace(tmp, registry)
    except OSError:
        pass


def stale_temp_folders(registry: Path) -> list[Path]:
    """Temporary folders of runs whose process is gone (killed mid-save)."""
    return [Path(e["path"]) for e in read_registry(registry) if not _alive(e["pid"]) and Path(e["path"]).exists()]


def clean_stale(registry: Path) -> list[Path]:
    """Remove the leftovers of killed runs; returns what was removed (logged by the caller). Entries whose
    folder is already gone (a second Ctrl+C ended the run between its cleanup and its registry update) and
    whose process is gone are dropped from the list too."""
    removed = []
    for p in stale_temp_folders(registry):
        if TMP_MARK in p.name:  # never remove anything we did not name ourselves
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
        register_temp_folder(registry, p, add=False)
    for e in read_registry(registry):
        if not _alive(e["pid"]) and not Path(e["path"]).exists():
            register_temp_folder(registry, Path(e["path"]), add=False)
    return removed


def _alive(pid: int) -> bool:
    return pid == os.getpid() or (pid > 0 and psutil.pid_exists(pid))

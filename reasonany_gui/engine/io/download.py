"""Getting a model from the Hugging Face Hub into the local cache: size first, then the files, with cancel and resume.

Why huggingface_hub and its normal cache: `resolve_model`, `cached_repo_ids`, other tools and a later resume all
look there. huggingface_hub keeps a partial file as `blobs/<hash>.incomplete` and continues it on the next call, so
resume is its own. Why one file at a time (`hf_hub_download`): a progress event per chunk and a cancel check
between chunks and files. Why `config.json` last and new snapshot entries removed on cancel or failure: without
huggingface_hub's tree listing (written only by `snapshot_download`), a snapshot folder counts as present as soon
as one file is linked into it; a half-filled one must not be taken for a model (blobs stay, so nothing is fetched
twice). Safe by default: safetensors only (pickle weights only when allowed), never code files. The token is never
kept by the app: `login` hands it to huggingface_hub, which stores it where `hf auth login` would.
"""

from __future__ import annotations

import contextlib
import fnmatch
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import CancelledError, InputError
from ..core.events import CancelToken, Listener, Progress, null_listener
from ..core.paths import SAFETENSORS_INDEX

PICKLE_INDEX = "pytorch_model.bin.index.json"
#: the files a merge (and the merged model's tokenizer and chat template) needs, besides the weights
SIDE_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "chat_template.jinja",
    "chat_template.json",
)
SIDE_PATTERNS = ("tokenizer*.json", "*.tiktoken", "tokenizer*.model")
PICKLE_PATTERNS = ("*.bin", "*.pt", "*.pth")
CODE_PATTERNS = ("*.py", "*.pyc", "*.so", "*.dll", "*.sh", "*.exe")
#: a progress event at most this often per file (the GUI redraws on a timer anyway)
EMIT_EVERY_S = 0.1


@dataclass(frozen=True)
class PlanFile:
    name: str
    size: int  # bytes (0 when the Hub did not say)
    cached: bool  # already complete in the local cache


@dataclass(frozen=True)
class DownloadPlan:
    """What a download of `repo_id` at `revision` (a commit hash) fetches, and how much of it is already here."""

    repo_id: str
    revision: str
    files: tuple[PlanFile, ...]
    skipped: tuple[str, ...] = ()  # files in the repo that are left out (pickle weights, code, other formats)
    gated: bool = False
    token: str | None = field(default=None, repr=False, compare=False)  # only for this session, never saved

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def cached_bytes(self) -> int:
        return sum(f.size for f in self.files if f.cached)

    @property
    def remaining_bytes(self) -> int:
        return self.total_bytes - self.cached_bytes

    @property
    def missing(self) -> tuple[PlanFile, ...]:
        return tuple(f for f in self.files if not f.cached)


def _cache_dir() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE  # read at call time: tests and HF_HOME move it


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in patterns)


def choose_files(names: list[str], allow_pickle: bool = False) -> tuple[list[str], list[str]]:
    """(files to fetch, files left out) from a repo's file list: top-level weights, config, tokenizer, template."""
    top = [n for n in names if "/" not in n]
    safetensors = [n for n in top if n.endswith(".safetensors")]
    if SAFETENSORS_INDEX in top:  # sharded: the shards, not a second consolidated copy (Mistral ships both)
        safetensors = [n for n in safetensors if not n.startswith("consolidated")]
    if safetensors:
        weights = safetensors + ([SAFETENSORS_INDEX] if SAFETENSORS_INDEX in top else [])
    elif allow_pickle:
        weights = [n for n in top if _matches(n, PICKLE_PATTERNS)] + ([PICKLE_INDEX] if PICKLE_INDEX in top else [])
    else:
        weights = []
    side = [n for n in top if n in SIDE_FILES or _matches(n, SIDE_PATTERNS)]
    keep = [n for n in dict.fromkeys(weights + side) if not _matches(n, CODE_PATTERNS)]
    return keep, [n for n in names if n not in keep]


def _hub_error(exc: BaseException, repo_id: str, token: str | None) -> InputError | None:
    """One clear message for the Hub's errors (what, which repo, what to do); None for errors that are not the Hub's."""
    from huggingface_hub import errors as hf

    name = type(exc).__name__
    if isinstance(exc, hf.GatedRepoError):
        if token:
            return InputError(
                f"Model {repo_id!r} is gated and your Hugging Face account has no access yet. Accept "
                f"its terms on https://huggingface.co/{repo_id} and try again."
            )
        return InputError(
            f"Model {repo_id!r} is gated: log in with your Hugging Face token (after accepting its "
            f"terms on https://huggingface.co/{repo_id}), then try again."
        )
    if isinstance(exc, hf.RevisionNotFoundError):
        return InputError(f"Model {repo_id!r} has no such revision on the Hugging Face Hub: check the revision.")
    if isinstance(exc, hf.RepositoryNotFoundError):
        extra = "your token has no access to it" if token else "if it is private, log in with your Hugging Face token"
        return InputError(f"No model {repo_id!r} on the Hugging Face Hub: check the id (owner/name); {extra}.")
    if (
        isinstance(exc, hf.OfflineModeIsEnabled)
        or "ConnectError" in name
        or "ConnectionError" in name
        or "Timeout" in name
        or name == "LocalEntryNotFoundError"
    ):
        return InputError(
            f"Could not reach the Hugging Face Hub for {repo_id!r}: you are offline (or HF_HUB_OFFLINE "
            "is set). Connect to the internet and try again; a download resumes where it stopped."
        )
    if isinstance(exc, hf.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status == 401:
            return InputError(
                f"The Hugging Face Hub refused the token for {repo_id!r}: log in again with a valid "
                "token (Settings → Access Tokens on huggingface.co)."
            )
        return InputError(
            f"The Hugging Face Hub answered with an error for {repo_id!r} ({status or exc}). "
            "Try again later; a download resumes where it stopped."
        )
    if isinstance(exc, hf.HFValidationError):
        return InputError(f"{repo_id!r} is not a valid Hugging Face repo id: check the id (owner/name).")
    return None


def plan(
    repo_id: str, revision: str | None = None, token: str | None = None, allow_pickle: bool = False
) -> DownloadPlan:
    """Ask the Hub (metadata only) which files a merge needs and their sizes, and mark those already cached."""
    from huggingface_hub import HfApi, try_to_load_from_cache

    repo_id = str(repo_id).strip()
    try:
        info = HfApi().model_info(repo_id, revision=revision, files_metadata=True, token=token or None)
    except Exception as exc:
        err = _hub_error(exc, repo_id, token)
        if err is None:
            raise
        raise err from None
    sizes = {s.rfilename: int(s.size or 0) for s in (info.siblings or [])}
    keep, skipped = choose_files(sorted(sizes), allow_pickle)
    if not any(n.endswith((".safetensors", ".bin", ".pt", ".pth")) for n in keep):
        pickles = [n for n in sizes if _matches(n, PICKLE_PATTERNS) and "/" not in n]
        why = (
            " It has only pickle weights (.bin/.pt), which the app does not load (they can run code): pick a repo "
            f"with safetensors weights, or, if you trust its source, fetch it with `hf download {repo_id}` and "
            "merge on the command line with --allow-pickle."
            if pickles
            else " Pick a repo with safetensors weights."
        )
        raise InputError(f"Model {repo_id!r} has no weight files a merge can use.{why}")
    if "config.json" not in keep:
        raise InputError(f"Model {repo_id!r} has no config.json: it is not a transformers model a merge can use.")
    sha = info.sha or revision or "main"
    files = []
    for name in keep:
        hit = try_to_load_from_cache(repo_id, name, cache_dir=_cache_dir(), revision=sha)
        files.append(PlanFile(name, sizes[name], isinstance(hit, str)))
    return DownloadPlan(repo_id, sha, tuple(files), tuple(skipped), bool(getattr(info, "gated", False)), token or None)


def snapshot_folder(p: DownloadPlan) -> Path:
    from huggingface_hub.file_download import repo_folder_name

    return Path(_cache_dir()) / repo_folder_name(repo_id=p.repo_id, repo_type="model") / "snapshots" / p.revision


def _progress_bar_class(emit: Callable[..., None], cancel: CancelToken) -> type:
    """A tqdm class for huggingface_hub that reports bytes and stops a file mid-way when cancelled."""
    from tqdm.auto import tqdm

    class Hook(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True  # the app and CLI show their own progress
            kwargs.pop("name", None)
            super().__init__(*args, **kwargs)
            self.done_bytes = int(kwargs.get("initial") or 0)
            emit(self.done_bytes, force=True)

        def update(self, n: float | None = 1) -> bool | None:
            self.done_bytes += int(n or 0)
            emit(self.done_bytes)
            cancel.check()  # the partial blob stays as .incomplete; the next download continues it
            return super().update(n)

    return Hook


def download(p: DownloadPlan, listener: Listener = null_listener, cancel: CancelToken | None = None) -> Path:
    """Fetch the plan's missing files into the HF cache; returns the snapshot folder (what `resolve_model` finds).

    Progress("download", fraction, overall, message) per chunk (fraction: of the current file, overall: of all bytes
    including those already cached). Cancelled or failed, the snapshot entries this call made are removed (their
    blobs stay, partial ones as .incomplete), so a later `resolve_model` does not take a half model for a whole one
    and a second download resumes."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    cancel = cancel or CancelToken()
    snap = snapshot_folder(p)
    before = _entries(snap)
    total = max(p.total_bytes, 1)
    done = p.cached_bytes
    order = [f for f in p.files if f.name != "config.json"] + [f for f in p.files if f.name == "config.json"]
    todo = [
        f
        for f in order
        if not (
            f.cached
            and isinstance(try_to_load_from_cache(p.repo_id, f.name, cache_dir=_cache_dir(), revision=p.revision), str)
        )
    ]
    listener(Progress("download", 0.0, done / total, f"{len(todo)} files to download from {p.repo_id}"))
    try:
        for i, f in enumerate(todo):
            cancel.check()
            last = [0.0]

            def emit(
                n: int, force: bool = False, f: Any = f, i: int = i, base: int = done, last: list[float] = last
            ) -> None:
                now = time.monotonic()
                if force or now - last[0] >= EMIT_EVERY_S:
                    last[0] = now
                    frac = min(n / f.size, 1.0) if f.size else 0.0
                    listener(
                        Progress(
                            "download", frac, min((base + n) / total, 1.0), f"file {i + 1} of {len(todo)}: {f.name}"
                        )
                    )

            hf_hub_download(
                p.repo_id,
                f.name,
                revision=p.revision,
                cache_dir=_cache_dir(),
                token=p.token,
                tqdm_class=_progress_bar_class(emit, cancel),
            )
            done += f.size
            listener(Progress("download", 1.0, min(done / total, 1.0), f"file {i + 1} of {len(todo)}: {f.name}"))
        cancel.check()
    except BaseException as exc:
        _remove_new_entries(snap, before)
        if isinstance(exc, CancelledError):
            raise CancelledError(
                "The download was cancelled. What was fetched stays in the Hugging Face cache: "
                "Download again to resume."
            ) from None
        err = _hub_error(exc, p.repo_id, p.token)
        if err is not None:
            raise err from None
        if isinstance(exc, OSError) and getattr(exc, "errno", None) == 28:
            raise InputError(
                f"The disk of the Hugging Face cache ({_cache_dir()}) is full: free space (the model "
                f"needs {p.remaining_bytes / 1e9:.1f} GB) and Download again to resume."
            ) from None
        raise
    return snap


def fetch(
    repo_id: str, listener: Listener = null_listener, cancel: CancelToken | None = None, allow_pickle: bool = False
) -> Path:
    """plan + download: what `reasonany merge --allow-download` (via `resolve_model`) uses."""
    return download(plan(repo_id, allow_pickle=allow_pickle), listener, cancel)


def _entries(folder: Path) -> set[Path]:
    if not folder.is_dir():
        return set()
    return {q for q in folder.rglob("*") if q.is_symlink() or q.is_file()}


def _remove_new_entries(snap: Path, before: set[Path]) -> None:
    """Unlink the snapshot entries made by this download (links to blobs; the blobs themselves stay)."""
    for q in _entries(snap) - before:
        try:
            if q.is_symlink():
                q.unlink()
            # a real file (no symlinks on this system) is the data itself: leave it, config.json comes last
        except OSError:
            pass
    if snap.is_dir() and not any(snap.iterdir()):
        with contextlib.suppress(OSError):
            snap.rmdir()


# ---------------------------------------------------------------------- token (kept by huggingface_hub, not the app)
def login(token: str) -> None:
    """Check the token with the Hub and store it where huggingface_hub keeps it (as `hf auth login` does)."""
    import huggingface_hub

    token = (token or "").strip()
    if not token:
        raise InputError("The token is empty: paste your Hugging Face access token (it starts with hf_).")
    try:
        huggingface_hub.login(token=token, add_to_git_credential=False)
    except ValueError as exc:
        raise InputError(f"That token cannot be used: {exc}") from None
    except Exception as exc:
        err = _hub_error(exc, "your account", token)
        if err is not None and "offline" in str(err):
            raise InputError(
                "Could not check the token: you are offline. Connect to the internet and try again."
            ) from None
        raise InputError(
            "The Hugging Face Hub refused this token: copy it again from huggingface.co → Settings → Access Tokens."
        ) from None


def logout() -> None:
    """Forget the stored token (huggingface_hub's own files); a token in HF_TOKEN stays and is reported."""
    import huggingface_hub

    try:
        huggingface_hub.logout()
    except OSError as exc:
        raise InputError(str(exc)) from None


def stored_token() -> str | None:
    """The token huggingface_hub would use (HF_TOKEN, or the one from `hf auth login`/`login`), or None."""
    from huggingface_hub import get_token

    return get_token()

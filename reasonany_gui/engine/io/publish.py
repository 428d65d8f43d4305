"""Publishing a merged model to the Hugging Face Hub: what goes, the model card, and the upload with progress.

Why a plan first: the user sees every file and the total size before anything leaves the machine; the weights,
config, tokenizer, card (and the GGUF file and Modelfile, when exported) always go, while report.html, run.yaml
and the masks go only when asked, since they can hold local paths and data file names. Why huggingface_hub's own
login token (`stored_token`, as the download dialog uses): the app never keeps a token. Why one commit made of
pre-uploaded files: a cancel between files leaves the repo as it was (no half-published model), and the progress
moves file by file. The card is built with huggingface_hub's ModelCard / ModelCardData and checked locally before
the upload: the Hub's own validation is an online call.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import CancelledError, InputError
from ..core.events import CancelToken
from ..core.paths import RUN_DIR, run_files
from .download import SIDE_FILES, SIDE_PATTERNS, stored_token
from .resolve import is_repo_id

CARD = "README.md"
TAGS = ("merge", "reasonany")
#: the run files a user may add (name for the choice → files inside OUT/reasonany/); they can hold local paths
OPTIONAL = {
    "report": ("report.html",),
    "run": ("run.yaml",),
    "masks": ("masks.safetensors", "conflicts.safetensors", "mask_shapes.json"),
}
ALWAYS_PATTERNS = ("*.safetensors", "model.safetensors.index.json", "*.gguf", "Modelfile", *SIDE_FILES, *SIDE_PATTERNS)


@dataclass(frozen=True)
class UploadFile:
    path_in_repo: str
    size: int  # bytes
    local: Path | None  # None for the card, which is generated


@dataclass(frozen=True)
class PublishPlan:
    """What `publish` sends to `repo_id`: the files (the card among them) and the card's text."""

    out: Path
    repo_id: str
    private: bool
    files: tuple[UploadFile, ...]
    card: str

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def check_repo_id(repo_id: str) -> str:
    repo_id = str(repo_id or "").strip()
    if not is_repo_id(repo_id):
        raise InputError(
            f"{repo_id!r} is not a Hugging Face repo name: write it as OWNER/NAME, e.g. your-name/my-merge "
            "(letters, digits, '-', '_' and '.')."
        )
    return repo_id


def plan_publish(out: Path, repo_id: str, private: bool = False, include: Iterable[str] = ()) -> PublishPlan:
    """The files to upload from the output folder `out` and the card; `include` picks from OPTIONAL."""
    out, repo_id = Path(out), check_repo_id(repo_id)
    include = list(include)
    unknown = [k for k in include if k not in OPTIONAL]
    if unknown:
        raise InputError(f"Unknown extra files {unknown}: choose from {', '.join(OPTIONAL)}.")
    if not (out / "config.json").is_file() or not list(out.glob("*.safetensors")):
        raise InputError(
            f"{out} is not a merged model folder (config.json and .safetensors files): pick a merge's output folder."
        )
    names = sorted(p.name for p in out.iterdir() if p.is_file() and p.name != CARD)
    files = [UploadFile(n, (out / n).stat().st_size, out / n) for n in names if _always(n)]
    for key in include:
        for n in OPTIONAL[key]:
            local = run_files(out) / n
            if local.is_file():
                files.append(UploadFile(f"{RUN_DIR}/{n}", local.stat().st_size, local))
    card = build_card(out, gguf=any(f.path_in_repo.endswith(".gguf") for f in files))
    files.append(UploadFile(CARD, len(card.encode("utf-8")), None))
    return PublishPlan(out, repo_id, private, tuple(files), card)


def _always(name: str) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in ALWAYS_PATTERNS)


def build_card(out: Path, gguf: bool = False) -> str:
    """The model card: the README.md the merge wrote (engine/output/card.py: the summary, Hub ids only as
    `base_model`, the evaluation once run) with the tags and task the Hub's search uses added. Validated locally.

    Why not a card of its own: one place (output/card.py) decides what a merge's public card says."""
    from huggingface_hub import ModelCard, ModelCardData

    readme = Path(out) / CARD
    if readme.is_file():
        card = ModelCard(readme.read_text(encoding="utf-8"))
    else:  # a folder from before cards were written: a title under the metadata below
        card = ModelCard(f"---\nlibrary_name: transformers\n---\n\n# {Path(out).name}\n")
    data = card.data.to_dict()
    tags = list(dict.fromkeys([*(data.get("tags") or []), *TAGS, *(["gguf"] if gguf else [])]))
    data |= {"tags": tags, "library_name": data.get("library_name") or "transformers"}
    data.setdefault("pipeline_tag", "text-generation")
    text = f"---\n{ModelCardData(**data).to_yaml()}\n---\n\n{card.text.lstrip()}"
    validate_card(text)
    return text


def validate_card(text: str) -> None:
    """Parse the card as the Hub does (YAML header + text) and check what the Hub and search rely on."""
    from huggingface_hub import ModelCard

    try:
        data = ModelCard(text).data.to_dict()
    except Exception as exc:  # noqa: BLE001 - huggingface_hub raises ValueError or a YAML error
        raise InputError(f"The model card is not valid: {exc}. Fix README.md in the output folder.") from None
    if not set(TAGS) <= set(data.get("tags") or []):
        raise InputError("The model card lacks the tags merge and reasonany.")
    for repo in data.get("base_model") or []:
        if not is_repo_id(str(repo)):
            raise InputError(f"The model card's base_model {repo!r} is not a Hub repo id.")


# ----------------------------------------------------------------------------------------------------- the upload
class RepoExistsError(InputError):
    """The repo is there already: the app offers to add a commit to it (`publish(..., add_commit=True)`)."""


def _hub_error(exc: BaseException, repo_id: str) -> InputError | None:
    """Plain words for the Hub's answers to a publish: no token, no rights, repo exists, offline."""
    from huggingface_hub import errors as hf

    name = type(exc).__name__
    if isinstance(exc, hf.OfflineModeIsEnabled) or "ConnectError" in name or "Timeout" in name or "Connection" in name:
        return InputError(
            f"Could not reach the Hugging Face Hub to publish {repo_id}: you are offline (or HF_HUB_OFFLINE is "
            "set). Connect to the internet and publish again."
        )
    if isinstance(exc, hf.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        owner = repo_id.split("/")[0]
        if status == 401:
            return InputError("The Hugging Face Hub refused your token: log in again with a valid write token.")
        if status == 403:
            return InputError(
                f"Your Hugging Face token may not write to {owner!r}: use a token with write access, and for an "
                f"organisation ask its admins for write rights, or publish under your own name."
            )
        if status == 409:
            return RepoExistsError(
                f"{repo_id} already exists on the Hub. Add a commit to it (--add-commit, or the dialog's "
                "'Add to the existing repo'), or choose another name."
            )
        return InputError(
            f"The Hugging Face Hub answered with an error for {repo_id} ({status or exc}). Try again later."
        )
    return None


def require_token(token: str | None = None) -> str:
    """The token to publish with (given, or huggingface_hub's login), or one sentence saying how to log in."""
    token = token or stored_token()
    if not token:
        raise InputError(
            "You are not logged in to the Hugging Face Hub: log in with a write token (the download dialog's "
            "Log in, or `hf auth login`), then publish again."
        )
    return token


def publish(
    plan: PublishPlan,
    token: str | None = None,
    add_commit: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
    cancel: CancelToken | None = None,
) -> str:
    """Create the repo (or, with `add_commit`, use the existing one), upload the plan's files file by file and
    commit them at once; progress(bytes done, total bytes, file) after each file. Returns the repo's URL."""
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(token=require_token(token))
    ops = [
        CommitOperationAdd(f.path_in_repo, str(f.local) if f.local else plan.card.encode("utf-8")) for f in plan.files
    ]
    done, total = 0, max(plan.total_bytes, 1)
    try:
        api.create_repo(plan.repo_id, private=plan.private, repo_type="model", exist_ok=False)
    except Exception as exc:
        err = _hub_error(exc, plan.repo_id)
        if not (add_commit and isinstance(err, RepoExistsError)):
            if err is None:
                raise
            raise err from None
    try:
        for f, op in zip(plan.files, ops, strict=True):
            if cancel is not None:
                cancel.check()
            api.preupload_lfs_files(plan.repo_id, additions=[op], repo_type="model")
            done += f.size
            if progress is not None:
                progress(done, total, f.path_in_repo)
        if cancel is not None:
            cancel.check()
        api.create_commit(
            plan.repo_id, operations=ops, commit_message="Merged model, published with ReasonAny GUI", repo_type="model"
        )
    except CancelledError:
        raise CancelledError("Publishing was cancelled; nothing was committed to the repo.") from None
    except Exception as exc:
        err = _hub_error(exc, plan.repo_id)
        if err is None:
            raise
        raise err from None
    return f"https://huggingface.co/{plan.repo_id}"

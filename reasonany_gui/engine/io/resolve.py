"""Where a model is: a local folder, or a Hugging Face repo id in the local hub cache (downloaded only if allowed).

Why a module of its own: the app, the CLI and the evaluation all turn what the user typed into a folder the same
way, and refuse a bad path or repo id with the same words, before any file is read."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..core.errors import InputError

#: a Hugging Face repo id, OWNER/NAME: each part starts with an ASCII letter or digit, then letters, digits, '-',
#: '_' or '.', at most 96 characters. The one rule of the engine: resolving a model, the card's base_model and
#: publishing all use is_repo_id
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}$")


def is_repo_id(text: str) -> bool:
    """Whether `text` is a repo id the Hub accepts (REPO_ID, and no '..' or '--', which the Hub refuses too)."""
    return bool(REPO_ID.match(text)) and ".." not in text and "--" not in text


#: how a user fetches a model missing from the cache, `{repo}` filled in. The CLI has flags and a terminal; the app
#: has a Download… button beside each model, so the caller says which words its user can act on
CLI_FETCH_HINT = (
    "Download it first: run again with --allow-download, or in a terminal: hf download {repo}. Or pick a local folder."
)
APP_FETCH_HINT = "Download it first with the Download… button next to the model, or pick a local folder."


def resolve_model(
    spec: str, allow_download: bool = False, allow_pickle: bool = False, fetch_hint: str = CLI_FETCH_HINT
) -> Path:
    """A local folder, or a Hugging Face repo id found in the local hub cache (downloaded only if allowed).

    `allow_pickle` reaches the download: without it, a repo that has only .bin/.pt weights is refused there,
    so `merge --allow-download --allow-pickle` on such a repo would fail before the flag could matter.
    `fetch_hint` ends the not-in-cache message: CLI_FETCH_HINT (the default: scripts and the CLI) or
    APP_FETCH_HINT."""
    text = str(spec).strip()
    if not text:
        raise InputError("No model given: pick a model folder or type a Hugging Face repo id (owner/name).")
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise InputError(f"{path} is a file; pick the model's folder (the one that holds config.json).")
        return path.resolve()
    looks_like_path = text.startswith(("/", "~", ".", "\\")) or os.sep in text.replace("/", "", 1) or ":" in text
    if looks_like_path and ".." not in text and not REPO_ID.match(text):
        raise InputError(
            f"Model folder {path} does not exist. Check the path (pick the folder that holds config.json)."
        )
    if looks_like_path or not is_repo_id(text):
        raise InputError(
            f"Model {text!r} is neither an existing folder nor a valid Hugging Face repo id (owner/name, no '..', "
            "no absolute path). Check the path or the repo id."
        )
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    patterns = ["*.json", "*.safetensors", "*.jinja", "tokenizer*", "*.model", "*.txt", "*.tiktoken"]
    try:
        return Path(snapshot_download(text, local_files_only=True, allow_patterns=patterns))
    except LocalEntryNotFoundError:
        if allow_download:  # size check, resume and safe file choice: engine.download
            from .download import fetch

            return fetch(text, allow_pickle=allow_pickle)
        hint = fetch_hint.format(repo=text)
        raise InputError(f"Model {text!r} is not in the local Hugging Face cache. {hint}") from None
    except Exception as exc:  # network, auth, missing repo
        raise InputError(f"Could not get model {text!r} from the Hugging Face Hub: {exc}") from None

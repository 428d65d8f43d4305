"""Taking a merge where people run it: the GGUF export and the Hub upload as steps with progress and cancel.

Why here: the CLI and the app's dialogs run the same two steps and watch the same events (StageStarted, Progress,
StageFinished from engine/core/events.py); the file formats and the Hub calls stay in output/gguf.py and
io/publish.py, which know nothing of stages.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import CancelledError
from ..core.events import CancelToken, Listener, Progress, StageFinished, StageStarted, null_listener
from ..io import publish as hub
from ..io.writer import human_bytes
from ..output import gguf

EXPORT_STAGE = "export:gguf"
PUBLISH_STAGE = "publish"


@dataclass(frozen=True)
class Exported:
    gguf: Path
    modelfile: Path

    def how_to_run(self) -> str:
        """Plain instructions for Ollama and LM Studio (the CLI prints them, the dialog shows them)."""
        return (
            f"Ollama: cd {self.gguf.parent} && ollama create {self.gguf.stem.lower()} -f {self.modelfile.name}, "
            f"then ollama run {self.gguf.stem.lower()}.\n"
            f"LM Studio: My Models → Import (or `lms import {self.gguf}`), then load it in the chat. "
            f"llama.cpp: llama-cli -m {self.gguf}"
        )


def export_gguf(
    out: Path,
    type_name: str = gguf.DEFAULT_TYPE,
    dest: Path | None = None,
    listener: Listener = null_listener,
    cancel: CancelToken | None = None,
) -> Exported:
    """Write OUT/<name>-<TYPE>.gguf (or `dest`) and the Ollama Modelfile next to it; a refused family or type is
    refused before any tensor is read, and a cancel leaves neither file."""
    out = Path(out)
    src = gguf.open_source(out, type_name)
    dest = Path(dest) if dest else out / gguf.file_name(out, type_name)
    title = f"Writing {dest.name} ({type_name.upper()}, about {human_bytes(src.total_bytes)})"
    listener(StageStarted(EXPORT_STAGE, title, 0, 1))
    start = time.monotonic()

    def progress(done: int, total: int, name: str) -> None:
        listener(Progress(EXPORT_STAGE, done / total, done / total, f"tensor {done} of {total}: {name}"))

    try:
        path = gguf.write_gguf(src, dest, type_name, progress, cancel)
    except CancelledError:
        raise CancelledError("The export was cancelled; no GGUF file was written.") from None
    modelfile = gguf.write_modelfile(out, path)
    listener(StageFinished(EXPORT_STAGE, time.monotonic() - start))
    return Exported(path, modelfile)


def publish(
    plan: hub.PublishPlan,
    token: str | None = None,
    add_commit: bool = False,
    listener: Listener = null_listener,
    cancel: CancelToken | None = None,
) -> str:
    """Upload the plan (io/publish.py) with stage events; returns the repo's URL. No token: refused before the stage."""
    token = hub.require_token(token)
    listener(StageStarted(PUBLISH_STAGE, f"Publishing to {plan.repo_id} ({human_bytes(plan.total_bytes)})", 0, 1))
    start = time.monotonic()

    def progress(done: int, total: int, name: str) -> None:
        listener(Progress(PUBLISH_STAGE, done / total, done / total, f"uploaded {name}"))

    url = hub.publish(plan, token, add_commit, progress, cancel)
    listener(StageFinished(PUBLISH_STAGE, time.monotonic() - start))
    return url

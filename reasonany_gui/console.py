"""How the command line reports: stage titles and progress on stderr, rank 0's events as JSON lines for the app,
and the log file. Split from cli.py, which parses the commands and runs them."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from .engine.core.errors import CancelledError, InputError, ReasonAnyError
from .engine.core.events import Log, Progress, StageFinished, StageStarted
from .engine.core.paths import log_file

log = logging.getLogger("reasonany")


class ConsolePrinter:
    """Stage titles and a progress line at most once a second, on stderr (stdout stays clean)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self._last = 0.0

    def __call__(self, event: object) -> None:
        if isinstance(event, Log):
            getattr(log, "warning" if event.level == "warning" else "info")(event.message)
            if not self.quiet or event.level != "info":
                print(f"[{event.level}] {event.message}", file=sys.stderr)
        if self.quiet:
            return
        if isinstance(event, StageStarted):
            print(f"== {event.title}", file=sys.stderr)
        elif isinstance(event, Progress):
            now = time.monotonic()
            if now - self._last >= 1.0 or event.fraction >= 1.0:
                self._last = now
                eta = f", about {event.eta_seconds:.0f} s left" if event.eta_seconds else ""
                print(f"   {100 * event.fraction:5.1f} % {event.message}{eta}", file=sys.stderr)
        elif isinstance(event, StageFinished):
            print(f"   done in {event.seconds:.1f} s", file=sys.stderr)


def setup_logging() -> Path:
    """The log file in the user log folder; if that cannot be made (HOME not creatable, REASONANY_HOME a file,
    the log path a folder), a log in the temporary folder, and failing that stderr, with a note that says so."""
    try:
        path = log_file()
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
    except OSError as exc:
        import tempfile

        try:
            path = Path(tempfile.gettempdir()) / f"reasonany-{os.getpid()}.log"
            handler = logging.FileHandler(path, encoding="utf-8")
            print(f"note: the log folder cannot be used ({exc}); logging to {path}", file=sys.stderr)
        except OSError:
            handler = logging.StreamHandler(sys.stderr)
            path = Path("<stderr>")
            print(f"note: the log folder cannot be used ({exc}); logging to the console", file=sys.stderr)
        handler.baseFilename = str(path)  # type: ignore[union-attr]  # for the duplicate check below
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("reasonany")
    root.setLevel(logging.INFO)
    mine = getattr(handler, "baseFilename", None)
    if not any(getattr(h, "baseFilename", None) == mine for h in root.handlers):
        root.addHandler(handler)
    else:  # already logging there (main() run again in one process): close the file just opened
        handler.close()
    return path


class JsonlEvents:
    """Rank 0's events for the app, one JSON object a line on `stream` (engine.events.to_dict), then one
    {"type": "done", "out"} or {"type": "failed", "message", "input", "cancelled"} line.

    Why lines on stdout: the launcher passes rank 0's stdout through to the app's pipe unchanged, and nothing
    else of a worker writes there (messages go to stderr); one write per line keeps lines whole."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, record: dict[str, Any]) -> None:
        import json

        self.stream.write(json.dumps(record) + "\n")
        self.stream.flush()

    def listener(self, also: Callable[[object], None]) -> Callable[[object], None]:
        from .engine.core.events import to_dict

        def listen(event: object) -> None:
            also(event)
            self.write(to_dict(event))

        return listen

    def done(self, out: Path) -> None:
        from .engine.workflows.launcher import DONE

        self.write({"type": DONE, "out": str(out)})

    def failed(self, exc: BaseException) -> None:
        from .engine.workflows.launcher import FAILED

        cancelled = isinstance(exc, (CancelledError, KeyboardInterrupt))
        message = str(exc) if isinstance(exc, ReasonAnyError) else f"{type(exc).__name__}: {exc}"
        self.write({"type": FAILED, "message": message, "input": isinstance(exc, InputError), "cancelled": cancelled})

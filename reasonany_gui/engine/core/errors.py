"""Errors the engine raises on purpose.

Why a small hierarchy: the CLI maps them to exit codes (2 bad input, 130 cancelled, 1 anything else) and
the GUI to dialogs, so every message is written for the user: what is wrong, where, and what to do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping


class ReasonAnyError(Exception):
    """Base of the engine's own errors."""


class InputError(ReasonAnyError):
    """Bad input from the user (a file, a folder, a value). CLI exit code 2; nothing is written."""


class CancelledError(ReasonAnyError):
    """The user cancelled the run. CLI exit code 130; the temporary output folder is removed."""

    def __init__(self, message: str = "The run was cancelled; nothing was written.") -> None:
        super().__init__(message)


class OutOfMemoryError(ReasonAnyError):
    """The device ran out of memory; the message names the settings that lower memory use."""

    def __init__(self, message: str, suggestions: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        #: settings that would use less memory (config field -> value): the GUI offers them as a retry
        self.suggestions = dict(suggestions or {})


class WriteError(ReasonAnyError):
    """Writing the output failed (disk full, permissions); the temporary folder was removed."""


def missing_library_message(exc: ImportError, doing: str) -> str:
    """One sentence for a Python package that an install lacks: name the package and the command that installs it.

    Why: transformers reports a missing optional package (accelerate for a device map, gguf for a GGUF file) as
    an ImportError or a ValueError about the load, and passing that on as "the model could not be loaded"
    blames a model that is fine."""
    quoted = re.search(r"'([^']+)'", str(exc))
    package = (exc.name or (quoted.group(1) if quoted else "") or "a required package").split(".")[0]
    return (
        f"{doing[:1].upper()}{doing[1:]} needs the Python package '{package}', which is not installed in this "
        f"Python. Install it with: pip install {package}   then try again."
    )

"""The built-in calibration sets shipped with the app, and where a data spec (`builtin:NAME` or a path) points.

Why a module of its own: the app's data screen lists the presets and the run resolves a spec long before any
file is read; neither needs the reader or the tokenizer code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.errors import InputError
from ..core.paths import RESOURCES

BUILTIN_PREFIX = "builtin:"
RESOURCE_DIR = RESOURCES / "calibration"
EXTENSIONS = (".jsonl", ".ndjson", ".json", ".parquet", ".csv", ".txt")


@dataclass(frozen=True)
class Preset:
    """A built-in calibration set shipped with the app (written by tools/make_calibration.py)."""

    name: str
    role: str  # "reasoning" or "domain": which slot of the GUI offers it
    title: str
    description: str
    path: Path


def _preset(name: str, role: str, title: str, description: str) -> Preset:
    return Preset(name, role, title, description, RESOURCE_DIR / f"{name}.jsonl")


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        _preset(
            "reasoning",
            "reasoning",
            "Step-by-step math",
            "Math word problems and arithmetic, each solved step by step before a final answer.",
        ),
        _preset(
            "safety",
            "domain",
            "Safety (refusals)",
            "Harmful requests answered with a polite refusal and a safe alternative, plus everyday requests "
            "answered helpfully.",
        ),
        _preset(
            "biomedicine",
            "domain",
            "Biomedicine",
            "Short study abstracts with a yes/no/maybe question and a reasoned answer, plus clinical fact questions.",
        ),
        _preset(
            "finance",
            "domain",
            "Finance",
            "Financial analysis questions (ratios, interest, loans, valuation, accounting) with worked answers.",
        ),
    )
}


def resolve_spec(spec: str) -> Path:
    """`builtin:NAME` or a file path -> the file to read. InputError if the preset or file does not exist."""
    text = str(spec or "").strip()
    if not text:
        raise InputError(
            "No calibration data given: pick a built-in set (builtin:"
            + ", builtin:".join(PRESETS)
            + ") or a data file."
        )
    if text.lower().startswith(BUILTIN_PREFIX):
        name = text[len(BUILTIN_PREFIX) :].strip().lower()
        if name not in PRESETS:
            raise InputError(
                f"Unknown built-in calibration set {text!r}. Available: "
                + ", ".join(BUILTIN_PREFIX + n for n in PRESETS)
                + "."
            )
        path = PRESETS[name].path
        if not path.is_file():
            raise InputError(
                f"The built-in calibration set {text} is missing from the installation ({path}). "
                "Reinstall the app, or run tools/make_calibration.py in a source checkout."
            )
        return path
    path = Path(text).expanduser()
    if path.is_dir():
        raise InputError(f"Calibration data {path} is a folder; pick a file ({', '.join(EXTENSIONS)}).")
    from ..io.checkpoints import special_file_kind

    kind = special_file_kind(path)
    if kind is not None:
        raise InputError(
            f"Calibration data {path} is {kind}, not a regular file: reading it would hang. Pick a saved file."
        )
    if not path.is_file():
        hint = f" Did you mean builtin:{text}?" if text.lower() in PRESETS else " Check the path."
        raise InputError(f"Calibration data file {path} does not exist.{hint}")
    return path

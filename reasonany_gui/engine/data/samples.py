"""Reading a user's calibration file (or a built-in set) into samples: JSONL, JSON, Parquet, CSV or plain text.

Why strict and chatty: the people using the app are not programmers, so every file problem is an InputError that
names the file, the line or record, what was found and what is accepted (the fields listed in ACCEPTED_FIELDS).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import InputError
from .presets import EXTENSIONS, resolve_spec

TEXT_KEYS = ("text", "chosen")
PROMPT_KEYS = ("prompt", "question", "instruction", "input")
RESPONSE_KEYS = ("response", "answer", "output", "completion")
CHAT_KEYS = ("messages", "conversations")
ROLE_ALIASES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "chatgpt": "assistant",
    "system": "system",
    "tool": "tool",
}
ACCEPTED_FIELDS = (
    "text (or chosen); prompt + response (or question + answer, instruction + output, "
    "input + output); messages or conversations (a list of {role, content} or {from, value})"
)


@dataclass
class Sample:
    """One calibration record, in exactly one of three shapes: text, prompt + response, or chat messages."""

    text: str | None = None
    prompt: str | None = None
    response: str | None = None
    messages: list[dict[str, Any]] | None = None
    #: a field held a number, used as its text (prepare() warns)
    had_number: bool = field(default=False, compare=False, repr=False)

    @property
    def kind(self) -> str:
        return "chat" if self.messages is not None else "pair" if self.prompt is not None else "text"


def load_samples(spec: str) -> list[Sample]:
    """Every usable record of the file, in file order. InputError if the file cannot give any."""
    return read_samples(spec)[0]


def read_samples(spec: str) -> tuple[list[Sample], int, Path]:
    """Samples, the number of records skipped because they were empty, and the resolved path."""
    path = resolve_spec(spec)
    ext = path.suffix.lower()
    if ext not in EXTENSIONS:
        raise InputError(
            f"Calibration data {path}: unknown file type {ext or '(no extension)'!r}. "
            f"Use one of {', '.join(EXTENSIONS)}."
        )
    if path.stat().st_size == 0:
        raise InputError(f"Calibration data {path} is empty. Pick a file with at least one sample.")
    if ext == ".parquet":
        records: list[Any] = _read_parquet(path)
    else:
        text = _read_text(path)
        if not text.strip():
            raise InputError(f"Calibration data {path} is empty (only blank space). Pick a file with samples.")
        reader = {
            ".jsonl": _parse_jsonl,
            ".ndjson": _parse_jsonl,
            ".json": _parse_json,
            ".csv": _parse_csv,
            ".txt": _parse_txt,
        }[ext]
        records = reader(text, path)
    if not records:
        raise InputError(f"Calibration data {path} contains no records. Pick a file with at least one sample.")
    samples: list[Sample] = []
    skipped = 0
    for i, rec in enumerate(records, start=1):
        _NUMBERS_SEEN.clear()
        try:
            sample = _to_sample(rec, path, i)
        except NotText as exc:
            raise InputError(_not_text_message(path, i, rec, exc.value)) from None
        if sample is not None and _NUMBERS_SEEN:
            sample.had_number = True
        if sample is None:
            skipped += 1
        else:
            samples.append(sample)
    if not samples:
        raise InputError(_no_usable_field_message(path, records))
    return samples, skipped, path


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"Calibration data {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line}, byte offset "
            f"{exc.start}). Re-save it as UTF-8 (most editors offer this under 'Save as… / Encoding')."
        ) from None


def _read_parquet(path: Path) -> list[Any]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(
            f"Reading {path} needs the pyarrow package, which is not installed. Run: pip install pyarrow "
            "(or convert the file to .jsonl)."
        ) from None
    try:
        return pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises several types (ArrowInvalid, OSError) for a bad file
        raise InputError(f"Calibration data {path} is not a readable Parquet file: {exc}") from None


def _loads(text: str, where: str, line_known: bool, fix: str, deep: str) -> Any:
    """json.loads, with an error a user can act on: where the text broke, and what the file should look like."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        at = f"column {exc.colno}" if line_known else f"line {exc.lineno}, column {exc.colno}"
        raise InputError(f"{where}: not valid JSON ({exc.msg} at {at}). {fix}") from None
    except RecursionError:
        raise InputError(f"{where}: the JSON is nested too deeply. {deep}") from None


def _parse_jsonl(text: str, path: Path) -> list[Any]:
    return [
        _loads(
            line,
            f"Calibration data {path}, line {number}",
            True,
            "Each line of a .jsonl file must be one JSON object.",
            'Each line must be one flat object such as {"text": ...}.',
        )
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]


def _parse_json(text: str, path: Path) -> list[Any]:
    data = _loads(
        text,
        f"Calibration data {path}",
        False,
        "If it has one object per line, rename it to .jsonl.",
        'Write a list of flat objects such as {"text": ...}.',
    )
    if isinstance(data, dict):
        for key in ("data", "samples", "rows"):
            if isinstance(data.get(key), list):
                return data[key]
        raise InputError(
            f'Calibration data {path}: the JSON object has no list of samples under "data", '
            f'"samples" or "rows" (keys found: {_keys(data)}). Put the samples in a list.'
        )
    if not isinstance(data, list):
        raise InputError(f"Calibration data {path}: expected a JSON list of samples, found a {type(data).__name__}.")
    return data


def _parse_csv(text: str, path: Path) -> list[Any]:
    csv.field_size_limit(1 << 30)  # long reasoning traces exceed the 128 KB default
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        rows = [dict(row) for row in reader]
    except csv.Error as exc:
        raise InputError(f"Calibration data {path}, line {reader.line_num}: not valid CSV ({exc}).") from None
    if not rows:
        columns = ", ".join(reader.fieldnames or []) or "(none)"
        raise InputError(
            f"Calibration data {path} has a header row (columns: {columns}) but no data rows. The first "
            "line of a CSV file names the columns (e.g. text, or prompt,response); the samples follow it."
        )
    return rows


def _parse_txt(text: str, path: Path) -> list[Any]:
    return [{"text": block.strip()} for block in re.split(r"\n[ \t\r]*\n", text) if block.strip()]


# ============================================================================ records -> samples
def _keys(rec: Any) -> str:
    return ", ".join(sorted(map(str, rec))) if isinstance(rec, dict) and rec else "(none)"


def _no_usable_field_message(path: Path, records: list[Any]) -> str:
    found: list[str] = []
    for rec in records[:50]:
        if isinstance(rec, dict):
            found += [str(k) for k in rec if str(k) not in found]
    what = ", ".join(found) if found else f"no fields (records are {type(records[0]).__name__}s, not objects)"
    return (
        f"Calibration data {path}: no record has a usable field. Found: {what}. Accepted: {ACCEPTED_FIELDS}. "
        "Rename the columns/keys, or export the data in one of these shapes."
    )


class NotText(Exception):
    """A calibration field holds a number, a list or an object where text is expected."""

    def __init__(self, value: Any) -> None:
        super().__init__(value)
        self.value = value


def _as_text(value: Any) -> str | None:
    """A field value as text; None when missing or blank (so the record counts as empty).

    A list, an object or a boolean in a text field is a mistake in the file (a wrong column, a nested record),
    and turning it into its Python spelling would score the model on that spelling: refused. A number (a
    numeric answer) is used as its text, and the sample is flagged so that prepare() warns."""
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN: how pandas-made files spell an empty cell
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _NUMBERS_SEEN.append(value)  # a numeric answer ("answer": 4) is text enough; prepare() says so
        return str(value)
    if not isinstance(value, str):
        raise NotText(value)
    return value if value.strip() else None


_NUMBERS_SEEN: list[Any] = []  # numbers used as text while reading the current record (see _to_sample)


def _first(rec: dict[str, Any], keys: Iterable[str]) -> tuple[str | None, str | None]:
    for key in keys:
        if key in rec:
            return key, _as_text(rec[key])
    return None, None


def _not_text_message(path: Path, number: int, rec: dict[str, Any], value: Any) -> str:
    key = next((k for k, v in rec.items() if v is value), None) if isinstance(rec, dict) else None
    key = key or next((k for k in CHAT_KEYS if isinstance(rec, dict) and k in rec), "?")
    kind = {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__
    )
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return (
        f"Calibration data {path}, record {number}: the field {key!r} is {kind} ({shown}), not text. "
        "Calibration texts must be strings: write the value in quotes, or pick the column that holds the text."
    )


def _to_sample(rec: Any, path: Path, number: int) -> Sample | None:
    """One record -> Sample; None when the record has a known field that is empty or has no known field."""
    if isinstance(rec, str):  # a JSON list of plain strings
        return Sample(text=rec) if rec.strip() else None
    if not isinstance(rec, dict):
        return None
    for key in CHAT_KEYS:
        if rec.get(key) is not None:
            messages = _messages(rec[key], path, number, key)
            return Sample(messages=messages) if messages else None
    p_key, prompt = _first(rec, PROMPT_KEYS)
    r_key, response = _first(rec, RESPONSE_KEYS)
    if r_key is not None and p_key is not None:
        if p_key == "instruction" and _as_text(rec.get("input")):  # Alpaca: instruction + optional input
            prompt = f"{prompt}\n\n{_as_text(rec['input'])}" if prompt else _as_text(rec["input"])
        if prompt is None or response is None:
            return None
        return Sample(prompt=prompt, response=response)
    t_key, text = _first(rec, TEXT_KEYS)
    if t_key is not None:
        return Sample(text=text) if text is not None else None
    return None


def _messages(value: Any, path: Path, number: int, key: str) -> list[dict[str, Any]] | None:
    """role/content or ShareGPT from/value -> [{'role', 'content'}]; InputError for a malformed list."""
    if isinstance(value, str):  # CSV cells hold the list as a JSON string
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise InputError(
                f"Calibration data {path}, record {number}: {key!r} is text, not a list of messages. "
                'Write it as a JSON list of {"role": ..., "content": ...}.'
            ) from None
    if not isinstance(value, list):
        raise InputError(
            f"Calibration data {path}, record {number}: {key!r} must be a list of messages, "
            f"found a {type(value).__name__}."
        )
    out = []
    for j, msg in enumerate(value, start=1):
        if not isinstance(msg, dict):
            raise InputError(
                f"Calibration data {path}, record {number}, message {j}: expected an object with "
                f"role and content, found a {type(msg).__name__}."
            )
        raw_role = msg.get("role", msg.get("from"))
        content = msg.get("content", msg.get("value"))
        role = ROLE_ALIASES.get(str(raw_role).strip().lower()) if raw_role is not None else None
        if role is None:
            raise InputError(
                f"Calibration data {path}, record {number}, message {j}: unknown role {raw_role!r} "
                f"(fields: {_keys(msg)}). Use user/assistant/system (or human/gpt)."
            )
        if isinstance(content, list):  # OpenAI-style content parts: keep the text parts
            content = "".join(
                p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
            )
        text = _as_text(content) if content is not None and not isinstance(content, str) else content
        out.append({"role": role, "content": "" if text is None else text})
    if not any(m["content"].strip() for m in out):
        return None
    return out

"""The kinds of value a run.yaml may hold, and the checks of a value's kind: text, number, switch, size, mapping.

Why its own module: run.yaml is read by hand-written YAML and by scripts, so each value's type is checked with a
message that says what to write (a quoted "false" is text, not a switch), before any range or choice is checked.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import InputError

MAX_CONFIG_BYTES = 1_000_000
#: the kind of value of each annotation (a run.yaml is read with these; a quoted "false" is not a boolean)
KINDS = {
    "str": "text",
    "str | None": "text or empty",
    "float": "number",
    "int": "whole number",
    "bool": "boolean",
    "dict[str, Any]": "mapping",
}
_HINT = {
    "text": "write it as text (in quotes in YAML)",
    "text or empty": "write a folder path in quotes, or leave it out",
    "size": "write e.g. 5GB",
    "number": "write a number such as 0.05, without quotes",
    "whole number": "write a whole number such as 100, without quotes",
    "boolean": "write true or false, without quotes",
    "mapping": "write key: value pairs",
}
_LABEL = {
    "text": "text",
    "text or empty": "text",
    "size": "a size",
    "number": "a number",
    "whole number": "a whole number",
    "boolean": "true or false",
    "mapping": "a mapping",
}
MAX_EXTRA_DEPTH = 20


def read_yaml(p: Path) -> Any:
    """The plain data of a run config file, refusing what no run config holds: a huge file, deep nesting, aliases."""
    if not p.is_file():
        raise InputError(f"Config file {p} does not exist. Check the path.")
    if p.stat().st_size > MAX_CONFIG_BYTES:
        raise InputError(
            f"Config file {p} is {p.stat().st_size:,} bytes; a run config is a few KB. Pick the "
            "run.yaml of a run (OUT/reasonany/run.yaml)."
        )
    try:
        text = p.read_text(encoding="utf-8")
        if flow_depth(text) > MAX_EXTRA_DEPTH + 2:  # PyYAML's parser is quadratic in the nesting depth
            raise RecursionError
        # aliases (&a / *a) are refused, not expanded: a "billion laughs" of nested aliases would take hours
        # and all memory at report time, and a run config written by us never uses them
        if any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(text, Loader=yaml.SafeLoader)):
            raise InputError(
                f"Config file {p} uses YAML aliases (*name); run configs may not. Write each value out in full."
            )
        data = yaml.safe_load(text)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(f"Config file {p} is not valid YAML: {exc}") from None
    except RecursionError:
        raise InputError(f"Config file {p} is nested too deeply to be a run config.") from None
    return data


def flow_depth(text: str) -> int:
    """Deepest nesting of [ ] and { } outside quotes and comments (a cheap scan before the YAML parser)."""
    depth = deepest = 0
    quote = None
    comment = False
    prev = "\n"
    for ch in text:
        if comment:
            comment = ch != "\n"
        elif quote:
            if ch == quote and prev != "\\":
                quote = None
        elif ch in "\"'" and (prev in " \t\n[{,:"):
            quote = ch
        elif ch == "#" and prev in " \t\n":
            comment = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
        prev = ch
    return deepest


def has_kind(value: Any, kind: str) -> bool:
    if kind == "text":
        return isinstance(value, str)
    if kind == "text or empty":
        return value is None or isinstance(value, str)
    if kind == "size":
        return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "whole number":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    return isinstance(value, dict)


def _kind_of(value: Any) -> str:
    return {
        str: "text",
        bool: "a boolean",
        int: "a whole number",
        float: "a number",
        list: "a list",
        dict: "a mapping",
        type(None): "empty",
    }.get(type(value), type(value).__name__)


def kind_problem(name: str, value: Any, kind: str) -> str | None:
    """The message when a setting's value is not of its kind (e.g. a quoted "false" for a switch), else None."""
    if has_kind(value, kind):
        return None
    shown = repr(value) if len(repr(value)) < 60 else repr(value)[:57] + "..."
    return f"{name} = {shown} is {_kind_of(value)}, not {_LABEL[kind]}: {_HINT[kind]}."


def extra_problem(extra: dict[str, Any]) -> str | None:
    """The first value of the free-form `extra` notes that run.yaml and report.json could not keep, else None."""
    return _plain_problem(extra, "extra", 0)


def _plain_problem(value: Any, where: str, depth: int) -> str | None:
    """`extra` must hold plain data (text, numbers, booleans, lists, mappings with text keys): it is written to
    run.yaml and report.json at the very end of a run, and a date, bytes or a set would fail only there."""
    if depth > MAX_EXTRA_DEPTH:
        return f"{where} is nested more than {MAX_EXTRA_DEPTH} levels deep: keep extra notes flat."
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return (
            None
            if value == value and value not in (float("inf"), float("-inf"))
            else f"{where} = {value!r} is not a finite number: extra notes must be plain data."
        )
    if isinstance(value, list):
        for i, item in enumerate(value):
            bad = _plain_problem(item, f"{where}[{i}]", depth + 1)
            if bad:
                return bad
        return None
    if isinstance(value, dict):
        for k, item in value.items():
            if not isinstance(k, str):
                return f"{where} has the key {k!r}, which is not text: write keys as text (in quotes in YAML)."
            bad = _plain_problem(item, f"{where}.{k}", depth + 1)
            if bad:
                return bad
        return None
    return (
        f"{where} = {str(value)[:40]!r} is {_kind_of(value)}, which run.yaml and report.json cannot keep: extra "
        "notes must be text, numbers, booleans, lists or mappings (write dates and times in quotes)."
    )


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v  # NaN is not a number here


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)?\s*$", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """'5GB' -> 5_000_000_000, '500MiB' -> 524_288_000, 1234 -> 1234 (bytes)."""
    if isinstance(text, int):
        return text
    m = _SIZE.match(str(text))
    if not m:
        raise InputError(f"shard_size = {text!r} is not a size: write e.g. 5GB, 2GiB or 500MB.")
    number, unit = float(m.group(1)), (m.group(2) or "B").upper()
    base = 1024 if "I" in unit else 1000
    power = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4}[unit.rstrip("IB").rstrip("I")]
    return int(number * base**power)

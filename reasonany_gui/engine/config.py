"""The run configuration: one dataclass shared by the CLI, the GUI, run.yaml and the tests.

Why one object: `reasonany merge OUT/reasonany/run.yaml` must reproduce a run exactly, so everything
that changes the result lives here, is validated here (one clear message per bad value), and is written
back verbatim into the output folder.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError

METHODS = ("reasonany", "task_arithmetic", "ties", "dare", "linear", "led")
#: methods that need importance scores (and so calibration data and backward passes)
SCORED_METHODS = ("reasonany", "led")
SCORES = ("gradient", "snip", "fisher")
SCOPES = ("global", "tensor")
DEVICES_HELP = "auto, cpu, cuda or cuda:N"
OUT_DTYPES = ("auto", "bfloat16", "float16", "float32")
COMPUTE_DTYPES = ("auto", "bfloat16", "float16", "float32")
ACCUMULATORS = ("auto", "device", "host")
ROLES = ("base", "reasoning", "domain")
SCORE_PRECISIONS = ("bfloat16", "float32")
GRANULARITIES = ("element", "tensor")


@dataclass
class MergeConfig:
    """Everything that determines a merge. Defaults come from benchmarks/quality (see README)."""

    base: str = ""
    reasoning: str = ""
    domain: str = ""
    reasoning_data: str = "builtin:reasoning"
    domain_data: str = "builtin:safety"
    out: str | None = None

    method: str = "reasonany"
    # Defaults: set where both merge-quality benchmarks agree (benchmarks/quality, 0.85 M from scratch, and
    # benchmarks/pretrained, SmolLM2-135M): snip scores, tensor scope, no intersection, whole-text scoring, and
    # ratio 0.5 with scale 2 (= 1/ratio) for both skills, which kept both skills on both trios (0.98/0.95 and
    # 0.15/1.00 against experts at 1.00/1.00 and 0.15/1.00), where the paper's 0.05 with scale 1 kept neither.
    # No 7B trio has been measured: `reasonany tune` / "Find a good setting" checks a user's own trio.
    reasoning_ratio: float = 0.5
    domain_ratio: float = 0.5
    reasoning_scale: float = 2.0
    domain_scale: float = 2.0
    score: str = "snip"
    samples: int = 100
    max_length: int = 512
    scope: str = "tensor"
    intersect: bool = False
    #: whether embedding and lm_head elements may be selected (else they are copied from the base)
    select_embeddings: bool = False
    #: score only response tokens of prompt/response and chat samples
    response_only: bool = False
    #: "element" (the paper) or "tensor" (the official scripts' whole-tensor selection; comparison only)
    granularity: str = "element"

    device: str = "auto"
    dtype: str = "auto"  # output storage dtype; auto = the base model's
    compute_dtype: str = "auto"  # identification dtype; auto = bfloat16 on CUDA, float32 on CPU
    accumulators: str = "auto"  # where the float32 score accumulators live
    gradient_checkpointing: bool = False
    seed: int = 0

    tokenizer_source: str = "reasoning"  # config, tokenizer and chat template come from this model
    shard_size: str = "5GB"
    score_cache: bool = True
    score_precision: str = "bfloat16"
    allow_pickle: bool = False
    allow_download: bool = False

    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes kept in run.yaml

    # ----------------------------------------------------------------- (de)serialisation
    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "the configuration") -> "MergeConfig":
        """Settings from a mapping (a run.yaml); every value is type-checked here, with one message for all."""
        if not isinstance(data, dict):
            raise InputError(f"{source} must be a mapping of settings (key: value), not {type(data).__name__}.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(repr(k) if not isinstance(k, str) else k for k in data if k not in known)
        if unknown:
            raise InputError(
                f"{source}: unknown setting(s) {', '.join(unknown)}. Known settings: {', '.join(sorted(known))}."
            )
        problems = type_problems(data)
        if problems:
            raise InputError(f"{source} has settings of the wrong type:\n  - " + "\n  - ".join(problems))
        return cls(**data)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "MergeConfig":
        p = Path(path)
        if not p.is_file():
            raise InputError(f"Config file {p} does not exist. Check the path.")
        if p.stat().st_size > MAX_CONFIG_BYTES:
            raise InputError(f"Config file {p} is {p.stat().st_size:,} bytes; a run config is a few KB. Pick the "
                             "run.yaml of a run (OUT/reasonany/run.yaml).")
        try:
            text = p.read_text(encoding="utf-8")
            if _flow_depth(text) > MAX_EXTRA_DEPTH + 2:  # PyYAML's parser is quadratic in the nesting depth
                raise RecursionError
            # aliases (&a / *a) are refused, not expanded: a "billion laughs" of nested aliases would take hours
            # and all memory at report time, and a run config written by us never uses them
            if any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(text, Loader=yaml.SafeLoader)):
                raise InputError(f"Config file {p} uses YAML aliases (*name); run configs may not. Write each "
                                 "value out in full.")
            data = yaml.safe_load(text)
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise InputError(f"Config file {p} is not valid YAML: {exc}") from None
        except RecursionError:
            raise InputError(f"Config file {p} is nested too deeply to be a run config.") from None
        return cls.from_dict(data or {}, source=f"Config file {p}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def replace(self, **changes: Any) -> "MergeConfig":
        return dataclasses.replace(self, **changes)

    # ----------------------------------------------------------------- validation
    @property
    def needs_scores(self) -> bool:
        return self.method in SCORED_METHODS

    @property
    def shard_bytes(self) -> int:
        return parse_size(self.shard_size)

    def validate(self, need_out: bool = True) -> None:
        """Raise one InputError listing every bad value, each with what to do."""
        problems: list[str] = type_problems(self.to_dict())
        if problems:  # the checks below assume the right types
            raise InputError("Invalid settings:\n  - " + "\n  - ".join(problems))

        def choice(name: str, options: tuple[str, ...]) -> None:
            value = getattr(self, name)
            if value not in options:
                problems.append(f"{name} = {value!r} is not one of: {', '.join(options)}.")

        for role in ROLES:
            if not str(getattr(self, role) or "").strip():
                problems.append(f"No {role} model given: pass a local folder or a Hugging Face repo id.")
        choice("method", METHODS)
        choice("score", SCORES)
        choice("scope", SCOPES)
        choice("dtype", OUT_DTYPES)
        choice("compute_dtype", COMPUTE_DTYPES)
        choice("accumulators", ACCUMULATORS)
        choice("tokenizer_source", ROLES)
        choice("score_precision", SCORE_PRECISIONS)
        choice("granularity", GRANULARITIES)
        for name in ("reasoning_ratio", "domain_ratio"):
            v = getattr(self, name)
            if not _is_number(v) or not (0.0 < float(v) < 1.0):
                problems.append(f"{name} = {v!r} must be a fraction strictly between 0 and 1 (e.g. 0.05).")
        for name in ("reasoning_scale", "domain_scale"):
            v = getattr(self, name)
            if not _is_number(v) or not (0.0 <= float(v) <= 10.0):
                problems.append(f"{name} = {v!r} must be a number between 0 and 10 (1.0 keeps the task vector as is).")
        if self.method == "linear" and _is_number(self.reasoning_scale) and _is_number(self.domain_scale):
            if float(self.reasoning_scale) + float(self.domain_scale) <= 0:
                problems.append("linear merging needs reasoning_scale + domain_scale > 0 (they are the weights).")
        for name, low, high in (("samples", 1, 1_000_000), ("max_length", 8, 1_048_576)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not (low <= v <= high):
                problems.append(f"{name} = {v!r} must be a whole number between {low} and {high}.")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            problems.append(f"seed = {self.seed!r} must be a whole number.")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", str(self.device)):
            problems.append(f"device = {self.device!r} is not valid: use {DEVICES_HELP}.")
        try:
            if self.shard_bytes < 1_000_000:
                problems.append(f"shard_size = {self.shard_size!r} is too small: use at least 1MB (e.g. 5GB).")
        except InputError as exc:
            problems.append(str(exc))
        if self.needs_scores:
            for name in ("reasoning_data", "domain_data"):
                if not str(getattr(self, name) or "").strip():
                    problems.append(f"{name} is empty: pick a built-in set (builtin:NAME) or a data file.")
        if need_out and not (self.out and str(self.out).strip()):
            problems.append("No output folder given: pass --out DIR (or set out: in the config).")
        if problems:
            raise InputError("Invalid settings:\n  - " + "\n  - ".join(problems))


MAX_CONFIG_BYTES = 1_000_000
#: the type every setting must have (a run.yaml is read with these; a quoted "false" is not a boolean)
FIELD_TYPES: dict[str, str] = {
    **dict.fromkeys(("base", "reasoning", "domain", "reasoning_data", "domain_data", "method", "score", "scope",
                     "granularity", "device", "dtype", "compute_dtype", "accumulators", "tokenizer_source",
                     "score_precision"), "text"),
    "out": "text or empty",
    "shard_size": "size",
    **dict.fromkeys(("reasoning_ratio", "domain_ratio", "reasoning_scale", "domain_scale"), "number"),
    **dict.fromkeys(("samples", "max_length", "seed"), "whole number"),
    **dict.fromkeys(("intersect", "select_embeddings", "response_only", "gradient_checkpointing", "score_cache",
                     "allow_pickle", "allow_download"), "boolean"),
    "extra": "mapping",
}
_HINT = {"text": "write it as text (in quotes in YAML)", "text or empty": "write a folder path in quotes, or leave it out",
         "size": "write e.g. 5GB", "number": "write a number such as 0.05, without quotes",
         "whole number": "write a whole number such as 100, without quotes",
         "boolean": "write true or false, without quotes", "mapping": "write key: value pairs"}
_LABEL = {"text": "text", "text or empty": "text", "size": "a size", "number": "a number",
          "whole number": "a whole number", "boolean": "true or false", "mapping": "a mapping"}
MAX_EXTRA_DEPTH = 20


def _flow_depth(text: str) -> int:
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
        elif ch in "\"'" and (prev in " \t\n[{,:" ):
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


def _has_type(value: Any, kind: str) -> bool:
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
    return {str: "text", bool: "a boolean", int: "a whole number", float: "a number", list: "a list",
            dict: "a mapping", type(None): "empty"}.get(type(value), type(value).__name__)


def type_problems(data: dict[str, Any]) -> list[str]:
    """One line per setting whose value has the wrong type (unknown keys are the caller's business)."""
    problems = []
    for name, kind in FIELD_TYPES.items():
        if name in data and not _has_type(data[name], kind):
            value = data[name]
            shown = repr(value) if len(repr(value)) < 60 else repr(value)[:57] + "..."
            problems.append(f"{name} = {shown} is {_kind_of(value)}, not {_LABEL[kind]}: {_HINT[kind]}.")
    if isinstance(data.get("extra"), dict):
        bad = _plain_problem(data["extra"], "extra", 0)
        if bad:
            problems.append(bad)
    return problems


def _plain_problem(value: Any, where: str, depth: int) -> str | None:
    """`extra` must hold plain data (text, numbers, booleans, lists, mappings with text keys): it is written to
    run.yaml and report.json at the very end of a run, and a date, bytes or a set would fail only there."""
    if depth > MAX_EXTRA_DEPTH:
        return f"{where} is nested more than {MAX_EXTRA_DEPTH} levels deep: keep extra notes flat."
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if value == value and value not in (float("inf"), float("-inf")) else \
            f"{where} = {value!r} is not a finite number: extra notes must be plain data."
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
    return (f"{where} = {str(value)[:40]!r} is {_kind_of(value)}, which run.yaml and report.json cannot keep: extra "
            "notes must be text, numbers, booleans, lists or mappings (write dates and times in quotes).")


def _is_number(v: Any) -> bool:
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

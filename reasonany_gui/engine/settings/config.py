"""The run configuration: one dataclass shared by the CLI, the GUI, run.yaml and the tests.

Why one object: `reasonany merge OUT/reasonany/run.yaml` must reproduce a run exactly, so everything
that changes the result lives here, is validated here (one clear message per bad value), and is written
back verbatim into the output folder.

Each field carries a `Setting` (its words, range, CLI flag, GUI panel and role), from which the CLI, the GUI
and `validate` are generated; the method choices come from the method registry in methods.py (read lazily,
so importing this module does not import torch).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import InputError

SCORES = ("gradient", "snip", "fisher")
SCOPES = ("global", "tensor")
DEVICES_HELP = "auto, cpu, cuda or cuda:N"
OUT_DTYPES = ("auto", "bfloat16", "float16", "float32")
COMPUTE_DTYPES = ("auto", "bfloat16", "float16", "float32")
ACCUMULATORS = ("auto", "device", "host")
ROLES = ("base", "reasoning", "domain")
SCORE_PRECISIONS = ("bfloat16", "float32")
GRANULARITIES = ("element", "tensor")


@dataclass(frozen=True)
class Setting:
    """What the CLI, the GUI and the validator know about one MergeConfig field (pattern: mergekit's options.py).

    Why on the field: a setting's range, words and role were written in six to eight places (validate, argparse,
    both GUI panels, three field lists) and nothing checked that the copies agreed. Now `validate`, the CLI flags,
    the GUI widgets and `RETUNABLE` / scoring-only / re-tune-card lists are all generated from this record."""

    label: str  # the GUI's and the report's name for it
    tooltip: str  # one plain-language line (GUI tooltip, CLI help)
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] | None = None  # a callable = live (method registry)
    low: float | None = None  # legal range (validate, GUI spin boxes)
    high: float | None = None
    open_range: bool = False  # low < value < high (else low <= value <= high)
    range_note: str = ""  # appended to the range message, e.g. " (e.g. 0.05)"
    unit: str = ""  # "percent": a fraction, shown ×100 with " %" in the GUI; any other text is a GUI suffix
    step: float = 1.0  # GUI spin-box step, in shown units
    kind: str = ""  # FIELD_TYPES kind when the annotation does not say it (e.g. "size")
    cli: str | None = ""  # flag name without "--"; "" = the field name with dashes; None = no flag
    cli_hint: str = ""  # what to type, added to the CLI help
    gui: str = ""  # the panel that shows it: models, data, settings or output ("" = none)
    cli_only: str = ""  # why it has a CLI flag but no widget
    picked_by: str = ""  # no widget of its own: this setting's widget sets it too (devices: the device picker)
    yaml_only: str = ""  # why it has neither a flag nor a widget (run.yaml only)
    retunable: bool = False  # changing it re-selects/re-merges from the measured scores (no new gradients)
    retune_card: bool = False  # shown on the results page's Re-tune card
    scoring_only: bool = False  # only methods that need scores read it (the GUI greys it out for the others)

    def options(self) -> tuple[str, ...]:
        """The legal values, () when any value of the type goes."""
        if self.choices is None:
            return ()
        return self.choices() if callable(self.choices) else self.choices

    @property
    def percent(self) -> bool:
        return self.unit == "percent"

    def shown(self, value: float) -> float:
        """The value as the GUI shows it (the one place a fraction becomes a percentage)."""
        return float(value) * 100.0 if self.percent else float(value)

    def stored(self, shown: float) -> float:
        """The config value of what the GUI shows (inverse of `shown`, rounded like the widgets' decimals)."""
        return round(shown / 100.0 if self.percent else shown, 6)

    def range_problem(self, name: str, value: Any) -> str | None:
        """The validation message when `value` is outside [low, high] (or (low, high)), else None."""
        if self.low is None or self.high is None:
            return None
        whole = isinstance(self.low, int) and isinstance(self.high, int)
        if whole:
            ok = isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high
            return None if ok else f"{name} = {value!r} must be a whole number between {self.low} and {self.high}."
        if not _is_number(value):
            inside = False
        elif self.open_range:
            inside = self.low < float(value) < self.high
        else:
            inside = self.low <= float(value) <= self.high
        if inside:
            return None
        noun = "fraction" if self.percent else "number"
        strictly = "strictly " if self.open_range else ""
        return f"{name} = {value!r} must be a {noun} {strictly}between {self.low:g} and {self.high:g}{self.range_note}."


SETTING_KEY = "setting"


def setting(default: Any = dataclasses.MISSING, *, factory: Callable[[], Any] | None = None, **meta: Any) -> Any:
    """A MergeConfig field with its Setting metadata (the one place the setting is described)."""
    md = {SETTING_KEY: Setting(**meta)}
    if factory is not None:
        return field(default_factory=factory, metadata=md)
    return field(default=default, metadata=md)


def _ratio(role: str, which: str) -> Any:
    return setting(
        0.5,
        label=f"{role.capitalize()} share",
        tooltip=f"Fraction of weights taken from the {role} model (the {which} ones).",
        low=0.0,
        high=1.0,
        open_range=True,
        range_note=" (e.g. 0.05)",
        unit="percent",
        gui="settings",
        retunable=True,
        retune_card=True,
        scoring_only=True,
        cli_hint="a fraction, e.g. 0.5; TIES and DARE read it as the density",
    )


def _scale(role: str) -> Any:
    return setting(
        2.0,
        label=f"{role.capitalize()} strength",
        tooltip=f"How strongly the {role} changes are applied (1 = as learned).",
        low=0.0,
        high=10.0,
        range_note=" (1.0 keeps the task vector as is)",
        step=0.1,
        gui="settings",
        retunable=True,
        retune_card=True,
        cli_hint="0 to 10; TIES, DARE and linear read it as the weight",
    )


def _model(role: str, tooltip: str, hint: str) -> Any:
    return setting(
        "",
        label=f"{role.capitalize()} model",
        tooltip=tooltip,
        gui="models",
        cli_hint=f"{hint}: a local folder or a Hugging Face repo id",
    )


def _method_ids() -> tuple[str, ...]:
    from ..methods.registry import method_ids

    return method_ids()


@dataclass
class MergeConfig:
    """Everything that determines a merge. Defaults come from benchmarks/quality (see README).

    Each field carries its `Setting` (label, tooltip, range, CLI flag, GUI panel, role); see `settings()`."""

    base: str = _model("base", "The original model both experts were fine-tuned from.", "the base model")
    reasoning: str = _model(
        "reasoning",
        "The model that thinks step by step (for example an R1-distilled model).",
        "fine-tuned from the base",
    )
    domain: str = _model(
        "domain", "The model that knows your field (safety, medicine, finance...).", "fine-tuned from the base"
    )
    reasoning_data: str = setting(
        "builtin:reasoning",
        label="Reasoning data",
        gui="data",
        cli_hint="a file or builtin:reasoning",
        tooltip="Example texts that show the reasoning skill; used to find where it lives in the model.",
    )
    domain_data: str = setting(
        "builtin:safety",
        label="Domain data",
        gui="data",
        cli_hint="a file or builtin:safety|biomedicine|finance",
        tooltip="Example texts from your field; used to find where the domain skill lives in the model.",
    )
    out: str | None = setting(
        None,
        label="Output folder",
        gui="output",
        retunable=True,
        tooltip="The merged model is written here. The folder must not exist yet (or be empty).",
    )

    method: str = setting(
        "reasonany",
        label="Method",
        choices=_method_ids,
        gui="settings",
        retunable=True,
        retune_card=True,
        tooltip="How the models are combined. ReasonAny is recommended; the others are for comparison.",
    )
    # Defaults: set where both merge-quality benchmarks agree (benchmarks/quality, 0.85 M from scratch, and
    # benchmarks/pretrained, SmolLM2-135M): snip scores, tensor scope, no intersection, whole-text scoring, and
    # ratio 0.5 with scale 2 (= 1/ratio) for both skills, which kept both skills on both trios (0.98/0.95 and
    # 0.15/1.00 against experts at 1.00/1.00 and 0.15/1.00), where the paper's 0.05 with scale 1 kept neither.
    # No 7B trio has been measured: `reasonany tune` / "Find a good setting" checks a user's own trio.
    reasoning_ratio: float = _ratio("reasoning", "least sensitive")
    domain_ratio: float = _ratio("domain", "most sensitive")
    reasoning_scale: float = _scale("reasoning")
    domain_scale: float = _scale("domain")
    score: str = setting(
        "snip",
        label="Importance score",
        choices=SCORES,
        gui="settings",
        scoring_only=True,
        tooltip="How the importance of each weight is measured: weight x gradient (recommended: it separated the "
        "skills best in our benchmark), gradient size as in the paper, or squared gradient.",
    )
    samples: int = setting(
        100,
        label="Samples per data set",
        low=1,
        high=1_000_000,
        gui="settings",
        scoring_only=True,
        tooltip="How many example texts are read from each data set. More is steadier but slower.",
    )
    max_length: int = setting(
        512,
        label="Max tokens per sample",
        low=8,
        high=1_048_576,
        unit="tokens",
        step=64,
        gui="settings",
        scoring_only=True,
        tooltip="Longer texts are cut to this many tokens. Shorter is faster and uses less memory.",
    )
    scope: str = setting(
        "tensor",
        label="Ranking scope",
        choices=SCOPES,
        gui="settings",
        retunable=True,
        retune_card=True,
        scoring_only=True,
        tooltip="Rank each weight matrix on its own (recommended) or all weights of the model together (global).",
    )
    intersect: bool = setting(
        False,
        label="Agree with base model",
        gui="settings",
        retunable=True,
        scoring_only=True,
        tooltip="Keep a weight only if the base model rates it the same way as the expert does "
        "(off by default: it lost skills in our benchmark).",
    )
    #: whether embedding and lm_head elements may be selected (else they are copied from the base)
    select_embeddings: bool = setting(
        False,
        label="Include embeddings",
        gui="settings",
        retunable=True,
        scoring_only=True,
        tooltip="Allow the word-embedding tables to be merged too (usually left off).",
    )
    #: score only response tokens of prompt/response and chat samples
    response_only: bool = setting(
        False,
        label="Score answers only",
        gui="settings",
        scoring_only=True,
        tooltip="For question/answer data, measure importance on the answers only.",
    )
    #: "element" (the paper) or "tensor" (the official scripts' whole-tensor selection; comparison only).
    #: In the GUI's Advanced section: it is a comparison switch, not a setting a user should reach for.
    granularity: str = setting(
        "element",
        label="Granularity",
        choices=GRANULARITIES,
        gui="settings",
        retunable=True,
        scoring_only=True,
        tooltip="Choose single weights (as in the paper) or whole matrices (older scripts; comparison only).",
    )

    device: str = setting(
        "auto",
        label="Device",
        gui="settings",
        cli_hint=DEVICES_HELP,
        tooltip="Where the work runs. A GPU is much faster; its free memory is shown.",
    )
    #: several processes (torchrun) and/or a model split across GPUs: engine/scoring/collectives.py, placement.py
    devices: str = setting(
        "",
        label="Devices",
        cli_hint="e.g. cuda:0,cuda:1 (one process per GPU), all, cuda:0+cuda:1 (one model across two GPUs), cpu,cpu",
        tooltip="Several devices: one scoring process per comma-separated entry "
        "(torchrun); '+' joins GPUs that hold one model together. Empty: the one device above.",
        gui="settings",
        picked_by="device",  # the picker's "All GPUs (N, one process each)" sets devices = all; other lists: CLI
    )
    dtype: str = setting(  # output storage dtype; auto = the base model's
        "auto",
        label="Saved precision",
        choices=OUT_DTYPES,
        gui="output",
        retunable=True,
        tooltip="Number format of the saved model. 'Same as base' keeps the size of the original.",
    )
    compute_dtype: str = setting(  # identification dtype; auto = bfloat16 on CUDA, float32 on CPU
        "auto",
        label="Working precision",
        choices=COMPUTE_DTYPES,
        gui="settings",
        scoring_only=True,
        tooltip="Number format while measuring importance. Lower precision is faster and uses less memory.",
    )
    accumulators: str = setting(  # where the float32 score accumulators live
        "auto",
        label="Score storage",
        choices=ACCUMULATORS,
        gui="settings",
        scoring_only=True,
        tooltip="Where importance scores are kept while they add up: on the GPU (fast) or in RAM (saves GPU memory).",
    )
    gradient_checkpointing: bool = setting(
        False,
        label="Save memory on long samples",
        gui="settings",
        scoring_only=True,
        tooltip="Recompute parts of the model to use less GPU memory on long samples (slower).",
    )
    #: low-RAM mode: the tensors are scored in this many groups, one pass each (importance.tensor_groups); the
    #: scores are the same bit for bit, so it is not part of the score cache's key (docs/SCALING.md)
    score_groups: int = setting(
        1,
        label="Scoring passes per model",
        low=1,
        high=64,
        gui="settings",
        scoring_only=True,
        tooltip="Measure the model's weights in this many parts, one after another: the scores need this many "
        "times less memory, and each extra part costs one more pass over the samples. Same result.",
    )
    seed: int = setting(
        0,
        label="Random seed",
        low=0,
        high=2**31 - 1,
        gui="settings",
        tooltip="Makes the run repeatable: the same seed gives the same model.",
    )

    tokenizer_source: str = setting(  # config, tokenizer and chat template come from this model
        "reasoning",
        label="Tokenizer and chat template from",
        choices=ROLES,
        gui="output",
        retunable=True,
        tooltip="The merged model uses this model's tokenizer and chat template.",
    )
    shard_size: str = setting(
        "5GB",
        label="File size per shard",
        kind="size",
        gui="output",
        retunable=True,
        tooltip="The model is saved in files of at most this size (e.g. 5GB).",
    )
    score_cache: bool = setting(
        True,
        label="Keep scores for re-tuning",
        cli="cache",
        gui="settings",
        tooltip="Keep the importance scores so changing shares or strengths later takes seconds, not a new run.",
    )
    #: in the GUI's Advanced section: halving the cache's disk use is a storage choice, not a quality knob
    score_precision: str = setting(
        "bfloat16",
        label="Kept score precision",
        choices=SCORE_PRECISIONS,
        gui="settings",
        scoring_only=True,
        tooltip="Precision of the kept scores: lower takes half the disk space.",
    )
    allow_pickle: bool = setting(
        False,
        label="Allow pickle weights",
        tooltip="Allow .bin/.pt weights (loaded with weights_only=True).",
        cli_only="pickle files can run code when loaded; the app reads safetensors only, a power user opts in "
        "on the command line",
    )
    allow_download: bool = setting(
        False,
        label="Allow downloads",
        tooltip="Download repo ids missing from the Hugging Face cache.",
        cli_only="the GUI downloads a missing model with its Download… button, one model at a time, with consent",
    )

    extra: dict[str, Any] = setting(  # free-form notes kept in run.yaml
        factory=dict,
        label="Notes",
        tooltip="Free-form notes kept in run.yaml.",
        cli=None,
        retunable=True,
        yaml_only="free-form plain-data notes (a mapping) for scripts; there is nothing to type or pick",
    )

    # ----------------------------------------------------------------- (de)serialisation
    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "the configuration") -> MergeConfig:
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
    def from_yaml(cls, path: str | Path) -> MergeConfig:
        p = Path(path)
        if not p.is_file():
            raise InputError(f"Config file {p} does not exist. Check the path.")
        if p.stat().st_size > MAX_CONFIG_BYTES:
            raise InputError(
                f"Config file {p} is {p.stat().st_size:,} bytes; a run config is a few KB. Pick the "
                "run.yaml of a run (OUT/reasonany/run.yaml)."
            )
        try:
            text = p.read_text(encoding="utf-8")
            if _flow_depth(text) > MAX_EXTRA_DEPTH + 2:  # PyYAML's parser is quadratic in the nesting depth
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
        return cls.from_dict(data or {}, source=f"Config file {p}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def replace(self, **changes: Any) -> MergeConfig:
        return dataclasses.replace(self, **changes)

    # ----------------------------------------------------------------- the fields' metadata
    @classmethod
    def settings(cls) -> dict[str, Setting]:
        """Field name -> its Setting, in field order."""
        return {f.name: f.metadata[SETTING_KEY] for f in dataclasses.fields(cls)}

    @classmethod
    def fields_where(cls, **flags: Any) -> tuple[str, ...]:
        """Field names whose Setting has all the given attribute values, e.g. fields_where(retunable=True)."""
        return tuple(n for n, s in cls.settings().items() if all(getattr(s, k) == v for k, v in flags.items()))

    # ----------------------------------------------------------------- validation
    @property
    def needs_scores(self) -> bool:
        """Whether the method selects by importance (its registry record says so); unknown ids need none."""
        from ..methods.registry import REGISTRY

        record = REGISTRY.get(self.method)
        return record is not None and record.needs_scores

    @property
    def shard_bytes(self) -> int:
        return parse_size(self.shard_size)

    def validate(self, need_out: bool = True) -> None:
        """Raise one InputError listing every bad value, each with what to do.

        The choice and range checks come from each field's Setting; only the checks that involve several
        fields or a format (models, data, device, shard size, output folder) are written out below."""
        problems: list[str] = type_problems(self.to_dict())
        if problems:  # the checks below assume the right types
            raise InputError("Invalid settings:\n  - " + "\n  - ".join(problems))
        problems += self._model_problems() + self._setting_problems() + self._format_problems()
        problems += self._run_problems(need_out)
        if problems:
            raise InputError("Invalid settings:\n  - " + "\n  - ".join(problems))

    def _model_problems(self) -> list[str]:
        return [
            f"No {role} model given: pass a local folder or a Hugging Face repo id."
            for role in ROLES
            if not str(getattr(self, role) or "").strip()
        ]

    def _setting_problems(self) -> list[str]:
        """Choices and ranges, from the fields' metadata."""
        problems = []
        for name, meta in settings().items():
            value = getattr(self, name)
            options = meta.options()
            if options and value not in options:
                problems.append(f"{name} = {value!r} is not one of: {', '.join(options)}.")
            bad = meta.range_problem(name, value)
            if bad:
                problems.append(bad)
        return problems

    def _format_problems(self) -> list[str]:
        problems = []
        if (
            self.method == "linear"
            and _is_number(self.reasoning_scale)
            and _is_number(self.domain_scale)
            and float(self.reasoning_scale) + float(self.domain_scale) <= 0
        ):
            problems.append("linear merging needs reasoning_scale + domain_scale > 0 (they are the weights).")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", str(self.device)):
            problems.append(f"device = {self.device!r} is not valid: use {DEVICES_HELP}.")
        try:
            if self.shard_bytes < 1_000_000:
                problems.append(f"shard_size = {self.shard_size!r} is too small: use at least 1MB (e.g. 5GB).")
        except InputError as exc:
            problems.append(str(exc))
        return problems

    def _run_problems(self, need_out: bool) -> list[str]:
        problems = []
        if self.needs_scores:
            for name in ("reasoning_data", "domain_data"):
                if not str(getattr(self, name) or "").strip():
                    problems.append(f"{name} is empty: pick a built-in set (builtin:NAME) or a data file.")
        if need_out and not (self.out and str(self.out).strip()):
            problems.append("No output folder given: pass --out DIR (or set out: in the config).")
        return problems


# ---------------------------------------------------------------------- the settings' metadata, read back
def settings() -> dict[str, Setting]:
    """Field name -> its Setting, in field order (every MergeConfig field has one)."""
    return MergeConfig.settings()


def fields_where(**flags: Any) -> tuple[str, ...]:
    """Field names whose Setting has all the given attribute values, e.g. fields_where(retunable=True)."""
    return MergeConfig.fields_where(**flags)


def cli_flag(name: str) -> str | None:
    """The CLI flag of a field ("--reasoning-ratio"), None for YAML-only fields."""
    meta = settings()[name]
    if meta.cli is None or meta.yaml_only:
        return None
    return "--" + (meta.cli or name).replace("_", "-")


def __getattr__(name: str) -> tuple[str, ...]:
    """METHODS and SCORED_METHODS, read live from the method registry (methods.REGISTRY), so a method
    registered later (a plug-in, a test) is a valid choice everywhere without a second list here."""
    if name == "METHODS":
        return _method_ids()
    if name == "SCORED_METHODS":
        from ..methods.registry import scored_method_ids

        return scored_method_ids()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


MAX_CONFIG_BYTES = 1_000_000
#: the kind of value of each annotation (a run.yaml is read with these; a quoted "false" is not a boolean)
_KINDS = {
    "str": "text",
    "str | None": "text or empty",
    "float": "number",
    "int": "whole number",
    "bool": "boolean",
    "dict[str, Any]": "mapping",
}
#: the type every setting must have, from the field's annotation (or its Setting's `kind`)
FIELD_TYPES: dict[str, str] = {
    f.name: f.metadata[SETTING_KEY].kind or _KINDS[str(f.type)] for f in dataclasses.fields(MergeConfig)
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
    return {
        str: "text",
        bool: "a boolean",
        int: "a whole number",
        float: "a number",
        list: "a list",
        dict: "a mapping",
        type(None): "empty",
    }.get(type(value), type(value).__name__)


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

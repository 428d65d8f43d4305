"""The run configuration: one dataclass shared by the CLI, the GUI, run.yaml and the tests.

Why one object: `reasonany merge OUT/reasonany/run.yaml` must reproduce a run exactly, so everything
that changes the result lives here, is validated here (one clear message per bad value), and is written
back verbatim into the output folder.

Each field carries a `Setting` (fields.py: its words, choices, range, CLI flag, GUI panel, role and whether the
tuner searches it), from which the CLI, the GUI, the tuner and `validate` are generated; the method choices and
each method's own check come from the method registry (methods/registry.py, read lazily, so importing this
module does not import torch). Value kinds and the YAML reading are in values.py, the choices' words in choices.py.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import InputError
from .choices import (
    ACCUMULATOR_TITLES,
    DEVICES_HELP,
    DTYPE_TITLES,
    GRANULARITY_TITLES,
    ROLE_TITLES,
    SAVE_DTYPE_TITLES,
    SCOPE_TITLES,
    SCORE_PRECISION_TITLES,
    SCORE_TITLES,
)
from .fields import SETTING_KEY, Setting, model_setting, ratio_setting, scale_setting, setting
from .values import KINDS, extra_problem, kind_problem, parse_size, read_yaml

#: the three models of a trio, in the order they are named everywhere
ROLES = tuple(ROLE_TITLES)


def _method_ids() -> tuple[str, ...]:
    from ..methods.registry import method_ids

    return method_ids()


def _method_titles() -> Mapping[str, str]:
    """The method choices with their words, live from the method registry (imported here: it imports torch)."""
    from ..methods.registry import OPTION_TITLES

    return OPTION_TITLES


@dataclass
class MergeConfig:
    """Everything that determines a merge. Defaults come from benchmarks/quality (see README).

    Each field carries its `Setting` (label, tooltip, range, CLI flag, GUI panel, role); see `settings()`."""

    base: str = model_setting("base", "The original model both experts were fine-tuned from.", "the base model")
    reasoning: str = model_setting(
        "reasoning",
        "The model that thinks step by step (for example an R1-distilled model).",
        "fine-tuned from the base",
    )
    domain: str = model_setting(
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
        choices=_method_titles,
        gui="settings",
        retunable=True,
        retune_card=True,
        tuned=True,
        tooltip="How the models are combined. ReasonAny is recommended; the others are for comparison.",
    )
    # Defaults: set where both merge-quality benchmarks agree (benchmarks/quality, 0.85 M from scratch, and
    # benchmarks/pretrained, SmolLM2-135M): snip scores, tensor scope, no intersection, whole-text scoring, and
    # ratio 0.5 with scale 2 (= 1/ratio) for both skills, which kept both skills on both trios (0.98/0.95 and
    # 0.15/1.00 against experts at 1.00/1.00 and 0.15/1.00), where the paper's 0.05 with scale 1 kept neither.
    # No 7B trio has been measured: `reasonany tune` / "Find a good setting" checks a user's own trio.
    reasoning_ratio: float = ratio_setting("reasoning", "least sensitive")
    domain_ratio: float = ratio_setting("domain", "most sensitive")
    reasoning_scale: float = scale_setting("reasoning")
    domain_scale: float = scale_setting("domain")
    score: str = setting(
        "snip",
        label="Importance score",
        choices=SCORE_TITLES,
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
        choices=SCOPE_TITLES,
        gui="settings",
        retunable=True,
        retune_card=True,
        scoring_only=True,
        tuned=True,
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
        choices=GRANULARITY_TITLES,
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
        choices=SAVE_DTYPE_TITLES,
        gui="output",
        retunable=True,
        tooltip="Number format of the saved model. 'Same as base' keeps the size of the original.",
    )
    compute_dtype: str = setting(  # identification dtype; auto = bfloat16 on CUDA, float32 on CPU
        "auto",
        label="Working precision",
        choices=DTYPE_TITLES,
        gui="settings",
        scoring_only=True,
        tooltip="Number format while measuring importance. Lower precision is faster and uses less memory.",
    )
    accumulators: str = setting(  # where the float32 score accumulators live
        "auto",
        label="Score storage",
        choices=ACCUMULATOR_TITLES,
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
        choices=ROLE_TITLES,
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
        choices=SCORE_PRECISION_TITLES,
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
        return cls.from_dict(read_yaml(p) or {}, source=f"Config file {p}")

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
        problems += self._method_problems()
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

    def _method_problems(self) -> list[str]:
        """The method's own check (its registry record's `check`), once its id is known to be valid."""
        from ..methods.registry import REGISTRY

        record = REGISTRY.get(self.method)
        return record.check(self) if record is not None else []

    def _format_problems(self) -> list[str]:
        problems = []
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


def tuned_fields() -> tuple[str, ...]:
    """The settings the tuner searches (Setting.tuned), in field order: every candidate's setting has these keys."""
    return fields_where(tuned=True)


def __getattr__(name: str) -> tuple[str, ...]:
    """METHODS and SCORED_METHODS, read live from the method registry (methods.REGISTRY), so a method
    registered later (a plug-in, a test) is a valid choice everywhere without a second list here."""
    if name == "METHODS":
        return _method_ids()
    if name == "SCORED_METHODS":
        from ..methods.registry import scored_method_ids

        return scored_method_ids()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: the kind of value every setting must have, from the field's annotation (or its Setting's `kind`)
FIELD_TYPES: dict[str, str] = {
    f.name: f.metadata[SETTING_KEY].kind or KINDS[str(f.type)] for f in dataclasses.fields(MergeConfig)
}


def type_problems(data: dict[str, Any]) -> list[str]:
    """One line per setting whose value has the wrong type (unknown keys are the caller's business)."""
    problems = [kind_problem(name, data[name], kind) for name, kind in FIELD_TYPES.items() if name in data]
    if isinstance(data.get("extra"), dict):
        problems.append(extra_problem(data["extra"]))
    return [p for p in problems if p]

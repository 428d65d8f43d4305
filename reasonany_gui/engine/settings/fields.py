"""A setting's description: the `Setting` record every MergeConfig field carries, and `setting()` to declare one.

Why on the field: the CLI flags, the GUI widgets, the validator, the report's rows and the tuner's search are all
generated from these records, so a new setting is one field (docs/EXTENDING.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .values import is_number


@dataclass(frozen=True)
class Setting:
    """What the CLI, the GUI and the validator know about one MergeConfig field (pattern: mergekit's options.py).

    Why on the field: a setting's range, words and role were written in six to eight places (validate, argparse,
    both GUI panels, three field lists) and nothing checked that the copies agreed. Now `validate`, the CLI flags,
    the GUI widgets, the words for each choice, the tuner's search and the `RETUNABLE` / scoring-only / re-tune-card
    lists are all generated from this record."""

    label: str  # the GUI's and the report's name for it
    tooltip: str  # one plain-language line (GUI tooltip, CLI help)
    #: the legal values with their words (choices.py); a callable = live (the method registry)
    choices: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None
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
    #: the tuner searches it: it is part of every candidate's setting, and the refinement steps it (for a method
    #: that reads it) by ×/÷ `tune_factor` inside `tune_range` (else [low, high]); a choice or switch is flipped
    tuned: bool = False
    tune_factor: float = 1.25
    tune_range: tuple[float, float] | None = None

    def titles(self) -> Mapping[str, str]:
        """Each legal value -> its words ({} when any value of the type goes)."""
        if self.choices is None:
            return {}
        return self.choices() if callable(self.choices) else self.choices

    def options(self) -> tuple[str, ...]:
        """The legal values, () when any value of the type goes."""
        return tuple(self.titles())

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
        if not is_number(value):
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


# ---------------------------------------------------------------------------- the shapes several fields share
def ratio_setting(role: str, which: str) -> Any:
    """The share of weights taken from one expert (a fraction; TIES and DARE read it as the density)."""
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
        tuned=True,
        tune_factor=1.6,
        tune_range=(0.005, 0.99),  # inside (0, 1), off its ends, where a selection is empty or the whole tensor
        cli_hint="a fraction, e.g. 0.5; TIES and DARE read it as the density",
    )


def scale_setting(role: str) -> Any:
    """How strongly one expert's selected changes are applied (TIES, DARE and linear read it as the weight)."""
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
        tuned=True,
        cli_hint="0 to 10; TIES, DARE and linear read it as the weight",
    )


def model_setting(role: str, tooltip: str, hint: str) -> Any:
    """One of the trio's three models: a local folder or a Hugging Face repo id."""
    return setting(
        "",
        label=f"{role.capitalize()} model",
        tooltip=tooltip,
        gui="models",
        cli_hint=f"{hint}: a local folder or a Hugging Face repo id",
    )
